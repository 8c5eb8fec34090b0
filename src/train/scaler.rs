//! Per-feature standardisation fitted on a model's training rows and stored with it.

use serde::{Deserialize, Serialize};

/// `(x - mean) / std` per feature; a feature with zero (or non-finite) spread gets std 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scaler {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Scaler {
    /// The identity scaler.
    pub fn identity(n_features: usize) -> Self {
        Scaler {
            mean: vec![0.0; n_features],
            std: vec![1.0; n_features],
        }
    }

    pub fn n_features(&self) -> usize {
        self.mean.len()
    }

    /// Fits mean and population std per feature on row-major `x` (accumulated in f64).
    /// NaN inputs give NaN means, which training then reports as divergence.
    pub fn fit(x: &[f32], n_features: usize) -> Self {
        let n = x.len().checked_div(n_features).unwrap_or(0);
        if n == 0 {
            return Scaler::identity(n_features);
        }
        let mut mean = vec![0f64; n_features];
        for row in x.chunks_exact(n_features) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut var = vec![0f64; n_features];
        for row in x.chunks_exact(n_features) {
            for ((s, &v), m) in var.iter_mut().zip(row).zip(&mean) {
                let d = v as f64 - m;
                *s += d * d;
            }
        }
        let std = var
            .iter()
            .map(|s| {
                let sd = (s / n as f64).sqrt() as f32;
                if sd > 0.0 && sd.is_finite() || sd.is_nan() {
                    sd
                } else {
                    1.0
                }
            })
            .collect();
        Scaler {
            mean: mean.into_iter().map(|m| m as f32).collect(),
            std,
        }
    }

    /// Standardised copy of row-major `x` (f32 arithmetic, identical to PyTorch's
    /// `(x - mean) / std`).
    pub fn transform(&self, x: &[f32]) -> Vec<f32> {
        let f = self.n_features();
        let mut out = Vec::with_capacity(x.len());
        for row in x.chunks_exact(f) {
            for ((&v, &m), &s) in row.iter().zip(&self.mean).zip(&self.std) {
                out.push((v - m) / s);
            }
        }
        out
    }

    /// Undoes [`Scaler::transform`] (up to rounding).
    pub fn inverse_transform(&self, z: &[f32]) -> Vec<f32> {
        let f = self.n_features();
        let mut out = Vec::with_capacity(z.len());
        for row in z.chunks_exact(f) {
            for ((&v, &m), &s) in row.iter().zip(&self.mean).zip(&self.std) {
                out.push(v * s + m);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_moments() {
        // 3 features: varied, constant (std 0 -> 1), negative.
        let x: Vec<f32> = (0..50)
            .flat_map(|i| [i as f32 * 0.5 + 3.0, 7.0, -(i as f32).powi(2)])
            .collect();
        let s = Scaler::fit(&x, 3);
        assert_eq!(s.std[1], 1.0);
        assert_eq!(s.mean[1], 7.0);
        let z = s.transform(&x);
        for j in [0, 2] {
            let col: Vec<f64> = z.iter().skip(j).step_by(3).map(|&v| v as f64).collect();
            let m = col.iter().sum::<f64>() / col.len() as f64;
            let v = col.iter().map(|c| (c - m).powi(2)).sum::<f64>() / col.len() as f64;
            assert!(m.abs() < 1e-5, "mean {m}");
            assert!((v - 1.0).abs() < 1e-4, "var {v}");
        }
        assert!(z.iter().skip(1).step_by(3).all(|&v| v == 0.0));
        let back = s.inverse_transform(&z);
        for (a, b) in back.iter().zip(&x) {
            assert!((a - b).abs() <= 1e-3 * b.abs().max(1.0), "{a} vs {b}");
        }
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Scaler>(&json).unwrap(), s);
        assert_eq!(Scaler::fit(&[], 3), Scaler::identity(3));
    }
}
