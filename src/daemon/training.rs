//! Carries out the decision core's trainings: one at a time, on a lower-priority thread of
//! its own (`niced`), recording every run and registering the result. Which training, when
//! and on which rows is the core's decision ([`crate::control`]); a failed or cancelled run
//! never touches the champion.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::config::ModelConfig;
use crate::control::{self, ChampionView, RowRanges, TrainPlan};
use crate::domain::RowRules;
use crate::exporter::Metrics;
use crate::outcomes::{OutcomeSource, TrainingRow, Watermark};
use crate::policy::{TrainRequest, TriggerKind};
use crate::registry::{self, NewVersion, Origin, RunEnd, RunStatus};
use crate::train::{self, Dataset, TrainError, UpdateRequest};

/// How a run ended, for the decision core and the metrics.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub run_id: i64,
    pub status: RunStatus,
    /// The promoted version, as the core is to know it.
    pub new_champion: Option<ChampionView>,
}

struct Running {
    run_id: i64,
    trigger: TriggerKind,
    cancel: Arc<AtomicBool>,
    task: JoinHandle<RunResult>,
}

pub struct Trainer {
    pub cfg: ModelConfig,
    pub pool: PgPool,
    pub source: Arc<OutcomeSource>,
    pub metrics: Arc<Metrics>,
    /// This replica's training slots (`training.max_concurrent`), shared by every model.
    pub slots: Arc<Semaphore>,
    /// `training.nice`: the OS priority of the training thread.
    pub nice: i32,
    running: Option<Running>,
}

impl Trainer {
    pub fn new(
        cfg: ModelConfig,
        pool: PgPool,
        source: Arc<OutcomeSource>,
        metrics: Arc<Metrics>,
        slots: Arc<Semaphore>,
        nice: i32,
    ) -> Self {
        Trainer {
            cfg,
            pool,
            source,
            metrics,
            slots,
            nice,
            running: None,
        }
    }

    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Records `req` as a new run in `status` (a request with no run of its own yet: a
    /// trigger or a schedule, not a claimed manual request).
    async fn create_run(
        &self,
        conn: &mut sqlx::PgConnection,
        req: &TrainRequest,
        status: RunStatus,
    ) -> Result<i64, sqlx::Error> {
        registry::runs_create(
            conn,
            &self.cfg.name,
            req.trigger,
            &req.reason,
            req.strategy,
            status,
        )
        .await
    }

    /// Records a request the core coalesced into the follow-up of the running training.
    pub async fn coalesced(&self, req: &TrainRequest) -> Result<(), sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        let trigger = req.trigger.as_str();
        match req.run_id {
            Some(id) => {
                registry::runs_finish(&mut conn, id, RunStatus::Coalesced, &RunEnd::default())
                    .await?
            }
            None => {
                self.create_run(&mut conn, req, RunStatus::Coalesced)
                    .await?;
            }
        }
        self.metrics.training.coalesced(&self.cfg.name, req.trigger);
        tracing::info!(model = %self.cfg.name, trigger, reason = %req.reason, "training in progress; coalesced into one follow-up run");
        Ok(())
    }

    /// Records a request the core dropped because it had nothing to learn from.
    pub async fn skipped(&self, s: &control::Skipped) -> Result<(), sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        let req = &s.request;
        let end = RunEnd {
            error: Some(&s.why),
            ..RunEnd::default()
        };
        let id = match req.run_id {
            Some(id) => id,
            None => self.create_run(&mut conn, req, RunStatus::Running).await?,
        };
        registry::runs_finish(&mut conn, id, RunStatus::Skipped, &end).await?;
        self.metrics.training.skipped(&self.cfg.name, req.trigger);
        tracing::info!(model = %self.cfg.name, run_id = id, trigger = req.trigger.as_str(), why = %s.why, "training skipped: nothing to do");
        Ok(())
    }

    /// Starts the core's `plan` on a thread of its own (`niced`).
    pub async fn start(&mut self, plan: TrainPlan) -> Result<(), sqlx::Error> {
        let run_id = match plan.run_id {
            Some(id) => id,
            None => {
                let mut conn = self.pool.acquire().await?;
                registry::runs_create(
                    &mut conn,
                    &self.cfg.name,
                    plan.trigger,
                    &plan.reason,
                    plan.strategy,
                    RunStatus::Running,
                )
                .await?
            }
        };
        let cancel = Arc::new(AtomicBool::new(false));
        tracing::info!(model = %self.cfg.name, run_id, trigger = plan.trigger.as_str(), strategy = %plan.strategy, reason = %plan.reason, "training started");
        let trigger = plan.trigger;
        let job = Job {
            cfg: self.cfg.clone(),
            pool: self.pool.clone(),
            source: self.source.clone(),
            metrics: self.metrics.clone(),
            slots: self.slots.clone(),
            nice: self.nice,
            run_id,
            plan,
            cancel: cancel.clone(),
        };
        self.running = Some(Running {
            run_id,
            trigger,
            cancel,
            task: tokio::spawn(job.run()),
        });
        Ok(())
    }

    /// The running training's result, once it has finished.
    pub async fn poll(&mut self) -> Option<RunResult> {
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
        Some(result)
    }

    fn record(&self, trigger: TriggerKind, result: &RunResult) {
        let name = &self.cfg.name;
        let m = &self.metrics;
        m.training
            .finished(name, trigger, result.status, chrono::Utc::now());
        if let Some(c) = result.new_champion {
            m.serving.set_champion(name, c.version);
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
    slots: Arc<Semaphore>,
    nice: i32,
    run_id: i64,
    plan: TrainPlan,
    cancel: Arc<AtomicBool>,
}

/// libtorch's intra-op threads for a training when `train.num_threads` is not set: one fewer
/// than the cores this process may use (cgroup quotas included), at least one. With every
/// core in the training's thread team, 1-row predictions at 2 000 req/s had a p99 of 2–3 ms
/// however low the training's priority (nice 10, even `SCHED_IDLE`); with one core left
/// free, 0.34–0.45 ms, as without a training (`scripts/bench_serve.sh`, 2 cores).
fn serving_leaves_a_core() -> i32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.saturating_sub(1).max(1) as i32
}

/// The rows that pass the row rules (as the poll's validation checks them; a training read
/// does not need a prediction), as training data.
fn to_dataset(rows: &[TrainingRow], rules: RowRules) -> Dataset {
    let mut d = Dataset::empty(rules.n_features);
    for r in rows {
        let Ok(features) = rules.features(r.features.as_deref()) else {
            continue;
        };
        let Ok(label) = rules.label(r.label) else {
            continue;
        };
        d.x.extend(features);
        d.y.push(label as f32);
        d.ts.push(r.labeled_at.timestamp());
        d.ids.push(r.id);
    }
    d
}

/// The plan's rows, read back from the outcomes table.
struct TrainingData {
    old: Dataset,
    new: Dataset,
    /// Raw new rows read (valid or not): the new cut-off is the plan's when there are any.
    n_new_read: usize,
}

/// What a finished training leaves to record.
struct Trained {
    status: RunStatus,
    version: Option<i64>,
    candidates: Vec<train::CandidateReport>,
    rows: RowRanges,
    champion: Option<ChampionView>,
}

impl Job {
    async fn run(self) -> RunResult {
        // The slot is held until the run's end is recorded, so that recorded runs never
        // overlap beyond `max_concurrent` either.
        let slot = self.wait_for_slot().await;
        let started = Instant::now();
        let result = match &slot {
            Some(_) => self.train().await,
            None => Err(JobError::Cancelled),
        };
        let (trained, error) = match result {
            Ok(t) => (t, None),
            Err(e) => {
                let status = match e {
                    JobError::Cancelled => RunStatus::Cancelled,
                    _ => RunStatus::Failed,
                };
                let why = match e {
                    JobError::Cancelled => "cancelled at shutdown".to_string(),
                    e => e.to_string(),
                };
                let nothing = Trained {
                    status,
                    version: None,
                    candidates: Vec::new(),
                    rows: RowRanges::default(),
                    champion: None,
                };
                (nothing, Some(why))
            }
        };
        self.metrics
            .training
            .took(self.plan.strategy, started.elapsed().as_secs_f64());
        let status = trained.status;
        match &error {
            Some(e) => {
                tracing::warn!(model = %self.cfg.name, run_id = self.run_id, status = status.as_str(), error = %e, "training ended without a new champion")
            }
            None => {
                tracing::info!(model = %self.cfg.name, run_id = self.run_id, status = status.as_str(), new_version = trained.version, "training finished")
            }
        }
        self.record_end(&trained, error.as_deref()).await;
        drop(slot);
        RunResult {
            run_id: self.run_id,
            status,
            new_champion: trained.champion,
        }
    }

    /// Waits for one of the replica's training slots (the semaphore is fair: the oldest
    /// request goes first), giving up if the run is cancelled meanwhile.
    async fn wait_for_slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let acquire = self.slots.clone().acquire_owned();
        tokio::pin!(acquire);
        let mut logged = false;
        loop {
            tokio::select! {
                permit = &mut acquire => return permit.ok(),
                _ = tokio::time::sleep(Duration::from_millis(100)) => {
                    if self.cancel.load(std::sync::atomic::Ordering::Relaxed) {
                        return None;
                    }
                    if !logged {
                        logged = true;
                        tracing::info!(model = %self.cfg.name, run_id = self.run_id, "waiting for a training slot (training.max_concurrent)");
                    }
                }
            }
        }
    }

    /// Recording the end must not be lost to a transient error: retries a few times.
    async fn record_end(&self, t: &Trained, error: Option<&str>) {
        let end = RunEnd {
            new_version: t.version,
            candidates: &t.candidates,
            error,
            rows: t.rows,
            seed: Some(self.plan.seed),
        };
        for attempt in 0..5 {
            let r = async {
                let mut conn = self.pool.acquire().await?;
                registry::runs_finish(&mut conn, self.run_id, t.status, &end).await
            };
            match r.await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(run_id = self.run_id, attempt, error = %e, "could not record the run's end");
                    tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
                }
            }
        }
    }

    /// The old and new rows of the plan.
    async fn read(&self, conn: &mut sqlx::PgConnection) -> Result<TrainingData, JobError> {
        let (name, limit) = (&self.cfg.name, self.plan.max_rows as i64);
        let (after, upto) = self.plan.new_rows();
        let new_rows = self
            .source
            .training_rows(conn, name, after, upto, limit)
            .await?;
        let old_rows = match self.plan.old_rows() {
            Some((after, upto)) => {
                self.source
                    .training_rows(conn, name, after, upto, limit)
                    .await?
            }
            None => Vec::new(),
        };
        let rules = self.cfg.row_rules();
        Ok(TrainingData {
            old: to_dataset(&old_rows, rules),
            new: to_dataset(&new_rows, rules),
            n_new_read: new_rows.len(),
        })
    }

    async fn train(&self) -> Result<Trained, JobError> {
        let name = &self.cfg.name;
        let mut conn = self.pool.acquire().await?;
        let champion = registry::champion(&mut conn, name).await?;
        registry::runs_mark_running(
            &mut conn,
            self.run_id,
            champion.as_ref().map(|(i, _)| i.version),
        )
        .await?;
        if let (Some(split), Some((info, _))) = (self.plan.split, &champion) {
            if info.cutoff != Some(split) {
                tracing::info!(model = %name, run_id = self.run_id, since_row_id = split.id, "new data starts at the drift");
            }
        }
        let data = self.read(&mut conn).await?;
        drop(conn);
        let req = UpdateRequest::for_model(&self.cfg, self.plan.seed, Some(self.plan.strategy));
        let (mut train_cfg, cancel) = (self.cfg.train.clone(), self.cancel.clone());
        train_cfg
            .num_threads
            .get_or_insert_with(serving_leaves_a_core);
        let champion_artifact = champion.as_ref().map(|(_, a)| a.clone());
        // libtorch work never runs on the async runtime, and runs below the serving threads'
        // priority (see `niced`); the rows come back for the record.
        let (outcome, data) = super::niced::run("driftd-train", self.nice, move || {
            train::run_update(
                &req,
                champion_artifact.as_ref(),
                &data.old,
                &data.new,
                &train_cfg,
                &cancel,
            )
            .map(|o| (o, data))
        })
        .await
        .map_err(|e| JobError::Other(e.to_string()))??;
        tracing::info!(model = %name, run_id = self.run_id, reason = %outcome.reason, "update decided");
        let champion_cutoff = champion
            .as_ref()
            .and_then(|(i, _)| i.cutoff)
            .unwrap_or_else(Watermark::start);
        self.register(
            &data,
            outcome,
            champion.map(|(i, _)| i.version),
            champion_cutoff,
        )
        .await
    }

    /// Registers the chosen model (as champion when promoted).
    async fn register(
        &self,
        data: &TrainingData,
        outcome: train::UpdateOutcome,
        parent_version: Option<i64>,
        champion_cutoff: Watermark,
    ) -> Result<Trained, JobError> {
        let candidates = outcome.candidates.clone();
        let rows = RowRanges::of(&data.old, &data.new, outcome.n_holdout);
        let Some(chosen) = outcome.chosen.as_ref() else {
            return Ok(Trained {
                status: RunStatus::Kept,
                version: None,
                candidates,
                rows,
                champion: None,
            });
        };
        let metrics = registry::HoldoutMetrics {
            holdout: chosen.holdout,
            champion_holdout: outcome.champion_holdout,
            n_holdout: outcome.n_holdout,
            reason: outcome.reason.clone(),
            calibration: chosen.calibration.clone(),
            trace: chosen.holdout_trace.clone(),
            grew_classes: outcome.grew_classes,
            shadow: None,
        };
        let cutoff = self.plan.cutoff(data.n_new_read, champion_cutoff);
        let reference_sample = control::reference_sample(
            &self.cfg,
            &self.plan,
            &data.old,
            &data.new,
            &self.cfg.feature_names,
        );
        let mut conn = self.pool.acquire().await?;
        let version = registry::register(
            &mut conn,
            &NewVersion {
                model: &self.cfg.name,
                parent_version,
                origin: Origin::Trained {
                    strategy: chosen.strategy,
                    trigger: self.plan.trigger,
                },
                n_train_rows: chosen.n_train_rows as i64,
                n_holdout_rows: outcome.n_holdout as i64,
                cutoff,
                holdout_metrics: metrics,
                artifact: &chosen.artifact,
                reference_sample: reference_sample.as_ref(),
            },
            outcome.promoted,
        )
        .await?;
        let champion = outcome.promoted.then(|| ChampionView {
            version,
            holdout_accuracy: chosen.holdout.map(|s| s.accuracy),
            cutoff,
            classes: chosen.artifact.arch.n_classes,
        });
        if !outcome.promoted {
            // Why a kept run stores a version: the operator may still promote it.
            tracing::info!(model = %self.cfg.name, run_id = self.run_id, version, reason = %outcome.reason,
                "champion kept; the best candidate is stored as a rejected version so that `driftd models promote` can still make it the champion");
        }
        Ok(Trained {
            status: if outcome.promoted {
                RunStatus::Promoted
            } else {
                RunStatus::Kept
            },
            version: Some(version),
            candidates,
            rows,
            champion,
        })
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
