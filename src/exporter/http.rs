use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use super::admin::constant_time_eq;
use super::Metrics;
use crate::config::Secret;
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
    pub health: Arc<Health>,
    pub log_level: LogLevelHandle,
    /// `PUT /log-level` needs it; without one configured, the log filter cannot be changed.
    pub admin_token: Option<Arc<Secret>>,
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

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(s): State<HttpState>) -> Response {
    match s.health.not_ready_reason() {
        None => (StatusCode::OK, "ready\n").into_response(),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

async fn get_log_level(State(s): State<HttpState>) -> String {
    format!("{}\n", s.log_level.get())
}

async fn put_log_level(State(s): State<HttpState>, headers: HeaderMap, body: String) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let allowed = s
        .admin_token
        .as_ref()
        .is_some_and(|t| constant_time_eq(presented.as_bytes(), t.expose().as_bytes()));
    if !allowed {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "changing the log level needs the admin bearer token (http.admin_token)\n",
        )
            .into_response();
    }
    match s.log_level.set(body.trim()) {
        Ok(()) => {
            tracing::info!(filter = body.trim(), "log filter changed");
            (StatusCode::OK, format!("{}\n", body.trim())).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    }
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/log-level", get(get_log_level).put(put_log_level))
        .with_state(state)
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
    let app = router(state).merge(extra);
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    });
    Ok((addr, task))
}
