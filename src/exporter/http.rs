use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::http_metrics::{HttpMetrics, UNMATCHED};
use super::Metrics;
use crate::api_error::{as_json, error};
use crate::auth::{self, Access, Guard, Tokens};
use crate::telemetry::LogLevelHandle;

/// What `/readyz` reports: the database answers, the outcomes table can be read, no model's
/// polls have failed for longer than `poll.not_ready_after_ms`, and every owned model's state
/// is loaded.
#[derive(Debug)]
pub struct Health {
    pub database_up: AtomicBool,
    pub state_loaded: AtomicBool,
    /// Why the outcomes table cannot be read at all (it does not exist), if so.
    source_problem: Mutex<Option<String>>,
    /// Models whose polls fail: since when, and the latest reason.
    failing: Mutex<HashMap<String, (Instant, String)>>,
    failing_after: Duration,
}

impl Default for Health {
    fn default() -> Self {
        Health::new(Duration::from_secs(30))
    }
}

impl Health {
    /// A model whose polls have failed for longer than `failing_after` makes the replica
    /// not ready.
    pub fn new(failing_after: Duration) -> Self {
        Health {
            database_up: AtomicBool::new(false),
            state_loaded: AtomicBool::new(false),
            source_problem: Mutex::new(None),
            failing: Mutex::new(HashMap::new()),
            failing_after,
        }
    }

    pub fn ready(&self) -> bool {
        self.not_ready_reason().is_none()
    }

    pub fn set_source_problem(&self, problem: Option<String>) {
        *self.source_problem.lock().expect("health lock") = problem;
    }

    /// Model `model`'s poll failed because of `reason` (kept since its first failure).
    pub fn poll_failed(&self, model: &str, reason: &str) {
        let mut f = self.failing.lock().expect("health lock");
        let entry = f
            .entry(model.to_string())
            .or_insert_with(|| (Instant::now(), String::new()));
        entry.1 = reason.to_string();
    }

    /// Model `model`'s poll went through (or its loop stopped here).
    pub fn poll_ok(&self, model: &str) {
        let mut f = self.failing.lock().expect("health lock");
        if !f.is_empty() {
            f.remove(model);
        }
    }

    /// Why this replica is not ready, if it is not: the first of the outcomes table's
    /// problem, the database, a model failing for too long, state still loading.
    pub fn not_ready_reason(&self) -> Option<String> {
        if let Some(p) = self.source_problem.lock().expect("health lock").clone() {
            return Some(p);
        }
        if !self.database_up.load(Ordering::Relaxed) {
            return Some("database unreachable".into());
        }
        {
            let f = self.failing.lock().expect("health lock");
            let worst = f
                .iter()
                .filter(|(_, (since, _))| since.elapsed() > self.failing_after)
                .min_by_key(|(m, (since, _))| (*since, (*m).clone()));
            if let Some((model, (_, why))) = worst {
                return Some(format!(
                    "model {model}: polls failing for over {} s: {why}",
                    self.failing_after.as_secs_f64()
                ));
            }
        }
        if !self.state_loaded.load(Ordering::Relaxed) {
            return Some("state not loaded".into());
        }
        None
    }
}

/// Where the daemon reports whether the database answers: the one setter of both what
/// `/readyz` reads and `driftd_database_up`, so that the two never disagree.
#[derive(Clone)]
pub struct DatabaseHealth {
    health: Arc<Health>,
    metrics: Arc<Metrics>,
}

impl DatabaseHealth {
    pub fn new(health: Arc<Health>, metrics: Arc<Metrics>) -> Self {
        DatabaseHealth { health, metrics }
    }

    /// The last database round trip succeeded (`true`) or failed.
    pub fn set(&self, up: bool) {
        self.health.database_up.store(up, Ordering::Relaxed);
        self.metrics.ingest.set_database_up(up);
    }
}

#[derive(Clone)]
pub struct HttpState {
    pub metrics: Arc<Metrics>,
    pub http_metrics: Arc<HttpMetrics>,
    pub health: Arc<Health>,
    pub log_level: LogLevelHandle,
    /// `PUT /log-level` needs the admin token; without one configured it answers 404.
    pub tokens: Arc<Tokens>,
    pub limits: RequestLimits,
}

/// The limits every request runs under (`[http]`).
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// A request not answered within this gets a 503.
    pub timeout: Duration,
    /// Requests handled at once; one more is answered 503 at once (health checks and
    /// `/metrics` do not count).
    pub max_concurrent: usize,
}

async fn metrics(State(s): State<HttpState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

/// Liveness: every model loop and the ownership round went round within
/// `http.liveness_timeout_ms` (what the systemd watchdog also checks).
async fn healthz() -> Response {
    match crate::systemd::liveness() {
        Ok(()) => "ok\n".into_response(),
        Err(why) => error(StatusCode::SERVICE_UNAVAILABLE, why).into_response(),
    }
}

async fn readyz(State(s): State<HttpState>) -> Response {
    match s.health.not_ready_reason() {
        None => (StatusCode::OK, "ready\n").into_response(),
        Some(why) => {
            error(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}")).into_response()
        }
    }
}

async fn get_log_level(State(s): State<HttpState>) -> String {
    format!("{}\n", s.log_level.get())
}

async fn put_log_level(
    State(s): State<HttpState>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(r) => return as_json(r.status(), &r.body_text()),
    };
    let Ok(filter) = std::str::from_utf8(&body).map(str::trim) else {
        return error(StatusCode::BAD_REQUEST, "the log filter is not UTF-8").into_response();
    };
    match s.log_level.set(filter) {
        Ok(()) => {
            tracing::info!(filter, "log filter changed");
            (StatusCode::OK, format!("{filter}\n")).into_response()
        }
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

async fn no_route() -> Response {
    error(StatusCode::NOT_FOUND, "no such route").into_response()
}

pub fn router(state: HttpState) -> Router {
    let admin = Guard::new(state.tokens.clone(), Access::Admin);
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route(
            "/log-level",
            get(get_log_level).merge(
                put(put_log_level)
                    .route_layer(middleware::from_fn_with_state(admin, auth::require)),
            ),
        )
        .with_state(state)
}

/// The routes that answer even when every request slot is taken: probes and `/metrics`.
fn is_probe(route: &str) -> bool {
    matches!(
        route,
        "/healthz" | "/readyz" | "/metrics" | "/v2/health/live" | "/v2/health/ready"
    )
}

/// What every request goes through: the concurrency limit and the timeout, errors as JSON,
/// and the request metrics.
#[derive(Clone)]
struct Edge {
    metrics: Arc<HttpMetrics>,
    slots: Arc<Semaphore>,
    limits: RequestLimits,
}

async fn edge(State(e): State<Edge>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, |m| m.as_str())
        .to_string();
    let resp = limited(&e, &route, req, next).await;
    let resp = errors_as_json(resp).await;
    e.metrics.request_answered(
        &route,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

async fn limited(e: &Edge, route: &str, req: Request, next: Next) -> Response {
    let _slot = if is_probe(route) {
        None
    } else {
        match e.slots.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "{} requests are in progress, the most this replica takes at once (http.max_concurrent_requests); retry",
                        e.limits.max_concurrent
                    ),
                )
                .into_response()
            }
        }
    };
    match tokio::time::timeout(e.limits.timeout, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the request was not answered within {} ms (http.request_timeout_ms)",
                e.limits.timeout.as_millis()
            ),
        )
        .into_response(),
    }
}

/// An error response that is not JSON yet (an extractor's rejection, a 405) becomes
/// `{"error": its text}`.
async fn errors_as_json(resp: Response) -> Response {
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if resp.status().as_u16() < 400 || is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 << 10)
        .await
        .unwrap_or_default();
    let mut out = as_json(parts.status, &String::from_utf8_lossy(&text));
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// Binds (port 0 picks a free port) and serves until `shutdown` resolves.
pub async fn serve(
    listen: &str,
    state: HttpState,
    extra: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let edge_state = Edge {
        metrics: state.http_metrics.clone(),
        slots: Arc::new(Semaphore::new(state.limits.max_concurrent)),
        limits: state.limits,
    };
    let app = router(state)
        .merge(extra)
        .fallback(no_route)
        .layer(middleware::from_fn_with_state(edge_state, edge));
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    });
    Ok((addr, task))
}
