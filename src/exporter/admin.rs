//! `POST /v1/models/{model}/retrain`: a manual update request over HTTP, behind a bearer token.
//! With no token configured the route does not exist.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use sqlx::PgPool;

use crate::catalog::Catalog;
use crate::config::Secret;
use crate::policy::TriggerKind;
use crate::registry::{self, RunStatus};
use crate::train::Strategy;

#[derive(Clone)]
struct AdminState {
    pool: PgPool,
    token: Arc<Secret>,
    /// The known models: a manual request takes the model's `manual_strategy` unless the body
    /// names one, and a monitor-only model refuses it.
    models: Arc<Catalog>,
}

/// Compares in time independent of where the first difference is.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RetrainBody {
    strategy: Option<Strategy>,
    reason: Option<String>,
}

async fn retrain(
    State(s): State<AdminState>,
    Path(model): Path<String>,
    headers: HeaderMap,
    body: Option<Json<RetrainBody>>,
) -> Response {
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !constant_time_eq(presented.as_bytes(), s.token.expose().as_bytes()) {
        return (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", "Bearer")],
            "missing or wrong bearer token\n",
        )
            .into_response();
    }
    let Some(model_cfg) = s.models.get(&model) else {
        return (StatusCode::NOT_FOUND, format!("no model named `{model}`\n")).into_response();
    };
    let Some(default) = model_cfg
        .train
        .enabled
        .then_some(model_cfg.triggers.manual_strategy)
    else {
        return (
            StatusCode::CONFLICT,
            format!("model `{model}` is monitor-only (train.enabled = false): driftd does not train it\n"),
        )
            .into_response();
    };
    let body = body.map(|Json(b)| b).unwrap_or_default();
    let strategy = body.strategy.unwrap_or(default);
    let reason = body
        .reason
        .unwrap_or_else(|| "POST /v1/models/{model}/retrain".into());
    let created = async {
        let mut conn = s.pool.acquire().await?;
        registry::runs_create(
            &mut conn,
            &model,
            TriggerKind::Manual,
            &reason,
            strategy,
            RunStatus::Requested,
        )
        .await
    };
    match created.await {
        Ok(id) => {
            tracing::info!(model, run_id = id, %strategy, "manual retrain requested over HTTP");
            (
                StatusCode::ACCEPTED,
                Json(serde_json::json!({ "run_id": id, "model": model, "strategy": strategy })),
            )
                .into_response()
        }
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cannot record the request: {e}\n"),
        )
            .into_response(),
    }
}

/// The admin routes, or none when no token is configured.
pub fn router(pool: PgPool, token: Option<Secret>, models: Arc<Catalog>) -> Router {
    let Some(token) = token else {
        return Router::new();
    };
    Router::new()
        .route("/v1/models/{model}/retrain", post(retrain))
        .with_state(AdminState {
            pool,
            token: Arc::new(token),
            models,
        })
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn equality_is_exact() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(!constant_time_eq(b"s3cret", b"s3creT"));
        assert!(!constant_time_eq(b"s3cret", b"s3cret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
