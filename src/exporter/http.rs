use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

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

/// What `/readyz` reports: the database answers and every owned model's state is loaded.
#[derive(Debug, Default)]
pub struct Health {
    pub database_up: AtomicBool,
    pub state_loaded: AtomicBool,
}

impl Health {
    pub fn ready(&self) -> bool {
        self.database_up.load(Ordering::Relaxed) && self.state_loaded.load(Ordering::Relaxed)
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
    if s.health.ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        let why = if !s.health.database_up.load(Ordering::Relaxed) {
            "database unreachable\n"
        } else {
            "state not loaded\n"
        };
        (StatusCode::SERVICE_UNAVAILABLE, why).into_response()
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
