//! The model-update strategies a trigger or a request names, and a tournament's candidates.

use serde::{Deserialize, Serialize};

/// How a model is updated when the policy decides it should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Keep the champion as it is.
    None,
    /// Continue training the champion (its weights and scaler) on the new rows.
    FinetuneNew,
    /// Continue training the champion on old + new rows.
    FinetuneCombined,
    /// Fit a fresh model (new scaler, He init) on the new rows.
    RefitNew,
    /// Fit a fresh model on old + new rows.
    RefitCombined,
    /// Average the champion's probabilities with a fresh model fit on the new rows.
    EnsembleNew,
    /// Average the champion's probabilities with a fresh model fit on old + new rows.
    EnsembleCombined,
    /// Train every configured candidate, score them on the holdout next to the champion and
    /// promote the best one if it beats the champion.
    Auto,
}

impl Strategy {
    /// The six strategies that train something (the default `auto` candidates).
    pub const TRAINING: [Strategy; 6] = [
        Strategy::FinetuneNew,
        Strategy::FinetuneCombined,
        Strategy::RefitNew,
        Strategy::RefitCombined,
        Strategy::EnsembleNew,
        Strategy::EnsembleCombined,
    ];

    /// The default `auto` candidates, in priority order (ties within one standard error go
    /// to the earlier one): all the data before new data only; among those, the ensemble
    /// with the champion, then a fresh fit, then fine-tuning.
    pub const AUTO_DEFAULT: [Strategy; 6] = [
        Strategy::EnsembleCombined,
        Strategy::RefitCombined,
        Strategy::FinetuneCombined,
        Strategy::EnsembleNew,
        Strategy::RefitNew,
        Strategy::FinetuneNew,
    ];

    /// The snake_case name used in configs and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::None => "none",
            Strategy::FinetuneNew => "finetune_new",
            Strategy::FinetuneCombined => "finetune_combined",
            Strategy::RefitNew => "refit_new",
            Strategy::RefitCombined => "refit_combined",
            Strategy::EnsembleNew => "ensemble_new",
            Strategy::EnsembleCombined => "ensemble_combined",
            Strategy::Auto => "auto",
        }
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One model a tournament trains: a strategy, on all its rows or on only the newest
/// `recent_rows` of the old and new training rows together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CandidateSpec {
    pub strategy: Strategy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recent_rows: Option<usize>,
}

impl CandidateSpec {
    /// `strategy` on the rows it names.
    pub fn plain(strategy: Strategy) -> Self {
        CandidateSpec {
            strategy,
            recent_rows: None,
        }
    }
}

impl std::fmt::Display for CandidateSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.recent_rows {
            None => write!(f, "{}", self.strategy),
            Some(n) => write!(f, "{}[newest {n}]", self.strategy),
        }
    }
}
