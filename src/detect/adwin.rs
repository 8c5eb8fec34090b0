//! ADWIN (adaptive windowing), River's bucket-based version.

use serde::{Deserialize, Serialize};

use super::{ensure, ensure_open_unit, DetectorError, DriftDetector};

pub(crate) const DEFAULT_DELTA: f64 = 0.002;
pub(crate) const DEFAULT_CLOCK: u32 = 32;
pub(crate) const DEFAULT_MAX_BUCKETS: u32 = 5;
pub(crate) const DEFAULT_MIN_WINDOW_LENGTH: u32 = 5;
pub(crate) const DEFAULT_GRACE_PERIOD: u32 = 10;

const NAME: &str = "adwin";

/// ADWIN (Bifet & Gavaldà, 2007) as River 0.26.1 implements it: an exponential histogram of
/// the window (row `i` holds up to `max_buckets` summaries of `2^i` values each; a row that
/// reaches `max_buckets + 1` merges its two oldest summaries into the next row), and every
/// `clock` updates a scan of all cut points `W = W0 · W1` that reports drift when
/// `|mean(W0) - mean(W1)|` exceeds the bound
/// `sqrt(2 m σ²_W δ') + 2/3 δ' m`, with `m = 1/(n0 - min_window_length + 1) + 1/(n1 - min_window_length + 1)`
/// and `δ' = ln(2 ln|W| / delta)`. The arithmetic follows River's operation order so that cut
/// decisions, and therefore indices, are identical.
///
/// [`estimate`](DriftDetector::estimate) is the window mean (`0.0` while the window is empty).
/// Accepts real-valued input.
///
/// # River quirks reproduced
///
/// * Cut points are only examined on updates whose count since the last reset is a multiple
///   of `clock` (32), and only once the window is longer than `grace_period`; so after a
///   reset at update `r` drift can only be reported at indices `r + 32k - 1`.
/// * The scan never evaluates the cut that would leave `W1` empty, and compares subwindows
///   only when both hold at least `min_window_length` values.
/// * A detected cut drops the oldest bucket and rescans, possibly dropping several buckets in
///   one update. But River's detector wrapper then discards the whole window on the next
///   update anyway (every River detector resets completely after a drift), so the shrunk
///   window is never used; the tick counter restarts as well.
///
/// # Example
///
/// ```
/// use driftd::detect::{Adwin, DriftDetector};
///
/// // A tiny LCG (Knuth's MMIX constants) makes the input reproducible.
/// let mut state: u64 = 42;
/// let mut uniform = move || {
///     state = state
///         .wrapping_mul(6364136223846793005)
///         .wrapping_add(1442695040888963407);
///     (state >> 11) as f64 / (1u64 << 53) as f64
/// };
/// let mut adwin = Adwin::default();
/// let mut drifts = Vec::new();
/// for i in 0..2000 {
///     // Uniform on [0, 1), then on [0.3, 1.3) from index 1000.
///     let x = uniform() + if i < 1000 { 0.0 } else { 0.3 };
///     adwin.update(x);
///     if adwin.drift_detected() {
///         drifts.push(i);
///     }
/// }
/// assert_eq!(drifts, [ADWIN_DOC_INDICES]); // same as River 0.26.1
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Adwin {
    delta: f64,
    clock: u32,
    max_buckets: u32,
    min_window_length: u32,
    grace_period: u32,
    window: Window,
    drift: bool,
}

/// The exponential histogram and its running statistics.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Window {
    /// `rows[i]`: summaries of `2^i` values each, oldest first, as `(total, variance)`
    /// (variance = sum of squared deviations from the summary's mean).
    rows: Vec<Vec<(f64, f64)>>,
    /// Sum of the values in the window.
    total: f64,
    /// Sum of squared deviations from the window mean.
    variance: f64,
    /// Number of values in the window (a float, as River keeps it).
    width: f64,
    /// Updates since the last reset.
    tick: u64,
}

impl Default for Adwin {
    /// River's defaults: `delta = 0.002, clock = 32, max_buckets = 5, min_window_length = 5,
    /// grace_period = 10`.
    fn default() -> Self {
        Self::new(
            DEFAULT_DELTA,
            DEFAULT_CLOCK,
            DEFAULT_MAX_BUCKETS,
            DEFAULT_MIN_WINDOW_LENGTH,
            DEFAULT_GRACE_PERIOD,
        )
        .expect("defaults are valid")
    }
}

impl Adwin {
    /// Parameters in River's order. `delta` in (0, 1); `clock`, `max_buckets`,
    /// `min_window_length` at least 1.
    pub fn new(
        delta: f64,
        clock: u32,
        max_buckets: u32,
        min_window_length: u32,
        grace_period: u32,
    ) -> Result<Self, DetectorError> {
        ensure_open_unit(delta, NAME, "delta")?;
        ensure(clock >= 1, NAME, "clock", || "must be at least 1".into())?;
        ensure(max_buckets >= 1, NAME, "max_buckets", || {
            "must be at least 1".into()
        })?;
        ensure(min_window_length >= 1, NAME, "min_window_length", || {
            "must be at least 1".into()
        })?;
        Ok(Self {
            delta,
            clock,
            max_buckets,
            min_window_length,
            grace_period,
            window: Window::default(),
            drift: false,
        })
    }

    /// Number of values in the current window.
    pub fn width(&self) -> u64 {
        self.window.width as u64
    }

    /// Sum of the values in the current window.
    pub fn total(&self) -> f64 {
        self.window.total
    }

    /// Sample variance of the values in the current window (`0.0` below two values).
    pub fn variance(&self) -> f64 {
        if self.window.width > 1.0 {
            self.window.variance / (self.window.width - 1.0)
        } else {
            0.0
        }
    }

    fn insert(&mut self, x: f64) {
        let w = &mut self.window;
        if w.rows.is_empty() {
            w.rows.push(Vec::with_capacity(self.max_buckets as usize + 1));
        }
        w.rows[0].push((x, 0.0));
        w.width += 1.0;
        let mut incremental = 0.0;
        if w.width > 1.0 {
            let d = x - w.total / (w.width - 1.0);
            incremental = (w.width - 1.0) * d * d / w.width;
        }
        w.variance += incremental;
        w.total += x;
        self.compress();
    }

    /// Merges the two oldest summaries of every overflowing row into the next row.
    fn compress(&mut self) {
        let cap = self.max_buckets as usize + 1;
        let rows = &mut self.window.rows;
        let mut i = 0;
        while rows[i].len() == cap {
            let n = (1u64 << i) as f64;
            let (t0, v0) = rows[i][0];
            let (t1, v1) = rows[i][1];
            let mu0 = t0 / n;
            let mu1 = t1 / n;
            let merged = (t0 + t1, v0 + v1 + n * 0.5 * (mu0 - mu1) * (mu0 - mu1));
            if i + 1 == rows.len() {
                rows.push(Vec::with_capacity(cap));
            }
            rows[i + 1].push(merged);
            rows[i].drain(..2);
            if rows[i + 1].len() < cap {
                break;
            }
            i += 1;
        }
    }

    /// Drops the oldest summary (the first of the last row).
    fn drop_oldest(&mut self) {
        let w = &mut self.window;
        let last = w.rows.len() - 1;
        let n = (1u64 << last) as f64;
        let (u, v) = w.rows[last][0];
        let mu = u / n;
        w.width -= n;
        w.total -= u;
        let mu_window = w.total / w.width;
        w.variance -= v + n * w.width * (mu - mu_window) * (mu - mu_window) / (n + w.width);
        w.rows[last].remove(0);
        if w.rows[last].is_empty() {
            w.rows.pop();
        }
    }

    /// One scan over all cut points, oldest first. Returns true (after dropping the oldest
    /// summary) at the first cut whose means differ significantly.
    fn scan_and_cut(&mut self) -> bool {
        let w = &self.window;
        let mwl = self.min_window_length as f64;
        // Constant during one scan; hoisted out of the loop (same values as River's).
        let delta_prime = (2.0 * w.width.ln() / self.delta).ln();
        let var_w = w.variance / w.width;
        let mut n0 = 0.0f64;
        let mut n1 = w.width;
        let mut u0 = 0.0f64;
        let mut u1 = w.total;
        for (i, row) in w.rows.iter().enumerate().rev() {
            let size = (1u64 << i) as f64;
            for (k, &(t, _)) in row.iter().enumerate() {
                n0 += size;
                n1 -= size;
                u0 += t;
                u1 -= t;
                if i == 0 && k == row.len() - 1 {
                    return false;
                }
                if n1 < mwl || n0 < mwl {
                    continue;
                }
                let delta_mean = (u0 / n0) - (u1 / n1);
                let m_recip = 1.0 / (n0 - mwl + 1.0) + 1.0 / (n1 - mwl + 1.0);
                let linear = 2.0 / 3.0 * delta_prime * m_recip;
                // epsilon = sqrt(...) + linear >= linear: skip the square root when even the
                // linear term alone rules the cut out (same decision as the full bound).
                if delta_mean.abs() <= linear {
                    continue;
                }
                let epsilon = (2.0 * m_recip * var_w * delta_prime).sqrt() + linear;
                if delta_mean.abs() > epsilon {
                    self.drop_oldest();
                    return true;
                }
            }
        }
        false
    }

    fn reset(&mut self) {
        self.window.rows.clear();
        self.window.total = 0.0;
        self.window.variance = 0.0;
        self.window.width = 0.0;
        self.window.tick = 0;
        self.drift = false;
    }
}

impl DriftDetector for Adwin {
    fn update(&mut self, x: f64) {
        if self.drift {
            self.reset();
        }
        if !x.is_finite() {
            return;
        }
        self.insert(x);
        self.window.tick += 1;
        let mut detected = false;
        if self.window.tick % self.clock as u64 == 0
            && self.window.width > self.grace_period as f64
        {
            while self.scan_and_cut() {
                detected = true;
            }
        }
        self.drift = detected;
    }

    #[inline]
    fn drift_detected(&self) -> bool {
        self.drift
    }

    fn estimate(&self) -> f64 {
        if self.window.width == 0.0 {
            0.0
        } else {
            self.window.total / self.window.width
        }
    }
}
