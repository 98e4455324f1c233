//! `anneval serve`: the reward service an RL trainer calls over HTTP.
//!
//! axum on tokio takes requests, validates them, answers identical ones from
//! the ledger ([`ledger`]), and hands the rest to a pool of worker threads
//! ([`workers`]) through a bounded queue: a full queue answers 429 with
//! `Retry-After`, an oversized body 413. Single candidates that want a
//! normalised reward gather into runs with the reference ([`gather`]);
//! OpenRLHF's remote reward (`POST /get_reward`) sends text, in which the
//! kernel is found ([`extract`]). Endpoints and fields are documented in
//! `openapi.yaml`.

pub mod api;
pub mod extract;
pub mod gather;
pub mod inflight;
pub mod ledger;
pub mod metrics;
pub mod workers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::sync::oneshot;

use api::{BadRequest, BatchRequest, CandidateSpec, ScoreRequest};
use gather::{Gatherer, Member};
use inflight::{Entry, InFlight, Lead};
use ledger::Ledger;
use workers::{Job, Pool, Reply, Work};

use crate::codebase::Codebases;
use crate::compile::{CompileLimits, Language};
use crate::dataset::registry;
use crate::evaluator::{Candidate, Evaluator};
use crate::sandbox::Limits;

/// How the service runs.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub addr: SocketAddr,
    /// Worker threads; capped at the number of cores.
    pub workers: usize,
    /// Jobs that may wait for a worker; more are refused with 429.
    pub queue: usize,
    pub db: PathBuf,
    /// Request bodies beyond this are refused with 413.
    pub max_body: usize,
    /// Wall-clock budget of one evaluation.
    pub budget: Duration,
    /// How long running work may take to finish at shutdown.
    pub grace: Duration,
    pub limits: Limits,
    pub cache_dir: PathBuf,
    pub data_dir: PathBuf,
    /// Codebases requests may name as their template (`template`).
    pub templates: Vec<PathBuf>,
}

#[derive(Clone)]
struct AppState {
    pool: Arc<Pool>,
    ledger: Arc<Ledger>,
    gatherer: Arc<Gatherer>,
    inflight: Arc<InFlight>,
    data_dir: PathBuf,
    max_source: usize,
    codebases: Arc<Codebases>,
}

/// Runs the service until SIGINT or SIGTERM.
pub fn run(config: ServeConfig) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: ServeConfig) -> Result<()> {
    let (ledger, interrupted) = Ledger::open(&config.db)?;
    let ledger = Arc::new(ledger);
    let compile = CompileLimits::default();
    let max_source = compile.max_source;
    let evaluator = Evaluator::new(config.limits.clone(), compile, &config.cache_dir)?;
    // Prepare the compiler now (the first time on a machine this builds the
    // guest's dependencies) rather than in the first request.
    let evaluator = tokio::task::spawn_blocking(move || {
        evaluator
            .compiler()
            .map(|_| ())
            .map_err(|f| anyhow::anyhow!(f.message))?;
        anyhow::Ok(evaluator)
    })
    .await??;
    let pool = Arc::new(Pool::start(
        config.workers,
        config.queue,
        evaluator,
        ledger.clone(),
        config.budget,
        config.data_dir.clone(),
        config.cache_dir.clone(),
    ));
    let state = AppState {
        pool: pool.clone(),
        ledger,
        gatherer: Arc::default(),
        inflight: Arc::default(),
        data_dir: config.data_dir.clone(),
        max_source,
        codebases: Arc::new(Codebases::load(&config.templates)?),
    };
    let app = Router::new()
        .route("/v1/score", post(score))
        .route("/v1/score/batch", post(batch))
        .route("/v1/reward", post(reward))
        .route("/get_reward", post(get_reward))
        .route("/v1/exemplars", get(exemplars))
        .route("/v1/evaluations/{id}", get(evaluation))
        .route("/v1/datasets", get(datasets))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(config.max_body))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("listening on {}", config.addr))?;
    eprintln!(
        "anneval serve: listening on http://{} ({} workers, queue {}, ledger {}{})",
        listener.local_addr()?,
        pool.workers,
        config.queue,
        config.db.display(),
        if interrupted > 0 {
            format!("; {interrupted} unfinished evaluations from before marked interrupted")
        } else {
            String::new()
        }
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving")?;
    eprintln!(
        "anneval serve: stopping; running work may take {} s to finish",
        config.grace.as_secs()
    );
    let grace = config.grace;
    tokio::task::spawn_blocking(move || pool.shutdown(grace)).await?;
    Ok(())
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}

fn error(status: u16, message: impl Into<String>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

/// Parses a JSON body of type `T`, refusing unknown fields.
fn parse<T: serde::de::DeserializeOwned>(body: &Bytes, own: &[&str]) -> Result<T, BadRequest> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| BadRequest(400, format!("the body is not valid JSON: {e}")))?;
    api::check_fields(&value, own)?;
    serde_json::from_value(value).map_err(|e| BadRequest(400, format!("invalid request: {e}")))
}

/// A registered dataset the service can use now: synthetic ones are made on
/// demand; the others must be in the data directory.
fn check_available(state: &AppState, name: &str) -> Result<(), BadRequest> {
    let entry = registry::lookup(name)
        .ok_or_else(|| BadRequest(400, format!("unknown dataset {name:?}")))?;
    if entry.synthetic.is_none() && !entry.local_path(&state.data_dir).exists() {
        return Err(BadRequest(
            400,
            format!(
                "dataset {name} is not on this server: run `anneval datasets fetch {name}` (or import) there"
            ),
        ));
    }
    Ok(())
}

/// Queues the job and, unless the client does not wait, waits for its
/// answer. A full queue is a 429 with a `Retry-After` estimate.
async fn dispatch(
    state: &AppState,
    job: Job,
    wait_for: Option<oneshot::Receiver<Reply>>,
) -> Response {
    let ids = job.ids.clone();
    if let Err(job) = state.pool.submit(job) {
        for id in &job.ids {
            let _ = state.ledger.forget(id);
        }
        return queue_full(state);
    }
    let Some(receiver) = wait_for else {
        return (
            StatusCode::ACCEPTED,
            axum::Json(json!({ "id": ids[0], "status": "queued" })),
        )
            .into_response();
    };
    reply_response(answer_of(receiver).await)
}

/// Seconds until a slot is likely free: the mean evaluation time times the
/// jobs ahead per worker, between 1 and 300.
fn retry_after(pool: &Pool) -> u64 {
    let queued = pool.metrics.queued.load(Ordering::Relaxed) as f64;
    let mean = pool.metrics.mean_seconds().unwrap_or(5.0);
    ((queued + 1.0) / pool.workers as f64 * mean)
        .clamp(1.0, 300.0)
        .ceil() as u64
}

/// The stored answer to an identical earlier request, marked `cached`.
fn cached_answer(state: &AppState, hash: &str) -> Option<serde_json::Value> {
    let (_, mut answer) = state.ledger.cached(hash).ok()??;
    state
        .pool
        .metrics
        .cache_hits
        .fetch_add(1, Ordering::Relaxed);
    answer["cached"] = json!(true);
    Some(answer)
}

fn from_ledger(state: &AppState, hash: &str) -> Option<Response> {
    cached_answer(state, hash).map(|answer| axum::Json(answer).into_response())
}

/// A single-candidate request's options and candidate, validated.
fn prepare_single(
    state: &AppState,
    request: &ScoreRequest,
) -> Result<(api::Resolved, Candidate), BadRequest> {
    let resolved = request.options.resolve(&state.codebases)?;
    let candidate = request
        .candidate
        .candidate(state.max_source, resolved.codebase.as_deref())?;
    check_available(state, &resolved.dataset.name)?;
    Ok((resolved, candidate))
}

async fn score(State(state): State<AppState>, body: Bytes) -> Response {
    let request: ScoreRequest = match parse(&body, &["candidate"]) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let (resolved, candidate) = match prepare_single(&state, &request) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let hash = api::content_hash("score", std::slice::from_ref(&candidate), &resolved);
    if let Some(answer) = from_ledger(&state, &hash) {
        return answer;
    }
    let wait = resolved.wait;
    // Only a client that waits joins, or is joined.
    let lead = match wait.then(|| state.inflight.enter(&hash)) {
        Some(Entry::Follow(receiver)) => return reply_response(answer_of(receiver).await),
        Some(Entry::Lead(lead)) => Some(lead),
        None => None,
    };
    let id = api::new_id();
    if let Err(e) = state.ledger.insert(
        &id,
        &hash,
        &serde_json::to_value(&request).unwrap_or_default(),
    ) {
        return error(500, format!("recording the request: {e:#}"));
    }
    let (sender, receiver) = oneshot::channel();
    let job = Job {
        ids: vec![id],
        work: Work::Single(candidate),
        resolved,
        reply: wait.then_some(sender),
    };
    let receiver = lead.map(|lead| lead.relay(receiver));
    dispatch(&state, job, receiver).await
}

fn reply_response(reply: workers::Reply) -> Response {
    match reply {
        Ok(answer) => axum::Json(answer).into_response(),
        Err((status, message)) => error(status, message),
    }
}

async fn batch(State(state): State<AppState>, body: Bytes) -> Response {
    let request: BatchRequest = match parse(&body, &["candidates"]) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let prepared = (|| {
        if request.candidates.is_empty() || request.candidates.len() > api::MAX_BATCH {
            return Err(BadRequest(
                400,
                format!("a batch holds 1 to {} candidates", api::MAX_BATCH),
            ));
        }
        let resolved = request.options.resolve(&state.codebases)?;
        let candidates = request
            .candidates
            .iter()
            .map(|c| c.candidate(state.max_source, resolved.codebase.as_deref()))
            .collect::<Result<Vec<_>, _>>()?;
        check_available(&state, &resolved.dataset.name)?;
        Ok((resolved, candidates))
    })();
    let (resolved, candidates) = match prepared {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let hash = api::content_hash("batch", &candidates, &resolved);
    if let Some(answer) = from_ledger(&state, &hash) {
        return answer;
    }
    let ids: Vec<String> = (0..=candidates.len()).map(|_| api::new_id()).collect();
    let recorded = (|| {
        state
            .ledger
            .insert(&ids[0], &hash, &serde_json::to_value(&request)?)?;
        for (i, (id, spec)) in ids[1..].iter().zip(&request.candidates).enumerate() {
            let member = json!({ "batch": ids[0], "index": i, "candidate": spec });
            state.ledger.insert(id, &format!("{hash}:{i}"), &member)?;
        }
        anyhow::Ok(())
    })();
    if let Err(e) = recorded {
        return error(500, format!("recording the request: {e:#}"));
    }
    let (sender, receiver) = oneshot::channel();
    let wait = resolved.wait;
    let job = Job {
        ids,
        work: Work::Batch(candidates),
        resolved,
        reply: wait.then_some(sender),
    };
    dispatch(&state, job, wait.then_some(receiver)).await
}

/// A single candidate recorded in the ledger, on its way to a run.
struct Ticket {
    id: String,
    /// Identical requests join its measurement.
    lead: Lead,
    candidate: Candidate,
}

/// Where a single candidate's reward comes from.
enum Recorded {
    /// The ledger's answer to an identical earlier request.
    Answered(serde_json::Value),
    /// An identical request's measurement, in flight.
    Joined(oneshot::Receiver<workers::Reply>),
    /// Its own measurement, to be gathered.
    Ticket(Ticket),
}

/// Answers a single candidate's reward from the ledger (an identical
/// request's), joins an identical request in flight, or records it for a
/// gathered run.
fn record_reward(
    state: &AppState,
    request: &serde_json::Value,
    candidate: Candidate,
    resolved: &api::Resolved,
) -> Result<Recorded, BadRequest> {
    let hash = api::content_hash("reward", std::slice::from_ref(&candidate), resolved);
    if let Some(answer) = cached_answer(state, &hash) {
        return Ok(Recorded::Answered(answer));
    }
    let lead = match state.inflight.enter(&hash) {
        Entry::Follow(receiver) => return Ok(Recorded::Joined(receiver)),
        Entry::Lead(lead) => lead,
    };
    let id = api::new_id();
    state
        .ledger
        .insert(&id, &hash, request)
        .map_err(|e| BadRequest(500, format!("recording the request: {e:#}")))?;
    Ok(Recorded::Ticket(Ticket {
        id,
        lead,
        candidate,
    }))
}

/// Has `tickets` (all with the options `resolved`) join gatherings (see
/// [`gather`]), in order; their answers arrive on the receivers. A full
/// queue is retried for up to `patience`, then refused with 429.
async fn gather(
    state: &AppState,
    tickets: Vec<Ticket>,
    resolved: &api::Resolved,
    patience: Duration,
) -> Result<Vec<oneshot::Receiver<workers::Reply>>, Response> {
    let key = api::options_digest(resolved);
    let mut receivers = Vec::new();
    let mut members = Vec::new();
    let mut leads = Vec::new();
    for ticket in tickets {
        let (reply, receiver) = oneshot::channel();
        receivers.push(receiver);
        leads.push(ticket.lead);
        members.push(Member {
            id: ticket.id,
            candidate: ticket.candidate,
            reply,
        });
    }
    let started = std::time::Instant::now();
    loop {
        let queue = |gathering| {
            let run = api::new_id();
            let recorded = state.ledger.insert(
                &run,
                &format!("gathered:{run}"),
                &json!({ "gathered": resolved.dataset }),
            );
            if recorded.is_err() {
                return false;
            }
            let job = workers::Job {
                ids: vec![run.clone()],
                work: Work::Gathered(gathering),
                resolved: resolved.clone(),
                reply: None,
            };
            let queued = state.pool.submit(job).is_ok();
            if !queued {
                let _ = state.ledger.forget(&run);
            }
            queued
        };
        match state.gatherer.join(&key, members, queue) {
            Ok(()) => {
                let relayed = leads.into_iter().zip(receivers);
                return Ok(relayed
                    .map(|(lead, receiver)| lead.relay(receiver))
                    .collect());
            }
            Err(back) if started.elapsed() < patience => {
                members = back;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(back) => {
                for member in back {
                    let _ = state.ledger.forget(&member.id);
                }
                return Err(queue_full(state));
            }
        }
    }
}

/// Waits for a gathered answer.
async fn answer_of(receiver: oneshot::Receiver<workers::Reply>) -> workers::Reply {
    receiver
        .await
        .unwrap_or_else(|_| Err((500, "the worker dropped the job".into())))
}

/// The 429 of a full queue, with a `Retry-After` estimate.
fn queue_full(state: &AppState) -> Response {
    state
        .pool
        .metrics
        .refused_queue_full
        .fetch_add(1, Ordering::Relaxed);
    let mut response = error(
        429,
        "the queue is full; retry after the time in Retry-After",
    );
    let wait = retry_after(&state.pool);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(wait));
    response
}

async fn reward(State(state): State<AppState>, body: Bytes) -> Response {
    let request: ScoreRequest = match parse(&body, &["candidate"]) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    if request.options.wait == Some(false) {
        let message =
            "a reward is always waited for; POST /v1/score with \"wait\": false answers at once";
        return BadRequest(400, message.into()).into_response();
    }
    let (resolved, candidate) = match prepare_single(&state, &request) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let recorded = serde_json::to_value(&request).unwrap_or_default();
    let ticket = match record_reward(&state, &recorded, candidate, &resolved) {
        Ok(Recorded::Answered(answer)) => return axum::Json(answer).into_response(),
        Ok(Recorded::Joined(receiver)) => return reply_response(answer_of(receiver).await),
        Ok(Recorded::Ticket(ticket)) => ticket,
        Err(e) => return e.into_response(),
    };
    let receiver = match gather(&state, vec![ticket], &resolved, Duration::ZERO).await {
        Ok(mut receivers) => receivers.remove(0),
        Err(response) => return response,
    };
    reply_response(answer_of(receiver).await)
}

/// How long `POST /get_reward` waits for room in a full queue: its callers
/// (OpenRLHF) retry a refusal only a few times, a second apart.
const GET_REWARD_PATIENCE: Duration = Duration::from_secs(60);

/// One sample of a `POST /get_reward` request, as far as it got.
enum Sample {
    /// No kernel in the response.
    NoCode,
    /// A kernel the service refused (too long): the model's fault.
    Refused,
    Answered(serde_json::Value),
    /// The i-th receiver under this key: its options' gathering, or
    /// (`joined:N`) the identical request in flight it joined.
    Waiting(String, usize),
}

/// `POST /get_reward`: OpenRLHF's remote reward. Options come from the
/// URL's query (and a sample's label, when it is a JSON object of options);
/// each query's kernel is found in the text after its prompt, and the
/// kernels are gathered for normalised rewards, a request's together.
/// `rewards` holds the normalised reward of an `ok` kernel, else `penalty`
/// (query parameter, default -1).
async fn get_reward(
    State(state): State<AppState>,
    Query(pairs): Query<Vec<(String, String)>>,
    body: Bytes,
) -> Response {
    let (penalty, read) = match openrlhf_samples(&state, &pairs, &body) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    // Record every kernel, then gather them by options.
    let mut samples = Vec::new();
    let mut receivers = std::collections::HashMap::new();
    let mut by_options: Vec<(String, api::Resolved, Vec<Ticket>)> = Vec::new();
    for (request, candidate) in read {
        let sample = match candidate {
            Err(sample) => sample,
            Ok((candidate, resolved)) => {
                match record_reward(&state, &request, candidate, &resolved) {
                    Err(e) => return e.into_response(),
                    Ok(Recorded::Answered(answer)) => Sample::Answered(answer),
                    Ok(Recorded::Joined(receiver)) => {
                        let key = format!("joined:{}", samples.len());
                        receivers.insert(key.clone(), vec![Some(receiver)]);
                        Sample::Waiting(key, 0)
                    }
                    Ok(Recorded::Ticket(ticket)) => {
                        let key = api::options_digest(&resolved);
                        let at = match by_options.iter().position(|(k, _, _)| *k == key) {
                            Some(at) => at,
                            None => {
                                by_options.push((key.clone(), resolved, Vec::new()));
                                by_options.len() - 1
                            }
                        };
                        by_options[at].2.push(ticket);
                        Sample::Waiting(key, by_options[at].2.len() - 1)
                    }
                }
            }
        };
        samples.push(sample);
    }
    for (key, resolved, tickets) in by_options {
        match gather(&state, tickets, &resolved, GET_REWARD_PATIENCE).await {
            Ok(list) => {
                receivers.insert(key, list.into_iter().map(Some).collect::<Vec<_>>());
            }
            Err(response) => return response,
        }
    }
    let mut rewards = Vec::new();
    let mut scores = Vec::new();
    let mut verdicts = Vec::new();
    let (mut ok, mut raw, mut no_code, mut service_error) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for sample in samples {
        let answer = match sample {
            Sample::NoCode => Err("no_code"),
            Sample::Refused => Err("rejected"),
            Sample::Answered(answer) => Ok(answer),
            Sample::Waiting(key, i) => {
                let receiver = receivers
                    .get_mut(&key)
                    .and_then(|list| list[i].take())
                    .expect("each sample's receiver, taken once");
                match answer_of(receiver).await {
                    Ok(answer) => Ok(answer),
                    // Options the dataset cannot serve (k beyond its ground
                    // truth, say): the request's fault, not the model's.
                    Err((400, message)) => return error(400, message),
                    Err(_) => Err("service_error"),
                }
            }
        };
        let (verdict, reward, normalized) = match &answer {
            Ok(a) => (
                a["verdict"]
                    .as_str()
                    .unwrap_or("internal_error")
                    .to_string(),
                a["reward"].as_f64().unwrap_or(0.0),
                a["normalized_reward"].as_f64(),
            ),
            Err(verdict) => (verdict.to_string(), 0.0, None),
        };
        let credited = (verdict == "ok").then_some(normalized).flatten();
        rewards.push(credited.unwrap_or(penalty));
        scores.push(credited.unwrap_or(0.0));
        ok.push(f64::from(u8::from(credited.is_some())));
        raw.push(if verdict == "ok" { reward } else { 0.0 });
        no_code.push(f64::from(u8::from(verdict == "no_code")));
        // Not the model's fault: the service failed, or the reference did.
        let failed = matches!(verdict.as_str(), "service_error" | "internal_error")
            || (verdict == "ok" && credited.is_none());
        service_error.push(f64::from(u8::from(failed)));
        verdicts.push(verdict);
    }
    axum::Json(json!({
        "rewards": rewards,
        "scores": scores,
        "extra_logs": {
            "anneval_ok": ok,
            "anneval_qps_reward": raw,
            "anneval_no_code": no_code,
            "anneval_service_error": service_error,
        },
        "verdicts": verdicts,
    }))
    .into_response()
}

/// A `POST /get_reward` sample: what the ledger records, and its kernel
/// with its options, or why there is none.
type OpenRlhfSample = (
    serde_json::Value,
    Result<(Candidate, api::Resolved), Sample>,
);

/// Reads a `POST /get_reward` request: `{"query": [...], "prompts": [...],
/// "labels": [...]}` (other fields OpenRLHF versions send are ignored).
fn openrlhf_samples(
    state: &AppState,
    pairs: &[(String, String)],
    body: &Bytes,
) -> Result<(f64, Vec<OpenRlhfSample>), BadRequest> {
    let mut base = api::query_options(pairs, &["language", "penalty"])?;
    let penalty = match base.remove("penalty") {
        Some(p) => p
            .as_str()
            .unwrap_or_default()
            .parse::<f64>()
            .ok()
            .filter(|p| p.is_finite())
            .ok_or_else(|| BadRequest(400, format!("penalty={p} is not a number")))?,
        None => -1.0,
    };
    let body: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| BadRequest(400, format!("the body is not valid JSON: {e}")))?;
    let strings = |field: &str| -> Result<Option<Vec<String>>, BadRequest> {
        match body.get(field) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => serde_json::from_value(v.clone())
                .map(Some)
                .map_err(|_| BadRequest(400, format!("{field} must be a list of strings"))),
        }
    };
    let queries = strings("query")?
        .ok_or_else(|| BadRequest(400, "the body needs \"query\": a list of strings".into()))?;
    let prompts = strings("prompts")?;
    let labels = match body.get("labels") {
        Some(serde_json::Value::Array(labels)) => Some(labels.clone()),
        None | Some(serde_json::Value::Null) => None,
        Some(_) => return Err(BadRequest(400, "labels must be a list".into())),
    };
    for (field, len) in [
        ("prompts", prompts.as_ref().map(Vec::len)),
        ("labels", labels.as_ref().map(Vec::len)),
    ] {
        if len.is_some_and(|len| len != queries.len()) {
            return Err(BadRequest(
                400,
                format!("{field} must have one entry per query"),
            ));
        }
    }
    let mut samples = Vec::new();
    for (i, query) in queries.iter().enumerate() {
        let mut options = base.clone();
        // A label that is a JSON object of options overrides the URL's.
        let label = labels.as_ref().map(|l| &l[i]);
        let label = match label {
            Some(serde_json::Value::String(text)) => serde_json::from_str(text).ok(),
            other => other.cloned(),
        };
        if let Some(serde_json::Value::Object(overrides)) = label {
            options.extend(overrides);
        }
        let language = take_language(&mut options)?.unwrap_or(Language::Rust);
        let options = api::options_from(options)?;
        let resolved = options.resolve(&state.codebases)?;
        check_available(state, &resolved.dataset.name)?;
        let prompt = prompts.as_ref().map(|p| p[i].as_str());
        let found = match &resolved.codebase {
            // A template's completion is the files it changes.
            Some(_) => extract::changed_files(query, prompt).map(extract::Found::Files),
            None => extract::kernel(query, language, prompt),
        };
        let spec = match found {
            None => {
                samples.push((json!({}), Err(Sample::NoCode)));
                continue;
            }
            Some(extract::Found::Source(code)) => CandidateSpec {
                source: Some(code),
                language: Some(language),
                ..CandidateSpec::default()
            },
            Some(extract::Found::Files(files)) => CandidateSpec {
                files: Some(files),
                // A template's language is its manifest's.
                language: resolved.codebase.is_none().then_some(language),
                ..CandidateSpec::default()
            },
        };
        let candidate = spec
            .candidate(state.max_source, resolved.codebase.as_deref())
            .map(|candidate| (candidate, resolved))
            .map_err(|_| Sample::Refused);
        let recorded = json!({ "candidate": spec, "options": options, "via": "get_reward" });
        samples.push((recorded, candidate));
    }
    Ok((penalty, samples))
}

/// Takes the `language` parameter out of query options.
fn take_language(
    options: &mut serde_json::Map<String, serde_json::Value>,
) -> Result<Option<Language>, BadRequest> {
    options
        .remove("language")
        .map(|v| {
            serde_json::from_value(v.clone())
                .map_err(|_| BadRequest(400, format!("language {v}: one of rust, c, cpp")))
        })
        .transpose()
}

async fn exemplars(
    State(state): State<AppState>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let found = (|| {
        let mut options = api::query_options(&pairs, &["language", "limit"])?;
        let language = take_language(&mut options)?;
        let limit = match options.remove("limit") {
            None => 8,
            Some(v) => v
                .as_str()
                .and_then(|t| t.parse::<usize>().ok())
                .filter(|n| (1..=api::MAX_EXEMPLARS).contains(n))
                .ok_or_else(|| {
                    BadRequest(400, format!("limit must be 1 to {}", api::MAX_EXEMPLARS))
                })?,
        };
        let resolved = api::options_from(options)?.resolve(&state.codebases)?;
        let digest = api::options_digest(&resolved);
        let pool = state
            .ledger
            .exemplars(&digest, language.map(Language::as_str), limit)
            .map_err(|e| BadRequest(500, format!("reading the ledger: {e:#}")))?;
        Ok::<_, BadRequest>(json!({ "options": digest, "exemplars": pool }))
    })();
    match found {
        Ok(answer) => axum::Json(answer).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn evaluation(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match state.ledger.get(&id) {
        Ok(Some(entry)) => axum::Json(json!({
            "id": entry.id,
            "status": entry.status,
            "created": entry.created,
            "finished": entry.finished,
            "request": entry.request,
            "result": entry.result,
        }))
        .into_response(),
        Ok(None) => error(404, format!("no evaluation {id:?}")),
        Err(e) => error(500, format!("reading the ledger: {e:#}")),
    }
}

async fn datasets(State(state): State<AppState>) -> Response {
    let list: Vec<_> = registry::all()
        .iter()
        .map(|e| {
            json!({
                "name": e.name,
                "metric": e.metric,
                "dim": e.dim,
                "train": e.train,
                "test": e.test,
                "source": e.source(),
                "available": e.synthetic.is_some() || e.local_path(&state.data_dir).exists(),
            })
        })
        .collect();
    axum::Json(json!({ "datasets": list })).into_response()
}

async fn healthz(State(state): State<AppState>) -> Response {
    axum::Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "workers": state.pool.workers,
        "queue_depth": state.pool.metrics.queued.load(Ordering::Relaxed),
    }))
    .into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.pool.metrics.render(state.pool.workers),
    )
        .into_response()
}
