//! A baseline that ignores the data: drift every `period` updates, or never.

use serde::{Deserialize, Serialize};

use super::{exact_f64, DetectorError, DriftDetector};

/// The periodic baseline: reports drift on every `period`-th update (0-based indices
/// `period - 1`, `2 · period - 1`, ...), whatever the values; `period = 0` never fires
/// (River's `NoDrift`). Useful to compare "retrain on a schedule" with real detectors. No
/// warning.
///
/// Unlike the other detectors it counts every call, non-finite values included.
///
/// [`estimate`](DriftDetector::estimate) is the mean of the finite values seen since the last
/// drift (`0.0` before any).
///
/// Same reset semantics as River's detectors: the flag stays readable after the update that
/// raised it and the count restarts on the next update.
///
/// # Example
///
/// ```
/// use driftd::detect::{DriftDetector, Periodic};
///
/// let mut every_500 = Periodic::new(500).unwrap();
/// let mut never = Periodic::default();
/// let mut drifts = Vec::new();
/// for i in 0..2000 {
///     every_500.update(i as f64);
///     never.update(i as f64);
///     assert!(!never.drift_detected());
///     if every_500.drift_detected() {
///         drifts.push(i);
///     }
/// }
/// assert_eq!(drifts, [499, 999, 1499, 1999]);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Periodic {
    period: u64,
    /// Updates since the last reset.
    count: u64,
    /// Finite values since the last reset, and their sum.
    n_finite: u64,
    #[serde(with = "exact_f64")]
    sum: f64,
    drift: bool,
}

impl Periodic {
    /// `period = 0`: never fires. Every `u64` is valid; the `Result` keeps the constructors
    /// uniform.
    pub fn new(period: u64) -> Result<Self, DetectorError> {
        Ok(Self {
            period,
            ..Self::default()
        })
    }

    /// The configured period (0: never).
    pub fn period(&self) -> u64 {
        self.period
    }
}

impl DriftDetector for Periodic {
    fn update(&mut self, x: f64) {
        if self.drift {
            self.count = 0;
            self.n_finite = 0;
            self.sum = 0.0;
            self.drift = false;
        }
        self.count += 1;
        if x.is_finite() {
            self.n_finite += 1;
            self.sum += x;
        }
        self.drift = self.period > 0 && self.count == self.period;
    }

    #[inline]
    fn drift_detected(&self) -> bool {
        self.drift
    }

    fn estimate(&self) -> f64 {
        if self.n_finite == 0 {
            0.0
        } else {
            self.sum / self.n_finite as f64
        }
    }
}
