//! The online challenger's network: a champion's MLP (every ensemble member, its scaler and
//! its categorical encoding) in plain Rust, with a forward pass and mini-batch SGD steps.
//!
//! The arithmetic is the artifact's (see `train::artifact`): `(x − mean) / std` per member,
//! `relu` between layers, sigmoid (binary) or softmax output, the ensemble's weighted mean.
//! Learning is plain SGD on each member's own log-loss, the mean over the mini-batch; the
//! scalers stay the champion's. In f32 and in a fixed order, so that the same rows give the
//! same weights in the daemon, the backtest and a replay after a restart.

use serde::{Deserialize, Serialize};

use super::packed_vec;
use crate::domain::encoding::Encoding;

/// One linear layer, PyTorch layout: `w` is `[out, in]` row-major.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dense {
    pub inp: usize,
    pub out: usize,
    #[serde(with = "packed_vec")]
    pub w: Vec<f32>,
    #[serde(with = "packed_vec")]
    pub b: Vec<f32>,
}

/// One ensemble member: its scaler and its layers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    #[serde(with = "packed_vec")]
    pub mean: Vec<f32>,
    #[serde(with = "packed_vec")]
    pub std: Vec<f32>,
    pub layers: Vec<Dense>,
}

/// A whole model (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
    pub n_classes: usize,
    /// Raw features per row (before the encoding).
    pub n_raw: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<Encoding>,
    pub members: Vec<Member>,
    pub member_weights: Vec<f32>,
}

/// Each layer's activations for one row, kept for the backward pass.
#[derive(Default)]
struct Scratch {
    encoded: Vec<f32>,
    /// `acts[0]` the scaled input, `acts[l + 1]` layer `l`'s output (logits for the last).
    acts: Vec<Vec<f32>>,
    delta: Vec<f32>,
    next_delta: Vec<f32>,
    proba: Vec<f32>,
}

impl Network {
    /// Outputs per row: 1 (P(class 1)) for two classes, else one per class.
    pub fn width(&self) -> usize {
        if self.n_classes <= 2 {
            1
        } else {
            self.n_classes
        }
    }

    /// Whether `self` is well formed: every member's layers chain from the encoded width to
    /// [`Self::width`], with weights of the stated sizes.
    pub fn is_valid(&self) -> bool {
        let inputs = self.encoding.as_ref().map_or(self.n_raw, |e| e.width());
        !self.members.is_empty()
            && self.members.len() == self.member_weights.len()
            && self.members.iter().all(|m| {
                let mut inp = inputs;
                let chained = m.layers.iter().all(|l| {
                    let ok = l.inp == inp && l.w.len() == l.inp * l.out && l.b.len() == l.out;
                    inp = l.out;
                    ok
                });
                chained && inp == self.width() && m.mean.len() == inputs && m.std.len() == inputs
            })
    }

    /// As the outcomes table holds a prediction: P(class 1) for two classes, else the most
    /// probable class's index (ties: the lower class).
    pub fn predict(&self, raw: &[f32]) -> f64 {
        let mut s = Scratch::default();
        self.proba(raw, &mut s);
        if self.width() == 1 {
            return f64::from(s.proba[0]);
        }
        let mut best = 0;
        for (c, &p) in s.proba.iter().enumerate() {
            if p > s.proba[best] {
                best = c;
            }
        }
        best as f64
    }

    /// The class a [`Self::predict`] output stands for.
    pub fn class_of(&self, prediction: f64) -> u32 {
        if self.width() == 1 {
            u32::from(prediction >= 0.5)
        } else {
            prediction as u32
        }
    }

    /// The ensemble's probabilities of one raw row into `s.proba`.
    fn proba(&self, raw: &[f32], s: &mut Scratch) {
        s.proba.clear();
        s.proba.resize(self.width(), 0.0);
        let mut out = std::mem::take(&mut s.proba);
        for (m, &weight) in self.members.iter().zip(&self.member_weights) {
            self.forward(m, raw, s);
            let logits = s.acts.last().expect("a member has layers");
            accumulate_output(logits, weight, &mut out);
        }
        s.proba = out;
    }

    /// One member's forward pass, every activation kept in `s.acts`.
    fn forward(&self, m: &Member, raw: &[f32], s: &mut Scratch) {
        let input: &[f32] = match &self.encoding {
            Some(e) => {
                s.encoded.clear();
                e.encode_row(raw, &mut s.encoded);
                &s.encoded
            }
            None => raw,
        };
        s.acts.resize_with(m.layers.len() + 1, Vec::new);
        s.acts[0].clear();
        s.acts[0].extend(
            input
                .iter()
                .zip(m.mean.iter().zip(&m.std))
                .map(|(&v, (&mu, &sd))| (v - mu) / sd),
        );
        let last = m.layers.len() - 1;
        for (l, layer) in m.layers.iter().enumerate() {
            let (done, rest) = s.acts.split_at_mut(l + 1);
            let (h, out) = (&done[l], &mut rest[0]);
            out.clear();
            out.extend((0..layer.out).map(|o| {
                let z = layer.b[o] + dot(&layer.w[o * layer.inp..(o + 1) * layer.inp], h);
                if l < last {
                    z.max(0.0)
                } else {
                    z
                }
            }));
        }
    }

    /// One SGD step per member on the mean log-loss of the rows (raw, row-major) and their
    /// labels; a label the network has no output for teaches nothing.
    pub fn learn(&mut self, x: &[f32], labels: &[u32], lr: f32) {
        let rows: Vec<(&[f32], u32)> = x
            .chunks_exact(self.n_raw)
            .zip(labels.iter().copied())
            .filter(|&(_, y)| (y as usize) < self.n_classes.max(2))
            .collect();
        if rows.is_empty() {
            return;
        }
        let scale = lr / rows.len() as f32;
        let mut members = std::mem::take(&mut self.members);
        for m in &mut members {
            let mut grads: Vec<Dense> = m
                .layers
                .iter()
                .map(|l| Dense {
                    inp: l.inp,
                    out: l.out,
                    w: vec![0.0; l.w.len()],
                    b: vec![0.0; l.b.len()],
                })
                .collect();
            let mut s = Scratch::default();
            for &(row, y) in &rows {
                self.forward(m, row, &mut s);
                output_delta(s.acts.last().expect("layers"), y, &mut s.delta);
                backward(m, &mut s, &mut grads);
            }
            for (layer, g) in m.layers.iter_mut().zip(&grads) {
                layer
                    .w
                    .iter_mut()
                    .zip(&g.w)
                    .for_each(|(w, d)| *w -= scale * d);
                layer
                    .b
                    .iter_mut()
                    .zip(&g.b)
                    .for_each(|(b, d)| *b -= scale * d);
            }
        }
        self.members = members;
    }
}

/// The log-loss's gradient at the logits: `p − y` (sigmoid or softmax alike).
fn output_delta(logits: &[f32], y: u32, delta: &mut Vec<f32>) {
    delta.clear();
    if logits.len() == 1 {
        let p = 1.0 / (1.0 + (-logits[0]).exp());
        delta.push(p - y as f32);
        return;
    }
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = logits.iter().map(|&z| (z - max).exp()).sum();
    delta.extend(
        logits
            .iter()
            .enumerate()
            .map(|(k, &z)| (z - max).exp() / sum - f32::from(k == y as usize)),
    );
}

/// Adds one row's gradients to `grads`, from the output's `s.delta` back to the first layer.
fn backward(m: &Member, s: &mut Scratch, grads: &mut [Dense]) {
    for l in (0..m.layers.len()).rev() {
        let layer = &m.layers[l];
        let h = &s.acts[l];
        let g = &mut grads[l];
        for (o, &d) in s.delta.iter().enumerate() {
            g.b[o] += d;
            let gw = &mut g.w[o * layer.inp..(o + 1) * layer.inp];
            gw.iter_mut().zip(h).for_each(|(gw, &a)| *gw += d * a);
        }
        if l == 0 {
            break;
        }
        // Through the weights, then the relu of the layer below (its output is `h`).
        s.next_delta.clear();
        s.next_delta.resize(layer.inp, 0.0);
        for (o, &d) in s.delta.iter().enumerate() {
            let w = &layer.w[o * layer.inp..(o + 1) * layer.inp];
            s.next_delta
                .iter_mut()
                .zip(w)
                .for_each(|(n, &w)| *n += d * w);
        }
        for (n, &a) in s.next_delta.iter_mut().zip(h) {
            if a <= 0.0 {
                *n = 0.0;
            }
        }
        std::mem::swap(&mut s.delta, &mut s.next_delta);
    }
}

/// Adds `weight ×` the output activation of `logits` to `out`.
fn accumulate_output(logits: &[f32], weight: f32, out: &mut [f32]) {
    if logits.len() == 1 {
        out[0] += weight * (1.0 / (1.0 + (-logits[0]).exp()));
        return;
    }
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = logits.iter().map(|&z| (z - max).exp()).sum();
    for (o, &z) in out.iter_mut().zip(logits) {
        *o += weight * ((z - max).exp() / sum);
    }
}

fn dot(w: &[f32], x: &[f32]) -> f32 {
    w.iter().zip(x).map(|(a, b)| a * b).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-hidden-layer binary network with fixed weights.
    pub(crate) fn small(n_raw: usize, hidden: usize, n_classes: usize) -> Network {
        let width = if n_classes <= 2 { 1 } else { n_classes };
        let w = |n: usize, k: usize| (0..n).map(move |i| ((i * 7 + k) % 11) as f32 / 11.0 - 0.45);
        Network {
            n_classes,
            n_raw,
            encoding: None,
            members: vec![Member {
                mean: vec![0.0; n_raw],
                std: vec![1.0; n_raw],
                layers: vec![
                    Dense {
                        inp: n_raw,
                        out: hidden,
                        w: w(n_raw * hidden, 1).collect(),
                        b: vec![0.1; hidden],
                    },
                    Dense {
                        inp: hidden,
                        out: width,
                        w: w(hidden * width, 3).collect(),
                        b: vec![0.0; width],
                    },
                ],
            }],
            member_weights: vec![1.0],
        }
    }

    fn log_loss(net: &Network, x: &[f32], y: &[u32]) -> f64 {
        x.chunks_exact(net.n_raw)
            .zip(y)
            .map(|(row, &y)| {
                let mut s = Scratch::default();
                net.proba(row, &mut s);
                let p = if net.width() == 1 {
                    if y == 1 {
                        s.proba[0]
                    } else {
                        1.0 - s.proba[0]
                    }
                } else {
                    s.proba[y as usize]
                };
                -f64::from(p.max(1e-7)).ln()
            })
            .sum::<f64>()
            / y.len() as f64
    }

    /// The analytic gradient agrees with finite differences of the mean log-loss, so one step
    /// with a small rate lowers the loss by about `lr · |grad|²`.
    #[test]
    fn a_step_follows_the_gradient() {
        for classes in [2, 3] {
            let net = small(3, 4, classes);
            let x: Vec<f32> = (0..24).map(|i| ((i * 5 % 13) as f32 - 6.0) / 4.0).collect();
            let y: Vec<u32> = (0..8).map(|i| i % classes as u32).collect();
            let before = log_loss(&net, &x, &y);
            // Finite-difference gradient of one weight against the step's change of it.
            let eps = 1e-3f32;
            let mut plus = net.clone();
            plus.members[0].layers[0].w[2] += eps;
            let fd = (log_loss(&plus, &x, &y) - before) / f64::from(eps);
            let mut stepped = net.clone();
            let lr = 1e-2;
            stepped.learn(&x, &y, lr);
            let moved =
                f64::from(net.members[0].layers[0].w[2] - stepped.members[0].layers[0].w[2]);
            assert!(
                (moved / f64::from(lr) - fd).abs() < 2e-2 * fd.abs().max(0.1),
                "{classes} classes: step {moved} vs lr·grad {}",
                fd * f64::from(lr)
            );
            assert!(log_loss(&stepped, &x, &y) < before);
        }
    }

    /// Many steps on one separable pattern learn it; an unknown label is passed over.
    #[test]
    fn steps_learn_a_pattern_and_skip_unknown_labels() {
        let mut net = small(2, 8, 2);
        let x: Vec<f32> = (0..64)
            .flat_map(|i| [(i % 8) as f32 - 3.5, (i / 8) as f32 - 3.5])
            .collect();
        let y: Vec<u32> = x.chunks(2).map(|r| u32::from(r[0] > 0.0)).collect();
        for _ in 0..300 {
            net.learn(&x, &y, 0.5);
        }
        let right = x
            .chunks(2)
            .zip(&y)
            .filter(|(r, &y)| u32::from(net.predict(r) >= 0.5) == y)
            .count();
        assert!(right >= 62, "{right} of 64");
        let before = net.clone();
        net.learn(&x[..2], &[5], 0.5);
        assert_eq!(net, before);
        assert!(net.is_valid());
    }
}
