//! The one shape of every HTTP error driftd answers: a status and `{"error": message}`.
//! A database (or other internal) error is logged with an id, and the client gets the id,
//! never the error's text (which can name hosts, users, tables).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// A refused or failed request: its status and `{"error": message}` (and the log's error id
/// for an internal error).
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub error_id: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match &self.error_id {
            None => json!({ "error": self.message }),
            Some(id) => json!({ "error": self.message, "error_id": id }),
        };
        (self.status, Json(body)).into_response()
    }
}

pub fn error(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        message: message.into(),
        error_id: None,
    }
}

/// A 503 for an internal failure: `e` goes to the log under a fresh id, the client gets
/// `what` and the id.
pub fn internal(what: &str, e: &dyn std::fmt::Display) -> ApiError {
    let id = format!("{:016x}", rand::random::<u64>());
    tracing::error!(error_id = %id, error = %e, "{what}");
    ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: format!("{what} (error id {id}; the daemon's log has the details)"),
        error_id: Some(id),
    }
}

/// `{"error": …}` for a response that has a plain body (an extractor's rejection, a
/// fallback): its text, or the status's reason when it has none.
pub fn as_json(status: StatusCode, text: &str) -> Response {
    let text = text.trim();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text.to_string()
    };
    error(status, message).into_response()
}
