//! Model training: a libtorch MLP (via `tch`), its standardising scaler, the model-update
//! strategies, the `auto` tournament on a time-ordered holdout, and model artifacts.
//!
//! Pure compute: no database, no async. The daemon calls [`run_update`] on a blocking thread
//! and records the returned [`UpdateOutcome`].
//!
//! Its inputs are pure types of the core, re-exported here: [`TrainConfig`] (in
//! `config::train`: serde, documented defaults), [`Strategy`] and [`Dataset`] (row-major
//! features, labels, timestamps, ids; both in `domain`).
//!
//! Layout:
//! - [`scaler`]: [`Scaler`], per-feature standardisation stored with every ensemble member.
//! - [`mlp`]: the architecture ([`Arch`]), He-normal initialisation, inference.
//! - [`batched`]: the training engine. K models of one architecture are trained *together*:
//!   weights are stacked into `[K, out, in]` tensors and one `baddbmm`/`bmm` step updates all
//!   K; the forward/backward pass and the SGD-momentum update are written by hand with
//!   in-place tensor ops (no autograd, no `nn::Optimizer`), so one step costs ~25 small ops.
//!   A single fit is the K = 1 case.
//! - [`strategy`]: how each strategy turns (champion, old, new) into training jobs.
//! - [`tournament`]: [`run_update`] by stage (plan, train, score, select, gate), holdout
//!   scoring, the promotion gate (margin + McNemar).
//! - [`verdict`]: the gate's typed [`Verdict`] (`Promote`, `Keep(reason)`), whose `Display`
//!   is the stored reason.
//! - [`artifact`]: [`ModelArtifact`], safetensors export/import, JSON sidecar, prediction.
//! - [`encoding`]: categorical features' one-hot inputs and vocabularies.
//! - [`widen`]: a champion's output layer widened for a class it has never output.
//! - [`synth`]: a `make_classification`-style generator for tests, examples and benches.

pub mod artifact;
pub mod batched;
pub mod encoding;
pub mod mlp;
pub mod recency;
pub mod scaler;
pub mod strategy;
pub mod synth;
pub mod tournament;
pub mod verdict;
pub mod widen;

pub use crate::config::train::{DeviceChoice, EarlyStopping, SelectionMetric, TrainConfig, Window};
pub use crate::domain::{CandidateSpec, Dataset, Strategy};
pub use artifact::{
    predict, predict_proba, Ensemble, Member, ModelArtifact, NamedTensor, Predictions,
};
pub use batched::{fit, FitOptions, FitStats};
pub use mlp::{Activation, Arch};
pub use scaler::Scaler;
pub use tournament::{
    run_update, score, Candidate, CandidateReport, ClassGrowth, Scores, UpdateOutcome,
    UpdateRequest,
};
pub use verdict::{Comparison, KeepReason, Promotion, Verdict};

/// Errors from training, scoring and artifact handling.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The caller's cancel flag was raised; nothing was produced.
    #[error("training cancelled")]
    Cancelled,
    /// A non-finite loss, or a training loss above `divergence_factor` × the initial loss.
    #[error("training diverged: {0}")]
    Diverged(String),
    /// An invalid [`TrainConfig`]; the message starts with the field name.
    #[error("{0}")]
    Config(String),
    /// Inconsistent shapes, labels out of range, empty data where rows are needed, ...
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A malformed artifact (safetensors bytes or sidecar).
    #[error("invalid model artifact: {0}")]
    Artifact(String),
    /// An error reported by libtorch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;

impl From<crate::domain::ShapeError> for TrainError {
    fn from(e: crate::domain::ShapeError) -> Self {
        TrainError::InvalidInput(e.0)
    }
}

/// The libtorch device `choice` names; an error if it asks for CUDA and there is none.
pub fn device(choice: DeviceChoice) -> Result<tch::Device> {
    match choice {
        DeviceChoice::Cpu => Ok(tch::Device::Cpu),
        DeviceChoice::Auto => Ok(tch::Device::cuda_if_available()),
        DeviceChoice::Cuda => {
            if tch::Cuda::is_available() {
                Ok(tch::Device::Cuda(0))
            } else {
                Err(TrainError::InvalidInput(
                    "device = \"cuda\" but CUDA is not available".into(),
                ))
            }
        }
    }
}
