//! `POST /v1/models/{model}/retrain`: a manual update request over HTTP. It needs the admin
//! token (checked by [`crate::auth`] before the body is read); with no admin token configured
//! the route answers 404 saying how to enable it.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::http::{body_or_error, ServeState};
use crate::api_error::{error, internal, ApiError};
use crate::policy::TriggerKind;
use crate::registry::{self, RunStatus};
use crate::train::Strategy;

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RetrainBody {
    strategy: Option<Strategy>,
    reason: Option<String>,
}

/// The body: empty (the model's `manual_strategy`) or `{"strategy": …, "reason": …}`.
fn parse_body(body: &[u8]) -> Result<RetrainBody, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(RetrainBody::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!("body is not {{\"strategy\": …, \"reason\": …}} (both optional): {e}"),
        )
    })
}

pub async fn retrain(
    State(s): State<ServeState>,
    Path(model): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_or_error(body)?;
    // A manual request takes the model's `manual_strategy` unless the body names one, and a
    // monitor-only model refuses it.
    let Some(model_cfg) = s.catalog.get(&model) else {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("no model named `{model}`"),
        ));
    };
    let Some(default) = model_cfg
        .train
        .enabled
        .then_some(model_cfg.triggers.manual_strategy)
    else {
        return Err(error(
            StatusCode::CONFLICT,
            format!(
                "model `{model}` is monitor-only (train.enabled = false): driftd does not train it"
            ),
        ));
    };
    let body = parse_body(&body)?;
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
    let id = created
        .await
        .map_err(|e| internal("cannot record the request", &e))?;
    tracing::info!(model, run_id = id, %strategy, "manual retrain requested over HTTP");
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "run_id": id, "model": model, "strategy": strategy })),
    )
        .into_response())
}
