//! The prequential replay (see the module docs of [`super`]): a driver of the decision core
//! ([`crate::control`]) that supplies rows from the history, a simulated clock and
//! instantaneous training.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use chrono::{DateTime, TimeZone, Utc};

use super::metrics::{class_reports, stream_metrics, UpdateCost};
use super::{
    BacktestError, BacktestOptions, DriftPoint, EstimationPoint, History, PolicyMode, Report,
    Retrain, SeriesPoint, ShadowPoint, ShadowSeriesPoint,
};
use crate::config::ModelConfig;
use crate::control::{
    self, ChampionView, Controller, Decision, ModelState, RowRanges, TrainPlan, TriggerMode,
};
use crate::domain::HoldoutTrace;
use crate::estimate::{Calibration, ScoredRow};
use crate::feature_drift::{self, ReferenceSample};
use crate::monitor::{score_row, MonitorEvent};
use crate::outcomes::{Outcome, Watermark};
use crate::policy::schedule::next_firing;
use crate::shadow::Promotion;
use crate::train::{self, Dataset, ModelArtifact, TrainError, UpdateRequest};

fn at(ts: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(ts, 0).single().unwrap_or_default()
}

/// The serving model, as the registry would keep it.
struct Served {
    artifact: ModelArtifact,
    /// 1 for the bootstrap model, +1 per promotion (stamped on the outcomes it predicts).
    version: i64,
    /// The feature-drift reference: a sample of the rows its update read.
    reference: Option<ReferenceSample>,
}

/// The replay's storage and trainer: rows by index (a row's id is its index), the serving
/// model, and what every training did.
struct Sim<'a> {
    model: &'a ModelConfig,
    h: &'a History,
    /// Every row as training data in label order ((label time, id), as the daemon reads
    /// them); `ts` is the label's arrival time, `ids` the row's index.
    all: Dataset,
    n_classes: usize,
    training_seconds: f64,
    cancel: AtomicBool,
    served: Option<Served>,
    retrains: Vec<Retrain>,
    shadow: Vec<ShadowPoint>,
    coalesced: usize,
    skipped: usize,
}

impl Sim<'_> {
    /// The watermark of the row at `pos` in label order.
    fn watermark(&self, pos: usize) -> Watermark {
        Watermark {
            labeled_at: at(self.all.ts[pos]),
            id: self.all.ids[pos],
        }
    }

    /// How many rows in label order are at or before `w`.
    fn position_after(&self, w: Watermark) -> usize {
        if w == Watermark::start() {
            return 0;
        }
        let key = (w.labeled_at.timestamp(), w.id);
        let (mut lo, mut hi) = (0, self.all.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if (self.all.ts[mid], self.all.ids[mid]) <= key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Rows `(after, upto]` in label order, the newest `max_rows` of them.
    fn rows(&self, (after, upto): (Watermark, Watermark), max_rows: usize) -> Dataset {
        let end = self.position_after(upto);
        let start = self.position_after(after).max(end.saturating_sub(max_rows));
        if start >= end {
            return Dataset::empty(self.h.n_features());
        }
        self.all.slice(start, end)
    }

    /// Runs `plan` (the newest row predicted by the old model is `index`); returns the new
    /// champion when it is promoted.
    fn train(
        &mut self,
        plan: &TrainPlan,
        champion: Option<&ChampionView>,
        index: usize,
    ) -> Result<Option<Promoted>, BacktestError> {
        let old = match plan.old_rows() {
            Some(r) => self.rows(r, plan.max_rows),
            None => Dataset::empty(self.h.n_features()),
        };
        let new = self.rows(plan.new_rows(), plan.max_rows);
        let mut record = Retrain::planned(plan, index, &old, &new);
        let started = Instant::now();
        let result = train::run_update(
            &UpdateRequest::for_model(self.model, plan.seed, Some(plan.strategy)),
            self.served.as_ref().map(|s| &s.artifact),
            &old,
            &new,
            &self.model.train,
            &self.cancel,
        );
        record.train_seconds = started.elapsed().as_secs_f64();
        self.training_seconds += record.train_seconds;
        let outcome = match result {
            Ok(o) => o,
            // A wrong training configuration fails every update: stop here.
            Err(e @ TrainError::Config(_)) => return Err(e.into()),
            Err(e) if self.served.is_none() => return Err(e.into()),
            Err(e) => {
                record.error = Some(e.to_string());
                self.retrains.push(record);
                return Ok(None);
            }
        };
        record.rows = RowRanges::of(&old, &new, outcome.n_holdout);
        record.champion_holdout_accuracy = outcome.champion_holdout.map(|s| s.accuracy);
        record.steps = outcome.steps;
        record.grew_classes = outcome.grew_classes;
        let Some(chosen) = outcome.chosen else {
            record.error = Some(outcome.reason);
            self.retrains.push(record);
            return Ok(None);
        };
        record.strategy = chosen.strategy;
        record.recent_rows = chosen.recent_rows;
        record.holdout_accuracy = chosen.holdout.map(|s| s.accuracy);
        record.promoted = outcome.promoted;
        let (calibration, trace) = (chosen.calibration.clone(), chosen.holdout_trace.clone());
        let promoted = outcome.promoted.then(|| {
            let version = self.served.as_ref().map_or(1, |s| s.version + 1);
            self.served = Some(Served {
                reference: control::reference_sample(
                    self.model,
                    plan,
                    &old,
                    &new,
                    &self.h.feature_names,
                ),
                artifact: chosen.artifact,
                version,
            });
            let view = ChampionView {
                version,
                holdout_accuracy: record.holdout_accuracy,
                classes: self
                    .served
                    .as_ref()
                    .map_or(2, |s| s.artifact.arch.n_classes),
                cutoff: plan.cutoff(
                    new.len(),
                    champion.map_or_else(Watermark::start, |c| c.cutoff),
                ),
            };
            Promoted {
                view,
                calibration,
                trace,
            }
        });
        self.retrains.push(record);
        Ok(promoted)
    }

    /// Carries out `decisions` (made after the batch whose newest predicted row is `index`):
    /// a training runs at once, then its coalesced follow-up, as the daemon would with
    /// instantaneous training.
    fn carry_out(
        &mut self,
        core: &mut Controller,
        decisions: Vec<Decision>,
        index: usize,
        now: DateTime<Utc>,
    ) -> Result<(), BacktestError> {
        let mut plans = Vec::new();
        let mut promotions = Vec::new();
        for d in decisions {
            match d {
                Decision::Train(plan) => plans.push(plan),
                Decision::Coalesce(_) => self.coalesced += 1,
                Decision::Skip(_) => self.skipped += 1,
                Decision::Promote(p) => promotions.push(*p),
            }
        }
        // A promotion comes before the requests that coalesced behind it.
        for p in promotions {
            let promoted = self
                .promote_shadow(p, index)
                .map(|p| self.champion_in(core, p));
            self.finished(core, promoted, now, &mut plans);
        }
        while let Some(plan) = plans.pop() {
            let promoted = self
                .train(&plan, core.champion(), index)?
                .map(|p| self.champion_in(core, p));
            self.finished(core, promoted, now, &mut plans);
        }
        Ok(())
    }

    /// Tells the core what the new champion brings: its calibration, the errors its
    /// detectors start from, its network for the shadow challenger.
    fn champion_in(&self, core: &mut Controller, p: Promoted) -> ChampionView {
        core.calibrate(p.view.version, p.calibration);
        core.prime_detectors(p.view.version, p.trace);
        let network = self
            .served
            .as_ref()
            .and_then(|s| s.artifact.to_network().ok());
        core.challenge(p.view.version, network);
        p.view
    }

    fn finished(
        &mut self,
        core: &mut Controller,
        promoted: Option<ChampionView>,
        now: DateTime<Utc>,
        plans: &mut Vec<TrainPlan>,
    ) {
        match core.on_training_finished(promoted, now) {
            Some(Decision::Train(next)) => plans.push(next),
            Some(Decision::Skip(_)) => self.skipped += 1,
            _ => {}
        }
    }

    /// A shadow challenger becomes the champion, as the registry would number it.
    fn promote_shadow(&mut self, p: Promotion, index: usize) -> Option<Promoted> {
        let artifact = ModelArtifact::from_network(&p.network).ok()?;
        let served = self.served.take()?;
        let version = served.version + 1;
        let classes = artifact.arch.n_classes;
        self.served = Some(Served {
            artifact,
            version,
            reference: served.reference,
        });
        self.shadow.push(ShadowPoint {
            index,
            version,
            challenger: p.challenger,
            trained_upto: p.cutoff.id as usize,
            rows: p.standing.rows,
            challenger_accuracy: p.standing.challenger_accuracy,
            champion_accuracy: p.standing.champion_accuracy,
            p_value: p.standing.p_value,
        });
        Some(Promoted {
            view: ChampionView {
                version,
                holdout_accuracy: Some(p.standing.challenger_accuracy),
                cutoff: p.cutoff,
                classes,
            },
            calibration: None,
            trace: Some(p.trace),
        })
    }
}

/// A promoted update: the new champion and what its holdout gives the core (its
/// calibration, the errors its detectors start from).
struct Promoted {
    view: ChampionView,
    calibration: Option<Calibration>,
    trace: Option<HoldoutTrace>,
}

/// The replay's moving parts between batches.
struct Replay<'a> {
    sim: Sim<'a>,
    core: Controller,
    opts: &'a BacktestOptions,
    preds: Vec<f64>,
    /// What the estimate reads of each prediction: P(class 1), or the predicted class's
    /// probability.
    scores: Vec<f64>,
    /// Each row's expected correctness when it was predicted (`None`: not estimated).
    expected: Vec<Option<f64>>,
    versions: Vec<i64>,
    correct: Vec<bool>,
    drift_events: Vec<DriftPoint>,
    shadow_series: Vec<ShadowSeriesPoint>,
    /// Per schedule, its next firing on the simulated clock.
    schedules: Vec<Option<DateTime<Utc>>>,
    /// The next label to fold, as a position in label order.
    next_label: usize,
    predict_seconds: f64,
    monitor_seconds: f64,
}

impl Retrain {
    /// The record of `plan`'s update after the row at `index`, before it trains.
    fn planned(plan: &TrainPlan, index: usize, old: &Dataset, new: &Dataset) -> Retrain {
        Retrain {
            index,
            trained_upto: plan.upto.id as usize,
            trigger: plan.trigger.as_str().into(),
            reason: plan.reason.clone(),
            requested_strategy: plan.strategy,
            strategy: plan.strategy,
            promoted: false,
            holdout_accuracy: None,
            champion_holdout_accuracy: None,
            n_old_rows: old.len(),
            n_new_rows: new.len(),
            rows: RowRanges::of(old, new, 0),
            train_seconds: 0.0,
            steps: 0,
            recent_rows: None,
            error: None,
            grew_classes: None,
        }
    }
}

impl Replay<'_> {
    fn nf(&self) -> usize {
        self.sim.h.n_features()
    }

    /// Predicts rows `step..end` with the model serving now.
    fn predict(&mut self, step: usize, end: usize) -> Result<(), BacktestError> {
        let t = Instant::now();
        let nf = self.nf();
        let served = self.sim.served.as_ref().expect("the bootstrap serves");
        let p = train::predict(&served.artifact, &self.sim.h.rows.x[step * nf..end * nf])?;
        for (i, row) in (step..end).enumerate() {
            (self.preds[row], self.scores[row]) = (p.stored(i), p.confidence(i));
            self.versions[row] = served.version;
        }
        self.predict_seconds += t.elapsed().as_secs_f64();
        Ok(())
    }

    /// Estimates rows `step..end` as the daemon estimates scored rows, before any label of
    /// theirs is in (the estimated trigger looks at it with the step's decisions).
    fn estimate(&mut self, step: usize, end: usize) {
        let ts = &self.sim.h.rows.ts;
        let rows: Vec<ScoredRow> = (step..end)
            .map(|j| ScoredRow {
                id: j as i64,
                created_at: at(ts[j]),
                score: self.scores[j],
                version: Some(self.versions[j]),
            })
            .collect();
        let to = Watermark {
            labeled_at: at(ts[end - 1]),
            id: end as i64 - 1,
        };
        let folded = self.core.fold_scored(&rows, to);
        self.expected[step..end].copy_from_slice(&folded.expected);
        self.core.commit_scored(folded);
    }

    /// Folds the labels that arrived, up to position `label_end` in label order, into the
    /// monitor.
    fn label(&mut self, label_end: usize) {
        let h = self.sim.h;
        let all = &self.sim.all;
        let outcomes: Vec<Outcome> = (self.next_label..label_end)
            .map(|pos| {
                let j = all.ids[pos] as usize;
                self.correct[j] = score_row(self.sim.model.task, self.preds[j], h.label(j)).correct;
                Outcome {
                    id: j as i64,
                    labeled_at: at(all.ts[pos]),
                    features: h.row(j).to_vec(),
                    prediction: self.preds[j],
                    label: h.label(j),
                    model_version: Some(self.versions[j]),
                }
            })
            .collect();
        self.next_label = label_end;
        let Some(last) = outcomes.last() else {
            return;
        };
        let to = Watermark {
            labeled_at: last.labeled_at,
            id: last.id,
        };
        let folded = self.core.fold(&outcomes, to);
        for e in &self.core.commit(folded) {
            if let MonitorEvent::Drift {
                detector, row_id, ..
            } = e
            {
                self.drift_events.push(DriftPoint {
                    index: *row_id as usize,
                    detector: detector.clone(),
                });
            }
        }
    }

    /// What the daemon asks the core after a committed batch: the feature-drift check, the
    /// batch's triggers, the schedules that fired.
    fn decide(&mut self, now: DateTime<Utc>, end: usize) -> Vec<Decision> {
        let mut decisions = Vec::new();
        if self.core.feature_check_due(now) {
            decisions.extend(self.check_features(end, now));
        }
        decisions.extend(self.core.on_batch(now));
        let model = self.sim.model;
        for (i, next) in self.schedules.iter_mut().enumerate() {
            if next.is_some_and(|t| now >= t) {
                if let Some(req) = control::schedule_request(model, i) {
                    decisions.push(self.core.on_request(req));
                }
                *next = next_schedule(model, i, now);
            }
        }
        decisions
    }

    fn check_features(&mut self, end: usize, now: DateTime<Utc>) -> Vec<Decision> {
        let (Some(fd), Some(served)) = (&self.sim.model.feature_drift, &self.sim.served) else {
            return Vec::new();
        };
        let Some(reference) = &served.reference else {
            return Vec::new();
        };
        let nf = self.nf();
        let recent = &self.sim.h.rows.x[end.saturating_sub(fd.window_rows) * nf..end * nf];
        match feature_drift::check(reference, recent, fd) {
            Ok(report) => self.core.on_feature_drift(&report, now),
            Err(_) => Vec::new(),
        }
    }

    /// One simulated poll: rows `step..end` are predicted, the labels that arrived meanwhile
    /// folded in, and the decisions carried out. Returns false once nothing is left to
    /// predict.
    fn step(&mut self, step: usize, end: usize) -> Result<bool, BacktestError> {
        let n = self.sim.h.len();
        self.predict(step, end)?;
        let t = Instant::now();
        self.estimate(step, end);
        let label_end = self.labels_in(end);
        self.label(label_end);
        if end == n {
            // Nothing is left to predict: an update now could not change any prediction.
            self.monitor_seconds += t.elapsed().as_secs_f64();
            return Ok(false);
        }
        let now = at(self.sim.h.rows.ts[end - 1]);
        let decisions = self.decide(now, end);
        self.record_standing(end - 1);
        self.monitor_seconds += t.elapsed().as_secs_f64();
        self.sim
            .carry_out(&mut self.core, decisions, end - 1, now)?;
        Ok(true)
    }

    /// Where the online challenger stands after the batch, before any promotion it brings.
    fn record_standing(&mut self, index: usize) {
        if let Some(s) = self.core.state().shadow.standing().filter(|s| s.rows > 0) {
            self.shadow_series.push(ShadowSeriesPoint {
                index,
                rows: s.rows,
                challenger_accuracy: s.challenger_accuracy,
                champion_accuracy: s.champion_accuracy,
            });
        }
    }

    /// How many labels (in label order) have arrived once rows `..end` are predicted: all of
    /// them after the last row; with a label time column, those at or before the newest
    /// prediction's time; else those `label_delay_rows` behind.
    fn labels_in(&self, end: usize) -> usize {
        let n = self.sim.h.len();
        if end == n {
            return n;
        }
        if self.sim.h.label_ts.is_some() {
            let now = self.sim.h.rows.ts[end - 1];
            let all = &self.sim.all;
            // A label stamped with its own prediction's time waits for that prediction.
            let arrived = (self.next_label..n)
                .take_while(|&pos| all.ts[pos] <= now && (all.ids[pos] as usize) < end)
                .count();
            return self.next_label + arrived;
        }
        end.saturating_sub(self.opts.label_delay_rows)
            .max(self.next_label)
    }
}

fn next_schedule(model: &ModelConfig, i: usize, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let s = &model.triggers.schedules[i];
    next_firing(&s.cron, model.triggers.timezone, from)
}

/// The first rows fit the first model, through the core as the daemon's bootstrap.
fn bootstrap(sim: &mut Sim<'_>, core: &mut Controller, b: usize) -> Result<(), BacktestError> {
    let now = at(sim.h.rows.ts[b - 1]);
    let decision = core.bootstrap(b as u64, now);
    sim.carry_out(core, vec![decision], b - 1, now)?;
    if sim.served.is_none() {
        let why = sim.retrains.last().and_then(|r| r.error.clone());
        return Err(BacktestError::Train(TrainError::InvalidInput(format!(
            "the bootstrap fit produced no model: {}",
            why.unwrap_or_default()
        ))));
    }
    Ok(())
}

/// The bootstrap size, checked against the history and the model.
fn bootstrap_rows(
    model: &ModelConfig,
    h: &History,
    opts: &BacktestOptions,
) -> Result<usize, BacktestError> {
    let n = h.len();
    if h.n_features() != model.n_features {
        return Err(BacktestError::Config(format!(
            "model `{}` has n_features = {}, the history {}",
            model.name,
            model.n_features,
            h.n_features()
        )));
    }
    let b = opts
        .bootstrap_rows
        .unwrap_or(model.triggers.bootstrap_min_rows as usize);
    if b < 2 || b >= n {
        return Err(BacktestError::Config(format!(
            "bootstrap_rows is {b}: it must be at least 2 and below the {n} rows of the history"
        )));
    }
    Ok(b)
}

/// When each row's label arrives: at its own label time, or when the row `d` later is
/// predicted. The bootstrap rows' labels are there when the first model is fit (at the
/// newest bootstrap row's time), whatever their label time.
fn label_times(h: &History, b: usize, d: usize) -> Vec<i64> {
    let n = h.len();
    let fit_at = h.rows.ts[b - 1];
    (0..n)
        .map(|j| match (&h.label_ts, j < b) {
            (Some(l), true) => l[j].min(fit_at),
            (Some(l), false) => l[j],
            (None, true) => h.rows.ts[j],
            (None, false) => h.rows.ts[(j + d).min(n - 1)],
        })
        .collect()
}

/// Every row as training data in label order: by (label time, row), as the daemon's poll
/// reads them; `ts` is the label time, `ids` the row's index.
fn in_label_order(h: &History, label_ts: &[i64]) -> Dataset {
    let mut order: Vec<usize> = (0..h.len()).collect();
    order.sort_by_key(|&j| (label_ts[j], j));
    let mut all = h.rows.subset(&order);
    all.ts = order.iter().map(|&j| label_ts[j]).collect();
    all.ids = order.iter().map(|&j| j as i64).collect();
    all
}

fn trigger_mode(policy: PolicyMode) -> TriggerMode {
    match policy {
        PolicyMode::Configured => TriggerMode::Configured,
        PolicyMode::Never => TriggerMode::Never,
        PolicyMode::Periodic { every_rows } => TriggerMode::EveryRows(every_rows),
    }
}

fn new_replay<'a>(
    model: &'a ModelConfig,
    h: &'a History,
    opts: &'a BacktestOptions,
    b: usize,
) -> Replay<'a> {
    let n = h.len();
    let label_ts = label_times(h, b, opts.label_delay_rows);
    let all = in_label_order(h, &label_ts);
    let sim = Sim {
        model,
        h,
        all,
        n_classes: model.class_count(),
        training_seconds: 0.0,
        cancel: AtomicBool::new(false),
        served: None,
        retrains: Vec::new(),
        shadow: Vec::new(),
        coalesced: 0,
        skipped: 0,
    };
    let core = Controller::new(
        model.clone(),
        ModelState::new(model),
        sim.watermark(b - 1),
        opts.seed,
    )
    .with_mode(trigger_mode(opts.policy));
    let schedules = match opts.policy {
        PolicyMode::Configured => (0..model.triggers.schedules.len())
            .map(|i| next_schedule(model, i, at(h.rows.ts[b - 1])))
            .collect(),
        _ => Vec::new(),
    };
    Replay {
        sim,
        core,
        opts,
        preds: vec![0f64; n],
        scores: vec![0f64; n],
        expected: vec![None; n],
        versions: vec![0i64; n],
        correct: vec![false; n],
        drift_events: Vec::new(),
        shadow_series: Vec::new(),
        schedules,
        next_label: b,
        predict_seconds: 0.0,
        monitor_seconds: 0.0,
    }
}

/// Replays an in-memory history (see the module docs of [`super`]).
pub fn run_history(
    model: &ModelConfig,
    h: &History,
    opts: &BacktestOptions,
) -> Result<Report, BacktestError> {
    opts.validate()?;
    if let Some(max) = opts.max_rows.filter(|&m| m < h.len()) {
        let mut first = h.clone();
        first.truncate(max);
        let opts = BacktestOptions {
            max_rows: None,
            ..opts.clone()
        };
        return run_history(model, &first, &opts);
    }
    let wall = Instant::now();
    let b = bootstrap_rows(model, h, opts)?;
    let mut replay = new_replay(model, h, opts, b);
    bootstrap(&mut replay.sim, &mut replay.core, b)?;
    let mut step = b;
    while step < h.len() {
        let end = (step + opts.batch_rows).min(h.len());
        crate::progress::report(end, h.len());
        if !replay.step(step, end)? {
            break;
        }
        step = end;
    }
    Ok(report(replay, b, wall))
}

fn accuracy_series(correct: &[bool], from: usize, every: usize) -> Vec<SeriesPoint> {
    let mut series = Vec::new();
    let mut start = from;
    while start < correct.len() {
        let stop = (start + every).min(correct.len());
        let c = correct[start..stop].iter().filter(|&&c| c).count();
        series.push(SeriesPoint {
            index: stop - 1,
            accuracy: c as f64 / (stop - start) as f64,
        });
        start = stop;
    }
    series
}

/// Per `every` predicted rows from `from`: the mean expected correctness of the rows that
/// were estimated and the accuracy of those same rows.
fn estimation_series(
    expected: &[Option<f64>],
    correct: &[bool],
    from: usize,
    every: usize,
) -> Vec<EstimationPoint> {
    let mut series = Vec::new();
    let mut start = from;
    while start < expected.len() {
        let stop = (start + every).min(expected.len());
        let (mut n, mut est, mut hits) = (0usize, 0f64, 0usize);
        for j in start..stop {
            if let Some(e) = expected[j] {
                n += 1;
                est += e;
                hits += usize::from(correct[j]);
            }
        }
        if n > 0 {
            series.push(EstimationPoint {
                end_row: stop - 1,
                estimated_accuracy: est / n as f64,
                realized_accuracy: hits as f64 / n as f64,
                rows: n,
            });
        }
        start = stop;
    }
    series
}

fn report(replay: Replay<'_>, b: usize, wall: Instant) -> Report {
    let estimation = estimation_series(
        &replay.expected,
        &replay.correct,
        b,
        replay.opts.estimate_window,
    );
    let estimated_accuracy_mae = (!estimation.is_empty()).then(|| {
        estimation
            .iter()
            .map(|p| (p.estimated_accuracy - p.realized_accuracy).abs())
            .sum::<f64>()
            / estimation.len() as f64
    });
    let Replay {
        mut sim,
        opts,
        correct,
        drift_events,
        shadow_series,
        predict_seconds,
        monitor_seconds,
        preds,
        ..
    } = replay;
    let h = sim.h;
    let n = h.len();
    let evaluated = n - b;
    let hits = correct[b..].iter().filter(|&&c| c).count();
    let predicted: Vec<u32> = preds[b..]
        .iter()
        .map(|&p| sim.model.task.predicted_class(p))
        .collect();
    let metrics = stream_metrics(
        &h.labels(),
        &predicted,
        b,
        opts.label_delay_rows,
        sim.n_classes,
    );
    let mut drifts: Vec<usize> = drift_events.iter().map(|e| e.index).collect();
    drifts.sort_unstable();
    drifts.dedup();
    let bootstrap = sim.retrains.remove(0);
    Report {
        model: sim.model.name.clone(),
        policy: opts.policy.describe(),
        n_features: h.n_features(),
        feature_names: h.feature_names.clone(),
        input_rows: n,
        skipped_rows: h.skipped_rows,
        skipped_by_reason: h.skipped_by_reason.clone(),
        bootstrap_rows: b,
        label_delay_rows: opts.label_delay_rows,
        label_delay: if h.label_ts.is_some() {
            "timestamps"
        } else {
            "rows"
        }
        .into(),
        seed: opts.seed,
        rows: evaluated,
        prequential_accuracy: hits as f64 / evaluated as f64,
        metrics,
        update_cost: UpdateCost::of(&sim.retrains),
        drifts,
        drift_events,
        bootstrap,
        promotions: sim.retrains.iter().filter(|r| r.promoted).count() + sim.shadow.len(),
        shadow_promotions: sim.shadow,
        shadow_series,
        retrains: sim.retrains,
        coalesced: sim.coalesced,
        skipped: sim.skipped,
        accuracy_series: accuracy_series(&correct, b, opts.series_every),
        classes: class_reports(&h.labels(), &correct, b),
        estimation,
        estimated_accuracy_mae,
        training_seconds: sim.training_seconds,
        predict_seconds,
        monitor_seconds,
        wall_seconds: wall.elapsed().as_secs_f64(),
    }
}
