//! Which replica runs which model. Each model is owned through a PostgreSQL advisory lock held
//! on one dedicated connection; a replica runs a model's loop only while it holds that lock.
//! If the owner dies its connection closes, the server releases the lock, and another replica
//! takes the model over on its next round. The watermark guard in the state store makes a
//! brief overlap harmless: a batch is committed only from the watermark it was read after.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgConnection;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::ModelLoop;
use crate::config::DatabaseConfig;
use crate::db;
use crate::exporter::{Health, Metrics};

struct Owned {
    stop: watch::Sender<bool>,
    loaded: watch::Receiver<bool>,
    task: JoinHandle<ModelLoop>,
}

pub struct Ownership {
    pub db: DatabaseConfig,
    pub interval: Duration,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
}

async fn try_lock(conn: &mut PgConnection, model: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext('driftd.owner'), hashtext($1))")
        .bind(model)
        .fetch_one(conn)
        .await
}

impl Ownership {
    /// Runs until `shutdown`; then stops every owned loop (each finishes its batch) and returns.
    pub async fn run(
        self,
        loops: Vec<(ModelLoop, watch::Receiver<bool>)>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut idle: HashMap<String, (ModelLoop, watch::Receiver<bool>)> = loops
            .into_iter()
            .map(|(l, rx)| (l.cfg.name.clone(), (l, rx)))
            .collect();
        let mut owned: HashMap<String, Owned> = HashMap::new();
        let mut conn: Option<PgConnection> = None;
        let mut announced_ready = false;
        loop {
            // A loop that ended by itself is idle again (its lock stays with this connection).
            let finished: Vec<String> = owned
                .iter()
                .filter(|(_, o)| o.task.is_finished())
                .map(|(n, _)| n.clone())
                .collect();
            for name in finished {
                let o = owned.remove(&name).expect("listed above");
                if let Ok(l) = o.task.await {
                    idle.insert(name, (l, o.loaded));
                }
            }
            let alive = match conn.as_mut() {
                Some(c) => sqlx::query("SELECT 1").execute(c).await.is_ok(),
                None => false,
            };
            self.set_db_up(alive);
            if !alive {
                if conn.take().is_some() || !owned.is_empty() {
                    tracing::warn!(
                        owned = owned.len(),
                        "ownership connection lost; stopping owned models"
                    );
                }
                self.release_all(&mut owned, &mut idle).await;
                match db::connect_one(&self.db).await {
                    Ok(c) => {
                        self.set_db_up(true);
                        conn = Some(c);
                    }
                    Err(e) => {
                        self.metrics.poll_failed("", "database");
                        tracing::warn!(error = %e, "database unreachable; retrying");
                    }
                }
            }
            let mut newly = Vec::new();
            if let Some(c) = conn.as_mut() {
                let names: Vec<String> = idle.keys().cloned().collect();
                for name in names {
                    match try_lock(c, &name).await {
                        Ok(true) => {
                            let (lp, loaded) = idle.remove(&name).expect("listed above");
                            let (stop, stop_rx) = watch::channel(false);
                            let mut global = shutdown.clone();
                            let fwd = stop.clone();
                            tokio::spawn(async move {
                                let _ = global.wait_for(|s| *s).await;
                                let _ = fwd.send(true);
                            });
                            tracing::info!(model = %name, "owning model");
                            self.metrics.model_owner.with_label_values(&[&name]).set(1);
                            owned.insert(
                                name.clone(),
                                Owned {
                                    stop,
                                    loaded,
                                    task: tokio::spawn(lp.run(stop_rx)),
                                },
                            );
                            newly.push(name);
                        }
                        Ok(false) => {
                            self.metrics.model_owner.with_label_values(&[&name]).set(0);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "advisory lock query failed");
                            break;
                        }
                    }
                }
            }
            // Report readiness as soon as what we just took over is loaded, not a round later.
            for name in &newly {
                if let Some(o) = owned.get(name) {
                    let mut rx = o.loaded.clone();
                    tokio::select! {
                        _ = tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|l| *l)) => {}
                        _ = shutdown.wait_for(|s| *s) => {}
                    }
                }
            }
            // Ready: this replica reaches the database and has loaded every model it owns
            // (a standby that owns nothing is ready too).
            let loaded = conn.is_some() && owned.values().all(|o| *o.loaded.borrow());
            self.health.state_loaded.store(loaded, Ordering::Relaxed);
            if loaded && !announced_ready {
                announced_ready = true;
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
                tracing::info!(owned = owned.len(), "ready");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = shutdown.wait_for(|s| *s) => break,
            }
        }
        for (_, o) in owned.drain() {
            let _ = o.stop.send(true);
            let _ = o.task.await;
        }
    }

    fn set_db_up(&self, up: bool) {
        self.health.database_up.store(up, Ordering::Relaxed);
        self.metrics.database_up.set(if up { 1.0 } else { 0.0 });
    }

    async fn release_all(
        &self,
        owned: &mut HashMap<String, Owned>,
        idle: &mut HashMap<String, (ModelLoop, watch::Receiver<bool>)>,
    ) {
        for (name, o) in owned.drain() {
            let _ = o.stop.send(true);
            self.metrics.model_owner.with_label_values(&[&name]).set(0);
            if let Ok(l) = o.task.await {
                // The next owner (maybe us again) loads the committed state afresh.
                let _ = l.loaded.send(false);
                idle.insert(name, (l, o.loaded));
            }
        }
    }
}
