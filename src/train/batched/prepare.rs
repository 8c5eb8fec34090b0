//! Turning rows into a [`Job`]: validation split, scaler, standardised rows, targets,
//! recency weights.

use super::{Job, JobSpec, INIT_SALT};
use crate::config::train::EarlyStopping;
use crate::domain::Dataset;
use crate::train::artifact::Member;
use crate::train::mlp::{he_init, Arch};
use crate::train::recency::recency_weights;
use crate::train::scaler::Scaler;
use crate::train::{Result, TrainError};

/// Turns raw rows into a [`Job`]: the newest `validation_fraction` of the rows becomes the
/// validation split (with early stopping), the scaler is the parent's (fine-tuning) or fitted
/// on the training rows, rows are standardised, recency weights computed.
pub(crate) fn prepare_job(
    arch: &Arch,
    data: &Dataset,
    init: Option<&Member>,
    spec: &JobSpec,
    early_stopping: Option<&EarlyStopping>,
    half_life: Option<f64>,
) -> Result<(Job, Scaler)> {
    if data.n_features != arch.n_features {
        return Err(TrainError::InvalidInput(format!(
            "data has {} features, the model {}",
            data.n_features, arch.n_features
        )));
    }
    if data.is_empty() {
        return Err(TrainError::InvalidInput(format!(
            "no training rows for {}",
            spec.label
        )));
    }
    let data = data.time_ordered();
    let (train, val) = match early_stopping {
        Some(es) => data.split_newest(es.validation_fraction),
        None => (data, Dataset::empty(arch.n_features)),
    };
    let (scaler, init_layers) = match init {
        Some(m) => (m.scaler.clone(), m.layers(arch)?),
        None => (
            Scaler::fit(&train.x, arch.n_features),
            he_init(arch, spec.seed ^ INIT_SALT),
        ),
    };
    if scaler.n_features() != arch.n_features {
        return Err(TrainError::InvalidInput(
            "scaler and data disagree on n_features".into(),
        ));
    }
    let weights = match (half_life, train.max_ts()) {
        (Some(h), Some(t_ref)) => Some(recency_weights(&train.ts, t_ref, h)),
        _ => None,
    };
    let job = Job {
        label: spec.label.clone(),
        init: init_layers,
        x: scaler.transform(&train.x),
        y: train.y.clone(),
        weights,
        val_x: scaler.transform(&val.x),
        val_y: val.y.clone(),
        lr: spec.lr,
        epochs: spec.epochs,
        max_steps: spec.max_steps,
        freeze: spec.freeze.min(arch.hidden.len()),
        seed: spec.seed,
    };
    Ok((job, scaler))
}

/// Labels as the targets of the output layer: `[n, 1]` 0/1 for binary, one-hot otherwise.
pub(super) fn targets(arch: &Arch, y: &[f32], out: &mut Vec<f32>) {
    let c = arch.n_outputs();
    if c == 1 {
        out.extend_from_slice(y);
    } else {
        for &v in y {
            let start = out.len();
            out.resize(start + c, 0.0);
            out[start + v as usize] = 1.0;
        }
    }
}
