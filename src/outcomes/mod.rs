//! The source: the user's outcomes table. Only this module knows its layout.
//!
//! Rows become visible when their label is written; they are read in `(labeled_at, id)`
//! order with keyset pagination, and only once the label is older than the settle interval,
//! so a transaction that commits late (with an older `labeled_at`) is still read.

pub mod columns;
mod feed;
mod names;
mod query;
mod validate;
mod wire;

pub use crate::domain::fits_f32;
pub use crate::domain::{Outcome, RejectReason, Rejection};
pub use query::{OutcomeSource, RawOutcome, ScoredRaw, TrainingRow};
pub use validate::validate;

pub use crate::domain::Watermark;
