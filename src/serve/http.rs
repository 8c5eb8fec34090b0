//! The serving routes: `/v1` (driftd's own JSON) and `/v2` (the Open Inference Protocol).
//! Predictions read only the in-memory champion cache, never the database, so request load
//! cannot slow the pollers down and a database outage does not stop predictions.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;
use sqlx::PgPool;

use super::cache::{ChampionCache, Lookup, Served};
use super::rows::{parse_predict_body, RowShape};
use super::v2;
use super::ServeConfig;
use crate::api_error::{error, internal, ApiError};
use crate::auth::{self, Access, Guard, Tokens};
use crate::catalog::Catalog;
use crate::registry;

#[derive(Clone)]
pub struct ServeState {
    pub cache: Arc<ChampionCache>,
    pub pool: PgPool,
    /// The known models (their `feature_names` name the columns of object rows).
    pub catalog: Arc<Catalog>,
    pub max_rows: usize,
    /// Counts the categories answered as "other".
    pub metrics: Arc<crate::exporter::Metrics>,
}

type Answer = Result<Response, ApiError>;

fn champion_of(s: &ServeState, model: &str) -> Result<Arc<Served>, ApiError> {
    match s.cache.get(model) {
        Lookup::Ready(served) => Ok(served),
        Lookup::NoChampion => Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("model `{model}` has no champion yet"),
        )),
        Lookup::Unknown => Err(unknown_model(s, model)),
    }
}

/// The served model's categorical feature positions.
fn categorical_of(p: &super::predictor::Predictor) -> Vec<usize> {
    (0..p.n_features())
        .filter(|&i| p.is_categorical(i))
        .collect()
}

/// Counts each categorical value outside the champion's vocabulary (answered as "other").
fn count_unknown(
    s: &ServeState,
    model: &str,
    names: &[String],
    p: &super::predictor::Predictor,
    x: &[f32],
) {
    let nf = p.n_features();
    for i in categorical_of(p) {
        let n = x.chunks_exact(nf).filter(|r| p.is_unknown(i, r[i])).count();
        if n > 0 {
            let feature = names.get(i).cloned().unwrap_or_else(|| format!("f{i}"));
            s.metrics
                .serving
                .unknown_categories(model, &feature, n as u64);
        }
    }
}

fn unknown_model(s: &ServeState, model: &str) -> ApiError {
    // With templates there may be thousands: name a few, count the rest.
    const NAMED: usize = 20;
    let names = s.cache.models();
    let mut listed = names[..names.len().min(NAMED)].join(", ");
    if names.len() > NAMED {
        listed.push_str(&format!(" and {} more", names.len() - NAMED));
    }
    error(
        StatusCode::NOT_FOUND,
        format!("no model named `{model}` (models: {listed})"),
    )
}

pub(super) fn body_or_error(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|r| {
        error(
            r.status(),
            format!("{} (serve.max_body_bytes)", r.body_text()),
        )
    })
}

#[derive(Serialize)]
struct ClassRow<'a> {
    label: i64,
    probabilities: &'a [f32],
}

#[derive(Serialize)]
#[serde(untagged)]
enum PredictionList<'a> {
    /// Binary: P(label = 1) per row.
    Binary(&'a [f32]),
    Multiclass(Vec<ClassRow<'a>>),
}

#[derive(Serialize)]
struct PredictResponse<'a> {
    model: &'a str,
    version: i64,
    predictions: PredictionList<'a>,
}

async fn predict(
    State(s): State<ServeState>,
    Path(model): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let body = body_or_error(body)?;
    let served = champion_of(&s, &model)?;
    let model_cfg = s.catalog.get(&model);
    let names = model_cfg
        .as_deref()
        .map(|m| m.feature_names.as_slice())
        .unwrap_or(&[]);
    let categorical = categorical_of(&served.predictor);
    let shape = RowShape {
        n_features: served.predictor.n_features(),
        feature_names: names,
        max_rows: s.max_rows,
        categorical: &categorical,
    };
    let x = parse_predict_body(&body, &shape).map_err(|e| error(StatusCode::BAD_REQUEST, e))?;
    count_unknown(&s, &model, names, &served.predictor, &x);
    let p = served.predictor.predict(&x);
    let labels;
    let predictions = if p.width == 1 {
        PredictionList::Binary(&p.values)
    } else {
        labels = p.labels();
        PredictionList::Multiclass(
            p.rows()
                .zip(&labels)
                .map(|(probabilities, &label)| ClassRow {
                    label,
                    probabilities,
                })
                .collect(),
        )
    };
    Ok(Json(PredictResponse {
        model: &model,
        version: served.version(),
        predictions,
    })
    .into_response())
}

/// The champion, if `version` (from a `/versions/{v}/` path) is absent or names it.
fn served_version(
    s: &ServeState,
    model: &str,
    version: Option<&str>,
) -> Result<Arc<Served>, ApiError> {
    let served = champion_of(s, model)?;
    match version {
        Some(v) if v != served.version().to_string() => Err(error(
            StatusCode::NOT_FOUND,
            format!(
                "model `{model}` serves version {} (its champion), not `{v}`",
                served.version()
            ),
        )),
        _ => Ok(served),
    }
}

async fn v2_infer(
    s: ServeState,
    model: String,
    version: Option<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let body = body_or_error(body)?;
    let served = served_version(&s, &model, version.as_deref())?;
    let header_len = match headers
        .get(v2::HEADER_LENGTH)
        .map(|v| v.to_str().ok().and_then(|t| t.trim().parse::<usize>().ok()))
    {
        None => None,
        Some(Some(n)) => Some(n),
        Some(None) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "Inference-Header-Content-Length is not a whole number",
            ))
        }
    };
    let n_features = served.predictor.n_features();
    let categorical = categorical_of(&served.predictor);
    let req = v2::parse_infer_with(&body, header_len, n_features, &categorical, s.max_rows)
        .map_err(|e| error(StatusCode::BAD_REQUEST, e))?;
    let names = s
        .catalog
        .get(&model)
        .map(|m| m.feature_names.clone())
        .unwrap_or_default();
    count_unknown(&s, &model, &names, &served.predictor, &req.x);
    let p = served.predictor.predict(&req.x);
    let enc = v2::encode_response(
        &model,
        served.version(),
        &req,
        &p,
        served.predictor.n_classes(),
    );
    Ok(match enc.header_len {
        None => ([(header::CONTENT_TYPE, "application/json")], enc.body).into_response(),
        Some(n) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                (
                    header::HeaderName::from_static(v2::HEADER_LENGTH),
                    n.to_string(),
                ),
            ],
            enc.body,
        )
            .into_response(),
    })
}

async fn v2_infer_latest(
    State(s): State<ServeState>,
    Path(model): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    v2_infer(s, model, None, headers, body).await
}

async fn v2_infer_version(
    State(s): State<ServeState>,
    Path((model, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    v2_infer(s, model, Some(version), headers, body).await
}

fn v2_metadata_of(s: &ServeState, model: &str, version: Option<&str>) -> Answer {
    let c = served_version(s, model, version)?;
    Ok(Json(v2::model_metadata(
        model,
        c.version(),
        (c.predictor.n_features(), categorical_of(&c.predictor).len()),
        c.predictor.n_classes(),
    ))
    .into_response())
}

async fn v2_metadata(State(s): State<ServeState>, Path(model): Path<String>) -> Answer {
    v2_metadata_of(&s, &model, None)
}

async fn v2_metadata_version(
    State(s): State<ServeState>,
    Path((model, version)): Path<(String, String)>,
) -> Answer {
    v2_metadata_of(&s, &model, Some(&version))
}

async fn v2_ready(State(s): State<ServeState>, Path(model): Path<String>) -> Answer {
    served_version(&s, &model, None).map(|_| StatusCode::OK.into_response())
}

async fn v2_ready_version(
    State(s): State<ServeState>,
    Path((model, version)): Path<(String, String)>,
) -> Answer {
    served_version(&s, &model, Some(&version)).map(|_| StatusCode::OK.into_response())
}

async fn v2_server_metadata() -> Json<serde_json::Value> {
    Json(json!({
        "name": "driftd",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": ["binary_tensor_data"],
    }))
}

async fn v2_live() -> StatusCode {
    StatusCode::OK
}

async fn v2_server_ready(State(s): State<ServeState>) -> Answer {
    if s.cache.is_loaded() {
        Ok(StatusCode::OK.into_response())
    } else {
        Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "champions not loaded from the registry yet",
        ))
    }
}

/// `"3"` for version 3.
fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// Whether an `If-None-Match` header names `tag` (or is `*`); weak tags match too.
pub fn if_none_match(headers: &HeaderMap, tag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim())
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == tag)
}

fn download(
    s: &ServeState,
    model: &str,
    headers: &HeaderMap,
    pick: fn(&Served) -> (&Bytes, &'static str, &'static str),
) -> Answer {
    let served = champion_of(s, model)?;
    let tag = etag(served.version());
    if if_none_match(headers, &tag) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response());
    }
    let (bytes, content_type, ext) = pick(&served);
    let disposition = format!(
        "attachment; filename=\"{model}-v{}.{ext}\"",
        served.version()
    );
    Ok((
        [
            (header::ETAG, tag),
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes.clone(),
    )
        .into_response())
}

async fn champion_weights(
    State(s): State<ServeState>,
    Path(model): Path<String>,
    headers: HeaderMap,
) -> Answer {
    download(&s, &model, &headers, |c| {
        (&c.safetensors, "application/octet-stream", "safetensors")
    })
}

async fn champion_sidecar(
    State(s): State<ServeState>,
    Path(model): Path<String>,
    headers: HeaderMap,
) -> Answer {
    download(&s, &model, &headers, |c| {
        (&c.sidecar, "application/json", "json")
    })
}

async fn list_models(State(s): State<ServeState>) -> Json<serde_json::Value> {
    let names = s.cache.models();
    let models: Vec<_> = names
        .iter()
        .map(|m| json!({ "name": m, "champion": s.cache.version(m) }))
        .collect();
    Json(json!({ "models": models }))
}

async fn model_versions(State(s): State<ServeState>, Path(model): Path<String>) -> Answer {
    if matches!(s.cache.get(&model), Lookup::Unknown) {
        return Err(unknown_model(&s, &model));
    }
    let listed = async {
        let mut conn = s.pool.acquire().await?;
        registry::list(&mut conn, Some(&model)).await
    };
    let versions = listed
        .await
        .map_err(|e| internal("cannot read the registry", &e))?;
    let champion = versions
        .iter()
        .find(|v| v.status == "champion")
        .map(|v| v.version);
    Ok(Json(json!({ "model": model, "champion": champion, "versions": versions })).into_response())
}

/// Every serving route; all but the health checks need a read (or admin) token, the retrain
/// route the admin token (see [`crate::auth`]).
pub fn router(state: ServeState, tokens: Arc<Tokens>, cfg: &ServeConfig) -> Router {
    let read = Guard::new(tokens.clone(), Access::Read);
    let admin = Guard::new(tokens, Access::Admin);
    let guarded = Router::new()
        .route("/v1/models", get(list_models))
        .route("/v1/models/{model}", get(model_versions))
        .route("/v1/models/{model}/predict", post(predict))
        .route("/v1/models/{model}/champion", get(champion_weights))
        .route("/v1/models/{model}/champion/sidecar", get(champion_sidecar))
        .route("/v2", get(v2_server_metadata))
        .route("/v2/models/{model}", get(v2_metadata))
        .route("/v2/models/{model}/ready", get(v2_ready))
        .route("/v2/models/{model}/infer", post(v2_infer_latest))
        .route(
            "/v2/models/{model}/versions/{version}",
            get(v2_metadata_version),
        )
        .route(
            "/v2/models/{model}/versions/{version}/ready",
            get(v2_ready_version),
        )
        .route(
            "/v2/models/{model}/versions/{version}/infer",
            post(v2_infer_version),
        )
        .route_layer(middleware::from_fn_with_state(read, auth::require));
    let admin_routes = Router::new()
        .route("/v1/models/{model}/retrain", post(super::retrain::retrain))
        .route_layer(middleware::from_fn_with_state(admin, auth::require));
    Router::new()
        .route("/v2/health/live", get(v2_live))
        .route("/v2/health/ready", get(v2_server_ready))
        .merge(guarded)
        .merge(admin_routes)
        .layer(DefaultBodyLimit::max(cfg.max_body_bytes))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn etags_match_strong_weak_and_star() {
        let mut h = HeaderMap::new();
        assert!(!if_none_match(&h, "\"3\""));
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"2\", W/\"3\""),
        );
        assert!(if_none_match(&h, "\"3\""));
        assert!(!if_none_match(&h, "\"4\""));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(if_none_match(&h, "\"4\""));
    }
}
