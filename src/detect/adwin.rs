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
/// For speed, values are folded into the window statistics once per clock period (River's
/// arithmetic, with the divisions of a batch overlapping) and into the histogram once per
/// 128 values (or before anything reads it), and a check first tries cheap certificates
/// that no cut point can pass River's test before running River's per-cut arithmetic: the
/// first needs no running sums (every summary keeps where it ends) and covers the pending
/// values too. All of this is exact: it changes how much is computed, not a single
/// decision or bit of state (see `fold`, `flush`, `check` and `cut_possible_by_ends`).
/// A check's certificate waits on none of River's in-order sums (the running total and the
/// variance of the new values): it takes the variance as of the last check (a lower
/// bound) and the new total summed in eight lanes (within a few ulps, which its rounding
/// allowance covers), so those chains of additions run alongside it; and an update only
/// stores its value and bumps one counter (the running total is taken at the check).
/// Those paths are also compiled for AVX2 and AVX-512, and the widest the CPU has is picked
/// at run time: the same IEEE operations in the same order in more lanes, so the same bits.
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
    /// The exponential histogram (the summaries as of the last flush).
    hist: Histogram,
    /// Window statistics as of the last fold: sum of the values, sum of squared deviations
    /// from the window mean, number of values (a float, as River keeps it).
    total: f64,
    variance: f64,
    width: f64,
    /// Sum of `|x|` over the window (a bound for rounding errors, not one of River's values).
    abs_total: f64,
    /// Whether `slots.ends` are prefix sums from the window's first value (false from a drop
    /// of the oldest summary until the reset that follows it).
    ends_valid: bool,
    /// Values received but not yet inserted into the histogram, and (from the fold on)
    /// River's running total before and after each of them. The first `folded` are
    /// already in `total`, `width` and `abs_total`, and the first `var_folded` in
    /// `variance`: each check folds the values since the last one (River's arithmetic, in
    /// River's order, but with the divisions of a batch overlapping), and the histogram
    /// takes them all in one compression once `PENDING` have gathered (or before anything
    /// reads it). Both are exact: the same operations on the same values, in an order that
    /// no result depends on.
    pending: Box<Pending>,
    folded: usize,
    /// Pending values through which `variance` has taken the increments (`folded`, except
    /// within a check: see [`Adwin::fold_totals`]).
    var_folded: usize,
    n_pending: usize,
    /// What the last full certificate proved about the older cut points, so that most checks
    /// test only the newer ones (see [`Standing`]); `None` until one ran since the reset.
    standing: Option<Standing>,
    /// `(W, δ'(W))` as last computed for a certificate: `δ'` grows with `W`, so the value at
    /// a smaller window is a valid (slightly looser) stand-in and saves two logarithms a check.
    delta_prime_at: (f64, f64),
    /// Updates from the last reset to the last check (or restore), and updates left until
    /// the next check as of the last event (see [`Adwin::ticks`]).
    tick: u64,
    until_check: u32,
    /// `n_pending` at the last event and at the next one (a check, a full pending buffer,
    /// or the update after a drift, whichever comes first): an update compares one counter
    /// only, and River's tick is `tick + clock - (until_check - (n_pending - armed_at))`.
    armed_at: usize,
    event_at: usize,
    drift: bool,
}

/// Values received but not yet in the histogram (one allocation: an update writes two of
/// its columns).
#[derive(Clone, Debug)]
struct Pending {
    values: [f64; PENDING],
    /// River's running total before each value (written when folded), for the increments.
    before: [f64; PENDING],
    /// The running total after each value, summed in the same order as River's (written
    /// when folded): what a summary's end is (see [`Slots`]).
    ends: [f64; PENDING],
    /// The number of window values through each value (written when folded).
    counts: [f64; PENDING],
    /// Scratch: the variance increments of a fold, and the summaries a compression carries
    /// from row to row (kept here so that a compression does not zero 4 KiB of stack).
    inc: [f64; PENDING],
    carries: [Carry<CARRY>; 2],
}

/// Capacity of [`Adwin::pending`] (a power of two): the histogram is compressed once per
/// this many values.
const PENDING: usize = 128;

/// `0.0, 1.0, ..., PENDING as f64`: exact widths without a conversion per value.
const IOTA: [f64; PENDING + 1] = {
    let mut a = [0.0; PENDING + 1];
    let mut k = 0;
    while k <= PENDING {
        a[k] = k as f64;
        k += 1;
    }
    a
};

/// Summaries, one column per field: River's total and variance (sum of squared deviations
/// from the summary's mean), and two of this port's own: `ends`, River's running total just
/// after the summary's newest value was added (the prefix sum of the window through this
/// summary, up to rounding), and `counts`, the number of window values through it (`0.0` in
/// slots not in use). Neither changes when summaries merge (a merged summary ends where its
/// newer half ended), so the scan's first certificate needs no running sums.
#[derive(Clone, Debug, Default)]
struct Slots {
    totals: Vec<f64>,
    variances: Vec<f64>,
    ends: Vec<f64>,
    counts: Vec<f64>,
}

impl Slots {
    fn resize(&mut self, n: usize) {
        self.totals.resize(n, 0.0);
        self.variances.resize(n, 0.0);
        self.ends.resize(n, 0.0);
        self.counts.resize(n, 0.0);
    }

    /// Copies slots `from..from + n` to `to..`, `to <= from` (element by element: a
    /// handful each, where a call to memmove per column would cost more than the move).
    fn move_down(&mut self, from: usize, n: usize, to: usize) {
        debug_assert!(to <= from);
        let (t, v) = (
            &mut self.totals[to..from + n],
            &mut self.variances[to..from + n],
        );
        let (e, c) = (&mut self.ends[to..from + n], &mut self.counts[to..from + n]);
        let d = from - to;
        for k in 0..n {
            (t[k], v[k], e[k], c[k]) = (t[k + d], v[k + d], e[k + d], c[k + d]);
        }
    }
}

/// Most summaries carried from one row into the next during a flush: half of the pending
/// values, rounded up, plus one.
const CARRY: usize = PENDING / 2 + 1;

/// Summaries entering a row during a flush, oldest first (`N`: capacity).
#[derive(Clone, Debug)]
struct Carry<const N: usize> {
    len: usize,
    totals: [f64; N],
    variances: [f64; N],
    ends: [f64; N],
    counts: [f64; N],
}

/// Summaries entering a row, oldest first, borrowed: a [`Carry`], or the pending values.
#[derive(Clone, Copy)]
struct CarryRef<'a> {
    totals: &'a [f64],
    variances: &'a [f64],
    ends: &'a [f64],
    counts: &'a [f64],
}

impl CarryRef<'_> {
    #[inline(always)]
    fn len(&self) -> usize {
        self.totals.len()
    }
}

/// Variances of summaries of one value.
const ZEROS: [f64; PENDING] = [0.0; PENDING];

impl<const N: usize> Carry<N> {
    #[inline(always)]
    fn view(&self) -> CarryRef<'_> {
        CarryRef {
            totals: &self.totals[..self.len],
            variances: &self.variances[..self.len],
            ends: &self.ends[..self.len],
            counts: &self.counts[..self.len],
        }
    }

    #[inline(always)]
    fn new() -> Self {
        Carry {
            len: 0,
            totals: [0.0; N],
            variances: [0.0; N],
            ends: [0.0; N],
            counts: [0.0; N],
        }
    }
}

/// The widest vector instructions the hot paths (the fold, the first certificate, the
/// compression) are compiled for, picked at run time. Every variant runs the same IEEE
/// operations in the same order (Rust never fuses a multiply and an add), so results are
/// bit-identical; only the number of lanes differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isa {
    Baseline,
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Avx2,
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Avx512,
}

#[cfg(test)]
thread_local! {
    /// Set by a test to run one variant on its thread (one the CPU has).
    static ISA_FOR_TESTS: std::cell::Cell<Option<Isa>> = const { std::cell::Cell::new(None) };
}

#[inline(always)]
fn isa() -> Isa {
    #[cfg(test)]
    if let Some(forced) = ISA_FOR_TESTS.get() {
        return forced;
    }
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Isa::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return Isa::Avx2;
        }
    }
    Isa::Baseline
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
        let tick = a.ticks();
        a.flush();
        let rows = (0..a.hist.rows)
            .map(|i| {
                (a.hist.base(i)..a.hist.base(i) + a.hist.len[i])
                    .map(|j| Bucket(a.hist.slots.totals[j], a.hist.slots.variances[j]))
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
                tick,
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
            ensure(row.len() < a.hist.cap, NAME, "window", || {
                format!(
                    "row {i} holds {} summaries, more than max_buckets",
                    row.len()
                )
            })?;
            a.hist.activate_row();
            for (k, b) in row.iter().enumerate() {
                let j = a.hist.base(i) + k;
                a.hist.slots.totals[j] = b.0;
                a.hist.slots.variances[j] = b.1;
            }
            a.hist.len[i] = row.len();
        }
        a.total = s.window.total;
        a.variance = s.window.variance;
        a.width = s.window.width;
        let since_check = s.window.tick % u64::from(a.clock);
        a.tick = s.window.tick - since_check;
        a.until_check = a.clock - since_check as u32;
        a.drift = s.drift;
        a.arm();
        a.restore_ends();
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

/// River's increment of the window variance for value `x` inserted after `wm1` values
/// whose running total is `t` (River: `width += 1`; if `width > 1`,
/// `(width - 1) * d * d / width` with `d = x - total / (width - 1)`).
#[inline(always)]
fn increment(wm1: f64, t: f64, x: f64) -> f64 {
    let d = x - t / wm1;
    let v = wm1 * d * d / (wm1 + 1.0);
    if wm1 > 0.0 {
        v
    } else {
        0.0
    }
}

/// River's running total from `t` over `xs`, in order: the total before each value into
/// `before`, after it into `ends`; returns the last.
#[inline(always)]
fn running_totals(mut t: f64, xs: &[f64], before: &mut [f64], ends: &mut [f64]) -> f64 {
    for ((&x, b), e) in xs.iter().zip(before).zip(ends) {
        *b = t;
        t += x;
        *e = t;
    }
    t
}

/// River's variance increments of values `xs` inserted after `w0` values, the running
/// total before each in `before`, into `inc`.
#[inline(always)]
fn increments(w0: f64, before: &[f64], xs: &[f64], inc: &mut [f64]) {
    for ((v, &x), (&t, &k)) in inc.iter_mut().zip(xs).zip(before.iter().zip(&IOTA)) {
        *v = increment(w0 + k, t, x);
    }
}

/// `Σx` and `Σ|x|`, each in eight independent lanes. Neither is one of River's values (a
/// certificate's stand-in for the total, a bound for rounding errors), so the order of the
/// additions is free, and lanes vectorise where one running sum would wait on each addition
/// in turn.
#[inline(always)]
fn lane_sums(xs: &[f64]) -> (f64, f64) {
    let (mut lanes, mut abs) = ([0.0f64; 8], [0.0f64; 8]);
    let chunks = xs.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..8 {
            lanes[k] += c[k];
            abs[k] += c[k].abs();
        }
    }
    // The rest apart, so that the lanes stay in registers.
    let (mut sum, mut abs_rest) = (0.0f64, 0.0f64);
    for &x in rest {
        sum += x;
        abs_rest += x.abs();
    }
    (
        lanes.iter().sum::<f64>() + sum,
        abs.iter().sum::<f64>() + abs_rest,
    )
}

/// Columns of consecutive summaries: totals, variances, ends, counts.
struct Cols<'a>(&'a [f64], &'a [f64], &'a [f64], &'a [f64]);

/// River's merges of consecutive pairs of `src` (summaries of `n` values each) into `out`
/// from index `at`: totals add, variances add plus `n/2 (mu0 - mu1)^2`; a merged summary
/// ends where its newer half ended. Returns the index after the last one written.
#[inline(always)]
fn merge_run<const N: usize>(
    n: f64,
    inv_n: f64,
    src: Cols,
    out: &mut Carry<N>,
    at: usize,
) -> usize {
    let m = src.0.len() / 2;
    // Indexed loops over slices cut to length: the compiler proves every index in bounds
    // and vectorises the pairs (even and odd lanes) where a zip of chunks stays scalar.
    let (ot, ov) = (&mut out.totals[at..at + m], &mut out.variances[at..at + m]);
    let (oe, oc) = (&mut out.ends[at..at + m], &mut out.counts[at..at + m]);
    let (t, v) = (&src.0[..2 * m], &src.1[..2 * m]);
    let (e, c) = (&src.2[..2 * m], &src.3[..2 * m]);
    for k in 0..m {
        let mu0 = t[2 * k] * inv_n;
        let mu1 = t[2 * k + 1] * inv_n;
        ot[k] = t[2 * k] + t[2 * k + 1];
        ov[k] = v[2 * k] + v[2 * k + 1] + n * 0.5 * (mu0 - mu1) * (mu0 - mu1);
        oe[k] = e[2 * k + 1];
        oc[k] = c[2 * k + 1];
    }
    at + m
}

/// The constants of one certificate (see [`Adwin::cut_possible_by_ends`]): window width
/// and mean, `c = 2 V δ' (1 - SLACK)`, the rounding allowance `δ` and `min_window_length`.
#[derive(Clone, Copy, Debug)]
struct CertificateParams {
    w: f64,
    mu: f64,
    c: f64,
    delta: f64,
    mwl: f64,
}

impl CertificateParams {
    /// Whether some cut point among `ends` and `counts` might pass River's test (false: none
    /// can): `(|u0 - μ n0| + δ)² W <= c n0 n1` certifies one, and points with `n0` or `n1`
    /// under `min_window_length` (unused slots have count 0) are not evaluated by River.
    #[inline(always)]
    fn possible(&self, ends: &[f64], counts: &[f64]) -> bool {
        let CertificateParams {
            w,
            mu,
            c,
            delta,
            mwl,
        } = *self;
        let n = ends.len().min(counts.len());
        let (ends, counts) = (&ends[..n], &counts[..n]);
        // An integer OR (not `bool`s) so that the loop vectorises.
        let mut possible = 0u64;
        for (&u0, &n0) in ends.iter().zip(counts) {
            let n1 = w - n0;
            let d = (u0 - mu * n0).abs() + delta;
            // Written so that NaN counts as "possible".
            let certified = d * d * w <= c * (n0 * n1);
            possible |= u64::from(!certified & (n0 >= mwl) & (n1 >= mwl));
        }
        possible != 0
    }
}

/// Newer cut points than this many values from the window's end are tested at every check;
/// older ones are covered by a [`Standing`] while it lasts.
const RECENT: f64 = 512.0;

/// What a full certificate at window `W_r` (mean `μ_r`, constants `c_r`, `δ_r`) proved about
/// its *older* cut points, those ending at or before value `N_r = W_r - RECENT -
/// min_window_length` (so `n1 >= RECENT` for each), enough to cover them at later checks
/// without testing them again.
///
/// Write `g = |u0 - μ n0| + δ` and `H = sqrt(c n0 n1 / W)`; the certificate is `g <= H`. A cut
/// point's `u0` and `n0` never change (a merged summary ends where its newer half ended),
/// and until the next reset the window only grows: at a later check `n1` has grown by
/// `W - W_r`, so `H >= s H_r` with `s = sqrt(c W_r / (c_r W))`, while
/// `g <= g_r + |μ - μ_r| n0 + max(0, δ - δ_r)`. With `ρ = max g_r / H_r`, `A = max n0 / H_r`
/// and `H_min = min H_r` over the older points, `ρ + |μ - μ_r| A + max(0, δ - δ_r) / H_min
/// <= s` therefore certifies every one of them again. Newer points, and values that arrived
/// since, are tested as always. Each side keeps a relative margin of 10^-9, far above the
/// rounding of these few operations. As the window grows the newer points spread over more
/// rows, so a standing is renewed (by a full certificate) once two more rows hold newer
/// points than when it was made: in the benchmark that keeps a check's test to some 40
/// summaries, at the cost of a full certificate every few dozen checks.
#[derive(Clone, Copy, Debug)]
struct Standing {
    w: f64,
    mu: f64,
    c: f64,
    delta: f64,
    /// `N_r`: the cut points covered are those with `n0 <= max_count`.
    max_count: f64,
    /// Rows holding newer cut points when the standing was made.
    rows: usize,
    rho: f64,
    a: f64,
    h_min: f64,
}

impl Standing {
    /// The standing of a certificate `p` that passed over `ends` and `counts` (the whole
    /// histogram), or `None` where its figures are not usable.
    #[inline(always)]
    fn over(p: &CertificateParams, ends: &[f64], counts: &[f64]) -> Option<Standing> {
        let max_count = p.w - RECENT - p.mwl;
        let (mut rho2, mut a2, mut h2_min) = (0.0f64, 0.0f64, f64::INFINITY);
        for (&u0, &n0) in ends.iter().zip(counts) {
            let n1 = p.w - n0;
            if !(n0 >= p.mwl && n0 <= max_count) {
                continue;
            }
            let d = (u0 - p.mu * n0).abs() + p.delta;
            let h2 = p.c * (n0 * n1) / p.w;
            // Written so that a NaN makes the standing unusable rather than vanish.
            let (r, q) = (d * d / h2, n0 * n0 / h2);
            if r.is_nan() || r > rho2 {
                rho2 = r;
            }
            if q.is_nan() || q > a2 {
                a2 = q;
            }
            if h2.is_nan() || h2 < h2_min {
                h2_min = h2;
            }
        }
        let s = Standing {
            w: p.w,
            mu: p.mu,
            c: p.c,
            delta: p.delta,
            max_count,
            rows: 0,
            rho: rho2.sqrt(),
            a: a2.sqrt(),
            h_min: h2_min.sqrt(),
        };
        (s.rho.is_finite() && s.a.is_finite() && s.h_min > 0.0).then_some(s)
    }

    /// Whether the older cut points are certified again under `p` (false: test them).
    #[inline(always)]
    fn covers(&self, p: &CertificateParams) -> bool {
        if p.w.is_nan() || p.w < self.w {
            return false;
        }
        let s = (p.c * self.w / (self.c * p.w)).sqrt();
        let drift = (p.mu - self.mu).abs() * self.a + (p.delta - self.delta).max(0.0) / self.h_min;
        // Written so that NaN does not cover.
        (self.rho + drift) * (1.0 + 1e-9) <= s * (1.0 - 1e-9)
    }
}

/// ADWIN's exponential histogram: rows of summaries, row `i` holding `len[i]` summaries of
/// `2^i` values each, oldest first, in slots `i * max_buckets ..` of `slots` (a compression
/// never leaves more).
#[derive(Clone, Debug)]
struct Histogram {
    max_buckets: usize,
    /// `max_buckets + 1`: a row overflows when it reaches this many summaries.
    cap: usize,
    /// Rows in use.
    rows: usize,
    len: Vec<usize>,
    slots: Slots,
}

impl Histogram {
    /// The number of rows, newest first, up to the first whose summaries all end at or
    /// before value `count` of the window (rows hold ever older summaries).
    #[inline(always)]
    fn rows_newer_than(&self, count: f64) -> usize {
        let mut k = 0;
        while k < self.rows {
            let len = self.len[k];
            if len > 0 && self.slots.counts[self.base(k) + len - 1] <= count {
                break;
            }
            k += 1;
        }
        k
    }

    /// First slot of row `i`.
    #[inline(always)]
    fn base(&self, i: usize) -> usize {
        i * self.max_buckets
    }

    /// River's compression after row 0 receives `input`.
    ///
    /// River inserts each value into row 0 and, whenever a row reaches `max_buckets + 1`
    /// summaries, merges its two oldest into the next row. Rows are FIFOs and a merge always
    /// takes the two oldest, so inserting a batch and then merging pairs from the front of
    /// each row until at most `max_buckets` remain (with the parity River's one-at-a-time
    /// merging leaves) produces exactly the same summaries, computed by the same
    /// arithmetic.
    #[inline(always)]
    fn compress(&mut self, input: CarryRef, carries: &mut [Carry<CARRY>; 2]) {
        let [a, b] = carries;
        let (mut carry, mut next) = (a, b);
        if !self.compress_row(0, input, carry) {
            return;
        }
        // Two carries used in turn: what row `i` receives and what it passes on.
        let mut i = 1;
        loop {
            if i == self.rows {
                self.activate_row();
            }
            if !self.compress_row(i, carry.view(), next) {
                return;
            }
            std::mem::swap(&mut carry, &mut next);
            i += 1;
        }
    }

    /// Appends `carry` to row `i` and merges pairs from its front until fewer than
    /// `max_buckets + 1` remain; the merged summaries go to `next`. False if none did.
    #[inline(always)]
    fn compress_row<const B: usize>(
        &mut self,
        i: usize,
        carry: CarryRef,
        next: &mut Carry<B>,
    ) -> bool {
        let (base, len) = (self.base(i), self.len[i]);
        let count = len + carry.len();
        if count < self.cap {
            self.append_from(i, carry, 0);
            return false;
        }
        // Merges River performs in this row (pairs from the front of the row followed by
        // the carry), and what stays.
        let merged = 2 * ((count + 2 - self.cap) / 2);
        self.merge_front(i, carry, merged / 2, next);
        if merged <= len {
            self.slots.move_down(base + merged, len - merged, base);
            self.len[i] = len - merged;
            self.append_from(i, carry, 0);
        } else {
            self.len[i] = 0;
            self.append_from(i, carry, merged - len);
        }
        // Slots beyond a row's summaries hold count 0 (the certificate skips them).
        let keep = self.len[i];
        for c in &mut self.slots.counts[base + keep..base + len.max(keep)] {
            *c = 0.0;
        }
        true
    }

    /// River's merges of the `pairs` oldest pairs of summaries of row `i` followed by
    /// `carry` (summaries of `2^i` values each), into `out`.
    #[inline(always)]
    fn merge_front<const B: usize>(
        &self,
        i: usize,
        carry: CarryRef,
        pairs: usize,
        out: &mut Carry<B>,
    ) {
        let n = (1u64 << i) as f64;
        // `t / 2^i` (River) and `t * 2^-i` round the same exact value: identical.
        let inv_n = inv_pow2(i);
        let (base, len) = (self.base(i), self.len[i]);
        let s = &self.slots;
        // Pairs within the row, then one straddling the row and the carry (odd row), then
        // pairs within the carry.
        let in_row = (len / 2).min(pairs);
        let r = base..base + 2 * in_row;
        let row = Cols(
            &s.totals[r.clone()],
            &s.variances[r.clone()],
            &s.ends[r.clone()],
            &s.counts[r],
        );
        let mut p = merge_run(n, inv_n, row, out, 0);
        let mut k = 0;
        if p < pairs && len % 2 == 1 {
            let j = base + len - 1;
            let (t0, v0) = (s.totals[j], s.variances[j]);
            let (t1, v1) = (carry.totals[0], carry.variances[0]);
            let mu0 = t0 * inv_n;
            let mu1 = t1 * inv_n;
            out.totals[p] = t0 + t1;
            out.variances[p] = v0 + v1 + n * 0.5 * (mu0 - mu1) * (mu0 - mu1);
            out.ends[p] = carry.ends[0];
            out.counts[p] = carry.counts[0];
            (p, k) = (p + 1, 1);
        }
        let r = k..k + 2 * (pairs - p);
        let c = Cols(
            &carry.totals[r.clone()],
            &carry.variances[r.clone()],
            &carry.ends[r.clone()],
            &carry.counts[r],
        );
        merge_run(n, inv_n, c, out, p);
        out.len = pairs;
    }

    /// Appends `carry`'s summaries `skip..` (newest) to row `i`.
    #[inline(always)]
    fn append_from(&mut self, i: usize, carry: CarryRef, skip: usize) {
        let at = self.base(i) + self.len[i];
        let n = carry.len() - skip;
        let s = &mut self.slots;
        let (t, v) = (&mut s.totals[at..at + n], &mut s.variances[at..at + n]);
        let (e, c) = (&mut s.ends[at..at + n], &mut s.counts[at..at + n]);
        let r = skip..skip + n;
        let (st, sv) = (&carry.totals[r.clone()], &carry.variances[r.clone()]);
        let (se, sc) = (&carry.ends[r.clone()], &carry.counts[r]);
        // An indexed loop: a handful of summaries each time (one in the deep rows), where
        // a vectorised copy's set-up would cost more than the copy.
        for k in 0..n {
            (t[k], v[k], e[k], c[k]) = (st[k], sv[k], se[k], sc[k]);
        }
        self.len[i] += n;
    }

    /// Appends an empty row.
    fn activate_row(&mut self) {
        let r = self.rows;
        if r == self.len.len() {
            self.len.push(0);
            self.slots.resize((r + 1) * self.max_buckets);
        }
        self.len[r] = 0;
        let base = self.base(r);
        self.slots.counts[base..base + self.max_buckets].fill(0.0);
        self.rows += 1;
    }
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
            hist: Histogram {
                max_buckets: max_buckets as usize,
                cap: max_buckets as usize + 1,
                rows: 0,
                len: Vec::new(),
                slots: Slots::default(),
            },
            total: 0.0,
            variance: 0.0,
            width: 0.0,
            abs_total: 0.0,
            ends_valid: true,
            pending: Box::new(Pending {
                values: [0.0; PENDING],
                before: [0.0; PENDING],
                ends: [0.0; PENDING],
                counts: [0.0; PENDING],
                inc: [0.0; PENDING],
                carries: [Carry::new(), Carry::new()],
            }),
            folded: 0,
            var_folded: 0,
            n_pending: 0,
            standing: None,
            delta_prime_at: (f64::INFINITY, 0.0),
            tick: 0,
            until_check: clock,
            armed_at: 0,
            event_at: 0,
            drift: false,
        })
        .map(|mut a: Adwin| {
            a.arm();
            a
        })
    }

    /// Window variance (sum of squared deviations) and width including the pending values.
    fn pending_stats(&self) -> (f64, f64) {
        let (f, n) = (self.folded, self.n_pending);
        let mut variance = self.variance;
        if f == n {
            return (variance, self.width);
        }
        let (mut before, mut ends, mut inc) = ([0.0; PENDING], [0.0; PENDING], [0.0; PENDING]);
        let xs = &self.pending.values[f..n];
        running_totals(self.total, xs, &mut before[..n - f], &mut ends[..n - f]);
        increments(self.width, &before[..n - f], xs, &mut inc[..n - f]);
        for &v in &inc[..n - f] {
            variance += v;
        }
        (variance, self.width + (n - f) as f64)
    }

    /// River's running total including the pending values (`total` plus each pending value
    /// not yet folded, in order: the same additions River makes).
    fn total_now(&self) -> f64 {
        let mut t = self.total;
        for &x in &self.pending.values[self.folded..self.n_pending] {
            t += x;
        }
        t
    }

    /// Folds the pending values not yet folded into the window statistics.
    #[inline(always)]
    fn fold(&mut self) {
        self.fold_totals();
        self.fold_variance();
    }

    /// Folds the pending values not yet folded into the window's total, width and
    /// magnitude, but not yet into its variance (see [`Adwin::fold_variance`]). Returns the
    /// new total as summed in eight lanes, within a few ulps of River's in-order one: a
    /// check's certificate uses it (see [`Adwin::certificate_params`]), and so can test the
    /// older cut points without waiting on River's chain of additions.
    #[inline(always)]
    fn fold_totals(&mut self) -> f64 {
        let (f, n) = (self.folded, self.n_pending);
        if f == n {
            return self.total;
        }
        let (w0, t0) = (self.width, self.total);
        let p = &mut *self.pending;
        let xs = &p.values[f..n];
        let (sum, abs) = lane_sums(xs);
        self.abs_total += abs;
        for (c, &k) in p.counts[f..n].iter_mut().zip(&IOTA[1..]) {
            *c = w0 + k;
        }
        self.width = w0 + (n - f) as f64;
        // River's running total, one addition per value in order (the one chain an update
        // would otherwise carry through memory).
        self.total = running_totals(t0, xs, &mut p.before[f..n], &mut p.ends[f..n]);
        self.folded = n;
        t0 + sum
    }

    /// Adds the increments of the values folded by [`Adwin::fold_totals`] to the variance:
    /// independent of one another, so that their divisions overlap and vectorise, then
    /// summed in River's order. A check runs its certificate before this (on the variance
    /// as of the last check, a lower bound), so that it does not wait on these either.
    #[inline(always)]
    fn fold_variance(&mut self) {
        let (f, n) = (self.var_folded, self.folded);
        if f == n {
            return;
        }
        let w0 = self.width - (n - f) as f64;
        let p = &mut *self.pending;
        let inc = &mut p.inc[..n - f];
        increments(w0, &p.before[f..n], &p.values[f..n], inc);
        let mut variance = self.variance;
        for &v in inc.iter() {
            variance += v;
        }
        self.variance = variance;
        self.var_folded = n;
    }

    /// Folds the pending values into the window statistics and into the histogram.
    #[inline(always)]
    fn flush(&mut self) {
        self.fold();
        let n = self.n_pending;
        if n == 0 {
            return;
        }
        self.n_pending = 0;
        self.folded = 0;
        self.var_folded = 0;
        if self.hist.rows == 0 {
            self.hist.activate_row();
        }
        // River's insertions into row 0: summaries of one value, variance 0.
        let p = &mut *self.pending;
        let input = CarryRef {
            totals: &p.values[..n],
            variances: &ZEROS[..n],
            ends: &p.ends[..n],
            counts: &p.counts[..n],
        };
        self.hist.compress(input, &mut p.carries);
    }

    /// Updates since the last reset (River's `tick`).
    fn ticks(&self) -> u64 {
        let since = (self.n_pending - self.armed_at) as u32;
        self.tick + u64::from(self.clock - (self.until_check - since))
    }

    /// Sets the next event: the next check, or the update that fills the pending buffer,
    /// whichever comes first.
    #[inline(always)]
    fn arm(&mut self) {
        let room = PENDING - self.n_pending;
        self.armed_at = self.n_pending;
        // After a drift, the next update (River resets the detector on it).
        let next = if self.drift {
            1
        } else {
            room.min(self.until_check as usize)
        };
        self.event_at = self.n_pending + next;
    }

    /// Number of values in the current window.
    pub fn width(&self) -> u64 {
        self.width as u64 + (self.n_pending - self.folded) as u64
    }

    /// Sum of the values in the current window.
    #[allow(clippy::misnamed_getters)] // `total` lags by the pending values; `total_now` not.
    pub fn total(&self) -> f64 {
        self.total_now()
    }

    /// Sample variance of the values in the current window (`0.0` below two values).
    pub fn variance(&self) -> f64 {
        let (variance, width) = self.pending_stats();
        if width > 1.0 {
            variance / (width - 1.0)
        } else {
            0.0
        }
    }

    /// Recomputes every summary's end and count (oldest first) and the magnitude, from the
    /// totals alone (a restored state: the ends are then sums of totals, not of values,
    /// which the certificate's rounding bound covers).
    fn restore_ends(&mut self) {
        let (mut end, mut count, mut abs) = (0.0f64, 0.0f64, 0.0f64);
        for i in (0..self.hist.rows).rev() {
            let size = (1u64 << i) as f64;
            let base = self.hist.base(i);
            for j in base..base + self.hist.len[i] {
                end += self.hist.slots.totals[j];
                count += size;
                abs += self.hist.slots.totals[j].abs();
                self.hist.slots.ends[j] = end;
                self.hist.slots.counts[j] = count;
            }
        }
        self.abs_total = abs;
        self.ends_valid = true;
    }

    #[inline(always)]
    fn insert(&mut self, x: f64) {
        // The mask keeps the index in bounds without a check (`n_pending < PENDING` here).
        let k = self.n_pending & (PENDING - 1);
        self.pending.values[k] = x;
        self.n_pending += 1;
    }

    /// Drops the oldest summary (the first of the last row). Needs flushed statistics.
    fn drop_oldest(&mut self) {
        debug_assert_eq!(self.n_pending, 0);
        let last = self.hist.rows - 1;
        let n = (1u64 << last) as f64;
        let j = self.hist.base(last);
        let (u, v) = (self.hist.slots.totals[j], self.hist.slots.variances[j]);
        let mu = u * inv_pow2(last);
        self.width -= n;
        self.total -= u;
        let mu_window = self.total / self.width;
        self.variance -=
            v + n * self.width * (mu - mu_window) * (mu - mu_window) / (n + self.width);
        let len = self.hist.len[last];
        self.hist.slots.move_down(j + 1, len - 1, j);
        self.hist.slots.counts[j + len - 1] = 0.0;
        self.hist.len[last] = len - 1;
        while self.hist.rows > 0 && self.hist.len[self.hist.rows - 1] == 0 {
            self.hist.rows -= 1;
        }
        // The ends now count from a summary that is gone.
        self.ends_valid = false;
    }

    /// Every `clock` updates: folds the pending values and, past the grace period, checks
    /// for a cut.
    #[inline(never)]
    fn on_clock(&mut self) {
        #[cfg(target_arch = "x86_64")]
        match isa() {
            // SAFETY: `isa` has checked at run time that the CPU supports the features.
            Isa::Avx512 => return unsafe { self.on_clock_avx512() },
            Isa::Avx2 => return unsafe { self.on_clock_avx2() },
            Isa::Baseline => {}
        }
        self.on_clock_body()
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn on_clock_avx2(&mut self) {
        self.on_clock_body()
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn on_clock_avx512(&mut self) {
        self.on_clock_body()
    }

    #[inline(always)]
    fn on_clock_body(&mut self) {
        if self.drift {
            // The update after a drift: River resets the detector before adding the value,
            // which is already in the old window's pending buffer.
            let x = self.pending.values[(self.n_pending - 1) & (PENDING - 1)];
            self.reset();
            self.insert(x);
            if self.n_pending != self.event_at {
                return;
            }
        }
        self.until_check -= (self.n_pending - self.armed_at) as u32;
        if self.until_check == 0 {
            // River: `tick % clock == 0`.
            self.tick += u64::from(self.clock);
            self.until_check = self.clock;
            // The variance as of the last fold: a lower bound for the new one (increments
            // are >= 0), which the certificate can use without waiting on this fold's
            // divisions and in-order sum.
            let variance_before = self.variance;
            let total = self.fold_totals();
            if self.width > self.grace_period as f64 {
                self.check(variance_before, total);
            }
            self.fold_variance();
        }
        if self.n_pending == PENDING {
            self.flush();
        }
        self.arm();
    }

    /// River's cut check (folded statistics). Its first certificate runs on the histogram
    /// as it is plus the pending values: compressing them can only merge cut points away,
    /// never add one, so a certificate for this superset covers River's cut points; only
    /// when it fails is the histogram brought up to date for the exact scan.
    #[inline(always)]
    fn check(&mut self, variance_lower: f64, total: f64) {
        let var_w = variance_lower / self.width;
        let delta_prime = self.certificate_delta_prime();
        if self.ends_valid && !self.cut_possible_by_ends(var_w, delta_prime, total) {
            return;
        }
        self.flush();
        while self.scan_and_cut() {
            self.drift = true;
        }
    }

    /// `δ'` for a certificate: River's at the window of the last computation when that is at
    /// most this one and not much smaller (a lower `δ'` only makes the certificate stricter),
    /// computed afresh otherwise.
    #[inline(always)]
    fn certificate_delta_prime(&mut self) -> f64 {
        let (at, dp) = self.delta_prime_at;
        if self.width >= at && self.width <= at * 1.125 {
            return dp;
        }
        let dp = (2.0 * self.width.ln() / self.delta).ln();
        self.delta_prime_at = (self.width, dp);
        dp
    }

    /// River's per-scan constants: the window variance per value and
    /// `δ' = ln(2 ln(W) / delta)`.
    #[inline(always)]
    fn scan_constants(&self) -> (f64, f64) {
        let delta_prime = (2.0 * self.width.ln() / self.delta).ln();
        (self.variance / self.width, delta_prime)
    }

    /// One scan over all cut points, oldest first. Returns true (after dropping the oldest
    /// summary) at the first cut whose means differ significantly. Needs flushed statistics.
    fn scan_and_cut(&mut self) -> bool {
        debug_assert_eq!(self.n_pending, 0);
        let mwl = self.min_window_length as f64;
        // Constant during one scan; hoisted out of the loop (same values as River's).
        let (var_w, delta_prime) = self.scan_constants();
        let two_thirds_dp = 2.0 / 3.0 * delta_prime;
        let k_linear = two_thirds_dp * (1.0 - SLACK);
        let k_sqrt = 2.0 * var_w * delta_prime * (1.0 - SLACK);
        if self.ends_valid && !self.cut_possible_by_ends(var_w, delta_prime, self.total) {
            return false;
        }
        if !self.cut_possible(var_w, delta_prime) {
            return false;
        }
        let mut n0 = 0.0f64;
        let mut n1 = self.width;
        let mut u0 = 0.0f64;
        let mut u1 = self.total;
        for i in (0..self.hist.rows).rev() {
            let size = (1u64 << i) as f64;
            for &t in self.cut_totals(i) {
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

    /// The totals of row `i` whose cuts River evaluates, oldest first: all of them except
    /// the newest summary of the window (River never evaluates the cut with an empty `W1`).
    fn cut_totals(&self, i: usize) -> &[f64] {
        let len = if i == 0 {
            self.hist.len[0].saturating_sub(1)
        } else {
            self.hist.len[i]
        };
        &self.hist.slots.totals[self.hist.base(i)..self.hist.base(i) + len]
    }

    /// The first, cheapest whole-scan certificate: false proves that no cut point passes
    /// River's test (true: can't tell, try [`Adwin::cut_possible`]).
    ///
    /// The test of [`Adwin::cut_possible`], `(|D| + δ)² W <= 2 V δ' n0 n1` with
    /// `D = u0 - μ n0`, but with each summary's stored end standing in for River's running
    /// sum `u0` and its stored count for `n0`, over every slot of the rows (unused ones have
    /// count 0, which the `n0 >= min_window_length` mask drops) and every pending value (as
    /// the one-value summary it will be; compressing can only merge cut points away, so this
    /// covers River's cut points after the compression). No running sum: the slots are
    /// independent of one another and the loop vectorises. The ends are River's running
    /// total of the values (or, after a restore, a running sum of the summaries' totals),
    /// which differ from River's `u0` (a sum of summaries' totals) by at most
    /// `(W + 64) 2^-53 Σ|x|` each, up to second-order terms; so `δ` here adds
    /// `(W + 128) 2^-51 (|T| + Σ|x|)` to the bound of [`Adwin::cut_possible`]. The newest
    /// value's count is `W` (`n1 = 0`): masked, as River never evaluates that cut.
    #[inline(always)]
    fn cut_possible_by_ends(&mut self, var_w: f64, delta_prime: f64, total: f64) -> bool {
        let Some(p) = self.certificate_params(var_w, delta_prime, total) else {
            return true;
        };
        let n = self.n_pending;
        let hist = &self.hist;
        // The histogram first: its test needs only `p`, so it can run while River's running
        // total of the newest values (the pending ends) is still being summed.
        if let Some(standing) = self.standing.filter(|s| s.covers(&p)) {
            // The older cut points are covered: test the rows holding newer ones.
            let rows = hist.rows_newer_than(standing.max_count);
            if rows <= standing.rows + 2 {
                let newer = hist.base(rows);
                let older = p.possible(&hist.slots.ends[..newer], &hist.slots.counts[..newer]);
                return older | p.possible(&self.pending.ends[..n], &self.pending.counts[..n]);
            }
        }
        let pending = p.possible(&self.pending.ends[..n], &self.pending.counts[..n]);
        let used = hist.base(hist.rows);
        let (ends, counts) = (&hist.slots.ends[..used], &hist.slots.counts[..used]);
        if pending | p.possible(ends, counts) {
            return true;
        }
        self.standing = Standing::over(&p, ends, counts).map(|mut s| {
            s.rows = hist.rows_newer_than(s.max_count);
            s
        });
        false
    }

    /// The constants of [`Adwin::cut_possible_by_ends`]' test for the window total `t`, or
    /// `None` where magnitudes could under- or overflow (leave it to River's arithmetic).
    ///
    /// `t` may be River's total summed in another order (see [`Adwin::fold_totals`]): a
    /// fold adds at most [`PENDING`] values, so it differs from River's by at most
    /// ~2^-45 (|T| + Σ|x|), which moves `μ n0` by no more; `δ` allows 2^-41 of that
    /// magnitude for it (on top of the rounding of the ends), and the magnitude itself is
    /// inflated by [`SLACK`].
    #[inline(always)]
    fn certificate_params(
        &self,
        var_w: f64,
        delta_prime: f64,
        t: f64,
    ) -> Option<CertificateParams> {
        let w = self.width;
        let c = 2.0 * var_w * delta_prime * (1.0 - SLACK);
        let magnitude = (t.abs() + self.abs_total) * (1.0 + SLACK);
        if !(c > 1e-250 && c < 1e250 && magnitude > 1e-100 && magnitude < 1e100 && w < 1e15) {
            return None;
        }
        let eps = 1.0 / (1u64 << 40) as f64
            + 1.0 / (1u64 << 41) as f64
            + (w + 128.0) * (1.0 / (1u64 << 51) as f64);
        Some(CertificateParams {
            w,
            mu: t / w,
            c,
            delta: magnitude * eps,
            mwl: self.min_window_length as f64,
        })
    }

    /// The second whole-scan certificate: false proves that no cut point passes River's
    /// test, so the scan can be skipped (true: can't tell, run River's scan).
    ///
    /// With `μ = T / W` and `D = u0 - μ n0` (the prefix sum's deviation from its share of
    /// the total), `u0/n0 - u1/n1 = W D / (n0 n1)`, and River's bound is at least
    /// `sqrt(2 V δ' W / (n0 n1))` (as `1/a + 1/b >= 1/n0 + 1/n1`). So no cut if
    /// `(|D| + δ)² W <= 2 V δ' n0 n1` at every cut point, where `δ = 2^-40 (|T| + Σ|t|)`
    /// covers the rounding of River's two running sums (at most a few hundred terms) and of
    /// this computation, and a relative [`SLACK`] covers the rest. This needs one running
    /// sum and a handful of multiplications per cut point: no division, root or branch.
    fn cut_possible(&self, var_w: f64, delta_prime: f64) -> bool {
        let (w, t) = (self.width, self.total);
        let mwl = self.min_window_length as f64;
        let c = 2.0 * var_w * delta_prime * (1.0 - SLACK);
        let abs_sum: f64 = (0..self.hist.rows)
            .map(|i| {
                let base = self.hist.base(i);
                let row = &self.hist.slots.totals[base..base + self.hist.len[i]];
                row.iter().map(|x| x.abs()).sum::<f64>()
            })
            .sum();
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
        for i in (0..self.hist.rows).rev() {
            let size = (1u64 << i) as f64;
            for &x in self.cut_totals(i) {
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
        self.hist.rows = 0;
        self.abs_total = 0.0;
        self.ends_valid = true;
        self.total = 0.0;
        self.variance = 0.0;
        self.width = 0.0;
        self.n_pending = 0;
        self.folded = 0;
        self.var_folded = 0;
        self.standing = None;
        self.delta_prime_at = (f64::INFINITY, 0.0);
        self.tick = 0;
        self.until_check = self.clock;
        self.drift = false;
        self.arm();
    }

    /// A non-finite value: ignored, but River's reset after a drift still happens.
    #[cold]
    fn skip(&mut self) {
        if self.drift {
            self.reset();
        }
    }
}

impl DriftDetector for Adwin {
    #[inline(always)]
    fn update(&mut self, x: f64) {
        if !x.is_finite() {
            return self.skip();
        }
        // After a drift the next update is an event (see `arm`), which resets first.
        self.insert(x);
        if self.n_pending == self.event_at {
            self.on_clock();
        }
    }

    #[inline]
    fn drift_detected(&self) -> bool {
        self.drift
    }

    /// The total is River's running total through the values not yet folded, summed here
    /// in River's order (fewer than `min(clock, 128)` additions).
    fn estimate(&self) -> f64 {
        let width = self.width + (self.n_pending - self.folded) as f64;
        if width == 0.0 {
            0.0
        } else {
            self.total_now() / width
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::splitmix::SplitMix64;

    /// River's ADWIN one value at a time, with none of the batching or certificates above:
    /// the reference the fast paths must match bit for bit.
    struct Reference {
        params: (f64, u32, u32, u32, u32),
        rows: Vec<Vec<(f64, f64)>>,
        total: f64,
        variance: f64,
        width: f64,
        tick: u64,
        drift: bool,
    }

    impl Reference {
        fn new(params: (f64, u32, u32, u32, u32)) -> Self {
            Reference {
                params,
                rows: Vec::new(),
                total: 0.0,
                variance: 0.0,
                width: 0.0,
                tick: 0,
                drift: false,
            }
        }

        fn update(&mut self, x: f64) -> bool {
            if self.drift {
                *self = Reference::new(self.params);
            }
            if !x.is_finite() {
                return false;
            }
            self.insert(x);
            self.tick += 1;
            let (_, clock, _, _, grace) = self.params;
            if self.tick % u64::from(clock) == 0 && self.width > f64::from(grace) {
                while self.cut() {
                    self.drift = true;
                }
            }
            self.drift
        }

        fn insert(&mut self, x: f64) {
            if self.rows.is_empty() {
                self.rows.push(Vec::new());
            }
            self.rows[0].push((x, 0.0));
            self.width += 1.0;
            if self.width > 1.0 {
                let d = x - self.total / (self.width - 1.0);
                self.variance += (self.width - 1.0) * d * d / self.width;
            }
            self.total += x;
            let mut i = 0;
            while self.rows[i].len() == self.params.2 as usize + 1 {
                let (t0, v0) = self.rows[i].remove(0);
                let (t1, v1) = self.rows[i].remove(0);
                let n = (1u64 << i) as f64;
                let (mu0, mu1) = (t0 / n, t1 / n);
                if i + 1 == self.rows.len() {
                    self.rows.push(Vec::new());
                }
                let v = v0 + v1 + n * 0.5 * (mu0 - mu1) * (mu0 - mu1);
                self.rows[i + 1].push((t0 + t1, v));
                i += 1;
            }
        }

        fn cut(&mut self) -> bool {
            let (delta, _, _, mwl, _) = self.params;
            let mwl = f64::from(mwl);
            let dp = (2.0 * self.width.ln() / delta).ln();
            let var_w = self.variance / self.width;
            let (mut n0, mut n1, mut u0, mut u1) = (0.0, self.width, 0.0, self.total);
            let newest = (0, self.rows[0].len() - 1);
            for i in (0..self.rows.len()).rev() {
                let size = (1u64 << i) as f64;
                for (k, &(t, _)) in self.rows[i].iter().enumerate() {
                    if (i, k) == newest {
                        break;
                    }
                    n0 += size;
                    n1 -= size;
                    u0 += t;
                    u1 -= t;
                    if n1 < mwl || n0 < mwl {
                        continue;
                    }
                    let m = 1.0 / (n0 - mwl + 1.0) + 1.0 / (n1 - mwl + 1.0);
                    let eps = (2.0 * m * var_w * dp).sqrt() + 2.0 / 3.0 * dp * m;
                    if ((u0 / n0) - (u1 / n1)).abs() > eps {
                        self.drop_oldest();
                        return true;
                    }
                }
            }
            false
        }

        fn drop_oldest(&mut self) {
            let last = self.rows.len() - 1;
            let n = (1u64 << last) as f64;
            let (u, v) = self.rows[last].remove(0);
            let mu = u / n;
            self.width -= n;
            self.total -= u;
            let mu_window = self.total / self.width;
            self.variance -=
                v + n * self.width * (mu - mu_window) * (mu - mu_window) / (n + self.width);
            while self.rows.last().is_some_and(|r| r.is_empty()) {
                self.rows.pop();
            }
        }
    }

    /// One of a few kinds of stream (binary, Gaussian, offset and scaled, with repeats and
    /// the odd NaN), shifting half way.
    fn value(rng: &mut SplitMix64, kind: u64, i: usize, len: usize) -> f64 {
        let shift = if i > len / 2 { 0.5 } else { 0.0 };
        match kind {
            0 => f64::from(u8::from(rng.uniform() < 0.2 + shift * 0.4)),
            1 => rng.normal() + shift,
            2 => 1e6 + 1e-3 * (rng.uniform() + shift),
            3 if rng.uniform() < 0.001 => f64::NAN,
            3 => (i % 7) as f64 * 1e-6,
            _ => (rng.normal() * 1e3).round() / 1e3 - 3.0 + shift * 4.0,
        }
    }

    #[test]
    fn matches_the_one_value_at_a_time_reference_bit_for_bit() {
        assert_matches_reference();
    }

    #[test]
    fn every_instruction_set_variant_matches_the_reference_too() {
        // The test above runs the widest variant this CPU has; this one runs each narrower
        // one the CPU supports, down to the baseline every target has.
        let mut variants = vec![Isa::Baseline];
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            variants.push(Isa::Avx2);
        }
        for v in variants {
            ISA_FOR_TESTS.set(Some(v));
            assert_eq!(isa(), v);
            assert_matches_reference();
        }
    }

    fn assert_matches_reference() {
        let mut rng = SplitMix64(26);
        let mut drifts = 0;
        for case in 0..300 {
            let pick = |rng: &mut SplitMix64, n: u64| rng.next_u64() % n;
            let clock = [1, 2, 5, 32, 32, 100, 200][pick(&mut rng, 7) as usize];
            let max_buckets = [2, 3, 5, 5, 12][pick(&mut rng, 5) as usize];
            let mwl = [1, 5, 10][pick(&mut rng, 3) as usize];
            let grace = [0, 10, 50][pick(&mut rng, 3) as usize];
            let delta = [0.002, 0.1, 0.5][pick(&mut rng, 3) as usize];
            let params = (delta, clock, max_buckets, mwl, grace);
            let (len, kind) = (100 + pick(&mut rng, 3000) as usize, pick(&mut rng, 5));
            let restore_at = pick(&mut rng, len as u64) as usize;
            let mut reference = Reference::new(params);
            let mut adwin = Adwin::new(delta, clock, max_buckets, mwl, grace).unwrap();
            for i in 0..len {
                let x = value(&mut rng, kind, i, len);
                let expected = reference.update(x);
                adwin.update(x);
                assert_eq!(adwin.drift_detected(), expected, "case {case} at {i}");
                drifts += usize::from(expected);
                if i == restore_at {
                    let json = serde_json::to_string(&adwin).unwrap();
                    adwin = serde_json::from_str(&json).unwrap();
                }
                if i % 97 == 0 || i + 1 == len {
                    let r = &reference;
                    assert_eq!(adwin.total().to_bits(), r.total.to_bits(), "case {case}");
                    assert_eq!(adwin.width(), r.width as u64, "case {case}");
                    let variance = if r.width > 1.0 {
                        r.variance / (r.width - 1.0)
                    } else {
                        0.0
                    };
                    assert_eq!(
                        adwin.variance().to_bits(),
                        variance.to_bits(),
                        "case {case}"
                    );
                }
            }
            let state: AdwinState = adwin.clone().into();
            let rows: Vec<Vec<(u64, u64)>> = state
                .window
                .rows
                .iter()
                .map(|r| r.iter().map(|b| (b.0.to_bits(), b.1.to_bits())).collect())
                .collect();
            let expected: Vec<Vec<(u64, u64)>> = reference
                .rows
                .iter()
                .map(|r| r.iter().map(|b| (b.0.to_bits(), b.1.to_bits())).collect())
                .collect();
            if !reference.drift {
                assert_eq!(rows, expected, "case {case}: histogram");
            }
            assert_eq!(state.window.tick, reference.tick, "case {case}: tick");
        }
        assert!(
            drifts > 50,
            "the streams should drift now and then ({drifts})"
        );
    }
}
