//! The Page-Hinkley test.

use serde::{Deserialize, Serialize};

use super::{ensure, ensure_finite, exact_f64, DetectorError, DriftDetector, Mean};

pub(crate) const DEFAULT_MIN_INSTANCES: u64 = 30;
pub(crate) const DEFAULT_DELTA: f64 = 0.005;
pub(crate) const DEFAULT_THRESHOLD: f64 = 50.0;
/// River writes the default as `1 - 0.0001` (the same double as `0.9999`).
pub(crate) const DEFAULT_ALPHA: f64 = 1.0 - 0.0001;

const NAME: &str = "page_hinkley";

/// Which change [`PageHinkley`] looks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageHinkleyMode {
    /// Increases of the mean only.
    Up,
    /// Decreases of the mean only.
    Down,
    /// Both (River's default).
    #[default]
    Both,
}

/// The Page-Hinkley test (Page, 1954) as River 0.26.1 implements it, for real values. With
/// `x̄` the running mean and `dev = x - x̄`, it accumulates
/// `S⁺ ← alpha · S⁺ + dev - delta` and `S⁻ ← alpha · S⁻ + dev + delta`, tracks `min S⁺` and
/// `max S⁻`, and once `min_instances` values were seen signals drift when
/// `S⁺ - min S⁺ > threshold` (mode up) or `max S⁻ - S⁻ > threshold` (mode down). No warning.
///
/// [`estimate`](DriftDetector::estimate) is the running mean `x̄`.
///
/// # River quirks reproduced
///
/// * `dev` uses the mean *including* the current value.
/// * `min S⁺` starts at +inf but `max S⁻` starts at **-1**, not -inf: until `S⁻` climbs above
///   -1 the decrease statistic is measured from -1, which makes early spurious "decrease"
///   drifts possible on streams whose first values lie below their running mean.
/// * The extremes are tracked from the first value, the test only from `min_instances` on.
/// * After a drift the whole state restarts on the next update.
///
/// # Example
///
/// ```
/// use driftd::detect::{DriftDetector, PageHinkley};
///
/// // A tiny LCG (Knuth's MMIX constants) makes the input reproducible.
/// let mut state: u64 = 42;
/// let mut uniform = move || {
///     state = state
///         .wrapping_mul(6364136223846793005)
///         .wrapping_add(1442695040888963407);
///     (state >> 11) as f64 / (1u64 << 53) as f64
/// };
/// let mut ph = PageHinkley::default();
/// let mut drifts = Vec::new();
/// for i in 0..2000 {
///     // Uniform on [0, 1), then on [1, 2) from index 1000.
///     let x = uniform() + if i < 1000 { 0.0 } else { 1.0 };
///     ph.update(x);
///     if ph.drift_detected() {
///         drifts.push(i);
///     }
/// }
/// assert_eq!(drifts, [1051]); // same as River 0.26.1
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PageHinkley {
    min_instances: u64,
    #[serde(with = "exact_f64")]
    delta: f64,
    #[serde(with = "exact_f64")]
    threshold: f64,
    #[serde(with = "exact_f64")]
    alpha: f64,
    mode: PageHinkleyMode,
    x_mean: Mean,
    #[serde(with = "exact_f64")]
    sum_increase: f64,
    #[serde(with = "exact_f64")]
    sum_decrease: f64,
    #[serde(with = "exact_f64")]
    min_increase: f64,
    #[serde(with = "exact_f64")]
    max_decrease: f64,
    drift: bool,
}

impl Default for PageHinkley {
    /// River's defaults: `min_instances = 30, delta = 0.005, threshold = 50, alpha = 1 - 1e-4,
    /// mode = both`.
    fn default() -> Self {
        Self::new(
            DEFAULT_MIN_INSTANCES,
            DEFAULT_DELTA,
            DEFAULT_THRESHOLD,
            DEFAULT_ALPHA,
            PageHinkleyMode::Both,
        )
        .expect("defaults are valid")
    }
}

impl PageHinkley {
    /// Parameters in River's order. `delta >= 0` and `threshold > 0` finite, `alpha` in
    /// (0, 1].
    pub fn new(
        min_instances: u64,
        delta: f64,
        threshold: f64,
        alpha: f64,
        mode: PageHinkleyMode,
    ) -> Result<Self, DetectorError> {
        ensure_finite(delta, NAME, "delta")?;
        ensure(delta >= 0.0, NAME, "delta", || {
            format!("must not be negative, got {delta}")
        })?;
        ensure_finite(threshold, NAME, "threshold")?;
        ensure(threshold > 0.0, NAME, "threshold", || {
            format!("must be positive, got {threshold}")
        })?;
        ensure(alpha > 0.0 && alpha <= 1.0, NAME, "alpha", || {
            format!("must be in (0, 1], got {alpha}")
        })?;
        Ok(Self {
            min_instances,
            delta,
            threshold,
            alpha,
            mode,
            x_mean: Mean::default(),
            sum_increase: 0.0,
            sum_decrease: 0.0,
            min_increase: f64::INFINITY,
            max_decrease: -1.0,
            drift: false,
        })
    }

    fn reset(&mut self) {
        self.x_mean = Mean::default();
        self.sum_increase = 0.0;
        self.sum_decrease = 0.0;
        self.min_increase = f64::INFINITY;
        self.max_decrease = -1.0;
        self.drift = false;
    }
}

impl DriftDetector for PageHinkley {
    fn update(&mut self, x: f64) {
        if self.drift {
            self.reset();
        }
        if !x.is_finite() {
            return;
        }
        self.x_mean.update(x);
        let dev = x - self.x_mean.mean;
        self.sum_increase = self.alpha * self.sum_increase + dev - self.delta;
        self.sum_decrease = self.alpha * self.sum_decrease + dev + self.delta;
        if self.sum_increase < self.min_increase {
            self.min_increase = self.sum_increase;
        }
        if self.sum_decrease > self.max_decrease {
            self.max_decrease = self.sum_decrease;
        }
        if self.x_mean.n >= self.min_instances as f64 {
            let up = self.sum_increase - self.min_increase > self.threshold;
            let down = self.max_decrease - self.sum_decrease > self.threshold;
            self.drift = match self.mode {
                PageHinkleyMode::Up => up,
                PageHinkleyMode::Down => down,
                PageHinkleyMode::Both => up || down,
            };
        }
    }

    #[inline]
    fn drift_detected(&self) -> bool {
        self.drift
    }

    fn estimate(&self) -> f64 {
        self.x_mean.mean
    }
}
