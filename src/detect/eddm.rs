//! EDDM, the early drift detection method of Baena-García et al. (2006).

use serde::{Deserialize, Serialize};

use super::{ensure, exact_f64, libm_pow, DetectorError, DriftDetector, Var};

pub(crate) const DEFAULT_WARM_START: u64 = 30;
pub(crate) const DEFAULT_ALPHA: f64 = 0.95;
pub(crate) const DEFAULT_BETA: f64 = 0.9;

const NAME: &str = "eddm";

/// Relative distance under which `sqrt`-based decisions defer to libm's `pow` (which is
/// within about one ulp, 2^-52, of `sqrt`).
const TOLERANCE: f64 = 1.0 / (1u64 << 40) as f64;

/// EDDM (Baena-García et al., 2006) as River 0.26.1 implements it, for a 0/1 error stream.
/// It follows the distance (in updates) between consecutive errors: with `p'` and `s'` the
/// running mean and standard deviation of that distance, it keeps the maximum of
/// `p' + 2 s'`; on an error, once past the warm-up, `level = (p' + 2 s') / max` below `beta`
/// signals drift and below `alpha` a warning.
///
/// [`estimate`](DriftDetector::estimate) is the mean distance between errors `p'` (`0.0`
/// before the first error).
///
/// # River quirks reproduced
///
/// * Only errors (`x == 1.0`) do anything besides counting; every other value counts as a
///   correct prediction.
/// * The first distance is measured from the start of the stream (River's last-error index
///   starts at 0), so it counts the leading correct predictions plus one.
/// * The maximum is tracked once more than `warm_start` *values* have been seen, but the
///   level is only tested once more than `warm_start` *errors* have been seen, and only on
///   an error that does not raise the maximum.
/// * The warning flag is sticky: it is only re-evaluated on an error that is tested, so it
///   stays raised through correct predictions, through an error that raises the maximum, and
///   on the step that signals drift.
/// * `s'` is River's `var ** 0.5`, i.e. the C library's `pow`, which can differ from `sqrt`
///   in the last bit: the stored maximum is always computed with `pow`, and `sqrt` only
///   settles comparisons that one ulp cannot change.
/// * After a drift the whole state restarts on the next update.
///
/// # Example
///
/// ```
/// use driftd::detect::{DriftDetector, Eddm};
///
/// // A tiny LCG (Knuth's MMIX constants) makes the input reproducible.
/// let mut state: u64 = 42;
/// let mut uniform = move || {
///     state = state
///         .wrapping_mul(6364136223846793005)
///         .wrapping_add(1442695040888963407);
///     (state >> 11) as f64 / (1u64 << 53) as f64
/// };
/// let mut eddm = Eddm::default();
/// let mut drifts = Vec::new();
/// for i in 0..2000 {
///     // 10 % errors, then 40 % from index 1000.
///     let p_error = if i < 1000 { 0.1 } else { 0.4 };
///     eddm.update(if uniform() < p_error { 1.0 } else { 0.0 });
///     if eddm.drift_detected() {
///         drifts.push(i);
///     }
/// }
/// assert_eq!(drifts, [1046, 1131, 1216, 1298, 1391, 1550, 1622, 1695, 1765, 1876, 1962]); // same as River 0.26.1
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Eddm {
    warm_start: u64,
    #[serde(with = "exact_f64")]
    alpha: f64,
    #[serde(with = "exact_f64")]
    beta: f64,
    distances: Var,
    n: u64,
    last_error: u64,
    n_errors: u64,
    #[serde(with = "exact_f64")]
    p2s_max: f64,
    drift: bool,
    warning: bool,
}

impl Default for Eddm {
    /// River's defaults: `warm_start = 30, alpha = 0.95, beta = 0.9`.
    fn default() -> Self {
        Self::new(DEFAULT_WARM_START, DEFAULT_ALPHA, DEFAULT_BETA).expect("defaults are valid")
    }
}

impl Eddm {
    /// Parameters in River's order; `0 < beta <= alpha <= 1`.
    pub fn new(warm_start: u64, alpha: f64, beta: f64) -> Result<Self, DetectorError> {
        ensure(alpha > 0.0 && alpha <= 1.0, NAME, "alpha", || {
            format!("must be in (0, 1], got {alpha}")
        })?;
        ensure(beta > 0.0 && beta <= 1.0, NAME, "beta", || {
            format!("must be in (0, 1], got {beta}")
        })?;
        ensure(alpha >= beta, NAME, "alpha", || {
            format!("must be greater than or equal to beta ({beta}), got {alpha}")
        })?;
        Ok(Self {
            warm_start,
            alpha,
            beta,
            distances: Var::default(),
            n: 0,
            last_error: 0,
            n_errors: 0,
            p2s_max: -1.0,
            drift: false,
            warning: false,
        })
    }

    fn reset(&mut self) {
        self.distances = Var::default();
        self.n = 0;
        self.last_error = 0;
        self.n_errors = 0;
        self.p2s_max = -1.0;
        self.drift = false;
        self.warning = false;
    }

    /// River's update on an error (`x == 1.0`), after `n` has counted it: most updates are
    /// correct predictions, which only count, so this stays out of line and the common
    /// path is a handful of instructions inlined into the caller.
    #[inline(never)]
    fn on_error(&mut self) {
        self.n_errors += 1;
        self.distances.update((self.n - self.last_error) as f64);
        if self.n > self.warm_start {
            let p = self.distances.mean.mean;
            let var = self.distances.get();
            // River's `var ** 0.5` is libm's `pow`, which may differ from the correctly
            // rounded `sqrt` by one ulp, i.e. `p + 2 s` by far less than 2^-40 relative.
            // Decide with `sqrt` when that cannot matter; call `pow` (and store its exact
            // result) otherwise.
            let fast = p + 2.0 * var.sqrt();
            let tol = fast * TOLERANCE;
            let p2s = if fast - tol > self.p2s_max || fast + tol <= self.p2s_max {
                fast
            } else {
                p + 2.0 * libm_pow(var, 0.5)
            };
            if p2s > self.p2s_max {
                // New maximum: kept in the state, so it must be River's exact value.
                self.p2s_max = p + 2.0 * libm_pow(var, 0.5);
            } else if self.n_errors > self.warm_start {
                let mut level = p2s / self.p2s_max;
                let margin = level * TOLERANCE;
                if (level - self.beta).abs() <= margin || (level - self.alpha).abs() <= margin {
                    level = (p + 2.0 * libm_pow(var, 0.5)) / self.p2s_max;
                }
                if level < self.beta {
                    self.drift = true;
                } else {
                    self.warning = level < self.alpha;
                }
            }
        }
        self.last_error = self.n;
    }
}

impl DriftDetector for Eddm {
    #[inline(always)]
    fn update(&mut self, x: f64) {
        if self.drift {
            self.reset();
        }
        if !x.is_finite() {
            return;
        }
        self.n += 1;
        if x == 1.0 {
            self.on_error();
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
        self.distances.mean.mean
    }
}
