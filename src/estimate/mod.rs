//! Accuracy before the labels arrive: a confidence-based estimate (the method of NannyML's
//! CBPE) of how often the model is right on rows it has scored but whose labels are not in.
//!
//! Each model version gets a [`Calibration`] of its probabilities: fitted on the holdout of
//! the update that promoted it, or, for a version without one (the first model, an import, a
//! model driftd only monitors), on its first `calibration_rows` labelled rows. A scored row's
//! expected correctness is then the calibrated probability that its predicted class is right;
//! their mean over a window is the estimated accuracy.
//!
//! Two pieces of state, each stored with its own read position:
//! - [`Calibrations`] advance with the labelled rows (in the controller's snapshot): the
//!   calibration maps, and the *estimation gap*, estimated minus realized accuracy over the
//!   last `gap_rows` labelled rows. The estimate assumes P(label | features) did not change
//!   (covariate shift at most): a gap that opens is the sign of concept drift, which a
//!   confidence-based estimate cannot see.
//! - [`Estimates`] advance with the scored rows, in scoring order (`created_at`, id): count
//!   and time windows of expected correctness.
//!
//! Pure: no clock, no I/O; time comes with each row.

pub mod calibration;
pub mod windows;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{Outcome, Task, Watermark};
pub use calibration::{Calibration, Method};
use windows::{MeanTimeWindow, MeanWindow};

/// `[models.estimate]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EstimateConfig {
    /// Whether scored rows are read and estimated (labelled rows always feed the gap).
    pub enabled: bool,
    /// How each version's probabilities are calibrated.
    pub calibration: Method,
    /// A version that comes without a holdout calibration is calibrated on this many of its
    /// first labelled rows (and estimates nothing until then).
    pub calibration_rows: usize,
    /// Labelled rows of the estimation gap's window.
    pub gap_rows: usize,
    /// How often the daemon reads scored rows when the last read was not a full batch (the
    /// estimate is at most this stale; the default is the idle poll's 30 s, so a quiet
    /// model wakes no more often than without the estimate).
    pub interval_ms: u64,
}

impl Default for EstimateConfig {
    fn default() -> Self {
        EstimateConfig {
            enabled: true,
            calibration: Method::Isotonic,
            calibration_rows: 500,
            gap_rows: 1_000,
            interval_ms: 30_000,
        }
    }
}

/// How many versions' maps are kept: rows still arriving for an older version use its own.
const KEEP_VERSIONS: usize = 4;

/// The probability that a prediction is right, from its score: for a binary model the score
/// is P(class 1) and the calibrated probability of the class it predicts is returned; for a
/// multiclass model the score is the probability of the predicted class.
pub fn expected_correct(task: Task, map: &Calibration, score: f64) -> f64 {
    match task {
        Task::Binary => {
            let p1 = map.apply(score);
            if score >= 0.5 {
                p1
            } else {
                1.0 - p1
            }
        }
        Task::Multiclass => map.apply(score),
    }
}

/// What a map is fitted on: binary (P(class 1), label is 1); multiclass (top probability,
/// prediction was right).
fn calibration_target(task: Task, score: f64, correct: bool, label: u32) -> (f64, bool) {
    match task {
        Task::Binary => (score, label == 1),
        Task::Multiclass => (score, correct),
    }
}

/// One version's calibration, fitted or still collecting its first labelled rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionCalibration {
    pub version: i64,
    /// `None` while collecting.
    pub map: Option<Calibration>,
    /// Where the map came from: `holdout` or `labelled_rows`.
    pub source: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pending: Vec<(f32, bool)>,
}

/// The labelled side: maps per version and the estimation gap (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibrations {
    /// Newest last.
    versions: Vec<VersionCalibration>,
    gap_expected: MeanWindow,
    gap_correct: MeanWindow,
}

impl Default for Calibrations {
    fn default() -> Self {
        Calibrations::new(&EstimateConfig::default())
    }
}

impl Calibrations {
    pub fn new(cfg: &EstimateConfig) -> Self {
        Calibrations {
            versions: Vec::new(),
            gap_expected: MeanWindow::new(cfg.gap_rows.max(1)),
            gap_correct: MeanWindow::new(cfg.gap_rows.max(1)),
        }
    }

    /// A stored state under (possibly changed) settings: a new gap size starts the gap over.
    pub fn restore(cfg: &EstimateConfig, stored: Calibrations) -> Self {
        if stored.gap_expected.size == cfg.gap_rows.max(1) {
            stored
        } else {
            Calibrations {
                versions: stored.versions,
                ..Calibrations::new(cfg)
            }
        }
    }

    /// `version` is calibrated by `map` (fitted on its holdout); replaces what it had.
    pub fn set(&mut self, version: i64, map: Calibration) {
        self.set_from(version, map, "holdout");
    }

    /// `version` uses its raw probabilities: a multiclass model's labelled rows carry only
    /// the predicted class, so they cannot calibrate a version that came without a holdout.
    /// A version that has a map keeps it.
    pub fn raw(&mut self, version: i64) {
        if self.versions.iter().all(|v| v.version != version) {
            self.set_from(version, Calibration::Identity, "raw");
        }
    }

    fn set_from(&mut self, version: i64, map: Calibration, source: &str) {
        self.versions.retain(|v| v.version != version);
        self.push(VersionCalibration {
            version,
            map: Some(map),
            source: source.into(),
            pending: Vec::new(),
        });
    }

    /// `version` serves without a map: it will be fitted on its first labelled rows. A
    /// version that has one (or is collecting) is left as it is.
    pub fn expect(&mut self, version: i64) {
        if self.versions.iter().all(|v| v.version != version) {
            self.push(VersionCalibration {
                version,
                map: None,
                source: "labelled_rows".into(),
                pending: Vec::new(),
            });
        }
    }

    fn push(&mut self, v: VersionCalibration) {
        self.versions.push(v);
        self.versions.sort_by_key(|v| v.version);
        let excess = self.versions.len().saturating_sub(KEEP_VERSIONS);
        self.versions.drain(..excess);
    }

    /// The calibration of `version` (a row without a version: the newest), if fitted.
    pub fn map_for(&self, version: Option<i64>) -> Option<&Calibration> {
        let v = match version {
            Some(v) => self.versions.iter().find(|c| c.version == v),
            None => self.versions.last(),
        }?;
        v.map.as_ref()
    }

    /// Folds a labelled row whose score is `score` (see [`expected_correct`]): it feeds the
    /// gap if its version is calibrated, and its version's fit if it is still collecting. A
    /// row of a version newer than any known starts that version's fit.
    pub fn on_label(&mut self, cfg: &EstimateConfig, task: Task, row: &LabelledScore) {
        let Some(score) = row.score.filter(|s| s.is_finite()) else {
            return;
        };
        // A model driftd does not train names its own versions (or none, version 0): the
        // first labelled row of a newer one starts its calibration.
        let v = row.version.unwrap_or(0);
        if self.versions.last().is_none_or(|newest| v > newest.version) {
            self.expect(v);
        }
        let slot = match row.version {
            Some(v) => self.versions.iter_mut().find(|c| c.version == v),
            None => self.versions.last_mut(),
        };
        let Some(slot) = slot else {
            return;
        };
        match &slot.map {
            Some(map) => {
                self.gap_expected.push(expected_correct(task, map, score));
                self.gap_correct.push(f64::from(u8::from(row.correct)));
            }
            None => {
                let (s, t) = calibration_target(task, score, row.correct, row.label);
                slot.pending.push((s as f32, t));
                if slot.pending.len() >= cfg.calibration_rows.max(calibration::MIN_PAIRS) {
                    let pairs: Vec<(f64, bool)> = slot
                        .pending
                        .drain(..)
                        .map(|(s, t)| (f64::from(s), t))
                        .collect();
                    slot.map = Some(Calibration::fit(cfg.calibration, &pairs));
                }
            }
        }
    }

    /// Estimated minus realized accuracy over the gap's window (`None` while empty).
    pub fn gap(&self) -> Option<f64> {
        Some(self.gap_expected.mean()? - self.gap_correct.mean()?)
    }
}

/// A labelled row as the gap and the calibration see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabelledScore {
    pub version: Option<i64>,
    /// See [`expected_correct`]; `None` when the row carries no probability.
    pub score: Option<f64>,
    pub correct: bool,
    pub label: u32,
}

impl LabelledScore {
    /// A polled outcome of a binary model: its prediction is the probability. A multiclass
    /// outcome carries only the predicted class, so it has no score.
    pub fn of(task: Task, o: &Outcome, correct: bool) -> Self {
        LabelledScore {
            version: o.model_version,
            score: (task == Task::Binary).then_some(o.prediction),
            correct,
            label: o.label,
        }
    }
}

/// A scored row, labelled or not, in scoring order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoredRow {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    /// See [`expected_correct`].
    pub score: f64,
    pub version: Option<i64>,
}

/// The scored side: windows of expected correctness, in scoring order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimates {
    pub count_windows: Vec<MeanWindow>,
    /// With their configured names (`"1h"`), used as metric labels.
    pub time_windows: Vec<(String, MeanTimeWindow)>,
    /// Rows estimated, and rows passed over because their version had no map yet.
    pub rows: u64,
    pub uncalibrated: u64,
}

impl Estimates {
    /// Empty windows of these sizes and spans (the model's own `count_windows` and
    /// `time_windows`).
    pub fn new(count: &[usize], time: &[(String, i64)]) -> Self {
        Estimates {
            count_windows: count.iter().map(|&n| MeanWindow::new(n)).collect(),
            time_windows: time
                .iter()
                .map(|(name, secs)| (name.clone(), MeanTimeWindow::new(*secs)))
                .collect(),
            rows: 0,
            uncalibrated: 0,
        }
    }

    /// A stored state under (possibly changed) windows: the windows that changed start over.
    pub fn restore(count: &[usize], time: &[(String, i64)], stored: Estimates) -> Self {
        let fresh = Estimates::new(count, time);
        let same_count = stored
            .count_windows
            .iter()
            .map(|w| w.size)
            .eq(count.iter().copied());
        let same_time = stored
            .time_windows
            .iter()
            .map(|(n, w)| (n.as_str(), w.span_secs))
            .eq(time.iter().map(|(n, s)| (n.as_str(), *s)));
        Estimates {
            count_windows: if same_count {
                stored.count_windows
            } else {
                fresh.count_windows
            },
            time_windows: if same_time {
                stored.time_windows
            } else {
                fresh.time_windows
            },
            ..stored
        }
    }

    /// Folds scored rows; returns each row's expected correctness (`None`: its version has
    /// no calibration yet, or the row no finite score).
    pub fn fold(
        &mut self,
        task: Task,
        maps: &Calibrations,
        rows: &[ScoredRow],
    ) -> Vec<Option<f64>> {
        rows.iter()
            .map(|r| {
                let Some(map) = maps.map_for(r.version).filter(|_| r.score.is_finite()) else {
                    self.uncalibrated += 1;
                    return None;
                };
                let e = expected_correct(task, map, r.score);
                for w in &mut self.count_windows {
                    w.push(e);
                }
                for (_, w) in &mut self.time_windows {
                    w.push(r.created_at.timestamp(), e);
                }
                self.rows += 1;
                Some(e)
            })
            .collect()
    }

    /// Every window's estimated accuracy with its metric label (`"1000"`, `"24h"`).
    pub fn window_means(&self) -> Vec<(String, Option<f64>, u64)> {
        self.count_windows
            .iter()
            .map(|w| (w.size.to_string(), w.mean(), w.len() as u64))
            .chain(
                self.time_windows
                    .iter()
                    .map(|(name, w)| (name.clone(), w.mean(), w.rows())),
            )
            .collect()
    }

    /// The estimated accuracy of the window with metric label `name`, and its rows.
    pub fn window(&self, name: &str) -> Option<(f64, u64)> {
        self.window_means()
            .into_iter()
            .find(|(n, _, _)| n == name)
            .and_then(|(_, m, rows)| Some((m?, rows)))
    }
}

/// The scored side's read position: the newest (`created_at`, id) folded. It reuses the
/// label watermark's type and order; its time is the scoring time.
pub type ScoredCursor = Watermark;

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(s, 0).unwrap()
    }

    #[test]
    fn a_binary_prediction_is_right_with_the_calibrated_probability_of_its_class() {
        let id = Calibration::Identity;
        assert_eq!(expected_correct(Task::Binary, &id, 0.9), 0.9);
        assert!((expected_correct(Task::Binary, &id, 0.2) - 0.8).abs() < 1e-12);
        assert_eq!(expected_correct(Task::Multiclass, &id, 0.6), 0.6);
        // A map that says "P(1) is really 0.4 wherever the model says 0.7": predicting 1 is
        // then right 40 % of the time.
        let map = Calibration::Isotonic {
            x: vec![0.0, 1.0],
            y: vec![0.4, 0.4],
        };
        assert!((expected_correct(Task::Binary, &map, 0.7) - 0.4).abs() < 1e-12);
    }

    #[test]
    fn a_version_without_a_holdout_is_calibrated_on_its_first_labelled_rows() {
        let cfg = EstimateConfig {
            calibration_rows: 40,
            ..Default::default()
        };
        let mut c = Calibrations::new(&cfg);
        c.expect(1);
        let mut est = Estimates::new(&[10], &[]);
        let scored = |id| ScoredRow {
            id,
            created_at: at(id),
            score: 0.9,
            version: Some(1),
        };
        assert_eq!(est.fold(Task::Binary, &c, &[scored(0)]), vec![None]);
        assert_eq!(est.uncalibrated, 1);
        // A model that says 0.9 and is right half of the time.
        for i in 0..40 {
            let right = (i / 2) % 2 == 0;
            let row = LabelledScore {
                version: Some(1),
                score: Some(0.9),
                correct: right,
                label: u32::from(right),
            };
            c.on_label(&cfg, Task::Binary, &row);
        }
        let map = c.map_for(Some(1)).expect("fitted after 40 rows");
        assert!((map.apply(0.9) - 0.5).abs() < 1e-9, "{map:?}");
        let e = est.fold(Task::Binary, &c, &[scored(1), scored(2)]);
        assert!(
            e.iter().all(|e| e.is_some_and(|e| (e - 0.5).abs() < 1e-9)),
            "{e:?}"
        );
        assert!((est.window("10").unwrap().0 - 0.5).abs() < 1e-6);
        // Calibrated now, the gap starts: the model is right on these rows as predicted.
        for _ in 0..10 {
            let row = LabelledScore {
                version: Some(1),
                score: Some(0.9),
                correct: false,
                label: 0,
            };
            c.on_label(&cfg, Task::Binary, &row);
        }
        assert!(
            (c.gap().unwrap() - 0.5).abs() < 1e-6,
            "estimated 0.5, realized 0"
        );
    }

    #[test]
    fn a_monitored_model_s_own_versions_are_calibrated_as_they_come() {
        let cfg = EstimateConfig {
            calibration_rows: 20,
            ..Default::default()
        };
        let mut c = Calibrations::new(&cfg);
        let row = |version, correct: bool| LabelledScore {
            version,
            score: Some(0.8),
            correct,
            label: u32::from(correct),
        };
        // Wrong on 6 of 20 rows, evenly between the halves the fit is judged on.
        for i in 0..20 {
            c.on_label(&cfg, Task::Binary, &row(None, (i / 2) % 4 != 0));
        }
        assert!((c.map_for(None).unwrap().apply(0.8) - 0.7).abs() < 1e-9);
        c.on_label(&cfg, Task::Binary, &row(Some(7), true));
        assert_eq!(c.versions.last().unwrap().version, 7);
        assert!(c.map_for(Some(7)).is_none(), "collecting");
        // An older version's row does not start anything.
        c.on_label(&cfg, Task::Binary, &row(Some(3), true));
        assert_eq!(c.versions.len(), 2);
    }

    #[test]
    fn a_holdout_map_replaces_and_old_versions_are_dropped() {
        let mut c = Calibrations::default();
        for v in 1..=6 {
            c.expect(v);
        }
        c.set(6, Calibration::Platt { a: 1.0, b: 0.0 });
        assert_eq!(c.versions.len(), KEEP_VERSIONS);
        assert_eq!(c.versions[0].version, 3);
        assert_eq!(c.versions.last().unwrap().source, "holdout");
        assert!(c.map_for(None).is_some());
        assert!(c.map_for(Some(5)).is_none(), "still collecting");
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Calibrations>(&text).unwrap(), c);
    }

    #[test]
    fn changed_windows_start_over_and_the_others_are_kept() {
        let mut c = Calibrations::default();
        c.set(1, Calibration::Identity);
        let mut e = Estimates::new(&[5], &[("1h".into(), 3600)]);
        let row = ScoredRow {
            id: 1,
            created_at: at(10),
            score: 0.8,
            version: Some(1),
        };
        e.fold(Task::Binary, &c, &[row]);
        let kept = Estimates::restore(&[5], &[("2h".into(), 7200)], e.clone());
        assert_eq!(kept.count_windows, e.count_windows);
        assert_eq!(kept.window("2h"), None);
        assert_eq!(kept.rows, 1);
    }
}
