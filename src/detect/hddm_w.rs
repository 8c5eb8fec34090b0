//! HDDM_W, McDiarmid-bound drift detection with the weighted (EWMA) test.

use serde::{Deserialize, Serialize};

use super::{ensure, ensure_open_unit, exact_f64, libm_pow, DetectorError, DriftDetector};

pub(crate) const DEFAULT_LAMBDA: f64 = 0.05;

const NAME: &str = "hddm_w";

/// HDDM_W (Frías-Blanco et al., 2014) as River 0.26.1 implements it (after MOA), for a 0/1
/// error stream. It compares exponentially weighted means (`λ = lambda_val`) of the stream
/// before and after a cut point; the bound is McDiarmid's,
/// `sqrt(ibc · ln(1 / confidence) / 2)`, where the "independent bounded condition" `ibc`
/// follows `ibc ← λ² + (1 - λ)² · ibc` from 1. The cut point for increases moves to the
/// current position whenever `ewma + bound` reaches a new minimum; drift is signalled when
/// the EWMA after the cut exceeds the one at the cut by more than the summed bound at
/// `drift_confidence`, a warning likewise at `warning_confidence`. With `two_sided_test`
/// a mirrored cut point watches for decreases.
///
/// [`estimate`](DriftDetector::estimate) is the EWMA of the whole stream since the last reset.
///
/// # River quirks reproduced
///
/// * Cut points are moved with the bound at `drift_confidence`, also for the warning test.
/// * The value that moves a cut point is not added to the "after the cut" statistics; the
///   decrease statistics are updated only after the increase test.
/// * The EWMA starts at the first value (not at 0), as River's `stats.EWMean` does.
/// * `(1 - λ)²` is computed with the C library's `pow`, like CPython's `** 2`.
/// * With `two_sided_test`, a decrease can raise drift or warning on top of the one-sided
///   outcome but never clears a flag.
/// * After a drift the whole state restarts on the next update.
///
/// # Example
///
/// ```
/// use driftd::detect::{DriftDetector, HddmW};
///
/// // A tiny LCG (Knuth's MMIX constants) makes the input reproducible.
/// let mut state: u64 = 42;
/// let mut uniform = move || {
///     state = state
///         .wrapping_mul(6364136223846793005)
///         .wrapping_add(1442695040888963407);
///     (state >> 11) as f64 / (1u64 << 53) as f64
/// };
/// let mut hddm = HddmW::default();
/// let mut drifts = Vec::new();
/// for i in 0..2000 {
///     // 10 % errors, then 40 % from index 1000.
///     let p_error = if i < 1000 { 0.1 } else { 0.4 };
///     hddm.update(if uniform() < p_error { 1.0 } else { 0.0 });
///     if hddm.drift_detected() {
///         drifts.push(i);
///     }
/// }
/// assert_eq!(drifts, [1028]); // same as River 0.26.1
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HddmW {
    #[serde(with = "exact_f64")]
    drift_confidence: f64,
    #[serde(with = "exact_f64")]
    warning_confidence: f64,
    #[serde(with = "exact_f64")]
    lambda_val: f64,
    two_sided_test: bool,
    /// `λ²`, `(1 - λ)²` and `1 - λ`, derived from `lambda_val` once.
    #[serde(with = "exact_f64")]
    lambda_sq: f64,
    #[serde(with = "exact_f64")]
    c_lambda_sq: f64,
    #[serde(with = "exact_f64")]
    one_minus_lambda: f64,
    total: Sample,
    s1_incr: Sample,
    s2_incr: Sample,
    s1_decr: Sample,
    s2_decr: Sample,
    #[serde(with = "exact_f64")]
    incr_cutpoint: f64,
    #[serde(with = "exact_f64")]
    decr_cutpoint: f64,
    drift: bool,
    warning: bool,
}

/// River's `SampleInfo`: an EWMA and its independent bounded condition.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct Sample {
    #[serde(with = "exact_f64")]
    ewma: f64,
    init: bool,
    #[serde(with = "exact_f64")]
    ibc: f64,
}

impl Sample {
    const NEW: Sample = Sample {
        ewma: 0.0,
        init: false,
        ibc: 1.0,
    };
}

impl Default for HddmW {
    /// River's defaults: `drift_confidence = 0.001, warning_confidence = 0.005,
    /// lambda_val = 0.05, two_sided_test = false`.
    fn default() -> Self {
        Self::new(0.001, 0.005, DEFAULT_LAMBDA, false).expect("defaults are valid")
    }
}

impl HddmW {
    /// Parameters in River's order; confidences in (0, 1), `lambda_val` in (0, 1].
    pub fn new(
        drift_confidence: f64,
        warning_confidence: f64,
        lambda_val: f64,
        two_sided_test: bool,
    ) -> Result<Self, DetectorError> {
        ensure_open_unit(drift_confidence, NAME, "drift_confidence")?;
        ensure_open_unit(warning_confidence, NAME, "warning_confidence")?;
        ensure(
            lambda_val > 0.0 && lambda_val <= 1.0,
            NAME,
            "lambda_val",
            || format!("must be in (0, 1], got {lambda_val}"),
        )?;
        Ok(Self {
            drift_confidence,
            warning_confidence,
            lambda_val,
            two_sided_test,
            lambda_sq: lambda_val * lambda_val,
            c_lambda_sq: libm_pow(1.0 - lambda_val, 2.0),
            one_minus_lambda: 1.0 - lambda_val,
            total: Sample::NEW,
            s1_incr: Sample::NEW,
            s2_incr: Sample::NEW,
            s1_decr: Sample::NEW,
            s2_decr: Sample::NEW,
            incr_cutpoint: f64::INFINITY,
            decr_cutpoint: f64::NEG_INFINITY,
            drift: false,
            warning: false,
        })
    }

    #[inline]
    fn push(&self, s: &mut Sample, x: f64) {
        if s.init {
            s.ewma = self.lambda_val * x + self.one_minus_lambda * s.ewma;
        } else {
            s.ewma = x;
            s.init = true;
        }
        s.ibc = self.lambda_sq + self.c_lambda_sq * s.ibc;
    }

    #[inline]
    fn mcdiarmid_bound(ibc: f64, confidence: f64) -> f64 {
        (ibc * (1.0 / confidence).ln() / 2.0).sqrt()
    }

    /// Whether `after` exceeds `before` by more than the bound.
    #[inline]
    fn changed(before: &Sample, after: &Sample, confidence: f64) -> bool {
        if !(before.init && after.init) {
            return false;
        }
        let bound = Self::mcdiarmid_bound(before.ibc + after.ibc, confidence);
        after.ewma - before.ewma > bound
    }

    fn reset(&mut self) {
        self.total = Sample::NEW;
        self.s1_incr = Sample::NEW;
        self.s2_incr = Sample::NEW;
        self.s1_decr = Sample::NEW;
        self.s2_decr = Sample::NEW;
        self.incr_cutpoint = f64::INFINITY;
        self.decr_cutpoint = f64::NEG_INFINITY;
        self.drift = false;
        self.warning = false;
    }
}

impl DriftDetector for HddmW {
    fn update(&mut self, x: f64) {
        if self.drift {
            self.reset();
        }
        if !x.is_finite() {
            return;
        }
        let mut total = self.total;
        self.push(&mut total, x);
        self.total = total;

        // Cut point for increases.
        let eps = Self::mcdiarmid_bound(self.total.ibc, self.drift_confidence);
        if self.total.ewma + eps < self.incr_cutpoint {
            self.incr_cutpoint = self.total.ewma + eps;
            self.s1_incr = self.total;
            self.s2_incr = Sample::NEW;
        } else {
            let mut s = self.s2_incr;
            self.push(&mut s, x);
            self.s2_incr = s;
        }

        if Self::changed(&self.s1_incr, &self.s2_incr, self.drift_confidence) {
            self.warning = false;
            self.drift = true;
        } else if Self::changed(&self.s1_incr, &self.s2_incr, self.warning_confidence) {
            self.warning = true;
            self.drift = false;
        } else {
            self.warning = false;
            self.drift = false;
        }

        // Cut point for decreases.
        let eps = Self::mcdiarmid_bound(self.total.ibc, self.drift_confidence);
        if self.total.ewma - eps > self.decr_cutpoint {
            self.decr_cutpoint = self.total.ewma - eps;
            self.s1_decr = self.total;
            self.s2_decr = Sample::NEW;
        } else {
            let mut s = self.s2_decr;
            self.push(&mut s, x);
            self.s2_decr = s;
        }

        if self.two_sided_test {
            if Self::changed(&self.s2_decr, &self.s1_decr, self.drift_confidence) {
                self.drift = true;
            } else if Self::changed(&self.s2_decr, &self.s1_decr, self.warning_confidence) {
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
        self.total.ewma
    }
}
