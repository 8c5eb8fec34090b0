//! Calibration maps: how often a model is right, given the score it gave.
//!
//! A map is fitted on pairs `(score, target)`: for a binary model the score is P(class 1)
//! and the target the label, so the map corrects the probability itself; for a multiclass
//! model the score is the probability of the predicted class and the target whether it was
//! right. Two methods:
//! - **isotonic**: the pool-adjacent-violators fit of a non-decreasing step function,
//!   interpolated linearly between the ends of its blocks and clamped outside them (the
//!   convention of scikit-learn's `IsotonicRegression(out_of_bounds="clip")`);
//! - **Platt**: a logistic regression on the score's log-odds, fitted by Newton's method.
//!
//! As in NannyML's CBPE, a fitted map is kept only if it lowers the expected calibration
//! error; unlike it, the comparison is cross-fitted (each half is judged by the map fitted on
//! the other half), so an isotonic map that merely memorises its rows is not kept.

use serde::{Deserialize, Serialize};

/// How a version's probabilities are calibrated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    #[default]
    Isotonic,
    Platt,
    /// The scores are used as they are.
    None,
}

/// A fitted map from a score in [0, 1] to a calibrated probability in [0, 1].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Calibration {
    /// The scores as they are: no fit, or a fit that did not lower the calibration error.
    #[default]
    Identity,
    /// Knots `(x, y)` of a non-decreasing piecewise-linear map, `x` strictly increasing.
    Isotonic { x: Vec<f64>, y: Vec<f64> },
    /// `sigmoid(a · logit(score) + b)`.
    Platt { a: f64, b: f64 },
}

/// Scores are clipped to this distance from 0 and 1 before their log-odds are taken.
const LOGIT_EPS: f64 = 1e-6;
/// Equal-width bins of the expected calibration error.
const ECE_BINS: usize = 10;
/// Fewer pairs than this are not worth a fit: the map stays the identity.
pub const MIN_PAIRS: usize = 20;

fn logit(p: f64) -> f64 {
    let p = p.clamp(LOGIT_EPS, 1.0 - LOGIT_EPS);
    (p / (1.0 - p)).ln()
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

impl Calibration {
    /// The calibrated probability of `score`.
    pub fn apply(&self, score: f64) -> f64 {
        match self {
            Calibration::Identity => score.clamp(0.0, 1.0),
            Calibration::Platt { a, b } => sigmoid(a * logit(score) + b),
            Calibration::Isotonic { x, y } => interpolate(x, y, score),
        }
    }

    /// Fits `method` on `pairs` of (score, target) and keeps the fit only if its cross-fitted
    /// expected calibration error is below that of the raw scores on the same rows.
    pub fn fit(method: Method, pairs: &[(f64, bool)]) -> Calibration {
        if method == Method::None || pairs.len() < MIN_PAIRS {
            return Calibration::Identity;
        }
        let (even, odd): (Vec<_>, Vec<_>) = pairs.iter().enumerate().partition(|(i, _)| i % 2 == 0);
        let even: Vec<(f64, bool)> = even.into_iter().map(|(_, p)| *p).collect();
        let odd: Vec<(f64, bool)> = odd.into_iter().map(|(_, p)| *p).collect();
        let crossed = |fit_on: &[(f64, bool)], judge: &[(f64, bool)]| {
            let map = fit_raw(method, fit_on);
            judge
                .iter()
                .map(|&(s, t)| (map.apply(s), t))
                .collect::<Vec<_>>()
        };
        let mut cross = crossed(&even, &odd);
        cross.extend(crossed(&odd, &even));
        let raw: Vec<(f64, bool)> = odd.iter().chain(&even).copied().collect();
        if expected_calibration_error(&cross) < expected_calibration_error(&raw) {
            fit_raw(method, pairs)
        } else {
            Calibration::Identity
        }
    }
}

fn fit_raw(method: Method, pairs: &[(f64, bool)]) -> Calibration {
    match method {
        Method::None => Calibration::Identity,
        Method::Isotonic => isotonic(pairs),
        Method::Platt => platt(pairs),
    }
}

/// The expected calibration error of (probability, outcome) pairs: the row-weighted mean,
/// over ten equal-width bins of the probability, of |mean probability − share of outcomes|.
pub fn expected_calibration_error(pairs: &[(f64, bool)]) -> f64 {
    if pairs.is_empty() {
        return 0.0;
    }
    let mut sum_p = [0f64; ECE_BINS];
    let mut sum_t = [0f64; ECE_BINS];
    let mut n = [0usize; ECE_BINS];
    for &(p, t) in pairs {
        let b = ((p.clamp(0.0, 1.0) * ECE_BINS as f64) as usize).min(ECE_BINS - 1);
        sum_p[b] += p;
        sum_t[b] += f64::from(u8::from(t));
        n[b] += 1;
    }
    (0..ECE_BINS)
        .filter(|&b| n[b] > 0)
        .map(|b| (sum_p[b] - sum_t[b]).abs())
        .sum::<f64>()
        / pairs.len() as f64
}

/// Pool adjacent violators over the pairs sorted by score (ties pooled first); each block
/// contributes its two ends as knots, as scikit-learn's thresholds do.
fn isotonic(pairs: &[(f64, bool)]) -> Calibration {
    let mut sorted: Vec<(f64, f64)> = pairs
        .iter()
        .filter(|(s, _)| s.is_finite())
        .map(|&(s, t)| (s.clamp(0.0, 1.0), f64::from(u8::from(t))))
        .collect();
    if sorted.is_empty() {
        return Calibration::Identity;
    }
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Blocks of (lowest score, highest score, target sum, weight).
    let mut blocks: Vec<(f64, f64, f64, f64)> = Vec::new();
    for (s, t) in sorted {
        match blocks.last_mut() {
            Some(last) if last.1 == s => {
                last.2 += t;
                last.3 += 1.0;
            }
            _ => blocks.push((s, s, t, 1.0)),
        }
        while blocks.len() >= 2 {
            let k = blocks.len();
            let (lo, hi) = (blocks[k - 2], blocks[k - 1]);
            if lo.2 / lo.3 < hi.2 / hi.3 {
                break;
            }
            blocks[k - 2] = (lo.0, hi.1, lo.2 + hi.2, lo.3 + hi.3);
            blocks.pop();
        }
    }
    let mut x = Vec::with_capacity(blocks.len() * 2);
    let mut y = Vec::with_capacity(blocks.len() * 2);
    for (lo, hi, sum, w) in blocks {
        x.push(lo);
        y.push(sum / w);
        if hi > lo {
            x.push(hi);
            y.push(sum / w);
        }
    }
    Calibration::Isotonic { x, y }
}

fn interpolate(x: &[f64], y: &[f64], s: f64) -> f64 {
    let (Some(&x0), Some(&xn)) = (x.first(), x.last()) else {
        return s.clamp(0.0, 1.0);
    };
    if s.is_nan() {
        return y[0];
    }
    if s <= x0 {
        return y[0];
    }
    if s >= xn {
        return y[y.len() - 1];
    }
    // The first knot above s: x[i - 1] < s <= x[i].
    let i = x.partition_point(|&k| k < s);
    let (xa, xb, ya, yb) = (x[i - 1], x[i], y[i - 1], y[i]);
    ya + (yb - ya) * (s - xa) / (xb - xa)
}

/// Logistic regression of the target on logit(score) with a small ridge on both weights (so
/// that separable rows give a finite fit), by Newton's method on the two parameters.
fn platt(pairs: &[(f64, bool)]) -> Calibration {
    const RIDGE: f64 = 1e-3;
    let rows: Vec<(f64, f64)> = pairs
        .iter()
        .filter(|(s, _)| s.is_finite())
        .map(|&(s, t)| (logit(s), f64::from(u8::from(t))))
        .collect();
    let (mut a, mut b) = (1.0, 0.0);
    for _ in 0..50 {
        let (mut ga, mut gb) = (RIDGE * (a - 1.0), RIDGE * b);
        let (mut haa, mut hab, mut hbb) = (RIDGE, 0.0, RIDGE);
        for &(z, t) in &rows {
            let p = sigmoid(a * z + b);
            let w = (p * (1.0 - p)).max(1e-12);
            ga += (p - t) * z;
            gb += p - t;
            haa += w * z * z;
            hab += w * z;
            hbb += w;
        }
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-300 || !det.is_finite() {
            break;
        }
        let da = (hbb * ga - hab * gb) / det;
        let db = (haa * gb - hab * ga) / det;
        a -= da;
        b -= db;
        if da.abs() + db.abs() < 1e-10 {
            break;
        }
    }
    if a.is_finite() && b.is_finite() {
        Calibration::Platt { a, b }
    } else {
        Calibration::Identity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::splitmix::SplitMix64;

    /// Scores from a model that is overconfident: the true probability is 0.5 + (s − 0.5)/2.
    fn overconfident(n: usize, seed: u64) -> Vec<(f64, bool)> {
        let mut rng = SplitMix64(seed);
        (0..n)
            .map(|_| {
                let s = rng.uniform();
                let truth = 0.5 + (s - 0.5) / 2.0;
                (s, rng.uniform() < truth)
            })
            .collect()
    }

    #[test]
    fn isotonic_matches_a_hand_computed_pava() {
        // Targets by score: 0 1 0 1 1 → blocks {0}, {1, 0} pooled to 0.5, and {1, 1} (equal
        // neighbours are pooled too).
        let pairs = [
            (0.1, false),
            (0.2, true),
            (0.3, false),
            (0.4, true),
            (0.5, true),
        ];
        let Calibration::Isotonic { x, y } = isotonic(&pairs) else {
            panic!("isotonic");
        };
        assert_eq!(x, vec![0.1, 0.2, 0.3, 0.4, 0.5]);
        assert_eq!(y, vec![0.0, 0.5, 0.5, 1.0, 1.0]);
        let map = Calibration::Isotonic { x, y };
        assert_eq!(map.apply(0.0), 0.0);
        assert_eq!(map.apply(0.25), 0.5);
        assert!((map.apply(0.35) - 0.75).abs() < 1e-12);
        assert_eq!(map.apply(0.9), 1.0);
    }

    #[test]
    fn an_overconfident_model_is_pulled_toward_the_truth() {
        let pairs = overconfident(20_000, 7);
        for method in [Method::Isotonic, Method::Platt] {
            let map = Calibration::fit(method, &pairs);
            let kept = matches!(
                (method, &map),
                (Method::Isotonic, Calibration::Isotonic { .. })
                    | (Method::Platt, Calibration::Platt { .. })
            );
            assert!(kept, "the fit lowers the error, so it is kept: {map:?}");
            for s in [0.05, 0.2, 0.8, 0.95] {
                let truth = 0.5 + (s - 0.5) / 2.0;
                assert!(
                    (map.apply(s) - truth).abs() < 0.05,
                    "{method:?} {s}: {}",
                    map.apply(s)
                );
            }
            let after: Vec<_> = pairs.iter().map(|&(s, t)| (map.apply(s), t)).collect();
            assert!(expected_calibration_error(&after) < 0.3 * expected_calibration_error(&pairs));
        }
    }

    #[test]
    fn calibrated_scores_keep_the_identity() {
        let mut rng = SplitMix64(3);
        let pairs: Vec<(f64, bool)> = (0..4_000)
            .map(|_| {
                let s = rng.uniform();
                (s, rng.uniform() < s)
            })
            .collect();
        // Whatever is kept on well-calibrated scores stays near the identity.
        for method in [Method::Isotonic, Method::Platt] {
            let map = Calibration::fit(method, &pairs);
            for s in [0.1, 0.3, 0.5, 0.7, 0.9] {
                let d = (map.apply(s) - s).abs();
                assert!(d < 0.06, "{method:?} {s}: {}", map.apply(s));
            }
        }
        assert_eq!(
            Calibration::fit(Method::None, &pairs),
            Calibration::Identity
        );
        assert_eq!(
            Calibration::fit(Method::Platt, &pairs[..10]),
            Calibration::Identity
        );
    }

    #[test]
    fn separable_rows_give_a_finite_platt_fit() {
        let pairs: Vec<(f64, bool)> = (0..100).map(|i| (i as f64 / 100.0, i >= 50)).collect();
        let Calibration::Platt { a, b } = platt(&pairs) else {
            panic!("platt");
        };
        assert!(a.is_finite() && b.is_finite() && a > 1.0, "{a} {b}");
    }

    #[test]
    fn a_map_round_trips_through_json() {
        let map = isotonic(&overconfident(500, 1));
        let text = serde_json::to_string(&map).unwrap();
        assert!(text.starts_with(r#"{"method":"isotonic""#), "{text}");
        assert_eq!(serde_json::from_str::<Calibration>(&text).unwrap(), map);
    }
}
