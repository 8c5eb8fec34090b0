//! Runs a model's updates: one at a time, on a blocking thread, recording every run and
//! registering the result. Triggers that arrive while a run is going are coalesced into one
//! follow-up run. A failed or cancelled run never touches the champion.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::task::JoinHandle;

use crate::config::{ModelConfig, Task};
use crate::exporter::Metrics;
use crate::outcomes::{OutcomeSource, TrainingRow, Watermark};
use crate::policy::TrainRequest;
use crate::registry::{self, NewVersion, RunStatus};
use crate::train::{self, Dataset, Strategy, TrainError, UpdateRequest};

/// How a run ended, for the model loop (policy bookkeeping) and the metrics.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub run_id: i64,
    pub status: RunStatus,
    pub new_champion: Option<i64>,
}

struct Running {
    run_id: i64,
    trigger: &'static str,
    cancel: Arc<AtomicBool>,
    task: JoinHandle<RunResult>,
}

pub struct Trainer {
    pub cfg: ModelConfig,
    pub pool: PgPool,
    pub source: Arc<OutcomeSource>,
    pub metrics: Arc<Metrics>,
    running: Option<Running>,
    follow_up: Option<TrainRequest>,
}

impl Trainer {
    pub fn new(
        cfg: ModelConfig,
        pool: PgPool,
        source: Arc<OutcomeSource>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Trainer {
            cfg,
            pool,
            source,
            metrics,
            running: None,
            follow_up: None,
        }
    }

    /// Starts `req` now, or coalesces it into the follow-up of the running update.
    pub async fn submit(&mut self, req: TrainRequest, upto: Watermark) -> Result<(), sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        if self.running.is_some() {
            let trigger = req.trigger.as_str();
            match req.run_id {
                Some(id) => {
                    registry::runs_finish(
                        &mut conn,
                        id,
                        RunStatus::Coalesced,
                        None,
                        &serde_json::json!([]),
                        None,
                    )
                    .await?
                }
                None => {
                    registry::runs_create(
                        &mut conn,
                        &self.cfg.name,
                        trigger,
                        &req.reason,
                        req.strategy.as_str(),
                        RunStatus::Coalesced,
                    )
                    .await?;
                }
            }
            self.metrics
                .retrains
                .with_label_values(&[&self.cfg.name, trigger, "coalesced"])
                .inc();
            tracing::info!(model = %self.cfg.name, trigger, reason = %req.reason, "training in progress; coalesced into one follow-up run");
            self.follow_up = Some(req);
            return Ok(());
        }
        let run_id = match req.run_id {
            Some(id) => id,
            None => {
                registry::runs_create(
                    &mut conn,
                    &self.cfg.name,
                    req.trigger.as_str(),
                    &req.reason,
                    req.strategy.as_str(),
                    RunStatus::Running,
                )
                .await?
            }
        };
        let cancel = Arc::new(AtomicBool::new(false));
        let job = Job {
            cfg: self.cfg.clone(),
            pool: self.pool.clone(),
            source: self.source.clone(),
            metrics: self.metrics.clone(),
            run_id,
            req: req.clone(),
            upto,
            cancel: cancel.clone(),
        };
        tracing::info!(model = %self.cfg.name, run_id, trigger = req.trigger.as_str(), strategy = %req.strategy, reason = %req.reason, "training started");
        self.running = Some(Running {
            run_id,
            trigger: req.trigger.as_str(),
            cancel,
            task: tokio::spawn(job.run()),
        });
        Ok(())
    }

    /// If the running update finished, collects it and starts the coalesced follow-up.
    pub async fn poll(&mut self, upto: Watermark) -> Option<RunResult> {
        if !self.running.as_ref().is_some_and(|r| r.task.is_finished()) {
            return None;
        }
        let r = self.running.take().expect("checked above");
        let result = match r.task.await {
            Ok(res) => res,
            Err(e) => {
                tracing::error!(model = %self.cfg.name, error = %e, "training task panicked");
                RunResult {
                    run_id: r.run_id,
                    status: RunStatus::Failed,
                    new_champion: None,
                }
            }
        };
        self.record(r.trigger, &result);
        if let Some(next) = self.follow_up.take() {
            let next = TrainRequest {
                run_id: None,
                ..next
            };
            if let Err(e) = self.submit(next, upto).await {
                tracing::warn!(model = %self.cfg.name, error = %e, "could not start the follow-up run");
            }
        }
        Some(result)
    }

    fn record(&self, trigger: &str, result: &RunResult) {
        let outcome = match result.status {
            RunStatus::Promoted => "promoted",
            RunStatus::Kept => "kept",
            RunStatus::Cancelled => "cancelled",
            _ => "failed",
        };
        self.metrics
            .retrains
            .with_label_values(&[&self.cfg.name, trigger, outcome])
            .inc();
        self.metrics
            .last_retrain_timestamp
            .with_label_values(&[&self.cfg.name])
            .set(chrono::Utc::now().timestamp() as f64);
        if let Some(v) = result.new_champion {
            self.metrics
                .champion_version
                .with_label_values(&[&self.cfg.name])
                .set(v);
        }
    }

    /// Shutdown: asks the running update to stop and waits up to `grace` for it to record that.
    pub async fn cancel(&mut self, grace: Duration) {
        let Some(mut r) = self.running.take() else {
            return;
        };
        r.cancel.store(true, Ordering::Relaxed);
        match tokio::time::timeout(grace, &mut r.task).await {
            Ok(Ok(res)) => self.record(r.trigger, &res),
            _ => {
                tracing::warn!(model = %self.cfg.name, run_id = r.run_id, "training did not stop within the grace period")
            }
        }
    }
}

struct Job {
    cfg: ModelConfig,
    pool: PgPool,
    source: Arc<OutcomeSource>,
    metrics: Arc<Metrics>,
    run_id: i64,
    req: TrainRequest,
    upto: Watermark,
    cancel: Arc<AtomicBool>,
}

fn to_dataset(rows: &[TrainingRow], n_features: usize, task: Task, n_classes: u32) -> Dataset {
    let mut d = Dataset::empty(n_features);
    for r in rows {
        let Some(f) = &r.features else { continue };
        if f.len() != n_features || f.iter().any(|v| !v.is_some_and(f64::is_finite)) {
            continue;
        }
        let Some(label) = r.label else { continue };
        let valid = match task {
            Task::Binary => label == 0.0 || label == 1.0,
            Task::Multiclass => {
                label.fract() == 0.0 && label >= 0.0 && label < f64::from(n_classes)
            }
        };
        if !valid {
            continue;
        }
        d.x.extend(f.iter().map(|v| v.unwrap_or(0.0) as f32));
        d.y.push(label as f32);
        d.ts.push(r.labeled_at.timestamp());
        d.ids.push(r.id);
    }
    d
}

impl Job {
    async fn run(self) -> RunResult {
        let started = Instant::now();
        let (status, version, candidates, error) = match self.train().await {
            Ok((status, version, candidates)) => (status, version, candidates, None),
            Err(JobError::Cancelled) => (
                RunStatus::Cancelled,
                None,
                serde_json::json!([]),
                Some("cancelled at shutdown".to_string()),
            ),
            Err(e) => (
                RunStatus::Failed,
                None,
                serde_json::json!([]),
                Some(e.to_string()),
            ),
        };
        self.metrics
            .training_duration
            .with_label_values(&[self.req.strategy.as_str()])
            .observe(started.elapsed().as_secs_f64());
        match &error {
            Some(e) => {
                tracing::warn!(model = %self.cfg.name, run_id = self.run_id, status = status.as_str(), error = %e, "training ended without a new champion")
            }
            None => {
                tracing::info!(model = %self.cfg.name, run_id = self.run_id, status = status.as_str(), new_version = ?version, "training finished")
            }
        }
        // Recording the end must not be lost to a transient error: retry a few times.
        for attempt in 0..5 {
            let r = async {
                let mut conn = self.pool.acquire().await?;
                registry::runs_finish(
                    &mut conn,
                    self.run_id,
                    status,
                    version,
                    &candidates,
                    error.as_deref(),
                )
                .await
            };
            match r.await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(run_id = self.run_id, attempt, error = %e, "could not record the run's end");
                    tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
                }
            }
        }
        RunResult {
            run_id: self.run_id,
            status,
            new_champion: (status == RunStatus::Promoted).then_some(version).flatten(),
        }
    }

    async fn train(&self) -> Result<(RunStatus, Option<i64>, serde_json::Value), JobError> {
        let name = &self.cfg.name;
        let mut conn = self.pool.acquire().await?;
        let champion = registry::champion(&mut conn, name).await?;
        registry::runs_mark_running(
            &mut conn,
            self.run_id,
            champion.as_ref().map(|(i, _)| i.version),
        )
        .await?;
        let cutoff = champion
            .as_ref()
            .and_then(|(i, _)| i.cutoff)
            .unwrap_or_else(Watermark::start);
        // Old data ends, and new data starts, at the champion's cut-off, or where the trigger
        // located the change (a drift update and its refresh: the detection), even if the
        // champion has seen rows after it: they are the new concept too.
        let split = match self.req.new_after {
            Some(w) if champion.is_some() && self.upto.is_after(w) => w,
            _ => cutoff,
        };
        if split != cutoff {
            tracing::info!(model = %name, run_id = self.run_id, since_row_id = split.id, "new data starts at the drift");
        }
        let limit = self.cfg.max_training_rows as i64;
        let new_rows = self
            .source
            .training_rows(&mut conn, name, split, self.upto, limit)
            .await?;
        let old_rows = match &champion {
            Some(_) => {
                self.source
                    .training_rows(&mut conn, name, Watermark::start(), split, limit)
                    .await?
            }
            None => Vec::new(),
        };
        drop(conn);
        let (task, n_classes) = (self.cfg.task, self.cfg.n_classes);
        let old = to_dataset(&old_rows, self.cfg.n_features, task, n_classes);
        let new = to_dataset(&new_rows, self.cfg.n_features, task, n_classes);
        let new_cutoff = new_rows
            .last()
            .map(|r| Watermark {
                labeled_at: r.labeled_at,
                id: r.id,
            })
            .unwrap_or(cutoff);
        let req = UpdateRequest {
            seed: self.run_id as u64,
            strategy: Some(self.req.strategy),
            n_classes: match task {
                Task::Binary => 2,
                Task::Multiclass => n_classes as usize,
            },
        };
        // The data-drift reference: a bounded sample of every row this update read.
        let reference_sample = self.cfg.feature_drift.as_ref().and_then(|fd| {
            let all = old.concat(&new).ok()?;
            let mut sample = crate::feature_drift::ReferenceSample::from_rows(
                &all.x,
                all.n_features,
                fd.reference_sample_rows,
                self.run_id as u64,
            );
            if self.cfg.feature_names.len() == all.n_features {
                sample = sample
                    .with_feature_names(self.cfg.feature_names.clone())
                    .ok()?;
            }
            serde_json::to_value(sample).ok()
        });
        let train_cfg = self.cfg.train.clone();
        let cancel = self.cancel.clone();
        let champion_artifact = champion.as_ref().map(|(_, a)| a.clone());
        // libtorch work never runs on the async runtime.
        let outcome = tokio::task::spawn_blocking(move || {
            train::run_update(
                &req,
                champion_artifact.as_ref(),
                &old,
                &new,
                &train_cfg,
                &cancel,
            )
        })
        .await
        .map_err(|e| JobError::Other(format!("training thread: {e}")))??;
        let candidates = serde_json::to_value(&outcome.candidates).unwrap_or_default();
        tracing::info!(model = %name, run_id = self.run_id, reason = %outcome.reason, "update decided");
        let Some(chosen) = outcome.chosen.as_ref() else {
            return Ok((RunStatus::Kept, None, candidates));
        };
        let metrics = serde_json::json!({
            "holdout": chosen.holdout,
            "champion_holdout": outcome.champion_holdout,
            "n_holdout": outcome.n_holdout,
            "reason": outcome.reason,
        });
        let mut conn = self.pool.acquire().await?;
        let version = registry::register(
            &mut conn,
            &NewVersion {
                model: name,
                parent_version: champion.as_ref().map(|(i, _)| i.version),
                strategy: chosen.strategy.as_str(),
                trigger: self.req.trigger.as_str(),
                n_train_rows: chosen.n_train_rows as i64,
                n_holdout_rows: outcome.n_holdout as i64,
                cutoff: new_cutoff,
                holdout_metrics: metrics,
                artifact: &chosen.artifact,
                reference_sample,
            },
            outcome.promoted,
        )
        .await?;
        let status = if outcome.promoted {
            RunStatus::Promoted
        } else {
            RunStatus::Kept
        };
        Ok((status, Some(version), candidates))
    }
}

#[derive(Debug, thiserror::Error)]
enum JobError {
    #[error("cancelled")]
    Cancelled,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
    #[error("{0}")]
    Other(String),
}

impl From<TrainError> for JobError {
    fn from(e: TrainError) -> Self {
        match e {
            TrainError::Cancelled => JobError::Cancelled,
            other => JobError::Other(other.to_string()),
        }
    }
}

/// The strategy names accepted from operators (`driftd retrain --strategy`, the HTTP API).
pub fn parse_strategy(s: &str) -> Option<Strategy> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
}
