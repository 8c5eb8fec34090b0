//! How a model's raw rows (codes at categorical positions) become its MLP's inputs: the
//! vocabularies and the one-hot encoding, shared by the trainer, serving and the shadow
//! challengers of the decision core. How a vocabulary is learnt and widened is `train`'s.

use serde::{Deserialize, Serialize};

/// One categorical feature's inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vocabulary {
    /// Its position among the raw features.
    pub feature: usize,
    /// The codes with an input each, in input order; anything else is "other".
    pub codes: Vec<f32>,
}

/// How raw rows (codes at categorical positions) become the MLP's inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Encoding {
    /// Raw features per row.
    pub n_raw: usize,
    /// One per categorical feature, in feature order.
    pub vocabularies: Vec<Vocabulary>,
}

impl Encoding {
    /// The encoded width: the numeric features, then each vocabulary and its "other".
    pub fn width(&self) -> usize {
        self.n_raw - self.vocabularies.len()
            + self
                .vocabularies
                .iter()
                .map(|v| v.codes.len() + 1)
                .sum::<usize>()
    }

    pub fn is_categorical(&self, i: usize) -> bool {
        self.vocabularies.iter().any(|v| v.feature == i)
    }

    /// Encodes `n` raw rows (row-major) into `width()` inputs each.
    pub fn encode(&self, x: &[f32]) -> Vec<f32> {
        let n = x.len() / self.n_raw.max(1);
        let mut out = Vec::with_capacity(n * self.width());
        for row in x.chunks_exact(self.n_raw) {
            self.encode_row(row, &mut out);
        }
        out
    }

    /// Appends one raw row's inputs to `out`.
    pub fn encode_row(&self, row: &[f32], out: &mut Vec<f32>) {
        out.extend(
            row.iter()
                .enumerate()
                .filter(|(i, _)| !self.is_categorical(*i))
                .map(|(_, &v)| v),
        );
        for v in &self.vocabularies {
            let slot = v
                .codes
                .iter()
                .position(|&c| c == row[v.feature])
                .unwrap_or(v.codes.len());
            let at = out.len();
            out.resize(at + v.codes.len() + 1, 0.0);
            out[at + slot] = 1.0;
        }
    }

    /// Whether a raw value is "other" here (not in its feature's vocabulary).
    pub fn is_unknown(&self, feature: usize, code: f32) -> bool {
        self.vocabularies
            .iter()
            .find(|v| v.feature == feature)
            .is_some_and(|v| !v.codes.contains(&code))
    }
}
