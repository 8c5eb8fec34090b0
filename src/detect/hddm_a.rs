//! HDDM_A, Hoeffding-bound drift detection with the moving-average test.

use serde::{Deserialize, Serialize};

use super::{ensure_open_unit, exact_f64, DetectorError, DriftDetector, Mean};

const NAME: &str = "hddm_a";

/// HDDM_A (Frías-Blanco et al., 2014) as River 0.26.1 implements it (after MOA), for a 0/1
/// error stream. It keeps the global mean `z` and a snapshot `x_min` of it taken at the point
/// where `mean + ε(n)` (Hoeffding, `ε(n) = sqrt(ln(1/drift_confidence) / 2n)`) was lowest;
/// drift is signalled when `z - x_min >= sqrt(m / 2 · ln(2 / drift_confidence))` with
/// `m = (n_z - n_x) / n_x / n_z`, a warning likewise with `warning_confidence`. With
/// `two_sided_test` a snapshot `x_max` watches for decreases too.
///
/// [`estimate`](DriftDetector::estimate) is the global mean (error rate).
///
/// # River quirks reproduced
///
/// * Both snapshots are refreshed with the `ε` computed from `drift_confidence`, also for the
///   warning test.
/// * No warm-up count: a test can fire as soon as the snapshot lags the current position
///   (`n_z > n_x`), i.e. from the second value on.
/// * With `two_sided_test`, a decrease can raise drift or warning on top of the one-sided
///   outcome but never clears a flag the increase test raised.
/// * After a drift the whole state restarts on the next update.
///
/// # Example
///
/// ```
/// use driftd::detect::{DriftDetector, HddmA};
///
/// // A tiny LCG (Knuth's MMIX constants) makes the input reproducible.
/// let mut state: u64 = 42;
/// let mut uniform = move || {
///     state = state
///         .wrapping_mul(6364136223846793005)
///         .wrapping_add(1442695040888963407);
///     (state >> 11) as f64 / (1u64 << 53) as f64
/// };
/// let mut hddm = HddmA::default();
/// let mut drifts = Vec::new();
/// for i in 0..2000 {
///     // 10 % errors, then 40 % from index 1000.
///     let p_error = if i < 1000 { 0.1 } else { 0.4 };
///     hddm.update(if uniform() < p_error { 1.0 } else { 0.0 });
///     if hddm.drift_detected() {
///         drifts.push(i);
///     }
/// }
/// assert_eq!(drifts, [1026]); // same as River 0.26.1
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HddmA {
    #[serde(with = "exact_f64")]
    drift_confidence: f64,
    #[serde(with = "exact_f64")]
    warning_confidence: f64,
    two_sided_test: bool,
    x_min: Mean,
    x_max: Mean,
    z: Mean,
    drift: bool,
    warning: bool,
}

impl Default for HddmA {
    /// River's defaults: `drift_confidence = 0.001, warning_confidence = 0.005,
    /// two_sided_test = false`.
    fn default() -> Self {
        Self::new(0.001, 0.005, false).expect("defaults are valid")
    }
}

impl HddmA {
    /// Parameters in River's order; both confidences in (0, 1).
    pub fn new(
        drift_confidence: f64,
        warning_confidence: f64,
        two_sided_test: bool,
    ) -> Result<Self, DetectorError> {
        ensure_open_unit(drift_confidence, NAME, "drift_confidence")?;
        ensure_open_unit(warning_confidence, NAME, "warning_confidence")?;
        Ok(Self {
            drift_confidence,
            warning_confidence,
            two_sided_test,
            x_min: Mean::default(),
            x_max: Mean::default(),
            z: Mean::default(),
            drift: false,
            warning: false,
        })
    }

    #[inline]
    fn hoeffding_bound(&self, n: f64) -> f64 {
        (1.0 / (2.0 * n) * (1.0 / self.drift_confidence).ln()).sqrt()
    }

    #[inline]
    fn bound(z: &Mean, x: &Mean, confidence: f64) -> Option<f64> {
        if x.n == z.n {
            return None;
        }
        let m = (z.n - x.n) / x.n * (1.0 / z.n);
        Some((m / 2.0 * (2.0 / confidence).ln()).sqrt())
    }

    #[inline]
    fn mean_increased(&self, confidence: f64) -> bool {
        Self::bound(&self.z, &self.x_min, confidence)
            .is_some_and(|eps| self.z.mean - self.x_min.mean >= eps)
    }

    #[inline]
    fn mean_decreased(&self, confidence: f64) -> bool {
        Self::bound(&self.z, &self.x_max, confidence)
            .is_some_and(|eps| self.x_max.mean - self.z.mean >= eps)
    }

    fn reset(&mut self) {
        self.x_min = Mean::default();
        self.x_max = Mean::default();
        self.z = Mean::default();
        self.drift = false;
        self.warning = false;
    }
}

impl DriftDetector for HddmA {
    fn update(&mut self, x: f64) {
        if self.drift {
            self.reset();
        }
        if !x.is_finite() {
            return;
        }
        self.z.update(x);
        if self.x_min.n == 0.0 {
            self.x_min = self.z;
        }
        if self.x_max.n == 0.0 {
            self.x_max = self.z;
        }
        let eps_z = self.hoeffding_bound(self.z.n);
        let eps_x = self.hoeffding_bound(self.x_min.n);
        if self.x_min.mean + eps_x >= self.z.mean + eps_z {
            self.x_min = self.z;
        }
        let eps_x = self.hoeffding_bound(self.x_max.n);
        if self.x_max.mean - eps_x <= self.z.mean - eps_z {
            self.x_max = self.z;
        }

        if self.mean_increased(self.drift_confidence) {
            self.warning = false;
            self.drift = true;
        } else if self.mean_increased(self.warning_confidence) {
            self.warning = true;
            self.drift = false;
        } else {
            self.warning = false;
            self.drift = false;
        }
        if self.two_sided_test {
            if self.mean_decreased(self.drift_confidence) {
                self.drift = true;
            } else if self.mean_decreased(self.warning_confidence) {
                self.warning = true;
            }
        }
    }

    #[inline]
    fn drift_detected(&self) -> bool {
        self.drift
    }

    #[inline]
    fn warning_detected(&self) -> bool {
        self.warning
    }

    fn estimate(&self) -> f64 {
        self.z.mean
    }
}
