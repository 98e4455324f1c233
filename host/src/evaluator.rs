//! One evaluation end to end: compile (or load) the candidate, build its
//! index in the sandbox, sweep `ef`, score the curve. Every outcome is an
//! [`Evaluation`] with a verdict; nothing a candidate does escapes as a panic
//! or an error of the host.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};

use crate::compile::{CompileLimits, Compiler, Language};
use crate::dataset::{Dataset, Metric};
use crate::evaluation::{CandidateInfo, Context, Evaluation};
use crate::guest::{Built, ComponentCache, KernelComponent, WitMetric};
use crate::measure::sweep::Sweep;
use crate::measure::wall::WallTime;
use crate::measure::{self, Measured, Protocol, Runner, Subject, Workload};
use crate::native::NativeKernel;
use crate::sandbox::{Limits, Sandbox};
use crate::template;
use crate::verdict::Failure;

/// What to evaluate.
#[derive(Clone, Debug)]
pub enum Candidate {
    /// The template's reference kernel (HNSW).
    Reference,
    /// A kernel's source in `language`; `origin` is where it came from (a
    /// path, for reports).
    Source {
        origin: String,
        text: String,
        language: Language,
    },
    /// A ready WebAssembly component.
    Component { origin: String, bytes: Vec<u8> },
}

impl Candidate {
    /// A command-line candidate: `reference` (the Rust reference),
    /// `reference-cpp` or `reference-c` (the C++ and C references), or a path.
    pub fn from_arg(arg: &Path) -> Result<Candidate> {
        if arg == Path::new("reference") {
            return Ok(Candidate::Reference);
        }
        for language in [Language::Cpp, Language::C] {
            let name = format!("reference-{language}");
            if arg == Path::new(&name) {
                return Ok(Candidate::Source {
                    origin: name,
                    text: language.reference().to_string(),
                    language,
                });
            }
        }
        Candidate::from_path(arg)
    }

    /// Reads a candidate file: source (`.rs`, `.c`, `.cpp`) or a `.wasm`
    /// component.
    pub fn from_path(path: &Path) -> Result<Candidate> {
        let origin = path.display().to_string();
        let archive = crate::bundle::Bundle::is_archive(path);
        if path.is_dir() || archive {
            let limit = crate::compile::CompileLimits::default().max_source;
            let bundle = if archive {
                crate::bundle::Bundle::from_tar(path, limit)?
            } else {
                crate::bundle::Bundle::from_dir(path, limit)?
            };
            let (text, language) = bundle
                .flatten()
                .map_err(|e| anyhow::anyhow!("bundle {origin}: {e}"))?;
            return Ok(Candidate::Source {
                origin,
                text,
                language,
            });
        }
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext == "wasm" {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading candidate {origin}"))?;
            return Ok(Candidate::Component { origin, bytes });
        }
        let Some(language) = Language::from_extension(ext) else {
            bail!(
                "candidate {origin}: expected a kernel in Rust (.rs), C (.c) or C++ (.cpp), \
                 or a WebAssembly component (.wasm)"
            );
        };
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading candidate {origin}"))?;
        Ok(Candidate::Source {
            origin,
            text,
            language,
        })
    }

    pub fn origin(&self) -> &str {
        match self {
            Candidate::Reference => "reference",
            Candidate::Source { origin, .. } | Candidate::Component { origin, .. } => origin,
        }
    }
}

/// Which engine runs a kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    /// WebAssembly in the wasmtime sandbox.
    Wasm,
    /// Compiled for this CPU, run as a jailed process.
    Native,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Wasm => "wasm",
            Engine::Native => "native",
        }
    }
}

impl std::str::FromStr for Engine {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "wasm" => Ok(Engine::Wasm),
            "native" => Ok(Engine::Native),
            other => Err(format!("{other:?} is not an engine (wasm or native)")),
        }
    }
}

/// A candidate ready to run on its engine.
pub enum Prepared {
    Wasm(Vec<u8>),
    Native(PathBuf),
}

/// A candidate loaded into its engine.
enum Loaded {
    Wasm(KernelComponent),
    Native(NativeKernel),
}

impl Loaded {
    fn runner(&self) -> Runner<'_> {
        match self {
            Loaded::Wasm(k) => Runner::Wasm(k),
            Loaded::Native(k) => Runner::Native(k),
        }
    }
}

/// How to score.
#[derive(Clone, Debug)]
pub struct ScoreOptions {
    pub k: usize,
    /// Which efs are timed: the band sweep (default) or a list.
    pub sweep: Sweep,
    /// Timed passes per ef (after the probe that warms it up).
    pub runs: usize,
    pub params: Vec<(String, String)>,
    pub band: (f64, f64),
    /// Whether to run the fuel-metering pass per ef.
    pub fuel: bool,
    /// (best − worst) / best above which an ef is measured again.
    pub max_spread: f64,
    /// How many times a too-spread ef is measured again.
    pub retries: usize,
    /// How long a timed pass lasts at least (several calls added up).
    pub min_pass_seconds: f64,
    /// When the whole evaluation must be over (verdict `timeout` after it).
    pub deadline: Option<Instant>,
}

impl Default for ScoreOptions {
    fn default() -> Self {
        let protocol = Protocol::default();
        ScoreOptions {
            k: 10,
            sweep: protocol.sweep,
            runs: protocol.runs,
            params: Vec::new(),
            band: protocol.band,
            fuel: protocol.fuel,
            max_spread: protocol.max_spread,
            retries: protocol.retries,
            min_pass_seconds: protocol.min_pass_seconds,
            deadline: None,
        }
    }
}

impl ScoreOptions {
    /// The measurement protocol these options ask for.
    pub fn protocol(&self) -> Protocol {
        Protocol {
            sweep: self.sweep.clone(),
            band: self.band,
            runs: self.runs,
            max_spread: self.max_spread,
            retries: self.retries,
            min_pass_seconds: self.min_pass_seconds,
            fuel: self.fuel,
            deadline: self.deadline,
        }
    }

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
        if let Sweep::Efs(efs) = &self.sweep
            && (efs.is_empty() || efs.contains(&0))
        {
            return Err("the ef list needs at least one value, all positive".into());
        }
        if !(self.min_pass_seconds.is_finite() && self.min_pass_seconds >= 0.0) {
            return Err("the shortest timed pass must be 0 or more seconds".into());
        }
        if self.runs == 0 {
            return Err("runs must be at least 1".into());
        }
        if self.max_spread.is_nan() || self.max_spread <= 0.0 {
            return Err("the spread threshold must be positive".into());
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
    /// More steps than announced (a noisy ef measured again).
    fn extend(&self, steps: u64);
    /// One step done, with what is happening now.
    fn step(&self, detail: &str);
}

/// Reports nothing.
pub struct Quiet;

impl Progress for Quiet {
    fn phase(&self, _: &str, _: u64) {}
    fn extend(&self, _: u64) {}
    fn step(&self, _: &str) {}
}

/// Holds the sandbox and (once needed) the compiler; evaluates candidates.
pub struct Evaluator {
    sandbox: Sandbox,
    components: ComponentCache,
    cache_dir: PathBuf,
    compile_limits: CompileLimits,
    compiler: OnceLock<std::result::Result<Compiler, String>>,
}

impl Evaluator {
    pub fn new(limits: Limits, compile_limits: CompileLimits, cache_dir: &Path) -> Result<Self> {
        Ok(Evaluator {
            sandbox: Sandbox::new(limits).context("configuring the wasmtime sandbox")?,
            components: ComponentCache::default(),
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
        let (prepared, info) = self.prepare(candidate, Engine::Wasm);
        let bytes = prepared.map(|p| match p {
            Prepared::Wasm(bytes) => bytes,
            Prepared::Native(_) => unreachable!("prepared for the wasm engine"),
        });
        (bytes, info)
    }

    /// The components this evaluator has compiled and keeps.
    pub fn components(&self) -> &ComponentCache {
        &self.components
    }

    /// Compiles (or reads) the candidate for `engine`.
    pub fn prepare(
        &self,
        candidate: &Candidate,
        engine: Engine,
    ) -> (std::result::Result<Prepared, Failure>, CandidateInfo) {
        let mut info = CandidateInfo {
            source: candidate.origin().to_string(),
            ..Default::default()
        };
        let (source, language) = match candidate {
            Candidate::Component { bytes, .. } => {
                info.kind = "component".into();
                info.digest = digest(bytes);
                let prepared = match engine {
                    Engine::Wasm => Ok(Prepared::Wasm(bytes.clone())),
                    Engine::Native => Err(Failure::rejected(
                        "the native engine compiles source; a ready component runs only in the wasm engine",
                    )),
                };
                return (prepared, info);
            }
            Candidate::Reference => (template::reference_kernel(), Language::Rust),
            Candidate::Source { text, language, .. } => (text.as_str(), *language),
        };
        info.kind = language.as_str().into();
        // The first compile also prepares the toolchain: its time is part of
        // this compile's, not of the evaluation after it.
        let started = Instant::now();
        let compiler = match self.compiler() {
            Ok(c) => c,
            Err(f) => return (Err(f), info),
        };
        let preparing = started.elapsed().as_secs_f64();
        let prepared = match engine {
            Engine::Wasm => {
                if let Ok(digest) = compiler.digest(source, language) {
                    info.digest = digest;
                }
                compiler.compile(source, language).map(|done| {
                    info.compile_seconds = Some(preparing + done.seconds);
                    info.compile_cached = Some(done.cached);
                    Prepared::Wasm(done.component)
                })
            }
            Engine::Native => compiler.compile_native(source, language).map(|done| {
                info.digest = done.digest;
                info.compile_seconds = Some(preparing + done.seconds);
                info.compile_cached = Some(done.cached);
                Prepared::Native(done.binary)
            }),
        };
        (prepared, info)
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
        self.evaluate_on(candidate, Engine::Wasm, data, opts, progress)
    }

    /// Evaluates `candidate` on `engine`.
    pub fn evaluate_on(
        &self,
        candidate: &Candidate,
        engine: Engine,
        data: &Dataset,
        opts: &ScoreOptions,
        progress: &dyn Progress,
    ) -> Evaluation {
        let entries = [(candidate.clone(), engine)];
        let mut evals = self.evaluate_entries(&entries, data, opts, progress);
        evals.pop().expect("one evaluation per entry")
    }

    /// Evaluates several candidates in one run: each is built in turn, then
    /// every ef is measured for all of them with their passes interleaved, so
    /// they share the machine's drift (what comparisons need). A candidate
    /// that fails drops out; the others go on.
    pub fn evaluate_together(
        &self,
        candidates: &[Candidate],
        data: &Dataset,
        opts: &ScoreOptions,
        progress: &dyn Progress,
    ) -> Vec<Evaluation> {
        let entries: Vec<(Candidate, Engine)> = candidates
            .iter()
            .map(|c| (c.clone(), Engine::Wasm))
            .collect();
        self.evaluate_entries(&entries, data, opts, progress)
    }

    /// Evaluates (candidate, engine) entries together, interleaved as
    /// [`Evaluator::evaluate_together`] does: `confirm` measures each
    /// candidate on both engines this way.
    pub fn evaluate_entries(
        &self,
        entries: &[(Candidate, Engine)],
        data: &Dataset,
        opts: &ScoreOptions,
        progress: &dyn Progress,
    ) -> Vec<Evaluation> {
        let start = Instant::now();
        let ctx = Context {
            band: opts.band,
            k: opts.k,
            sweep: opts.sweep.clone(),
            runs: opts.runs,
            engine: "wasm",
            dataset: data.name.clone(),
            dataset_info: Some(data.info()),
            params: opts.params.clone(),
        };
        // The measuring thread gets a stack deep enough for the wasm stack
        // limit on top of the host's frames, and a core of its own, without
        // pinning the caller. It compiles the candidates too, on that core:
        // the compilers it starts inherit the thread's core, and wasmtime
        // compiles on the calling thread (no parallel compilation, see
        // `sandbox`), so a compile never takes time from a measurement that
        // another worker or process is making on another core.
        let measured = std::thread::scope(|s| {
            std::thread::Builder::new()
                .name("anneval-measure".into())
                .stack_size(32 << 20)
                .spawn_scoped(s, || {
                    let _core = measure::claim_core();
                    progress.phase("compile", entries.len() as u64);
                    let compiled: Vec<_> = entries
                        .iter()
                        .map(|(c, engine)| {
                            let done = self.prepare(c, *engine);
                            progress.step(c.origin());
                            done
                        })
                        .collect();
                    self.run(&compiled, &ctx, data, opts, progress)
                })
                .map(|h| h.join())
        });
        let mut evals = match measured {
            Ok(Ok(evals)) => evals,
            failed => {
                let why = match failed {
                    Err(e) => format!("starting the measuring thread: {e}"),
                    _ => "the measuring thread panicked (a bug in anneval)".into(),
                };
                entries
                    .iter()
                    .map(|(c, _)| {
                        let info = CandidateInfo {
                            source: c.origin().to_string(),
                            ..CandidateInfo::default()
                        };
                        Evaluation::failed(&ctx, info, Failure::internal(why.clone()))
                    })
                    .collect()
            }
        };
        for (eval, (_, engine)) in evals.iter_mut().zip(entries) {
            eval.seconds = start.elapsed().as_secs_f64();
            eval.engine = engine.as_str().to_string();
        }
        evals
    }

    fn run(
        &self,
        compiled: &[(std::result::Result<Prepared, Failure>, CandidateInfo)],
        ctx: &Context,
        data: &Dataset,
        opts: &ScoreOptions,
        progress: &dyn Progress,
    ) -> Vec<Evaluation> {
        let n = compiled.len();
        let mut failure: Vec<Option<Failure>> = compiled
            .iter()
            .map(|(r, _)| r.as_ref().err().cloned())
            .collect();
        let mut wall: Vec<WallTime> = compiled
            .iter()
            .map(|(_, info)| WallTime {
                compile: info.compile_seconds.unwrap_or(0.0),
                ..WallTime::default()
            })
            .collect();
        let mut kernels: Vec<Option<Loaded>> = Vec::with_capacity(n);
        for (i, (prepared, _)) in compiled.iter().enumerate() {
            let started = Instant::now();
            let loaded = prepared.as_ref().ok().map(|p| match p {
                Prepared::Wasm(bytes) => {
                    self.components.load(&self.sandbox, bytes).map(Loaded::Wasm)
                }
                Prepared::Native(binary) => {
                    NativeKernel::new(binary, self.sandbox.limits().clone()).map(Loaded::Native)
                }
            });
            wall[i].load = started.elapsed().as_secs_f64();
            kernels.push(match loaded {
                Some(Ok(k)) => Some(k),
                Some(Err(f)) => {
                    failure[i] = Some(f);
                    None
                }
                None => None,
            });
        }

        let (guest_train, guest_test) = data.guest_vectors();
        let metric = match data.metric {
            Metric::Euclidean => WitMetric::Euclidean,
            Metric::Angular => WitMetric::Angular,
        };
        progress.phase("build", kernels.iter().flatten().count() as u64);
        let mut built: Vec<Option<Built>> = Vec::with_capacity(n);
        for (i, kernel) in kernels.iter().enumerate() {
            let started = Instant::now();
            built.push(kernel.as_ref().and_then(|k| {
                if let Err(f) = measure::within_deadline(opts.deadline) {
                    failure[i] = Some(f.during("build"));
                    return None;
                }
                let result = match k {
                    Loaded::Wasm(k) => {
                        k.build(&self.sandbox, &guest_train, data.dim, metric, &opts.params)
                    }
                    Loaded::Native(k) => k.build(&guest_train, data.dim, data.metric, &opts.params),
                };
                match result {
                    Ok(b) => Some(b),
                    Err(f) => {
                        failure[i] = Some(f.during("build"));
                        None
                    }
                }
            }));
            wall[i].build = started.elapsed().as_secs_f64();
            progress.step("index built");
        }
        drop(guest_train);

        let work = Workload {
            dataset: data,
            guest_queries: guest_test.into(),
            k: opts.k,
        };
        let protocol = opts.protocol();
        let standing: Vec<usize> = (0..n).filter(|&i| failure[i].is_none()).collect();
        let subjects: Vec<Subject<'_>> = standing
            .iter()
            .map(|&i| Subject {
                runner: kernels[i]
                    .as_ref()
                    .expect("standing kernels are loaded")
                    .runner(),
                index: built[i]
                    .as_ref()
                    .expect("standing kernels are built")
                    .index
                    .as_slice()
                    .into(),
            })
            .collect();
        let measured = measure::measure_sweep(&self.sandbox, &subjects, &work, &protocol, progress);
        let mut sweeps: Vec<Measured> = vec![Measured::default(); n];
        for (&i, (result, swept)) in standing.iter().zip(measured) {
            wall[i] = wall[i] + swept;
            match result {
                Ok(sweep) => sweeps[i] = sweep,
                Err((ef, f)) => failure[i] = Some(f.during(&format!("search at ef={ef}"))),
            }
        }

        compiled
            .iter()
            .enumerate()
            .map(|(i, (_, info))| {
                let mut eval = match failure[i].take() {
                    Some(f) => Evaluation::failed(ctx, info.clone(), f),
                    None => Evaluation::scored(ctx, info.clone(), data.n_test(), &sweeps[i]),
                };
                eval.wall = wall[i];
                if let Some(b) = &built[i] {
                    eval.build_seconds = Some(b.seconds);
                    eval.index_bytes = Some(b.index.len() as u64);
                    eval.log = b.log.lines().to_vec();
                }
                eval
            })
            .collect()
    }
}

fn digest(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    template::hex(&Sha256::digest(bytes))
}
