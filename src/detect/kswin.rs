//! KSWIN, drift detection with a windowed two-sample Kolmogorov-Smirnov test.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::{ensure, exact_f64, exact_f64_seq, DetectorError, DriftDetector};
use crate::feature_drift::prob_outside_square;
use crate::splitmix::SplitMix64;

pub(crate) const DEFAULT_ALPHA: f64 = 0.005;
pub(crate) const DEFAULT_WINDOW_SIZE: u32 = 100;
pub(crate) const DEFAULT_STAT_SIZE: u32 = 30;
/// Largest `stat_size` for which SciPy's `ks_2samp(method="auto")` uses the exact p-value,
/// the only method implemented here.
const MAX_EXACT_STAT_SIZE: u32 = 10_000;

const NAME: &str = "kswin";

/// KSWIN (Raab, Heusinger & Schleif, 2020) as River 0.26.1 implements it, for real values.
/// It keeps the last `window_size` values; once the window is full, every update draws
/// `stat_size` distinct positions at random among the oldest `window_size - stat_size`
/// values and compares those values with the newest `stat_size` values by a two-sample
/// Kolmogorov-Smirnov test (SciPy's exact two-sided p-value, as `ks_2samp(method="auto")`
/// computes it for these sizes). Drift: `p <= alpha` and statistic `D > 0.1`. No warning.
///
/// The random positions come from the crate's SplitMix64 ([`crate::splitmix`], whose state is one
/// `u64` and is part of the serialised state), not from Python's Mersenne Twister, so on the
/// same input the detection indices are *statistically* like River's but not identical.
///
/// [`estimate`](DriftDetector::estimate) is the mean of the values in the window (`0.0`
/// while it is empty); [`Kswin::p_value`] gives the last test's p-value.
///
/// # River quirks reproduced
///
/// * On a drift River replaces the window by its newest `stat_size` values, but the reset
///   on the next update discards the whole window anyway: after a drift the window refills
///   from empty and no test runs for `window_size - 1` updates.
/// * The RNG is re-seeded on every reset: with a fixed seed the same sequence of positions
///   is drawn after each drift. (Without a seed River draws a fresh one; here the next seed
///   is drawn from the current generator, which keeps a restored detector deterministic.)
/// * `p_value` starts at 0 and keeps the last test's value until a reset.
///
/// # Example
///
/// ```
/// use driftd::detect::{DriftDetector, Kswin};
///
/// // A tiny LCG (Knuth's MMIX constants) makes the input reproducible.
/// let mut state: u64 = 42;
/// let mut uniform = move || {
///     state = state
///         .wrapping_mul(6364136223846793005)
///         .wrapping_add(1442695040888963407);
///     (state >> 11) as f64 / (1u64 << 53) as f64
/// };
/// let mut kswin = Kswin::new(0.005, 100, 30, Some(42)).unwrap();
/// let mut drifts = Vec::new();
/// for i in 0..2000 {
///     // Uniform on [0, 1), then on [0.5, 1.5) from index 1000.
///     let x = uniform() + if i < 1000 { 0.0 } else { 0.5 };
///     kswin.update(x);
///     if kswin.drift_detected() {
///         drifts.push(i);
///     }
/// }
/// // driftd's own indices (River samples with another RNG, so its indices differ):
/// // the shift is found 29 updates after index 1000; 258, 651, 821 and 1416 are false
/// // alarms, which KSWIN raises at roughly 1.3 per 1000 stationary updates in River too.
/// assert_eq!(drifts, [258, 651, 821, 1029, 1416]);
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Kswin {
    #[serde(with = "exact_f64")]
    alpha: f64,
    window_size: u32,
    stat_size: u32,
    seed: Option<u64>,
    #[serde(with = "rng_state")]
    rng: SplitMix64,
    #[serde(with = "exact_f64_seq")]
    window: VecDeque<f64>,
    n: u64,
    #[serde(with = "exact_f64")]
    p_value: f64,
    drift: bool,
    /// Scratch buffers, rebuilt at every test.
    #[serde(skip)]
    scratch: Scratch,
}

#[derive(Clone, Debug, Default)]
struct Scratch {
    pool: Vec<u32>,
    older: Vec<f64>,
    newer: Vec<f64>,
}

/// The generator's state as snapshots store it: `{"state": n}`.
mod rng_state {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::splitmix::SplitMix64;

    #[derive(Serialize, Deserialize)]
    struct State {
        state: u64,
    }

    pub fn serialize<S: Serializer>(rng: &SplitMix64, s: S) -> Result<S::Ok, S::Error> {
        State { state: rng.0 }.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SplitMix64, D::Error> {
        State::deserialize(d).map(|s| SplitMix64(s.state))
    }
}

impl Default for Kswin {
    /// River's defaults: `alpha = 0.005, window_size = 100, stat_size = 30`, and (like River's
    /// `seed=None`) a seed drawn from the operating system.
    fn default() -> Self {
        Self::new(DEFAULT_ALPHA, DEFAULT_WINDOW_SIZE, DEFAULT_STAT_SIZE, None)
            .expect("defaults are valid")
    }
}

impl Kswin {
    /// Parameters in River's order (without River's initial `window`). `alpha` in [0, 1];
    /// `1 <= stat_size`, `2 · stat_size <= window_size` (the random sample is drawn without
    /// replacement from the `window_size - stat_size` older values), `stat_size <= 10000`.
    /// `seed: None` draws one from the operating system.
    pub fn new(
        alpha: f64,
        window_size: u32,
        stat_size: u32,
        seed: Option<u64>,
    ) -> Result<Self, DetectorError> {
        ensure((0.0..=1.0).contains(&alpha), NAME, "alpha", || {
            format!("must be between 0 and 1, got {alpha}")
        })?;
        ensure(stat_size >= 1, NAME, "stat_size", || {
            "must be at least 1".into()
        })?;
        ensure(stat_size <= MAX_EXACT_STAT_SIZE, NAME, "stat_size", || {
            format!("must be at most {MAX_EXACT_STAT_SIZE}, got {stat_size}")
        })?;
        ensure(
            u64::from(stat_size) * 2 <= u64::from(window_size),
            NAME,
            "stat_size",
            || format!("must be at most half of window_size ({window_size}), got {stat_size}"),
        )?;
        let state = seed.unwrap_or_else(rand::random::<u64>);
        Ok(Self {
            alpha,
            window_size,
            stat_size,
            seed,
            rng: SplitMix64(state),
            window: VecDeque::with_capacity(window_size as usize),
            n: 0,
            p_value: 0.0,
            drift: false,
            scratch: Scratch::default(),
        })
    }

    /// The p-value of the last test (`0.0` before the first one, as in River).
    pub fn p_value(&self) -> f64 {
        self.p_value
    }

    fn reset(&mut self) {
        let state = match self.seed {
            Some(seed) => seed,
            None => self.rng.next_u64(),
        };
        self.rng = SplitMix64(state);
        self.window.clear();
        self.n = 0;
        self.p_value = 0.0;
        self.drift = false;
    }

    fn test(&mut self) -> (f64, f64) {
        let ws = self.window_size as usize;
        let ss = self.stat_size as usize;
        let older_len = ws - ss;
        let Scratch { pool, older, newer } = &mut self.scratch;
        pool.clear();
        pool.extend(0..older_len as u32);
        older.clear();
        for i in 0..ss {
            let j = i + self.rng.below((older_len - i) as u64) as usize;
            pool.swap(i, j);
            older.push(self.window[pool[i] as usize]);
        }
        newer.clear();
        newer.extend(self.window.range(older_len..));
        ks_2samp_equal_sizes(older, newer)
    }
}

/// Two-sided two-sample Kolmogorov-Smirnov test for two samples of the same size `n`, as
/// SciPy's `ks_2samp(method="exact")`: returns `(D, p)` with `D = h / n`, `h` the largest
/// gap between the two empirical CDFs counted in values, and `p` the exact probability
/// `P(D_{n,n} >= h / n)` by SciPy's Horner-like alternating sum. Sorts its inputs.
fn ks_2samp_equal_sizes(a: &mut [f64], b: &mut [f64]) -> (f64, f64) {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len();
    a.sort_unstable_by(f64::total_cmp);
    b.sort_unstable_by(f64::total_cmp);
    let (mut i, mut j, mut h) = (0usize, 0usize, 0usize);
    while i < n && j < n {
        let v = if a[i] <= b[j] { a[i] } else { b[j] };
        while i < n && a[i] <= v {
            i += 1;
        }
        while j < n && b[j] <= v {
            j += 1;
        }
        h = h.max(i.abs_diff(j));
    }
    let d = h as f64 / n as f64;
    let p = if h == 0 {
        1.0
    } else {
        prob_outside_square(n as i64, h as i64).clamp(0.0, 1.0)
    };
    (d, p)
}

impl DriftDetector for Kswin {
    fn update(&mut self, x: f64) {
        if self.drift {
            self.reset();
        }
        if !x.is_finite() {
            return;
        }
        self.n += 1;
        if self.window.len() == self.window_size as usize {
            self.window.pop_front();
        }
        self.window.push_back(x);
        self.drift = false;
        if self.window.len() >= self.window_size as usize {
            let (statistic, p) = self.test();
            self.p_value = p;
            self.drift = p <= self.alpha && statistic > 0.1;
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
            self.window.iter().sum::<f64>() / self.window.len() as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SciPy 1.17.1 `ks_2samp(..., method="exact").pvalue` for two samples of 30 whose
    /// CDF gap is h values, h = 1..=30 (from `_compute_prob_outside_square(30, h)`).
    #[test]
    fn exact_p_values_match_scipy() {
        let expected: [f64; 30] = [
            1.0,
            0.9999999909208507,
            0.9988393756362763,
            0.9578462903438838,
            0.8079631540901643,
            0.5940706297759378,
            0.39294501397971776,
            0.23907300248018645,
            0.13500350250095441,
            0.07088798787114439,
            0.034580084963334506,
            0.015643390496754332,
            0.006548396368058784,
            0.0025300622362698397,
            0.0008995776840176799,
            0.0002933405491362055,
            8.737803591291227e-05,
            2.366488472641374e-05,
            5.795481973815609e-06,
            1.2750060342394341e-06,
            2.5000118318420276e-07,
            4.326943555111202e-08,
            6.531235554884833e-09,
            8.466416460035895e-10,
            9.236090683675521e-11,
            8.246509538996e-12,
            5.78702423789193e-13,
            2.993288398909619e-14,
            1.0146740335286845e-15,
            1.6911233892144742e-17,
        ];
        for (h, &want) in (1..=30).zip(expected.iter()) {
            let got = prob_outside_square(30, h).clamp(0.0, 1.0);
            assert_eq!(got.to_bits(), want.to_bits(), "h = {h}: {got} != {want}");
        }
    }

    #[test]
    fn ks_statistic_matches_scipy_with_ties() {
        // scipy.stats.ks_2samp(a, b) -> statistic 0.4, pvalue given below.
        let mut a: Vec<f64> = (0..10).map(|i| (i / 2) as f64).collect();
        let mut b: Vec<f64> = (0..10).map(|i| (i / 2 + 2) as f64).collect();
        let (d, p) = ks_2samp_equal_sizes(&mut a, &mut b);
        assert_eq!(d, 0.4);
        assert_eq!(p.to_bits(), 0.41752365281777043f64.to_bits(), "{p}");
    }

    #[test]
    fn sampled_positions_are_distinct() {
        let mut k = Kswin::new(0.005, 100, 30, Some(3)).unwrap();
        for i in 0..100 {
            k.update(i as f64);
        }
        let older = k.scratch.older.clone();
        let mut dedup = older.clone();
        dedup.dedup();
        assert_eq!(dedup.len(), 30);
        assert!(older.iter().all(|&v| v < 70.0));
    }

    #[test]
    fn fixed_seed_repeats_after_reset() {
        let mut k = Kswin::new(0.005, 100, 30, Some(9)).unwrap();
        let first = k.rng;
        let mut i = 0;
        while !k.drift_detected() {
            k.update(if i < 150 { 0.0 } else { 1.0 });
            i += 1;
            assert!(i < 300, "no drift");
        }
        assert_ne!(k.rng, first);
        k.update(0.5);
        assert_eq!(k.window.len(), 1);
        assert_eq!(k.rng, first);
    }
}
