//! `anneval datasets`: list, make, fetch, import and inspect datasets.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Result, bail};
use clap::Subcommand;

use super::progress::TerminalProgress;
use crate::dataset::{fetch, hdf5, import, registry};
use crate::export::table::thousands;
use crate::paths;

#[derive(Subcommand)]
pub enum DatasetsCommand {
    /// Every registered dataset: shape, metric, source, and whether it is here.
    List,
    /// Make a synthetic dataset and save it in the data directory.
    Make {
        /// A synthetic dataset's name (random-xs-20-euclidean, ...).
        name: String,
        /// Write here instead of the data directory.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Download a standard ann-benchmarks dataset into the data directory.
    Fetch {
        name: String,
        /// Download from this URL instead of the registered one (a mirror).
        #[arg(long)]
        url: Option<String>,
        /// Download again even if the file is present.
        #[arg(long)]
        force: bool,
    },
    /// Build a dataset offline from local files: `fashion-mnist` from
    /// Debian's dataset-fashion-mnist package.
    Import {
        /// What to import: fashion-mnist.
        source: String,
        /// The directory holding the source files.
        #[arg(long, value_name = "DIR")]
        from: Option<PathBuf>,
        /// Write here instead of the data directory.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Show a file's layout, sizes and metric, and validate it.
    Info {
        /// A path to an .hdf5 file, or a registered name in the data directory.
        dataset: String,
    },
}

pub fn run(command: DatasetsCommand) -> Result<ExitCode> {
    let data_dir = paths::data_dir()?;
    match command {
        DatasetsCommand::List => list(&data_dir),
        DatasetsCommand::Make { name, out } => {
            let entry = registry::lookup(&name);
            let dest = out.unwrap_or_else(|| data_dir.join(format!("{name}.hdf5")));
            let progress = TerminalProgress::new(false);
            let start = Instant::now();
            let total = entry.map_or(0, |e| e.test as u64);
            let data = registry::make(&name, &progress.counter("truth", total))?;
            hdf5::write(&dest, &data)?;
            progress.finish();
            println!(
                "made {name} in {:.1} s: {}",
                start.elapsed().as_secs_f64(),
                dest.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        DatasetsCommand::Fetch { name, url, force } => {
            let Some(entry) = registry::lookup(&name) else {
                bail!(
                    "unknown dataset {name:?}: `anneval datasets list` shows the registered names"
                );
            };
            let Some(url) = url.or_else(|| entry.url.clone()) else {
                bail!("{name} is not downloaded but made: use `anneval datasets make {name}`");
            };
            let dest = entry.local_path(&data_dir);
            if dest.exists() && !force {
                println!(
                    "{name} is already present at {} (--force downloads it again)",
                    dest.display()
                );
                return Ok(ExitCode::SUCCESS);
            }
            let progress = TerminalProgress::new(false);
            let start = Instant::now();
            let done = fetch::fetch(
                &url,
                entry.sha256.as_deref(),
                &dest,
                &progress.bytes("fetch"),
            )?;
            progress.finish();
            println!(
                "fetched {name} ({} bytes, sha256 {}) in {:.1} s: {}",
                done.bytes,
                done.sha256,
                start.elapsed().as_secs_f64(),
                dest.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        DatasetsCommand::Import { source, from, out } => {
            if source != "fashion-mnist" {
                bail!(
                    "no importer for {source:?}; importers: {}",
                    import::IMPORTERS.join(", ")
                );
            }
            let from = from.unwrap_or_else(|| PathBuf::from(import::FASHION_MNIST_DIR));
            let progress = TerminalProgress::new(false);
            let start = Instant::now();
            let data = import::fashion_mnist(&from, &progress.counter("truth", 10_000))?;
            let dest = out.unwrap_or_else(|| data_dir.join(format!("{}.hdf5", data.name)));
            hdf5::write(&dest, &data)?;
            progress.finish();
            println!(
                "imported {} ({} train, {} test, {} dimensions) in {:.1} s: {}",
                data.name,
                data.n_train(),
                data.n_test(),
                data.dim,
                start.elapsed().as_secs_f64(),
                dest.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        DatasetsCommand::Info { dataset } => info(&dataset, &data_dir),
    }
}

fn list(data_dir: &Path) -> Result<ExitCode> {
    println!(
        "{:<30} {:>5} {:>10} {:>7}  {:<10} {:<34} local",
        "name", "dim", "train", "test", "metric", "source"
    );
    for e in registry::all() {
        let path = e.local_path(data_dir);
        let here = if path.exists() {
            path.display().to_string()
        } else if e.synthetic.is_some() {
            "- (made in memory when named)".into()
        } else {
            "-".into()
        };
        println!(
            "{:<30} {:>5} {:>10} {:>7}  {:<10} {:<34} {here}",
            e.name,
            e.dim,
            thousands(e.train as f64),
            thousands(e.test as f64),
            e.metric.as_str(),
            e.source()
        );
    }
    println!(
        "\ndata directory: {} (set ANNEVAL_DATA to move it)",
        data_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn info(spec: &str, data_dir: &Path) -> Result<ExitCode> {
    let path = if registry::is_path(spec) {
        PathBuf::from(spec)
    } else if let Some(entry) = registry::lookup(spec) {
        entry.local_path(data_dir)
    } else {
        bail!("unknown dataset {spec:?}: give the path of an .hdf5 file or a registered name");
    };
    let layout = hdf5::layout(&path)?;
    println!("{}", path.display());
    println!("attributes:");
    for (name, value) in &layout.attributes {
        println!("  {name:<12} {value}");
    }
    println!("datasets:");
    for (name, shape, ty) in &layout.datasets {
        let shape: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        println!("  {name:<12} {:<16} {ty}", shape.join(" × "));
    }
    match hdf5::read(&path) {
        Ok(data) => {
            println!(
                "valid: {} base points, {} queries, {} dimensions, {} metric, ground truth depth {}",
                thousands(data.n_train() as f64),
                thousands(data.n_test() as f64),
                data.dim,
                data.metric,
                data.gt_k
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            println!("invalid: {err:#}");
            Ok(ExitCode::FAILURE)
        }
    }
}
