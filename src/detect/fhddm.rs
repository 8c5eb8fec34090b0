//! FHDDM, the fast Hoeffding drift detection method.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::{ensure, ensure_open_unit, exact_f64, exact_f64_seq, DetectorError, DriftDetector};

pub(crate) const DEFAULT_SLIDING_WINDOW_SIZE: u32 = 100;
pub(crate) const DEFAULT_CONFIDENCE_LEVEL: f64 = 0.000001;

const NAME: &str = "fhddm";

/// FHDDM (Pesaranghader & Viktor, 2016) as River 0.26.1 implements it, for a 0/1 error
/// stream (the stacked variant, FHDDMS, when `short_window_size` is set). Over a sliding
/// window of the last `sliding_window_size` values it tracks `u`, the fraction of ones, and
/// its maximum `u_max`; drift is signalled when `u_max - u > sqrt(ln(1 / confidence_level) / 2w)`.
/// With a short window the same test runs on the window's last `short_window_size` values,
/// and either test signals drift.
///
/// Note the direction: River feeds FHDDM the *error* stream like the other binary
/// detectors, but the test (inherited from FHDDM's formulation on *correct* predictions)
/// fires when the fraction of ones **drops** well below its maximum, i.e. when the error
/// rate falls. No warning zone.
///
/// [`estimate`](DriftDetector::estimate) is the fraction of ones in the sliding window
/// (`0.0` while it is empty).
///
/// # River quirks reproduced
///
/// * Nothing is tested until the window is full; the oldest value leaves the window only
///   after the test, so a test always sees exactly `sliding_window_size` values.
/// * The long-window count of ones is maintained incrementally; the short window's sum is
///   recomputed from its values at each test.
/// * After a drift the window, the count and the maxima are all dropped on the next update.
///
/// # Example
///
/// ```
/// use driftd::detect::{DriftDetector, Fhddm};
///
/// // A tiny LCG (Knuth's MMIX constants) makes the input reproducible.
/// let mut state: u64 = 42;
/// let mut uniform = move || {
///     state = state
///         .wrapping_mul(6364136223846793005)
///         .wrapping_add(1442695040888963407);
///     (state >> 11) as f64 / (1u64 << 53) as f64
/// };
/// let mut fhddm = Fhddm::default();
/// let mut drifts = Vec::new();
/// for i in 0..2000 {
///     // 60 % ones, then 20 % from index 1000 (the fraction of ones drops).
///     let p_one = if i < 1000 { 0.6 } else { 0.2 };
///     fhddm.update(if uniform() < p_one { 1.0 } else { 0.0 });
///     if fhddm.drift_detected() {
///         drifts.push(i);
///     }
/// }
/// assert_eq!(drifts, [1026]); // same as River 0.26.1
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fhddm {
    sliding_window_size: u32,
    #[serde(with = "exact_f64")]
    confidence_level: f64,
    short_window_size: Option<u32>,
    /// Bounds derived from the parameters once (long window, short window).
    #[serde(with = "exact_f64")]
    epsilon: f64,
    #[serde(with = "exact_f64")]
    epsilon_short: f64,
    #[serde(with = "exact_f64_seq")]
    window: VecDeque<f64>,
    #[serde(with = "exact_f64")]
    n_one: f64,
    #[serde(with = "exact_f64")]
    u_max: f64,
    #[serde(with = "exact_f64")]
    u_short_max: f64,
    drift: bool,
}

impl Default for Fhddm {
    /// River's defaults: `sliding_window_size = 100, confidence_level = 1e-6`, no short
    /// window.
    fn default() -> Self {
        Self::new(DEFAULT_SLIDING_WINDOW_SIZE, DEFAULT_CONFIDENCE_LEVEL, None)
            .expect("defaults are valid")
    }
}

impl Fhddm {
    /// Parameters in River's order. `sliding_window_size >= 1`, `confidence_level` in
    /// (0, 1), `1 <= short_window_size <= sliding_window_size` when set.
    pub fn new(
        sliding_window_size: u32,
        confidence_level: f64,
        short_window_size: Option<u32>,
    ) -> Result<Self, DetectorError> {
        ensure(
            sliding_window_size >= 1,
            NAME,
            "sliding_window_size",
            || "must be at least 1".into(),
        )?;
        ensure_open_unit(confidence_level, NAME, "confidence_level")?;
        if let Some(s) = short_window_size {
            ensure(
                s >= 1 && s <= sliding_window_size,
                NAME,
                "short_window_size",
                || format!("must be in 1..={sliding_window_size} (sliding_window_size), got {s}"),
            )?;
        }
        let bound = |w: u32| ((1.0 / confidence_level).ln() / (2.0 * w as f64)).sqrt();
        Ok(Self {
            sliding_window_size,
            confidence_level,
            short_window_size,
            epsilon: bound(sliding_window_size),
            epsilon_short: short_window_size.map_or(0.0, bound),
            window: VecDeque::with_capacity(sliding_window_size as usize),
            n_one: 0.0,
            u_max: 0.0,
            u_short_max: 0.0,
            drift: false,
        })
    }

    fn reset(&mut self) {
        self.window.clear();
        self.n_one = 0.0;
        self.u_max = 0.0;
        self.u_short_max = 0.0;
        self.drift = false;
    }
}

impl DriftDetector for Fhddm {
    fn update(&mut self, x: f64) {
        if self.drift {
            self.reset();
        }
        if !x.is_finite() {
            return;
        }
        self.window.push_back(x);
        self.n_one += x;
        let size = self.sliding_window_size as usize;
        if self.window.len() == size {
            let u = self.n_one / size as f64;
            if self.u_max < u {
                self.u_max = u;
            }
            let mut short_drift = false;
            if let Some(short) = self.short_window_size {
                let short = short as usize;
                let mut sum = 0.0;
                for &v in self.window.range(size - short..) {
                    sum += v;
                }
                let u_s = sum / short as f64;
                if self.u_short_max < u_s {
                    self.u_short_max = u_s;
                }
                short_drift = self.u_short_max - u_s > self.epsilon_short;
            }
            let long_drift = self.u_max - u > self.epsilon;
            self.drift = long_drift || short_drift;
            let oldest = self.window.pop_front().expect("window is full");
            self.n_one -= oldest;
        }
    }

    #[inline]
    fn drift_detected(&self) -> bool {
        self.drift
    }

    fn estimate(&self) -> f64 {
        if self.window.is_empty() {
            0.0
        } else {
            self.n_one / self.window.len() as f64
        }
    }
}
