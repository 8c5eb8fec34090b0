//! The outcome of an update's gate: [`Verdict::Promote`] or [`Verdict::Keep`], with why.
//! The text stored in `driftd.training_runs.reason` and in backtest reports is the
//! [`Display`](std::fmt::Display) of the verdict, so it is written in one place.

use super::tournament::Scores;
use crate::domain::CandidateSpec;

/// The best candidate against the champion on the holdout.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    pub best: CandidateSpec,
    pub best_scores: Scores,
    pub champion: Scores,
    /// McNemar p-value of the paired holdout predictions (1 when there was none).
    pub p_value: f64,
}

/// Why the new model replaces the champion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Promotion {
    /// No champion: the first model, fit on every row.
    Bootstrap { rows: usize },
    /// A fixed strategy (not gated) trained.
    Fixed { candidate: CandidateSpec },
    /// The best candidate passed the gate and is promoted.
    Best(Comparison),
    /// The best candidate passed the gate; `chosen`, earlier in priority order and within
    /// `tolerance_se` standard errors of it, is promoted.
    Preferred {
        comparison: Comparison,
        chosen: CandidateSpec,
        scores: Scores,
        tolerance_se: f64,
    },
}

/// Why the champion stays.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeepReason {
    /// The update asked for strategy `none`.
    StrategyNone,
    /// Every candidate failed (diverged, no rows).
    NothingTrained,
    /// No holdout rows to compare candidates with the champion.
    NoHoldout,
    /// The best candidate is not better than the champion by more than `min_improvement`.
    NotBetter {
        comparison: Comparison,
        min_improvement: f64,
    },
    /// McNemar's test does not reject "equally accurate" at `alpha`.
    McNemar { comparison: Comparison, alpha: f64 },
    /// `ties_keep_champion`: the best candidate is no more accurate than the champion (it
    /// may have a lower log-loss).
    Tie { comparison: Comparison },
}

/// What an update decided.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    Promote(Promotion),
    Keep(KeepReason),
}

impl Verdict {
    pub fn promotes(&self) -> bool {
        matches!(self, Verdict::Promote(_))
    }
}

impl std::fmt::Display for Comparison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (b, c) = (&self.best_scores, &self.champion);
        write!(
            f,
            "best candidate {}: holdout accuracy {:.4} / log-loss {:.4} vs champion {:.4} / {:.4} (n={}, McNemar p={:.3})",
            self.best, b.accuracy, b.log_loss, c.accuracy, c.log_loss, b.n, self.p_value
        )
    }
}

impl std::fmt::Display for Promotion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Promotion::Bootstrap { rows } => {
                write!(f, "bootstrap: first model fit on all {rows} rows")
            }
            Promotion::Fixed { candidate } => write!(f, "fixed strategy {candidate} trained"),
            Promotion::Best(c) => write!(f, "promote {c}"),
            Promotion::Preferred {
                comparison,
                chosen,
                scores,
                tolerance_se,
            } => write!(
                f,
                "{comparison} beats the champion; promote {chosen} (accuracy {:.4} / log-loss {:.4}), preferred within {tolerance_se} standard errors of the best",
                scores.accuracy, scores.log_loss
            ),
        }
    }
}

impl std::fmt::Display for KeepReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeepReason::StrategyNone => f.write_str("strategy none: champion kept"),
            KeepReason::NothingTrained => {
                f.write_str("no candidate trained successfully: champion kept")
            }
            KeepReason::NoHoldout => {
                f.write_str("no holdout to compare candidates with the champion: champion kept")
            }
            KeepReason::NotBetter {
                comparison,
                min_improvement,
            } => write!(
                f,
                "{comparison} does not beat the champion by more than {min_improvement}"
            ),
            KeepReason::McNemar { comparison, alpha } => {
                write!(f, "{comparison} fails McNemar at alpha {alpha}")
            }
            KeepReason::Tie { comparison } => write!(
                f,
                "{comparison} is not more accurate than the champion (ties_keep_champion)"
            ),
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Promote(p) => p.fmt(f),
            Verdict::Keep(k) => k.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::Strategy;

    #[test]
    fn the_reason_text_comes_from_display() {
        let s = |accuracy, log_loss| Scores {
            accuracy,
            log_loss,
            n: 50,
        };
        let comparison = Comparison {
            best: CandidateSpec {
                strategy: Strategy::RefitCombined,
                recent_rows: Some(500),
            },
            best_scores: s(0.9, 0.3),
            champion: s(0.8, 0.5),
            p_value: 0.04,
        };
        let promote = Verdict::Promote(Promotion::Best(comparison));
        assert!(promote.promotes());
        assert_eq!(
            promote.to_string(),
            "promote best candidate refit_combined[newest 500]: holdout accuracy 0.9000 / \
             log-loss 0.3000 vs champion 0.8000 / 0.5000 (n=50, McNemar p=0.040)"
        );
        let keep = Verdict::Keep(KeepReason::McNemar {
            comparison,
            alpha: 0.01,
        });
        assert!(!keep.promotes());
        assert!(keep.to_string().ends_with("fails McNemar at alpha 0.01"));
        assert_eq!(
            Verdict::Promote(Promotion::Bootstrap { rows: 7 }).to_string(),
            "bootstrap: first model fit on all 7 rows"
        );
    }
}
