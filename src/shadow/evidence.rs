//! The evidence a promotion needs: McNemar's test on paired predictions of the same rows,
//! one rule for the holdout tournament (`train::tournament`) and the shadow challengers.

/// Two-sided McNemar p-value from the discordant counts `b` (only the champion right) and
/// `c` (only the candidate right): exact binomial below 25 discordant pairs, else χ² with
/// continuity correction.
pub fn mcnemar_p(b: usize, c: usize) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    if n < 25 {
        let k = b.min(c);
        let mut coef = 1f64; // C(n, 0)
        let mut tail = 0f64;
        for i in 0..=k {
            if i > 0 {
                coef *= (n - i + 1) as f64 / i as f64;
            }
            tail += coef;
        }
        (2.0 * tail * 0.5f64.powi(n as i32)).min(1.0)
    } else {
        let d = (b as f64 - c as f64).abs() - 1.0;
        let chi2 = d.max(0.0).powi(2) / n as f64;
        erfc((chi2 / 2.0).sqrt())
    }
}

/// Complementary error function (Numerical Recipes `erfcc`, relative error < 1.2e-7).
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// One-sided: the p-value that the challenger (right alone on `c` rows, against the
/// champion's `b`) is no better than the champion. Half the two-sided value when `c > b`,
/// else 1.
pub fn mcnemar_better_p(b: usize, c: usize) -> f64 {
    if c > b {
        mcnemar_p(b, c) / 2.0
    } else {
        1.0
    }
}
