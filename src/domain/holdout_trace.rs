//! A version's predictions on the newest rows of its update's holdout.

use serde::{Deserialize, Serialize};

/// What a version predicted on the newest rows of its update's holdout, rows it was not
/// trained on, oldest first. The detectors of the version it becomes start from these errors
/// (see `monitor::MonitorState::prime`): a restart on a new version keeps a reference to
/// compare the live errors with, so that a change just after a promotion is still a change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HoldoutTrace {
    /// As the outcomes table holds predictions: P(class 1) for two classes, the predicted
    /// class index otherwise.
    pub predictions: Vec<f32>,
    pub labels: Vec<u32>,
}

impl HoldoutTrace {
    /// The newest rows kept: enough for a detector's reference window, small enough to store
    /// with each version (about 12 KB as JSON at 1 000 rows; listings leave it out).
    pub const MAX_ROWS: usize = 1000;

    /// The newest [`Self::MAX_ROWS`] of `rows` (prediction, label), oldest first.
    pub fn newest(rows: impl ExactSizeIterator<Item = (f32, u32)>) -> Self {
        let skip = rows.len().saturating_sub(Self::MAX_ROWS);
        let (predictions, labels) = rows.skip(skip).unzip();
        HoldoutTrace {
            predictions,
            labels,
        }
    }

    /// (prediction, label) pairs, oldest first.
    pub fn rows(&self) -> impl Iterator<Item = (f64, u32)> + '_ {
        self.predictions
            .iter()
            .zip(&self.labels)
            .map(|(&p, &y)| (f64::from(p), y))
    }

    pub fn len(&self) -> usize {
        self.labels.len().min(self.predictions.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_rows_in_order() {
        let rows = (0..1500u32).map(|i| (i as f32, i % 2));
        let t = HoldoutTrace::newest(rows);
        assert_eq!(t.len(), HoldoutTrace::MAX_ROWS);
        assert_eq!(t.rows().next(), Some((500.0, 0)));
        assert_eq!(t.rows().last(), Some((1499.0, 1)));
        let short = HoldoutTrace::newest([(0.9f32, 1u32), (0.2, 0)].into_iter());
        assert_eq!(
            short.rows().collect::<Vec<_>>(),
            vec![(0.9f32 as f64, 1), (0.2f32 as f64, 0)]
        );
    }
}
