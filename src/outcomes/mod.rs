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

pub use query::{OutcomeSource, RawOutcome, TrainingRow};
pub use validate::{fits_f32, validate, Outcome, RejectReason, Rejection};

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// Position of the last consumed row in `(labeled_at, id)` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    pub labeled_at: DateTime<Utc>,
    pub id: i64,
}

impl Watermark {
    /// Whether `self` comes after `other` in poll order (`labeled_at`, then `id`).
    pub fn is_after(&self, other: Watermark) -> bool {
        (self.labeled_at, self.id) > (other.labeled_at, other.id)
    }

    /// Before every row: year 1 is inside PostgreSQL's range and before any real label.
    pub fn start() -> Self {
        Watermark {
            labeled_at: Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap(),
            id: i64::MIN,
        }
    }
}
