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

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::artifact::Member;
use super::config::{DeviceChoice, EarlyStopping, TrainConfig};
use super::dataset::{recency_weights, Dataset};
use super::mlp::{he_init, Arch, Linear};
use super::scaler::Scaler;
use super::{Result, TrainError};

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
            device: cfg.device.resolve()?,
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
        device: opts.device.resolve()?,
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

/// Turns raw rows into a [`Job`]: the newest `validation_fraction` of the rows becomes the
/// validation split (with early stopping), the scaler is the parent's (fine-tuning) or fitted
/// on the training rows, rows are standardised, recency weights computed.
pub(crate) fn prepare_job(
    arch: &Arch,
    data: &Dataset,
    init: Option<&Member>,
    spec: &JobSpec,
    early_stopping: Option<&EarlyStopping>,
    half_life: Option<f64>,
) -> Result<(Job, Scaler)> {
    if data.n_features != arch.n_features {
        return Err(TrainError::InvalidInput(format!(
            "data has {} features, the model {}",
            data.n_features, arch.n_features
        )));
    }
    if data.is_empty() {
        return Err(TrainError::InvalidInput(format!(
            "no training rows for {}",
            spec.label
        )));
    }
    let data = data.time_ordered();
    let (train, val) = match early_stopping {
        Some(es) => data.split_newest(es.validation_fraction),
        None => (data, Dataset::empty(arch.n_features)),
    };
    let (scaler, init_layers) = match init {
        Some(m) => (m.scaler.clone(), m.layers(arch)?),
        None => (
            Scaler::fit(&train.x, arch.n_features),
            he_init(arch, spec.seed ^ INIT_SALT),
        ),
    };
    if scaler.n_features() != arch.n_features {
        return Err(TrainError::InvalidInput(
            "scaler and data disagree on n_features".into(),
        ));
    }
    let weights = match (half_life, train.max_ts()) {
        (Some(h), Some(t_ref)) => Some(recency_weights(&train.ts, t_ref, h)),
        _ => None,
    };
    let job = Job {
        label: spec.label.clone(),
        init: init_layers,
        x: scaler.transform(&train.x),
        y: train.y.clone(),
        weights,
        val_x: scaler.transform(&val.x),
        val_y: val.y.clone(),
        lr: spec.lr,
        epochs: spec.epochs,
        max_steps: spec.max_steps,
        freeze: spec.freeze.min(arch.hidden.len()),
        seed: spec.seed,
    };
    Ok((job, scaler))
}

/// Labels as the targets of the output layer: `[n, 1]` 0/1 for binary, one-hot otherwise.
fn targets(arch: &Arch, y: &[f32], out: &mut Vec<f32>) {
    let c = arch.n_outputs();
    if c == 1 {
        out.extend_from_slice(y);
    } else {
        for &v in y {
            let start = out.len();
            out.resize(start + c, 0.0);
            out[start + v as usize] = 1.0;
        }
    }
}

struct JobState {
    n: usize,
    steps_per_epoch: usize,
    total_steps: usize,
    offset: usize,
    perm: Vec<u32>,
    rng: StdRng,
    /// Still training (not finished, stopped or failed).
    running: bool,
    failed: Option<TrainError>,
    stats: FitStats,
    threshold: f64,
    bad_epochs: usize,
    /// Best weights so far (early stopping).
    snapshot: Option<Vec<Linear>>,
    /// Weights when the job left the engine.
    last: Option<Vec<Linear>>,
    eval: (Tensor, Tensor),
    val: Option<(Tensor, Tensor)>,
}

/// The stacked parameters of the jobs still running; slot `s` trains job `slots[s]`.
struct Engine<'a> {
    arch: &'a Arch,
    slots: Vec<usize>,
    /// Flat parameters, momentum and −lr.
    p: Tensor,
    v: Tensor,
    neg_lr: Tensor,
    w: Vec<Tensor>,
    wt: Vec<Tensor>,
    b: Vec<Tensor>,
    vw: Vec<Tensor>,
    vb: Vec<Tensor>,
    ones: Tensor,
    momentum: f64,
    /// Lowest layer any job updates (layers below are frozen for every job).
    min_layer: usize,
}

impl<'a> Engine<'a> {
    /// Stacks `params[s]` / `momentum[s]` (per slot, per layer) for the jobs `slots`.
    fn build(
        arch: &'a Arch,
        jobs: &[Job],
        slots: Vec<usize>,
        params: &[Vec<Linear>],
        momentum: &[Vec<Linear>],
        opts: &EngineOpts,
    ) -> Result<Self> {
        let k = slots.len() as i64;
        let dev = opts.device;
        let dims = arch.layer_dims();
        let mut pf = Vec::new();
        let mut vf = Vec::new();
        let mut offsets = Vec::with_capacity(dims.len());
        for l in 0..dims.len() {
            let w_off = pf.len();
            for (p, m) in params.iter().zip(momentum) {
                pf.extend_from_slice(&p[l].w);
                vf.extend_from_slice(&m[l].w);
            }
            let b_off = pf.len();
            for (p, m) in params.iter().zip(momentum) {
                pf.extend_from_slice(&p[l].b);
                vf.extend_from_slice(&m[l].b);
            }
            offsets.push((w_off, b_off));
        }
        let p = Tensor::f_from_slice(&pf)?.f_to_device(dev)?;
        let v = Tensor::f_from_slice(&vf)?.f_to_device(dev)?;
        let view = |t: &Tensor, off: usize, shape: [i64; 3]| -> Result<Tensor> {
            Ok(t.f_narrow(0, off as i64, shape.iter().product())?
                .f_view(shape)?)
        };
        let (mut w, mut wt, mut b, mut vw, mut vb) = (vec![], vec![], vec![], vec![], vec![]);
        for (&(w_off, b_off), &(inp, out)) in offsets.iter().zip(&dims) {
            let (inp, out) = (inp as i64, out as i64);
            let wl = view(&p, w_off, [k, out, inp])?;
            wt.push(wl.f_transpose(1, 2)?);
            w.push(wl);
            b.push(view(&p, b_off, [k, 1, out])?);
            vw.push(view(&v, w_off, [k, out, inp])?);
            vb.push(view(&v, b_off, [k, 1, out])?);
        }
        let min_layer = slots
            .iter()
            .map(|&j| jobs[j].freeze)
            .min()
            .unwrap_or(0)
            .min(dims.len() - 1);
        // −lr per parameter: 0 in a job's frozen layers.
        let mut lr = Vec::with_capacity(pf.len());
        for (l, &(inp, out)) in dims.iter().enumerate() {
            for per_model in [inp * out, out] {
                for &j in &slots {
                    let v = if l >= jobs[j].freeze {
                        -(jobs[j].lr as f32)
                    } else {
                        0.0
                    };
                    lr.extend(std::iter::repeat_n(v, per_model));
                }
            }
        }
        Ok(Engine {
            arch,
            neg_lr: Tensor::f_from_slice(&lr)?.f_to_device(dev)?,
            ones: Tensor::f_ones([k, 1, opts.batch_size as i64], (Kind::Float, dev))?,
            slots,
            p,
            v,
            w,
            wt,
            b,
            vw,
            vb,
            momentum: opts.momentum,
            min_layer,
        })
    }

    /// One SGD-momentum step of all K models on `x [K,B,in]`, `y [K,B,C]`, `c [K,B,1]`.
    fn step(&mut self, x: &Tensor, y: &Tensor, c: &Tensor) -> Result<()> {
        let n_layers = self.w.len();
        let mut acts: Vec<Tensor> = Vec::with_capacity(n_layers);
        acts.push(x.shallow_clone());
        for l in 0..n_layers - 1 {
            let mut z = self.b[l].f_baddbmm(&acts[l], &self.wt[l], 1.0, 1.0)?;
            let _ = z.f_relu_()?;
            acts.push(z);
        }
        let mut z = self.b[n_layers - 1].f_baddbmm(
            &acts[n_layers - 1],
            &self.wt[n_layers - 1],
            1.0,
            1.0,
        )?;
        let mut dz = if self.arch.is_binary() {
            let _ = z.f_sigmoid_()?;
            z
        } else {
            z.f_softmax(-1, Kind::Float)?
        };
        let _ = dz.f_sub_(y)?;
        let _ = dz.f_mul_(c)?;
        let _ = self.v.f_mul_scalar_(self.momentum)?;
        for l in (self.min_layer..n_layers).rev() {
            let _ = self.vw[l].f_baddbmm_(&dz.f_transpose(1, 2)?, &acts[l])?;
            let _ = self.vb[l].f_baddbmm_(&self.ones, &dz)?;
            if l > self.min_layer {
                let da = dz.f_bmm(&self.w[l])?;
                dz = acts[l].f_threshold_backward(&da, 0.0)?;
            }
        }
        let _ = self.p.f_addcmul_(&self.v, &self.neg_lr)?;
        Ok(())
    }

    /// Mean loss of slot `k` on `(x [m,in], y [m,C])`.
    fn loss(&self, k: i64, x: &Tensor, y: &Tensor) -> Result<f64> {
        let n_layers = self.w.len();
        let mut a = x.shallow_clone();
        for l in 0..n_layers {
            let w = self.w[l].f_select(0, k)?;
            let b = self.b[l].f_select(0, k)?;
            a = b.f_addmm(&a, &w.f_tr()?)?;
            if l + 1 < n_layers {
                let _ = a.f_relu_()?;
            }
        }
        let loss = if self.arch.is_binary() {
            (a.f_softplus()? - y * &a).f_mean(Kind::Float)?
        } else {
            let m = a.size()[0].max(1) as f64;
            (a.f_log_softmax(-1, Kind::Float)? * y).f_sum(Kind::Float)? * (-1.0 / m)
        };
        Ok(loss.f_double_value(&[])?)
    }

    fn layers_of(&self, w: &[Tensor], b: &[Tensor], k: i64) -> Result<Vec<Linear>> {
        let dims = self.arch.layer_dims();
        let mut out = Vec::with_capacity(dims.len());
        for (l, &(inp, o)) in dims.iter().enumerate() {
            let wl = w[l]
                .f_get(k)?
                .f_to_device(Device::Cpu)?
                .f_contiguous()?
                .f_reshape([-1])?;
            let bl = b[l]
                .f_get(k)?
                .f_to_device(Device::Cpu)?
                .f_contiguous()?
                .f_reshape([-1])?;
            out.push(Linear {
                inp,
                out: o,
                w: Vec::<f32>::try_from(&wl)?,
                b: Vec::<f32>::try_from(&bl)?,
            });
        }
        Ok(out)
    }

    /// Slot `k`'s weights.
    fn params(&self, k: i64) -> Result<Vec<Linear>> {
        self.layers_of(&self.w, &self.b, k)
    }

    /// Slot `k`'s momentum buffers.
    fn momentum_of(&self, k: i64) -> Result<Vec<Linear>> {
        self.layers_of(&self.vw, &self.vb, k)
    }
}

fn to_dev(data: &[f32], shape: &[i64], device: Device) -> Result<Tensor> {
    Ok(Tensor::f_from_slice(data)?
        .f_view(shape)?
        .f_to_device(device)?)
}

/// Rows (global indices) and loss coefficients of a chunk of steps, `[step][slot][B]`.
struct Chunk {
    idx: Vec<i64>,
    coef: Vec<f32>,
    steps: usize,
    slots: usize,
}

impl Chunk {
    /// Keeps steps `from..` and the slots `keep` (positions in the current slot list).
    fn retain(&self, from: usize, keep: &[usize], bs: usize) -> Chunk {
        let mut idx = Vec::with_capacity((self.steps - from) * keep.len() * bs);
        let mut coef = Vec::with_capacity(idx.capacity());
        for s in from..self.steps {
            for &k in keep {
                let o = (s * self.slots + k) * bs;
                idx.extend_from_slice(&self.idx[o..o + bs]);
                coef.extend_from_slice(&self.coef[o..o + bs]);
            }
        }
        Chunk {
            idx,
            coef,
            steps: self.steps - from,
            slots: keep.len(),
        }
    }

    fn tensors(
        &self,
        x_all: &Tensor,
        y_all: &Tensor,
        bs: usize,
        dev: Device,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let (s, k, b) = (self.steps as i64, self.slots as i64, bs as i64);
        let it = Tensor::f_from_slice(&self.idx)?.f_to_device(dev)?;
        let f = x_all.size()[1];
        let c = y_all.size()[1];
        Ok((
            x_all.f_index_select(0, &it)?.f_view([s, k, b, f])?,
            y_all.f_index_select(0, &it)?.f_view([s, k, b, c])?,
            to_dev(&self.coef, &[s, k, b, 1], dev)?,
        ))
    }
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

/// Every job's rows (and targets) in one device tensor, plus a final zero row for padding.
struct StackedRows {
    x: Tensor,
    y: Tensor,
    /// The padding row's index.
    pad: i64,
    /// Where each job's rows start.
    offsets: Vec<usize>,
}

impl StackedRows {
    fn new(arch: &Arch, jobs: &[Job], dev: Device) -> Result<Self> {
        let (f, c) = (arch.n_features, arch.n_outputs());
        let n_total: usize = jobs.iter().map(|j| j.y.len()).sum();
        let mut xs = Vec::with_capacity((n_total + 1) * f);
        let mut ys = Vec::with_capacity((n_total + 1) * c);
        let mut offsets = Vec::with_capacity(jobs.len());
        for job in jobs {
            offsets.push(xs.len() / f);
            xs.extend_from_slice(&job.x);
            targets(arch, &job.y, &mut ys);
        }
        xs.extend(std::iter::repeat_n(0.0, f));
        ys.extend(std::iter::repeat_n(0.0, c));
        Ok(StackedRows {
            x: to_dev(&xs, &[n_total as i64 + 1, f as i64], dev)?,
            y: to_dev(&ys, &[n_total as i64 + 1, c as i64], dev)?,
            pad: n_total as i64,
            offsets,
        })
    }
}

impl JobState {
    /// A job's schedule (epochs, capped by its step budget), RNG and check tensors.
    fn new(arch: &Arch, job: &Job, offset: usize, opts: &EngineOpts) -> Result<Self> {
        let (f, c, dev) = (arch.n_features, arch.n_outputs(), opts.device);
        let n = job.y.len();
        let steps_per_epoch = n.div_ceil(opts.batch_size);
        let total_steps = (steps_per_epoch * job.epochs).min(job.max_steps.unwrap_or(usize::MAX));
        // Evenly spaced rows for the loss check.
        let m = n.min(EVAL_ROWS);
        let mut ex = Vec::with_capacity(m * f);
        let mut ey = Vec::with_capacity(m);
        for i in 0..m {
            let r = i * n / m;
            ex.extend_from_slice(&job.x[r * f..(r + 1) * f]);
            ey.push(job.y[r]);
        }
        let mut et = Vec::with_capacity(m * c);
        targets(arch, &ey, &mut et);
        let eval = (
            to_dev(&ex, &[m as i64, f as i64], dev)?,
            to_dev(&et, &[m as i64, c as i64], dev)?,
        );
        let val = if job.val_y.is_empty() || opts.early_stopping.is_none() {
            None
        } else {
            let mv = job.val_y.len() as i64;
            let mut vt = Vec::new();
            targets(arch, &job.val_y, &mut vt);
            Some((
                to_dev(&job.val_x, &[mv, f as i64], dev)?,
                to_dev(&vt, &[mv, c as i64], dev)?,
            ))
        };
        Ok(JobState {
            n,
            steps_per_epoch,
            total_steps,
            offset,
            perm: (0..n as u32).collect(),
            rng: StdRng::seed_from_u64(job.seed ^ SHUFFLE_SALT),
            running: total_steps > 0,
            failed: None,
            stats: FitStats {
                n_train_rows: n,
                ..Default::default()
            },
            threshold: f64::INFINITY,
            bad_epochs: 0,
            snapshot: None,
            last: None,
            eval,
            val,
        })
    }

    /// Whether step `t` (1-based) ends one of this job's epochs (or its last, partial one).
    fn checks_at(&self, t: usize) -> bool {
        t <= self.total_steps && (t % self.steps_per_epoch == 0 || t == self.total_steps)
    }
}

/// One engine run: the jobs, their stacked rows, their states and the global step.
struct Run<'a> {
    arch: &'a Arch,
    jobs: &'a [Job],
    opts: &'a EngineOpts,
    rows: StackedRows,
    states: Vec<JobState>,
    /// Steps taken so far (every running job takes one per step).
    t: usize,
    chunk_steps: usize,
}

impl<'a> Run<'a> {
    fn new(arch: &'a Arch, jobs: &'a [Job], opts: &'a EngineOpts) -> Result<Self> {
        let rows = StackedRows::new(arch, jobs, opts.device)?;
        let states = jobs
            .iter()
            .zip(&rows.offsets)
            .map(|(job, &offset)| JobState::new(arch, job, offset, opts))
            .collect::<Result<Vec<_>>>()?;
        let per_step_bytes =
            jobs.len() * opts.batch_size * (arch.n_features + arch.n_outputs() + 1) * 4;
        Ok(Run {
            arch,
            jobs,
            opts,
            rows,
            states,
            t: 0,
            chunk_steps: (CHUNK_BYTES / per_step_bytes.max(1)).max(1),
        })
    }

    /// Stacks every job from its initial weights, takes the initial losses (divergence
    /// thresholds; non-finite data rejects a job at once) and keeps the jobs that can run.
    fn first_engine(&mut self) -> Result<Engine<'a>> {
        let (arch, jobs, opts) = (self.arch, self.jobs, self.opts);
        let zeros: Vec<Vec<Linear>> = jobs
            .iter()
            .map(|j| {
                j.init
                    .iter()
                    .map(|l| Linear {
                        w: vec![0.0; l.w.len()],
                        b: vec![0.0; l.b.len()],
                        ..l.clone()
                    })
                    .collect()
            })
            .collect();
        let inits: Vec<Vec<Linear>> = jobs.iter().map(|j| j.init.clone()).collect();
        let eng = Engine::build(arch, jobs, (0..jobs.len()).collect(), &inits, &zeros, opts)?;
        for (ki, st) in self.states.iter_mut().enumerate() {
            let l0 = eng.loss(ki as i64, &st.eval.0, &st.eval.1)?;
            st.stats.initial_loss = l0;
            st.stats.final_loss = l0;
            st.threshold = opts.divergence_factor * l0.max(LOSS_FLOOR);
            if !l0.is_finite() {
                st.failed = Some(TrainError::Diverged(format!(
                    "{}: initial loss is {l0} (non-finite inputs?)",
                    jobs[ki].label
                )));
                st.running = false;
            } else if !st.running {
                st.last = Some(jobs[ki].init.clone()); // zero steps
            }
        }
        let running: Vec<usize> = (0..jobs.len())
            .filter(|&j| self.states[j].running)
            .collect();
        if running.len() == jobs.len() {
            return Ok(eng);
        }
        let p: Vec<Vec<Linear>> = running.iter().map(|&j| inits[j].clone()).collect();
        let m: Vec<Vec<Linear>> = running.iter().map(|&j| zeros[j].clone()).collect();
        Engine::build(arch, jobs, running, &p, &m, opts)
    }

    /// The rows and loss coefficients of the next chunk of steps for the jobs in `slots`
    /// (each job reshuffles at its own epoch starts); `None` when every job is done.
    fn gather_chunk(&mut self, slots: &[usize]) -> Option<Chunk> {
        let (t, bs, pad) = (self.t, self.opts.batch_size, self.rows.pad);
        let remaining = slots
            .iter()
            .map(|&j| self.states[j].total_steps.saturating_sub(t))
            .max()
            .unwrap_or(0);
        if remaining == 0 {
            return None;
        }
        let steps = self.chunk_steps.min(remaining);
        let k = slots.len();
        let mut chunk = Chunk {
            idx: Vec::with_capacity(steps * k * bs),
            coef: Vec::with_capacity(steps * k * bs),
            steps,
            slots: k,
        };
        for step in t..t + steps {
            for &j in slots {
                let st = &mut self.states[j];
                if step >= st.total_steps {
                    chunk.idx.extend(std::iter::repeat_n(pad, bs));
                    chunk.coef.extend(std::iter::repeat_n(0.0, bs));
                    continue;
                }
                let e = step % st.steps_per_epoch;
                if e == 0 {
                    // Fisher–Yates with the job's own RNG.
                    for i in (1..st.n).rev() {
                        let r = st.rng.gen_range(0..=i);
                        st.perm.swap(i, r);
                    }
                }
                let rows = &st.perm[e * bs..((e + 1) * bs).min(st.n)];
                let inv = 1.0 / rows.len() as f32;
                let weights = self.jobs[j].weights.as_ref();
                for &r in rows {
                    chunk.idx.push((st.offset + r as usize) as i64);
                    chunk
                        .coef
                        .push(weights.map_or(1.0, |w| w[r as usize]) * inv);
                }
                chunk.idx.extend(std::iter::repeat_n(pad, bs - rows.len()));
                chunk.coef.extend(std::iter::repeat_n(0.0, bs - rows.len()));
            }
        }
        Some(chunk)
    }

    /// Takes the chunk's steps; when jobs leave, re-stacks the rest and keeps going with the
    /// chunk's remaining rows of the survivors. Returns the engine of the jobs still running.
    fn train_chunk(
        &mut self,
        mut eng: Engine<'a>,
        mut chunk: Chunk,
        cancel: &AtomicBool,
    ) -> Result<Engine<'a>> {
        let (bs, dev) = (self.opts.batch_size, self.opts.device);
        let (mut xc, mut yc, mut cc) = chunk.tensors(&self.rows.x, &self.rows.y, bs, dev)?;
        let mut s = 0usize;
        while s < chunk.steps {
            if cancel.load(Ordering::Relaxed) {
                return Err(TrainError::Cancelled);
            }
            let si = s as i64;
            eng.step(
                &xc.f_select(0, si)?,
                &yc.f_select(0, si)?,
                &cc.f_select(0, si)?,
            )?;
            self.t += 1;
            s += 1;
            if !self.epoch_end_checks(&eng)? {
                continue;
            }
            let Some((next, keep)) = self.restack(&eng)? else {
                eng.slots.clear();
                return Ok(eng);
            };
            eng = next;
            chunk = chunk.retain(s, &keep, bs);
            s = 0;
            if chunk.steps > 0 {
                (xc, yc, cc) = chunk.tensors(&self.rows.x, &self.rows.y, bs, dev)?;
            }
        }
        Ok(eng)
    }

    /// The checks of the jobs whose epoch (or schedule) ends at this step: divergence,
    /// early stopping, the end of the schedule. Returns whether a job left.
    fn epoch_end_checks(&mut self, eng: &Engine<'_>) -> Result<bool> {
        let t = self.t;
        let mut changed = false;
        for slot in 0..eng.slots.len() {
            let j = eng.slots[slot];
            let st = &mut self.states[j];
            if !st.checks_at(t) {
                continue;
            }
            st.stats.epochs_run += 1;
            st.stats.steps = t;
            let loss = eng.loss(slot as i64, &st.eval.0, &st.eval.1)?;
            st.stats.final_loss = loss;
            if !loss.is_finite() || loss > st.threshold {
                st.failed = Some(TrainError::Diverged(format!(
                    "{}: training loss {loss:.4} at epoch {} (initial {:.4}, limit {:.4})",
                    self.jobs[j].label, st.stats.epochs_run, st.stats.initial_loss, st.threshold
                )));
                st.running = false;
                changed = true;
                continue;
            }
            if let (Some(es), Some((vx, vy))) = (&self.opts.early_stopping, &st.val) {
                let vl = eng.loss(slot as i64, vx, vy)?;
                let best = st.stats.best_val_loss.unwrap_or(f64::INFINITY);
                if vl < best - es.min_delta {
                    st.stats.best_val_loss = Some(vl);
                    st.snapshot = Some(eng.params(slot as i64)?);
                    st.bad_epochs = 0;
                } else {
                    st.bad_epochs += 1;
                    if st.bad_epochs >= es.patience && t < st.total_steps {
                        st.stats.stopped_early = true;
                        st.running = false;
                        changed = true;
                    }
                }
            }
            if t == st.total_steps {
                st.running = false;
                changed = true;
            }
        }
        Ok(changed)
    }

    /// Drops the jobs that are done from the stacked tensors, so the rest run at the cost
    /// of fewer models. Returns the new engine and the kept slots' positions, or `None` when
    /// no job is left.
    fn restack(&mut self, eng: &Engine<'a>) -> Result<Option<(Engine<'a>, Vec<usize>)>> {
        let mut keep = Vec::new();
        let (mut params, mut moms) = (Vec::new(), Vec::new());
        for (slot, &j) in eng.slots.iter().enumerate() {
            if self.states[j].running {
                keep.push(slot);
                params.push(eng.params(slot as i64)?);
                moms.push(eng.momentum_of(slot as i64)?);
            } else if self.states[j].failed.is_none() {
                self.states[j].last = Some(eng.params(slot as i64)?);
            }
        }
        if keep.is_empty() {
            return Ok(None);
        }
        let slots: Vec<usize> = keep.iter().map(|&s| eng.slots[s]).collect();
        let next = Engine::build(self.arch, self.jobs, slots, &params, &moms, self.opts)?;
        Ok(Some((next, keep)))
    }

    /// Each job's best (early stopping) or last weights, or its failure.
    fn finish(self, seconds: f64) -> Vec<JobOutcome> {
        self.states
            .into_iter()
            .map(|mut st| {
                if let Some(err) = st.failed.take() {
                    return Err(err);
                }
                let params = st
                    .snapshot
                    .take()
                    .or_else(|| st.last.take())
                    .expect("every job leaves with weights");
                st.stats.seconds = seconds;
                Ok((params, st.stats))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::synth::{make_classification, Concept};

    fn data(seed: u64, n: usize) -> Dataset {
        let c = Concept::new(seed, 10, 8, 2);
        make_classification(&c, n, 0, seed + 1)
    }

    fn quick_opts(seed: u64) -> FitOptions {
        let cfg = TrainConfig {
            fit_epochs: 20,
            ..Default::default()
        };
        FitOptions::fresh(&cfg, seed)
    }

    #[test]
    fn deterministic_with_seed() {
        let d = data(1, 300);
        let arch = Arch::new(10, &[20, 10], 2);
        let no = AtomicBool::new(false);
        let (m1, s1) = fit(&arch, &d, None, &quick_opts(5), &no).unwrap();
        let (m2, s2) = fit(&arch, &d, None, &quick_opts(5), &no).unwrap();
        assert_eq!(m1, m2, "same seed must give identical weights");
        assert_eq!(s1.final_loss, s2.final_loss);
        let (m3, _) = fit(&arch, &d, None, &quick_opts(6), &no).unwrap();
        assert_ne!(m1, m3);
        assert!(s1.final_loss < s1.initial_loss * 0.8, "{s1:?}");
        assert_eq!(s1.epochs_run, 20);
        assert_eq!(s1.steps, 20 * 300usize.div_ceil(32));
    }

    /// The engine's hand-written step equals PyTorch-style SGD momentum with autograd.
    #[test]
    fn matches_autograd_sgd() {
        let d = data(2, 70); // 3 batches per epoch, the last partial
        let arch = Arch::new(10, &[6, 4], 2);
        let cfg = TrainConfig {
            fit_epochs: 3,
            ..Default::default()
        };
        let opts = FitOptions::fresh(&cfg, 9);
        let spec = JobSpec {
            label: "t".into(),
            lr: 0.05,
            epochs: 3,
            max_steps: None,
            freeze: 0,
            seed: 9,
        };
        let (job, _) = prepare_job(&arch, &d, None, &spec, None, None).unwrap();
        let eopts = EngineOpts {
            batch_size: 32,
            momentum: 0.9,
            divergence_factor: 1e9,
            early_stopping: None,
            device: Device::Cpu,
        };
        let no = AtomicBool::new(false);
        let got = train_jobs(&arch, std::slice::from_ref(&job), &eopts, &no)
            .unwrap()
            .pop()
            .unwrap()
            .unwrap()
            .0;
        let _ = opts;

        // Reference: autograd + the same batches (replaying the job's shuffling RNG).
        let mut params: Vec<Tensor> = Vec::new();
        for lin in &job.init {
            params.push(
                Tensor::from_slice(&lin.w)
                    .view([lin.out as i64, lin.inp as i64])
                    .set_requires_grad(true),
            );
            params.push(Tensor::from_slice(&lin.b).set_requires_grad(true));
        }
        let mut bufs: Vec<Option<Tensor>> = (0..params.len()).map(|_| None).collect();
        let n = job.y.len();
        let mut rng = StdRng::seed_from_u64(job.seed ^ SHUFFLE_SALT);
        let mut perm: Vec<u32> = (0..n as u32).collect();
        let x = Tensor::from_slice(&job.x).view([n as i64, 10]);
        let y = Tensor::from_slice(&job.y).view([n as i64, 1]);
        for _ in 0..3 {
            for i in (1..n).rev() {
                let r = rng.gen_range(0..=i);
                perm.swap(i, r);
            }
            for chunk in perm.chunks(32) {
                let ix = Tensor::from_slice(&chunk.iter().map(|&r| r as i64).collect::<Vec<_>>());
                let mut a = x.index_select(0, &ix);
                for l in 0..3 {
                    a = a.linear(&params[2 * l], Some(&params[2 * l + 1]));
                    if l < 2 {
                        a = a.relu();
                    }
                }
                let loss = a.binary_cross_entropy_with_logits::<Tensor>(
                    &y.index_select(0, &ix),
                    None,
                    None,
                    tch::Reduction::Mean,
                );
                for p in params.iter_mut() {
                    p.zero_grad();
                }
                loss.backward();
                tch::no_grad(|| {
                    for (p, buf) in params.iter_mut().zip(bufs.iter_mut()) {
                        let g = p.grad();
                        let nb = match buf.take() {
                            None => g.copy(),
                            Some(b) => b * 0.9 + g,
                        };
                        let _ = p.f_sub_(&(&nb * 0.05)).unwrap();
                        *buf = Some(nb);
                    }
                });
            }
        }
        for (l, lin) in got.iter().enumerate() {
            let rw = Vec::<f32>::try_from(params[2 * l].detach().reshape([-1])).unwrap();
            let rb = Vec::<f32>::try_from(params[2 * l + 1].detach().reshape([-1])).unwrap();
            for (a, b) in lin.w.iter().zip(&rw).chain(lin.b.iter().zip(&rb)) {
                assert!((a - b).abs() < 1e-5, "layer {l}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn batched_equals_one_by_one() {
        let arch = Arch::new(10, &[20, 10], 2);
        let d1 = data(3, 200);
        let d2 = data(4, 90);
        let no = AtomicBool::new(false);
        let spec = |lr, epochs, freeze, seed| JobSpec {
            label: "j".into(),
            lr,
            epochs,
            max_steps: None,
            freeze,
            seed,
        };
        let (j1, s1) =
            prepare_job(&arch, &d1, None, &spec(0.01, 12, 0, 1), None, Some(500.0)).unwrap();
        let parent = Member::from_layers(s1, &j1.init);
        let (j2, _) =
            prepare_job(&arch, &d2, Some(&parent), &spec(0.001, 7, 1, 2), None, None).unwrap();
        let (j3, _) = prepare_job(
            &arch,
            &d1.concat(&d2).unwrap(),
            None,
            &spec(0.02, 5, 0, 3),
            None,
            None,
        )
        .unwrap();
        let jobs = vec![j1, j2, j3];
        let eopts = EngineOpts {
            batch_size: 32,
            momentum: 0.9,
            divergence_factor: 10.0,
            early_stopping: None,
            device: Device::Cpu,
        };
        let together = train_jobs(&arch, &jobs, &eopts, &no).unwrap();
        for (job, tog) in jobs.iter().zip(together) {
            let alone = train_jobs(&arch, std::slice::from_ref(job), &eopts, &no)
                .unwrap()
                .pop()
                .unwrap()
                .unwrap();
            let tog = tog.unwrap();
            assert_eq!(alone.1.steps, tog.1.steps);
            assert_eq!(alone.1.epochs_run, tog.1.epochs_run);
            for (la, lt) in alone.0.iter().zip(&tog.0) {
                for (a, b) in la.w.iter().zip(&lt.w).chain(la.b.iter().zip(&lt.b)) {
                    assert!((a - b).abs() < 1e-4, "{a} vs {b}");
                }
            }
            assert!((alone.1.final_loss - tog.1.final_loss).abs() < 1e-4);
        }
        // The frozen first layer of job 2 did not move.
        let tog = train_jobs(&arch, &jobs, &eopts, &no).unwrap();
        let j2 = tog[1].as_ref().unwrap();
        assert_eq!(j2.0[0], jobs[1].init[0]);
        assert_ne!(j2.0[1], jobs[1].init[1]);
    }

    #[test]
    fn cancel_and_nan() {
        let arch = Arch::new(10, &[20, 10], 2);
        let d = data(5, 200);
        let yes = AtomicBool::new(true);
        assert!(matches!(
            fit(&arch, &d, None, &quick_opts(1), &yes),
            Err(TrainError::Cancelled)
        ));
        let mut bad = d.clone();
        bad.x[7] = f32::NAN;
        let no = AtomicBool::new(false);
        assert!(matches!(
            fit(&arch, &bad, None, &quick_opts(1), &no),
            Err(TrainError::Diverged(_))
        ));
        // A huge learning rate blows up and is caught as divergence.
        let opts = FitOptions {
            lr: 50.0,
            ..quick_opts(1)
        };
        assert!(matches!(
            fit(&arch, &d, None, &opts, &no),
            Err(TrainError::Diverged(_))
        ));
    }

    #[test]
    fn cancel_midway_from_another_thread() {
        let arch = Arch::new(10, &[20, 10], 2);
        let d = data(6, 2000);
        let flag = std::sync::Arc::new(AtomicBool::new(false));
        let f2 = flag.clone();
        let h = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            f2.store(true, Ordering::Relaxed);
        });
        // No sample budget: the fit must still be running when the flag goes up.
        let opts = FitOptions {
            epochs: 10_000,
            sample_budget: 0,
            ..quick_opts(1)
        };
        let t0 = Instant::now();
        assert!(matches!(
            fit(&arch, &d, None, &opts, &flag),
            Err(TrainError::Cancelled)
        ));
        assert!(t0.elapsed().as_secs_f64() < 5.0);
        h.join().unwrap();
    }

    #[test]
    fn early_stopping_stops_and_multiclass_learns() {
        let c = Concept::new(11, 10, 8, 3);
        let d = make_classification(&c, 600, 0, 12);
        let arch = Arch::new(10, &[20, 10], 3);
        let no = AtomicBool::new(false);
        let mut opts = quick_opts(2);
        opts.epochs = 400;
        opts.lr = 0.05;
        opts.early_stopping = Some(EarlyStopping {
            patience: 3,
            validation_fraction: 0.2,
            min_delta: 0.0,
        });
        let (m, s) = fit(&arch, &d, None, &opts, &no).unwrap();
        assert!(s.stopped_early && s.epochs_run < 400, "{s:?}");
        assert!(s.best_val_loss.unwrap() < 1.0);
        assert_eq!(s.n_train_rows, 480);
        let layers = m.layers(&arch).unwrap();
        let p = crate::train::mlp::forward_proba(
            &arch,
            &layers,
            &m.scaler.transform(&d.x),
            Device::Cpu,
        )
        .unwrap();
        assert_eq!(p.len(), 600 * 3);
        let acc = p
            .chunks(3)
            .zip(&d.y)
            .filter(|(row, &y)| {
                let am = (0..3).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
                am as f32 == y
            })
            .count() as f64
            / 600.0;
        assert!(acc > 0.6, "multiclass accuracy {acc}");
    }
}
