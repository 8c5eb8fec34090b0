//! The decision core: one pure, per-model controller that decides *when* to train and *on
//! what*, for the daemon and the backtest alike.
//!
//! It owns the model's [`MonitorState`] (the policy's memory included), knows which champion
//! serves and whether a training is in flight, and answers events — a validated batch of
//! outcomes with its watermark, a feature-drift report, a schedule firing or manual request, a
//! training result — with [`Decision`]s. It reads no clock (time comes in with each event) and
//! does no I/O: the drivers (`daemon::model_loop`, `backtest::simulate`) read rows, store
//! state, run the trainings and report back. Because both drivers go through this code, a
//! backtest replays the decisions the daemon makes (`tests/it/fidelity.rs` checks it).
//!
//! At most one training runs at a time: a request that arrives while one runs is answered with
//! [`Decision::Coalesce`] and becomes one follow-up training when the running one finishes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::ModelConfig;
use crate::domain::{Dataset, HoldoutTrace, Outcome, Strategy, Task, Watermark};
use crate::estimate::{
    Calibration, Calibrations, Estimates, LabelledScore, ScoredCursor, ScoredRow,
};
use crate::feature_drift::{FeatureDriftReport, ReferenceSample};
use crate::monitor::{MonitorEvent, MonitorState};
use crate::policy::{self, BatchView, PolicyState, TrainRequest, TriggerKind};
use crate::shadow::{Network, Promotion, ShadowState};

#[cfg(test)]
mod tests;

/// What the controller knows of the serving model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChampionView {
    pub version: i64,
    pub holdout_accuracy: Option<f64>,
    /// The newest row it was trained on ([`Watermark::start`] when unknown): later rows are
    /// "new data".
    pub cutoff: Watermark,
    /// How many classes it outputs: a label beyond them is one it has never seen.
    pub classes: usize,
}

/// Which triggers decide (the backtest's baselines replace the configured ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TriggerMode {
    /// `[models.triggers]`, schedules and manual requests, and `feature_drift`.
    #[default]
    Configured,
    /// Nothing but the bootstrap.
    Never,
    /// Every `n` labelled rows, with the drift trigger's strategy.
    EveryRows(u64),
}

/// A training the driver is to run now.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainPlan {
    pub trigger: TriggerKind,
    pub reason: String,
    pub strategy: Strategy,
    /// The `driftd.training_runs` row already created for it (manual requests).
    pub run_id: Option<i64>,
    /// The champion it competes with (`None`: a first model, from every row).
    pub champion_version: Option<i64>,
    /// Old data is every row up to here, new data every row after it up to `upto`; `None`
    /// without a champion (all rows are new).
    pub split: Option<Watermark>,
    /// The newest row the training may read.
    pub upto: Watermark,
    /// Each of old and new data is bounded to its newest `max_rows` rows.
    pub max_rows: usize,
    /// Seeds the training and the reference sample, so a replay repeats it.
    pub seed: u64,
}

impl TrainPlan {
    /// Old rows: `(after, upto]` in poll order, or none without a champion.
    pub fn old_rows(&self) -> Option<(Watermark, Watermark)> {
        self.split.map(|s| (Watermark::start(), s))
    }

    /// New rows: `(after, upto]` in poll order.
    pub fn new_rows(&self) -> (Watermark, Watermark) {
        (self.split.unwrap_or_else(Watermark::start), self.upto)
    }

    /// The cut-off of the model this plan produces: the newest row it reads as new data, or
    /// the champion's when there was none.
    pub fn cutoff(&self, n_new_rows: usize, champion_cutoff: Watermark) -> Watermark {
        if n_new_rows == 0 {
            champion_cutoff
        } else {
            self.upto
        }
    }
}

/// What the driver is to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Train(TrainPlan),
    /// A request that arrived while a training runs: record it; it is folded into one
    /// follow-up training.
    Coalesce(TrainRequest),
    /// A request with nothing to learn from (every row is already the champion's): record
    /// it as skipped, with why; nothing trains, and it is no failure.
    Skip(Skipped),
    /// A challenger in shadow beat the champion on the same rows: register it as the new
    /// champion (trigger `shadow`) and report back with [`Controller::on_training_finished`],
    /// as for a training (requests meanwhile coalesce).
    Promote(Box<Promotion>),
}

/// A request dropped because it had nothing to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    pub request: TrainRequest,
    pub why: String,
}

/// The rows an update actually read, by row id (first, last), for the record and for
/// comparing the daemon with the backtest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RowRanges {
    pub old: Option<(i64, i64)>,
    pub new: Option<(i64, i64)>,
    /// The newest `n_holdout` new rows (the time-ordered holdout), or the newest old rows
    /// when there is no new row (`refit_combined` with nothing new).
    pub holdout: Option<(i64, i64)>,
}

impl RowRanges {
    pub fn of(old: &Dataset, new: &Dataset, n_holdout: usize) -> RowRanges {
        let span = |ids: &[i64]| Some((*ids.first()?, *ids.last()?));
        let tail = |ids: &[i64]| span(&ids[ids.len() - n_holdout.min(ids.len())..]);
        RowRanges {
            old: span(&old.ids),
            new: span(&new.ids),
            holdout: if new.ids.is_empty() {
                tail(&old.ids)
            } else {
                tail(&new.ids)
            },
        }
    }
}

/// The data-drift reference stored with a model: a bounded sample of every row its update
/// read (old and new), drawn with the plan's seed.
pub fn reference_sample(
    cfg: &ModelConfig,
    plan: &TrainPlan,
    old: &Dataset,
    new: &Dataset,
    feature_names: &[String],
) -> Option<ReferenceSample> {
    let fd = cfg.feature_drift.as_ref()?;
    let all = old.concat(new).ok()?;
    if all.is_empty() {
        return None;
    }
    let sample =
        ReferenceSample::from_rows(&all.x, all.n_features, fd.reference_sample_rows, plan.seed)
            .with_categorical(cfg.categorical_indices());
    if feature_names.len() == all.n_features {
        sample.with_feature_names(feature_names.to_vec()).ok()
    } else {
        Some(sample)
    }
}

/// The request a schedule firing makes (`index` into `triggers.schedules`).
pub fn schedule_request(cfg: &ModelConfig, index: usize) -> Option<TrainRequest> {
    let s = cfg.triggers.schedules.get(index)?;
    Some(TrainRequest {
        trigger: TriggerKind::Schedule,
        reason: format!("schedule `{}` ({})", s.cron, cfg.triggers.timezone),
        strategy: s.strategy,
        run_id: None,
        new_after: None,
    })
}

/// The request an operator made (`driftd retrain`, the HTTP API): `strategy` when it names
/// one, else the model's `manual_strategy`.
pub fn manual_request(
    cfg: &ModelConfig,
    run_id: i64,
    strategy: Option<Strategy>,
    reason: String,
) -> TrainRequest {
    TrainRequest {
        trigger: TriggerKind::Manual,
        reason,
        strategy: strategy.unwrap_or(cfg.triggers.manual_strategy),
        run_id: Some(run_id),
        new_after: None,
    }
}

/// What a model's controller keeps, stored as one snapshot with each watermark: the monitor,
/// the policy's memory (cooldowns, pending drifts) and the calibrations with the estimation
/// gap, in one JSON object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelState {
    #[serde(flatten)]
    pub monitor: MonitorState,
    #[serde(default)]
    pub policy: PolicyState,
    #[serde(default)]
    pub calibrations: Calibrations,
    /// The challengers in shadow (`[models.shadow]`).
    #[serde(default, skip_serializing_if = "is_idle")]
    pub shadow: ShadowState,
}

fn is_idle(s: &ShadowState) -> bool {
    s.online.is_none()
}

impl ModelState {
    pub fn new(cfg: &ModelConfig) -> Self {
        ModelState {
            monitor: MonitorState::new(cfg),
            policy: PolicyState::default(),
            calibrations: Calibrations::new(&cfg.estimate),
            shadow: ShadowState::default(),
        }
    }

    /// A stored snapshot under (possibly changed) configuration: see [`MonitorState::restore`].
    pub fn restore(cfg: &ModelConfig, snapshot: ModelState) -> Self {
        ModelState {
            monitor: MonitorState::restore(cfg, snapshot.monitor),
            policy: snapshot.policy,
            calibrations: Calibrations::restore(&cfg.estimate, snapshot.calibrations),
            // Turned off: the challenger is forgotten; turned on again, it starts over.
            shadow: if cfg.shadow.enabled {
                snapshot.shadow
            } else {
                ShadowState::default()
            },
        }
    }

    /// The task the serving model has: the configured one, or multiclass once a binary
    /// model grew a class (its predictions are class indices then).
    pub fn task(&self) -> Task {
        if self.monitor.known_classes > 2 {
            Task::Multiclass
        } else {
            self.monitor.task
        }
    }

    fn update(&mut self, cfg: &ModelConfig, o: &Outcome) -> Vec<MonitorEvent> {
        let correct = self.monitor.score(o).correct;
        let events = self.monitor.update(o);
        let task = self.task();
        let row = LabelledScore::of(task, o, correct);
        self.calibrations.on_label(&cfg.estimate, task, &row);
        self.shadow.observe(&cfg.shadow, o, correct);
        events
    }
}

/// Scored rows folded into a copy of the estimates, not yet in force (see [`Folded`]).
#[derive(Debug, Clone)]
pub struct FoldedEstimates {
    pub estimates: Estimates,
    pub to: ScoredCursor,
    /// Each row's expected correctness (`None`: no calibration yet).
    pub expected: Vec<Option<f64>>,
}

/// A batch folded into a copy of the state, not yet in force: the daemon stores it first.
#[derive(Debug, Clone)]
pub struct Folded {
    pub state: ModelState,
    pub events: Vec<MonitorEvent>,
    pub to: Watermark,
}

fn fresh_estimates(cfg: &ModelConfig) -> Estimates {
    Estimates::new(&cfg.count_windows, &cfg.time_window_spans())
}

/// One model's decisions (see the module docs).
#[derive(Debug, Clone)]
pub struct Controller {
    cfg: ModelConfig,
    mode: TriggerMode,
    state: ModelState,
    watermark: Watermark,
    champion: Option<ChampionView>,
    training: bool,
    /// The trigger of the training this controller planned and is waiting for (`None`
    /// while none is, or for one started elsewhere).
    in_flight: Option<TriggerKind>,
    seed: u64,
    estimates: Estimates,
    scored_cursor: ScoredCursor,
}

impl Controller {
    /// Resumes from a stored state and watermark; trainings are seeded `seed`, `seed + 1`, ….
    pub fn new(cfg: ModelConfig, state: ModelState, watermark: Watermark, seed: u64) -> Self {
        Controller {
            mode: TriggerMode::Configured,
            state,
            watermark,
            champion: None,
            training: false,
            in_flight: None,
            seed,
            estimates: fresh_estimates(&cfg),
            scored_cursor: ScoredCursor::start(),
            cfg,
        }
    }

    /// Resumes the scored side from its stored state and read position.
    pub fn with_estimates(mut self, stored: Option<Estimates>, cursor: ScoredCursor) -> Self {
        let fresh = fresh_estimates(&self.cfg);
        self.estimates = match stored {
            Some(s) => {
                Estimates::restore(&self.cfg.count_windows, &self.cfg.time_window_spans(), s)
            }
            None => fresh,
        };
        self.scored_cursor = cursor;
        self
    }

    pub fn with_mode(mut self, mode: TriggerMode) -> Self {
        self.mode = mode;
        self
    }

    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }
    pub fn state(&self) -> &ModelState {
        &self.state
    }
    pub fn watermark(&self) -> Watermark {
        self.watermark
    }
    pub fn champion(&self) -> Option<&ChampionView> {
        self.champion.as_ref()
    }
    pub fn is_training(&self) -> bool {
        self.training
    }

    /// Folds `outcomes` (validated, in poll order, the newest at `to`) into a copy of the
    /// state. The drift they show the policy is noted in that copy (with a champion, as the
    /// triggers only watch one), so it is stored with the batch: decided on after the
    /// commit, or after a restart that came between.
    pub fn fold(&self, outcomes: &[Outcome], to: Watermark) -> Folded {
        let mut state = self.state.clone();
        let events: Vec<MonitorEvent> = outcomes
            .iter()
            .flat_map(|o| state.update(&self.cfg, o))
            .collect();
        if self.mode == TriggerMode::Configured && self.champion.is_some() {
            let rows = state.monitor.rows;
            policy::note_drift(&self.cfg.triggers.drift, &mut state.policy, rows, &events);
        }
        Folded { state, events, to }
    }

    pub fn estimates(&self) -> &Estimates {
        &self.estimates
    }
    /// The newest scored row estimated.
    pub fn scored_cursor(&self) -> ScoredCursor {
        self.scored_cursor
    }

    /// Folds scored rows (in scoring order, the newest at `to`) into a copy of the estimates.
    pub fn fold_scored(&self, rows: &[ScoredRow], to: ScoredCursor) -> FoldedEstimates {
        let mut estimates = self.estimates.clone();
        let expected = estimates.fold(self.state.task(), &self.state.calibrations, rows);
        FoldedEstimates {
            estimates,
            to,
            expected,
        }
    }

    /// The folded scored rows are stored: they are now the estimates (the estimated
    /// trigger looks at them with the next [`Self::on_batch`]).
    pub fn commit_scored(&mut self, folded: FoldedEstimates) {
        self.estimates = folded.estimates;
        self.scored_cursor = folded.to;
    }

    /// The serving `version`'s calibration: `Some` when it came with one (its holdout's),
    /// `None` to fit one on its first labelled rows (multiclass: to use its raw
    /// probabilities, see [`Calibrations::raw`]). In force at once, stored with the next
    /// batch (a driver that restarts sets it again from the registry).
    pub fn calibrate(&mut self, version: i64, map: Option<Calibration>) {
        match map {
            Some(m) => self.state.calibrations.set(version, m),
            None if self.state.task() == Task::Multiclass => self.state.calibrations.raw(version),
            None => self.state.calibrations.expect(version),
        }
    }

    /// The serving `version`'s errors on its holdout, for its detectors to start from (see
    /// [`crate::monitor::MonitorState::prime`]). Stored with the next batch, like the
    /// calibration; a driver that restarts sets it again, and a version already watched
    /// ignores it.
    pub fn prime_detectors(&mut self, version: i64, trace: Option<HoldoutTrace>) {
        if let Some(t) = trace {
            self.state.monitor.prime(version, t);
        }
    }

    /// The serving `version`'s network, for the online challenger to start from (see
    /// [`crate::shadow`]): with `[models.shadow]` on and the configured triggers, a
    /// challenger of another version starts over from it; one of this version goes on.
    /// Stored with the next batch; a driver that restarts sets it again.
    pub fn challenge(&mut self, version: i64, network: Option<Network>) {
        if !self.cfg.shadow.enabled || self.mode != TriggerMode::Configured {
            return;
        }
        match network {
            Some(n) => self.state.shadow.challenge(version, n),
            None => self.state.shadow = ShadowState::default(),
        }
    }

    /// The folded batch is stored: it is now the state.
    pub fn commit(&mut self, folded: Folded) -> Vec<MonitorEvent> {
        self.state = folded.state;
        self.watermark = folded.to;
        folded.events
    }

    /// Which model serves now (the registry's word); `None` when none does.
    pub fn set_champion(&mut self, champion: Option<ChampionView>) {
        if let Some(c) = &champion {
            self.state.monitor.set_known_classes(c.classes);
        }
        self.champion = champion;
    }

    /// After a committed batch, or a round that read nothing: a shadow promotion, the
    /// drift (noted by the fold), threshold, more-data and bootstrap triggers, then the
    /// estimated one, or the baseline's.
    pub fn on_batch(&mut self, now: DateTime<Utc>) -> Vec<Decision> {
        let mut decisions: Vec<Decision> = self.shadow_promotion().into_iter().collect();
        let request = match self.mode {
            TriggerMode::Configured => self
                .policy_request(now)
                .or_else(|| self.estimated_request(now)),
            TriggerMode::Never => None,
            TriggerMode::EveryRows(n) => self.periodic_request(n),
        };
        decisions.extend(request.map(|r| self.request(r)));
        decisions
    }

    /// A challenger's promotion, when one is due and nothing else is in flight (a training
    /// in flight goes first: if it promotes, the evidence was against an old champion).
    fn shadow_promotion(&mut self) -> Option<Decision> {
        if self.training || self.mode != TriggerMode::Configured || self.champion.is_none() {
            return None;
        }
        let p = self.state.shadow.take_promotion()?;
        if Some(p.champion_version) != self.champion.map(|c| c.version) {
            self.state.shadow.promotion_dropped();
            return None;
        }
        self.training = true;
        self.in_flight = Some(TriggerKind::Shadow);
        Some(Decision::Promote(Box::new(p)))
    }

    fn policy_request(&mut self, now: DateTime<Utc>) -> Option<TrainRequest> {
        let view = BatchView {
            rows: self.state.monitor.rows,
            watched_accuracy: self
                .state
                .monitor
                .window_accuracy(&self.cfg.triggers.threshold.window),
            champion_holdout_accuracy: self.champion.and_then(|c| c.holdout_accuracy),
            has_champion: self.champion.is_some(),
            unseen_labels: self.state.monitor.unseen_labels,
        };
        policy::on_batch(&self.cfg.triggers, &mut self.state.policy, &view, now)
    }

    /// The estimated trigger on the estimate of the scored rows (with a champion only: the
    /// first model waits for the bootstrap).
    fn estimated_request(&mut self, now: DateTime<Utc>) -> Option<TrainRequest> {
        self.champion?;
        let cfg = &self.cfg.triggers.estimated;
        let watched = self.estimates.window(&cfg.window);
        policy::on_estimate(cfg, &mut self.state.policy, watched, now)
    }

    fn periodic_request(&self, every_rows: u64) -> Option<TrainRequest> {
        let since = self.state.monitor.rows - self.state.policy.rows_at_last_update;
        (self.champion.is_some() && since >= every_rows).then(|| TrainRequest {
            trigger: TriggerKind::Periodic,
            reason: format!("{every_rows} rows since the last update"),
            strategy: self.cfg.triggers.drift.strategy,
            run_id: None,
            new_after: None,
        })
    }

    /// The first model, fit on every row up to the watermark (the backtest's bootstrap rows,
    /// which it does not fold into the monitor).
    pub fn bootstrap(&mut self, rows: u64, now: DateTime<Utc>) -> Decision {
        let req = policy::bootstrap_request(rows);
        self.state.policy.last_trigger_at = Some(now);
        self.request(req)
    }

    /// A training this controller did not plan is running (a driver that reloaded its state
    /// mid-training): requests coalesce until [`Self::on_training_finished`].
    pub fn training_started_elsewhere(&mut self) {
        self.training = true;
    }

    /// After a restart with no training running: the stored follow-up, which was waiting
    /// for a training that the restart ended, is decided on now.
    pub fn resume(&mut self) -> Option<Decision> {
        if self.training {
            return None;
        }
        let next = self.state.policy.follow_up.take()?;
        Some(self.request(TrainRequest {
            run_id: None,
            ..next
        }))
    }

    /// When the core next has something to decide on time alone, if ever (quinn-proto's
    /// `poll_timeout`): a threshold or estimated trigger's hold that ends, a cooldown that
    /// frees them or a pending drift, the next feature-drift check. An idle driver need not
    /// come back before then (rows and requests wake it anyway).
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        if self.mode != TriggerMode::Configured {
            return None;
        }
        let t = &self.cfg.triggers;
        let st = &self.state.policy;
        let after = |since: Option<DateTime<Utc>>, span: &crate::span::Span| {
            since.map(|s| s + chrono::Duration::seconds(span.secs()))
        };
        // A hold's end, or later if the cooldown holds the trigger back then.
        let held = |since, hold, cooldown| {
            let end = after(since, hold)?;
            Some(after(st.last_trigger_at, cooldown).map_or(end, |c| c.max(end)))
        };
        let threshold = t
            .threshold
            .enabled
            .then(|| held(st.below_since, &t.threshold.hold, &t.threshold.cooldown))
            .flatten();
        let estimated = t
            .estimated
            .enabled
            .then(|| {
                held(
                    st.estimate_below_since,
                    &t.estimated.hold,
                    &t.estimated.cooldown,
                )
            })
            .flatten();
        let drift = st
            .pending_drift
            .as_ref()
            .and_then(|_| after(st.last_trigger_at, &t.drift.cooldown));
        let features = self.cfg.feature_drift.as_ref().map(|fd| {
            after(st.last_feature_check, &fd.check_interval).unwrap_or(DateTime::UNIX_EPOCH)
        });
        [threshold, estimated, drift, features]
            .into_iter()
            .flatten()
            .min()
    }

    /// Whether a feature-drift check is due; if so, it counts as made now.
    pub fn feature_check_due(&mut self, now: DateTime<Utc>) -> bool {
        let Some(fd) = self.cfg.feature_drift.as_ref() else {
            return false;
        };
        if self.mode != TriggerMode::Configured {
            return false;
        }
        let interval = chrono::Duration::seconds(fd.check_interval.secs());
        if self
            .state
            .policy
            .last_feature_check
            .is_some_and(|t| now - t < interval)
        {
            return false;
        }
        self.state.policy.last_feature_check = Some(now);
        true
    }

    /// A feature-drift check's report: an update when enough features drifted and the drift
    /// trigger's cooldown has passed.
    pub fn on_feature_drift(
        &mut self,
        report: &FeatureDriftReport,
        now: DateTime<Utc>,
    ) -> Vec<Decision> {
        let Some(fd) = self.cfg.feature_drift.as_ref() else {
            return Vec::new();
        };
        let cooled = policy::cooled(&self.state.policy, &self.cfg.triggers.drift.cooldown, now);
        if !(report.triggers_update(fd) && cooled) {
            return Vec::new();
        }
        self.state.policy.last_trigger_at = Some(now);
        let drifted: Vec<&str> = report.drifted().map(|f| f.feature.as_str()).collect();
        let req = TrainRequest {
            trigger: TriggerKind::FeatureDrift,
            reason: format!(
                "{:.0}% of features drifted: {}",
                report.drifted_ratio * 100.0,
                drifted.join(", ")
            ),
            strategy: self.cfg.triggers.drift.strategy,
            run_id: None,
            new_after: None,
        };
        vec![self.request(req)]
    }

    /// A schedule firing or a manual request ([`schedule_request`], [`manual_request`]).
    pub fn on_request(&mut self, req: TrainRequest) -> Decision {
        self.request(req)
    }

    /// The running training ended; `promoted` is the new champion if there is one. Starts
    /// the coalesced follow-up, if any.
    pub fn on_training_finished(
        &mut self,
        promoted: Option<ChampionView>,
        now: DateTime<Utc>,
    ) -> Option<Decision> {
        self.training = false;
        let trigger = self.in_flight.take();
        let kept_drift = promoted.is_none() && trigger == Some(TriggerKind::Drift);
        match (trigger, promoted) {
            (Some(TriggerKind::Shadow), Some(p)) => self.state.shadow.promoted(p.version),
            // Not carried out, or another update changed the champion.
            (Some(TriggerKind::Shadow), None) | (_, Some(_)) => {
                self.state.shadow.promotion_dropped()
            }
            _ => {}
        }
        // A shadow promotion is no update of the policy's: the champion learnt the same rows
        // in small steps, and what they ask of the trainer (a drift waiting for its rows,
        // the next more-data try, the cooldown) still stands.
        if trigger != Some(TriggerKind::Shadow) {
            let monitor = &self.state.monitor;
            policy::on_update(
                &mut self.state.policy,
                monitor.rows,
                monitor.unseen_labels,
                now,
                kept_drift,
            );
        }
        if promoted.is_some() {
            self.set_champion(promoted);
        }
        let next = self.state.policy.follow_up.take()?;
        Some(self.request(TrainRequest {
            run_id: None,
            ..next
        }))
    }

    fn request(&mut self, req: TrainRequest) -> Decision {
        if self.training {
            self.state.policy.follow_up = Some(req.clone());
            return Decision::Coalesce(req);
        }
        if let Some(why) = self.nothing_new(&req) {
            return Decision::Skip(Skipped { request: req, why });
        }
        self.training = true;
        self.in_flight = Some(req.trigger);
        Decision::Train(self.plan(req))
    }

    /// Why `req` has nothing to learn from, if so: no row at all, or no row after the
    /// champion's (or the drift's) split. Strategy `none` reads no new rows and still runs,
    /// and so does a manual `refit_combined` with old rows: it refits on them, holding out
    /// their newest part (see [`Self::refits_old`]).
    fn nothing_new(&self, req: &TrainRequest) -> Option<String> {
        if req.strategy == Strategy::None || self.refits_old(req) {
            return None;
        }
        let upto = self.watermark;
        match self.champion {
            None => (upto == Watermark::start())
                .then(|| "no labelled rows yet: nothing to fit a first model on".to_string()),
            Some(c) => {
                let split = match req.new_after {
                    Some(w) if upto.is_after(w) => w,
                    _ => c.cutoff,
                };
                (!upto.is_after(split)).then(|| {
                    format!(
                        "nothing new since v{} was trained: no labelled row after id {} \
                         (a run trains once new rows arrive; only strategy refit_combined \
                         trains now, on the old rows: driftd retrain --model {} --strategy \
                         refit_combined)",
                        c.version, split.id, self.cfg.name
                    )
                })
            }
        }
    }

    /// A manual `refit_combined` request with nothing new but old rows: it trains on the
    /// old rows and holds out their newest part. Automatic triggers never do.
    fn refits_old(&self, req: &TrainRequest) -> bool {
        req.trigger == TriggerKind::Manual
            && req.strategy == Strategy::RefitCombined
            && self
                .champion
                .is_some_and(|c| c.cutoff.is_after(Watermark::start()))
    }

    fn plan(&mut self, req: TrainRequest) -> TrainPlan {
        let upto = self.watermark;
        // Old data ends, and new data starts, at the champion's cut-off, or where the
        // trigger located the change (a drift update and its refresh: the detection), even if
        // the champion has seen rows after it: they are the new concept too.
        let split = self.champion.map(|c| match req.new_after {
            Some(w) if upto.is_after(w) => w,
            _ => c.cutoff,
        });
        let seed = self.seed.wrapping_add(self.state.policy.plans);
        self.state.policy.plans += 1;
        TrainPlan {
            trigger: req.trigger,
            reason: req.reason,
            strategy: req.strategy,
            run_id: req.run_id,
            champion_version: self.champion.map(|c| c.version),
            split,
            upto,
            max_rows: self.cfg.max_training_rows,
            seed,
        }
    }
}
