//! `anneval score`: one candidate, one dataset, a table and a verdict.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;

use super::args;
use super::progress::TerminalProgress;
use crate::compile::CompileLimits;
use crate::dataset::split::{self, QuerySet};
use crate::dataset::subsample::subsample;
use crate::dataset::{Dataset, registry};
use crate::evaluator::{Candidate, DEFAULT_EFS, Evaluator, ScoreOptions};
use crate::export;
use crate::paths;
use crate::sandbox::Limits;
use crate::verdict::Verdict;

#[derive(Args)]
pub struct ScoreArgs {
    /// A kernel (.rs replacing guest-template/src/kernel.rs) or a WebAssembly
    /// component (.wasm); the reference kernel when omitted.
    candidate: Option<PathBuf>,
    /// A registered dataset name, or the path of an ann-benchmarks .hdf5 file.
    #[arg(long, default_value = registry::DEFAULT_DATASET)]
    dataset: String,
    /// Keep only the first N base points (the ground truth is recomputed
    /// and cached).
    #[arg(long, value_name = "N")]
    max_base: Option<usize>,
    /// Keep only the first Q queries (of the chosen query set).
    #[arg(long, value_name = "Q")]
    max_queries: Option<usize>,
    /// Which queries to score: dev (the default, four fifths), holdout (the
    /// fifth never scored during development) or all.
    #[arg(
        long,
        value_name = "SET",
        default_value = "dev",
        conflicts_with = "holdout"
    )]
    queries: QuerySet,
    /// Score on the held-out queries (same as --queries holdout): for final
    /// and CI evaluations.
    #[arg(long)]
    holdout: bool,
    /// Neighbours per query (recall@k).
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// The ef values to sweep, comma-separated [default: 1 to 700, 30 values].
    #[arg(long, value_parser = args::ef_list)]
    ef: Option<args::EfList>,
    /// Timed passes per ef (after one warm-up); the best is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// A build parameter for the kernel, KEY=VALUE (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = args::param)]
    params: Vec<(String, String)>,
    /// The recall band of the reward, LO,HI.
    #[arg(long, value_name = "LO,HI", default_value = "0.85,0.95", value_parser = args::band)]
    band: (f64, f64),
    /// Write the result as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Guest memory limit in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 2048)]
    memory_mib: usize,
    /// Deadline of the build call, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 900.0)]
    build_timeout: f64,
    /// Deadline of each restore and search pass, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 120.0)]
    timeout: f64,
    /// Skip the instruction-counting pass (no fuel figures).
    #[arg(long)]
    no_fuel: bool,
    /// No progress bar and no table (the JSON file and exit code only).
    #[arg(long, short)]
    quiet: bool,
}

/// Opens a dataset by name or path, keeps the query set asked for, and cuts
/// it as asked.
pub(super) fn load_dataset(
    spec: &str,
    query_set: QuerySet,
    max_base: Option<usize>,
    max_queries: Option<usize>,
    progress: &TerminalProgress,
) -> Result<Dataset> {
    if max_base == Some(0) || max_queries == Some(0) {
        bail!("--max-base and --max-queries must be at least 1");
    }
    let total = registry::lookup(spec).map_or(0, |e| e.test as u64);
    let data = registry::open(spec, &paths::data_dir()?, &progress.counter("truth", total))?;
    let data = split::select(data, query_set);
    let kept = max_queries.unwrap_or(data.n_test()).min(data.n_test()) as u64;
    subsample(
        data,
        max_base,
        max_queries,
        &paths::cache_dir()?,
        &progress.counter("truth", kept),
    )
}

pub fn run(a: ScoreArgs) -> Result<ExitCode> {
    let candidate = match &a.candidate {
        None => Candidate::Reference,
        Some(path) => Candidate::from_path(path)?,
    };
    let seconds = |s: f64, what: &str| {
        (s.is_finite() && s > 0.0)
            .then(|| Duration::from_secs_f64(s))
            .ok_or_else(|| anyhow!("{what} must be a positive number of seconds"))
    };
    let limits = Limits {
        memory_bytes: a
            .memory_mib
            .checked_mul(1 << 20)
            .context("--memory-mib is too large")?,
        build_timeout: seconds(a.build_timeout, "--build-timeout")?,
        call_timeout: seconds(a.timeout, "--timeout")?,
        ..Limits::default()
    };
    let progress = TerminalProgress::new(a.quiet);
    let queries = if a.holdout {
        QuerySet::Holdout
    } else {
        a.queries
    };
    let data = load_dataset(&a.dataset, queries, a.max_base, a.max_queries, &progress)?;
    let opts = ScoreOptions {
        k: a.k,
        efs: a.ef.map_or_else(|| DEFAULT_EFS.to_vec(), |l| l.0),
        runs: a.runs,
        params: a.params,
        band: a.band,
        fuel: !a.no_fuel,
    };
    opts.check(&data).map_err(|e| anyhow!(e))?;
    let evaluator = Evaluator::new(limits, CompileLimits::default(), &paths::cache_dir()?)?;
    let eval = evaluator.evaluate(&candidate, &data, &opts, &progress);
    progress.finish();
    if !a.quiet {
        print!("{}", export::table::render(&eval));
    }
    if let Some(path) = &a.json {
        export::json::write(path, &eval)?;
    }
    Ok(if eval.verdict == Verdict::Ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
