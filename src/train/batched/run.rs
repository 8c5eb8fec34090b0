//! One engine run, by stage: the jobs' states, the first engine, chunks of steps, the
//! epoch-end checks (divergence, early stopping), re-stacking when jobs leave, the result.

use std::sync::atomic::{AtomicBool, Ordering};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tch::Tensor;

use super::engine::{to_dev, Engine};
use super::prepare::targets;
use super::rows::{Chunk, StackedRows};
use super::{
    EngineOpts, FitStats, Job, JobOutcome, CHUNK_BYTES, EVAL_ROWS, LOSS_FLOOR, SHUFFLE_SALT,
};
use crate::train::mlp::{Arch, Linear};
use crate::train::{Result, TrainError};

pub(super) struct JobState {
    pub(super) n: usize,
    pub(super) steps_per_epoch: usize,
    pub(super) total_steps: usize,
    pub(super) offset: usize,
    pub(super) perm: Vec<u32>,
    pub(super) rng: StdRng,
    /// Still training (not finished, stopped or failed).
    pub(super) running: bool,
    pub(super) failed: Option<TrainError>,
    pub(super) stats: FitStats,
    pub(super) threshold: f64,
    pub(super) bad_epochs: usize,
    /// Best weights so far (early stopping).
    pub(super) snapshot: Option<Vec<Linear>>,
    /// Weights when the job left the engine.
    pub(super) last: Option<Vec<Linear>>,
    pub(super) eval: (Tensor, Tensor),
    pub(super) val: Option<(Tensor, Tensor)>,
}
impl JobState {
    /// A job's schedule (epochs, capped by its step budget), RNG and check tensors.
    pub(super) fn new(arch: &Arch, job: &Job, offset: usize, opts: &EngineOpts) -> Result<Self> {
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
    pub(super) fn checks_at(&self, t: usize) -> bool {
        t <= self.total_steps && (t % self.steps_per_epoch == 0 || t == self.total_steps)
    }
}

/// One engine run: the jobs, their stacked rows, their states and the global step.
pub(super) struct Run<'a> {
    pub(super) arch: &'a Arch,
    pub(super) jobs: &'a [Job],
    pub(super) opts: &'a EngineOpts,
    pub(super) rows: StackedRows,
    pub(super) states: Vec<JobState>,
    /// Steps taken so far (every running job takes one per step).
    pub(super) t: usize,
    pub(super) chunk_steps: usize,
}

impl<'a> Run<'a> {
    pub(super) fn new(arch: &'a Arch, jobs: &'a [Job], opts: &'a EngineOpts) -> Result<Self> {
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
    pub(super) fn first_engine(&mut self) -> Result<Engine<'a>> {
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
    pub(super) fn gather_chunk(&mut self, slots: &[usize]) -> Option<Chunk> {
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
    pub(super) fn train_chunk(
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
    pub(super) fn epoch_end_checks(&mut self, eng: &Engine<'_>) -> Result<bool> {
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
    pub(super) fn restack(&mut self, eng: &Engine<'a>) -> Result<Option<(Engine<'a>, Vec<usize>)>> {
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
    pub(super) fn finish(self, seconds: f64) -> Vec<JobOutcome> {
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
