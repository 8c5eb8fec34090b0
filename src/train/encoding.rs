//! Categorical inputs: each categorical feature's value (a code, see `domain::category`)
//! becomes a one-hot block over its vocabulary, plus one "other" input for anything else.
//!
//! The encoded row is the numeric features in their order, then one block per categorical
//! feature, in feature order: `[v_1, …, v_K, other]`. The vocabulary is part of the version
//! (the artifact and its export): the most frequent codes of the training rows, up to
//! `max_categories`, ties to the lower code. An update over a champion keeps the champion's
//! codes where they are and appends new ones (up to the limit), so a fine-tune or an
//! ensemble starts from the champion with its first layer widened (see [`widen_inputs`]).
//!
//! Pure arithmetic: no libtorch. The serving predictor and `predict` both encode with it.

use std::collections::BTreeMap;

use super::artifact::{Member, ModelArtifact};
use super::mlp::Arch;
use super::{Result, TrainError};
use crate::domain::Dataset;

pub use crate::domain::encoding::{Encoding, Vocabulary};

impl Encoding {
    /// The vocabulary of the training rows: per feature of `categorical`, the codes of
    /// `previous` (a champion's) in place, then the most frequent others, up to `max`.
    pub fn learn(
        rows: &[&Dataset],
        n_raw: usize,
        categorical: &[usize],
        max: usize,
        previous: Option<&Encoding>,
    ) -> Encoding {
        let vocabularies = categorical
            .iter()
            .map(|&feature| {
                let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
                for d in rows {
                    for row in d.x.chunks_exact(n_raw) {
                        *counts.entry(row[feature] as u32).or_default() += 1;
                    }
                }
                let mut codes: Vec<f32> = previous
                    .and_then(|p| p.vocabularies.iter().find(|v| v.feature == feature))
                    .map(|v| v.codes.clone())
                    .unwrap_or_default();
                let mut by_count: Vec<(u32, usize)> = counts.into_iter().collect();
                by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                for (code, _) in by_count {
                    if codes.len() >= max {
                        break;
                    }
                    if !codes.contains(&(code as f32)) {
                        codes.push(code as f32);
                    }
                }
                Vocabulary { feature, codes }
            })
            .collect();
        Encoding {
            n_raw,
            vocabularies,
        }
    }

    /// Encodes a dataset's rows (labels, times and ids kept).
    pub fn encode_dataset(&self, d: &Dataset) -> Dataset {
        Dataset {
            x: self.encode(&d.x),
            n_features: self.width(),
            ..d.clone()
        }
    }

    /// Where each of `self`'s inputs is in `to`'s (which holds every code of `self` in the
    /// same order, and maybe more).
    fn columns_in(&self, to: &Encoding) -> Result<Vec<usize>> {
        if to.n_raw != self.n_raw || to.vocabularies.len() != self.vocabularies.len() {
            return Err(TrainError::InvalidInput(
                "the vocabularies are for different features".into(),
            ));
        }
        let numeric = self.n_raw - self.vocabularies.len();
        let mut cols: Vec<usize> = (0..numeric).collect();
        let mut at = numeric;
        for (a, b) in self.vocabularies.iter().zip(&to.vocabularies) {
            if a.feature != b.feature || b.codes.get(..a.codes.len()) != Some(&a.codes[..]) {
                return Err(TrainError::InvalidInput(format!(
                    "feature {}'s vocabulary does not extend the champion's",
                    a.feature
                )));
            }
            cols.extend(at..at + a.codes.len());
            // "other" stays the block's last input.
            cols.push(at + b.codes.len());
            at += b.codes.len() + 1;
        }
        Ok(cols)
    }
}

/// `artifact` (encoded with `from`) taking `to`'s wider inputs: each new input starts with
/// zero weights (and an identity scaler), so a fine-tune or an ensemble starts from it.
pub fn widen_inputs(
    artifact: &ModelArtifact,
    from: &Encoding,
    to: &Encoding,
) -> Result<ModelArtifact> {
    let cols = from.columns_in(to)?;
    let width = to.width();
    let arch = Arch {
        n_features: width,
        ..artifact.arch.clone()
    };
    let members = artifact
        .members
        .iter()
        .map(|m| {
            let mut layers = m.layers(&artifact.arch)?;
            let first = &mut layers[0];
            let mut w = vec![0.0; first.out * width];
            for o in 0..first.out {
                for (i, &c) in cols.iter().enumerate() {
                    w[o * width + c] = first.w[o * first.inp + i];
                }
            }
            first.w = w;
            first.inp = width;
            let mut scaler = crate::train::Scaler::identity(width);
            for (i, &c) in cols.iter().enumerate() {
                scaler.mean[c] = m.scaler.mean[i];
                scaler.std[c] = m.scaler.std[i];
            }
            Ok(Member::from_layers(scaler, &layers))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ModelArtifact {
        arch,
        members,
        ensemble: artifact.ensemble.clone(),
        encoding: Some(to.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(x: Vec<f32>) -> Dataset {
        let n = x.len() / 3;
        Dataset {
            x,
            n_features: 3,
            y: vec![0.0; n],
            ts: (0..n as i64).collect(),
            ids: (0..n as i64).collect(),
        }
    }

    #[test]
    fn the_most_frequent_codes_get_inputs_and_the_rest_is_other() {
        // Feature 1 is categorical: code 7 ×3, 5 ×2, 9 ×1.
        let d = rows(vec![
            0.5, 7.0, 1.0, 0.1, 5.0, 2.0, 0.2, 7.0, 3.0, 0.3, 9.0, 4.0, 0.4, 5.0, 5.0, 0.6, 7.0,
            6.0,
        ]);
        let e = Encoding::learn(&[&d], 3, &[1], 2, None);
        assert_eq!(e.vocabularies[0].codes, vec![7.0, 5.0]);
        assert_eq!(e.width(), 2 + 3);
        assert_eq!(e.encode(&[0.5, 7.0, 1.0]), vec![0.5, 1.0, 1.0, 0.0, 0.0]);
        // An unseen code and one left out go to "other".
        assert_eq!(e.encode(&[0.5, 9.0, 1.0]), vec![0.5, 1.0, 0.0, 0.0, 1.0]);
        assert_eq!(e.encode(&[0.5, 42.0, 1.0]), vec![0.5, 1.0, 0.0, 0.0, 1.0]);
        assert!(e.is_unknown(1, 9.0) && !e.is_unknown(1, 5.0));
        // A later vocabulary keeps the champion's codes in place and adds new ones.
        let later = rows(vec![0.0, 11.0, 0.0, 0.0, 11.0, 0.0, 0.0, 7.0, 0.0]);
        let grown = Encoding::learn(&[&later], 3, &[1], 3, Some(&e));
        assert_eq!(grown.vocabularies[0].codes, vec![7.0, 5.0, 11.0]);
        assert_eq!(e.columns_in(&grown).unwrap(), vec![0, 1, 2, 3, 5]);
        // Never fewer than the champion's.
        let capped = Encoding::learn(&[&later], 3, &[1], 1, Some(&e));
        assert_eq!(capped.vocabularies[0].codes, vec![7.0, 5.0]);
    }
}
