//! The service's workers: OS threads off the async runtime, at most one per
//! core (two measurements on one core ruin both numbers; each measurement
//! also claims its core, see `measure::claim_core`), fed from a bounded
//! queue. A full queue refuses at once (the handler answers 429). At
//! shutdown the running work finishes and is recorded; queued work is
//! recorded as interrupted.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::api::{
    self, BatchResponse, BatchResult, DatasetKey, Resolved, RewardResponse, ScoreResponse,
};
use super::gather::{Gathering, Member};
use super::ledger::{Ledger, Measured, Status};
use super::metrics::Metrics;
use crate::dataset::split;
use crate::dataset::subsample::subsample;
use crate::dataset::{Dataset, registry};
use crate::evaluation::Evaluation;
use crate::evaluator::{Candidate, Engine, Evaluator, Quiet};
use crate::verdict::Verdict;

/// What a waiting handler gets back: the answer's JSON, or an HTTP status
/// and a message.
pub type Reply = Result<serde_json::Value, (u16, String)>;

pub enum Work {
    Single(Candidate),
    /// Measured together with the reference kernel.
    Batch(Vec<Candidate>),
    /// Single requests gathered while they waited, measured together with
    /// the reference kernel; each member is answered on its own.
    Gathered(Arc<Gathering>),
}

pub struct Job {
    /// Ledger ids: the evaluation's; for a batch, the batch's then each
    /// candidate's; for a gathering, the run's (its members carry theirs).
    pub ids: Vec<String>,
    pub work: Work,
    pub resolved: Resolved,
    /// Absent when the client did not wait.
    pub reply: Option<oneshot::Sender<Reply>>,
}

pub struct Pool {
    sender: Mutex<Option<SyncSender<Job>>>,
    stopping: Arc<AtomicBool>,
    handles: Mutex<Vec<JoinHandle<()>>>,
    pub workers: usize,
    pub metrics: Arc<Metrics>,
}

/// What every worker shares.
struct Shared {
    evaluator: Evaluator,
    ledger: Arc<Ledger>,
    metrics: Arc<Metrics>,
    datasets: DatasetCache,
    stopping: Arc<AtomicBool>,
    /// Wall-clock budget of one evaluation, from when a worker takes it.
    budget: Duration,
}

impl Pool {
    /// Starts `workers` threads (capped at the number of cores) behind a
    /// queue holding `queue` jobs.
    pub fn start(
        workers: usize,
        queue: usize,
        evaluator: Evaluator,
        ledger: Arc<Ledger>,
        budget: Duration,
        data_dir: PathBuf,
        cache_dir: PathBuf,
    ) -> Pool {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let workers = workers.clamp(1, cores);
        let (sender, receiver) = sync_channel::<Job>(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        let metrics = Arc::new(Metrics::default());
        let stopping = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            evaluator,
            ledger,
            metrics: metrics.clone(),
            datasets: DatasetCache::new(data_dir, cache_dir),
            stopping: stopping.clone(),
            budget,
        });
        let handles = (0..workers)
            .map(|i| {
                let (shared, receiver) = (shared.clone(), receiver.clone());
                std::thread::Builder::new()
                    .name(format!("anneval-worker-{i}"))
                    .spawn(move || work(&shared, &receiver))
                    .expect("spawning a worker thread")
            })
            .collect();
        Pool {
            sender: Mutex::new(Some(sender)),
            stopping,
            handles: Mutex::new(handles),
            workers,
            metrics,
        }
    }

    /// Queues `job`; gives it back when the queue is full or closed.
    pub fn submit(&self, job: Job) -> Result<(), Box<Job>> {
        let sender = self.sender.lock().unwrap_or_else(|e| e.into_inner());
        let Some(sender) = sender.as_ref() else {
            return Err(Box::new(job));
        };
        match sender.try_send(job) {
            Ok(()) => {
                self.metrics.queued.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => Err(Box::new(job)),
        }
    }

    /// Stops taking work: running jobs finish (for up to `grace`), queued
    /// ones are recorded as interrupted.
    pub fn shutdown(&self, grace: Duration) {
        self.stopping.store(true, Ordering::SeqCst);
        self.sender.lock().unwrap_or_else(|e| e.into_inner()).take();
        let start = Instant::now();
        let handles = std::mem::take(&mut *self.handles.lock().unwrap_or_else(|e| e.into_inner()));
        for handle in handles {
            while !handle.is_finished() && start.elapsed() < grace {
                std::thread::sleep(Duration::from_millis(50));
            }
            if handle.is_finished() {
                let _ = handle.join();
            }
        }
    }
}

fn work(shared: &Shared, receiver: &Mutex<Receiver<Job>>) {
    loop {
        let job = {
            let receiver = receiver.lock().unwrap_or_else(|e| e.into_inner());
            receiver.recv()
        };
        let Ok(job) = job else { return };
        shared.metrics.queued.fetch_sub(1, Ordering::Relaxed);
        if shared.stopping.load(Ordering::SeqCst) {
            let refusal = (
                503,
                "the service is shutting down; submit again".to_string(),
            );
            answer_all(shared, job, Err(refusal));
            shared.metrics.interrupted.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        shared.metrics.busy.fetch_add(1, Ordering::Relaxed);
        if let Work::Gathered(gathering) = &job.work {
            // Closed now: later requests open a new gathering.
            let members = gathering.close();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_gathered(shared, &job.ids[0], &members, &job.resolved)
            }))
            .unwrap_or_else(|_| Err(bug()));
            match outcome {
                Ok(answers) => {
                    for (member, answer) in members.into_iter().zip(answers) {
                        let _ = member.reply.send(Ok(answer));
                    }
                }
                Err(e) => {
                    let _ = shared.ledger.set_status(&job.ids[0], Status::Interrupted);
                    fail_members(shared, members, e);
                }
            }
            shared.metrics.busy.fetch_sub(1, Ordering::Relaxed);
            continue;
        }
        let ids = job.ids.clone();
        let reply = job.reply;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run(shared, &ids, job.work, &job.resolved)
        }))
        .unwrap_or_else(|_| Err(bug()));
        if outcome.is_err() {
            for id in &ids {
                let _ = shared.ledger.set_status(id, Status::Interrupted);
            }
        }
        shared.metrics.busy.fetch_sub(1, Ordering::Relaxed);
        if let Some(reply) = reply {
            let _ = reply.send(outcome);
        }
    }
}

fn bug() -> (u16, String) {
    (
        500,
        "anneval failed while evaluating (a bug); the job was not recorded".into(),
    )
}

/// Answers a job that will not run: its ids are interrupted, and every
/// waiting client (a gathering's members included) gets `outcome`.
fn answer_all(shared: &Shared, job: Job, outcome: Reply) {
    for id in &job.ids {
        let _ = shared.ledger.set_status(id, Status::Interrupted);
    }
    if let Work::Gathered(gathering) = &job.work {
        let error = outcome.clone().err().unwrap_or_else(bug);
        fail_members(shared, gathering.close(), error);
    }
    if let Some(reply) = job.reply {
        let _ = reply.send(outcome);
    }
}

fn fail_members(shared: &Shared, members: Vec<Member>, error: (u16, String)) {
    for member in members {
        let _ = shared.ledger.set_status(&member.id, Status::Interrupted);
        let _ = member.reply.send(Err(error.clone()));
    }
}

/// The dataset a job names, with its options checked against it.
fn dataset_for(shared: &Shared, r: &Resolved) -> Result<Arc<Dataset>, (u16, String)> {
    let data = shared
        .datasets
        .get(&r.dataset)
        .map_err(|e| (500, format!("loading dataset {}: {e:#}", r.dataset.name)))?;
    r.opts.check(&data).map_err(|e| (400, e))?;
    Ok(data)
}

/// Measures `candidates` in one run together with the reference kernel:
/// the reference's evaluation, then each candidate's with its normalised
/// reward (reward / the reference's; null unless the reference is `ok`
/// with a positive reward). Each `ok` source candidate's measurement joins
/// the exemplar pool.
fn run_with_reference(
    shared: &Shared,
    ids: &[String],
    candidates: Vec<Candidate>,
    data: &Dataset,
    r: &Resolved,
) -> (Evaluation, Vec<(Evaluation, Option<f64>)>) {
    let mut opts = r.opts.clone();
    opts.deadline = Some(Instant::now() + shared.budget);
    let entries: Vec<(Candidate, Engine)> = std::iter::once(r.reference())
        .chain(candidates)
        .map(|c| (c, r.engine))
        .collect();
    let mut evals = shared
        .evaluator
        .evaluate_entries(&entries, data, &opts, &Quiet)
        .into_iter();
    let reference = evals.next().expect("the reference's evaluation");
    shared
        .metrics
        .finished(reference.verdict, reference.seconds);
    let options = api::options_digest(r);
    let results = evals
        .zip(&entries[1..])
        .zip(ids)
        .map(|((evaluation, (candidate, _)), id)| {
            shared
                .metrics
                .finished(evaluation.verdict, evaluation.seconds);
            let normalized = (reference.verdict == Verdict::Ok && reference.reward > 0.0)
                .then(|| evaluation.reward / reference.reward);
            let pooled = (evaluation.verdict == Verdict::Ok)
                .then_some(normalized)
                .flatten();
            if let (Some(normalized), Some((language, source, digest))) =
                (pooled, api::source_identity(candidate))
            {
                let _ = shared.ledger.add_exemplar(&Measured {
                    id: id.clone(),
                    options: options.clone(),
                    candidate: digest,
                    language: language.to_string(),
                    source: source.to_string(),
                    normalized,
                    reward: evaluation.reward,
                    summary: api::curve_summary(&evaluation),
                });
            }
            (evaluation, normalized)
        })
        .collect();
    (reference, results)
}

/// A gathering's run: every member's answer, stored under its id.
fn run_gathered(
    shared: &Shared,
    run_id: &str,
    members: &[Member],
    r: &Resolved,
) -> Result<Vec<serde_json::Value>, (u16, String)> {
    let _ = shared.ledger.set_status(run_id, Status::Running);
    for member in members {
        let _ = shared.ledger.set_status(&member.id, Status::Running);
    }
    let data = dataset_for(shared, r)?;
    let ids: Vec<String> = members.iter().map(|m| m.id.clone()).collect();
    let candidates = members.iter().map(|m| m.candidate.clone()).collect();
    let (reference, results) = run_with_reference(shared, &ids, candidates, &data, r);
    let store = |id: &str, value: &serde_json::Value| {
        shared
            .ledger
            .finish(id, value)
            .map_err(|e| (500, format!("recording the result: {e:#}")))
    };
    let mut answers = Vec::new();
    for ((evaluation, normalized_reward), id) in results.into_iter().zip(&ids) {
        let answer = serde_json::to_value(RewardResponse {
            id: id.clone(),
            cached: false,
            normalized_reward,
            reference_reward: reference.reward,
            run: run_id.to_string(),
            run_size: ids.len(),
            evaluation,
        })
        .map_err(|e| (500, e.to_string()))?;
        store(id, &answer)?;
        answers.push(answer);
    }
    store(
        run_id,
        &serde_json::json!({ "reference": reference, "members": ids }),
    )?;
    Ok(answers)
}

fn run(shared: &Shared, ids: &[String], work: Work, r: &Resolved) -> Reply {
    for id in ids {
        let _ = shared.ledger.set_status(id, Status::Running);
    }
    let data = dataset_for(shared, r)?;
    let store = |id: &str, value: &serde_json::Value| {
        shared
            .ledger
            .finish(id, value)
            .map_err(|e| (500, format!("recording the result: {e:#}")))
    };
    match work {
        Work::Single(candidate) => {
            let mut opts = r.opts.clone();
            opts.deadline = Some(Instant::now() + shared.budget);
            let evaluation = shared
                .evaluator
                .evaluate_on(&candidate, r.engine, &data, &opts, &Quiet);
            shared
                .metrics
                .finished(evaluation.verdict, evaluation.seconds);
            let answer = serde_json::to_value(ScoreResponse {
                id: ids[0].clone(),
                cached: false,
                evaluation,
            })
            .map_err(|e| (500, e.to_string()))?;
            store(&ids[0], &answer)?;
            Ok(answer)
        }
        Work::Batch(candidates) => {
            let (reference, evaluated) =
                run_with_reference(shared, &ids[1..], candidates, &data, r);
            let mut results = Vec::new();
            for ((evaluation, normalized_reward), id) in evaluated.into_iter().zip(&ids[1..]) {
                let result = BatchResult {
                    id: id.clone(),
                    normalized_reward,
                    evaluation,
                };
                store(
                    id,
                    &serde_json::to_value(&result).map_err(|e| (500, e.to_string()))?,
                )?;
                results.push(result);
            }
            let answer = serde_json::to_value(BatchResponse {
                id: ids[0].clone(),
                cached: false,
                reference,
                results,
            })
            .map_err(|e| (500, e.to_string()))?;
            store(&ids[0], &answer)?;
            Ok(answer)
        }
        Work::Gathered(_) => Err((500, "a gathering is run by run_gathered".into())),
    }
}

/// Datasets loaded for the service, kept in memory: a trainer scores many
/// candidates on the same set.
struct DatasetCache {
    data_dir: PathBuf,
    cache_dir: PathBuf,
    loaded: Mutex<Vec<(DatasetKey, Arc<Dataset>)>>,
}

/// Datasets kept in memory at once.
const DATASETS_KEPT: usize = 4;

impl DatasetCache {
    fn new(data_dir: PathBuf, cache_dir: PathBuf) -> Self {
        DatasetCache {
            data_dir,
            cache_dir,
            loaded: Mutex::new(Vec::new()),
        }
    }

    fn get(&self, key: &DatasetKey) -> anyhow::Result<Arc<Dataset>> {
        if let Some((_, data)) = self.lock().iter().find(|(k, _)| k == key) {
            return Ok(data.clone());
        }
        let data = registry::open(&key.name, &self.data_dir, &|_| {})?;
        let data = split::select(data, key.queries);
        let data = Arc::new(subsample(
            data,
            key.max_base,
            key.max_queries,
            &self.cache_dir,
            &|_| {},
        )?);
        let mut loaded = self.lock();
        if loaded.len() == DATASETS_KEPT {
            loaded.remove(0);
        }
        loaded.push((key.clone(), data.clone()));
        Ok(data)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(DatasetKey, Arc<Dataset>)>> {
        self.loaded.lock().unwrap_or_else(|e| e.into_inner())
    }
}
