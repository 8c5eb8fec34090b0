//! The prequential replay (see the module docs of [`super`]).

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use chrono::{DateTime, TimeZone, Utc};

use super::metrics::{predicted_class, stream_metrics, UpdateCost};
use super::{
    BacktestError, BacktestOptions, DriftPoint, History, PolicyMode, Report, Retrain, SeriesPoint,
};
use crate::config::{parse_duration_secs, ModelConfig, Task};
use crate::feature_drift::{self, ReferenceSample};
use crate::monitor::{score_row, MonitorEvent, MonitorState};
use crate::outcomes::Outcome;
use crate::policy::{self, schedule::next_firings, BatchView};
use crate::train::{self, Dataset, ModelArtifact, Strategy, TrainError, UpdateRequest};

fn at(ts: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(ts, 0).single().unwrap_or_default()
}

/// An update the replay decided on.
struct Request {
    trigger: String,
    reason: String,
    strategy: Strategy,
    /// The row after which new data starts, when the trigger located the change (the
    /// daemon's `TrainRequest::new_after`).
    new_after: Option<usize>,
}

struct Champion {
    artifact: ModelArtifact,
    /// The newest row it was trained on: rows up to here are "old".
    cutoff: usize,
    holdout_accuracy: Option<f64>,
    /// 1 for the bootstrap model, +1 per promotion (stamped on the outcomes it predicts).
    version: i64,
    /// The feature-drift reference: a sample of the rows its update read.
    reference: Option<ReferenceSample>,
}

struct Sim<'a> {
    model: &'a ModelConfig,
    opts: &'a BacktestOptions,
    h: &'a History,
    /// Every row as training data; `ts` is the label's arrival time.
    all: Dataset,
    n_classes: usize,
    runs: u64,
    training_seconds: f64,
    cancel: AtomicBool,
}

impl Sim<'_> {
    /// Rows `start..end` of `all`, the newest `max_training_rows` of them.
    fn rows(&self, start: usize, end: usize) -> Dataset {
        let start = start.max(end.saturating_sub(self.model.max_training_rows));
        if start >= end {
            return Dataset::empty(self.h.n_features);
        }
        self.all.slice(start, end)
    }

    fn reference(&self, old: &Dataset, new: &Dataset) -> Option<ReferenceSample> {
        let fd = self.model.feature_drift.as_ref()?;
        let rows = old.concat(new).ok()?;
        if rows.is_empty() {
            return None;
        }
        ReferenceSample::from_rows(
            &rows.x,
            rows.n_features,
            fd.reference_sample_rows,
            self.opts.seed.wrapping_add(self.runs),
        )
        .with_feature_names(self.h.feature_names.clone())
        .ok()
    }

    /// Trains on the rows labelled before `upto` (exclusive); returns the record and, when
    /// promoted, the new champion.
    fn update(
        &mut self,
        req: &Request,
        champion: Option<&Champion>,
        upto: usize,
        index: usize,
    ) -> Result<(Retrain, Option<Champion>), BacktestError> {
        let (old, new) = match champion {
            Some(c) => {
                // As the daemon: old data ends at the champion's cut-off or at the drift.
                let split = req.new_after.filter(|&j| j + 1 < upto).unwrap_or(c.cutoff);
                (self.rows(0, split + 1), self.rows(split + 1, upto))
            }
            None => (Dataset::empty(self.h.n_features), self.rows(0, upto)),
        };
        let ureq = UpdateRequest {
            seed: self.opts.seed.wrapping_add(self.runs),
            strategy: Some(req.strategy),
            n_classes: self.n_classes,
        };
        let mut record = Retrain {
            index,
            trained_upto: upto.saturating_sub(1),
            trigger: req.trigger.clone(),
            reason: req.reason.clone(),
            requested_strategy: req.strategy,
            strategy: req.strategy,
            promoted: false,
            holdout_accuracy: None,
            champion_holdout_accuracy: None,
            n_old_rows: old.len(),
            n_new_rows: new.len(),
            train_seconds: 0.0,
            steps: 0,
            recent_rows: None,
            error: None,
        };
        let started = Instant::now();
        let result = train::run_update(
            &ureq,
            champion.map(|c| &c.artifact),
            &old,
            &new,
            &self.model.train,
            &self.cancel,
        );
        record.train_seconds = started.elapsed().as_secs_f64();
        self.training_seconds += record.train_seconds;
        self.runs += 1;
        let outcome = match result {
            Ok(o) => o,
            // A wrong training configuration fails every update: stop here.
            Err(e @ TrainError::Config(_)) => return Err(e.into()),
            Err(e) if champion.is_none() => return Err(e.into()),
            Err(e) => {
                record.error = Some(e.to_string());
                return Ok((record, None));
            }
        };
        record.champion_holdout_accuracy = outcome.champion_holdout.map(|s| s.accuracy);
        record.steps = outcome.steps;
        let Some(chosen) = outcome.chosen else {
            record.error = Some(outcome.reason);
            return Ok((record, None));
        };
        record.strategy = chosen.strategy;
        record.recent_rows = chosen.recent_rows;
        record.holdout_accuracy = chosen.holdout.map(|s| s.accuracy);
        record.promoted = outcome.promoted;
        if !outcome.promoted {
            return Ok((record, None));
        }
        let champion = Champion {
            reference: self.reference(&old, &new),
            artifact: chosen.artifact,
            cutoff: match champion {
                Some(c) if new.is_empty() => c.cutoff,
                _ => upto - 1,
            },
            holdout_accuracy: record.holdout_accuracy,
            version: champion.map_or(1, |c| c.version + 1),
        };
        Ok((record, Some(champion)))
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
        return run_history(
            model,
            &first,
            &BacktestOptions {
                max_rows: None,
                ..opts.clone()
            },
        );
    }
    let wall = Instant::now();
    let n = h.len();
    let nf = h.n_features;
    if nf != model.n_features {
        return Err(BacktestError::Config(format!(
            "model `{}` has n_features = {}, the history {nf}",
            model.name, model.n_features
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
    let d = opts.label_delay_rows;
    let n_classes = match model.task {
        Task::Binary => 2,
        Task::Multiclass => model.n_classes as usize,
    };
    // A row is labelled when the row `d` later is predicted (the bootstrap rows already are).
    let label_ts: Vec<i64> = (0..n)
        .map(|j| {
            if j < b {
                h.ts[j]
            } else {
                h.ts[(j + d).min(n - 1)]
            }
        })
        .collect();
    let all = Dataset {
        x: h.x.clone(),
        n_features: nf,
        y: h.y.iter().map(|&v| v as f32).collect(),
        ts: label_ts.clone(),
        ids: (0..n as i64).collect(),
    };
    let mut sim = Sim {
        model,
        opts,
        h,
        all,
        n_classes,
        runs: 0,
        training_seconds: 0.0,
        cancel: AtomicBool::new(false),
    };

    // The first model.
    let boot_req = Request {
        trigger: "bootstrap".into(),
        reason: format!("first model fit on the first {b} rows"),
        strategy: Strategy::RefitCombined,
        new_after: None,
    };
    let (bootstrap, champion) = sim.update(&boot_req, None, b, b - 1)?;
    let mut champion = champion.ok_or_else(|| {
        BacktestError::Train(TrainError::InvalidInput(format!(
            "the bootstrap fit produced no model: {}",
            bootstrap.error.clone().unwrap_or_default()
        )))
    })?;

    let mut state = MonitorState::new(model);
    let configured = opts.policy == PolicyMode::Configured;
    let mut schedules: Vec<(usize, Option<DateTime<Utc>>)> = if configured {
        model
            .triggers
            .schedules
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let next = next_firings(&s.cron, &model.triggers.timezone, at(h.ts[b - 1]), 1)
                    .ok()
                    .and_then(|v| v.first().copied());
                (i, next)
            })
            .collect()
    } else {
        Vec::new()
    };
    let feature_drift = model.feature_drift.as_ref().filter(|_| configured);
    let fd_interval = feature_drift
        .map(|fd| fd.check_interval_secs().unwrap_or(300))
        .unwrap_or(0);
    let mut last_fd_check: Option<i64> = None;
    let drift_cooldown = parse_duration_secs(&model.triggers.drift.cooldown).unwrap_or(0);

    let mut preds = vec![0f64; n];
    let mut versions = vec![0i64; n];
    let mut correct = vec![false; n];
    let mut drift_events: Vec<DriftPoint> = Vec::new();
    let mut retrains: Vec<Retrain> = Vec::new();
    let mut coalesced = 0usize;
    let (mut predict_seconds, mut monitor_seconds) = (0f64, 0f64);
    let mut next_label = b;
    let mut step = b;
    while step < n {
        let end = (step + opts.batch_rows).min(n);
        // Predict the batch's rows with the champion of the moment.
        let t = Instant::now();
        let p = train::predict(&champion.artifact, &h.x[step * nf..end * nf])?;
        for (i, row) in (step..end).enumerate() {
            preds[row] = match model.task {
                Task::Binary => f64::from(p.proba[i]),
                Task::Multiclass => f64::from(p.labels[i]),
            };
            versions[row] = champion.version;
        }
        predict_seconds += t.elapsed().as_secs_f64();
        crate::progress::report(end, n);

        // The labels that arrived meanwhile (all of them once the last row is predicted).
        let t = Instant::now();
        let label_end = if end == n {
            n
        } else {
            end.saturating_sub(d).max(next_label)
        };
        let mut events: Vec<MonitorEvent> = Vec::new();
        for j in next_label..label_end {
            let o = Outcome {
                id: j as i64,
                labeled_at: at(label_ts[j]),
                features: h.row(j).to_vec(),
                prediction: preds[j],
                label: h.y[j],
                model_version: Some(versions[j]),
            };
            correct[j] = score_row(model.task, preds[j], h.y[j]).correct;
            events.extend(state.update(&o));
        }
        next_label = label_end;
        for e in &events {
            if let MonitorEvent::Drift {
                detector, row_id, ..
            } = e
            {
                drift_events.push(DriftPoint {
                    index: *row_id as usize,
                    detector: detector.clone(),
                });
            }
        }
        if end == n {
            // Nothing is left to predict: an update now could not change any prediction.
            monitor_seconds += t.elapsed().as_secs_f64();
            break;
        }

        // What the daemon does after a committed batch.
        let now_ts = h.ts[end - 1];
        let now = at(now_ts);
        let mut requests: Vec<Request> = Vec::new();
        if let Some(fd) = feature_drift {
            if last_fd_check.is_none_or(|t| now_ts - t >= fd_interval) {
                last_fd_check = Some(now_ts);
                if let Some(reference) = &champion.reference {
                    let recent = &h.x[end.saturating_sub(fd.window_rows) * nf..end * nf];
                    let cooled = state
                        .policy
                        .last_trigger_at
                        .is_none_or(|t| (now - t).num_seconds() >= drift_cooldown);
                    if let Ok(r) = feature_drift::check(reference, recent, fd) {
                        if r.triggers_update(fd) && cooled {
                            state.policy.last_trigger_at = Some(now);
                            let drifted: Vec<&str> =
                                r.drifted().map(|f| f.feature.as_str()).collect();
                            requests.push(Request {
                                trigger: "feature_drift".into(),
                                reason: format!(
                                    "{:.0}% of features drifted: {}",
                                    r.drifted_ratio * 100.0,
                                    drifted.join(", ")
                                ),
                                strategy: model.triggers.drift.strategy,
                                new_after: None,
                            });
                        }
                    }
                }
            }
        }
        match opts.policy {
            PolicyMode::Configured => {
                let view = BatchView {
                    rows: state.rows,
                    events: &events,
                    watched_accuracy: state.window_accuracy(&model.triggers.threshold.window),
                    champion_holdout_accuracy: champion.holdout_accuracy,
                    has_champion: true,
                };
                if let Some(r) = policy::on_batch(&model.triggers, &mut state.policy, &view, now) {
                    requests.push(Request {
                        trigger: r.trigger.as_str().into(),
                        reason: r.reason,
                        strategy: r.strategy,
                        new_after: r.new_after.map(|w| w.id as usize),
                    });
                }
                for (i, next) in &mut schedules {
                    if next.is_some_and(|t| now >= t) {
                        let s = &model.triggers.schedules[*i];
                        requests.push(Request {
                            trigger: "schedule".into(),
                            reason: format!("schedule `{}` ({})", s.cron, model.triggers.timezone),
                            strategy: s.strategy,
                            new_after: None,
                        });
                        *next = next_firings(&s.cron, &model.triggers.timezone, now, 1)
                            .ok()
                            .and_then(|v| v.first().copied());
                    }
                }
            }
            PolicyMode::Never => {}
            PolicyMode::Periodic { every_rows } => {
                if state.rows - state.policy.rows_at_last_update >= every_rows {
                    requests.push(Request {
                        trigger: "periodic".into(),
                        reason: format!("{every_rows} rows since the last update"),
                        strategy: model.triggers.drift.strategy,
                        new_after: None,
                    });
                }
            }
        }
        monitor_seconds += t.elapsed().as_secs_f64();

        let mut requests = requests.into_iter();
        if let Some(req) = requests.next() {
            coalesced += requests.len();
            let (record, promoted) = sim.update(&req, Some(&champion), next_label, end - 1)?;
            policy::on_update(&mut state.policy, state.rows, now);
            if let Some(c) = promoted {
                champion = c;
            }
            retrains.push(record);
        }
        step = end;
    }

    let evaluated = n - b;
    let hits = correct[b..].iter().filter(|&&c| c).count();
    let mut accuracy_series = Vec::new();
    let mut start = b;
    while start < n {
        let stop = (start + opts.series_every).min(n);
        let c = correct[start..stop].iter().filter(|&&c| c).count();
        accuracy_series.push(SeriesPoint {
            index: stop - 1,
            accuracy: c as f64 / (stop - start) as f64,
        });
        start = stop;
    }
    let predicted: Vec<u32> = preds[b..]
        .iter()
        .map(|&p| predicted_class(model.task, p))
        .collect();
    let metrics = stream_metrics(&h.y, &predicted, b, d, n_classes);
    let mut drifts: Vec<usize> = drift_events.iter().map(|e| e.index).collect();
    drifts.sort_unstable();
    drifts.dedup();
    Ok(Report {
        model: model.name.clone(),
        policy: opts.policy.describe(),
        n_features: nf,
        feature_names: h.feature_names.clone(),
        input_rows: n,
        skipped_rows: h.skipped_rows,
        bootstrap_rows: b,
        label_delay_rows: d,
        seed: opts.seed,
        rows: evaluated,
        prequential_accuracy: hits as f64 / evaluated as f64,
        metrics,
        update_cost: UpdateCost::of(&retrains),
        drifts,
        drift_events,
        bootstrap,
        promotions: retrains.iter().filter(|r| r.promoted).count(),
        retrains,
        coalesced,
        accuracy_series,
        training_seconds: sim.training_seconds,
        predict_seconds,
        monitor_seconds,
        wall_seconds: wall.elapsed().as_secs_f64(),
    })
}
