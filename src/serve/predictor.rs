//! The champion's forward pass for online requests, in plain Rust.
//!
//! The scorer and the trainer use libtorch; online requests do not, on purpose: a request of a
//! few rows costs a few microseconds here, runs on the request's own thread (no hop to a
//! blocking pool), never waits for libtorch's intra-op thread pool while a training holds it,
//! and the weights are plain `Vec<f32>` that every replica thread can share. The arithmetic is
//! the artifact's (see `train::artifact`): `(x − mean) / std` per member, `relu` between
//! linear layers, sigmoid (binary) or softmax output, then the ensemble's weighted mean, all
//! in f32. Only the order of the additions inside a dot product differs from libtorch's GEMM,
//! so the two agree to rounding (≈1e-7), not bit for bit.

use crate::train::{ModelArtifact, TrainError};

/// One linear layer, PyTorch layout: `w` is `[out, in]` row-major.
#[derive(Debug, Clone)]
struct Dense {
    inp: usize,
    out: usize,
    w: Vec<f32>,
    b: Vec<f32>,
}

#[derive(Debug, Clone)]
struct MemberNet {
    mean: Vec<f32>,
    std: Vec<f32>,
    layers: Vec<Dense>,
}

/// A validated artifact, laid out for inference.
#[derive(Debug, Clone)]
pub struct Predictor {
    /// Raw features per row (codes at categorical positions).
    n_features: usize,
    n_classes: usize,
    /// The categorical vocabularies: raw rows are encoded first.
    encoding: Option<crate::train::encoding::Encoding>,
    members: Vec<MemberNet>,
    member_weights: Vec<f32>,
}

/// Probabilities for `n` rows: binary models give P(class 1) per row (`width` 1), multiclass
/// models `n_classes` values per row.
#[derive(Debug, Clone, PartialEq)]
pub struct Probabilities {
    pub width: usize,
    pub values: Vec<f32>,
}

impl Probabilities {
    pub fn rows(&self) -> std::slice::ChunksExact<'_, f32> {
        self.values.chunks_exact(self.width)
    }

    /// The most probable class of each row (binary: P(class 1) ≥ 0.5; ties: the lower class).
    pub fn labels(&self) -> Vec<i64> {
        self.rows()
            .map(|row| {
                if self.width == 1 {
                    i64::from(row[0] >= 0.5)
                } else {
                    let mut best = 0;
                    for (c, &p) in row.iter().enumerate() {
                        if p > row[best] {
                            best = c;
                        }
                    }
                    best as i64
                }
            })
            .collect()
    }

    /// Every class's probability per row (binary: `[1 − p, p]`).
    pub fn per_class(&self) -> Vec<f32> {
        if self.width == 1 {
            self.values.iter().flat_map(|&p| [1.0 - p, p]).collect()
        } else {
            self.values.clone()
        }
    }
}

impl Predictor {
    pub fn new(artifact: &ModelArtifact) -> Result<Self, TrainError> {
        artifact.validate()?;
        let arch = &artifact.arch;
        let members = artifact
            .members
            .iter()
            .map(|m| {
                let layers = m
                    .layers(arch)?
                    .into_iter()
                    .map(|l| Dense {
                        inp: l.inp,
                        out: l.out,
                        w: l.w,
                        b: l.b,
                    })
                    .collect();
                Ok(MemberNet {
                    mean: m.scaler.mean.clone(),
                    std: m.scaler.std.clone(),
                    layers,
                })
            })
            .collect::<Result<Vec<_>, TrainError>>()?;
        Ok(Predictor {
            n_features: artifact
                .encoding
                .as_ref()
                .map_or(arch.n_features, |e| e.n_raw),
            n_classes: arch.n_classes,
            encoding: artifact.encoding.clone(),
            members,
            member_weights: artifact.ensemble.weights.clone(),
        })
    }

    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Which raw features are categorical (their values are codes).
    pub fn is_categorical(&self, i: usize) -> bool {
        self.encoding
            .as_ref()
            .is_some_and(|e| e.vocabularies.iter().any(|v| v.feature == i))
    }

    /// Whether a categorical feature's code is outside the vocabulary (answered as "other").
    pub fn is_unknown(&self, feature: usize, code: f32) -> bool {
        self.encoding
            .as_ref()
            .is_some_and(|e| e.is_unknown(feature, code))
    }

    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// Values per row in [`Probabilities`]: 1 for binary models, else `n_classes`.
    pub fn width(&self) -> usize {
        if self.n_classes <= 2 {
            1
        } else {
            self.n_classes
        }
    }

    /// Probabilities of row-major `x`; `x.len()` must be a multiple of `n_features` (the
    /// request parsers guarantee it).
    pub fn predict(&self, x: &[f32]) -> Probabilities {
        assert_eq!(x.len() % self.n_features, 0, "rows are n_features wide");
        let width = self.width();
        let n = x.len() / self.n_features;
        let mut values = vec![0f32; n * width];
        let widest = self
            .members
            .iter()
            .flat_map(|m| m.layers.iter().map(|l| l.out.max(l.inp)))
            .max()
            .unwrap_or(0);
        let (mut a, mut b) = (vec![0f32; widest], vec![0f32; widest]);
        let mut encoded = Vec::new();
        for (row, out) in x
            .chunks_exact(self.n_features)
            .zip(values.chunks_exact_mut(width))
        {
            let inputs = match &self.encoding {
                Some(e) => {
                    encoded.clear();
                    e.encode_row(row, &mut encoded);
                    &encoded[..]
                }
                None => row,
            };
            for (member, &weight) in self.members.iter().zip(&self.member_weights) {
                let logits = member.forward(inputs, &mut a, &mut b);
                accumulate_output(logits, weight, out);
            }
        }
        Probabilities { width, values }
    }
}

impl MemberNet {
    /// The output layer's logits for one row; `a` and `b` are scratch buffers.
    fn forward<'s>(&self, row: &[f32], a: &'s mut [f32], b: &'s mut [f32]) -> &'s [f32] {
        for ((z, &v), (&m, &s)) in a.iter_mut().zip(row).zip(self.mean.iter().zip(&self.std)) {
            *z = (v - m) / s;
        }
        let (mut input, mut output) = (a, b);
        let last = self.layers.len() - 1;
        for (l, layer) in self.layers.iter().enumerate() {
            let h = &input[..layer.inp];
            for (o, out) in output[..layer.out].iter_mut().enumerate() {
                let z = layer.b[o] + dot(&layer.w[o * layer.inp..(o + 1) * layer.inp], h);
                *out = if l < last { z.max(0.0) } else { z };
            }
            std::mem::swap(&mut input, &mut output);
        }
        &input[..self.layers[last].out]
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

/// A dot product with eight independent partial sums, which the compiler turns into SIMD.
fn dot(w: &[f32], x: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (wc, xc) = (w.chunks_exact(8), x.chunks_exact(8));
    let tail: f32 = wc
        .remainder()
        .iter()
        .zip(xc.remainder())
        .map(|(a, b)| a * b)
        .sum();
    for (a, b) in wc.zip(xc) {
        for k in 0..8 {
            acc[k] += a[k] * b[k];
        }
    }
    let pairs = [
        acc[0] + acc[4],
        acc[1] + acc[5],
        acc[2] + acc[6],
        acc[3] + acc[7],
    ];
    (pairs[0] + pairs[2]) + (pairs[1] + pairs[3]) + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::mlp::he_init;
    use crate::train::{Arch, Ensemble, Member, Scaler};

    fn artifact(
        n_features: usize,
        hidden: &[usize],
        n_classes: usize,
        members: usize,
    ) -> ModelArtifact {
        let arch = Arch::new(n_features, hidden, n_classes);
        let ms = (0..members)
            .map(|m| {
                let scaler = Scaler {
                    mean: (0..n_features).map(|j| j as f32 * 0.3 - m as f32).collect(),
                    std: (0..n_features).map(|j| 0.5 + j as f32 * 0.1).collect(),
                };
                Member::from_layers(scaler, &he_init(&arch, 3 + m as u64))
            })
            .collect();
        let weights = vec![1.0 / members as f32; members];
        ModelArtifact {
            arch,
            members: ms,
            ensemble: Ensemble {
                method: "weighted_mean_proba".into(),
                weights,
            },
            encoding: None,
        }
    }

    fn rows(n: usize, f: usize) -> Vec<f32> {
        (0..n * f)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 17.0)
            .collect()
    }

    /// The plain-Rust forward pass agrees with the libtorch one the scorer uses.
    #[test]
    fn agrees_with_libtorch() {
        for (f, hidden, classes, members) in [
            (20, vec![20, 10], 2, 1),
            (6, vec![7, 5], 2, 3),
            (13, vec![9], 4, 2),
            (3, vec![], 3, 1),
        ] {
            let a = artifact(f, &hidden, classes, members);
            let x = rows(64, f);
            let ours = Predictor::new(&a).unwrap().predict(&x);
            let torch = crate::train::predict(&a, &x).unwrap();
            assert_eq!(ours.values.len(), torch.proba.len());
            for (i, (p, q)) in ours.values.iter().zip(&torch.proba).enumerate() {
                assert!(
                    (p - q).abs() < 1e-6,
                    "{f}x{hidden:?}x{classes}: value {i}: {p} vs {q}"
                );
            }
            let labels: Vec<i64> = torch.labels.iter().map(|&l| i64::from(l)).collect();
            assert_eq!(ours.labels(), labels);
        }
    }

    #[test]
    fn per_class_and_labels() {
        let p = Probabilities {
            width: 1,
            values: vec![0.25, 0.5, 0.875],
        };
        assert_eq!(p.per_class(), vec![0.75, 0.25, 0.5, 0.5, 0.125, 0.875]);
        assert_eq!(p.labels(), vec![0, 1, 1]);
        let m = Probabilities {
            width: 3,
            values: vec![0.2, 0.4, 0.4, 0.7, 0.2, 0.1],
        };
        assert_eq!(m.labels(), vec![1, 0]);
    }

    #[test]
    fn dot_matches_a_plain_sum() {
        for n in [0, 1, 7, 8, 9, 20, 33] {
            let w: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 3.0).collect();
            let x: Vec<f32> = (0..n).map(|i| 1.0 / (i as f32 + 1.0)).collect();
            let plain: f64 = w
                .iter()
                .zip(&x)
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum();
            assert!((f64::from(dot(&w, &x)) - plain).abs() < 1e-4, "n = {n}");
        }
    }
}
