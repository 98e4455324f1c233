//! The options every measuring command shares (`score`, `gate`): the
//! dataset and how much of it, the sweep, the protocol, the sandbox's limits.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;

use super::args;
use super::progress::TerminalProgress;
use crate::codebase::Codebase;
use crate::compile::CompileLimits;
use crate::dataset::split::{self, QuerySet};
use crate::dataset::subsample::subsample;
use crate::dataset::{Dataset, registry};
use crate::evaluator::{Candidate, Engine, Evaluator, ScoreOptions};
use crate::measure::sweep::{FULL_EFS, Sweep};
use crate::paths;
use crate::sandbox::Limits;

#[derive(Args)]
pub struct MeasureArgs {
    /// A registered dataset name, or the path of an ann-benchmarks .hdf5 file.
    #[arg(long, default_value = registry::DEFAULT_DATASET)]
    pub dataset: String,
    /// Keep only the first N base points (the ground truth is recomputed
    /// and cached).
    #[arg(long, value_name = "N")]
    max_base: Option<usize>,
    /// Keep only the first Q queries (of the chosen query set).
    #[arg(long, value_name = "Q")]
    max_queries: Option<usize>,
    /// Which queries to use: dev (four fifths, used during development),
    /// holdout (the fifth never used during development) or all [default:
    /// dev for score, holdout for gate].
    #[arg(long, value_name = "SET", conflicts_with = "holdout")]
    queries: Option<QuerySet>,
    /// Use the held-out queries (same as --queries holdout).
    #[arg(long)]
    holdout: bool,
    /// Neighbours per query (recall@k).
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Time exactly these efs, comma-separated (instead of --sweep).
    #[arg(long, value_parser = args::ef_list)]
    ef: Option<args::EfList>,
    /// Which efs to time: band (those that decide the reward, found for each
    /// kernel) or full (CRINN's 30 efs from 1 to 700, for curves comparable
    /// with published ones and QPS at recall 0.99).
    #[arg(
        long,
        value_name = "band|full",
        default_value = "band",
        conflicts_with = "ef"
    )]
    sweep: String,
    /// Timed passes per ef after its probe; the best is reported [default:
    /// 3 for score, 5 for gate].
    #[arg(long)]
    runs: Option<usize>,
    /// The shortest timed pass, in seconds: a pass makes as many calls (each
    /// on a fresh instance) as it takes to last this long.
    #[arg(long, value_name = "SECS", default_value_t = 0.1)]
    min_pass_seconds: f64,
    /// Measure an ef again when its passes spread more than this fraction
    /// ((best - worst) / best).
    #[arg(long, value_name = "FRACTION", default_value_t = 0.10)]
    max_spread: f64,
    /// How many times a too-spread ef is measured again.
    #[arg(long, value_name = "N", default_value_t = 2)]
    retries: usize,
    /// A build parameter for the kernel, KEY=VALUE (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = args::param)]
    params: Vec<(String, String)>,
    /// The recall band of the reward, LO,HI.
    #[arg(long, value_name = "LO,HI", default_value = "0.85,0.95", value_parser = args::band)]
    band: (f64, f64),
    /// Guest memory limit in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 2048)]
    memory_mib: usize,
    /// Deadline of the build call, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 900.0)]
    build_timeout: f64,
    /// Deadline of each restore and search pass, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 120.0)]
    timeout: f64,
    /// Run kernels as WebAssembly in the wasmtime sandbox, or compiled for
    /// this CPU as jailed processes (native; no fuel figures).
    #[arg(long, default_value = "wasm")]
    pub engine: Engine,
    /// Skip the instruction-counting pass (no fuel figures).
    #[arg(long)]
    no_fuel: bool,
    /// A codebase of your own as the template: a folder with an
    /// anneval.toml manifest. Candidates then name only the files they
    /// change (a folder laid out as the codebase, or one file replacing the
    /// replaceable file of its name); `reference` is the codebase as it is.
    #[arg(long, value_name = "DIR")]
    template: Option<std::path::PathBuf>,
    /// No progress bar and no table: one line with the verdict and the
    /// reward (gate: its decision), the output files and the exit code.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Command-specific defaults.
pub struct Defaults {
    pub queries: QuerySet,
    pub runs: usize,
}

impl MeasureArgs {
    /// Opens the dataset, keeps the query set asked for, and cuts it.
    pub fn dataset(&self, defaults: &Defaults, progress: &TerminalProgress) -> Result<Dataset> {
        if self.max_base == Some(0) || self.max_queries == Some(0) {
            bail!("--max-base and --max-queries must be at least 1");
        }
        let query_set = match (self.holdout, self.queries) {
            (true, _) => QuerySet::Holdout,
            (false, Some(set)) => set,
            (false, None) => defaults.queries,
        };
        let spec = &self.dataset;
        let total = registry::lookup(spec).map_or(0, |e| e.test as u64);
        let data = registry::open(spec, &paths::data_dir()?, &progress.counter("truth", total))?;
        let data = split::select(data, query_set);
        let kept = self.max_queries.unwrap_or(data.n_test()).min(data.n_test()) as u64;
        subsample(
            data,
            self.max_base,
            self.max_queries,
            &paths::cache_dir()?,
            &progress.counter("truth", kept),
        )
    }

    /// The scoring options, checked against `data`.
    pub fn options(&self, defaults: &Defaults, data: &Dataset) -> Result<ScoreOptions> {
        let sweep = match (&self.ef, self.sweep.as_str()) {
            (Some(list), _) => Sweep::Efs(list.0.clone()),
            (None, "band") => Sweep::Band,
            (None, "full") => Sweep::Efs(FULL_EFS.to_vec()),
            (None, other) => bail!("--sweep {other:?}: expected band or full"),
        };
        let opts = ScoreOptions {
            k: self.k,
            sweep,
            runs: self.runs.unwrap_or(defaults.runs),
            params: self.params.clone(),
            band: self.band,
            fuel: !self.no_fuel,
            max_spread: self.max_spread,
            retries: self.retries,
            min_pass_seconds: self.min_pass_seconds,
            deadline: None,
        };
        opts.check(data).map_err(|e| anyhow!(e))?;
        Ok(opts)
    }

    /// A command-line candidate: in the template's terms with --template,
    /// else as [`Candidate::from_arg`] reads it. `None` is the reference.
    pub fn candidate(&self, arg: Option<&std::path::Path>) -> Result<Candidate> {
        let arg = arg.unwrap_or(std::path::Path::new("reference"));
        match &self.template {
            None => Candidate::from_arg(arg),
            Some(dir) => {
                Codebase::load(dir)?.candidate_from_arg(arg, CompileLimits::default().max_source)
            }
        }
    }

    /// The evaluator with the sandbox's limits as asked.
    pub fn evaluator(&self) -> Result<Evaluator> {
        let seconds = |s: f64, what: &str| {
            (s.is_finite() && s > 0.0)
                .then(|| Duration::from_secs_f64(s))
                .ok_or_else(|| anyhow!("{what} must be a positive number of seconds"))
        };
        let limits = Limits {
            memory_bytes: self
                .memory_mib
                .checked_mul(1 << 20)
                .context("--memory-mib is too large")?,
            build_timeout: seconds(self.build_timeout, "--build-timeout")?,
            call_timeout: seconds(self.timeout, "--timeout")?,
            ..Limits::default()
        };
        Evaluator::new(limits, CompileLimits::default(), &paths::cache_dir()?)
    }
}
