//! A categorical feature's drift: its values are codes (see `domain::category`), compared by
//! category frequencies, never by order or distance.
//!
//! - **χ²**: Pearson's chi-square test of homogeneity on the 2 × K table of the reference's
//!   and the recent window's counts over the K categories seen on either side, as
//!   `scipy.stats.chi2_contingency(table, correction=False)`: the statistic
//!   `Σ (O − E)² / E` and its p-value, the chi-square survival function at `K − 1` degrees of
//!   freedom (1 with a single category: p = 1, statistic 0).
//! - **PSI** and **JS** over the same K category proportions (PSI's empty side counts as
//!   [`super::PSI_EPSILON`], as for the numeric bins).
//! - **Unseen share**: the fraction of the recent window's values in no reference category.

use std::collections::BTreeMap;

use super::stats;

/// The statistics of one categorical feature.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CategoricalStats {
    pub chi2: f64,
    pub chi2_pvalue: f64,
    pub psi: f64,
    pub js: f64,
    pub unseen_share: f64,
}

/// Compares the codes of `recent` with those of `reference`.
pub(crate) fn compare(reference: &[f32], recent: &[f32]) -> CategoricalStats {
    let mut counts: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for &v in reference {
        counts.entry(v as u32).or_default().0 += 1;
    }
    let mut unseen = 0u64;
    for &v in recent {
        let e = counts.entry(v as u32).or_default();
        unseen += u64::from(e.0 == 0);
        e.1 += 1;
    }
    let (r, q): (Vec<u64>, Vec<u64>) = counts.values().copied().unzip();
    let (chi2, chi2_pvalue) = chi2_homogeneity(&r, &q);
    CategoricalStats {
        chi2,
        chi2_pvalue,
        psi: stats::psi(&r, &q),
        js: stats::js_distance(&r, &q),
        unseen_share: unseen as f64 / recent.len().max(1) as f64,
    }
}

/// Pearson's statistic and p-value for two rows of counts over the same categories.
fn chi2_homogeneity(a: &[u64], b: &[u64]) -> (f64, f64) {
    let (na, nb) = (a.iter().sum::<u64>() as f64, b.iter().sum::<u64>() as f64);
    let n = na + nb;
    let mut stat = 0.0;
    for (&x, &y) in a.iter().zip(b) {
        let col = (x + y) as f64;
        for (obs, row) in [(x as f64, na), (y as f64, nb)] {
            let expected = row * col / n;
            stat += (obs - expected).powi(2) / expected;
        }
    }
    let dof = a.len().saturating_sub(1);
    if dof == 0 {
        return (0.0, 1.0);
    }
    (stat, chi2_sf(stat, dof as f64))
}

/// The chi-square survival function: Q(k/2, x/2), the regularized upper incomplete gamma.
pub(crate) fn chi2_sf(x: f64, k: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    gamma_q(k / 2.0, x / 2.0)
}

/// Q(a, x) by the series of P for x < a + 1, else by Lentz's continued fraction (Numerical
/// Recipes §6.2), both to a relative 1e-16.
fn gamma_q(a: f64, x: f64) -> f64 {
    let log_prefix = a * x.ln() - x - ln_gamma(a);
    if x < a + 1.0 {
        let (mut term, mut sum, mut ap) = (1.0 / a, 1.0 / a, a);
        for _ in 0..10_000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-17 {
                break;
            }
        }
        return 1.0 - sum * log_prefix.exp();
    }
    let tiny = 1e-300;
    let mut b = x + 1.0 - a;
    let mut c = 1.0 / tiny;
    let mut d = 1.0 / b;
    let mut h = d;
    for i in 1..10_000 {
        let an = -(i as f64) * (i as f64 - a);
        b += 2.0;
        d = an * d + b;
        if d.abs() < tiny {
            d = tiny;
        }
        c = b + an / c;
        if c.abs() < tiny {
            c = tiny;
        }
        d = 1.0 / d;
        let step = d * c;
        h *= step;
        if (step - 1.0).abs() < 1e-17 {
            break;
        }
    }
    log_prefix.exp() * h
}

/// ln Γ(a) for a > 0: Lanczos' approximation (g = 7, 9 terms), about 1e-15 relative.
fn ln_gamma(a: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if a < 0.5 {
        // Reflection: Γ(a) Γ(1 − a) = π / sin(πa).
        return (std::f64::consts::PI / (std::f64::consts::PI * a).sin()).ln() - ln_gamma(1.0 - a);
    }
    let a = a - 1.0;
    let t = a + 7.5;
    let s = G[1..]
        .iter()
        .enumerate()
        .fold(G[0], |s, (i, g)| s + g / (a + i as f64 + 1.0));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (a + 0.5) * t.ln() - t + s.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_survival_function_matches_closed_forms() {
        // k = 2: Q = exp(−x/2); k = 1: Q = erfc(sqrt(x/2)) (here at x = 3.841458820694124,
        // SciPy's chi2.ppf(0.95, 1)).
        for x in [0.1, 1.0, 5.0, 30.0] {
            let want = (-x / 2.0f64).exp();
            assert!(
                (chi2_sf(x, 2.0) - want).abs() < 1e-14 * want.max(1e-300),
                "{x}"
            );
        }
        assert!((chi2_sf(3.841_458_820_694_124, 1.0) - 0.05).abs() < 1e-12);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-13);
    }

    #[test]
    fn identical_frequencies_do_not_drift_and_new_categories_do() {
        let same = compare(&[1.0, 2.0, 2.0, 3.0], &[3.0, 2.0, 1.0, 2.0]);
        assert_eq!(
            (same.chi2, same.psi, same.js, same.unseen_share),
            (0.0, 0.0, 0.0, 0.0)
        );
        assert!((same.chi2_pvalue - 1.0).abs() < 1e-12);
        let moved = compare(&[1.0; 50], &[9.0; 50]);
        assert_eq!(moved.unseen_share, 1.0);
        assert!(moved.chi2_pvalue < 1e-20 && (moved.js - 1.0).abs() < 1e-12);
        let one = compare(&[4.0; 10], &[4.0; 10]);
        assert_eq!((one.chi2, one.chi2_pvalue), (0.0, 1.0));
    }
}
