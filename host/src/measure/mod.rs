//! The measurement protocol, shared by `score`, `gate`, `serve` and
//! `confirm`.
//!
//! A sweep measures every kernel measured together:
//! 1. **probes**: one untimed-for-the-reward pass at each ef the sweep policy
//!    ([`sweep`]) asks for: the band sweep climbs and fills in until it has
//!    bracketed the reward band; an explicit sweep probes exactly its listed
//!    efs. A probe's answers are validated and its recall kept, so it is
//!    also that ef's warm-up; its time sizes the timed passes;
//! 2. **timed rounds**: `runs` rounds; each walks every kernel's timed efs
//!    once (slot by slot: kernel A's j-th ef beside kernel B's j-th), and
//!    the kernels take turns in an order rotated every round (A B, then
//!    B A), so neither always runs first and drift of the machine
//!    (frequency, other tenants' memory traffic) hits both alike; one ef's
//!    passes are spread over the whole sweep;
//! 3. a timed pass is long enough to measure: as many calls as needed to
//!    last [`Protocol::min_pass_seconds`] (longer when a kernel has few
//!    timed efs: a round lasts at least [`MIN_ROUND_SECONDS`]), **each call
//!    on a fresh instance** restored from the saved index (so no instance
//!    sees a query twice), their times added up. A wasm timed call replays
//!    its ef's probe on the engine without deadline checks (see `sandbox`):
//!    only an ef whose probe finished is ever timed;
//! 4. slots whose passes spread more than `max_spread` ((best − worst) /
//!    best QPS) for any kernel are measured again, `runs` more rounds over
//!    just those slots, up to `retries` times; the new passes *replace* the
//!    old, so a noisy kernel gets no extra chances at a lucky best; a slot
//!    still too spread is kept and flagged noisy;
//! 5. one untimed call per timed ef on the fuel-metering engine counts
//!    instructions.
//!
//! Every call's answers are validated; the recall kept for an ef is the
//! lowest any of its calls achieved (probe, timed and fuel alike). The
//! measuring thread holds a core of its own ([`claim_core`]) where the OS
//! allows.
//!
//! Pass `r` of every timed ef forms replicate curve `r`: the spread of the
//! rewards of the replicates is the reward's coefficient of variation, and
//! the replicates are what the gate compares, pairwise, between two kernels.

pub mod sweep;
pub mod wall;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::dataset::Dataset;
use crate::evaluator::Progress;
use crate::guest::{KernelComponent, PassOutput};
use crate::metrics::hits_at_k;
use crate::native::NativeKernel;
use crate::sandbox::{Metering, ReplayLost, Sandbox};
use crate::validate::validate_answers;
use crate::verdict::{Failure, Verdict};
use sweep::{Planner, Sweep};
use wall::{CallKind, WallTime};

/// Calls per timed pass at most, however fast a call is.
pub const MAX_CALLS_PER_PASS: usize = 64;

/// A kernel's timed round lasts at least this long: with few timed efs its
/// passes are made longer, so that its `runs` passes of one ef do not all
/// fall into one slow spell of the machine (spells last seconds). Longer
/// passes only lower a pass's noise, so a kernel gains nothing by having
/// fewer efs timed.
pub const MIN_ROUND_SECONDS: f64 = 1.0;

/// How passes are run.
#[derive(Clone, Debug)]
pub struct Protocol {
    /// Which efs are probed and timed.
    pub sweep: Sweep,
    /// The reward's recall band, which the band sweep brackets.
    pub band: (f64, f64),
    pub runs: usize,
    /// (best − worst) / best above which an ef is measured again.
    pub max_spread: f64,
    /// How many times a too-spread ef is measured again.
    pub retries: usize,
    /// A timed pass makes as many calls (each on a fresh instance) as it
    /// takes to last this long, judged by the probe's time.
    pub min_pass_seconds: f64,
    /// Whether to run the fuel-metering pass.
    pub fuel: bool,
    /// When the whole evaluation must be over.
    pub deadline: Option<Instant>,
}

impl Default for Protocol {
    fn default() -> Self {
        Protocol {
            sweep: Sweep::Band,
            band: (0.85, 0.95),
            runs: 3,
            max_spread: 0.10,
            retries: 2,
            min_pass_seconds: 0.1,
            fuel: true,
            deadline: None,
        }
    }
}

/// The queries handed to every kernel, and how answers are checked.
pub struct Workload<'a> {
    pub dataset: &'a Dataset,
    /// The queries as the guest sees them (unit-normalised for angular),
    /// shared with the threads replayed calls run on.
    pub guest_queries: Arc<[f32]>,
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
    /// The saved index, shared with the threads replayed calls run on.
    pub index: Arc<[u8]>,
}

/// One timed `ef` of one kernel, measured.
#[derive(Clone, Debug, PartialEq)]
pub struct EfMeasurement {
    pub ef: usize,
    pub recall: f64,
    /// Host-timed seconds of each kept timed pass (warm-up excluded): the
    /// sum of its calls' times.
    pub pass_seconds: Vec<f64>,
    /// Calls (each a fresh instance answering the whole batch) per pass.
    pub calls_per_pass: usize,
    /// Seconds each timed call spent restoring its searcher (untimed).
    pub restore_seconds: Vec<f64>,
    pub fuel_per_query: Option<f64>,
    /// How many times the ef was measured again for spreading too much.
    pub retries: usize,
    /// Whether the kept passes still spread more than allowed.
    pub noisy: bool,
}

impl EfMeasurement {
    /// Queries per second of each timed pass, for a batch of `queries`.
    pub fn pass_qps(&self, queries: usize) -> Vec<f64> {
        let timed = (queries * self.calls_per_pass) as f64;
        self.pass_seconds
            .iter()
            .map(|s| timed / s.max(1e-12))
            .collect()
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

/// One kernel's measured sweep.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Measured {
    /// The timed efs, ascending.
    pub efs: Vec<EfMeasurement>,
    /// Every probed (ef, recall), ascending in ef.
    pub probed: Vec<(usize, f64)>,
    /// Why the band sweep timed nothing (reward 0), when it did not.
    pub never_reached: Option<String>,
}

/// How one subject's sweep ended: measured, or a failure and the ef it
/// happened at.
pub type SweepResult = Result<Measured, (usize, Failure)>;

/// Measures every subject's sweep, reporting each call to `progress`; one
/// result per subject, in order, with where its calls' time went (the
/// phases before the sweep left at 0). A subject that fails is dropped from
/// the rest of the sweep; the others go on.
pub fn measure_sweep(
    sandbox: &Sandbox,
    subjects: &[Subject<'_>],
    work: &Workload<'_>,
    protocol: &Protocol,
    progress: &dyn Progress,
) -> Vec<(SweepResult, WallTime)> {
    let n = subjects.len();
    let mut m = Measurement {
        sandbox,
        subjects,
        work,
        protocol,
        progress,
        scorers: vec![BTreeMap::new(); n],
        failed: vec![None; n],
        probed: vec![BTreeSet::new(); n],
        probe_seconds: vec![BTreeMap::new(); n],
        slowest_restore: vec![None; n],
        wall: vec![WallTime::default(); n],
    };

    // 1. Probes, the subjects taking turns.
    let mut planners: Vec<Planner> = (0..n)
        .map(|_| Planner::new(&protocol.sweep, protocol.band, work.k))
        .collect();
    progress.phase("probe", 0);
    loop {
        let mut probed_any = false;
        for (i, planner) in planners.iter_mut().enumerate() {
            if m.failed[i].is_some() {
                continue;
            }
            let Some(ef) = planner.next_probe() else {
                continue;
            };
            probed_any = true;
            progress.extend(1);
            if let Some(out) = m.call(i, ef, Metering::Deadline, CallKind::Probe) {
                planner.record(ef, m.scorers[i][&ef].recall);
                m.probe_seconds[i].insert(ef, out.seconds);
                m.probed[i].insert(ef);
            }
        }
        if !probed_any {
            break;
        }
    }

    // 2. Timed rounds over slots: slot j is each subject's j-th timed ef.
    // For the band sweep, efs whose probes answered identically are one
    // point of the curve, timed once, at the smallest of them.
    let timed: Vec<Vec<usize>> = planners
        .iter()
        .zip(&m.scorers)
        .map(|(planner, scorers)| match protocol.sweep {
            Sweep::Band => distinct_answers(planner.timed_efs(), scorers),
            Sweep::Efs(_) => planner.timed_efs(),
        })
        .collect();
    let calls: Vec<Vec<usize>> = timed
        .iter()
        .zip(&m.probe_seconds)
        .map(|(efs, probes)| {
            let min_pass = pass_seconds(protocol.min_pass_seconds, efs.len());
            efs.iter()
                .map(|ef| calls_per_pass(probes.get(ef).copied(), min_pass))
                .collect()
        })
        .collect();
    let slots = timed.iter().map(Vec::len).max().unwrap_or(0);
    let standing =
        |m: &Measurement<'_, '_>, i: usize, j: usize| m.failed[i].is_none() && j < timed[i].len();
    let steps: usize = (0..n)
        .flat_map(|i| calls[i].iter().map(|c| c * protocol.runs))
        .sum();
    progress.phase("sweep", steps as u64);
    let mut seconds: Vec<Vec<Vec<f64>>> = timed.iter().map(|t| vec![Vec::new(); t.len()]).collect();
    let mut restores = seconds.clone();
    let mut retries = vec![0; slots];
    let mut pending: Vec<usize> = (0..slots).collect();
    loop {
        for i in 0..n {
            for &j in pending.iter().filter(|&&j| j < timed[i].len()) {
                seconds[i][j].clear();
                restores[i][j].clear();
            }
        }
        for round in 0..protocol.runs {
            for &j in &pending {
                for i in (0..n).map(|x| (x + round) % n) {
                    if !standing(&m, i, j) {
                        continue;
                    }
                    if let Some((total, restored)) = m.timed_pass(i, timed[i][j], calls[i][j]) {
                        seconds[i][j].push(total);
                        restores[i][j].extend(restored);
                    }
                }
            }
        }
        let too_spread: Vec<usize> = pending
            .iter()
            .copied()
            .filter(|&j| retries[j] < protocol.retries)
            .filter(|&j| {
                (0..n).any(|i| standing(&m, i, j) && spread(&seconds[i][j]) > protocol.max_spread)
            })
            .collect();
        if too_spread.is_empty() {
            break;
        }
        for &j in &too_spread {
            retries[j] += 1;
        }
        let mut extra = 0;
        for (i, per_slot) in calls.iter().enumerate() {
            if m.failed[i].is_none() {
                extra += too_spread
                    .iter()
                    .filter_map(|&j| per_slot.get(j))
                    .map(|c| c * protocol.runs)
                    .sum::<usize>();
            }
        }
        progress.extend(extra as u64);
        pending = too_spread;
    }

    // 3. Instructions, counted by the wasm engine only.
    let mut fuel: Vec<Vec<Option<f64>>> = timed.iter().map(|t| vec![None; t.len()]).collect();
    if protocol.fuel {
        for j in 0..slots {
            for i in 0..n {
                if !standing(&m, i, j) || !matches!(subjects[i].runner, Runner::Wasm(_)) {
                    continue;
                }
                progress.extend(1);
                if let Some(out) = m.call(i, timed[i][j], Metering::Fuel, CallKind::Fuel) {
                    fuel[i][j] = out.fuel.map(|f| f as f64 / work.dataset.n_test() as f64);
                }
            }
        }
    }

    let Measurement {
        scorers,
        failed,
        wall,
        ..
    } = m;
    (0..n)
        .map(|i| {
            if let Some(failure) = failed[i].clone() {
                return (Err(failure), wall[i]);
            }
            let efs = timed[i]
                .iter()
                .enumerate()
                .map(|(j, &ef)| EfMeasurement {
                    ef,
                    recall: scorers[i][&ef].recall,
                    noisy: spread(&seconds[i][j]) > protocol.max_spread,
                    pass_seconds: seconds[i][j].clone(),
                    calls_per_pass: calls[i][j],
                    restore_seconds: restores[i][j].clone(),
                    fuel_per_query: fuel[i][j],
                    retries: retries[j],
                })
                .collect();
            let measured = Measured {
                efs,
                probed: planners[i].probed(),
                never_reached: planners[i].never_reached(),
            };
            (Ok(measured), wall[i])
        })
        .collect()
}

/// The efs of `efs` (ascending) whose probe's answers differ from those of
/// every smaller ef kept: a larger ef that answers exactly as a smaller one
/// is the same point of the curve, and timing it again adds nothing a
/// reward can use. (Dropping a point never raises a reward: the reward
/// integrates the curve's best QPS at each recall.)
fn distinct_answers(efs: Vec<usize>, scorers: &BTreeMap<usize, Scorer>) -> Vec<usize> {
    let answers = |ef: &usize| scorers.get(ef).and_then(|s| s.previous.as_deref());
    let mut kept: Vec<usize> = Vec::with_capacity(efs.len());
    for ef in efs {
        let same = answers(&ef).is_some_and(|a| kept.iter().any(|k| answers(k) == Some(a)));
        if !same {
            kept.push(ef);
        }
    }
    kept
}

/// How long each of a kernel's passes must last when it has `timed_efs`
/// efs: at least `min_pass_seconds`, and together at least
/// [`MIN_ROUND_SECONDS`] a round.
fn pass_seconds(min_pass_seconds: f64, timed_efs: usize) -> f64 {
    if min_pass_seconds <= 0.0 {
        return 0.0;
    }
    min_pass_seconds.max(MIN_ROUND_SECONDS / timed_efs.max(1) as f64)
}

/// Calls per timed pass: enough for `min_seconds` at the probe's pace.
fn calls_per_pass(probe_seconds: Option<f64>, min_seconds: f64) -> usize {
    match probe_seconds {
        Some(s) if s > 0.0 => ((min_seconds / s).ceil() as usize).clamp(1, MAX_CALLS_PER_PASS),
        _ => 1,
    }
}

/// The state of a measurement: what every call needs, and who has failed.
struct Measurement<'s, 'a> {
    sandbox: &'s Sandbox,
    subjects: &'s [Subject<'a>],
    work: &'s Workload<'a>,
    protocol: &'s Protocol,
    progress: &'s dyn Progress,
    /// Per subject, per ef.
    scorers: Vec<BTreeMap<usize, Scorer>>,
    failed: Vec<Option<(usize, Failure)>>,
    /// Per subject, the efs whose probe finished: the calls a timed pass
    /// may replay.
    probed: Vec<BTreeSet<usize>>,
    /// Per subject, each finished probe's search seconds.
    probe_seconds: Vec<BTreeMap<usize, f64>>,
    /// Per subject, the slowest restore so far.
    slowest_restore: Vec<Option<f64>>,
    /// Per subject, where its calls' time went.
    wall: Vec<WallTime>,
}

/// No call's deadline is shorter than this.
pub const CALL_DEADLINE_FLOOR: Duration = Duration::from_secs(5);
/// A probe may take this many times what the kernel's slowest earlier probe
/// took, scaled by the ratio of their efs.
pub const PROBE_DEADLINE_FACTOR: f64 = 20.0;
/// Multiply-adds per second an exhaustive scan surely beats in the sandbox
/// (simd128 does several billion), for the first probe's deadline.
const SCAN_RATE: f64 = 1e9;
/// Bytes per second any restore surely beats, for the first restore's
/// deadline.
const RESTORE_RATE: f64 = 10e6;

/// The deadline of a kernel's restore: [`PROBE_DEADLINE_FACTOR`] times its
/// slowest restore so far; for its first, the index's size at
/// [`RESTORE_RATE`]; within [`CALL_DEADLINE_FLOOR`] and `cap`.
pub fn restore_deadline(slowest: Option<f64>, index_bytes: usize, cap: Duration) -> Duration {
    let seconds = match slowest {
        Some(s) => PROBE_DEADLINE_FACTOR * s,
        None => index_bytes as f64 / RESTORE_RATE,
    };
    Duration::from_secs_f64(seconds.clamp(0.0, 1e9))
        .max(CALL_DEADLINE_FLOOR)
        .min(cap)
}

/// The deadline of a kernel's call at `ef` (a probe, a restore, a fuel
/// pass) and why, derived from the run: for its first probe, four times
/// what an exhaustive scan of the queries would take at [`SCAN_RATE`]; for
/// every later call, [`PROBE_DEADLINE_FACTOR`] times the larger of its
/// slowest finished probe and its probe at the nearest ef below scaled up
/// by the ratio of the efs (a cost that doubles with ef is allowed ten
/// times over, one that quadruples five times); never below
/// [`CALL_DEADLINE_FLOOR`] nor above `cap` (the configured deadline).
///
/// Only the nearest probe is scaled: a slow probe at a small ef is mostly
/// fixed cost (an instance's first touches of the index), and scaling it by
/// the whole ratio would let a kernel that hangs at ef 8 run for eight
/// times its ef-1 probe's 20x before it ends.
pub fn call_deadline(
    probes: &BTreeMap<usize, f64>,
    ef: usize,
    work: &Workload<'_>,
    cap: Duration,
) -> (Duration, String) {
    let scaled = probes.range(..=ef).next_back().map(|(&e, &s)| {
        (
            s * ef as f64 / e.max(1) as f64,
            format!("{PROBE_DEADLINE_FACTOR}x its probe at ef={e} ({s:.3} s), scaled to ef={ef}"),
        )
    });
    let slowest = probes
        .iter()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(&e, &s)| {
            (
                s,
                format!("{PROBE_DEADLINE_FACTOR}x its slowest probe, at ef={e} ({s:.3} s)"),
            )
        });
    let bound = scaled
        .into_iter()
        .chain(slowest)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let (seconds, why) = match bound {
        Some((s, why)) => (PROBE_DEADLINE_FACTOR * s, why),
        None => {
            let d = work.dataset;
            let scan = (d.n_train() * d.n_test() * d.dim) as f64 / SCAN_RATE;
            (
                4.0 * scan,
                format!(
                    "4x an exhaustive scan of the queries ({scan:.2} s at 1e9 multiply-adds/s)"
                ),
            )
        }
    };
    let deadline = Duration::from_secs_f64(seconds.clamp(0.0, 1e9)).max(CALL_DEADLINE_FLOOR);
    if deadline >= cap {
        return (cap, "the configured call deadline".into());
    }
    if deadline == CALL_DEADLINE_FLOOR {
        return (
            deadline,
            format!("the floor of {} s", CALL_DEADLINE_FLOOR.as_secs()),
        );
    }
    (deadline, why)
}

impl Measurement<'_, '_> {
    /// One timed pass: `calls` calls, each on a fresh instance; their summed
    /// search seconds and each call's restore seconds. `None` (and the
    /// subject marked failed) when a call fails. The calls replay the ef's
    /// probe without deadline checks; an ef never probed (none is, today)
    /// would keep them.
    fn timed_pass(&mut self, i: usize, ef: usize, calls: usize) -> Option<(f64, Vec<f64>)> {
        let metering = if self.probed[i].contains(&ef) {
            Metering::Replay
        } else {
            Metering::Deadline
        };
        let mut total = 0.0;
        let mut restores = Vec::with_capacity(calls);
        for _ in 0..calls {
            let out = self.call(i, ef, metering, CallKind::Timed)?;
            total += out.seconds;
            restores.push(out.restore_seconds);
        }
        Some((total, restores))
    }

    /// One call: a fresh instance (or process) restored from the saved
    /// index, the batch searched, the answers validated and scored. `None`
    /// (and the subject marked failed) when it fails.
    fn call(
        &mut self,
        i: usize,
        ef: usize,
        metering: Metering,
        kind: CallKind,
    ) -> Option<PassOutput> {
        let started = Instant::now();
        let result = self.try_call(i, ef, metering);
        let spent = started.elapsed().as_secs_f64();
        self.progress.step(&format!("ef={ef}"));
        match result {
            Ok(out) => {
                self.wall[i].add_call(kind, spent, out.restore_seconds, out.seconds);
                Some(out)
            }
            Err(failure) => {
                self.wall[i].add_failed(kind, spent);
                self.failed[i] = Some((ef, failure));
                None
            }
        }
    }

    fn try_call(&mut self, i: usize, ef: usize, metering: Metering) -> Result<PassOutput, Failure> {
        within_deadline(self.protocol.deadline)?;
        let (s, work) = (&self.subjects[i], self.work);
        let (dim, k) = (work.dataset.dim, work.k);
        let cap = self.sandbox.limits().call_timeout;
        let (deadline, why) = call_deadline(&self.probe_seconds[i], ef, work, cap);
        let out = match s.runner {
            Runner::Wasm(kernel) if metering == Metering::Replay => {
                replay_call(self.sandbox, kernel, s, work, ef)
            }
            Runner::Wasm(kernel) => kernel
                .restore_within(
                    self.sandbox,
                    metering,
                    &s.index,
                    restore_deadline(self.slowest_restore[i], s.index.len(), cap),
                    deadline,
                )
                .and_then(|searcher| {
                    searcher.search_batch(self.sandbox, &work.guest_queries, dim, k, ef)
                }),
            Runner::Native(kernel) => {
                kernel.pass_within(&s.index, &work.guest_queries, dim, k, ef, deadline)
            }
        }
        .map_err(|mut f| {
            if f.verdict == Verdict::Timeout && f.message.contains("deadline") {
                f.message = format!("{} (this call's deadline: {why})", f.message);
            }
            f
        })?;
        let restored = self.slowest_restore[i].get_or_insert(0.0);
        *restored = restored.max(out.restore_seconds);
        // A replay answers exactly as the call it replays: the sandbox is
        // deterministic, so anything else means the kernel found something
        // that differs between passes, and its time cannot be trusted.
        let replayed = metering == Metering::Replay;
        self.scorers[i]
            .entry(ef)
            .or_default()
            .score(work, &out.ids, replayed)?;
        Ok(out)
    }
}

/// A replayed (timed) wasm call: restored and searched on a thread of its
/// own, given up on with a `timeout` past the replay allowance (see
/// `sandbox`).
fn replay_call(
    sandbox: &Sandbox,
    kernel: &KernelComponent,
    s: &Subject<'_>,
    work: &Workload<'_>,
    ef: usize,
) -> Result<PassOutput, Failure> {
    let (dim, k) = (work.dataset.dim, work.k);
    let (thread_sandbox, kernel) = (sandbox.clone(), kernel.clone());
    let (index, queries) = (s.index.clone(), work.guest_queries.clone());
    let replayed = sandbox.replay(move || {
        kernel
            .restore(&thread_sandbox, Metering::Replay, &index)
            .and_then(|searcher| searcher.search_batch(&thread_sandbox, &queries, dim, k, ef))
    });
    match replayed {
        Ok(result) => result,
        Err(ReplayLost::Stuck(allowance)) => Err(Failure::new(
            Verdict::Timeout,
            format!(
                "a timed call ran for more than {:.0} s, although the same call had finished \
                 within its {:.0} s deadline when it was first made: the kernel behaved \
                 differently on two identical calls. A timed call cannot be interrupted; it \
                 goes on at the lowest priority until it ends, and its result is dropped",
                allowance.as_secs_f64(),
                sandbox.limits().call_timeout.as_secs_f64()
            ),
        )),
        Err(ReplayLost::NoThread(e)) => Err(Failure::internal(format!(
            "starting the thread of a timed call: {e}"
        ))),
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
    /// Scores one call's answers; a `replayed` call's must be exactly those
    /// of the calls before it at this ef (its probe's).
    fn score(&mut self, work: &Workload<'_>, ids: &[u32], replayed: bool) -> Result<(), Failure> {
        let data = work.dataset;
        validate_answers(ids, data.n_test(), work.k, data.n_train())?;
        if let (true, Some(previous)) = (replayed, &self.previous)
            && previous.as_slice() != ids
        {
            let differ = previous.iter().zip(ids).filter(|(a, b)| a != b).count();
            return Err(Failure::invalid_output(format!(
                "a timed call answered differently from the same call made before it \
                 ({differ} of {} ids differ): in the sandbox identical calls must give \
                 identical answers, so the kernel's answers depend on something that differs \
                 between passes, and its time cannot count",
                ids.len()
            )));
        }
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
    fn a_replay_must_answer_as_its_probe_did() {
        let data = Dataset {
            name: "t".into(),
            metric: Metric::Euclidean,
            dim: 1,
            train: vec![-1.0, 1.0, 5.0],
            test: vec![0.0, 4.0],
            neighbors: vec![0, 1, 2, 2, 1, 0],
            distances: vec![1.0, 1.0, 5.0, 1.0, 3.0, 5.0],
            gt_k: 3,
            queries: QuerySet::All,
        };
        let work = Workload {
            dataset: &data,
            guest_queries: data.test.clone().into(),
            k: 1,
        };
        let mut scorer = Scorer::default();
        scorer.score(&work, &[0, 1], false).unwrap();
        assert_eq!(scorer.recall, 0.5);
        scorer.score(&work, &[0, 1], true).unwrap();
        // Better answers in a replay are no excuse: they differ.
        let err = scorer.score(&work, &[0, 2], true).unwrap_err();
        assert_eq!(err.verdict, Verdict::InvalidOutput);
        assert!(err.message.contains("1 of 2 ids differ"), "{}", err.message);
        // Calls that are not replays (the native engine's) may differ; the
        // lowest recall is kept.
        scorer.score(&work, &[2, 0], false).unwrap();
        assert_eq!(scorer.recall, 0.0);
    }

    #[test]
    fn deadlines_follow_the_kernels_own_calls_within_floor_and_cap() {
        let data = Dataset {
            name: "t".into(),
            metric: Metric::Euclidean,
            dim: 100,
            train: vec![0.0; 100 * 100_000],
            test: vec![0.0; 100 * 10_000],
            neighbors: Vec::new(),
            distances: Vec::new(),
            gt_k: 0,
            queries: QuerySet::All,
        };
        let work = Workload {
            dataset: &data,
            guest_queries: Vec::new().into(),
            k: 10,
        };
        let cap = Duration::from_secs(120);
        // The first probe: 4x a scan of 1e11 multiply-adds at 1e9/s.
        let (first, why) = call_deadline(&BTreeMap::new(), 1, &work, cap);
        assert_eq!(first, Duration::from_secs(400).min(cap));
        assert_eq!(why, "the configured call deadline");
        let mut probes = BTreeMap::new();
        probes.insert(1, 0.01);
        probes.insert(4, 0.1);
        // 20x the slowest probe scaled to ef 16 (0.1 s x 4), above the floor.
        let (later, why) = call_deadline(&probes, 16, &work, cap);
        assert!((later.as_secs_f64() - 8.0).abs() < 1e-9, "{later:?}");
        assert!(why.contains("its probe at ef=4"), "{why}");
        // A smaller ef is not scaled down; fast kernels get the floor.
        assert_eq!(call_deadline(&probes, 2, &work, cap).0, CALL_DEADLINE_FLOOR);
        // Only the nearest probe below is scaled: a slow first probe (fixed
        // cost) counts as it is, not times the ratio of the efs.
        let warm: BTreeMap<usize, f64> = [(1, 0.05), (4, 0.02)].into_iter().collect();
        assert_eq!(call_deadline(&warm, 8, &work, cap).0, CALL_DEADLINE_FLOOR);
        let slow_first: BTreeMap<usize, f64> = [(1, 0.5), (4, 0.02)].into_iter().collect();
        let (first_bound, why) = call_deadline(&slow_first, 64, &work, cap);
        assert!(
            (first_bound.as_secs_f64() - 10.0).abs() < 1e-9,
            "{first_bound:?}"
        );
        assert!(why.contains("its slowest probe, at ef=1"), "{why}");
        // Past the slowest, the nearest probe scaled decides.
        let (scaled, why) = call_deadline(&slow_first, 1024, &work, cap);
        assert!((scaled.as_secs_f64() - 102.4).abs() < 1e-9, "{scaled:?}");
        assert!(why.contains("its probe at ef=4"), "{why}");
        let fast: BTreeMap<usize, f64> = [(8, 0.001)].into_iter().collect();
        let (floor, why) = call_deadline(&fast, 8, &work, cap);
        assert_eq!(
            (floor, why.as_str()),
            (CALL_DEADLINE_FLOOR, "the floor of 5 s")
        );
        assert_eq!(restore_deadline(None, 8 << 20, cap), CALL_DEADLINE_FLOOR);
        assert_eq!(restore_deadline(None, 2 << 30, cap), cap);
        assert_eq!(
            restore_deadline(Some(0.5), 8 << 20, cap),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn efs_that_answer_alike_are_timed_once_at_the_smallest() {
        let scorer = |ids: &[u32]| Scorer {
            recall: 0.5,
            previous: Some(ids.to_vec()),
        };
        let scorers: BTreeMap<usize, Scorer> = [
            (1, scorer(&[1, 2])),
            (2, scorer(&[1, 2])),
            (4, scorer(&[1, 3])),
            (8, scorer(&[1, 2])),
            (16, scorer(&[4, 3])),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            distinct_answers(vec![1, 2, 4, 8, 16], &scorers),
            vec![1, 4, 16]
        );
        // An ef without answers (none today) is kept.
        assert_eq!(distinct_answers(vec![2, 32], &scorers), vec![2, 32]);
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
    fn passes_last_long_enough_and_a_round_lasts_a_second() {
        // 7 efs: 0.1 s passes would make a 0.7 s round, so 1/7 s each.
        assert!((pass_seconds(0.1, 7) - 1.0 / 7.0).abs() < 1e-12);
        assert_eq!(pass_seconds(0.1, 30), 0.1);
        assert_eq!(pass_seconds(0.1, 1), 1.0);
        assert_eq!(pass_seconds(0.0, 1), 0.0, "0 asks for single calls");
        // A 7 ms call needs 15 calls for 0.1 s; never more than the cap.
        assert_eq!(calls_per_pass(Some(0.007), 0.1), 15);
        assert_eq!(calls_per_pass(Some(1e-6), 1.0), MAX_CALLS_PER_PASS);
        assert_eq!(calls_per_pass(Some(0.5), 0.1), 1);
        assert_eq!(calls_per_pass(None, 0.1), 1);
    }

    #[test]
    fn spread_is_relative_to_the_slowest_pass() {
        assert_eq!(spread(&[1.0, 1.0]), 0.0);
        assert!((spread(&[0.9, 1.0]) - 0.1).abs() < 1e-12);
        assert_eq!(spread(&[]), 0.0);
    }
}
