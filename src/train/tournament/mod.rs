//! [`run_update`]: the daemon's entry point, in stages: *plan* (validate, split off the
//! holdout, window the pools), *train* (for `auto`, every candidate together in one batched
//! computation), *score* (everything on the holdout next to the champion), *select* (the
//! one-standard-error rule) and *gate* (promote or keep, a typed [`Verdict`]).
//!
//! Holdout: the newest `holdout_fraction` of the new rows by timestamp (at least one row when
//! there are two or more new rows). It is never trained on, except by the bootstrap fit
//! (no champion), which uses every row and reports in-sample holdout scores.
//!
//! Candidates of `auto` ([`TrainConfig::auto_candidates`]): the `candidates` strategies, then
//! a fresh fit on only the newest N rows per `window_candidates` entry (the holdout chooses
//! the window), then the incremental candidate (`incremental_rows`: a few passes from the
//! champion over the newest rows). Every job is bounded by `sample_budget`.
//!
//! Promotion: `auto` ranks the successful candidates by `selection_metric` (ties: the other
//! metric, then priority order). The gate: the best candidate must beat the
//! champion by more than `min_improvement` (0: strictly better under that ranking) and, with
//! `mcnemar_alpha`, McNemar's test on the paired holdout predictions must reject "equally
//! accurate" with the candidate ahead. If it passes, the promoted model is chosen by the
//! one-standard-error rule: the first candidate in priority order whose
//! holdout metric is within `selection_tolerance_se` standard errors of the best one's —
//! a small holdout (50 rows at the defaults) cannot tell candidates a few rows apart, and
//! the priority order (all data first; ensemble with the champion, refit, fine-tune; shorter
//! windows last) is the better bet then. Ensembles keep the champion's members, so while the
//! champion's holdout accuracy is below the best candidate's (drift) they are not preferred
//! on a tie. A fixed strategy's model is promoted whenever it trains, unless
//! `gate_fixed_strategies`.
//!
//! One file a stage: `plan.rs`, `jobs.rs` (train), `score.rs`, `select.rs`, `gate.rs`; the
//! request and outcome types and [`run_update`], which runs the stages, are here.

mod gate;
mod jobs;
mod plan;
mod score;
mod select;
#[cfg(test)]
mod tests;

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use gate::gate;
pub use gate::mcnemar_p;
use jobs::{train_candidates, train_keys};
use plan::Plan;
pub use score::score;
use score::{report, score_candidates, score_detail};
use select::select;

use super::artifact::ModelArtifact;
use super::encoding::{widen_inputs, Encoding};
use super::mlp::Arch;
use super::strategy::{pools, JobKey, Rows};
use super::verdict::{KeepReason, Promotion, Verdict};
use super::{Result, TrainError};
use crate::config::train::TrainConfig;
use crate::domain::{CandidateSpec, Dataset, HoldoutTrace, Strategy};
use crate::estimate::{Calibration, Method};

/// What the daemon asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UpdateRequest {
    /// Seeds initialisation, shuffling and replay sampling.
    pub seed: u64,
    /// Overrides `TrainConfig::strategy`.
    pub strategy: Option<Strategy>,
    /// Classes of the model (the model's config); used for the first model, and checked
    /// against the champion's otherwise. Default 2.
    pub n_classes: usize,
    /// How the chosen model's probabilities are calibrated on the holdout.
    pub calibration: Method,
    /// `classes = "grow"`: labels beyond the classes are new classes, which the update
    /// learns (a refit sizes its output from the rows, a fine-tune or an ensemble widens the
    /// champion's, see [`crate::train::widen`]). Otherwise they are an error.
    pub grow_classes: bool,
    /// Positions of the categorical features (their values are codes): one-hot encoded
    /// over a vocabulary of at most `max_categories` codes each (see
    /// [`crate::train::encoding`]).
    pub categorical: Vec<usize>,
    pub max_categories: usize,
}

impl Default for UpdateRequest {
    fn default() -> Self {
        UpdateRequest {
            seed: 0,
            strategy: None,
            n_classes: 2,
            calibration: Method::Isotonic,
            grow_classes: false,
            categorical: Vec::new(),
            max_categories: 32,
        }
    }
}

impl UpdateRequest {
    /// What `model`'s configuration asks of an update (its classes, their policy, its
    /// calibration and categorical features), seeded with `seed`.
    pub fn for_model(
        model: &crate::config::ModelConfig,
        seed: u64,
        strategy: Option<Strategy>,
    ) -> Self {
        UpdateRequest {
            seed,
            strategy,
            n_classes: model.class_count(),
            calibration: model.estimate.calibration,
            grow_classes: model.classes == crate::domain::Classes::Grow,
            categorical: model.categorical_indices(),
            max_categories: model.max_categories,
        }
    }

    pub fn new(seed: u64, strategy: Option<Strategy>) -> Self {
        UpdateRequest {
            seed,
            strategy,
            ..Default::default()
        }
    }
}

/// Holdout scores.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub accuracy: f64,
    /// Mean negative log-likelihood of the true class, probabilities clipped to [1e-7, 1-1e-7].
    pub log_loss: f64,
    pub n: usize,
}

/// A trained model ready to be registered.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub strategy: Strategy,
    /// Trained on only the newest this many rows (window and incremental candidates).
    pub recent_rows: Option<usize>,
    pub artifact: ModelArtifact,
    /// `None` when there was no holdout.
    pub holdout: Option<Scores>,
    pub train_seconds: f64,
    pub n_train_rows: usize,
    /// Its probabilities calibrated on the holdout (`None` without a holdout it was not
    /// trained on: the bootstrap's is in-sample).
    pub calibration: Option<Calibration>,
    /// Its predictions on the newest holdout rows (`None` as for the calibration).
    pub holdout_trace: Option<HoldoutTrace>,
}

impl Candidate {
    pub fn spec(&self) -> CandidateSpec {
        CandidateSpec {
            strategy: self.strategy,
            recent_rows: self.recent_rows,
        }
    }
}

/// One candidate's line in the outcome, successful or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateReport {
    pub strategy: Strategy,
    /// Trained on only the newest this many rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recent_rows: Option<usize>,
    pub holdout_accuracy: Option<f64>,
    pub holdout_log_loss: Option<f64>,
    /// Wall time of the training run(s) that produced it; candidates trained in one batched
    /// run share that run's time.
    pub train_seconds: f64,
    pub n_train_rows: usize,
    pub epochs_run: usize,
    /// Optimiser steps of its longest job.
    #[serde(default)]
    pub steps: usize,
    pub final_train_loss: Option<f64>,
    /// McNemar p-value against the champion (when a champion and a holdout exist).
    pub mcnemar_p_value: Option<f64>,
    /// Why it produced no model (diverged, ...).
    pub error: Option<String>,
}

/// Result of [`run_update`].
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateOutcome {
    /// The strategy that ran (request override or config).
    pub strategy: Strategy,
    /// No champion: the first model was fit on every row.
    pub bootstrap: bool,
    /// The selected model (the best `auto` candidate, or the fixed strategy's model), even
    /// when it is not promoted; `None` for `none` or when nothing trained.
    pub chosen: Option<Candidate>,
    /// What the gate decided.
    pub verdict: Verdict,
    /// `verdict.promotes()`: whether `chosen` should replace the champion.
    pub promoted: bool,
    /// The champion's holdout scores (`None` without champion or holdout).
    pub champion_holdout: Option<Scores>,
    pub candidates: Vec<CandidateReport>,
    pub n_holdout: usize,
    /// Rows in the (windowed) old and new training pools.
    pub n_old_rows: usize,
    pub n_new_train_rows: usize,
    /// Optimiser steps of all jobs together (the update's training cost).
    pub steps: usize,
    pub total_seconds: f64,
    /// `verdict.to_string()`.
    pub reason: String,
    /// When the rows held labels the champion (or the configuration, for a first model)
    /// had no class for: its classes before and after.
    pub grew_classes: Option<ClassGrowth>,
}

/// A model's classes before and after an update that learnt new ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassGrowth {
    pub from: usize,
    pub to: usize,
}

impl std::fmt::Display for ClassGrowth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "classes grew from {} to {}", self.from, self.to)?;
        if self.from <= 2 && self.to > 2 {
            f.write_str(" (binary became multiclass)")?;
        }
        Ok(())
    }
}

impl UpdateOutcome {
    fn decide(&mut self, verdict: Verdict, start: Instant) {
        self.promoted = verdict.promotes();
        self.reason = verdict.to_string();
        if let Some(g) = self.grew_classes {
            self.reason.push_str(&format!("; {g}"));
        }
        self.verdict = verdict;
        self.total_seconds = start.elapsed().as_secs_f64();
    }
}

/// Runs one model update; see the module docs. `old`: rows the champion was trained on;
/// `new`: labelled rows since its cut-off (both time-ordered; they are sorted if not).
/// Blocking and CPU/GPU-bound: call it from a blocking thread. `cancel` is polled every step.
///
/// Errors: [`TrainError::Cancelled`], invalid input, and a bootstrap fit that diverges. A
/// candidate that diverges is reported in its [`CandidateReport::error`] instead.
///
/// With categorical features, the update's vocabulary is learnt from `old` and `new` (the
/// champion's codes first), every row is encoded with it, and the champion takes the wider
/// inputs ([`crate::train::encoding::widen_inputs`]); the stages run on encoded rows, and
/// the chosen model carries the vocabulary. A champion without one (trained before its
/// features were declared categorical, or imported) keeps reading codes as numbers.
pub fn run_update(
    req: &UpdateRequest,
    champion: Option<&ModelArtifact>,
    old: &Dataset,
    new: &Dataset,
    cfg: &TrainConfig,
    cancel: &AtomicBool,
) -> Result<UpdateOutcome> {
    let encodes = !req.categorical.is_empty() && champion.is_none_or(|c| c.encoding.is_some());
    if !encodes {
        return run_encoded(req, champion, old, new, cfg, cancel);
    }
    let n_raw = champion.and_then(|c| c.encoding.as_ref()).map_or(
        if new.is_empty() {
            old.n_features
        } else {
            new.n_features
        },
        |e| e.n_raw,
    );
    if req.categorical.iter().any(|&i| i >= n_raw) {
        return Err(TrainError::InvalidInput(format!(
            "a categorical feature's position is beyond the {n_raw} features"
        )));
    }
    let previous = champion.and_then(|c| c.encoding.as_ref());
    let encoding = Encoding::learn(
        &[old, new],
        n_raw,
        &req.categorical,
        req.max_categories,
        previous,
    );
    let inputs = match (champion, previous) {
        (Some(c), Some(from)) => {
            let mut wide = widen_inputs(c, from, &encoding)?;
            wide.encoding = None;
            Some(wide)
        }
        _ => None,
    };
    let mut outcome = run_encoded(
        req,
        inputs.as_ref(),
        &encoding.encode_dataset(old),
        &encoding.encode_dataset(new),
        cfg,
        cancel,
    )?;
    if let Some(c) = outcome.chosen.as_mut() {
        c.artifact.encoding = Some(encoding);
    }
    Ok(outcome)
}

/// [`run_update`] on rows that are the network's inputs (encoded, or all numeric).
fn run_encoded(
    req: &UpdateRequest,
    champion: Option<&ModelArtifact>,
    old: &Dataset,
    new: &Dataset,
    cfg: &TrainConfig,
    cancel: &AtomicBool,
) -> Result<UpdateOutcome> {
    let start = Instant::now();
    let plan = Plan::new(req, champion, old, new, cfg)?;
    if let Some(n) = cfg.num_threads {
        tch::set_num_threads(n);
    }
    tch::manual_seed(req.seed as i64);
    let Some(champion) = champion else {
        return bootstrap(&plan, req, cfg, cancel, start);
    };
    champion.validate()?;
    // A class the champion never output: every candidate starts from the widened champion,
    // which the holdout also scores (it cannot predict the new class yet).
    let widened = (plan.n_classes > champion.arch.n_classes)
        .then(|| super::widen::widen(champion, plan.n_classes))
        .transpose()?;
    let champion = widened.as_ref().unwrap_or(champion);
    let mut outcome = plan.outcome(Some(champion));
    let champ_detail = if plan.holdout.is_empty() {
        None
    } else {
        Some(score_detail(champion, &plan.holdout, plan.device)?)
    };
    outcome.champion_holdout = champ_detail.as_ref().map(|d| d.scores);
    if plan.strategy == Strategy::None {
        outcome.decide(Verdict::Keep(KeepReason::StrategyNone), start);
        return Ok(outcome);
    }
    if plan.n_new_train == 0 && !plan.holdout_from_old {
        return Err(TrainError::InvalidInput("no new rows to train on".into()));
    }
    let specs = plan.candidates(cfg);
    let ctx = plan.ctx(Some(champion), cfg, req.seed, cancel);
    let trained = train_candidates(&specs, champion, &ctx)?;
    outcome.steps = trained
        .values()
        .filter_map(|t| t.as_ref().ok())
        .map(|t| t.stats.steps)
        .sum();
    let mut scored = score_candidates(
        &specs,
        champion,
        &trained,
        &plan,
        cfg,
        champ_detail.as_ref(),
        &mut outcome.candidates,
    )?;
    if scored.is_empty() {
        outcome.decide(Verdict::Keep(KeepReason::NothingTrained), start);
        return Ok(outcome);
    }
    let (top, chosen) = select(&scored, champ_detail.as_ref(), cfg);
    let verdict = gate(
        plan.strategy,
        &scored,
        top,
        chosen,
        &outcome.candidates,
        outcome.champion_holdout,
        cfg,
    );
    let mut cand = scored.swap_remove(chosen).cand;
    (cand.calibration, cand.holdout_trace) =
        on_holdout(&cand.artifact, &plan.holdout, req.calibration)?;
    tracing::info!(strategy = %plan.strategy, chosen = %cand.spec(), promoted = verdict.promotes(), "{verdict}");
    outcome.chosen = Some(cand);
    outcome.decide(verdict, start);
    if plan.holdout_from_old {
        outcome.reason.push_str(
            " (nothing new: the holdout is the newest old rows, which the champion was \
             trained on, so the comparison favours the champion)",
        );
    }
    Ok(outcome)
}

/// The chosen model on the holdout it was not trained on: its calibration (see
/// [`crate::estimate`]) and its newest predictions, which the detectors of the version it
/// becomes start from (see [`HoldoutTrace`]); `None` without a holdout.
fn on_holdout(
    artifact: &ModelArtifact,
    holdout: &Dataset,
    method: Method,
) -> Result<(Option<Calibration>, Option<HoldoutTrace>)> {
    if holdout.is_empty() {
        return Ok((None, None));
    }
    let p = super::artifact::predict_encoded(artifact, &holdout.x, tch::Device::Cpu)?;
    let label = |i: usize| holdout.y[i] as u32;
    let pairs: Vec<(f64, bool)> = (0..p.len())
        .map(|i| {
            if p.n_classes <= 2 {
                (f64::from(p.proba[i]), label(i) == 1)
            } else {
                let top = p.labels[i];
                (f64::from(p.prob(i, top as usize)), top == label(i))
            }
        })
        .collect();
    let trace = HoldoutTrace::newest((0..p.len()).map(|i| (p.stored(i) as f32, label(i))));
    Ok((Some(Calibration::fit(method, &pairs)), Some(trace)))
}

/// No champion: one fresh model on every row (holdout included), windowed.
fn bootstrap(
    plan: &Plan,
    req: &UpdateRequest,
    cfg: &TrainConfig,
    cancel: &AtomicBool,
    start: Instant,
) -> Result<UpdateOutcome> {
    let mut outcome = plan.outcome(None);
    let all = plan.old.concat(&plan.new)?;
    let empty = Dataset::empty(plan.n_features);
    let windowed = pools(&all, &empty, plan.t_now, cfg, req.seed).old;
    if windowed.is_empty() {
        return Err(TrainError::InvalidInput(
            "no rows to fit a first model on".into(),
        ));
    }
    let key = JobKey::Fresh {
        rows: Rows::All,
        hidden: cfg.hidden_layers.clone(),
    };
    let ctx = plan.ctx(None, cfg, req.seed, cancel);
    let mut trained = train_keys(std::slice::from_ref(&key), Some(&windowed), &ctx)?;
    let t = trained
        .remove(&key)
        .expect("bootstrap job")
        .map_err(TrainError::Diverged)?;
    let arch = Arch::new(plan.n_features, &cfg.hidden_layers, plan.n_classes);
    let artifact = ModelArtifact::single(arch, t.member);
    let scores = if plan.holdout.is_empty() {
        None
    } else {
        Some(score_detail(&artifact, &plan.holdout, plan.device)?.scores)
    };
    let spec = CandidateSpec::plain(Strategy::RefitCombined);
    outcome
        .candidates
        .push(report(spec, scores, &t.stats, None, None));
    outcome.chosen = Some(Candidate {
        strategy: spec.strategy,
        recent_rows: None,
        artifact,
        holdout: scores,
        train_seconds: t.stats.seconds,
        n_train_rows: t.stats.n_train_rows,
        calibration: None,
        holdout_trace: None,
    });
    outcome.n_old_rows = windowed.len();
    outcome.n_new_train_rows = 0;
    outcome.steps = t.stats.steps;
    let rows = windowed.len();
    outcome.decide(Verdict::Promote(Promotion::Bootstrap { rows }), start);
    Ok(outcome)
}
