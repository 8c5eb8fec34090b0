//! The training engine: K MLPs of one architecture trained together, one step for all K.
//!
//! # Layout
//! All parameters of all K models live in one flat tensor `P`; layer `l`'s weights are the
//! view `[K, out, in]` and its biases `[K, 1, out]`. The momentum buffers `V` have the same
//! layout, and so has a flat tensor `-lr` holding, per model and layer, minus the learning
//! rate (0 for frozen layers and for models that have finished).
//!
//! # One step (forward, backward and SGD-momentum by hand, no autograd)
//! ```text
//! a0 = x[K,B,in]; a_l = relu(baddbmm(b_l, a_{l-1}, W_lᵀ))      forward
//! dz_L = (σ(z_L) or softmax(z_L) − y) · c                        c = sample weight / batch rows
//! V *= μ                                                           momentum decay
//! V_W_l += dz_lᵀ a_{l-1};  V_b_l += 1ᵀ dz_l                       gradient into the buffer
//! dz_{l-1} = threshold_backward(dz_l W_l, a_{l-1})                 relu backward
//! P += V · (−lr)                                                    one fused update
//! ```
//! which is PyTorch's `SGD(momentum=μ, dampening=0)` on the mean (weighted) BCE-with-logits or
//! cross-entropy of the batch. About 25 small tensor ops per step whatever K is, so the K
//! models of a tournament cost little more than one.
//!
//! # Data streams and schedules
//! Each model (job) has its own rows, scaler, sample weights, learning rate, epoch count,
//! frozen layers and shuffling RNG. A job with `n` rows has `ceil(n / B)` steps per epoch (a
//! fresh permutation each epoch, the last batch partial) and `epochs × ceil(n / B)` steps in
//! all, capped at the job's `max_steps` (the sample budget, so that a job's cost does not grow
//! with its rows; the last epoch is then partial and ends the schedule). The engine runs until the *longest* job is done; at every step each running job
//! takes its own next batch, padded to `B` with a zero row of weight 0 when partial (the mean
//! is over the real rows). When a job has finished its own schedule (or stopped early, or
//! diverged) it leaves: the survivors' weights and momentum buffers are re-stacked into
//! smaller `[K', …]` tensors, so the remaining steps cost what K' models cost. Every job
//! therefore follows exactly the schedule it would have alone, so batched and one-by-one
//! training give the same weights up to float rounding, and the tournament costs the longest
//! job's steps at a K that shrinks as the shorter jobs finish.
//!
//! Rows for many steps are gathered with one `index_select` per chunk of steps (a few MiB)
//! and each step takes a view of the chunk.
//!
//! # Checks
//! Every step polls the cancel flag. At each of a job's epoch ends (and at its last step) its
//! training loss is computed on up to [`EVAL_ROWS`] of its rows; a non-finite loss, or one above
//! `divergence_factor × max(initial loss, 0.05)`, rejects that job with
//! [`TrainError::Diverged`]; the other jobs go on. With early stopping, the job's validation
//! loss is tracked and its best weights are restored at the end.

//!
//! # Files
//! `prepare.rs` (rows into a job), `rows.rs` (stacked rows, chunks of steps), `engine.rs`
//! (stacked parameters, one step), `run.rs` (a run, by stage); the job types, [`fit`] and
//! [`train_jobs`] here.

mod engine;
mod prepare;
mod rows;
mod run;
#[cfg(test)]
mod tests;

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::Device;

use super::artifact::Member;
use super::mlp::{Arch, Linear};
use super::{Result, TrainError};
use crate::config::train::{DeviceChoice, EarlyStopping, TrainConfig};
use crate::domain::Dataset;

pub(crate) use prepare::prepare_job;
use run::Run;

/// Rows used for the epoch-end training-loss (divergence) check.
pub const EVAL_ROWS: usize = 512;
/// Approximate bytes of gathered batch data per chunk of steps.
const CHUNK_BYTES: usize = 4 << 20;
/// Divergence threshold floor on the initial loss.
const LOSS_FLOOR: f64 = 0.05;
const INIT_SALT: u64 = 0x9e37_79b9_7f4a_7c15;
const SHUFFLE_SALT: u64 = 0xd1b5_4a32_d192_ed03;

/// One model to train.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub label: String,
    pub init: Vec<Linear>,
    /// Standardised training rows, row-major.
    pub x: Vec<f32>,
    pub y: Vec<f32>,
    /// Per-sample loss weights (mean 1), `None` = all 1.
    pub weights: Option<Vec<f32>>,
    /// Standardised validation rows for early stopping (may be empty).
    pub val_x: Vec<f32>,
    pub val_y: Vec<f32>,
    pub lr: f64,
    pub epochs: usize,
    /// At most this many steps, whatever the epochs (the sample budget).
    pub max_steps: Option<usize>,
    /// First hidden layers that are not updated.
    pub freeze: usize,
    pub seed: u64,
}

/// Options shared by the jobs of one engine run.
#[derive(Debug, Clone)]
pub(crate) struct EngineOpts {
    pub batch_size: usize,
    pub momentum: f64,
    pub divergence_factor: f64,
    pub early_stopping: Option<EarlyStopping>,
    pub device: Device,
}

impl EngineOpts {
    pub fn from_config(cfg: &TrainConfig) -> Result<Self> {
        Ok(EngineOpts {
            batch_size: cfg.batch_size,
            momentum: cfg.momentum,
            divergence_factor: cfg.divergence_factor,
            early_stopping: cfg.early_stopping.clone(),
            device: super::device(cfg.device)?,
        })
    }
}

/// What happened while training one model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FitStats {
    /// Epochs completed (fewer than configured after early stopping).
    pub epochs_run: usize,
    /// Optimiser steps taken by this model.
    pub steps: usize,
    /// Training loss (on up to [`EVAL_ROWS`] rows) before the first step.
    pub initial_loss: f64,
    /// Training loss after the last epoch.
    pub final_loss: f64,
    /// Best validation loss, with early stopping.
    pub best_val_loss: Option<f64>,
    pub stopped_early: bool,
    /// Wall time of the engine run that trained this model (shared by batched models).
    pub seconds: f64,
    /// Training rows (excluding the validation split).
    pub n_train_rows: usize,
}

pub(crate) type JobOutcome = std::result::Result<(Vec<Linear>, FitStats), TrainError>;

/// Options of a single [`fit`].
#[derive(Debug, Clone, PartialEq)]
pub struct FitOptions {
    pub lr: f64,
    pub epochs: usize,
    pub batch_size: usize,
    pub momentum: f64,
    pub seed: u64,
    pub freeze_layers: usize,
    pub early_stopping: Option<EarlyStopping>,
    pub divergence_factor: f64,
    pub recency_half_life_seconds: Option<f64>,
    pub device: DeviceChoice,
    /// See [`TrainConfig::sample_budget`].
    pub sample_budget: usize,
}

impl FitOptions {
    /// A fresh fit with `cfg`'s `fit_lr` / `fit_epochs`.
    pub fn fresh(cfg: &TrainConfig, seed: u64) -> Self {
        FitOptions {
            lr: cfg.fit_lr,
            epochs: cfg.fit_epochs,
            batch_size: cfg.batch_size,
            momentum: cfg.momentum,
            seed,
            freeze_layers: 0,
            early_stopping: cfg.early_stopping.clone(),
            divergence_factor: cfg.divergence_factor,
            recency_half_life_seconds: cfg.recency_half_life_seconds,
            device: cfg.device,
            sample_budget: cfg.sample_budget,
        }
    }

    /// Fine-tuning with `cfg`'s `finetune_lr` / `finetune_epochs` / `freeze_layers`.
    pub fn finetune(cfg: &TrainConfig, seed: u64) -> Self {
        FitOptions {
            lr: cfg.finetune_lr,
            epochs: cfg.finetune_epochs,
            freeze_layers: cfg.freeze_layers,
            ..FitOptions::fresh(cfg, seed)
        }
    }
}

/// Trains one model on `data`: from `init` (fine-tuning: its weights and scaler) or from a
/// fresh He-normal initialisation with a scaler fitted on `data`. Deterministic for a seed
/// on CPU. A diverged run is an error.
pub fn fit(
    arch: &Arch,
    data: &Dataset,
    init: Option<&Member>,
    opts: &FitOptions,
    cancel: &AtomicBool,
) -> Result<(Member, FitStats)> {
    arch.validate()?;
    data.validate()?;
    data.validate_labels(arch.n_classes)?;
    let spec = JobSpec {
        label: "fit".into(),
        lr: opts.lr,
        epochs: opts.epochs,
        max_steps: budget_steps(opts.sample_budget, opts.batch_size),
        freeze: opts.freeze_layers,
        seed: opts.seed,
    };
    let (job, scaler) = prepare_job(
        arch,
        data,
        init,
        &spec,
        opts.early_stopping.as_ref(),
        opts.recency_half_life_seconds,
    )?;
    let eopts = EngineOpts {
        batch_size: opts.batch_size,
        momentum: opts.momentum,
        divergence_factor: opts.divergence_factor,
        early_stopping: opts.early_stopping.clone(),
        device: super::device(opts.device)?,
    };
    let mut out = train_jobs(arch, std::slice::from_ref(&job), &eopts, cancel)?;
    let (layers, stats) = out.pop().expect("one job")?;
    Ok((Member::from_layers(scaler, &layers), stats))
}

/// Per-job training parameters.
#[derive(Debug, Clone)]
pub(crate) struct JobSpec {
    pub label: String,
    pub lr: f64,
    pub epochs: usize,
    /// Step cap from the sample budget (see [`budget_steps`]).
    pub max_steps: Option<usize>,
    pub freeze: usize,
    pub seed: u64,
}

/// Steps a sample budget allows at `batch_size` rows a step.
/// (0: no budget).
pub(crate) fn budget_steps(sample_budget: usize, batch_size: usize) -> Option<usize> {
    (sample_budget > 0).then(|| sample_budget.div_ceil(batch_size.max(1)))
}

/// Trains `jobs` (same architecture) together; see the module docs. The outer error is
/// cancellation (or a libtorch failure); each job's own failure (divergence) is its entry.
///
/// Stages: check the jobs, stack every job's rows in one tensor, take the initial losses
/// (rejecting non-finite data), run the steps chunk by chunk (epoch-end checks, re-stacking
/// when jobs leave), and hand back each job's weights.
pub(crate) fn train_jobs(
    arch: &Arch,
    jobs: &[Job],
    opts: &EngineOpts,
    cancel: &AtomicBool,
) -> Result<Vec<JobOutcome>> {
    let _guard = tch::no_grad_guard();
    let start = Instant::now();
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    check_jobs(arch, jobs, opts)?;
    let mut run = Run::new(arch, jobs, opts)?;
    let mut eng = run.first_engine()?;
    while !eng.slots.is_empty() {
        let Some(chunk) = run.gather_chunk(&eng.slots) else {
            break;
        };
        eng = run.train_chunk(eng, chunk, cancel)?;
    }
    // Jobs still stacked (none normally) leave with their current weights.
    for (slot, &j) in eng.slots.iter().enumerate() {
        run.states[j].last = Some(eng.params(slot as i64)?);
    }
    Ok(run.finish(start.elapsed().as_secs_f64()))
}

fn check_jobs(arch: &Arch, jobs: &[Job], opts: &EngineOpts) -> Result<()> {
    if opts.batch_size == 0 {
        return Err(TrainError::InvalidInput(
            "batch_size must be positive".into(),
        ));
    }
    let f = arch.n_features;
    let layers = arch.layer_dims().len();
    for job in jobs {
        if job.y.is_empty() || job.x.len() != job.y.len() * f || job.init.len() != layers {
            return Err(TrainError::InvalidInput(format!(
                "job {} is malformed or empty",
                job.label
            )));
        }
    }
    Ok(())
}
