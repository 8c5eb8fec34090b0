//! Per-model monitor state: rolling windows, counters, the confusion matrix and the detectors.
//! Pure and serialisable: the daemon commits one snapshot with each watermark, and a restart
//! resumes from it exactly. No I/O, no clock (time windows run on label time).

mod windows;

pub use windows::{CountWindow, RowScore, TimeWindow, WindowStats};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{DetectorSlotConfig, ModelConfig, Signal, Task};
use crate::detect::{AnyDetector, DriftDetector};
use crate::domain::{HoldoutTrace, Outcome};

/// Probabilities are clipped before the log so a confident miss costs a large, finite loss.
const PROB_EPS: f64 = 1e-15;

pub fn score_row(task: Task, prediction: f64, label: u32) -> RowScore {
    let correct = task.predicted_class(prediction) == label;
    match task {
        // A binary model that grew a class: a label or a class-index prediction beyond 1 has
        // no probability of class 1 to score, so it scores as a hard prediction.
        Task::Binary if label > 1 || prediction > 1.0 => hard_score(correct),
        Task::Binary => {
            let y = f64::from(label);
            let p = prediction.clamp(PROB_EPS, 1.0 - PROB_EPS);
            RowScore {
                correct,
                log_loss: Some(-(y * p.ln() + (1.0 - y) * (1.0 - p).ln())),
                brier: Some((prediction - y).powi(2)),
            }
        }
        Task::Multiclass => RowScore {
            correct,
            log_loss: None,
            brier: None,
        },
    }
}

/// What a detector on `signal` reads of a row's scores (`None`: the row has no log-loss).
fn signal_value(signal: Signal, s: &RowScore) -> Option<f64> {
    match signal {
        Signal::Error => Some(f64::from(u8::from(!s.correct))),
        Signal::LogLoss => s.log_loss,
    }
}

/// A hard prediction's scores: all of the probability on the predicted class (log-loss
/// clipped as [`PROB_EPS`] clips a confident miss; Brier over the classes, 0 or 2).
fn hard_score(correct: bool) -> RowScore {
    let p_true = if correct { 1.0 - PROB_EPS } else { PROB_EPS };
    RowScore {
        correct,
        log_loss: Some(-p_true.ln()),
        brier: Some(if correct { 0.0 } else { 2.0 }),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DetectorSlot {
    /// Metric label: the detector's name, suffixed with the signal when it is not the error.
    pub label: String,
    pub signal: Signal,
    /// The configuration the detector was built from, to notice a changed config on restart.
    pub config: serde_json::Value,
    pub detector: AnyDetector,
    pub drifts: u64,
    pub warning: bool,
    /// Seeds a randomised detector (KSWIN) that configures none: from the model's name and
    /// the slot's index, so that a restart (a new version, a new process) or a replay draws
    /// the same numbers.
    #[serde(default)]
    pub seed: u64,
}

impl DetectorSlot {
    fn new(cfg: &DetectorSlotConfig, seed: u64) -> Self {
        let label = match cfg.signal {
            Signal::Error => cfg.detector.name().to_string(),
            Signal::LogLoss => format!("{}_log_loss", cfg.detector.name()),
        };
        DetectorSlot {
            label,
            signal: cfg.signal,
            config: serde_json::to_value(cfg).expect("detector config serialises"),
            // Validated when the config was loaded.
            detector: cfg
                .detector
                .build_seeded(seed)
                .expect("detector config was validated"),
            drifts: 0,
            warning: false,
            seed,
        }
    }

    /// Starts the detector over with its configured parameters (its drift count stays).
    fn restart(&mut self) {
        let cfg: DetectorSlotConfig =
            serde_json::from_value(self.config.clone()).expect("the slot's own config");
        self.detector = cfg
            .detector
            .build_seeded(self.seed)
            .expect("detector config was validated");
        self.warning = false;
    }
}

/// Something the monitor noticed on a row; the daemon records and exports it.
#[derive(Debug, Clone, PartialEq)]
pub enum MonitorEvent {
    Drift {
        detector: String,
        signal: Signal,
        row_id: i64,
        row_index: u64,
        labeled_at: DateTime<Utc>,
        estimate: f64,
    },
    /// A warning zone was entered (not repeated while it lasts).
    Warning {
        detector: String,
        signal: Signal,
        row_id: i64,
        row_index: u64,
        labeled_at: DateTime<Utc>,
        estimate: f64,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MonitorState {
    pub task: Task,
    pub rows: u64,
    pub correct: u64,
    /// `confusion[label][predicted]`, all time.
    pub confusion: Vec<Vec<u64>>,
    pub count_windows: Vec<CountWindow>,
    /// With their configured names (`"1h"`), used as metric labels.
    pub time_windows: Vec<(String, TimeWindow)>,
    pub detectors: Vec<DetectorSlot>,
    pub newest_labeled_at: Option<DateTime<Utc>>,
    /// The newest model version whose predictions the detectors have watched (rows'
    /// `model_version`; `None` until a row names one).
    #[serde(default)]
    pub detected_version: Option<i64>,
    /// `restart_detectors_on_new_version` from the model's config (not stored).
    #[serde(skip, default = "restart_by_default")]
    pub restart_on_new_version: bool,
    /// How many classes the serving model can output (the configured ones until a champion
    /// with more serves; see [`Self::set_known_classes`]). A label at or beyond it is unseen.
    #[serde(default)]
    pub known_classes: usize,
    /// Rows whose label the serving model could not output, all time.
    #[serde(default)]
    pub unseen_labels: u64,
    /// The errors a version made on its holdout, for its detectors to start from when its
    /// first row arrives (see [`Self::prime`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primer: Option<Primer>,
}

/// A version's holdout errors, waiting for the version's first labelled row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Primer {
    pub version: i64,
    pub trace: HoldoutTrace,
}

fn restart_by_default() -> bool {
    true
}

impl MonitorState {
    pub fn new(cfg: &ModelConfig) -> Self {
        let classes = cfg.class_count();
        MonitorState {
            task: cfg.task,
            rows: 0,
            correct: 0,
            confusion: vec![vec![0; classes]; classes],
            count_windows: cfg
                .count_windows
                .iter()
                .map(|&n| CountWindow::new(n))
                .collect(),
            time_windows: cfg
                .time_windows
                .iter()
                .map(|w| (w.to_string(), TimeWindow::new(w.secs())))
                .collect(),
            detectors: cfg
                .detectors
                .iter()
                .enumerate()
                .map(|(i, d)| DetectorSlot::new(d, crate::splitmix::seed_from(&cfg.name, i as u64)))
                .collect(),
            newest_labeled_at: None,
            detected_version: None,
            restart_on_new_version: cfg.restart_detectors_on_new_version,
            known_classes: classes,
            unseen_labels: 0,
            primer: None,
        }
    }

    /// Restores a snapshot, keeping what still matches the config: windows of the same size,
    /// detectors with the same configuration. Anything new starts empty.
    pub fn restore(cfg: &ModelConfig, snapshot: MonitorState) -> Self {
        let fresh = MonitorState::new(cfg);
        if snapshot.task != fresh.task {
            return fresh;
        }
        let take_count = |w: &CountWindow| {
            snapshot
                .count_windows
                .iter()
                .find(|s| s.size == w.size)
                .cloned()
                .unwrap_or_else(|| w.clone())
        };
        let take_time = |(name, w): &(String, TimeWindow)| {
            snapshot
                .time_windows
                .iter()
                .find(|(_, s)| s.span_secs == w.span_secs)
                .map(|(_, s)| (name.clone(), s.clone()))
                .unwrap_or_else(|| (name.clone(), w.clone()))
        };
        let take_det = |d: &DetectorSlot| {
            snapshot
                .detectors
                .iter()
                .find(|s| s.config == d.config)
                .map(|s| DetectorSlot {
                    seed: d.seed,
                    ..s.clone()
                })
                .unwrap_or_else(|| d.clone())
        };
        let mut restored = MonitorState {
            count_windows: fresh.count_windows.iter().map(take_count).collect(),
            time_windows: fresh.time_windows.iter().map(take_time).collect(),
            detectors: fresh.detectors.iter().map(take_det).collect(),
            restart_on_new_version: fresh.restart_on_new_version,
            // Classes only grow: a snapshot from before `known_classes` (0) or a config with
            // more classes than the snapshot's model.
            known_classes: snapshot.known_classes.max(fresh.known_classes),
            ..snapshot
        };
        restored.fit_confusion(restored.known_classes);
        restored
    }

    /// The serving model outputs `n` classes (a champion that learnt a new one serves).
    pub fn set_known_classes(&mut self, n: usize) {
        self.known_classes = self.known_classes.max(n);
        self.fit_confusion(self.known_classes);
    }

    /// Whether the serving model could not have output `label`.
    pub fn is_unseen(&self, label: u32) -> bool {
        label as usize >= self.known_classes
    }

    /// A row's scores; a label the model could not output is an error whatever it predicted.
    pub fn score(&self, o: &Outcome) -> RowScore {
        if self.is_unseen(o.label) {
            return hard_score(false);
        }
        score_row(self.task, o.prediction, o.label)
    }

    /// Grows the confusion matrix to at least `n` × `n`.
    fn fit_confusion(&mut self, n: usize) {
        let n = n.max(self.confusion.len());
        self.confusion.resize_with(n, Vec::new);
        for row in &mut self.confusion {
            row.resize(n, 0);
        }
    }

    /// Folds one valid row into the state and returns what the detectors saw.
    pub fn update(&mut self, o: &Outcome) -> Vec<MonitorEvent> {
        let s = self.score(o);
        let row_index = self.rows;
        self.rows += 1;
        self.correct += u64::from(s.correct);
        self.unseen_labels += u64::from(self.is_unseen(o.label));
        let predicted = self.task.predicted_class(o.prediction) as usize;
        self.fit_confusion(1 + predicted.max(o.label as usize));
        self.confusion[o.label as usize][predicted] += 1;
        for w in &mut self.count_windows {
            w.push(&s);
        }
        let ts = o.labeled_at.timestamp();
        for (_, w) in &mut self.time_windows {
            w.push(ts, &s);
        }
        self.newest_labeled_at = Some(
            self.newest_labeled_at
                .map_or(o.labeled_at, |t| t.max(o.labeled_at)),
        );

        // The detectors watch one model's errors. A newer version serving is a new stream:
        // its better (or worse) error rate is the update's doing, not drift in the world, so
        // they start over; rows still labelled for an older version no longer feed them.
        let version = o.model_version.filter(|_| self.restart_on_new_version);
        match (version, self.detected_version) {
            (Some(v), Some(seen)) if v < seen => return Vec::new(),
            (Some(v), seen) if seen != Some(v) => {
                if seen.is_some() || row_index > 0 {
                    self.detectors.iter_mut().for_each(DetectorSlot::restart);
                }
                self.detected_version = Some(v);
                self.start_from_primer(v);
            }
            _ => {}
        }
        let mut events = Vec::new();
        for slot in &mut self.detectors {
            let Some(x) = signal_value(slot.signal, &s) else {
                continue;
            };
            slot.detector.update(x);
            // Read only with an event: for ADWIN it sums the values not yet folded.
            if slot.detector.drift_detected() {
                let estimate = slot.detector.estimate();
                slot.drifts += 1;
                events.push(MonitorEvent::Drift {
                    detector: slot.label.clone(),
                    signal: slot.signal,
                    row_id: o.id,
                    row_index,
                    labeled_at: o.labeled_at,
                    estimate,
                });
            }
            let warning = slot.detector.warning_detected();
            if warning && !slot.warning {
                let estimate = slot.detector.estimate();
                events.push(MonitorEvent::Warning {
                    detector: slot.label.clone(),
                    signal: slot.signal,
                    row_id: o.id,
                    row_index,
                    labeled_at: o.labeled_at,
                    estimate,
                });
            }
            slot.warning = warning;
        }
        events
    }

    /// `version` made `trace`'s errors on its holdout, rows it was not trained on: when its
    /// first row arrives, its detectors start from them instead of from nothing. A restart
    /// on each promotion would otherwise leave them no reference, and a change just after a
    /// promotion would go unseen. Ignored for a version the detectors already watch (a
    /// driver that restarts primes again) and when they do not restart on a new version.
    pub fn prime(&mut self, version: i64, trace: HoldoutTrace) {
        let watched = self.detected_version.is_some_and(|seen| seen >= version);
        if !self.restart_on_new_version || watched || trace.is_empty() {
            return;
        }
        self.primer = Some(Primer { version, trace });
    }

    /// Feeds the primer's errors to the restarted detectors when it is `version`'s; what
    /// they notice on it is not an event (those rows are history, not the live stream).
    fn start_from_primer(&mut self, version: i64) {
        let Some(primer) = self.primer.take() else {
            return;
        };
        if primer.version != version {
            // An older version's (superseded before it served) or a newer one's: keep only
            // a newer one.
            if primer.version > version {
                self.primer = Some(primer);
            }
            return;
        }
        for (prediction, label) in primer.trace.rows() {
            let s = score_row(self.task, prediction, label);
            for slot in &mut self.detectors {
                if let Some(x) = signal_value(slot.signal, &s) {
                    slot.detector.update(x);
                }
            }
        }
        for slot in &mut self.detectors {
            slot.warning = slot.detector.warning_detected();
        }
    }

    pub fn accuracy(&self) -> Option<f64> {
        (self.rows > 0).then(|| self.correct as f64 / self.rows as f64)
    }

    /// Accuracy of the window with metric label `name`.
    pub fn window_accuracy(&self, name: &str) -> Option<f64> {
        self.window_stats()
            .into_iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, s)| s.accuracy())
    }

    /// Every window with its metric label (`"1000"`, `"24h"`).
    pub fn window_stats(&self) -> Vec<(String, WindowStats)> {
        self.count_windows
            .iter()
            .map(|w| (w.size.to_string(), w.stats()))
            .chain(
                self.time_windows
                    .iter()
                    .map(|(n, w)| (n.clone(), w.stats())),
            )
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The row indices at which `m` reports a drift while it reads `rows`.
    fn drift_indices(m: &mut MonitorState, rows: &[Outcome]) -> Vec<u64> {
        rows.iter()
            .flat_map(|o| m.update(o))
            .filter_map(|e| match e {
                MonitorEvent::Drift { row_index, .. } => Some(row_index),
                _ => None,
            })
            .collect()
    }
    use crate::config::Config;
    use chrono::TimeZone;

    fn model_cfg() -> ModelConfig {
        let text = r#"
[database]
url = "postgres://x@localhost/y"
[[models]]
name = "m"
n_features = 1
count_windows = [10]
time_windows = ["1h"]
"#;
        Config::from_toml_str(text, Vec::new())
            .unwrap()
            .models
            .remove(0)
    }

    #[test]
    fn a_label_the_model_cannot_output_is_an_unseen_error_until_a_model_can() {
        let cfg = model_cfg();
        let mut m = MonitorState::new(&cfg);
        assert_eq!(m.known_classes, 2);
        // A binary model that "predicts" class 1 with certainty on a row of class 2.
        m.update(&outcome(1, 1.0, 2));
        m.update(&outcome(2, 0.9, 1));
        assert_eq!((m.rows, m.correct, m.unseen_labels), (2, 1, 1));
        assert_eq!(m.confusion.len(), 3);
        assert_eq!(m.confusion[2][1], 1);
        assert_eq!(m.window_accuracy("10"), Some(0.5));
        // A champion with three classes serves: class 2 is one it can get right.
        m.set_known_classes(3);
        m.update(&outcome(3, 2.0, 2));
        assert_eq!((m.correct, m.unseen_labels), (2, 1));
        assert_eq!(m.confusion[2][2], 1);
        // Class indices only grow, and a restored snapshot keeps them.
        m.set_known_classes(2);
        assert_eq!(m.known_classes, 3);
        let back: MonitorState = serde_json::from_value(serde_json::to_value(&m).unwrap()).unwrap();
        let restored = MonitorState::restore(&cfg, back);
        assert_eq!((restored.known_classes, restored.unseen_labels), (3, 1));
        assert_eq!(restored.confusion, m.confusion);
    }

    fn outcome(i: i64, pred: f64, label: u32) -> Outcome {
        Outcome {
            id: i,
            labeled_at: Utc.timestamp_opt(1_700_000_000 + i * 60, 0).unwrap(),
            features: vec![0.0],
            prediction: pred,
            label,
            model_version: None,
        }
    }

    #[test]
    fn accuracy_and_confusion_follow_the_stream() {
        let mut m = MonitorState::new(&model_cfg());
        m.update(&outcome(1, 0.9, 1));
        m.update(&outcome(2, 0.2, 1));
        m.update(&outcome(3, 0.1, 0));
        assert_eq!(m.rows, 3);
        assert_eq!(m.correct, 2);
        assert_eq!(m.confusion, vec![vec![1, 0], vec![1, 1]]);
        let ll = m.window_stats()[0].1.log_loss().unwrap();
        let expect = (-(0.9f64.ln()) - 0.2f64.ln() - 0.9f64.ln()) / 3.0;
        assert!((ll - expect).abs() < 1e-6, "{ll} vs {expect}");
    }

    #[test]
    fn a_new_version_starts_the_detectors_over() {
        let cfg = model_cfg();
        // v1 is wrong on 3 rows in 10; v2 from row 2 000 on 1 in 20, which alone would look
        // like drift; from row 4 000 v2 is wrong on every other row: real drift.
        let row = |i: i64, version: Option<i64>| {
            let wrong = match i {
                ..2_000 => i % 10 < 3,
                2_000..4_000 => i % 20 == 0,
                _ => i % 2 == 0,
            };
            Outcome {
                model_version: version,
                ..outcome(i, 0.8, u32::from(!wrong))
            }
        };
        let versioned: Vec<Outcome> = (0..6_000)
            .map(|i| row(i, Some(if i < 2_000 { 1 } else { 2 })))
            .collect();
        let mut m = MonitorState::new(&cfg);
        let drifts = drift_indices(&mut m, &versioned);
        assert!(
            !drifts.is_empty() && drifts.iter().all(|&d| d >= 4_000),
            "{drifts:?}"
        );
        assert_eq!(m.detected_version, Some(2));
        // Without versions the same errors read as a drift at the switch.
        let mut unversioned = MonitorState::new(&cfg);
        let rows: Vec<Outcome> = (0..6_000).map(|i| row(i, None)).collect();
        let unversioned_drifts = drift_indices(&mut unversioned, &rows);
        assert!(
            unversioned_drifts
                .iter()
                .any(|&d| (2_000..4_000).contains(&d)),
            "{unversioned_drifts:?}"
        );
        // Switched off, the versions are ignored: the same drifts as without them.
        let mut off_cfg = cfg.clone();
        off_cfg.restart_detectors_on_new_version = false;
        let mut off = MonitorState::new(&off_cfg);
        assert_eq!(drift_indices(&mut off, &versioned), unversioned_drifts);
        // A late label for the retired version counts in the windows, not in the detectors.
        let before = serde_json::to_value(&m.detectors).unwrap();
        let rows = m.rows;
        assert!(m.update(&row(6_000, Some(1))).is_empty());
        assert_eq!(m.rows, rows + 1);
        assert_eq!(serde_json::to_value(&m.detectors).unwrap(), before);
    }

    #[test]
    fn a_primed_version_sees_a_change_that_comes_with_it() {
        // v1 serves rows 0..2 000 (wrong on 1 in 20). v2, promoted at row 2 000, was wrong on
        // 1 in 20 of its holdout too, but the world changes with it: from row 2 000 it is
        // wrong on every other row.
        let cfg = model_cfg();
        let wrong = |i: i64| if i < 2_000 { i % 20 == 0 } else { i % 2 == 0 };
        let rows: Vec<Outcome> = (0..2_400)
            .map(|i| Outcome {
                model_version: Some(if i < 2_000 { 1 } else { 2 }),
                ..outcome(i, 0.8, u32::from(!wrong(i)))
            })
            .collect();
        let holdout = HoldoutTrace::newest((0..200).map(|i| (0.8f32, u32::from(i % 20 != 0))));
        // Unprimed, v2's detectors start over on the new error rate: nothing to compare with.
        let mut blind = MonitorState::new(&cfg);
        assert_eq!(drift_indices(&mut blind, &rows), Vec::<u64>::new());
        // Primed with v2's holdout errors, the change is seen within a few hundred rows.
        let mut primed = MonitorState::new(&cfg);
        let (before, after) = rows.split_at(2_000);
        assert!(drift_indices(&mut primed, before).is_empty());
        primed.prime(2, holdout.clone());
        let drifts = drift_indices(&mut primed, after);
        assert!(
            matches!(drifts.first(), Some(&d) if (2_000..2_300).contains(&d)),
            "{drifts:?}"
        );
        assert_eq!(
            (primed.primer.as_ref(), primed.detectors[0].drifts),
            (None, drifts.len() as u64)
        );
        // A version already watched is not primed again (a driver that restarts sets it
        // again); nor are the detectors when they do not restart on a new version.
        primed.prime(2, holdout.clone());
        assert!(primed.primer.is_none());
        let mut off_cfg = cfg.clone();
        off_cfg.restart_detectors_on_new_version = false;
        let mut off = MonitorState::new(&off_cfg);
        off.prime(2, holdout);
        assert!(off.primer.is_none());
    }

    #[test]
    fn kswin_repeats_its_numbers_in_a_replay_and_after_a_restart() {
        let text = r#"
[[models]]
name = "m"
n_features = 1
[[models.detectors]]
kind = "kswin"
"#;
        let cfg = Config::from_toml_str(text, Vec::new())
            .unwrap()
            .models
            .remove(0);
        // Wrong on 1 row in 10, then on 1 in 2: KSWIN's random sample decides the indices.
        let rows = |from: i64, version: i64| -> Vec<Outcome> {
            (from..from + 3_000)
                .map(|i| {
                    let wrong = if i - from < 1_500 {
                        i % 10 == 0
                    } else {
                        i % 2 == 0
                    };
                    Outcome {
                        model_version: Some(version),
                        ..outcome(i, 0.8, u32::from(!wrong))
                    }
                })
                .collect()
        };
        let first = drift_indices(&mut MonitorState::new(&cfg), &rows(0, 1));
        assert!(!first.is_empty());
        // A replay, in this process or another: the same indices.
        assert_eq!(
            drift_indices(&mut MonitorState::new(&cfg), &rows(0, 1)),
            first
        );
        // A restart on a new version: the detector starts over from the same seed, so the
        // same rows give the same indices (shifted by the rows before the restart).
        let mut m = MonitorState::new(&cfg);
        drift_indices(&mut m, &rows(0, 1));
        let after: Vec<u64> = drift_indices(&mut m, &rows(3_000, 2))
            .into_iter()
            .map(|i| i - 3_000)
            .collect();
        assert_eq!(after, first);
        // Another model's slot samples other positions.
        let mut other = cfg.clone();
        other.name = "n".into();
        assert_ne!(
            MonitorState::new(&other).detectors[0].seed,
            MonitorState::new(&cfg).detectors[0].seed
        );
    }

    #[test]
    fn snapshot_round_trip_resumes_exactly() {
        let cfg = model_cfg();
        let stream: Vec<Outcome> = (0..3_000)
            .map(|i| {
                let wrong = if i < 1_500 { i % 10 == 0 } else { i % 2 == 0 };
                outcome(i, 0.8, u32::from(!wrong))
            })
            .collect();
        let mut straight = MonitorState::new(&cfg);
        let events_a: Vec<_> = stream.iter().flat_map(|o| straight.update(o)).collect();
        let mut first = MonitorState::new(&cfg);
        let mut events_b: Vec<_> = stream[..1_700]
            .iter()
            .flat_map(|o| first.update(o))
            .collect();
        let json = serde_json::to_string(&first).unwrap();
        let mut resumed = MonitorState::restore(&cfg, serde_json::from_str(&json).unwrap());
        events_b.extend(stream[1_700..].iter().flat_map(|o| resumed.update(o)));
        let json_of = |m: &MonitorState| serde_json::to_value(m).unwrap();
        assert_eq!(json_of(&resumed), json_of(&straight));
        assert_eq!(events_a, events_b);
        assert!(events_a
            .iter()
            .any(|e| matches!(e, MonitorEvent::Drift { .. })));
    }
}
