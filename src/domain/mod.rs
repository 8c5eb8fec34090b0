//! The core's own types, pure: the read position ([`Watermark`]), a validated row
//! ([`Outcome`]) and the rules that make one ([`RowRules`]), a model's [`Task`], the update
//! [`Strategy`], the row-major labelled rows that training reads ([`Dataset`]) and what a
//! version predicted on its holdout ([`HoldoutTrace`]).
//!
//! Everything here is plain data and arithmetic: no database, no async, no libtorch, no
//! files. `control`, `policy`, `monitor`, `detect` and `feature_drift` import these from
//! here, not from the I/O modules that produce or consume them (`outcomes`, `train`);
//! `tests/it/architecture.rs` checks it.

pub mod category;
mod dataset;
pub mod encoding;
mod holdout_trace;
mod outcome;
pub mod packed;
mod strategy;
mod task;
mod watermark;

pub use category::category_code;
pub use dataset::{Dataset, ShapeError};
pub use holdout_trace::HoldoutTrace;
pub use outcome::{features_f32, fits_f32, Outcome, RejectReason, Rejection, RowDefect, RowRules};
pub use strategy::{CandidateSpec, Strategy};
pub use task::{Classes, Task, MAX_CLASSES};
pub use watermark::Watermark;
