//! One evaluation end to end: compile (or load) the candidate, build its
//! index in the sandbox, sweep `ef`, score the curve. Every outcome is an
//! [`Evaluation`] with a verdict; nothing a candidate does escapes as a panic
//! or an error of the host.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};

use crate::compile::{CompileLimits, Compiler};
use crate::dataset::{Dataset, Metric};
use crate::evaluation::{CandidateInfo, Context, Evaluation};
use crate::guest::{KernelComponent, WitMetric};
use crate::measure::{self, EfMeasurement, Workload};
use crate::sandbox::{Limits, Sandbox};
use crate::template;
use crate::verdict::Failure;

/// The default sweep, like CRINN's: 1 to 700, denser where recall climbs.
pub const DEFAULT_EFS: &[usize] = &[
    1, 2, 4, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 256,
    320, 384, 448, 512, 600, 700,
];

/// What to evaluate.
#[derive(Clone, Debug)]
pub enum Candidate {
    /// The template's reference kernel (HNSW).
    Reference,
    /// A `kernel.rs`; `origin` is where it came from (a path, for reports).
    Source { origin: String, text: String },
    /// A ready WebAssembly component.
    Component { origin: String, bytes: Vec<u8> },
}

impl Candidate {
    /// Reads a candidate file: `.rs` source or `.wasm` component.
    pub fn from_path(path: &Path) -> Result<Candidate> {
        let origin = path.display().to_string();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match ext {
            "rs" => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading candidate {origin}"))?;
                Ok(Candidate::Source { origin, text })
            }
            "wasm" => {
                let bytes =
                    std::fs::read(path).with_context(|| format!("reading candidate {origin}"))?;
                Ok(Candidate::Component { origin, bytes })
            }
            _ => bail!(
                "candidate {origin}: expected a Rust kernel (.rs) or a WebAssembly component (.wasm)"
            ),
        }
    }

    pub fn origin(&self) -> &str {
        match self {
            Candidate::Reference => "reference",
            Candidate::Source { origin, .. } | Candidate::Component { origin, .. } => origin,
        }
    }
}

/// How to score.
#[derive(Clone, Debug)]
pub struct ScoreOptions {
    pub k: usize,
    pub efs: Vec<usize>,
    pub runs: usize,
    pub params: Vec<(String, String)>,
    pub band: (f64, f64),
    /// Whether to run the fuel-metering pass per `ef`.
    pub fuel: bool,
}

impl Default for ScoreOptions {
    fn default() -> Self {
        ScoreOptions {
            k: 10,
            efs: DEFAULT_EFS.to_vec(),
            runs: 3,
            params: Vec::new(),
            band: (0.85, 0.95),
            fuel: true,
        }
    }
}

impl ScoreOptions {
    /// Checks the options against a dataset; the message says what to change.
    pub fn check(&self, data: &Dataset) -> Result<(), String> {
        if self.k == 0 {
            return Err("k must be at least 1".into());
        }
        if self.k > data.gt_k {
            return Err(format!(
                "k = {} but {} has ground truth of depth {} only",
                self.k, data.name, data.gt_k
            ));
        }
        if self.k > data.n_train() {
            return Err(format!(
                "k = {} but {} has only {} base points",
                self.k,
                data.name,
                data.n_train()
            ));
        }
        if self.efs.is_empty() || self.efs.contains(&0) {
            return Err("the ef list needs at least one value, all positive".into());
        }
        if self.runs == 0 {
            return Err("runs must be at least 1".into());
        }
        let (lo, hi) = self.band;
        if !((0.0..1.0).contains(&lo) && lo < hi && hi <= 1.0) {
            return Err(format!(
                "the recall band [{lo}, {hi}] must satisfy 0 <= LO < HI <= 1"
            ));
        }
        Ok(())
    }
}

/// Progress reporting, for a terminal or for nothing.
pub trait Progress: Sync {
    /// A new phase with `steps` steps ahead.
    fn phase(&self, name: &str, steps: u64);
    /// One step done, with what is happening now.
    fn step(&self, detail: &str);
}

/// Reports nothing.
pub struct Quiet;

impl Progress for Quiet {
    fn phase(&self, _: &str, _: u64) {}
    fn step(&self, _: &str) {}
}

/// Holds the sandbox and (once needed) the compiler; evaluates candidates.
pub struct Evaluator {
    sandbox: Sandbox,
    cache_dir: PathBuf,
    compile_limits: CompileLimits,
    compiler: OnceLock<std::result::Result<Compiler, String>>,
}

impl Evaluator {
    pub fn new(limits: Limits, compile_limits: CompileLimits, cache_dir: &Path) -> Result<Self> {
        Ok(Evaluator {
            sandbox: Sandbox::new(limits).context("configuring the wasmtime sandbox")?,
            cache_dir: cache_dir.to_path_buf(),
            compile_limits,
            compiler: OnceLock::new(),
        })
    }

    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// The compiler, prepared on first use.
    pub fn compiler(&self) -> std::result::Result<&Compiler, Failure> {
        self.compiler
            .get_or_init(|| {
                Compiler::new(&self.cache_dir, self.compile_limits.clone())
                    .map_err(|e| format!("{e:#}"))
            })
            .as_ref()
            .map_err(|e| Failure::internal(e.clone()))
    }

    /// The candidate as component bytes, compiling Rust sources; the info
    /// describes the candidate whether or not that succeeded.
    pub fn component(
        &self,
        candidate: &Candidate,
    ) -> (std::result::Result<Vec<u8>, Failure>, CandidateInfo) {
        let mut info = CandidateInfo {
            source: candidate.origin().to_string(),
            ..Default::default()
        };
        let source = match candidate {
            Candidate::Component { bytes, .. } => {
                info.kind = "component".into();
                info.digest = digest(bytes);
                return (Ok(bytes.clone()), info);
            }
            Candidate::Reference => template::reference_kernel(),
            Candidate::Source { text, .. } => text.as_str(),
        };
        info.kind = "rust".into();
        let compiler = match self.compiler() {
            Ok(c) => c,
            Err(f) => return (Err(f), info),
        };
        info.digest = compiler.digest(source);
        let result = compiler.compile(source).map(|done| {
            info.compile_seconds = Some(done.seconds);
            info.compile_cached = Some(done.cached);
            done.component
        });
        (result, info)
    }

    /// Evaluates `candidate` on `data`. `opts` must have passed
    /// [`ScoreOptions::check`].
    pub fn evaluate(
        &self,
        candidate: &Candidate,
        data: &Dataset,
        opts: &ScoreOptions,
        progress: &dyn Progress,
    ) -> Evaluation {
        let start = Instant::now();
        let ctx = Context {
            band: opts.band,
            k: opts.k,
            runs: opts.runs,
            engine: "wasm",
            dataset: data.name.clone(),
            dataset_info: Some(data.info()),
            params: opts.params.clone(),
        };
        progress.phase("compile", 1);
        let mut eval = match self.component(candidate) {
            (Err(failure), info) => Evaluation::failed(&ctx, info, failure),
            (Ok(bytes), info) => {
                progress.step("compiled");
                // The measuring thread gets a stack deep enough for the wasm
                // stack limit on top of the host's frames, and is pinned to
                // its core without pinning the caller.
                std::thread::scope(|s| {
                    std::thread::Builder::new()
                        .name("anneval-measure".into())
                        .stack_size(32 << 20)
                        .spawn_scoped(s, || {
                            measure::pin_current_thread();
                            self.run(&bytes, &ctx, info.clone(), data, opts, progress)
                        })
                        .map(|h| h.join())
                })
                .unwrap_or_else(|e| {
                    Ok(Evaluation::failed(
                        &ctx,
                        info.clone(),
                        Failure::internal(format!("starting the measuring thread: {e}")),
                    ))
                })
                .unwrap_or_else(|_| {
                    Evaluation::failed(
                        &ctx,
                        info,
                        Failure::internal("the measuring thread panicked (a bug in anneval)"),
                    )
                })
            }
        };
        eval.seconds = start.elapsed().as_secs_f64();
        eval
    }

    fn run(
        &self,
        bytes: &[u8],
        ctx: &Context,
        info: CandidateInfo,
        data: &Dataset,
        opts: &ScoreOptions,
        progress: &dyn Progress,
    ) -> Evaluation {
        let mut log = Vec::new();
        let mut build = None;
        let result = (|| -> std::result::Result<Vec<EfMeasurement>, Failure> {
            let kernel = KernelComponent::load(&self.sandbox, bytes)?;
            let (guest_train, guest_test) = data.guest_vectors();
            let metric = match data.metric {
                Metric::Euclidean => WitMetric::Euclidean,
                Metric::Angular => WitMetric::Angular,
            };
            progress.phase("build", 1);
            let built = kernel
                .build(&self.sandbox, &guest_train, data.dim, metric, &opts.params)
                .map_err(|f| f.during("build"))?;
            drop(guest_train);
            progress.step("index built");
            log.extend(built.log.lines().iter().cloned());
            build = Some((built.seconds, built.index.len() as u64));

            let work = Workload {
                dataset: data,
                guest_queries: &guest_test,
                k: opts.k,
                warmup: 1,
                runs: opts.runs,
                fuel: opts.fuel,
            };
            let per_ef = (work.warmup + work.runs + usize::from(work.fuel)) as u64;
            progress.phase("sweep", per_ef * opts.efs.len() as u64);
            let mut sweep = Vec::with_capacity(opts.efs.len());
            for &ef in &opts.efs {
                let detail = format!("ef={ef}");
                let m = measure::measure_ef(
                    &kernel,
                    &self.sandbox,
                    &built.index,
                    &work,
                    ef,
                    &mut || progress.step(&detail),
                )
                .map_err(|f| f.during(&format!("search at ef={ef}")))?;
                sweep.push(m);
            }
            Ok(sweep)
        })();
        let mut eval = match result {
            Ok(sweep) => Evaluation::scored(ctx, info, data.n_test(), &sweep),
            Err(failure) => Evaluation::failed(ctx, info, failure),
        };
        if let Some((seconds, bytes)) = build {
            eval.build_seconds = Some(seconds);
            eval.index_bytes = Some(bytes);
        }
        eval.log = log;
        eval
    }
}

fn digest(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    template::hex(&Sha256::digest(bytes))
}
