//! DDM, the drift detection method of Gama et al. (2004).

use serde::{Deserialize, Serialize};

use super::{ensure, ensure_finite, exact_f64, DetectorError, DriftDetector, Mean};

pub(crate) const DEFAULT_WARM_START: u64 = 30;
pub(crate) const DEFAULT_WARNING_THRESHOLD: f64 = 2.0;
pub(crate) const DEFAULT_DRIFT_THRESHOLD: f64 = 3.0;

const NAME: &str = "ddm";

/// DDM (Gama, Medas, Castillo & Rodrigues, 2004) as River 0.26.1 implements it, for a 0/1
/// error stream. With `p` the running error rate over the `n` values seen and
/// `s = sqrt(p (1 - p) / n)`, once `n > warm_start` it records `(p_min, s_min)` whenever
/// `p + s <= p_min + s_min`, warns when `p + s > p_min + warning_threshold · s_min` and
/// signals drift when `p + s > p_min + drift_threshold · s_min` (a drift clears the warning).
///
/// [`estimate`](DriftDetector::estimate) is the running error rate `p`.
///
/// # River quirks reproduced
///
/// * If every value in the warm-up (and the first after it) is correct, the recorded minimum
///   is `p_min = s_min = 0`, so the very first error after it is a drift, whatever the
///   thresholds.
/// * The minimum is updated *before* the tests, with `<=`: a step that lowers (or equals) the
///   minimum never warns.
/// * After a drift the whole state (error rate, minimum, warm-up) restarts on the next update.
///
/// # Example
///
/// ```
/// use driftd::detect::{Ddm, DriftDetector};
///
/// // A tiny LCG (Knuth's MMIX constants) makes the input reproducible.
/// let mut state: u64 = 42;
/// let mut uniform = move || {
///     state = state
///         .wrapping_mul(6364136223846793005)
///         .wrapping_add(1442695040888963407);
///     (state >> 11) as f64 / (1u64 << 53) as f64
/// };
/// let mut ddm = Ddm::default();
/// let mut drifts = Vec::new();
/// for i in 0..2000 {
///     // 10 % errors, then 40 % from index 1000.
///     let p_error = if i < 1000 { 0.1 } else { 0.4 };
///     ddm.update(if uniform() < p_error { 1.0 } else { 0.0 });
///     if ddm.drift_detected() {
///         drifts.push(i);
///     }
/// }
/// assert_eq!(drifts, [1056]); // same as River 0.26.1
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ddm {
    warm_start: u64,
    #[serde(with = "exact_f64")]
    warning_threshold: f64,
    #[serde(with = "exact_f64")]
    drift_threshold: f64,
    p: Mean,
    /// `None` until the warm-up is over.
    min: Option<MinPoint>,
    drift: bool,
    warning: bool,
}

/// `p` and `s` where `p + s` was lowest, and that sum.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct MinPoint {
    #[serde(with = "exact_f64")]
    p: f64,
    #[serde(with = "exact_f64")]
    s: f64,
    #[serde(with = "exact_f64")]
    ps: f64,
}

impl Default for Ddm {
    /// River's defaults: `warm_start = 30, warning_threshold = 2.0, drift_threshold = 3.0`.
    fn default() -> Self {
        Self::new(
            DEFAULT_WARM_START,
            DEFAULT_WARNING_THRESHOLD,
            DEFAULT_DRIFT_THRESHOLD,
        )
        .expect("defaults are valid")
    }
}

impl Ddm {
    /// Parameters in River's order. Thresholds finite, `0 <= warning_threshold <=
    /// drift_threshold`.
    pub fn new(
        warm_start: u64,
        warning_threshold: f64,
        drift_threshold: f64,
    ) -> Result<Self, DetectorError> {
        ensure_finite(warning_threshold, NAME, "warning_threshold")?;
        ensure_finite(drift_threshold, NAME, "drift_threshold")?;
        ensure(warning_threshold >= 0.0, NAME, "warning_threshold", || {
            format!("must not be negative, got {warning_threshold}")
        })?;
        ensure(
            warning_threshold <= drift_threshold,
            NAME,
            "warning_threshold",
            || {
                format!(
                    "must not exceed drift_threshold ({drift_threshold}), got {warning_threshold}"
                )
            },
        )?;
        Ok(Self {
            warm_start,
            warning_threshold,
            drift_threshold,
            p: Mean::default(),
            min: None,
            drift: false,
            warning: false,
        })
    }

    fn reset(&mut self) {
        self.p = Mean::default();
        self.min = None;
        self.drift = false;
        self.warning = false;
    }
}

impl DriftDetector for Ddm {
    fn update(&mut self, x: f64) {
        if self.drift {
            self.reset();
        }
        if !x.is_finite() {
            return;
        }
        self.p.update(x);
        let p = self.p.mean;
        let n = self.p.n;
        let s = (p * (1.0 - p) / n).sqrt();
        if n > self.warm_start as f64 {
            let ps = p + s;
            let min = match self.min {
                // River's initial minimum is +inf.
                Some(m) if ps > m.ps => m,
                _ => {
                    let m = MinPoint { p, s, ps: p + s };
                    self.min = Some(m);
                    m
                }
            };
            let (p_min, s_min) = (min.p, min.s);
            self.warning = ps > p_min + self.warning_threshold * s_min;
            if ps > p_min + self.drift_threshold * s_min {
                self.drift = true;
                self.warning = false;
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
        self.p.mean
    }
}
