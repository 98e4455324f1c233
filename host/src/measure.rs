//! The measurement protocol, shared by `score`, `gate`, `serve` and
//! `confirm`.
//!
//! A sweep measures every `ef` of every kernel measured together:
//! 1. a warm-up round: one pass per ef and kernel, its time dropped (its
//!    answers are checked like every other pass's);
//! 2. `runs` timed rounds; each round walks every ef once, and at each ef
//!    the kernels take turns (A B A B ...), so drift of the machine
//!    (frequency, other tenants' memory traffic) hits every kernel alike and
//!    one ef's passes are spread over the whole sweep;
//! 3. efs whose passes spread more than `max_spread` ((best − worst) / best
//!    QPS) for any kernel are measured again, `runs` more rounds over just
//!    those efs, up to `retries` times; an ef still too spread is kept and
//!    flagged noisy;
//! 4. one untimed round on the fuel-metering engine counts instructions.
//!
//! Every pass restores a fresh instance from the saved index (untimed) and
//! times one call answering the whole batch. Every pass's answers are
//! validated; the recall kept is the lowest any pass achieved. The measuring
//! thread holds a core of its own ([`claim_core`]) where the OS allows.
//!
//! Pass `r` of every ef forms replicate curve `r`: the spread of the rewards
//! of the replicates is the reward's coefficient of variation, and the
//! replicates are what the gate compares, pairwise, between two kernels.

use std::time::Instant;

use crate::dataset::Dataset;
use crate::evaluator::Progress;
use crate::guest::{KernelComponent, PassOutput};
use crate::metrics::hits_at_k;
use crate::native::NativeKernel;
use crate::sandbox::{Metering, Sandbox};
use crate::validate::validate_answers;
use crate::verdict::Failure;

/// How passes are run.
#[derive(Clone, Debug)]
pub struct Protocol {
    pub warmup: usize,
    pub runs: usize,
    /// (best − worst) / best above which an ef is measured again.
    pub max_spread: f64,
    /// How many times a too-spread ef is measured again.
    pub retries: usize,
    /// Whether to run the fuel-metering pass.
    pub fuel: bool,
    /// When the whole evaluation must be over.
    pub deadline: Option<Instant>,
}

impl Default for Protocol {
    fn default() -> Self {
        Protocol {
            warmup: 1,
            runs: 3,
            max_spread: 0.10,
            retries: 2,
            fuel: true,
            deadline: None,
        }
    }
}

/// The queries handed to every kernel, and how answers are checked.
pub struct Workload<'a> {
    pub dataset: &'a Dataset,
    /// The queries as the guest sees them (unit-normalised for angular).
    pub guest_queries: &'a [f32],
    pub k: usize,
}

/// What runs a kernel's passes.
#[derive(Clone, Copy)]
pub enum Runner<'a> {
    /// A component in the wasmtime sandbox (a fresh instance per pass).
    Wasm(&'a KernelComponent),
    /// A native binary in the OS sandbox (a fresh process per pass).
    Native(&'a NativeKernel),
}

/// One kernel in a measurement: its runner and its built index.
pub struct Subject<'a> {
    pub runner: Runner<'a>,
    pub index: &'a [u8],
}

/// One `ef` of one kernel, measured.
#[derive(Clone, Debug, PartialEq)]
pub struct EfMeasurement {
    pub ef: usize,
    pub recall: f64,
    /// Host-timed seconds of each kept timed pass (warm-up excluded).
    pub pass_seconds: Vec<f64>,
    /// Seconds each kept timed pass spent restoring its searcher (untimed).
    pub restore_seconds: Vec<f64>,
    pub fuel_per_query: Option<f64>,
    /// How many times the ef was measured again for spreading too much.
    pub retries: usize,
    /// Whether the kept passes still spread more than allowed.
    pub noisy: bool,
}

impl EfMeasurement {
    /// Queries per second of each timed pass.
    pub fn pass_qps(&self, queries: usize) -> Vec<f64> {
        self.pass_seconds
            .iter()
            .map(|s| queries as f64 / s.max(1e-12))
            .collect()
    }

    /// The best pass's QPS.
    pub fn best_qps(&self, queries: usize) -> f64 {
        self.pass_qps(queries).into_iter().fold(0.0, f64::max)
    }
}

/// A `timeout` failure once `deadline` has passed.
pub fn within_deadline(deadline: Option<Instant>) -> Result<(), Failure> {
    match deadline {
        Some(d) if Instant::now() >= d => Err(Failure::new(
            crate::verdict::Verdict::Timeout,
            "the evaluation did not finish within its time budget",
        )),
        _ => Ok(()),
    }
}

/// (best − worst) / best of the passes' QPS, computed from their times.
pub fn spread(seconds: &[f64]) -> f64 {
    let best = seconds.iter().copied().fold(f64::INFINITY, f64::min);
    let worst = seconds.iter().copied().fold(0.0, f64::max);
    if worst > 0.0 {
        (worst - best) / worst
    } else {
        0.0
    }
}

/// How one subject's sweep ended: every ef measured, or a failure and the ef
/// it happened at.
pub type SweepResult = Result<Vec<EfMeasurement>, (usize, Failure)>;

/// Measures every `ef` for every subject, reporting each pass to
/// `progress`; one result per subject, in order.
///
/// The timed passes of one ef are spread over the whole sweep: each of the
/// `runs` rounds walks every ef once, so an ef's passes are seconds apart
/// rather than back to back. The memory system of a shared machine changes
/// speed over seconds (other tenants' cache and memory traffic); passes
/// spread in time sample those changes instead of all landing in one slow
/// spell, and the best of them is steadier from run to run. Within a round
/// the subjects of an ef take turns (A B A B ...). A subject that fails is
/// dropped from the rest of the sweep; the others go on.
pub fn measure_sweep(
    sandbox: &Sandbox,
    subjects: &[Subject<'_>],
    work: &Workload<'_>,
    protocol: &Protocol,
    efs: &[usize],
    progress: &dyn Progress,
) -> Vec<SweepResult> {
    let mut sweep = Sweep {
        sandbox,
        subjects,
        work,
        protocol,
        progress,
        scorers: vec![vec![Scorer::default(); efs.len()]; subjects.len()],
        failed: vec![None; subjects.len()],
    };
    let mut seconds = vec![vec![Vec::new(); efs.len()]; subjects.len()];
    let mut restores = vec![vec![Vec::new(); efs.len()]; subjects.len()];
    let mut retries = vec![0; efs.len()];

    // Warm-up round: also checks every ef's answers before any timing.
    for (e, &ef) in efs.iter().enumerate() {
        for _ in 0..protocol.warmup {
            sweep.round_step(e, ef, Metering::Timing, |_, _| {});
        }
    }
    let mut pending: Vec<usize> = (0..efs.len()).collect();
    loop {
        for per_ef in seconds.iter_mut().chain(restores.iter_mut()) {
            for &e in &pending {
                per_ef[e].clear();
            }
        }
        for _ in 0..protocol.runs {
            for &e in &pending {
                sweep.round_step(e, efs[e], Metering::Timing, |i, out| {
                    seconds[i][e].push(out.seconds);
                    restores[i][e].push(out.restore_seconds);
                });
            }
        }
        // Efs whose passes spread too much, for any subject still standing.
        let too_spread: Vec<usize> = pending
            .iter()
            .copied()
            .filter(|&e| retries[e] < protocol.retries)
            .filter(|&e| {
                (0..subjects.len()).any(|i| {
                    sweep.failed[i].is_none() && spread(&seconds[i][e]) > protocol.max_spread
                })
            })
            .collect();
        if too_spread.is_empty() {
            break;
        }
        for &e in &too_spread {
            retries[e] += 1;
        }
        let standing = sweep.failed.iter().filter(|f| f.is_none()).count();
        progress.extend((protocol.runs * standing * too_spread.len()) as u64);
        pending = too_spread;
    }

    // Instructions are counted by the wasm engine only.
    let mut fuel = vec![vec![None; efs.len()]; subjects.len()];
    if protocol.fuel {
        for (e, &ef) in efs.iter().enumerate() {
            sweep.round_step(e, ef, Metering::Fuel, |i, out| {
                fuel[i][e] = out.fuel.map(|f| f as f64 / work.dataset.n_test() as f64)
            });
        }
    }

    let Sweep {
        scorers, failed, ..
    } = sweep;
    scorers
        .into_iter()
        .zip(seconds)
        .zip(restores)
        .zip(fuel)
        .zip(failed)
        .map(
            |((((scorers, seconds), restores), fuel), failed)| match failed {
                Some(failure) => Err(failure),
                None => Ok(efs
                    .iter()
                    .zip(scorers)
                    .zip(seconds)
                    .zip(restores)
                    .zip(fuel)
                    .zip(&retries)
                    .map(
                        |(
                            ((((&ef, scorer), pass_seconds), restore_seconds), fuel_per_query),
                            &retries,
                        )| {
                            EfMeasurement {
                                ef,
                                recall: scorer.recall,
                                noisy: spread(&pass_seconds) > protocol.max_spread,
                                pass_seconds,
                                restore_seconds,
                                fuel_per_query,
                                retries,
                            }
                        },
                    )
                    .collect()),
            },
        )
        .collect()
}

/// The state of a sweep: what every pass needs, and who has failed.
struct Sweep<'s, 'a> {
    sandbox: &'s Sandbox,
    subjects: &'s [Subject<'a>],
    work: &'s Workload<'a>,
    protocol: &'s Protocol,
    progress: &'s dyn Progress,
    /// Per subject, per ef.
    scorers: Vec<Vec<Scorer>>,
    failed: Vec<Option<(usize, Failure)>>,
}

impl Sweep<'_, '_> {
    /// One pass of ef number `e` for every subject still standing, in turn;
    /// `record` gets each successful pass.
    fn round_step(
        &mut self,
        e: usize,
        ef: usize,
        metering: Metering,
        mut record: impl FnMut(usize, &PassOutput),
    ) {
        let detail = format!("ef={ef}");
        for i in 0..self.subjects.len() {
            if self.failed[i].is_some() {
                continue;
            }
            if metering == Metering::Fuel && !matches!(self.subjects[i].runner, Runner::Wasm(_)) {
                continue;
            }
            match self.pass(i, e, ef, metering) {
                Ok(out) => record(i, &out),
                Err(failure) => self.failed[i] = Some((ef, failure)),
            }
            self.progress.step(&detail);
        }
    }

    /// One pass: a fresh instance (or process) restored from the saved
    /// index, the batch searched, the answers validated and scored.
    fn pass(
        &mut self,
        i: usize,
        e: usize,
        ef: usize,
        metering: Metering,
    ) -> Result<PassOutput, Failure> {
        within_deadline(self.protocol.deadline)?;
        let (s, work) = (&self.subjects[i], self.work);
        let (queries, dim, k) = (work.guest_queries, work.dataset.dim, work.k);
        let out = match s.runner {
            Runner::Wasm(kernel) => kernel
                .restore(self.sandbox, metering, s.index)
                .and_then(|searcher| searcher.search_batch(self.sandbox, queries, dim, k, ef)),
            Runner::Native(kernel) => kernel.pass(s.index, queries, dim, k, ef),
        }?;
        self.scorers[i][e].score(work, &out.ids)?;
        Ok(out)
    }
}

/// Validates each pass's answers and keeps the lowest recall; recall is only
/// recomputed when the answers change.
#[derive(Clone)]
struct Scorer {
    recall: f64,
    previous: Option<Vec<u32>>,
}

impl Default for Scorer {
    fn default() -> Self {
        Scorer {
            recall: f64::INFINITY,
            previous: None,
        }
    }
}

impl Scorer {
    fn score(&mut self, work: &Workload<'_>, ids: &[u32]) -> Result<(), Failure> {
        let data = work.dataset;
        validate_answers(ids, data.n_test(), work.k, data.n_train())?;
        if self.previous.as_deref() != Some(ids) {
            self.recall = self.recall.min(recall_at_k(data, ids, work.k));
            self.previous = Some(ids.to_vec());
        }
        Ok(())
    }
}

/// Mean recall@k of validated answers (`queries × k` ids), ann-benchmarks'
/// way: distances recomputed on the host from the original vectors.
pub fn recall_at_k(data: &Dataset, ids: &[u32], k: usize) -> f64 {
    let mut hits = 0usize;
    let mut returned = Vec::with_capacity(k);
    for (q, answer) in ids.chunks_exact(k).enumerate() {
        let query = data.test_row(q);
        returned.clear();
        returned.extend(
            answer
                .iter()
                .map(|&id| data.metric.distance(query, data.train_row(id as usize))),
        );
        hits += hits_at_k(data.true_distances(q), &returned, k);
    }
    hits as f64 / ids.len() as f64
}

/// A core held by one measuring thread; released when dropped.
pub struct CoreClaim {
    core: Option<usize>,
    /// The lock that holds the core against other threads and processes.
    _lock: Option<std::fs::File>,
}

impl CoreClaim {
    pub fn core(&self) -> Option<usize> {
        self.core
    }
}

/// Claims a core of its own for the calling measuring thread and pins the
/// thread to it, so a measurement is neither moved between cores mid-pass
/// nor made to share its core with another measurement, in this process or
/// any other anneval process on the machine (a lock file per core, in the
/// temporary directory). Cores are tried from the last one down (core 0 runs
/// the epoch ticker and most interrupts). When every core is taken, or the
/// OS refuses, the thread is not pinned.
pub fn claim_core() -> CoreClaim {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dir = std::env::temp_dir().join("anneval-cores");
    let _ = std::fs::create_dir_all(&dir);
    for core in (0..cores).rev() {
        let Ok(lock) = std::fs::File::create(dir.join(format!("{core}.lock"))) else {
            continue;
        };
        if lock.try_lock().is_ok() {
            return CoreClaim {
                core: pin_current_thread(core),
                _lock: Some(lock),
            };
        }
    }
    CoreClaim {
        core: None,
        _lock: None,
    }
}

/// Pins the calling thread to `core`.
pub fn pin_current_thread(core: usize) -> Option<usize> {
    // SAFETY: sched_setaffinity on the calling thread (pid 0) with a zeroed,
    // then filled, cpu_set_t of the right size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        let ok = libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) == 0;
        ok.then_some(core)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::Metric;
    use crate::dataset::split::QuerySet;

    #[test]
    fn recall_counts_hits_by_distance_not_by_id() {
        // Two base points at the same distance from the query: either is a hit.
        let data = Dataset {
            name: "t".into(),
            metric: Metric::Euclidean,
            dim: 1,
            train: vec![-1.0, 1.0, 5.0],
            test: vec![0.0],
            neighbors: vec![0, 1, 2],
            distances: vec![1.0, 1.0, 5.0],
            gt_k: 3,
            queries: QuerySet::All,
        };
        assert_eq!(recall_at_k(&data, &[1], 1), 1.0);
        assert_eq!(recall_at_k(&data, &[2], 1), 0.0);
        assert_eq!(recall_at_k(&data, &[2, 0], 2), 0.5);
    }

    #[test]
    fn concurrent_measurements_get_cores_of_their_own() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (a, b) = std::thread::scope(|s| {
            let (tx, rx) = std::sync::mpsc::channel();
            let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
            let holder = s.spawn(move || {
                let claim = claim_core();
                tx.send(claim.core()).unwrap();
                done_rx.recv().unwrap();
            });
            let first = rx.recv().unwrap();
            let second = s.spawn(claim_core).join().unwrap().core();
            done_tx.send(()).unwrap();
            holder.join().unwrap();
            (first, second)
        });
        if cores > 1 && a.is_some() && b.is_some() {
            assert_ne!(a, b, "two live claims share a core");
        }
        // Released claims are handed out again.
        let again = std::thread::spawn(|| claim_core().core()).join().unwrap();
        assert_eq!(again, a);
    }

    #[test]
    fn spread_is_relative_to_the_slowest_pass() {
        assert_eq!(spread(&[1.0, 1.0]), 0.0);
        assert!((spread(&[0.9, 1.0]) - 0.1).abs() < 1e-12);
        assert_eq!(spread(&[]), 0.0);
    }
}
