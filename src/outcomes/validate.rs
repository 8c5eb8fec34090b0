//! Turning a raw row into a valid outcome, or into a rejection with a reason.

use chrono::{DateTime, Utc};

use super::RawOutcome;
use crate::config::Task;

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
    MissingPrediction,
    InvalidPrediction,
}

impl RejectReason {
    pub const ALL: [RejectReason; 7] = [
        RejectReason::NullFeatures,
        RejectReason::NullFeature,
        RejectReason::NonFiniteFeature,
        RejectReason::WrongFeatureCount,
        RejectReason::InvalidLabel,
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

/// Whether a feature value stays finite as the f32 the models take (a finite f64 beyond
/// f32's range does not). Rows with a value that does not are rejected as
/// `non_finite_feature`, and never scored or trained on.
pub fn fits_f32(v: f64) -> bool {
    (v as f32).is_finite()
}

pub fn validate(
    raw: &RawOutcome,
    n_features: usize,
    task: Task,
    n_classes: u32,
) -> Result<Outcome, Rejection> {
    let reject = |reason, detail: String| Rejection {
        id: raw.id,
        labeled_at: raw.labeled_at,
        reason,
        detail,
    };
    let Some(feats) = &raw.features else {
        return Err(reject(
            RejectReason::NullFeatures,
            "features are NULL".into(),
        ));
    };
    if feats.len() != n_features {
        return Err(reject(
            RejectReason::WrongFeatureCount,
            format!("{} features, expected {n_features}", feats.len()),
        ));
    }
    let mut features = Vec::with_capacity(n_features);
    for (i, f) in feats.iter().enumerate() {
        match f {
            None => {
                return Err(reject(
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
                return Err(reject(RejectReason::NonFiniteFeature, why));
            }
            Some(v) => features.push(*v as f32),
        }
    }
    let label = match (task, raw.label) {
        (_, None) => return Err(reject(RejectReason::InvalidLabel, "label is NULL".into())),
        (Task::Binary, Some(l)) if l == 0.0 || l == 1.0 => l as u32,
        (Task::Multiclass, Some(l)) if l.fract() == 0.0 && l >= 0.0 && l < f64::from(n_classes) => {
            l as u32
        }
        (_, Some(l)) => {
            return Err(reject(
                RejectReason::InvalidLabel,
                format!("label {l} is not a valid class for this model"),
            ))
        }
    };
    let prediction = match (task, raw.prediction) {
        (_, None) => {
            return Err(reject(
                RejectReason::MissingPrediction,
                "prediction is NULL and no champion scored it".into(),
            ))
        }
        (Task::Binary, Some(p)) if (0.0..=1.0).contains(&p) => p,
        (Task::Multiclass, Some(p)) if p.fract() == 0.0 && p >= 0.0 && p < f64::from(n_classes) => {
            p
        }
        (_, Some(p)) => {
            return Err(reject(
                RejectReason::InvalidPrediction,
                format!("prediction {p} is out of range for this model"),
            ))
        }
    };
    Ok(Outcome {
        id: raw.id,
        labeled_at: raw.labeled_at,
        features,
        prediction,
        label,
        model_version: raw.model_version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(
        features: Option<Vec<Option<f64>>>,
        pred: Option<f64>,
        label: Option<f64>,
    ) -> RawOutcome {
        RawOutcome {
            id: 7,
            labeled_at: Utc::now(),
            features,
            prediction: pred,
            label,
            model_version: None,
            created_at: None,
        }
    }

    fn reason(r: RawOutcome) -> RejectReason {
        validate(&r, 2, Task::Binary, 2).unwrap_err().reason
    }

    #[test]
    fn each_defect_has_its_reason() {
        let ok = Some(vec![Some(1.0), Some(2.0)]);
        assert!(validate(&raw(ok.clone(), Some(0.3), Some(1.0)), 2, Task::Binary, 2).is_ok());
        assert_eq!(
            reason(raw(None, Some(0.3), Some(1.0))),
            RejectReason::NullFeatures
        );
        assert_eq!(
            reason(raw(Some(vec![Some(1.0)]), Some(0.3), Some(1.0))),
            RejectReason::WrongFeatureCount
        );
        assert_eq!(
            reason(raw(Some(vec![Some(1.0), None]), Some(0.3), Some(1.0))),
            RejectReason::NullFeature
        );
        assert_eq!(
            reason(raw(
                Some(vec![Some(1.0), Some(f64::NAN)]),
                Some(0.3),
                Some(1.0)
            )),
            RejectReason::NonFiniteFeature
        );
        let beyond = validate(
            &raw(Some(vec![Some(1.0), Some(1e39)]), Some(0.3), Some(1.0)),
            2,
            Task::Binary,
            2,
        )
        .unwrap_err();
        assert_eq!(beyond.reason, RejectReason::NonFiniteFeature);
        assert!(beyond.detail.contains("beyond"), "{}", beyond.detail);
        assert_eq!(
            reason(raw(ok.clone(), Some(0.3), Some(2.0))),
            RejectReason::InvalidLabel
        );
        assert_eq!(
            reason(raw(ok.clone(), Some(0.3), None)),
            RejectReason::InvalidLabel
        );
        assert_eq!(
            reason(raw(ok.clone(), None, Some(1.0))),
            RejectReason::MissingPrediction
        );
        assert_eq!(
            reason(raw(ok, Some(1.5), Some(1.0))),
            RejectReason::InvalidPrediction
        );
    }

    #[test]
    fn multiclass_labels_are_class_indices() {
        let ok = Some(vec![Some(1.0), Some(2.0)]);
        assert!(validate(
            &raw(ok.clone(), Some(2.0), Some(2.0)),
            2,
            Task::Multiclass,
            3
        )
        .is_ok());
        let e = validate(&raw(ok, Some(1.0), Some(3.0)), 2, Task::Multiclass, 3).unwrap_err();
        assert_eq!(e.reason, RejectReason::InvalidLabel);
    }
}
