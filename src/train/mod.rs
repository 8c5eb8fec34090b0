//! Model training: a libtorch MLP (via `tch`), its standardising scaler, the model-update
//! strategies, the `auto` tournament on a time-ordered holdout, and model artifacts.
//!
//! Pure compute: no database, no async. The daemon calls [`run_update`] on a blocking thread
//! and records the returned [`UpdateOutcome`].
//!
//! Layout:
//! - [`config`]: [`TrainConfig`] (serde, documented defaults) and [`Strategy`].
//! - [`dataset`]: [`Dataset`] (row-major features, labels, timestamps, ids).
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
//! - [`decision`]: the gate's typed [`Decision`] (`Promote`, `Keep(reason)`), whose `Display`
//!   is the stored reason.
//! - [`artifact`]: [`ModelArtifact`], safetensors export/import, JSON sidecar, prediction.
//! - [`synth`]: a `make_classification`-style generator for tests, examples and benches.

pub mod artifact;
pub mod batched;
pub mod config;
pub mod dataset;
pub mod decision;
pub mod mlp;
pub mod scaler;
pub mod strategy;
pub mod synth;
pub mod tournament;

pub use artifact::{
    predict, predict_proba, Ensemble, Member, ModelArtifact, NamedTensor, Predictions,
};
pub use batched::{fit, FitOptions, FitStats};
pub use config::{
    CandidateSpec, DeviceChoice, EarlyStopping, SelectionMetric, Strategy, TrainConfig, Window,
};
pub use dataset::Dataset;
pub use decision::{Comparison, Decision, KeepReason, Promotion};
pub use mlp::{Activation, Arch};
pub use scaler::Scaler;
pub use tournament::{
    run_update, score, Candidate, CandidateReport, Scores, UpdateOutcome, UpdateRequest,
};

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
