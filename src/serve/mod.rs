//! Serving the champion to the outside: online predictions (`/v1` JSON and the Open Inference
//! Protocol `/v2`), champion downloads with the version as `ETag`, the version list, and
//! `driftd models import` for models trained elsewhere.
//!
//! Every replica serves every configured model, whether or not it owns the model's loop:
//! [`cache::ChampionCache`] holds each champion in memory and [`cache::keep_fresh`] swaps it
//! when the registry announces a change (`NOTIFY driftd_champion`) or a slow poll sees one.
//!
//! - [`predictor`]: the forward pass used for online requests (plain Rust, no libtorch).
//! - [`rows`]: the `/v1/models/{model}/predict` body.
//! - [`v2`]: Open Inference Protocol request parsing and response encoding.
//! - [`http`]: the axum routes and the bearer-token guard.
//! - [`import`]: reading, validating and registering an outside model.

pub mod cache;
pub mod http;
pub mod import;
pub mod predictor;
pub mod rows;
pub mod v2;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use sqlx::PgPool;
use tokio::sync::watch;

use crate::config::{Config, DatabaseConfig};

/// The serving routes and the task that keeps their champions fresh (it ends at shutdown).
pub fn start(
    cfg: &Config,
    database: &DatabaseConfig,
    pool: PgPool,
    shutdown: watch::Receiver<bool>,
) -> (axum::Router, tokio::task::JoinHandle<()>) {
    let cache = Arc::new(cache::ChampionCache::new(
        cfg.models.iter().map(|m| m.name.clone()),
    ));
    let task = tokio::spawn(cache::keep_fresh(
        cache.clone(),
        pool.clone(),
        database.clone(),
        Duration::from_millis(cfg.serve.refresh_interval_ms),
        shutdown,
    ));
    let state = http::ServeState {
        cache,
        pool,
        feature_names: Arc::new(
            cfg.models
                .iter()
                .map(|m| (m.name.clone(), m.feature_names.clone()))
                .collect::<HashMap<_, _>>(),
        ),
        max_rows: cfg.serve.max_rows,
    };
    let tokens = [&cfg.http.read_token, &cfg.http.admin_token]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    let router = http::router(state, http::ReadTokens(Arc::new(tokens)), &cfg.serve);
    (router, task)
}

/// `[serve]`: limits of the prediction routes and how often champions are re-checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// Most rows one prediction request may carry. Default 10 000.
    pub max_rows: usize,
    /// Largest request body accepted, in bytes. Default 8 MiB.
    pub max_body_bytes: usize,
    /// The fallback check of every champion's version, for a lost notification. Default 10 s.
    pub refresh_interval_ms: u64,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            max_rows: 10_000,
            max_body_bytes: 8 << 20,
            refresh_interval_ms: 10_000,
        }
    }
}

impl ServeConfig {
    /// `(key, reason)` for the first bad setting.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.max_rows == 0 {
            return Err(("max_rows", "must be at least 1".into()));
        }
        if self.max_body_bytes < 1024 {
            return Err(("max_body_bytes", "must be at least 1024".into()));
        }
        if self.refresh_interval_ms < 100 {
            return Err(("refresh_interval_ms", "must be at least 100".into()));
        }
        Ok(())
    }
}
