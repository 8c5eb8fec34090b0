//! Which replica runs which model. Each model is owned through a PostgreSQL advisory lock held
//! on one dedicated connection; a replica runs a model's loop only while it holds that lock.
//! If the owner dies its connection closes, the server releases the lock, and another replica
//! takes the model over on its next round. The watermark guard in the state store makes a
//! brief overlap harmless: a batch is committed only from the watermark it was read after.
//!
//! Balance: each round the replica refreshes its heartbeat (`membership`), computes its share
//! of the models from the live replicas, hands over models above its share (the loop finishes
//! its batch and commits, then the lock is released) and locks free models below it.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgConnection;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::membership;
use super::ModelLoop;
use crate::config::DatabaseConfig;
use crate::db;
use crate::exporter::{DatabaseHealth, Health, Metrics};

struct Owned {
    stop: watch::Sender<bool>,
    loaded: watch::Receiver<bool>,
    task: JoinHandle<ModelLoop>,
}

use super::adopt::Idle;

pub struct Ownership {
    pub db: DatabaseConfig,
    pub interval: Duration,
    /// A replica whose heartbeat is older than this no longer counts as live.
    pub replica_ttl: Duration,
    pub metrics: Arc<Metrics>,
    /// `/readyz`: this replica has loaded every model it owns.
    pub health: Arc<Health>,
    /// Whether the ownership connection answers.
    pub database: DatabaseHealth,
}

async fn try_lock(conn: &mut PgConnection, model: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext('driftd.owner'), hashtext($1))")
        .bind(model)
        .fetch_one(conn)
        .await
}

/// Releases every hold this session has on the model's lock (a re-taken lock stacks).
async fn unlock(conn: &mut PgConnection, model: &str) -> Result<(), sqlx::Error> {
    for _ in 0..64 {
        let released: bool =
            sqlx::query_scalar("SELECT pg_advisory_unlock(hashtext('driftd.owner'), hashtext($1))")
                .bind(model)
                .fetch_one(&mut *conn)
                .await?;
        if !released {
            break;
        }
    }
    Ok(())
}

/// One replica's view: the loops it runs, the ones it could run, and its lock connection.
struct Holdings {
    me: String,
    idle: HashMap<String, Idle>,
    owned: HashMap<String, Owned>,
    conn: Option<PgConnection>,
    total: usize,
}

impl Holdings {
    /// Takes in the loops of newly adopted models: the share of every replica grows.
    fn receive(&mut self, loops: &mut mpsc::UnboundedReceiver<Idle>, metrics: &Metrics) {
        while let Ok((l, rx)) = loops.try_recv() {
            metrics.ownership.set_owner(&l.cfg.name, false);
            self.idle.insert(l.cfg.name.clone(), (l, rx));
            self.total += 1;
        }
    }
}

impl Ownership {
    /// Runs until `shutdown`; then stops every owned loop (each finishes its batch) and returns.
    /// `loops` brings the models adopted at start and, later, the ones discovery finds.
    pub async fn run(
        self,
        mut loops: mpsc::UnboundedReceiver<Idle>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut h = Holdings {
            me: membership::replica_id(),
            idle: HashMap::new(),
            owned: HashMap::new(),
            conn: None,
            total: 0,
        };
        h.receive(&mut loops, &self.metrics);
        tracing::info!(replica = %h.me, models = h.total, "joining the cluster");
        let mut announced_ready = false;
        loop {
            h.receive(&mut loops, &self.metrics);
            self.collect_finished(&mut h).await;
            self.ensure_connection(&mut h).await;
            let quota = self.quota(&mut h).await;
            self.hand_over_above(&mut h, quota).await;
            let newly = self.take_up_to(&mut h, quota, &shutdown).await;
            self.wait_loaded(&h, &newly, &mut shutdown).await;
            // Ready: this replica reaches the database and has loaded every model it owns
            // (a replica that owns nothing is ready too).
            let loaded = h.conn.is_some() && h.owned.values().all(|o| *o.loaded.borrow());
            self.health.state_loaded.store(loaded, Ordering::Relaxed);
            if loaded && !announced_ready {
                announced_ready = true;
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
                tracing::info!(owned = h.owned.len(), "ready");
            }
            let not_ready = match h.conn {
                None => Some("database unreachable".to_string()),
                Some(_) => self.health.not_ready_reason(),
            };
            crate::systemd::ownership_status(h.owned.len(), h.total, not_ready);
            crate::systemd::ping_if_alive(h.owned.keys().map(String::as_str));
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = shutdown.wait_for(|s| *s) => break,
            }
        }
        for (_, o) in h.owned.drain() {
            let _ = o.stop.send(true);
            let _ = o.task.await;
        }
        if let Some(c) = h.conn.as_mut() {
            if let Err(e) = crate::registry::replicas::leave(c, &h.me).await {
                tracing::warn!(error = %e, "could not remove this replica's heartbeat");
            }
        }
    }

    /// A loop that ended by itself is idle again (its lock stays with this connection).
    async fn collect_finished(&self, h: &mut Holdings) {
        let finished: Vec<String> = h
            .owned
            .iter()
            .filter(|(_, o)| o.task.is_finished())
            .map(|(n, _)| n.clone())
            .collect();
        for name in finished {
            let o = h.owned.remove(&name).expect("listed above");
            if let Ok(l) = o.task.await {
                h.idle.insert(name, (l, o.loaded));
            }
        }
    }

    /// Checks the lock connection; if it is gone, every owned loop stops (the server has
    /// released the locks) and a new connection is tried.
    async fn ensure_connection(&self, h: &mut Holdings) {
        let alive = match h.conn.as_mut() {
            Some(c) => sqlx::query("SELECT 1").execute(c).await.is_ok(),
            None => false,
        };
        self.database.set(alive);
        if alive {
            return;
        }
        if h.conn.take().is_some() || !h.owned.is_empty() {
            tracing::warn!(
                owned = h.owned.len(),
                "ownership connection lost; stopping owned models"
            );
        }
        let names: Vec<String> = h.owned.keys().cloned().collect();
        for name in names {
            self.stop_loop(h, &name).await;
        }
        match db::connect_one(&self.db).await {
            Ok(c) => {
                self.database.set(true);
                h.conn = Some(c);
            }
            Err(e) => {
                self.metrics.ingest.daemon_database_failed();
                tracing::warn!(error = %e, "database unreachable; retrying");
            }
        }
    }

    /// This replica's share of the models. If membership cannot be read, every model (the
    /// locks still keep one owner per model; only the balance is lost until it can).
    async fn quota(&self, h: &mut Holdings) -> usize {
        let Some(c) = h.conn.as_mut() else {
            return 0;
        };
        match crate::registry::replicas::heartbeat(c, &h.me, h.owned.len(), self.replica_ttl).await
        {
            Ok(live) => {
                self.metrics.ownership.set_live_replicas(live.len().max(1));
                membership::quota(h.total, &live, &h.me)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot refresh the heartbeat; not balancing");
                h.total
            }
        }
    }

    /// Hands models above the share over: the loop finishes its batch and commits, then the
    /// lock is released for a replica below its share to take.
    async fn hand_over_above(&self, h: &mut Holdings, quota: usize) {
        if h.owned.len() <= quota {
            return;
        }
        let mut names: Vec<String> = h.owned.keys().cloned().collect();
        names.sort_unstable();
        let excess = names.split_off(quota);
        tracing::info!(
            handing_over = excess.len(),
            keeping = quota,
            "above this replica's share"
        );
        for name in excess {
            self.stop_loop(h, &name).await;
            if let Some(c) = h.conn.as_mut() {
                if let Err(e) = unlock(c, &name).await {
                    tracing::warn!(model = %name, error = %e, "cannot release the lock");
                }
            }
            tracing::info!(model = %name, "handed over");
        }
    }

    /// Stops an owned loop gracefully and keeps it idle for a later takeover.
    async fn stop_loop(&self, h: &mut Holdings, name: &str) {
        let Some(o) = h.owned.remove(name) else {
            return;
        };
        let _ = o.stop.send(true);
        self.metrics.ownership.set_owner(name, false);
        if let Ok(l) = o.task.await {
            // The next owner (maybe us again) loads the committed state afresh.
            let _ = l.loaded.send(false);
            h.idle.insert(name.to_string(), (l, o.loaded));
        }
    }

    /// Locks free models until this replica owns its share; returns the ones it took.
    async fn take_up_to(
        &self,
        h: &mut Holdings,
        quota: usize,
        shutdown: &watch::Receiver<bool>,
    ) -> Vec<String> {
        let mut newly = Vec::new();
        let Some(c) = h.conn.as_mut() else {
            return newly;
        };
        // At its share (the usual round): nothing to look at. Idle models' owner gauges were
        // set to 0 when they arrived or were stopped.
        if h.owned.len() >= quota {
            return newly;
        }
        let mut names: Vec<String> = h.idle.keys().cloned().collect();
        // Replicas start their search at different places, so that they do not all race
        // for the same free models.
        names.sort_unstable();
        if !names.is_empty() {
            let start = rand::random::<usize>() % names.len();
            names.rotate_left(start);
        }
        for name in names {
            if h.owned.len() >= quota {
                self.metrics.ownership.set_owner(&name, false);
                continue;
            }
            match try_lock(c, &name).await {
                Ok(true) => {
                    let (lp, loaded) = h.idle.remove(&name).expect("listed above");
                    let (stop, stop_rx) = watch::channel(false);
                    let mut global = shutdown.clone();
                    let fwd = stop.clone();
                    tokio::spawn(async move {
                        let _ = global.wait_for(|s| *s).await;
                        let _ = fwd.send(true);
                    });
                    tracing::info!(model = %name, "owning model");
                    self.metrics.ownership.set_owner(&name, true);
                    h.owned.insert(
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
                    self.metrics.ownership.set_owner(&name, false);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "advisory lock query failed");
                    break;
                }
            }
        }
        newly
    }

    /// Reports readiness as soon as what was just taken over is loaded, not a round later.
    async fn wait_loaded(
        &self,
        h: &Holdings,
        newly: &[String],
        shutdown: &mut watch::Receiver<bool>,
    ) {
        for name in newly {
            if let Some(o) = h.owned.get(name) {
                let mut rx = o.loaded.clone();
                tokio::select! {
                    _ = tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|l| *l)) => {}
                    _ = shutdown.wait_for(|s| *s) => {}
                }
            }
        }
    }
}
