//! Training configuration: one [`TrainConfig`] per model, deserialisable from the daemon's
//! config file. Every field has a default, unknown fields are rejected.

use serde::{Deserialize, Serialize};

pub use crate::domain::{CandidateSpec, Strategy};

/// Where tensors live while training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DeviceChoice {
    /// CPU (deterministic; the fastest choice for small MLPs at batch 32).
    #[default]
    Cpu,
    /// CUDA device 0; an error if CUDA is not available.
    Cuda,
    /// CUDA if available, else CPU.
    Auto,
}

/// The metric `auto` ranks candidates by (the other one breaks ties).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SelectionMetric {
    /// Holdout accuracy, higher is better.
    #[default]
    Accuracy,
    /// Holdout log-loss, lower is better.
    LogLoss,
}

/// Early stopping on a validation split of each training job's rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EarlyStopping {
    /// Epochs without a validation-loss improvement before stopping. Default 10.
    pub patience: usize,
    /// Newest fraction (by timestamp) of a job's training rows held out for validation.
    /// Default 0.1.
    pub validation_fraction: f64,
    /// The validation loss must drop by more than this to count as an improvement. Default 0.
    pub min_delta: f64,
}

impl Default for EarlyStopping {
    fn default() -> Self {
        EarlyStopping {
            patience: 10,
            validation_fraction: 0.1,
            min_delta: 0.0,
        }
    }
}

/// What counts as training data at all. Ages are measured from the newest timestamp in the
/// new rows; `max_rows` keeps the newest rows. The holdout is chosen before the window is
/// applied and is never affected by it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Window {
    /// Drop rows older than this many seconds. Default: no limit.
    pub max_age_seconds: Option<i64>,
    /// Keep at most this many (newest) training rows. Default: no limit.
    pub max_rows: Option<usize>,
}

/// See [`TrainConfig::sample_budget`].
pub const DEFAULT_SAMPLE_BUDGET: usize = 150_000;

/// Per-model training configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// `false`: monitor only. driftd then never trains, scores or registers a version for this
    /// model (no bootstrap, no triggers); monitoring, drift detection, metrics and alerts work
    /// as before, and an imported champion is still served. Default true.
    pub enabled: bool,
    /// Hidden layer widths of a fresh model (relu). Default `[20, 10]`. Fine-tuning and
    /// ensembling keep the champion's architecture.
    pub hidden_layers: Vec<usize>,
    /// `cpu` (default), `cuda` or `auto` (CUDA when available). Training is deterministic for
    /// a seed on CPU only.
    pub device: DeviceChoice,
    /// libtorch intra-op threads. Default: in the daemon, one fewer than the cores (at least
    /// one), so that a core stays free for predictions while a model trains; in the backtest
    /// and the CLI, libtorch's own setting.
    pub num_threads: Option<i32>,
    /// Mini-batch size. Default 32.
    pub batch_size: usize,
    /// SGD momentum. Default 0.9.
    pub momentum: f64,
    /// Learning rate of a fresh fit. Default 0.01.
    pub fit_lr: f64,
    /// Epochs of a fresh fit. Default 150.
    pub fit_epochs: usize,
    /// Learning rate when fine-tuning. Default 0.001.
    pub finetune_lr: f64,
    /// Epochs when fine-tuning. Default 100.
    pub finetune_epochs: usize,
    /// Number of first hidden layers frozen when fine-tuning. Default 0.
    pub freeze_layers: usize,
    /// Optional early stopping. Default: off.
    pub early_stopping: Option<EarlyStopping>,
    /// A job is rejected as diverged when its epoch-end training loss exceeds this factor
    /// times `max(initial loss, 0.05)`, or is not finite. Default 10.
    pub divergence_factor: f64,
    /// Strategy used when the update request does not name one. Default `auto`.
    pub strategy: Strategy,
    /// Candidates of `auto`, in priority order (see `selection_tolerance_se`). Default: the
    /// six training strategies as in [`Strategy::AUTO_DEFAULT`]: `ensemble_combined`,
    /// `refit_combined`, `finetune_combined`, `ensemble_new`, `refit_new`, `finetune_new`.
    pub candidates: Vec<Strategy>,
    /// Newest fraction of the new rows held out (never trained on) for scoring. Default 0.2.
    pub holdout_fraction: f64,
    /// Metric `auto` ranks by. Default `accuracy`.
    pub selection_metric: SelectionMetric,
    /// One-standard-error rule of `auto`: candidates whose holdout metric is within this many
    /// standard errors of the best candidate's (accuracy: √(p(1−p)/n); log-loss: sd/√n) count
    /// as tied with it, and the first of them in `candidates` order is promoted, except that
    /// ensembles are not preferred while the champion's holdout accuracy is below the best
    /// candidate's. The promotion gate is applied to the best candidate. 0 = always the best.
    /// Default 1.0.
    pub selection_tolerance_se: f64,
    /// `auto` promotes the best candidate only if it beats the champion by more than this on
    /// the selection metric (accuracy points as a fraction, or log-loss). Default 0.0, i.e.
    /// strictly better.
    pub min_improvement: f64,
    /// If set, `auto` also requires an exact/chi² McNemar test on paired holdout predictions
    /// (candidate vs champion) to reject equality at this level. Default: off.
    pub mcnemar_alpha: Option<f64>,
    /// A promotion needs a model that is right on more holdout rows than the champion: a best
    /// candidate whose accuracy only equals the champion's (even with a lower log-loss) keeps
    /// it, and the one-standard-error rule prefers only candidates that are more accurate
    /// than the champion. Default false (see the README's "promotions on evidence" for what
    /// it costs without frequent `more_data` tries).
    pub ties_keep_champion: bool,
    /// Apply the gate of `auto` to fixed strategies too (otherwise a fixed strategy's model is
    /// promoted whenever it trains successfully). Default false.
    pub gate_fixed_strategies: bool,
    /// Fraction of the (windowed) old rows replayed, sampled with the request seed, in the
    /// `*_new` strategies. Default 0.
    pub replay_fraction: f64,
    /// What counts as data at all. Default: everything.
    pub window: Window,
    /// Exponential recency weights on the per-sample loss, halving every this many seconds
    /// before the newest training row (weights are normalised to mean 1). Default: off.
    pub recency_half_life_seconds: Option<f64>,
    /// Weight of the fresh member in `ensemble_*`; the champion's members share the rest in
    /// their existing proportions. Default 0.5.
    pub ensemble_new_member_weight: f64,
    /// Ensembles are trimmed to this many members by dropping the lowest-weight (oldest)
    /// ones. Default 5.
    pub max_ensemble_members: usize,
    /// Train the tournament's jobs together in one batched computation (default true);
    /// false trains them one by one (same results within float tolerance).
    pub batched_tournament: bool,
    /// Most training samples (steps × batch rows) one job sees, whatever its epochs and rows:
    /// a job stops after `ceil(sample_budget / batch_size)` steps. This bounds the time of an
    /// update whatever the length of the history. 0: no budget, epochs alone decide. Default
    /// 150 000 (the 150 epochs of a fresh fit on 1 000 rows).
    pub sample_budget: usize,
    /// Extra `auto` candidates: a fresh model on only the newest N training rows (old and new
    /// together), one per entry, so the holdout chooses how far back to learn from (a
    /// sliding window of several lengths). Default: none.
    pub window_candidates: Vec<usize>,
    /// An extra `auto` candidate that takes a few SGD steps from the champion on only the
    /// newest N training rows (`incremental_epochs` passes at `finetune_lr`), as an online
    /// learner would. Default: off.
    pub incremental_rows: Option<usize>,
    /// Passes of the incremental candidate over its rows. Default 5.
    pub incremental_epochs: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            enabled: true,
            hidden_layers: vec![20, 10],
            device: DeviceChoice::Cpu,
            num_threads: None,
            batch_size: 32,
            momentum: 0.9,
            fit_lr: 0.01,
            fit_epochs: 150,
            finetune_lr: 0.001,
            finetune_epochs: 100,
            freeze_layers: 0,
            early_stopping: None,
            divergence_factor: 10.0,
            strategy: Strategy::Auto,
            candidates: Strategy::AUTO_DEFAULT.to_vec(),
            holdout_fraction: 0.2,
            selection_metric: SelectionMetric::Accuracy,
            selection_tolerance_se: 1.0,
            min_improvement: 0.0,
            mcnemar_alpha: None,
            ties_keep_champion: false,
            gate_fixed_strategies: false,
            replay_fraction: 0.0,
            window: Window::default(),
            recency_half_life_seconds: None,
            ensemble_new_member_weight: 0.5,
            max_ensemble_members: 5,
            batched_tournament: true,
            sample_budget: DEFAULT_SAMPLE_BUDGET,
            window_candidates: Vec::new(),
            incremental_rows: None,
            incremental_epochs: 5,
        }
    }
}

impl TrainConfig {
    /// What `auto` trains, in priority order: `candidates`, then one fresh fit per
    /// `window_candidates` entry (shortest window last), then the incremental candidate.
    pub fn auto_candidates(&self) -> Vec<CandidateSpec> {
        let mut out: Vec<CandidateSpec> = Vec::new();
        let mut push = |c: CandidateSpec| {
            if !out.contains(&c) {
                out.push(c);
            }
        };
        self.candidates
            .iter()
            .for_each(|&s| push(CandidateSpec::plain(s)));
        let mut windows = self.window_candidates.clone();
        windows.sort_unstable_by(|a, b| b.cmp(a));
        for n in windows {
            push(CandidateSpec {
                strategy: Strategy::RefitCombined,
                recent_rows: Some(n),
            });
        }
        if let Some(n) = self.incremental_rows {
            push(CandidateSpec {
                strategy: Strategy::FinetuneCombined,
                recent_rows: Some(n),
            });
        }
        out
    }

    /// Checks ranges; called by [`crate::train::run_update`] (which reports an error as
    /// `TrainError::Config`). The message starts with the offending field's name.
    pub fn validate(&self) -> Result<(), String> {
        let bad = |m: String| Err(m);
        if self.hidden_layers.contains(&0) {
            return bad("hidden_layers must be positive".into());
        }
        if self.fit_epochs == 0 || self.finetune_epochs == 0 {
            return bad("fit_epochs and finetune_epochs must be at least 1".into());
        }
        if self.window_candidates.contains(&0) || self.incremental_rows == Some(0) {
            return bad("window_candidates and incremental_rows must be positive".into());
        }
        if self.incremental_epochs == 0 {
            return bad("incremental_epochs must be at least 1".into());
        }
        if self.window.max_rows == Some(0) || self.window.max_age_seconds.is_some_and(|a| a <= 0) {
            return bad("window.max_rows and window.max_age_seconds must be positive".into());
        }
        if self.batch_size == 0 {
            return bad("batch_size must be positive".into());
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad(format!("momentum must be in [0, 1), got {}", self.momentum));
        }
        for (n, v) in [("fit_lr", self.fit_lr), ("finetune_lr", self.finetune_lr)] {
            if !(v.is_finite() && v > 0.0) {
                return bad(format!("{n} must be positive, got {v}"));
            }
        }
        if !(0.0..1.0).contains(&self.holdout_fraction) {
            return bad(format!(
                "holdout_fraction must be in [0, 1), got {}",
                self.holdout_fraction
            ));
        }
        if !(0.0..=1.0).contains(&self.replay_fraction) {
            return bad(format!(
                "replay_fraction must be in [0, 1], got {}",
                self.replay_fraction
            ));
        }
        if self.divergence_factor.is_nan() || self.divergence_factor <= 1.0 {
            return bad("divergence_factor must be > 1".into());
        }
        if !(0.0..1.0).contains(&self.ensemble_new_member_weight)
            || self.ensemble_new_member_weight == 0.0
        {
            return bad("ensemble_new_member_weight must be in (0, 1)".into());
        }
        if self.max_ensemble_members < 2 {
            return bad("max_ensemble_members must be >= 2".into());
        }
        if let Some(h) = self.recency_half_life_seconds {
            if !(h.is_finite() && h > 0.0) {
                return bad("recency_half_life_seconds must be positive".into());
            }
        }
        if !(self.selection_tolerance_se >= 0.0 && self.selection_tolerance_se.is_finite()) {
            return bad("selection_tolerance_se must be >= 0".into());
        }
        if let Some(a) = self.mcnemar_alpha {
            if !(a > 0.0 && a < 1.0) {
                return bad("mcnemar_alpha must be in (0, 1)".into());
            }
        }
        if let Some(es) = &self.early_stopping {
            if es.patience == 0 || !(es.validation_fraction > 0.0 && es.validation_fraction < 1.0) {
                return bad(
                    "early_stopping needs patience >= 1 and validation_fraction in (0, 1)".into(),
                );
            }
        }
        if self
            .candidates
            .iter()
            .any(|s| matches!(s, Strategy::Auto | Strategy::None))
        {
            return bad("candidates must be training strategies (not none or auto)".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_serde() {
        let cfg: TrainConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(cfg, TrainConfig::default());
        assert_eq!(cfg.hidden_layers, vec![20, 10]);
        assert_eq!(cfg.candidates.len(), 6);
        cfg.validate().unwrap();
        let cfg: TrainConfig = serde_json::from_str(
            r#"{"strategy":"finetune_combined","window":{"max_rows":100},"early_stopping":{"patience":3}}"#,
        )
        .unwrap();
        assert_eq!(cfg.strategy, Strategy::FinetuneCombined);
        assert_eq!(cfg.window.max_rows, Some(100));
        assert_eq!(cfg.early_stopping.unwrap().validation_fraction, 0.1);
        assert!(serde_json::from_str::<TrainConfig>(r#"{"bogus":1}"#).is_err());
        for s in Strategy::TRAINING
            .iter()
            .chain([Strategy::None, Strategy::Auto].iter())
        {
            let j = serde_json::to_string(s).unwrap();
            assert_eq!(j, format!("\"{}\"", s.as_str()));
        }
    }
}
