//! One task per model: poll a batch, fold it into the monitor state, commit state and
//! watermark together, export. Owns the model's state; nothing else mutates it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use sqlx::PgPool;
use tokio::sync::{watch, Notify};

use super::store::{self, BatchCommit, StoreError};
use crate::config::{ModelConfig, PollConfig};
use crate::db::Backoff;
use crate::exporter::Metrics;
use crate::monitor::{MonitorEvent, MonitorState};
use crate::outcomes::{validate, OutcomeSource, Rejection, Watermark};

pub struct ModelLoop {
    pub cfg: ModelConfig,
    pub poll: PollConfig,
    pub source: Arc<OutcomeSource>,
    pub pool: PgPool,
    pub metrics: Arc<Metrics>,
    pub wake: Arc<Notify>,
    /// Set once this model's state has been loaded (feeds `/readyz`).
    pub loaded: watch::Sender<bool>,
    pub db_up: Arc<dyn Fn(bool) + Send + Sync>,
}

/// What one poll did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepOutcome {
    pub rows: usize,
    pub rejected: usize,
}

struct Live {
    watermark: Watermark,
    state: MonitorState,
}

impl ModelLoop {
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let name = self.cfg.name.clone();
        let mut backoff = Backoff::new(200, self.poll.max_backoff_ms);
        let mut live: Option<Live> = None;
        while !*shutdown.borrow() {
            let result = match live.as_mut() {
                None => self.load().await.map(|l| {
                    live = Some(l);
                    let _ = self.loaded.send(true);
                    StepOutcome { rows: 0, rejected: 0 }
                }),
                Some(l) => self.step(l).await,
            };
            let wait = match result {
                Ok(step) => {
                    (self.db_up)(true);
                    backoff.reset();
                    if let Some(l) = &live {
                        let lag = (Utc::now() - l.watermark.labeled_at).num_milliseconds() as f64 / 1e3;
                        if l.watermark != Watermark::start() {
                            self.metrics.watermark_lag.with_label_values(&[&name]).set(lag.max(0.0));
                        }
                    }
                    if step.rows as u32 >= self.poll.batch_size {
                        continue; // more is waiting: no pause between full batches
                    }
                    Duration::from_millis(self.poll.interval_ms)
                }
                Err(StoreError::Conflict(_)) => {
                    tracing::warn!(model = %name, "watermark moved under us; reloading state");
                    live = None;
                    Duration::ZERO
                }
                Err(e) => {
                    self.metrics.poll_errors.inc();
                    (self.db_up)(false);
                    let d = backoff.next_delay();
                    tracing::warn!(model = %name, error = %e, retry_in_ms = d.as_millis() as u64, "poll failed");
                    if matches!(e, StoreError::Corrupt { .. }) {
                        live = None;
                    }
                    d
                }
            };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
        }
        tracing::info!(model = %name, "poller stopped");
    }

    async fn load(&self) -> Result<Live, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let loaded = store::load(&mut conn, &self.cfg).await?;
        tracing::info!(
            model = %self.cfg.name,
            rows = loaded.state.rows,
            watermark_id = loaded.watermark.id,
            "monitor state loaded"
        );
        self.metrics.publish_monitor(&self.cfg.name, &loaded.state);
        self.metrics.outcomes_processed.with_label_values(&[&self.cfg.name]);
        Ok(Live {
            watermark: loaded.watermark,
            state: loaded.state,
        })
    }

    /// Reads, folds and commits one batch. The in-memory state only advances after commit.
    async fn step(&self, live: &mut Live) -> Result<StepOutcome, StoreError> {
        let started = Instant::now();
        let mut conn = self.pool.acquire().await?;
        let raw = self
            .source
            .poll(&mut conn, &self.cfg.name, live.watermark, self.poll.settle_ms, self.poll.batch_size)
            .await?;
        let Some(last) = raw.last() else {
            return Ok(StepOutcome { rows: 0, rejected: 0 });
        };
        let to = Watermark {
            labeled_at: last.labeled_at,
            id: last.id,
        };
        let mut next = live.state.clone();
        let mut rejected: Vec<Rejection> = Vec::new();
        let mut events: Vec<MonitorEvent> = Vec::new();
        let mut delays = Vec::with_capacity(raw.len());
        for r in &raw {
            match validate(r, self.cfg.n_features, self.cfg.task, self.cfg.n_classes) {
                Ok(o) => {
                    events.extend(next.update(&o));
                    if let Some(created) = r.created_at {
                        delays.push((r.labeled_at - created).num_milliseconds() as f64 / 1e3);
                    }
                }
                Err(rej) => rejected.push(rej),
            }
        }
        store::commit(
            &mut conn,
            &BatchCommit {
                model: &self.cfg.name,
                from: live.watermark,
                to,
                state: &next,
                rejected: &rejected,
                events: &events,
            },
        )
        .await?;
        live.state = next;
        live.watermark = to;
        self.export(&raw.len(), &rejected, &events, &delays, live);
        self.metrics.poll_duration.observe(started.elapsed().as_secs_f64());
        Ok(StepOutcome {
            rows: raw.len(),
            rejected: rejected.len(),
        })
    }

    fn export(&self, n: &usize, rejected: &[Rejection], events: &[MonitorEvent], delays: &[f64], live: &Live) {
        let name = self.cfg.name.as_str();
        let m = &self.metrics;
        m.outcomes_processed
            .with_label_values(&[name])
            .inc_by((n - rejected.len()) as u64);
        if !rejected.is_empty() {
            let mut by_reason = std::collections::BTreeMap::new();
            for r in rejected {
                *by_reason.entry(r.reason.as_str()).or_insert(0u64) += 1;
            }
            for (reason, count) in &by_reason {
                m.rows_rejected.with_label_values(&[name, reason]).inc_by(*count);
            }
            // Once per batch, not once per row: a flood of bad rows must not flood the log.
            tracing::warn!(model = name, rejected = rejected.len(), reasons = ?by_reason,
                first_id = rejected[0].id, "rows set aside in driftd.rejected_rows");
        }
        let hist = m.label_delay.with_label_values(&[name]);
        for d in delays {
            hist.observe(d.max(0.0));
        }
        for e in events {
            match e {
                MonitorEvent::Drift {
                    detector,
                    row_id,
                    labeled_at,
                    estimate,
                    ..
                } => {
                    m.drift_detected.with_label_values(&[name, detector]).inc();
                    m.last_drift_timestamp
                        .with_label_values(&[name])
                        .set(labeled_at.timestamp() as f64);
                    tracing::info!(model = name, detector = %detector, row_id, estimate, "drift detected");
                }
                MonitorEvent::Warning { detector, row_id, .. } => {
                    tracing::debug!(model = name, detector = %detector, row_id, "drift warning");
                }
            }
        }
        m.publish_monitor(name, &live.state);
    }
}
