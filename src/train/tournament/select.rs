//! *Select*: the best candidate by the selection metric and the one the one-standard-error
//! rule promotes.

use super::score::{Detail, Scored};
use super::Scores;
use crate::config::train::{SelectionMetric, TrainConfig};
use crate::domain::Strategy;

/// Select: the best candidate by the selection metric (ties: the other metric, then order),
/// and the one the one-standard-error rule promotes: the first in priority order within
/// `selection_tolerance_se` standard errors of the best. While the champion is beaten
/// outright on accuracy (drift), ensembles (which keep the champion's members) are not
/// preferred over the best on a tie. Returns (best, chosen) indices into `scored`.
pub(super) fn select(
    scored: &[Scored],
    champ: Option<&Detail>,
    cfg: &TrainConfig,
) -> (usize, usize) {
    let metric = cfg.selection_metric;
    let mut top = 0;
    for (i, sc) in scored.iter().enumerate() {
        if let (Some(a), Some(b)) = (&sc.detail, &scored[top].detail) {
            if rank_key(metric, &a.scores) < rank_key(metric, &b.scores) {
                top = i;
            }
        }
    }
    let Some(best) = &scored[top].detail else {
        return (top, top);
    };
    let tol = cfg.selection_tolerance_se * best.standard_error(metric);
    let stale = champ.is_some_and(|c| c.scores.accuracy < best.scores.accuracy);
    // With `ties_keep_champion`, the model promoted must itself be right more often than
    // the champion, not only the best candidate.
    let no_better = |d: &Detail| {
        cfg.ties_keep_champion && champ.is_some_and(|c| d.scores.accuracy <= c.scores.accuracy)
    };
    let chosen = scored
        .iter()
        .position(|sc| {
            let keeps_champion = matches!(
                sc.cand.strategy,
                Strategy::EnsembleNew | Strategy::EnsembleCombined
            );
            sc.detail
                .as_ref()
                .is_some_and(|d| within(metric, &d.scores, &best.scores, tol) && !no_better(d))
                && !(stale && keeps_champion)
        })
        .unwrap_or(top);
    (top, chosen)
}

/// `a` within `tol` of `best` on `metric`.
pub(super) fn within(metric: SelectionMetric, a: &Scores, best: &Scores, tol: f64) -> bool {
    match metric {
        SelectionMetric::Accuracy => a.accuracy >= best.accuracy - tol - 1e-12,
        SelectionMetric::LogLoss => a.log_loss <= best.log_loss + tol + 1e-12,
    }
}

/// Ordering key (smaller is better).
pub(super) fn rank_key(metric: SelectionMetric, s: &Scores) -> (f64, f64) {
    match metric {
        SelectionMetric::Accuracy => (-s.accuracy, s.log_loss),
        SelectionMetric::LogLoss => (s.log_loss, -s.accuracy),
    }
}
