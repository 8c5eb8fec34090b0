//! Every replica's copy of every model's champion, kept fresh from the registry.
//!
//! Each configured model has one slot holding an `Arc` of the serving champion. A reload builds
//! the whole new [`Served`] value first and then swaps the `Arc` under a write lock held for a
//! pointer store, so a request sees either the old champion or the new one, never a mixture,
//! and the version it reports is the one that computed its answer. Reloads are asked for by
//! the daemon's `LISTEN` connection on the registry's `NOTIFY driftd_champion` (sent in the
//! transaction that changes a champion) and, as a fallback for lost notifications, by a slow
//! poll of every champion's version.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use sqlx::{PgConnection, PgPool};
use tokio::sync::{mpsc, watch};

use super::predictor::Predictor;
use crate::db::Backoff;
use crate::registry::{self, VersionInfo};

/// A champion ready to serve: its predictor and its downloadable files, all of one version.
pub struct Served {
    pub info: VersionInfo,
    pub predictor: Predictor,
    /// The safetensors file (`GET /v1/models/{model}/champion`).
    pub safetensors: Bytes,
    /// The JSON sidecar (`GET /v1/models/{model}/champion/sidecar`).
    pub sidecar: Bytes,
}

impl Served {
    pub fn version(&self) -> i64 {
        self.info.version
    }
}

/// What a lookup found.
pub enum Lookup {
    /// No model of that name is configured.
    Unknown,
    /// Configured, but there is no champion (yet), or it could not be loaded.
    NoChampion,
    Ready(Arc<Served>),
}

type Slot = RwLock<Option<Arc<Served>>>;

/// One slot per known model; a model found at run time gets its slot through [`Self::add`].
pub struct ChampionCache {
    slots: RwLock<HashMap<String, Arc<Slot>>>,
    /// Set after the first full load, for `/v2/health/ready`.
    loaded: AtomicBool,
}

impl ChampionCache {
    pub fn new(models: impl IntoIterator<Item = String>) -> Self {
        ChampionCache {
            slots: RwLock::new(
                models
                    .into_iter()
                    .map(|m| (m, Arc::new(RwLock::new(None))))
                    .collect(),
            ),
            loaded: AtomicBool::new(false),
        }
    }

    /// Gives a model found at run time its (empty) slot; the next refresh loads it.
    pub fn add(&self, model: &str) {
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        slots
            .entry(model.to_string())
            .or_insert_with(|| Arc::new(RwLock::new(None)));
    }

    fn slot(&self, model: &str) -> Option<Arc<Slot>> {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        slots.get(model).cloned()
    }

    pub fn get(&self, model: &str) -> Lookup {
        let Some(slot) = self.slot(model) else {
            return Lookup::Unknown;
        };
        let served = slot.read().unwrap_or_else(|p| p.into_inner()).clone();
        match served {
            Some(s) => Lookup::Ready(s),
            None => Lookup::NoChampion,
        }
    }

    pub fn version(&self, model: &str) -> Option<i64> {
        match self.get(model) {
            Lookup::Ready(s) => Some(s.version()),
            _ => None,
        }
    }

    /// Every model with a slot, in order.
    pub fn models(&self) -> Vec<String> {
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        let mut names: Vec<String> = slots.keys().cloned().collect();
        names.sort_unstable();
        names
    }

    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Relaxed)
    }

    fn install(&self, model: &str, served: Option<Arc<Served>>) {
        if let Some(slot) = self.slot(model) {
            *slot.write().unwrap_or_else(|p| p.into_inner()) = served;
        }
    }

    /// Loads `model`'s champion if its version differs from the one serving.
    pub async fn refresh(&self, conn: &mut PgConnection, model: &str) -> Result<(), sqlx::Error> {
        if self.slot(model).is_none() {
            return Ok(());
        }
        let current = registry::champion_version(conn, model).await?;
        if current == self.version(model) {
            return Ok(());
        }
        let served = match registry::champion(conn, model).await {
            Ok(Some((info, artifact))) => match Predictor::new(&artifact) {
                Ok(predictor) => Some(Arc::new(Served {
                    info: info.without_trace(),
                    predictor,
                    safetensors: Bytes::from(artifact.to_safetensors_bytes()),
                    sidecar: Bytes::from(artifact.sidecar_json()),
                })),
                Err(e) => {
                    tracing::error!(model, error = %e, "champion unusable; not serving it");
                    None
                }
            },
            Ok(None) => None,
            Err(registry::RegistryError::Db(e)) => return Err(e),
            Err(e) => {
                tracing::error!(model, error = %e, "cannot load the champion; not serving it");
                None
            }
        };
        let version = served.as_ref().map(|s| s.version());
        self.install(model, served);
        tracing::info!(model, version, "serving champion changed");
        Ok(())
    }

    /// Refreshes every model whose champion changed: one query for all the versions, then a
    /// load only for those that differ (an idle check costs one query, whatever the models).
    pub async fn refresh_all(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        let champions: HashMap<String, i64> = registry::champion_versions(conn)
            .await?
            .into_iter()
            .collect();
        for m in &self.models() {
            if champions.get(m).copied() != self.version(m) {
                self.refresh(conn, m).await?;
            }
        }
        self.loaded.store(true, Ordering::Relaxed);
        Ok(())
    }
}

/// The model a `driftd_champion` notification names (`{"model": …, "version": …}`).
pub fn notified_model(payload: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(payload).ok()?;
    v.get("model")?.as_str().map(str::to_string)
}

/// What to reload: one model (its champion changed) or every one (a `LISTEN` session began,
/// so changes made before it may not have been heard).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    Model(String),
    All,
}

/// Keeps `cache` fresh until shutdown: a full load at start, then what `reloads` asks for
/// (the daemon's `LISTEN` connection sends them), and a full check every `poll` for
/// notifications lost. Database errors back off and never stop serving what is loaded.
pub async fn keep_fresh(
    cache: Arc<ChampionCache>,
    pool: PgPool,
    mut reloads: mpsc::UnboundedReceiver<Reload>,
    poll: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new(200, 10_000);
    let mut next = Some(Reload::All);
    loop {
        if let Some(reload) = next.take() {
            let done = async {
                let mut conn = pool.acquire().await?;
                match &reload {
                    Reload::All => cache.refresh_all(&mut conn).await,
                    Reload::Model(m) => cache.refresh(&mut conn, m).await,
                }
            };
            if let Err(e) = done.await {
                let d = backoff.next_delay();
                tracing::debug!(error = %e, retry_in_ms = d.as_millis() as u64, "champion refresh failed; serving what is loaded");
                // Whatever was asked, everything is reloaded once the database answers.
                next = Some(Reload::All);
                tokio::select! {
                    _ = tokio::time::sleep(d) => continue,
                    _ = shutdown.wait_for(|s| *s) => return,
                }
            }
            backoff.reset();
        }
        // A closed channel (the listener has ended) leaves the slow poll.
        next = tokio::select! {
            Some(r) = reloads.recv() => Some(r),
            _ = tokio::time::sleep(poll) => Some(Reload::All),
            _ = shutdown.wait_for(|s| *s) => return,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_payloads() {
        assert_eq!(
            notified_model(r#"{"model": "churn", "version": 4}"#).as_deref(),
            Some("churn")
        );
        assert_eq!(notified_model("churn"), None);
        assert_eq!(notified_model(r#"{"version": 4}"#), None);
    }

    #[test]
    fn unknown_and_empty_models() {
        let c = ChampionCache::new(["a".to_string()]);
        assert!(matches!(c.get("a"), Lookup::NoChampion));
        assert!(matches!(c.get("b"), Lookup::Unknown));
        assert!(!c.is_loaded());
    }
}
