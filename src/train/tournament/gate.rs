//! *Gate*: whether the chosen candidate replaces the champion (with `ties_keep_champion`,
//! a higher accuracy; a margin; then McNemar's test on the paired holdout predictions), as a
//! typed [`Verdict`].

use super::score::Scored;
use super::select::rank_key;
use super::{CandidateReport, Scores};
use crate::config::train::{SelectionMetric, TrainConfig};
use crate::domain::Strategy;
use crate::train::verdict::{Comparison, KeepReason, Promotion, Verdict};

/// Gate: whether the chosen candidate replaces the champion (see the module docs).
pub(super) fn gate(
    strategy: Strategy,
    scored: &[Scored],
    top: usize,
    chosen: usize,
    reports: &[CandidateReport],
    champion: Option<Scores>,
    cfg: &TrainConfig,
) -> Verdict {
    let best = &scored[top];
    if strategy != Strategy::Auto && !cfg.gate_fixed_strategies {
        return Verdict::Promote(Promotion::Fixed {
            candidate: best.cand.spec(),
        });
    }
    let (Some(bs), Some(ch)) = (best.cand.holdout, champion) else {
        return Verdict::Keep(KeepReason::NoHoldout);
    };
    let comparison = Comparison {
        best: best.cand.spec(),
        best_scores: bs,
        champion: ch,
        p_value: reports[best.report].mcnemar_p_value.unwrap_or(1.0),
    };
    if cfg.ties_keep_champion && bs.accuracy <= ch.accuracy {
        return Verdict::Keep(KeepReason::Tie { comparison });
    }
    if !beats(cfg.selection_metric, &bs, &ch, cfg.min_improvement) {
        return Verdict::Keep(KeepReason::NotBetter {
            comparison,
            min_improvement: cfg.min_improvement,
        });
    }
    if let Some(alpha) = cfg.mcnemar_alpha {
        if !(comparison.p_value < alpha && bs.accuracy > ch.accuracy) {
            return Verdict::Keep(KeepReason::McNemar { comparison, alpha });
        }
    }
    if chosen == top {
        return Verdict::Promote(Promotion::Best(comparison));
    }
    let c = &scored[chosen].cand;
    Verdict::Promote(Promotion::Preferred {
        comparison,
        chosen: c.spec(),
        scores: c.holdout.expect("a chosen candidate has holdout scores"),
        tolerance_se: cfg.selection_tolerance_se,
    })
}

/// Complementary error function (Numerical Recipes `erfcc`, relative error < 1.2e-7).
pub(super) fn erfc(x: f64) -> f64 {
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

/// `a` better than `b` under `metric` by more than `margin`; with a zero margin, strictly
/// better under the ranking (the metric, then the other metric on a tie).
pub(super) fn beats(metric: SelectionMetric, a: &Scores, b: &Scores, margin: f64) -> bool {
    if margin <= 0.0 {
        return rank_key(metric, a) < rank_key(metric, b);
    }
    match metric {
        SelectionMetric::Accuracy => a.accuracy - b.accuracy > margin,
        SelectionMetric::LogLoss => b.log_loss - a.log_loss > margin,
    }
}
