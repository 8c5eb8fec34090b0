//! Serving the champion to the outside: online predictions (`/v1` JSON and the Open Inference
//! Protocol `/v2`), champion downloads with the version as `ETag`, the version list, and
//! `driftd models import` for models trained elsewhere.
//!
//! Every replica serves every known model (configured, or found through a template), whether or not it owns the model's loop:
//! [`cache::ChampionCache`] holds each champion in memory and [`cache::keep_fresh`] swaps it
//! when the registry announces a change (`NOTIFY driftd_champion`) or a slow poll sees one.
//!
//! - [`predictor`]: the forward pass used for online requests (plain Rust, no libtorch).
//! - [`rows`]: the `/v1/models/{model}/predict` body.
//! - [`v2`]: Open Inference Protocol request parsing and response encoding.
//! - [`http`]: the axum routes (their bearer tokens are checked by [`crate::auth`]).
//! - [`retrain`]: `POST /v1/models/{model}/retrain`, behind the admin token.
//! - [`import`]: reading, validating and registering an outside model.

pub mod cache;
pub mod http;
pub mod import;
pub mod predictor;
pub mod retrain;
pub mod rows;
pub mod v2;

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::{mpsc, watch};

use crate::catalog::Catalog;
use crate::config::Config;

/// The serving routes, the champion cache (a model found at run time is added to it) and the
/// task that keeps it fresh (it ends at shutdown).
pub fn start(
    cfg: &Config,
    catalog: Arc<Catalog>,
    metrics: Arc<crate::exporter::Metrics>,
    pool: PgPool,
    reloads: mpsc::UnboundedReceiver<cache::Reload>,
    shutdown: watch::Receiver<bool>,
) -> (
    axum::Router,
    Arc<cache::ChampionCache>,
    tokio::task::JoinHandle<()>,
) {
    let cache = Arc::new(cache::ChampionCache::new(catalog.names()));
    let task = tokio::spawn(cache::keep_fresh(
        cache.clone(),
        pool.clone(),
        reloads,
        Duration::from_millis(cfg.serve.refresh_interval_ms),
        shutdown,
    ));
    let state = http::ServeState {
        cache: cache.clone(),
        pool,
        catalog,
        max_rows: cfg.serve.max_rows,
        metrics,
    };
    let tokens = Arc::new(crate::auth::Tokens::new(
        cfg.http.read_token.as_ref(),
        cfg.http.admin_token.as_ref(),
    ));
    let router = http::router(state, tokens, &cfg.serve);
    (router, cache, task)
}

pub use crate::config::serve::ServeConfig;
