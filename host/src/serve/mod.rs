//! `anneval serve`: the reward service an RL trainer calls over HTTP.
//!
//! axum on tokio takes requests, validates them, answers identical ones from
//! the ledger ([`ledger`]), and hands the rest to a pool of worker threads
//! ([`workers`]) through a bounded queue: a full queue answers 429 with
//! `Retry-After`, an oversized body 413. Endpoints and fields are documented
//! in `openapi.yaml`.

pub mod api;
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
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::sync::oneshot;

use api::{BadRequest, BatchRequest, ScoreRequest};
use ledger::Ledger;
use workers::{Job, Pool, Reply, Work};

use crate::compile::CompileLimits;
use crate::dataset::registry;
use crate::evaluator::Evaluator;
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
}

#[derive(Clone)]
struct AppState {
    pool: Arc<Pool>,
    ledger: Arc<Ledger>,
    data_dir: PathBuf,
    max_source: usize,
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
        data_dir: config.data_dir.clone(),
        max_source,
    };
    let app = Router::new()
        .route("/v1/score", post(score))
        .route("/v1/score/batch", post(batch))
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
        return response;
    }
    let Some(receiver) = wait_for else {
        return (
            StatusCode::ACCEPTED,
            axum::Json(json!({ "id": ids[0], "status": "queued" })),
        )
            .into_response();
    };
    match receiver.await {
        Ok(Ok(answer)) => axum::Json(answer).into_response(),
        Ok(Err((status, message))) => error(status, message),
        Err(_) => error(500, "the worker dropped the job"),
    }
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
fn from_ledger(state: &AppState, hash: &str) -> Option<Response> {
    let (_, mut answer) = state.ledger.cached(hash).ok()??;
    state
        .pool
        .metrics
        .cache_hits
        .fetch_add(1, Ordering::Relaxed);
    answer["cached"] = json!(true);
    Some(axum::Json(answer).into_response())
}

async fn score(State(state): State<AppState>, body: Bytes) -> Response {
    let request: ScoreRequest = match parse(&body, &["candidate"]) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let prepared = (|| {
        let resolved = request.options.resolve()?;
        let candidate = request.candidate.candidate(state.max_source)?;
        check_available(&state, &resolved.dataset.name)?;
        Ok::<_, BadRequest>((resolved, candidate))
    })();
    let (resolved, candidate) = match prepared {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let hash = api::content_hash("score", std::slice::from_ref(&candidate), &resolved);
    if let Some(answer) = from_ledger(&state, &hash) {
        return answer;
    }
    let id = api::new_id();
    if let Err(e) = state.ledger.insert(
        &id,
        &hash,
        &serde_json::to_value(&request).unwrap_or_default(),
    ) {
        return error(500, format!("recording the request: {e:#}"));
    }
    let (sender, receiver) = oneshot::channel();
    let wait = resolved.wait;
    let job = Job {
        ids: vec![id],
        work: Work::Single(candidate),
        resolved,
        reply: wait.then_some(sender),
    };
    dispatch(&state, job, wait.then_some(receiver)).await
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
        let resolved = request.options.resolve()?;
        let candidates = request
            .candidates
            .iter()
            .map(|c| c.candidate(state.max_source))
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
