//! Turning a raw row into a valid outcome, or into a rejection with a reason (the rules
//! themselves are [`RowRules`], shared with the training read).

use super::RawOutcome;
use crate::domain::{Outcome, Rejection, RowDefect, RowRules};

/// `raw` as an [`Outcome`], or the first rule of [`RowRules`] it breaks.
pub fn validate(raw: &RawOutcome, rules: RowRules) -> Result<Outcome, Rejection> {
    let checked = rules
        .features(raw.features.as_deref())
        .and_then(|features| {
            let label = rules.label(raw.label)?;
            Ok((features, label, rules.prediction(raw.prediction)?))
        });
    match checked {
        Ok((features, label, prediction)) => Ok(Outcome {
            id: raw.id,
            labeled_at: raw.labeled_at,
            features,
            prediction,
            label,
            model_version: raw.model_version,
        }),
        Err(RowDefect { reason, detail }) => Err(Rejection {
            id: raw.id,
            labeled_at: raw.labeled_at,
            reason,
            detail,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Classes, RejectReason, Task};
    use chrono::Utc;

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

    fn rules(n_features: usize, task: Task, n_classes: u32) -> RowRules {
        RowRules {
            n_features,
            task,
            n_classes,
            classes: Classes::Fixed,
        }
    }

    fn reason(r: RawOutcome) -> RejectReason {
        validate(&r, rules(2, Task::Binary, 2)).unwrap_err().reason
    }

    #[test]
    fn each_defect_has_its_reason() {
        let ok = Some(vec![Some(1.0), Some(2.0)]);
        assert!(validate(
            &raw(ok.clone(), Some(0.3), Some(1.0)),
            rules(2, Task::Binary, 2)
        )
        .is_ok());
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
            rules(2, Task::Binary, 2),
        )
        .unwrap_err();
        assert_eq!(beyond.reason, RejectReason::NonFiniteFeature);
        assert!(beyond.detail.contains("beyond"), "{}", beyond.detail);
        assert_eq!(
            reason(raw(ok.clone(), Some(0.3), Some(2.0))),
            RejectReason::UnknownLabel
        );
        assert_eq!(
            reason(raw(ok.clone(), Some(0.3), Some(0.5))),
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
            rules(2, Task::Multiclass, 3)
        )
        .is_ok());
        let e = validate(
            &raw(ok, Some(1.0), Some(3.0)),
            rules(2, Task::Multiclass, 3),
        )
        .unwrap_err();
        assert_eq!(e.reason, RejectReason::UnknownLabel);
        assert!(e.detail.contains("fixed"), "{}", e.detail);
    }

    #[test]
    fn a_growing_model_keeps_labels_beyond_its_classes() {
        let ok = Some(vec![Some(1.0), Some(2.0)]);
        let grow = RowRules {
            classes: Classes::Grow,
            ..rules(2, Task::Binary, 2)
        };
        let o = validate(&raw(ok.clone(), Some(0.8), Some(2.0)), grow).unwrap();
        assert_eq!(o.label, 2);
        // Once it grew, a binary model's predictions may be class indices.
        assert_eq!(
            validate(&raw(ok.clone(), Some(2.0), Some(2.0)), grow)
                .unwrap()
                .prediction,
            2.0
        );
        for (label, why) in [
            (-1.0, "class index"),
            (2.5, "class index"),
            (1e6, "grow to"),
        ] {
            let e = validate(&raw(ok.clone(), Some(0.8), Some(label)), grow).unwrap_err();
            assert_eq!(e.reason, RejectReason::InvalidLabel, "{label}");
            assert!(e.detail.contains(why), "{}", e.detail);
        }
        let e = validate(&raw(ok, Some(1.5), Some(1.0)), grow).unwrap_err();
        assert_eq!(e.reason, RejectReason::InvalidPrediction);
        assert_eq!(Task::Binary.predicted_class(2.0), 2);
        assert_eq!(Task::Binary.predicted_class(0.7), 1);
    }
}
