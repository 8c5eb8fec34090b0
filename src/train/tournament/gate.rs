//! *Gate*: whether the chosen candidate replaces the champion (with `ties_keep_champion`,
//! a higher accuracy; a margin; then McNemar's test on the paired holdout predictions), as a
//! typed [`Verdict`].

use super::score::Scored;
use super::select::rank_key;
use super::{CandidateReport, Scores};
use crate::config::train::{SelectionMetric, TrainConfig};
use crate::domain::Strategy;
pub use crate::shadow::evidence::mcnemar_p;
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
