//! The stacked parameters of the running jobs and one step for all of them (forward,
//! backward and SGD-momentum by hand; see the module docs of `batched`).

use tch::{Device, Kind, Tensor};

use super::{EngineOpts, Job};
use crate::train::mlp::{Arch, Linear};
use crate::train::Result;

/// The stacked parameters of the jobs still running; slot `s` trains job `slots[s]`.
pub(super) struct Engine<'a> {
    pub(super) arch: &'a Arch,
    pub(super) slots: Vec<usize>,
    /// Flat parameters, momentum and −lr.
    pub(super) p: Tensor,
    pub(super) v: Tensor,
    pub(super) neg_lr: Tensor,
    pub(super) w: Vec<Tensor>,
    pub(super) wt: Vec<Tensor>,
    pub(super) b: Vec<Tensor>,
    pub(super) vw: Vec<Tensor>,
    pub(super) vb: Vec<Tensor>,
    pub(super) ones: Tensor,
    pub(super) momentum: f64,
    /// Lowest layer any job updates (layers below are frozen for every job).
    pub(super) min_layer: usize,
}

impl<'a> Engine<'a> {
    /// Stacks `params[s]` / `momentum[s]` (per slot, per layer) for the jobs `slots`.
    pub(super) fn build(
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
    pub(super) fn step(&mut self, x: &Tensor, y: &Tensor, c: &Tensor) -> Result<()> {
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
    pub(super) fn loss(&self, k: i64, x: &Tensor, y: &Tensor) -> Result<f64> {
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

    pub(super) fn layers_of(&self, w: &[Tensor], b: &[Tensor], k: i64) -> Result<Vec<Linear>> {
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
    pub(super) fn params(&self, k: i64) -> Result<Vec<Linear>> {
        self.layers_of(&self.w, &self.b, k)
    }

    /// Slot `k`'s momentum buffers.
    pub(super) fn momentum_of(&self, k: i64) -> Result<Vec<Linear>> {
        self.layers_of(&self.vw, &self.vb, k)
    }
}

pub(super) fn to_dev(data: &[f32], shape: &[i64], device: Device) -> Result<Tensor> {
    Ok(Tensor::f_from_slice(data)?
        .f_view(shape)?
        .f_to_device(device)?)
}
