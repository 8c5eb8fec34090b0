//! A model that learns a class it has never output: its output layer widened, what it knew
//! kept. Each new class gets a unit whose weights and bias start at zero, so fine-tuning and
//! ensembles start from the champion as it was.
//!
//! A binary model (one sigmoid logit `z`, P(class 1) = σ(z)) becomes a softmax over the
//! logits `[0, z, 0, …]`: softmax([0, z]) = [1 − σ(z), σ(z)], so its two classes keep
//! their relative odds, and each new class starts with the odds of class 0.

use super::artifact::{Member, ModelArtifact};
use super::mlp::{Arch, Linear};
use super::{Result, TrainError};

/// `artifact` with outputs for `n_classes` classes (at least its own).
pub fn widen(artifact: &ModelArtifact, n_classes: usize) -> Result<ModelArtifact> {
    let from = &artifact.arch;
    if n_classes < from.n_classes {
        return Err(TrainError::InvalidInput(format!(
            "a model of {} classes cannot shrink to {n_classes}",
            from.n_classes
        )));
    }
    if n_classes == from.n_classes {
        return Ok(artifact.clone());
    }
    let arch = Arch {
        n_classes,
        ..from.clone()
    };
    let members = artifact
        .members
        .iter()
        .map(|m| {
            let mut layers = m.layers(from)?;
            let last = layers.last_mut().expect("an output layer");
            *last = widen_output(last, from.is_binary(), n_classes);
            Ok(Member::from_layers(m.scaler.clone(), &layers))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ModelArtifact {
        arch,
        members,
        ensemble: artifact.ensemble.clone(),
        encoding: artifact.encoding.clone(),
    })
}

/// The output layer with `n_classes` softmax units: a binary logit becomes class 1's (class
/// 0's is zero), and every unit it did not have is zero.
fn widen_output(out: &Linear, binary: bool, n_classes: usize) -> Linear {
    let inp = out.inp;
    let mut w = vec![0.0; n_classes * inp];
    let mut b = vec![0.0; n_classes];
    let first = usize::from(binary);
    w[first * inp..(first + out.out) * inp].copy_from_slice(&out.w);
    b[first..first + out.out].copy_from_slice(&out.b);
    Linear {
        inp,
        out: n_classes,
        w,
        b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::{predict, Scaler};

    fn model(n_classes: usize) -> ModelArtifact {
        let arch = Arch::new(3, &[4], n_classes);
        let layers: Vec<Linear> = arch
            .layer_dims()
            .into_iter()
            .enumerate()
            .map(|(l, (inp, out))| Linear {
                inp,
                out,
                w: (0..inp * out)
                    .map(|i| ((i * 7 + l * 3) % 11) as f32 / 5.0 - 1.0)
                    .collect(),
                b: (0..out).map(|i| i as f32 / 10.0 - 0.1).collect(),
            })
            .collect();
        let scaler = Scaler {
            mean: vec![0.0; 3],
            std: vec![1.0; 3],
        };
        ModelArtifact::single(arch, Member::from_layers(scaler, &layers))
    }

    const X: [f32; 9] = [0.5, -1.0, 2.0, 1.5, 0.2, -0.3, -2.0, 1.0, 0.0];

    #[test]
    fn a_binary_model_keeps_its_odds_and_starts_the_new_class_at_class_0s() {
        let binary = model(2);
        let grown = widen(&binary, 3).unwrap();
        grown.validate().unwrap();
        let (before, after) = (predict(&binary, &X).unwrap(), predict(&grown, &X).unwrap());
        assert_eq!(after.n_classes, 3);
        for i in 0..3 {
            let (p0, p1, p2) = (after.prob(i, 0), after.prob(i, 1), after.prob(i, 2));
            // Class 1 against class 0: the binary model's odds.
            let odds = before.prob(i, 1) / before.prob(i, 0);
            assert!((p1 / p0 - odds).abs() < 1e-4 * odds, "{p1} {p0} {odds}");
            assert!((p2 - p0).abs() < 1e-6, "{p2} {p0}");
            assert!((p0 + p1 + p2 - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn a_multiclass_model_keeps_its_logits_and_the_new_units_are_zero() {
        let three = model(3);
        let five = widen(&three, 5).unwrap();
        let last = |a: &ModelArtifact| a.members[0].layers(&a.arch).unwrap().pop().unwrap();
        let (old, new) = (last(&three), last(&five));
        assert_eq!(new.w[..old.w.len()], old.w[..]);
        assert_eq!(new.b[..3], old.b[..]);
        assert!(new.w[old.w.len()..]
            .iter()
            .chain(&new.b[3..])
            .all(|&v| v == 0.0));
        let (p3, p5) = (predict(&three, &X).unwrap(), predict(&five, &X).unwrap());
        for i in 0..3 {
            assert_eq!(p3.labels[i], p5.labels[i]);
        }
        assert!(widen(&five, 4).is_err());
        assert_eq!(widen(&five, 5).unwrap(), five);
    }
}
