//! ADWIN (adaptive windowing), River's bucket-based version.

use serde::{Deserialize, Serialize};

use super::{ensure, ensure_open_unit, exact_f64, DetectorError, DriftDetector};

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
/// For speed, values are folded into the histogram and the window statistics in batches
/// (at most one clock period, or 64 values, late; always before anything reads them), and
/// a scan first tries a cheap certificate that no cut point can pass River's test before
/// running River's per-cut arithmetic. Both are exact: they change how much is computed,
/// not a single decision or bit of state (see `flush` and `cut_possible`).
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
/// * River 0.26.1 panics with `max_buckets = 1` (a merge can leave a row empty and a later
///   drop then reads it), so `max_buckets` must be at least 2 here.
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
/// assert_eq!(drifts, [1087]); // same as River 0.26.1
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "AdwinState", into = "AdwinState")]
pub struct Adwin {
    delta: f64,
    clock: u32,
    max_buckets: u32,
    min_window_length: u32,
    grace_period: u32,
    /// Slots per row: `max_buckets + 1` (a row overflows when it reaches this many).
    cap: usize,
    /// Rows in use. Row `i` holds `len[i]` summaries of `2^i` values each, oldest first, in
    /// slots `i * cap ..` of `totals` (their sums) and `variances` (their sums of squared
    /// deviations from their mean).
    rows: usize,
    len: Vec<usize>,
    totals: Vec<f64>,
    variances: Vec<f64>,
    /// Window statistics as of the last flush: sum of the values, sum of squared deviations
    /// from the window mean, number of values (a float, as River keeps it).
    total: f64,
    variance: f64,
    width: f64,
    /// Values received but not yet folded into the histogram nor into `total`, `variance`
    /// and `width`. Folding them in a batch before any of these is read gives the same bits
    /// as River's per-update arithmetic (same operations, same order) while letting the CPU
    /// overlap the divisions and merges.
    pending: Box<[f64; PENDING]>,
    n_pending: usize,
    /// River's running total including the pending values (`total` plus each pending value,
    /// in order: the same additions the flush makes), so the estimate costs O(1).
    total_now: f64,
    /// Scratch for [`Adwin::flush`]: summaries carried into the next row.
    carry: Carry,
    /// Updates since the last reset, and updates left until the next check.
    tick: u64,
    until_check: u32,
    drift: bool,
}

/// Capacity of [`Adwin::pending`].
const PENDING: usize = 64;

/// Summaries moving up one row during a flush (totals, variances), and a row's contents
/// followed by them; scratch only.
#[derive(Clone, Debug, Default)]
struct Carry {
    totals: Vec<f64>,
    variances: Vec<f64>,
    seq_totals: Vec<f64>,
    seq_variances: Vec<f64>,
}

/// The serialised form of [`Adwin`]: parameters, the histogram rows oldest first (each
/// summary as `[total, variance]`), the window statistics and the update count. Independent
/// of the in-memory layout.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct AdwinState {
    #[serde(with = "exact_f64")]
    delta: f64,
    clock: u32,
    max_buckets: u32,
    min_window_length: u32,
    grace_period: u32,
    window: WindowState,
    drift: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct WindowState {
    rows: Vec<Vec<Bucket>>,
    #[serde(with = "exact_f64")]
    total: f64,
    #[serde(with = "exact_f64")]
    variance: f64,
    #[serde(with = "exact_f64")]
    width: f64,
    tick: u64,
}

/// One summary: total and sum of squared deviations.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Bucket(
    #[serde(with = "exact_f64")] f64,
    #[serde(with = "exact_f64")] f64,
);

impl From<Adwin> for AdwinState {
    fn from(mut a: Adwin) -> Self {
        a.flush();
        let rows = (0..a.rows)
            .map(|i| {
                (0..a.len[i])
                    .map(|k| Bucket(a.totals[i * a.cap + k], a.variances[i * a.cap + k]))
                    .collect()
            })
            .collect();
        AdwinState {
            delta: a.delta,
            clock: a.clock,
            max_buckets: a.max_buckets,
            min_window_length: a.min_window_length,
            grace_period: a.grace_period,
            window: WindowState {
                rows,
                total: a.total,
                variance: a.variance,
                width: a.width,
                tick: a.tick,
            },
            drift: a.drift,
        }
    }
}

impl TryFrom<AdwinState> for Adwin {
    type Error = DetectorError;

    fn try_from(s: AdwinState) -> Result<Self, DetectorError> {
        let mut a = Adwin::new(
            s.delta,
            s.clock,
            s.max_buckets,
            s.min_window_length,
            s.grace_period,
        )?;
        for (i, row) in s.window.rows.iter().enumerate() {
            ensure(row.len() < a.cap, NAME, "window", || {
                format!(
                    "row {i} holds {} summaries, more than max_buckets",
                    row.len()
                )
            })?;
            a.activate_row();
            for b in row {
                a.push(i, b.0, b.1);
            }
        }
        a.total = s.window.total;
        a.total_now = s.window.total;
        a.variance = s.window.variance;
        a.width = s.window.width;
        a.tick = s.window.tick;
        a.until_check = a.clock - (a.tick % u64::from(a.clock)) as u32;
        a.drift = s.drift;
        Ok(a)
    }
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

/// Relative slack of the division-free pre-test in [`Adwin::surely_no_cut`]: ~2^23 times
/// the few ulps of rounding of either side's computation.
const SLACK: f64 = 1.0 / (1u64 << 30) as f64;

/// `2^-i`, exactly (`i` < 1023: rows never get near that).
#[inline(always)]
fn inv_pow2(i: usize) -> f64 {
    f64::from_bits((1023 - i as u64) << 52)
}

/// River's per-value update of the window statistics (Welford-style, River's operation
/// order), folded over `xs` (at most [`PENDING`] values).
#[inline(always)]
fn fold_stats(total: f64, variance: f64, width: f64, xs: &[f64]) -> (f64, f64, f64) {
    // Two passes: the increments first (they depend on the running total, not on the
    // variance), then their sum in order. One fused loop would let the compiler pack total
    // and variance in one register and chain every division behind the previous one.
    let mut increments = [0.0f64; PENDING];
    let (mut total, mut width) = (total, width);
    for (inc, &x) in increments.iter_mut().zip(xs) {
        width += 1.0;
        if width > 1.0 {
            let d = x - total / (width - 1.0);
            *inc = (width - 1.0) * d * d / width;
        }
        total += x;
    }
    let mut variance = variance;
    for &inc in &increments[..xs.len()] {
        variance += inc;
    }
    (total, variance, width)
}

impl Adwin {
    /// Parameters in River's order. `delta` in (0, 1); `clock` at least 1; `max_buckets` in
    /// 2..=1000000; `min_window_length` at least 1.
    pub fn new(
        delta: f64,
        clock: u32,
        max_buckets: u32,
        min_window_length: u32,
        grace_period: u32,
    ) -> Result<Self, DetectorError> {
        ensure_open_unit(delta, NAME, "delta")?;
        ensure(clock >= 1, NAME, "clock", || "must be at least 1".into())?;
        // River 0.26.1 panics with max_buckets = 1 (a merge can empty a row, and dropping the
        // oldest summary then reads an empty row).
        ensure(
            (2..=1_000_000).contains(&max_buckets),
            NAME,
            "max_buckets",
            || format!("must be in 2..=1000000, got {max_buckets}"),
        )?;
        ensure(min_window_length >= 1, NAME, "min_window_length", || {
            "must be at least 1".into()
        })?;
        Ok(Self {
            delta,
            clock,
            max_buckets,
            min_window_length,
            grace_period,
            cap: max_buckets as usize + 1,
            rows: 0,
            len: Vec::new(),
            totals: Vec::new(),
            variances: Vec::new(),
            total: 0.0,
            variance: 0.0,
            width: 0.0,
            pending: Box::new([0.0; PENDING]),
            n_pending: 0,
            total_now: 0.0,
            carry: Carry::default(),
            tick: 0,
            until_check: clock,
            drift: false,
        })
    }

    /// Window statistics `(total, variance, width)` including the pending values.
    fn stats(&self) -> (f64, f64, f64) {
        fold_stats(
            self.total,
            self.variance,
            self.width,
            &self.pending[..self.n_pending],
        )
    }

    /// Folds the pending values into the window statistics and into the histogram.
    ///
    /// River inserts each value into row 0 and, whenever a row reaches `max_buckets + 1`
    /// summaries, merges its two oldest into the next row. Rows are FIFOs and a merge always
    /// takes the two oldest, so inserting a batch and then merging pairs from the front of
    /// each row until at most `max_buckets` remain (with the parity River's one-at-a-time
    /// merging leaves) produces exactly the same summaries, computed by the same
    /// arithmetic.
    fn flush(&mut self) {
        if self.n_pending == 0 {
            return;
        }
        (self.total, self.variance, self.width) = self.stats();
        debug_assert_eq!(self.total.to_bits(), self.total_now.to_bits());
        let mut carry = std::mem::take(&mut self.carry);
        carry.totals.clear();
        carry.variances.clear();
        carry
            .totals
            .extend_from_slice(&self.pending[..self.n_pending]);
        carry.variances.resize(self.n_pending, 0.0);
        self.n_pending = 0;
        let cap = self.cap;
        let mut i = 0;
        while !carry.totals.is_empty() {
            if i == self.rows {
                self.activate_row();
            }
            let base = i * cap;
            let len = self.len[i];
            let count = len + carry.totals.len();
            if count < cap {
                self.totals[base + len..base + count].copy_from_slice(&carry.totals);
                self.variances[base + len..base + count].copy_from_slice(&carry.variances);
                self.len[i] = count;
                break;
            }
            // The row's summaries followed by the incoming ones, oldest first.
            let Carry {
                totals,
                variances,
                seq_totals,
                seq_variances,
            } = &mut carry;
            seq_totals.clear();
            seq_totals.extend_from_slice(&self.totals[base..base + len]);
            seq_totals.extend_from_slice(totals);
            seq_variances.clear();
            seq_variances.extend_from_slice(&self.variances[base..base + len]);
            seq_variances.extend_from_slice(variances);
            // Merges River performs in this row (pairs from the front), and what stays.
            let merged = 2 * ((count + 2 - cap) / 2);
            let n = (1u64 << i) as f64;
            // `t / 2^i` (River) and `t * 2^-i` round the same exact value: identical.
            let inv_n = inv_pow2(i);
            let pairs = merged / 2;
            totals.resize(pairs, 0.0);
            variances.resize(pairs, 0.0);
            let sources = seq_totals[..merged]
                .chunks_exact(2)
                .zip(seq_variances[..merged].chunks_exact(2));
            for ((out_t, out_v), (t, v)) in totals.iter_mut().zip(variances.iter_mut()).zip(sources)
            {
                let mu0 = t[0] * inv_n;
                let mu1 = t[1] * inv_n;
                *out_t = t[0] + t[1];
                *out_v = v[0] + v[1] + n * 0.5 * (mu0 - mu1) * (mu0 - mu1);
            }
            let keep = count - merged;
            self.totals[base..base + keep].copy_from_slice(&seq_totals[merged..]);
            self.variances[base..base + keep].copy_from_slice(&seq_variances[merged..]);
            self.len[i] = keep;
            i += 1;
        }
        self.carry = carry;
    }

    /// Number of values in the current window.
    pub fn width(&self) -> u64 {
        self.width as u64 + self.n_pending as u64
    }

    /// Sum of the values in the current window.
    #[allow(clippy::misnamed_getters)] // `total` lags by the pending values; `total_now` not.
    pub fn total(&self) -> f64 {
        self.total_now
    }

    /// Sample variance of the values in the current window (`0.0` below two values).
    pub fn variance(&self) -> f64 {
        let (_, variance, width) = self.stats();
        if width > 1.0 {
            variance / (width - 1.0)
        } else {
            0.0
        }
    }

    /// Appends an empty row.
    fn activate_row(&mut self) {
        let r = self.rows;
        if r == self.len.len() {
            self.len.push(0);
            self.totals.resize((r + 1) * self.cap, 0.0);
            self.variances.resize((r + 1) * self.cap, 0.0);
        }
        self.len[r] = 0;
        self.rows += 1;
    }

    /// Appends a summary (newest) to row `i`.
    #[inline(always)]
    fn push(&mut self, i: usize, total: f64, variance: f64) {
        let j = i * self.cap + self.len[i];
        self.totals[j] = total;
        self.variances[j] = variance;
        self.len[i] += 1;
    }

    /// Forgets the `k` oldest summaries of row `i`.
    #[inline(always)]
    fn pop_oldest(&mut self, i: usize, k: usize) {
        let base = i * self.cap;
        let len = self.len[i];
        for j in base..base + len - k {
            self.totals[j] = self.totals[j + k];
            self.variances[j] = self.variances[j + k];
        }
        self.len[i] = len - k;
    }

    #[inline(always)]
    fn insert(&mut self, x: f64) {
        if self.n_pending == PENDING {
            self.flush();
        }
        self.pending[self.n_pending] = x;
        self.n_pending += 1;
        self.total_now += x;
    }

    /// Drops the oldest summary (the first of the last row). Needs flushed statistics.
    fn drop_oldest(&mut self) {
        debug_assert_eq!(self.n_pending, 0);
        let last = self.rows - 1;
        let n = (1u64 << last) as f64;
        let j = last * self.cap;
        let (u, v) = (self.totals[j], self.variances[j]);
        let mu = u * inv_pow2(last);
        self.width -= n;
        self.total -= u;
        self.total_now = self.total;
        let mu_window = self.total / self.width;
        self.variance -=
            v + n * self.width * (mu - mu_window) * (mu - mu_window) / (n + self.width);
        self.pop_oldest(last, 1);
        while self.rows > 0 && self.len[self.rows - 1] == 0 {
            self.rows -= 1;
        }
    }

    /// One scan over all cut points, oldest first. Returns true (after dropping the oldest
    /// summary) at the first cut whose means differ significantly. Needs flushed statistics.
    fn scan_and_cut(&mut self) -> bool {
        debug_assert_eq!(self.n_pending, 0);
        let mwl = self.min_window_length as f64;
        // Constant during one scan; hoisted out of the loop (same values as River's).
        let delta_prime = (2.0 * self.width.ln() / self.delta).ln();
        let var_w = self.variance / self.width;
        let two_thirds_dp = 2.0 / 3.0 * delta_prime;
        let k_linear = two_thirds_dp * (1.0 - SLACK);
        let k_sqrt = 2.0 * var_w * delta_prime * (1.0 - SLACK);
        if !self.cut_possible(var_w, delta_prime) {
            return false;
        }
        let mut n0 = 0.0f64;
        let mut n1 = self.width;
        let mut u0 = 0.0f64;
        let mut u1 = self.total;
        for i in (0..self.rows).rev() {
            let size = (1u64 << i) as f64;
            let base = i * self.cap;
            // River never evaluates the cut after the newest summary (empty W1).
            let len = if i == 0 {
                self.len[0].saturating_sub(1)
            } else {
                self.len[i]
            };
            for &t in &self.totals[base..base + len] {
                n0 += size;
                n1 -= size;
                u0 += t;
                u1 -= t;
                if n1 < mwl || n0 < mwl {
                    continue;
                }
                let a = n0 - mwl + 1.0;
                let b = n1 - mwl + 1.0;
                if Self::surely_no_cut(u0, u1, n0, n1, a, b, k_linear, k_sqrt) {
                    continue;
                }
                let delta_mean = (u0 / n0) - (u1 / n1);
                let m_recip = 1.0 / a + 1.0 / b;
                let epsilon =
                    (2.0 * m_recip * var_w * delta_prime).sqrt() + two_thirds_dp * m_recip;
                if delta_mean.abs() > epsilon {
                    self.drop_oldest();
                    return true;
                }
            }
        }
        false
    }

    /// A cheap whole-scan certificate: false proves that no cut point passes River's test,
    /// so the scan can be skipped (true: can't tell, run River's scan).
    ///
    /// With `μ = T / W` and `D = u0 - μ n0` (the prefix sum's deviation from its share of
    /// the total), `u0/n0 - u1/n1 = W D / (n0 n1)`, and River's bound is at least
    /// `sqrt(2 V δ' W / (n0 n1))` (as `1/a + 1/b >= 1/n0 + 1/n1`). So no cut if
    /// `(|D| + δ)² W <= 2 V δ' n0 n1` at every cut point, where `δ = 2^-40 (|T| + Σ|t|)`
    /// covers the rounding of River's two running sums (at most a few hundred terms) and of
    /// this computation, and a relative [`SLACK`] covers the rest. This needs one running
    /// sum and a handful of multiplications per cut point: no division, root or branch.
    fn cut_possible(&self, var_w: f64, delta_prime: f64) -> bool {
        let (w, t, cap) = (self.width, self.total, self.cap);
        let mwl = self.min_window_length as f64;
        let c = 2.0 * var_w * delta_prime * (1.0 - SLACK);
        // Σ|t| over every slot in use, plus stale slots beyond each row's length (they only
        // make the bound larger), with four accumulators so the sum does not wait on itself.
        let mut acc = [0.0f64; 4];
        let slots = &self.totals[..self.rows * cap];
        let mut chunks = slots.chunks_exact(4);
        for c in &mut chunks {
            for (a, &x) in acc.iter_mut().zip(c) {
                *a += x.abs();
            }
        }
        for &x in chunks.remainder() {
            acc[0] += x.abs();
        }
        let abs_sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
        let magnitude = t.abs() + abs_sum;
        // Zero or negative bound, NaN, or magnitudes where squares could under/overflow:
        // leave it to River's arithmetic.
        if !(c > 1e-250 && c < 1e250 && magnitude > 1e-100 && magnitude < 1e100) {
            return true;
        }
        let delta = magnitude * (1.0 / (1u64 << 40) as f64);
        let mu = t / w;
        let (mut n0, mut u0) = (0.0f64, 0.0f64);
        let mut possible = false;
        for i in (0..self.rows).rev() {
            let size = (1u64 << i) as f64;
            let len = if i == 0 {
                self.len[0].saturating_sub(1)
            } else {
                self.len[i]
            };
            for &x in &self.totals[i * cap..i * cap + len] {
                n0 += size;
                u0 += x;
                let n1 = w - n0;
                let d = (u0 - mu * n0).abs() + delta;
                // Written so that NaN counts as "possible".
                let certified = d * d * w <= c * (n0 * n1);
                possible |= !certified & (n0 >= mwl) & (n1 >= mwl);
            }
        }
        possible
    }

    /// A division- and root-free test that proves River's cut test fails at this cut point
    /// (false: can't tell, evaluate it exactly).
    ///
    /// River cuts when `|u0/n0 - u1/n1| > sqrt(2 m V δ') + (2/3) δ' m`, with
    /// `m = 1/a + 1/b`, `V` the window variance per value. Multiplied by `n0 n1 a b`
    /// (all positive): no cut if `Y <= S + L` with `Y = |u0 n1 - u1 n0| a b`,
    /// `L = (2/3) δ' (a + b) n0 n1` and `S² = 2 V δ' (a + b) a b (n0 n1)²`; i.e. if
    /// `Y <= L`, or `(Y - L)² <= S²`. Every quantity is inflated (`Y`) or deflated (`L`,
    /// `S²`) by a relative [`SLACK`] of 2^-30, and `Y` also by an absolute
    /// `2^-30 (|u0| n1 + |u1| n0) a b` for the cancellation in `u0 n1 - u1 n0`; each side's
    /// own rounding is a few ulps (~2^-50), so "no cut" here implies "no cut" in River's
    /// arithmetic. Tiny (subnormal-prone), huge and non-finite inputs fall through.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn surely_no_cut(
        u0: f64,
        u1: f64,
        n0: f64,
        n1: f64,
        a: f64,
        b: f64,
        k_linear: f64,
        k_sqrt: f64,
    ) -> bool {
        let gap = (u0 * n1 - u1 * n0).abs();
        let scale = u0.abs() * n1 + u1.abs() * n0;
        if !(scale == 0.0 || (scale > 1e-200 && scale < 1e200)) {
            return false;
        }
        let ab = a * b;
        let n01 = n0 * n1;
        let y = (gap * (1.0 + SLACK) + scale * SLACK) * ab;
        let l = k_linear * ((a + b) * n01);
        if y <= l {
            return true;
        }
        let r = (y - l) * (1.0 + SLACK);
        r * r <= k_sqrt * ((a + b) * ab) * (n01 * n01)
    }

    fn reset(&mut self) {
        self.rows = 0;
        self.total = 0.0;
        self.total_now = 0.0;
        self.variance = 0.0;
        self.width = 0.0;
        self.n_pending = 0;
        self.tick = 0;
        self.until_check = self.clock;
        self.drift = false;
    }
}

impl DriftDetector for Adwin {
    #[inline]
    fn update(&mut self, x: f64) {
        if self.drift {
            self.reset();
        }
        if !x.is_finite() {
            return;
        }
        self.insert(x);
        self.tick += 1;
        self.until_check -= 1;
        if self.until_check == 0 {
            // River: `tick % clock == 0`.
            self.until_check = self.clock;
            self.flush();
            if self.width > self.grace_period as f64 {
                while self.scan_and_cut() {
                    self.drift = true;
                }
            }
        }
    }

    #[inline]
    fn drift_detected(&self) -> bool {
        self.drift
    }

    fn estimate(&self) -> f64 {
        let width = self.width + self.n_pending as f64;
        if width == 0.0 {
            0.0
        } else {
            self.total_now / width
        }
    }
}
