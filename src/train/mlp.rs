//! The MLP: architecture, He-normal initialisation and inference.
//!
//! Weights use PyTorch's `nn.Linear` layout: `weight` is `[out, in]` row-major, `bias` `[out]`,
//! so an exported model loads into `torch.nn.functional.linear` unchanged.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::{Result, TrainError};

/// Hidden-layer activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    #[default]
    Relu,
}

/// The network's shape: `n_features → hidden[0] → … → hidden[last] → outputs`, where the
/// output is one sigmoid logit for binary problems and `n_classes` softmax logits otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arch {
    pub n_features: usize,
    pub hidden: Vec<usize>,
    pub activation: Activation,
    pub n_classes: usize,
}

impl Arch {
    pub fn new(n_features: usize, hidden: &[usize], n_classes: usize) -> Self {
        Arch {
            n_features,
            hidden: hidden.to_vec(),
            activation: Activation::Relu,
            n_classes,
        }
    }

    /// Width of the output layer: 1 (sigmoid) for binary, `n_classes` (softmax) otherwise.
    pub fn n_outputs(&self) -> usize {
        if self.n_classes <= 2 {
            1
        } else {
            self.n_classes
        }
    }

    pub fn is_binary(&self) -> bool {
        self.n_classes <= 2
    }

    /// Number of linear layers (hidden + output).
    pub fn n_layers(&self) -> usize {
        self.hidden.len() + 1
    }

    /// `(in, out)` of every linear layer.
    pub fn layer_dims(&self) -> Vec<(usize, usize)> {
        let mut dims = Vec::with_capacity(self.n_layers());
        let mut inp = self.n_features;
        for &h in &self.hidden {
            dims.push((inp, h));
            inp = h;
        }
        dims.push((inp, self.n_outputs()));
        dims
    }

    /// `"sigmoid"` or `"softmax"`.
    pub fn output(&self) -> &'static str {
        if self.is_binary() {
            "sigmoid"
        } else {
            "softmax"
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.n_features == 0 || self.n_classes < 2 || self.hidden.contains(&0) {
            return Err(TrainError::InvalidInput(format!(
                "invalid architecture {self:?}"
            )));
        }
        Ok(())
    }
}

/// One linear layer's parameters (PyTorch layout).
#[derive(Debug, Clone, PartialEq)]
pub struct Linear {
    pub inp: usize,
    pub out: usize,
    /// `[out, in]` row-major.
    pub w: Vec<f32>,
    /// `[out]`.
    pub b: Vec<f32>,
}

/// A standard normal sample (Box–Muller), so initialisation depends on our seed only.
pub(crate) fn std_normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = 1.0 - rng.gen::<f64>(); // (0, 1]
    let u2: f64 = rng.gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// He-normal (Kaiming, fan-in, gain √2) weights and zero biases, from `seed`.
pub fn he_init(arch: &Arch, seed: u64) -> Vec<Linear> {
    let mut rng = StdRng::seed_from_u64(seed);
    arch.layer_dims()
        .into_iter()
        .map(|(inp, out)| {
            let sd = (2.0 / inp as f64).sqrt();
            Linear {
                inp,
                out,
                w: (0..inp * out)
                    .map(|_| (std_normal(&mut rng) * sd) as f32)
                    .collect(),
                b: vec![0.0; out],
            }
        })
        .collect()
}

/// Class probabilities for already-standardised rows `x` (`[n, n_features]` row-major):
/// `n` values P(class 1) for binary models, `n × n_classes` row-major otherwise.
pub fn forward_proba(
    arch: &Arch,
    layers: &[Linear],
    x: &[f32],
    device: Device,
) -> Result<Vec<f32>> {
    let n = x.len() / arch.n_features.max(1);
    if n == 0 {
        return Ok(Vec::new());
    }
    let _guard = tch::no_grad_guard();
    let mut a = Tensor::f_from_slice(x)?
        .f_view([n as i64, arch.n_features as i64])?
        .f_to_device(device)?;
    let last = layers.len() - 1;
    for (l, lin) in layers.iter().enumerate() {
        let w = Tensor::f_from_slice(&lin.w)?
            .f_view([lin.out as i64, lin.inp as i64])?
            .f_to_device(device)?;
        let b = Tensor::f_from_slice(&lin.b)?.f_to_device(device)?;
        a = b.f_addmm(&a, &w.f_tr()?)?;
        if l < last {
            a = a.f_relu()?;
        }
    }
    let p = if arch.is_binary() {
        a.f_sigmoid()?
    } else {
        a.f_softmax(-1, Kind::Float)?
    };
    let p = p.f_to_device(Device::Cpu)?.f_reshape([-1])?;
    Ok(Vec::<f32>::try_from(&p)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dims_and_init() {
        let a = Arch::new(5, &[20, 10], 2);
        assert_eq!(a.layer_dims(), vec![(5, 20), (20, 10), (10, 1)]);
        assert_eq!(Arch::new(5, &[8], 4).layer_dims(), vec![(5, 8), (8, 4)]);
        let l = he_init(&Arch::new(200, &[300], 2), 7);
        assert_eq!(l, he_init(&Arch::new(200, &[300], 2), 7));
        assert_ne!(l, he_init(&Arch::new(200, &[300], 2), 8));
        let w = &l[0].w;
        let m = w.iter().map(|&v| v as f64).sum::<f64>() / w.len() as f64;
        let var = w.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / w.len() as f64;
        assert!(m.abs() < 0.01, "mean {m}");
        assert!((var / (2.0 / 200.0) - 1.0).abs() < 0.05, "var {var}");
        assert!(l[0].b.iter().all(|&b| b == 0.0));
    }
}
