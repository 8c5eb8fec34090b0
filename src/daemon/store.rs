//! driftd's monitor state in PostgreSQL: a model's watermark and snapshot, written together
//! with the batch's rejected rows and drift events in one transaction (one statement each).

use sqlx::{PgConnection, Row};

use crate::config::ModelConfig;
use crate::control::ModelState;
use crate::monitor::MonitorEvent;
use crate::outcomes::{Rejection, Watermark};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error("stored state of model {model} is unreadable: {source}")]
    Corrupt {
        model: String,
        source: serde_json::Error,
    },
    /// Another writer advanced the watermark since we loaded it; our batch was not applied.
    #[error("watermark of model {0} moved under us; reloading")]
    Conflict(String),
}

impl StoreError {
    /// The `kind` label of `driftd_poll_errors_total`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            StoreError::Db(_) => "database",
            StoreError::Registry(_) => "registry",
            StoreError::Corrupt { .. } => "corrupt_state",
            StoreError::Conflict(_) => "conflict",
        }
    }
}

/// What is durable for one model.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub watermark: Watermark,
    pub rows_rejected: u64,
    pub state: ModelState,
}

/// Reads the model's state, creating it empty on first sight.
pub async fn load(conn: &mut PgConnection, cfg: &ModelConfig) -> Result<Loaded, StoreError> {
    let fresh = ModelState::new(cfg);
    sqlx::query(
        "INSERT INTO driftd.monitor_state (model, state) VALUES ($1, $2) ON CONFLICT (model) DO NOTHING",
    )
    .bind(&cfg.name)
    .bind(sqlx::types::Json(&fresh))
    .execute(&mut *conn)
    .await?;
    let row = sqlx::query(
        "SELECT watermark_labeled_at, watermark_id, rows_rejected, state::text AS state \
         FROM driftd.monitor_state WHERE model = $1",
    )
    .bind(&cfg.name)
    .fetch_one(&mut *conn)
    .await?;
    let watermark = match (
        row.try_get("watermark_labeled_at")?,
        row.try_get::<Option<i64>, _>("watermark_id")?,
    ) {
        (Some(labeled_at), Some(id)) => Watermark { labeled_at, id },
        _ => Watermark::start(),
    };
    let text: String = row.try_get("state")?;
    let snapshot: ModelState =
        serde_json::from_str(&text).map_err(|source| StoreError::Corrupt {
            model: cfg.name.clone(),
            source,
        })?;
    Ok(Loaded {
        watermark,
        rows_rejected: row.try_get::<i64, _>("rows_rejected")? as u64,
        state: ModelState::restore(cfg, snapshot),
    })
}

/// One consumed batch, ready to commit.
pub struct BatchCommit<'a> {
    pub model: &'a str,
    pub from: Watermark,
    pub to: Watermark,
    pub state: &'a ModelState,
    pub rejected: &'a [Rejection],
    pub events: &'a [MonitorEvent],
    pub ledger: &'a LedgerRows,
}

/// Of the polled rows `ids`, those the monitor counted before (`driftd.label_ledger`),
/// sorted: they are back because their label was corrected, and are not counted again.
pub async fn counted_before(
    conn: &mut PgConnection,
    model: &str,
    ids: &[i64],
) -> Result<Vec<i64>, sqlx::Error> {
    let mut seen: Vec<i64> = sqlx::query_scalar(
        "SELECT source_id FROM driftd.label_ledger WHERE model = $1 AND source_id = ANY($2)",
    )
    .bind(model)
    .bind(ids)
    .fetch_all(conn)
    .await?;
    seen.sort_unstable();
    Ok(seen)
}

/// A batch's entries in `driftd.label_ledger`: the rows the monitor counted, and the rows
/// that came back corrected after they were counted ([`counted_before`]).
#[derive(Debug, Default)]
pub struct LedgerRows {
    ids: Vec<i64>,
    labeled_at: Vec<chrono::DateTime<chrono::Utc>>,
    corrections: usize,
}

impl LedgerRows {
    pub fn with_capacity(n: usize) -> Self {
        LedgerRows {
            ids: Vec::with_capacity(n),
            labeled_at: Vec::with_capacity(n),
            corrections: 0,
        }
    }

    pub fn counted(&mut self, id: i64, at: chrono::DateTime<chrono::Utc>) {
        self.ids.push(id);
        self.labeled_at.push(at);
    }

    pub fn corrected(&mut self, id: i64, at: chrono::DateTime<chrono::Utc>) {
        self.counted(id, at);
        self.corrections += 1;
    }

    pub fn corrections(&self) -> usize {
        self.corrections
    }
}

/// Writes the batch atomically; the watermark only moves if it is still where we left it.
pub async fn commit(conn: &mut PgConnection, b: &BatchCommit<'_>) -> Result<(), StoreError> {
    use sqlx::Connection;
    let mut tx = conn.begin().await?;
    insert_rejected(&mut tx, b).await?;
    insert_events(&mut tx, b).await?;
    upsert_ledger(&mut tx, b).await?;
    let from_start = b.from == Watermark::start();
    let updated = sqlx::query(
        "UPDATE driftd.monitor_state SET \
            watermark_labeled_at = $2, watermark_id = $3, rows_processed = $4, \
            rows_rejected = rows_rejected + $5, state = $6, updated_at = now() \
         WHERE model = $1 AND ( \
            ($7 AND watermark_id IS NULL) OR \
            (watermark_labeled_at = $8 AND watermark_id = $9))",
    )
    .bind(b.model)
    .bind(b.to.labeled_at)
    .bind(b.to.id)
    .bind(b.state.monitor.rows as i64)
    .bind(b.rejected.len() as i64)
    .bind(sqlx::types::Json(b.state))
    .bind(from_start)
    .bind(b.from.labeled_at)
    .bind(b.from.id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if updated != 1 {
        tx.rollback().await?;
        return Err(StoreError::Conflict(b.model.to_string()));
    }
    tx.commit().await?;
    Ok(())
}

/// The batch's counted and corrected rows, in one statement: a new row is entered, a
/// correction adds one to its row's count.
async fn upsert_ledger(conn: &mut PgConnection, b: &BatchCommit<'_>) -> Result<(), sqlx::Error> {
    if b.ledger.ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO driftd.label_ledger (model, source_id, last_labeled_at) \
         SELECT $1, * FROM UNNEST($2::int8[], $3::timestamptz[]) \
         ON CONFLICT (model, source_id) DO UPDATE \
         SET corrections = label_ledger.corrections + 1, last_labeled_at = excluded.last_labeled_at",
    )
    .bind(b.model)
    .bind(&b.ledger.ids)
    .bind(&b.ledger.labeled_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The batch's rejected rows, in one statement.
async fn insert_rejected(conn: &mut PgConnection, b: &BatchCommit<'_>) -> Result<(), sqlx::Error> {
    if b.rejected.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = b.rejected.iter().map(|r| r.id).collect();
    let ats: Vec<_> = b.rejected.iter().map(|r| r.labeled_at).collect();
    let reasons: Vec<&str> = b.rejected.iter().map(|r| r.reason.as_str()).collect();
    let details: Vec<&str> = b.rejected.iter().map(|r| r.detail.as_str()).collect();
    sqlx::query(
        "INSERT INTO driftd.rejected_rows (model, source_id, labeled_at, reason, detail) \
         SELECT $1, * FROM UNNEST($2::int8[], $3::timestamptz[], $4::text[], $5::text[]) \
         ON CONFLICT (model, source_id) DO NOTHING",
    )
    .bind(b.model)
    .bind(&ids)
    .bind(&ats)
    .bind(&reasons)
    .bind(&details)
    .execute(conn)
    .await?;
    Ok(())
}

/// The batch's drift events (and warnings), in one statement: in the order the monitor saw
/// them, so that their ids keep that order.
async fn insert_events(conn: &mut PgConnection, b: &BatchCommit<'_>) -> Result<(), sqlx::Error> {
    if b.events.is_empty() {
        return Ok(());
    }
    let n = b.events.len();
    let (mut detectors, mut signals, mut kinds) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut row_ids, mut row_indexes, mut ats, mut estimates) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for e in b.events {
        // Both kinds carry the same fields.
        let (MonitorEvent::Drift {
            detector,
            signal,
            row_id,
            row_index,
            labeled_at,
            estimate,
        }
        | MonitorEvent::Warning {
            detector,
            signal,
            row_id,
            row_index,
            labeled_at,
            estimate,
        }) = e;
        let kind = match e {
            MonitorEvent::Drift { .. } => "drift",
            MonitorEvent::Warning { .. } => "warning",
        };
        let signal = serde_json::to_value(signal).expect("signal serialises");
        detectors.push(detector.as_str());
        signals.push(signal.as_str().unwrap_or("error").to_string());
        kinds.push(kind);
        row_ids.push(*row_id);
        row_indexes.push(*row_index as i64);
        ats.push(*labeled_at);
        estimates.push(estimate.is_finite().then_some(*estimate));
    }
    sqlx::query(
        "INSERT INTO driftd.drift_events \
         (model, detector, signal, kind, row_id, row_index, labeled_at, estimate) \
         SELECT $1, d, s, k, r, i, t, e \
         FROM UNNEST($2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[], \
                     $7::timestamptz[], $8::float8[]) WITH ORDINALITY AS v(d, s, k, r, i, t, e, n) \
         ORDER BY n ON CONFLICT DO NOTHING",
    )
    .bind(b.model)
    .bind(&detectors)
    .bind(&signals)
    .bind(&kinds)
    .bind(&row_ids)
    .bind(&row_indexes)
    .bind(&ats)
    .bind(&estimates)
    .execute(conn)
    .await?;
    Ok(())
}
