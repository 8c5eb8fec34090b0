//! One task per model: poll a batch, fold it into the monitor state, commit state and
//! watermark together, export, and carry out what the decision core decides. The loop is a
//! driver of [`Controller`]: it supplies rows, the clock and storage; the core owns the state
//! and decides when to train and on what.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use sqlx::PgPool;
use tokio::sync::{watch, Notify};

use super::counted::{Corrections, CountedIds};
use super::store::{self, BatchCommit, StoreError};
use super::sweep::{Standing, SweepBoard};
use super::training::Trainer;
use crate::config::{ModelConfig, PollConfig, Task, TrainingRuntimeConfig};
use crate::control::{self, ChampionView, Controller, Decision};
use crate::db::Backoff;
use crate::estimate::ScoredRow;
use crate::exporter::{DatabaseHealth, Metrics};
use crate::monitor::MonitorEvent;
use crate::outcomes::{validate, OutcomeSource, RawOutcome, Rejection, ScoredRaw, Watermark};
use crate::policy::TrainRequest;
use crate::registry;
use crate::train::ModelArtifact;
use tokio::sync::mpsc;

pub struct ModelLoop {
    pub cfg: ModelConfig,
    pub runtime: TrainingRuntimeConfig,
    /// Schedule and HTTP triggers for this model.
    pub triggers: mpsc::Receiver<TrainRequest>,
    pub poll: PollConfig,
    pub source: Arc<OutcomeSource>,
    pub pool: PgPool,
    pub metrics: Arc<Metrics>,
    pub wake: Arc<Notify>,
    /// Set once this model's state has been loaded (feeds `/readyz`).
    pub loaded: watch::Sender<bool>,
    /// Whether the database answers (`/readyz`, `driftd_database_up`).
    pub database: DatabaseHealth,
    /// Where a failing poll says why (`/readyz`, systemd's `STATUS=`).
    pub health: Arc<crate::exporter::Health>,
    /// Where this loop tells the replica's sweep how far it is (see `daemon::sweep`).
    pub board: Arc<SweepBoard>,
    /// This replica's training slots (`training.max_concurrent`).
    pub training_slots: Arc<tokio::sync::Semaphore>,
}

/// How long a scored-rows batch waits for a row driftd is about to score (see
/// [`ModelLoop::scored_cut`]).
const SCORING_GRACE: chrono::Duration = chrono::Duration::seconds(60);

/// What one poll did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepOutcome {
    pub rows: usize,
    pub rejected: usize,
}

struct Live {
    core: Controller,
    /// The model that scores rows (the core knows it as a [`ChampionView`]).
    scorer: Option<Scorer>,
    /// Rows with an id at or below this have been offered to the scorer.
    scored_upto: i64,
    /// The champion version whose missing reference sample was reported (once).
    reference_note: Option<i64>,
    /// The row a batch last stopped before, to be scored first (see [`ModelLoop::unscored_cut`]).
    waited_for: Option<i64>,
    /// The next batch, being read while this one is folded and committed.
    read_ahead: Option<ReadAhead>,
    /// The counted-id chunks of the last committed batch (the next one mostly falls in the
    /// same chunks); dropped when a step fails.
    counted: Option<CountedIds>,
    /// When to read scored rows for the estimate next (`None`: at once, a backlog).
    estimate_due: Option<Instant>,
}

/// A poll started from where the batch in hand ends, before that batch is committed: after a
/// full batch more rows are likely waiting, and reading them while the batch is validated,
/// folded and committed keeps both PostgreSQL and driftd busy. Taken only if the watermark
/// did get there (a failed or conflicting commit leaves it behind: the rows are read again);
/// aborted when dropped.
struct ReadAhead {
    from: Watermark,
    rows: tokio::task::JoinHandle<Result<Vec<RawOutcome>, sqlx::Error>>,
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.rows.abort();
    }
}

struct Scorer {
    version: i64,
    artifact: ModelArtifact,
}

/// What the core's decisions change in the stored state: the policy's memory and which
/// champion the challenger duels (its weights change with every batch, and are stored with
/// it).
fn decided(state: &control::ModelState) -> (crate::policy::PolicyState, Option<i64>) {
    let base = state.shadow.online.as_ref().map(|o| o.base_version);
    (state.policy.clone(), base)
}

/// Starts the trainings the core decided on and records the requests it coalesced; a
/// shadow promotion is carried out first, by the model loop (see
/// [`ModelLoop::promote_shadow`]), and only then what coalesced behind it.
async fn carry_out(decisions: Vec<Decision>, trainer: &mut Trainer) -> Result<(), StoreError> {
    for d in decisions {
        match d {
            Decision::Train(plan) => trainer.start(plan).await?,
            Decision::Coalesce(req) => trainer.coalesced(&req).await?,
            Decision::Skip(skipped) => trainer.skipped(&skipped).await?,
            Decision::Promote(p) => {
                tracing::error!(challenger = %p.challenger, "a shadow promotion reached the trainer; dropped")
            }
        }
    }
    Ok(())
}

impl ModelLoop {
    /// Runs until `shutdown`; returns itself so ownership can restart it later.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> ModelLoop {
        let name = self.cfg.name.clone();
        let mut backoff = Backoff::new(200, self.poll.max_backoff_ms);
        let mut live: Option<Live> = None;
        let mut trainer = Trainer::new(
            self.cfg.clone(),
            self.pool.clone(),
            self.source.clone(),
            self.metrics.clone(),
            self.training_slots.clone(),
            self.runtime.nice,
        );
        // Whether the last wait ended on the clock, not on a wake-up.
        let mut on_the_clock = false;
        while !*shutdown.borrow() {
            crate::systemd::beat(&name);
            let quiet = std::mem::take(&mut on_the_clock)
                && !trainer.is_running()
                && self.board.swept_since_published(&name);
            let result = match live.as_mut() {
                Some(l) if quiet => self
                    .quiet_round(l, &mut trainer)
                    .await
                    .map(|_| StepOutcome {
                        rows: 0,
                        rejected: 0,
                    }),
                None => match self.load().await {
                    Ok(mut l) => {
                        if trainer.is_running() {
                            // Reloaded (the watermark moved) while a training runs: the core
                            // must wait for it as before.
                            l.core.training_started_elsewhere();
                        } else if let Some(d) = l.core.resume() {
                            // A follow-up stored before a restart ended its training.
                            if let Err(e) = carry_out(vec![d], &mut trainer).await {
                                tracing::warn!(model = %name, error = %e, "could not start the stored follow-up");
                            }
                        }
                        live = Some(l);
                        let _ = self.loaded.send(true);
                        self.database.set(true);
                        backoff.reset();
                        // Poll at once: after a start or a takeover rows are likely waiting,
                        // and nothing may announce them.
                        continue;
                    }
                    Err(e) => Err(e),
                },
                Some(l) => match self.step(l).await {
                    Ok(step) => self.after_step(l, &mut trainer).await.map(|_| step),
                    Err(e) => Err(e),
                },
            };
            let wait = match result {
                Ok(step) => {
                    self.database.set(true);
                    self.health.poll_ok(&name);
                    backoff.reset();
                    if let Some(l) = &live {
                        self.publish_lag(l);
                    }
                    let backlog = live.as_ref().is_some_and(|l| l.estimate_due.is_none());
                    if step.rows as u32 >= self.poll.batch_size || backlog {
                        continue; // more is waiting: no pause between full batches
                    }
                    if let Some(l) = &live {
                        self.publish_standing(l);
                    }
                    self.idle_wait(&trainer, live.as_ref())
                }
                Err(StoreError::Conflict(_)) => {
                    tracing::warn!(model = %name, "watermark moved under us; reloading state");
                    live = None;
                    Duration::ZERO
                }
                Err(e) => {
                    if matches!(e, StoreError::Corrupt { .. }) {
                        live = None;
                    }
                    self.poll_failed(&e, &mut backoff)
                }
            };
            on_the_clock = tokio::select! {
                _ = self.wake.notified() => false,
                _ = tokio::time::sleep(wait) => true,
                _ = shutdown.changed() => false,
            };
        }
        self.board.withdraw(&name);
        self.health.poll_ok(&name);
        trainer
            .cancel(Duration::from_millis(self.runtime.grace_ms))
            .await;
        tracing::info!(model = %name, "poller stopped");
        self
    }

    /// Reports a failed poll (metrics, readiness with the reason, the log); how long to wait.
    fn poll_failed(&self, e: &StoreError, backoff: &mut Backoff) -> Duration {
        let name = &self.cfg.name;
        self.metrics.ingest.poll_failed(name, e.metric_label());
        let reason = match e {
            StoreError::Db(db) => self.source.describe_error(db),
            other => other.to_string(),
        };
        // The server answered (a missing table or column): it is not down.
        if !matches!(e, StoreError::Db(sqlx::Error::Database(_))) {
            self.database.set(false);
        }
        self.health.poll_failed(name, &reason);
        let d = backoff.next_delay();
        tracing::warn!(model = %name, error = %reason, retry_in_ms = d.as_millis() as u64, "poll failed");
        d
    }

    /// How old the committed watermark is, in label time against the clock.
    fn publish_lag(&self, l: &Live) {
        let wm = l.core.watermark();
        if wm != Watermark::start() {
            let lag = (Utc::now() - wm.labeled_at).num_milliseconds() as f64 / 1e3;
            self.metrics
                .ingest
                .set_watermark_lag(&self.cfg.name, lag.max(0.0));
        }
    }

    /// Tells the sweep where this loop stands, so that it is woken when there is work.
    fn publish_standing(&self, l: &Live) {
        let trains = self.cfg.train.enabled;
        let scores = trains && self.runtime.score_unscored && l.scorer.is_some();
        self.board.publish(
            &self.cfg.name,
            Standing {
                watermark: l.core.watermark(),
                scored_upto: scores.then_some(l.scored_upto),
                champion: trains.then(|| l.scorer.as_ref().map(|s| s.version)),
                wake: self.wake.clone(),
            },
        );
    }

    /// How long to wait with nothing to read: the sweep (or `LISTEN`) wakes the loop when
    /// there is work, so on its own it polls only every `idle_poll_ms`; more often while a
    /// training runs (to collect it), until the core's next deadline (a hold or cooldown that
    /// ends, a feature-drift check), at the estimate's interval, and at half the systemd
    /// watchdog interval (the watchdog is fed only while every loop goes round).
    fn idle_wait(&self, trainer: &Trainer, live: Option<&Live>) -> Duration {
        let interval = Duration::from_millis(self.poll.interval_ms);
        if trainer.is_running() {
            return interval;
        }
        let mut wait = Duration::from_millis(self.poll.idle_poll_ms).max(interval);
        if let Some(beat) = crate::systemd::beat_period() {
            wait = wait.min(beat.max(interval));
        }
        if let Some(deadline) = live.and_then(|l| l.core.next_deadline()) {
            let until = (deadline - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            wait = wait.min(until.max(interval));
        }
        if self.estimates_scored() {
            let every = Duration::from_millis(self.cfg.estimate.interval_ms);
            wait = wait.min(every.max(interval));
        }
        wait
    }

    /// Everything that follows a committed batch: the finished training, the champion,
    /// scoring, and the core's decisions on the batch, the feature drift and the requests.
    async fn after_step(
        &mut self,
        live: &mut Live,
        trainer: &mut Trainer,
    ) -> Result<(), StoreError> {
        self.estimate_scored(live).await?;
        if !self.cfg.train.enabled {
            // Monitor only: no scoring, no triggers, no training (see `train.enabled`).
            return Ok(());
        }
        let now = Utc::now();
        let before = decided(live.core.state());
        let mut decisions = Vec::new();
        if let Some(done) = trainer.poll().await {
            tracing::debug!(model = %self.cfg.name, run_id = done.run_id, status = done.status.as_str(), "run collected");
            decisions.extend(live.core.on_training_finished(done.new_champion, now));
            if done.new_champion.is_some() {
                live.scored_upto = 0;
            }
        }
        self.refresh_champion(live).await?;
        let shadow = &live.core.state().shadow;
        let window = self.cfg.shadow.window_rows;
        // The online duel last: its champion figure is the one kept.
        for (challenger, standing) in [
            (crate::shadow::RECURRING, shadow.recurring_standing()),
            ("online", shadow.standing()),
        ] {
            if let Some(s) = standing {
                self.metrics
                    .shadow
                    .publish(&self.cfg.name, challenger, window, &s);
            }
        }
        if self.runtime.score_unscored {
            self.score_unscored(live).await?;
        }
        decisions.extend(self.decide(live, now).await?);
        let mut conn = self.pool.acquire().await?;
        while let Some(run) = registry::runs_claim_requested(&mut conn, &self.cfg.name).await? {
            let req = control::manual_request(&self.cfg, run.id, run.strategy, run.reason);
            decisions.push(live.core.on_request(req));
        }
        drop(conn);
        self.carry_out_and_store(live, trainer, decisions, before, now)
            .await
    }

    /// Carries out `decisions` (shadow promotions first), then stores what they changed in
    /// the state (`before`: [`decided`] when the round began) at the same watermark, so that
    /// a restart before the next batch does not decide on the same thing again.
    async fn carry_out_and_store(
        &self,
        live: &mut Live,
        trainer: &mut Trainer,
        decisions: Vec<Decision>,
        before: (crate::policy::PolicyState, Option<i64>),
        now: chrono::DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let decisions = self.promote_shadows(live, decisions, now).await?;
        carry_out(decisions, trainer).await?;
        if decided(live.core.state()) != before {
            let mut conn = self.pool.acquire().await?;
            let (name, at) = (&self.cfg.name, live.core.watermark());
            store::store_decisions(&mut conn, name, at, live.core.state()).await?;
        }
        Ok(())
    }

    /// Carries out the shadow promotions among `decisions`; returns the rest, with what the
    /// core decided once each was done (a follow-up of requests that coalesced behind it).
    async fn promote_shadows(
        &self,
        live: &mut Live,
        decisions: Vec<Decision>,
        now: chrono::DateTime<Utc>,
    ) -> Result<Vec<Decision>, StoreError> {
        let (promotions, mut rest): (Vec<_>, Vec<_>) = decisions
            .into_iter()
            .partition(|d| matches!(d, Decision::Promote(_)));
        for d in promotions {
            if let Decision::Promote(p) = d {
                rest.extend(self.promote_shadow(live, *p, now).await?);
            }
        }
        Ok(rest)
    }

    /// Registers a shadow challenger as the champion (trigger `shadow`, announced by NOTIFY
    /// in the same transaction) and tells the core, which hears of a failure too.
    async fn promote_shadow(
        &self,
        live: &mut Live,
        p: crate::shadow::Promotion,
        now: chrono::DateTime<Utc>,
    ) -> Result<Option<Decision>, StoreError> {
        let name = &self.cfg.name;
        let registered = match ModelArtifact::from_network(&p.network) {
            Ok(artifact) => self.register_shadow(&p, &artifact).await,
            Err(e) => {
                tracing::error!(model = %name, error = %e, "shadow challenger is no valid model; not promoted");
                Ok(None)
            }
        };
        let view = registered.as_ref().ok().copied().flatten().map(|version| {
            live.core.calibrate(version, None);
            live.core.prime_detectors(version, Some(p.trace.clone()));
            ChampionView {
                version,
                holdout_accuracy: Some(p.standing.challenger_accuracy),
                cutoff: p.cutoff,
                classes: p.network.n_classes,
            }
        });
        let next = live.core.on_training_finished(view, now);
        if let Some(v) = view {
            let status = crate::registry::RunStatus::Promoted;
            self.metrics.training.finished(
                name,
                crate::policy::TriggerKind::Shadow,
                status,
                Utc::now(),
            );
            self.metrics.serving.set_champion(name, v.version);
            tracing::info!(
                model = %name,
                version = v.version,
                challenger = %p.challenger,
                challenger_accuracy = p.standing.challenger_accuracy,
                champion_accuracy = p.standing.champion_accuracy,
                rows = p.standing.rows,
                p_value = p.standing.p_value,
                "shadow challenger promoted"
            );
        }
        registered?;
        Ok(next)
    }

    /// The registry's part of [`Self::promote_shadow`]: the new version's number.
    async fn register_shadow(
        &self,
        p: &crate::shadow::Promotion,
        artifact: &ModelArtifact,
    ) -> Result<Option<i64>, StoreError> {
        let name = &self.cfg.name;
        let mut conn = self.pool.acquire().await?;
        // The champion's sample of its training rows stays the data-drift reference.
        let reference = match registry::champion_reference(&mut conn, name).await {
            Ok(r) => r.map(|r| r.sample),
            Err(registry::RegistryError::Db(e)) => return Err(e.into()),
            Err(_) => None,
        };
        let s = &p.standing;
        let version = registry::NewVersion {
            model: name,
            parent_version: Some(p.champion_version),
            origin: registry::Origin::Shadow {
                recurring: p.challenger == crate::shadow::RECURRING,
            },
            n_train_rows: p.rows_learnt as i64,
            n_holdout_rows: s.rows as i64,
            cutoff: p.cutoff,
            holdout_metrics: registry::HoldoutMetrics {
                n_holdout: s.rows,
                reason: format!(
                    "{} challenger right on {:.1}% of the last {} live rows, v{} on {:.1}% \
                     (one-sided McNemar p = {:.2e})",
                    p.challenger,
                    100.0 * s.challenger_accuracy,
                    s.rows,
                    p.champion_version,
                    100.0 * s.champion_accuracy,
                    s.p_value
                ),
                trace: Some(p.trace.clone()),
                shadow: Some(*s),
                ..Default::default()
            },
            artifact,
            reference_sample: reference.as_ref(),
        };
        match registry::register(&mut conn, &version, true).await {
            Ok(v) => Ok(Some(v)),
            Err(registry::RegistryError::Db(e)) => Err(e.into()),
            Err(e) => {
                tracing::error!(model = %name, error = %e, "shadow promotion not registered");
                Ok(None)
            }
        }
    }

    /// A round on the clock alone, after a sweep has seen nothing for this model to read,
    /// score, claim or load: only the decisions that wait on time run (a threshold's hold, a
    /// drift held back by the cooldown, a due feature-drift check), without a poll.
    async fn quiet_round(
        &mut self,
        live: &mut Live,
        trainer: &mut Trainer,
    ) -> Result<(), StoreError> {
        self.estimate_scored(live).await?;
        if !self.cfg.train.enabled {
            return Ok(());
        }
        let now = Utc::now();
        let before = decided(live.core.state());
        let decisions = self.decide(live, now).await?;
        self.carry_out_and_store(live, trainer, decisions, before, now)
            .await
    }

    /// The core's answers to what this round brought: a due feature-drift check, the
    /// committed batches (their drifts noted in the stored state; on a quiet round the
    /// decisions that wait on time still run) and the schedule requests in the channel.
    async fn decide(
        &mut self,
        live: &mut Live,
        now: chrono::DateTime<Utc>,
    ) -> Result<Vec<Decision>, StoreError> {
        let mut decisions = Vec::new();
        if live.core.feature_check_due(now) {
            decisions.extend(self.check_feature_drift(live, now).await?);
        }
        decisions.extend(live.core.on_batch(now));
        while let Ok(r) = self.triggers.try_recv() {
            decisions.push(live.core.on_request(r));
        }
        Ok(decisions)
    }

    /// Compares the newest inputs with the champion's reference sample and tells the core.
    async fn check_feature_drift(
        &self,
        live: &mut Live,
        now: chrono::DateTime<Utc>,
    ) -> Result<Vec<Decision>, StoreError> {
        let Some(fd) = &self.cfg.feature_drift else {
            return Ok(Vec::new());
        };
        let mut conn = self.pool.acquire().await?;
        let (version, reference) = match registry::champion_reference(&mut conn, &self.cfg.name)
            .await
        {
            Ok(Some(r)) => (r.version, r.sample),
            Ok(None) => match live.core.champion().copied() {
                None => return Ok(Vec::new()),
                // Feature drift enabled after the champion was trained: compute its sample.
                Some(c) => {
                    match super::reference::backfill(&mut conn, &self.source, &self.cfg, c).await? {
                        Ok(sample) => (c.version, sample),
                        Err(why) => {
                            if live.reference_note != Some(c.version) {
                                live.reference_note = Some(c.version);
                                tracing::warn!(model = %self.cfg.name, version = c.version, why = %why, "feature drift not checked");
                            }
                            return Ok(Vec::new());
                        }
                    }
                }
            },
            Err(registry::RegistryError::CorruptReference { reason, .. }) => {
                tracing::error!(model = %self.cfg.name, error = %reason, "unreadable reference sample");
                return Ok(Vec::new());
            }
            Err(e) => return Err(e.into()),
        };
        let recent = self
            .source
            .recent_features(
                &mut conn,
                &self.cfg.name,
                self.cfg.n_features,
                fd.window_rows as i64,
            )
            .await?;
        let cfg = fd.clone();
        let report = tokio::task::spawn_blocking(move || {
            crate::feature_drift::check(&reference, &recent, &cfg)
        })
        .await;
        let report = match report {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::debug!(model = %self.cfg.name, reason = %e, "feature drift not checked");
                return Ok(Vec::new());
            }
            Err(e) => {
                tracing::error!(model = %self.cfg.name, error = %e, "feature drift check panicked");
                return Ok(Vec::new());
            }
        };
        registry::record_feature_drift(&mut conn, &self.cfg.name, version, &report).await?;
        self.metrics.feature_drift.publish(&self.cfg.name, &report);
        Ok(live.core.on_feature_drift(&report, now))
    }

    async fn refresh_champion(&self, live: &mut Live) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        let current = registry::champion_version(&mut conn, &self.cfg.name).await?;
        if current == live.scorer.as_ref().map(|c| c.version) {
            return Ok(());
        }
        live.scorer = match registry::champion(&mut conn, &self.cfg.name).await {
            Ok(Some((info, artifact))) => {
                self.metrics
                    .serving
                    .set_champion(&self.cfg.name, info.version);
                let acc = info.holdout_metrics.accuracy();
                tracing::info!(model = %self.cfg.name, version = info.version, "champion loaded");
                live.core.set_champion(Some(ChampionView {
                    version: info.version,
                    holdout_accuracy: acc,
                    cutoff: info.cutoff.unwrap_or_else(Watermark::start),
                    classes: artifact.arch.n_classes,
                }));
                live.core
                    .calibrate(info.version, info.holdout_metrics.calibration.clone());
                live.core
                    .prime_detectors(info.version, info.holdout_metrics.trace.clone());
                live.core
                    .challenge(info.version, artifact.to_network().ok());
                Some(Scorer {
                    version: info.version,
                    artifact,
                })
            }
            Ok(None) => None,
            Err(registry::RegistryError::Db(e)) => return Err(e.into()),
            Err(e) => {
                tracing::error!(model = %self.cfg.name, error = %e, "cannot load the champion; not scoring");
                None
            }
        };
        if live.scorer.is_none() {
            live.core.set_champion(None);
        }
        live.scored_upto = 0;
        Ok(())
    }

    /// Predicts rows that have none with the champion, stamping its version.
    async fn score_unscored(&self, live: &mut Live) -> Result<(), StoreError> {
        let Some(ch) = &live.scorer else {
            return Ok(());
        };
        let mut conn = self.pool.acquire().await?;
        let rows = self
            .source
            .unscored(
                &mut conn,
                &self.cfg.name,
                live.scored_upto,
                i64::from(self.runtime.score_batch),
            )
            .await?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        live.scored_upto = last.0;
        let n = self.cfg.n_features;
        let mut ids = Vec::with_capacity(rows.len());
        let mut x = Vec::with_capacity(rows.len() * n);
        for (id, f) in &rows {
            // Rows that cannot be scored are left alone; they are rejected once labelled.
            let Ok(f) = crate::domain::features_f32(n, f.as_deref()) else {
                continue;
            };
            ids.push(*id);
            x.extend(f);
        }
        if ids.is_empty() {
            return Ok(());
        }
        let artifact = ch.artifact.clone();
        let preds = tokio::task::spawn_blocking(move || {
            crate::train::predict(&artifact, &x)
                .map(|p| (0..p.len()).map(|i| p.stored(i)).collect::<Vec<_>>())
        })
        .await;
        let preds = match preds {
            Ok(Ok(p)) => p,
            other => {
                tracing::error!(model = %self.cfg.name, error = ?other.err(), "scoring failed");
                return Ok(());
            }
        };
        let written = self
            .source
            .write_predictions(&mut conn, &ids, &preds, ch.version)
            .await?;
        self.metrics.serving.rows_scored(&self.cfg.name, written);
        Ok(())
    }

    /// Whether this model's scored rows are estimated: `[models.estimate]` is on, the table
    /// has a scoring time (`created_at_column`), and the probabilities are known: a binary
    /// prediction is one; a multiclass one is a class index, so its probabilities are
    /// recomputed by the champion that scored it, which only a model driftd scores has.
    fn estimates_scored(&self) -> bool {
        let probabilities = self.cfg.task == Task::Binary
            || (self.cfg.train.enabled && self.runtime.score_unscored);
        self.cfg.estimate.enabled && probabilities && self.source.has_scoring_time()
    }

    /// What the estimate reads of each scored row (see `estimate::expected_correct`): the
    /// prediction of a binary model; for a multiclass model the probability of its predicted
    /// class, recomputed by the champion from the features of the rows it scored (others:
    /// NaN, passed over).
    async fn scores_of(&self, live: &Live, raw: &[ScoredRaw]) -> Vec<f64> {
        let binary = || {
            raw.iter()
                .map(|r| r.prediction.unwrap_or(f64::NAN))
                .collect()
        };
        let (Task::Multiclass, Some(scorer)) = (live.core.state().task(), &live.scorer) else {
            return binary();
        };
        let n = self.cfg.n_features;
        let mut at = Vec::new();
        let mut x = Vec::new();
        for (i, r) in raw.iter().enumerate() {
            if r.model_version != Some(scorer.version) || r.prediction.is_none() {
                continue;
            }
            if let Ok(f) = crate::domain::features_f32(n, r.features.as_deref()) {
                at.push(i);
                x.extend(f);
            }
        }
        let mut scores = vec![f64::NAN; raw.len()];
        if at.is_empty() {
            return scores;
        }
        let artifact = scorer.artifact.clone();
        let top = tokio::task::spawn_blocking(move || {
            crate::train::predict(&artifact, &x)
                .map(|p| (0..p.len()).map(|i| p.confidence(i)).collect::<Vec<_>>())
        })
        .await;
        match top {
            Ok(Ok(top)) => at.iter().zip(top).for_each(|(&i, p)| scores[i] = p),
            other => {
                tracing::error!(model = %self.cfg.name, error = ?other.err(), "estimate: predicting failed")
            }
        }
        scores
    }

    /// Estimates the next batch of scored rows (in scoring order, each once: windows and
    /// read position are committed together); the estimated trigger looks at the result
    /// with the round's decisions.
    async fn estimate_scored(&self, live: &mut Live) -> Result<(), StoreError> {
        if !self.estimates_scored() {
            live.estimate_due = Some(Instant::now() + Duration::from_secs(3600));
            return Ok(());
        }
        if live.estimate_due.is_some_and(|t| Instant::now() < t) {
            return Ok(());
        }
        let name = &self.cfg.name;
        let mut conn = self.pool.acquire().await?;
        let from = live.core.scored_cursor();
        let multiclass = live.core.state().task() == Task::Multiclass;
        let limits = (self.poll.settle_ms, self.poll.batch_size);
        let raw = self
            .source
            .scored(&mut conn, name, from, limits, multiclass)
            .await?;
        // A full batch is followed at once by the next; otherwise, wait for the interval.
        let full = raw.len() >= self.poll.batch_size as usize;
        let interval = Duration::from_millis(self.cfg.estimate.interval_ms);
        live.estimate_due = (!full).then(|| Instant::now() + interval);
        let raw = &raw[..self.scored_cut(live, &raw)];
        let Some(last) = raw.last() else {
            return Ok(());
        };
        let to = Watermark {
            labeled_at: last.created_at,
            id: last.id,
        };
        let scores = self.scores_of(live, raw).await;
        let rows: Vec<ScoredRow> = raw
            .iter()
            .zip(scores)
            .filter(|(r, _)| r.prediction.is_some())
            .map(|(r, score)| ScoredRow {
                id: r.id,
                created_at: r.created_at,
                score,
                version: r.model_version,
            })
            .collect();
        let folded = live.core.fold_scored(&rows, to);
        store::commit_estimates(&mut conn, name, from, to, &folded.estimates).await?;
        let n = folded.expected.iter().flatten().count() as u64;
        live.core.commit_scored(folded);
        self.metrics
            .estimate
            .publish(name, live.core.estimates(), n);
        Ok(())
    }

    /// How many scored rows to estimate now: when this loop scores the table, a row that
    /// still waits for its prediction and was written less than [`SCORING_GRACE`] ago stops
    /// the batch (it is estimated once scored); an older one is passed over.
    fn scored_cut(&self, live: &Live, raw: &[ScoredRaw]) -> usize {
        let scores = self.cfg.train.enabled && self.runtime.score_unscored && live.scorer.is_some();
        let recent = Utc::now() - SCORING_GRACE;
        raw.iter()
            .position(|r| r.prediction.is_none() && scores && r.created_at > recent)
            .unwrap_or(raw.len())
    }

    async fn load(&self) -> Result<Live, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let loaded = store::load(&mut conn, &self.cfg).await?;
        let estimates = store::load_estimates(&mut conn, &self.cfg.name).await?;
        tracing::info!(
            model = %self.cfg.name,
            rows = loaded.state.monitor.rows,
            watermark_id = loaded.watermark.id,
            "monitor state loaded"
        );
        self.metrics
            .publish_monitor(&self.cfg.name, &loaded.state.monitor);
        let detectors: Vec<&str> = loaded
            .state
            .monitor
            .detectors
            .iter()
            .map(|d| d.label.as_str())
            .collect();
        self.metrics.touch_model_series(&self.cfg.name, &detectors);
        let orphans = registry::runs_fail_orphans(&mut conn, &self.cfg.name).await?;
        if orphans > 0 {
            tracing::warn!(model = %self.cfg.name, orphans, "marked runs left by a stopped daemon as failed");
        }
        self.metrics.ownership.set_owner(&self.cfg.name, true);
        let (estimates, cursor) = match estimates {
            Some((e, c)) => (Some(e), c),
            None => (None, Watermark::start()),
        };
        Ok(Live {
            core: Controller::new(self.cfg.clone(), loaded.state, loaded.watermark, 0)
                .with_estimates(estimates, cursor),
            scorer: None,
            reference_note: None,
            scored_upto: 0,
            waited_for: None,
            read_ahead: None,
            counted: None,
            estimate_due: None,
        })
    }

    /// Reads, folds and commits one batch. The in-memory state only advances after commit.
    async fn step(&self, live: &mut Live) -> Result<StepOutcome, StoreError> {
        let started = Instant::now();
        let mut conn = self.pool.acquire().await?;
        let raw = match live.read_ahead.take() {
            Some(mut ahead) if ahead.from == live.core.watermark() => match (&mut ahead.rows).await
            {
                Ok(rows) => rows?,
                // Aborted or panicked: read the batch here.
                Err(_) => self.poll_from(&mut conn, live.core.watermark()).await?,
            },
            _ => self.poll_from(&mut conn, live.core.watermark()).await?,
        };
        let polled = raw.len();
        let raw = &raw[..self.unscored_cut(live, &raw)];
        if polled == raw.len() && polled >= self.poll.batch_size as usize {
            if let Some(last) = raw.last() {
                live.read_ahead = Some(self.read_ahead(Watermark {
                    labeled_at: last.labeled_at,
                    id: last.id,
                }));
            }
        }
        let Some(last) = raw.last() else {
            return Ok(StepOutcome {
                rows: 0,
                rejected: 0,
            });
        };
        let to = Watermark {
            labeled_at: last.labeled_at,
            id: last.id,
        };
        let mut outcomes = Vec::with_capacity(raw.len());
        let mut rejected: Vec<Rejection> = Vec::new();
        let mut delays = Vec::with_capacity(raw.len());
        // Rows counted before are back with a corrected label (see README, "Corrected
        // labels"): not counted again.
        let ids: Vec<i64> = raw.iter().map(|r| r.id).collect();
        let cached = live.counted.take();
        let mut counted = store::counted_ids(&mut conn, &self.cfg.name, &ids, cached).await?;
        let mut corrections = Corrections::default();
        for r in raw {
            if counted.contains(r.id) {
                corrections.push(r.id, r.labeled_at);
                continue;
            }
            match validate(r, self.cfg.row_rules()) {
                Ok(o) => {
                    counted.insert(r.id);
                    outcomes.push(o);
                    if let Some(created) = r.created_at {
                        delays.push((r.labeled_at - created).num_milliseconds() as f64 / 1e3);
                    }
                }
                Err(rej) => rejected.push(rej),
            }
        }
        let folded = live.core.fold(&outcomes, to);
        let unseen = folded.state.monitor.unseen_labels - live.core.state().monitor.unseen_labels;
        store::commit(
            &mut conn,
            &BatchCommit {
                model: &self.cfg.name,
                from: live.core.watermark(),
                to,
                state: &folded.state,
                rejected: &rejected,
                events: &folded.events,
                counted: &counted,
                corrections: &corrections,
            },
        )
        .await?;
        let events = live.core.commit(folded);
        live.counted = Some(counted.committed());
        self.metrics
            .ingest
            .label_corrections(&self.cfg.name, corrections.len() as u64);
        self.export(outcomes.len(), unseen, &rejected, &events, &delays, live);
        // A batch cut before a row to score counts as full: the next round reads on at once.
        let rows = if polled > raw.len() {
            polled.max(self.poll.batch_size as usize)
        } else {
            raw.len()
        };
        self.metrics
            .ingest
            .poll_took(started.elapsed().as_secs_f64());
        Ok(StepOutcome {
            rows,
            rejected: rejected.len(),
        })
    }

    /// One batch of rows past `from`.
    async fn poll_from(
        &self,
        conn: &mut sqlx::PgConnection,
        from: Watermark,
    ) -> Result<Vec<RawOutcome>, sqlx::Error> {
        self.source
            .poll(
                conn,
                &self.cfg.name,
                from,
                self.poll.settle_ms,
                self.poll.batch_size,
            )
            .await
    }

    /// Starts reading the batch after `from` on a connection of its own (see [`ReadAhead`]).
    fn read_ahead(&self, from: Watermark) -> ReadAhead {
        let (source, pool, name) = (
            self.source.clone(),
            self.pool.clone(),
            self.cfg.name.clone(),
        );
        let (settle_ms, limit) = (self.poll.settle_ms, self.poll.batch_size);
        let rows = tokio::spawn(async move {
            let mut conn = pool.acquire().await?;
            source.poll(&mut conn, &name, from, settle_ms, limit).await
        });
        ReadAhead { from, rows }
    }

    /// How many of the polled rows to take: when this loop scores the table, a labelled row
    /// that driftd has not scored yet (labelled before its prediction was written) is not
    /// rejected as `missing_prediction`: the batch stops before it, the scoring that follows
    /// the batch predicts it, and the next round reads it. A row already waited for once, and
    /// still without a prediction (the scorer could not predict it), is validated as before.
    fn unscored_cut(&self, live: &mut Live, raw: &[RawOutcome]) -> usize {
        let scores = self.cfg.train.enabled && self.runtime.score_unscored && live.scorer.is_some();
        let Some(k) = raw
            .iter()
            .position(|r| r.prediction.is_none())
            .filter(|_| scores)
        else {
            return raw.len();
        };
        let id = raw[k].id;
        if live.waited_for == Some(id) {
            return raw.len();
        }
        live.waited_for = Some(id);
        // Offered to the scorer again even if a row committed late sits below its mark.
        live.scored_upto = live.scored_upto.min(id - 1);
        k
    }

    #[allow(clippy::too_many_arguments)]
    fn export(
        &self,
        counted: usize,
        unseen: u64,
        rejected: &[Rejection],
        events: &[MonitorEvent],
        delays: &[f64],
        live: &Live,
    ) {
        let name = self.cfg.name.as_str();
        let m = &self.metrics;
        m.publish_monitor(name, &live.core.state().monitor);
        m.estimate
            .set_gap(name, live.core.state().calibrations.gap());
        if !rejected.is_empty() {
            let mut by_reason = std::collections::BTreeMap::new();
            for r in rejected {
                *by_reason.entry(r.reason.as_str()).or_insert(0u64) += 1;
            }
            for (reason, count) in &by_reason {
                m.ingest.rows_rejected(name, reason, *count);
            }
            // Once per batch, not once per row: a flood of bad rows must not flood the log.
            tracing::warn!(model = name, rejected = rejected.len(), reasons = ?by_reason,
                first_id = rejected[0].id, "rows set aside in driftd.rejected_rows");
        }
        m.ingest.label_delays(name, delays);
        if unseen > 0 {
            m.monitor.unseen_labels(name, unseen);
            // Once per batch, as for the rows set aside.
            tracing::warn!(model = name, unseen, known_classes = live.core.state().monitor.known_classes,
                "labels the champion has no class for (counted as its errors; the next update learns them with classes = \"grow\")");
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
                    m.detectors.drift_detected(name, detector, *labeled_at);
                    tracing::info!(model = name, detector = %detector, row_id, estimate, "drift detected");
                }
                MonitorEvent::Warning {
                    detector, row_id, ..
                } => {
                    tracing::debug!(model = name, detector = %detector, row_id, "drift warning");
                }
            }
        }
        // Last, so that whoever sees the new count also sees everything it implies.
        m.monitor.rows_processed(name, counted as u64);
    }
}
