//! A labelled row that passed the row rules ([`Outcome`]), one that did not ([`Rejection`]),
//! and the rules ([`RowRules`]): the one place that says what a valid row is, used by the
//! poll (`outcomes::validate`) and by the training read (`daemon/training.rs`).

use chrono::{DateTime, Utc};

use super::{Classes, Task, MAX_CLASSES};

/// A labelled row that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub id: i64,
    pub labeled_at: DateTime<Utc>,
    pub features: Vec<f32>,
    /// Binary: P(label = 1). Multiclass: the predicted class index.
    pub prediction: f64,
    /// 0/1 for binary, the class index for multiclass.
    pub label: u32,
    pub model_version: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    NullFeatures,
    NullFeature,
    NonFiniteFeature,
    WrongFeatureCount,
    InvalidLabel,
    /// A class index beyond the configured classes, with `classes = "fixed"`.
    UnknownLabel,
    MissingPrediction,
    InvalidPrediction,
}

impl RejectReason {
    pub const ALL: [RejectReason; 8] = [
        RejectReason::NullFeatures,
        RejectReason::NullFeature,
        RejectReason::NonFiniteFeature,
        RejectReason::WrongFeatureCount,
        RejectReason::InvalidLabel,
        RejectReason::UnknownLabel,
        RejectReason::MissingPrediction,
        RejectReason::InvalidPrediction,
    ];

    /// The metric label and the `driftd.rejected_rows.reason` value.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::NullFeatures => "null_features",
            RejectReason::NullFeature => "null_feature",
            RejectReason::NonFiniteFeature => "non_finite_feature",
            RejectReason::WrongFeatureCount => "wrong_feature_count",
            RejectReason::InvalidLabel => "invalid_label",
            RejectReason::UnknownLabel => "unknown_label",
            RejectReason::MissingPrediction => "missing_prediction",
            RejectReason::InvalidPrediction => "invalid_prediction",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub id: i64,
    pub labeled_at: DateTime<Utc>,
    pub reason: RejectReason,
    pub detail: String,
}

/// A broken rule: the reason (a metric label and `driftd.rejected_rows.reason`) and the detail.
#[derive(Debug, Clone, PartialEq)]
pub struct RowDefect {
    pub reason: RejectReason,
    pub detail: String,
}

fn defect(reason: RejectReason, detail: String) -> RowDefect {
    RowDefect { reason, detail }
}

/// What a model's rows must be: `n_features` finite features, a label (and a prediction)
/// that is a class of the model's task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowRules {
    pub n_features: usize,
    pub task: Task,
    /// The configured class count (used by multiclass models only).
    pub n_classes: u32,
    /// Whether a class index beyond the configured ones is a new class or an unknown label.
    pub classes: Classes,
}

/// Whether a feature value stays finite as the f32 the models take (a finite f64 beyond
/// f32's range does not). Rows with a value that does not are rejected as
/// `non_finite_feature`, and never scored or trained on.
pub fn fits_f32(v: f64) -> bool {
    (v as f32).is_finite()
}

/// A row's features as `f32`, if there are `n_features` of them and each stays a finite
/// number as an `f32`: the one feature rule of validation, scoring, training and the drift
/// sample.
pub fn features_f32(
    n_features: usize,
    features: Option<&[Option<f64>]>,
) -> Result<Vec<f32>, RowDefect> {
    let Some(feats) = features else {
        return Err(defect(
            RejectReason::NullFeatures,
            "features are NULL".into(),
        ));
    };
    if feats.len() != n_features {
        return Err(defect(
            RejectReason::WrongFeatureCount,
            format!("{} features, expected {}", feats.len(), n_features),
        ));
    }
    let mut out = Vec::with_capacity(n_features);
    for (i, f) in feats.iter().enumerate() {
        match f {
            None => {
                return Err(defect(
                    RejectReason::NullFeature,
                    format!("feature {i} is NULL"),
                ))
            }
            // Checked after the cast: a finite f64 beyond f32's range becomes infinite.
            Some(v) if !fits_f32(*v) => {
                let why = if v.is_finite() {
                    format!("feature {i} is {v}, beyond a 32-bit float's range")
                } else {
                    format!("feature {i} is {v}")
                };
                return Err(defect(RejectReason::NonFiniteFeature, why));
            }
            Some(v) => out.push(*v as f32),
        }
    }
    Ok(out)
}

impl RowRules {
    /// The features as `f32`, if there are `n_features` of them and each is a finite number.
    pub fn features(&self, features: Option<&[Option<f64>]>) -> Result<Vec<f32>, RowDefect> {
        features_f32(self.n_features, features)
    }

    /// The configured classes: 2 (binary) or `n_classes` (multiclass).
    fn configured(&self) -> u32 {
        self.task.classes(self.n_classes) as u32
    }

    /// The label as a class index: one of the configured classes, or with
    /// [`Classes::Grow`] any class index below [`MAX_CLASSES`].
    pub fn label(&self, label: Option<f64>) -> Result<u32, RowDefect> {
        let Some(l) = label else {
            return Err(defect(RejectReason::InvalidLabel, "label is NULL".into()));
        };
        if !(l >= 0.0 && l.fract() == 0.0) {
            return Err(defect(
                RejectReason::InvalidLabel,
                format!("label {l} is not a class index (0, 1, 2, …)"),
            ));
        }
        let configured = self.configured();
        match self.classes {
            _ if l < f64::from(configured) => Ok(l as u32),
            Classes::Grow if l < f64::from(MAX_CLASSES) => Ok(l as u32),
            Classes::Grow => Err(defect(
                RejectReason::InvalidLabel,
                format!("label {l} is beyond the {MAX_CLASSES} classes a model can grow to"),
            )),
            Classes::Fixed => Err(defect(
                RejectReason::UnknownLabel,
                format!(
                    "label {l} is not one of the model's {configured} classes (classes = \"fixed\")"
                ),
            )),
        }
    }

    /// The prediction, if there is one in the task's range: a probability in [0, 1]
    /// (binary), a class index (multiclass, and a binary model that grew a class).
    pub fn prediction(&self, prediction: Option<f64>) -> Result<f64, RowDefect> {
        // A class index: below the configured classes, or any a grown model can have.
        let limit = match self.classes {
            Classes::Grow => MAX_CLASSES,
            Classes::Fixed => self.configured(),
        };
        let is_class = |p: f64| p >= 0.0 && p.fract() == 0.0 && p < f64::from(limit);
        let in_range = |p: f64| match self.task {
            Task::Binary => (0.0..=1.0).contains(&p) || is_class(p),
            Task::Multiclass => is_class(p),
        };
        match prediction {
            None => Err(defect(
                RejectReason::MissingPrediction,
                "prediction is NULL and no champion scored it".into(),
            )),
            Some(p) if in_range(p) => Ok(p),
            Some(p) => Err(defect(
                RejectReason::InvalidPrediction,
                format!("prediction {p} is out of range for this model"),
            )),
        }
    }
}
