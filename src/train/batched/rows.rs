//! The rows of a run: every job's rows stacked in one device tensor, and the rows and loss
//! coefficients of a chunk of steps gathered from it.

use tch::{Device, Tensor};

use super::engine::to_dev;
use super::prepare::targets;
use super::Job;
use crate::train::mlp::Arch;
use crate::train::Result;

/// Rows (global indices) and loss coefficients of a chunk of steps, `[step][slot][B]`.
pub(super) struct Chunk {
    pub(super) idx: Vec<i64>,
    pub(super) coef: Vec<f32>,
    pub(super) steps: usize,
    pub(super) slots: usize,
}

impl Chunk {
    /// Keeps steps `from..` and the slots `keep` (positions in the current slot list).
    pub(super) fn retain(&self, from: usize, keep: &[usize], bs: usize) -> Chunk {
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

    pub(super) fn tensors(
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

/// Every job's rows (and targets) in one device tensor, plus a final zero row for padding.
pub(super) struct StackedRows {
    pub(super) x: Tensor,
    pub(super) y: Tensor,
    /// The padding row's index.
    pub(super) pad: i64,
    /// Where each job's rows start.
    pub(super) offsets: Vec<usize>,
}

impl StackedRows {
    pub(super) fn new(arch: &Arch, jobs: &[Job], dev: Device) -> Result<Self> {
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
