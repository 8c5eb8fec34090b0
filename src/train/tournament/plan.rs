//! *Plan*: validate the input, split off the holdout, window the pools.

use std::sync::atomic::AtomicBool;

use super::jobs::UpdateCtx;
use super::{UpdateOutcome, UpdateRequest};
use crate::config::train::TrainConfig;
use crate::domain::{CandidateSpec, Dataset, Strategy};
use crate::train::artifact::ModelArtifact;
use crate::train::strategy::{pools, Pools};
use crate::train::verdict::{KeepReason, Verdict};
use crate::train::{Result, TrainError};

/// The validated, time-ordered, split and windowed input of an update.
pub(super) struct Plan {
    pub(super) strategy: Strategy,
    pub(super) n_features: usize,
    pub(super) n_classes: usize,
    /// The champion's classes (the request's for a first model): fewer than `n_classes`
    /// when the rows hold new classes.
    pub(super) classes_before: usize,
    pub(super) old: Dataset,
    pub(super) new: Dataset,
    pub(super) holdout: Dataset,
    /// `refit_combined` with no new row: the holdout is the newest old rows, which the
    /// champion was most likely trained on (the comparison favours it; a tie keeps it).
    pub(super) holdout_from_old: bool,
    /// New rows to train on before the window is applied.
    pub(super) n_new_train: usize,
    pub(super) pools: Pools,
    pub(super) t_now: i64,
    pub(super) device: tch::Device,
}

impl Plan {
    pub(super) fn new(
        req: &UpdateRequest,
        champion: Option<&ModelArtifact>,
        old: &Dataset,
        new: &Dataset,
        cfg: &TrainConfig,
    ) -> Result<Plan> {
        cfg.validate().map_err(TrainError::Config)?;
        old.validate()?;
        new.validate()?;
        let n_features = match champion {
            Some(c) => c.arch.n_features,
            None if !new.is_empty() || old.is_empty() => new.n_features,
            None => old.n_features,
        };
        for (name, d) in [("old", old), ("new", new)] {
            if !d.is_empty() && d.n_features != n_features {
                return Err(TrainError::InvalidInput(format!(
                    "{name} rows have {} features, expected {n_features}",
                    d.n_features
                )));
            }
        }
        let n_classes = check_classes(req, champion, [old, new])?;
        old.validate_labels(n_classes)?;
        new.validate_labels(n_classes)?;
        let old = old.time_ordered();
        let new = new.time_ordered();
        let strategy = req.strategy.unwrap_or(cfg.strategy);
        let t_now = new.max_ts().or(old.max_ts()).unwrap_or(0);
        // Nothing new: `refit_combined` refits on the old rows alone, holding out their
        // newest part by the usual rule; every other strategy needs new rows.
        let holdout_from_old = champion.is_some()
            && strategy == Strategy::RefitCombined
            && new.is_empty()
            && !old.is_empty();
        let (old_train, new_train, holdout) = if holdout_from_old {
            let (old_train, holdout) = old.split_newest(cfg.holdout_fraction);
            (old_train, Dataset::empty(n_features), holdout)
        } else {
            let (new_train, holdout) = new.split_newest(cfg.holdout_fraction);
            (old.clone(), new_train, holdout)
        };
        let pools = pools(&old_train, &new_train, t_now, cfg, req.seed);
        Ok(Plan {
            strategy,
            n_features,
            n_classes,
            classes_before: champion.map_or(req.n_classes, |c| c.arch.n_classes),
            old,
            new,
            n_new_train: new_train.len(),
            holdout,
            holdout_from_old,
            pools,
            t_now,
            device: crate::train::device(cfg.device)?,
        })
    }

    pub(super) fn outcome(&self, champion: Option<&ModelArtifact>) -> UpdateOutcome {
        UpdateOutcome {
            strategy: self.strategy,
            bootstrap: champion.is_none(),
            chosen: None,
            verdict: Verdict::Keep(KeepReason::NothingTrained),
            promoted: false,
            champion_holdout: None,
            candidates: Vec::new(),
            n_holdout: self.holdout.len(),
            n_old_rows: self.pools.old.len(),
            n_new_train_rows: self.pools.new_train.len(),
            steps: 0,
            total_seconds: 0.0,
            reason: String::new(),
            grew_classes: (self.n_classes > self.classes_before).then_some(super::ClassGrowth {
                from: self.classes_before,
                to: self.n_classes,
            }),
        }
    }

    pub(super) fn ctx<'a>(
        &'a self,
        champion: Option<&'a ModelArtifact>,
        cfg: &'a TrainConfig,
        seed: u64,
        cancel: &'a AtomicBool,
    ) -> UpdateCtx<'a> {
        UpdateCtx {
            champion,
            pools: &self.pools,
            n_features: self.n_features,
            n_classes: self.n_classes,
            cfg,
            seed,
            cancel,
        }
    }

    /// What the update trains: `auto`'s candidates, or the one fixed strategy.
    pub(super) fn candidates(&self, cfg: &TrainConfig) -> Vec<CandidateSpec> {
        if self.strategy == Strategy::Auto {
            cfg.auto_candidates()
        } else {
            vec![CandidateSpec::plain(self.strategy)]
        }
    }
}

/// The update's classes: the request's, which must be the champion's, or with
/// `grow_classes` the most of the request's, the champion's and the rows' labels.
pub(super) fn check_classes(
    req: &UpdateRequest,
    champion: Option<&ModelArtifact>,
    rows: [&Dataset; 2],
) -> Result<usize> {
    if req.n_classes < 2 {
        return Err(TrainError::InvalidInput(format!(
            "n_classes must be >= 2, got {}",
            req.n_classes
        )));
    }
    let champion_classes = champion.map_or(req.n_classes, |c| c.arch.n_classes);
    if req.grow_classes {
        let labels = rows.iter().filter_map(|d| d.n_label_classes()).max();
        let n = champion_classes.max(req.n_classes).max(labels.unwrap_or(0));
        if n > crate::domain::MAX_CLASSES as usize {
            return Err(TrainError::InvalidInput(format!(
                "the labels need {n} classes, more than the {} a model can grow to",
                crate::domain::MAX_CLASSES
            )));
        }
        return Ok(n);
    }
    if champion_classes != req.n_classes {
        return Err(TrainError::InvalidInput(format!(
            "the champion has {champion_classes} classes, the request {}",
            req.n_classes
        )));
    }
    Ok(champion_classes)
}
