//! driftd's monitor state in PostgreSQL: a model's watermark and snapshot, written together
//! with the batch's rejected rows and drift events in one transaction (one statement each).

use sqlx::{PgConnection, Row};

use super::counted::{self, Corrections, CorruptChunk, CountedIds};
use crate::config::ModelConfig;
use crate::control::ModelState;
use crate::estimate::Estimates;
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
    #[error("stored ledger of model {model} is unreadable: {source}")]
    CorruptLedger { model: String, source: CorruptChunk },
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
            StoreError::Corrupt { .. } | StoreError::CorruptLedger { .. } => "corrupt_state",
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
    let folded = fold_old_ledger(conn, &cfg.name).await?;
    if folded > 0 {
        tracing::info!(model = %cfg.name, rows = folded, "old label ledger folded into driftd.counted_ids");
    }
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
    /// The chunks the batch's rows fall in, with the rows counted now.
    pub counted: &'a CountedIds,
    /// Rows counted before, back with a corrected label.
    pub corrections: &'a Corrections,
}

/// The counted ids of the chunks that the polled rows `ids` fall in
/// (`driftd.counted_ids`): a row among them that was counted before is back because its
/// label was corrected, and is not counted again. Chunks in `cached` (the last batch's, as
/// committed) are not read again.
pub async fn counted_ids(
    conn: &mut PgConnection,
    model: &str,
    ids: &[i64],
    cached: Option<CountedIds>,
) -> Result<CountedIds, StoreError> {
    let wanted = counted::chunks_of(ids.iter().copied());
    let missing = CountedIds::missing(&wanted, cached.as_ref());
    let stored: Vec<(i64, Vec<u8>)> = if missing.is_empty() {
        Vec::new()
    } else {
        sqlx::query_as(
            "SELECT chunk, ids FROM driftd.counted_ids WHERE model = $1 AND chunk = ANY($2)",
        )
        .bind(model)
        .bind(&missing)
        .fetch_all(conn)
        .await?
    };
    CountedIds::assemble(&wanted, cached, &stored).map_err(|source| StoreError::CorruptLedger {
        model: model.to_string(),
        source,
    })
}

/// Folds the model's rows of the old one-row-per-id ledger (`driftd.label_ledger`, migration
/// 0030) into `driftd.counted_ids` and `driftd.label_corrections`, and deletes them, in one
/// transaction. Nothing to do (one index probe) once done.
pub async fn fold_old_ledger(conn: &mut PgConnection, model: &str) -> Result<u64, StoreError> {
    use sqlx::Connection;
    let mut tx = conn.begin().await?;
    let old: Vec<(i64, i32, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "DELETE FROM driftd.label_ledger WHERE model = $1 \
         RETURNING source_id, corrections, last_labeled_at",
    )
    .bind(model)
    .fetch_all(&mut *tx)
    .await?;
    if old.is_empty() {
        return Ok(0);
    }
    let ids: Vec<i64> = old.iter().map(|r| r.0).collect();
    let mut counted = counted_ids(&mut tx, model, &ids, None).await?;
    let mut corrected = Corrections::default();
    for &(id, corrections, at) in &old {
        counted.insert(id);
        if corrections > 0 {
            corrected.push(id, at);
        }
    }
    write_counted(&mut tx, model, &counted).await?;
    let counts: Vec<i32> = old.iter().filter(|r| r.1 > 0).map(|r| r.1).collect();
    sqlx::query(
        "INSERT INTO driftd.label_corrections (model, source_id, corrections, last_labeled_at) \
         SELECT $1, * FROM UNNEST($2::int8[], $3::int4[], $4::timestamptz[]) \
         ON CONFLICT (model, source_id) DO UPDATE \
         SET corrections = label_corrections.corrections + excluded.corrections, \
             last_labeled_at = greatest(label_corrections.last_labeled_at, excluded.last_labeled_at)",
    )
    .bind(model)
    .bind(&corrected.ids)
    .bind(&counts)
    .bind(&corrected.labeled_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(old.len() as u64)
}

/// Writes the batch atomically; the watermark only moves if it is still where we left it.
pub async fn commit(conn: &mut PgConnection, b: &BatchCommit<'_>) -> Result<(), StoreError> {
    use sqlx::Connection;
    let mut tx = conn.begin().await?;
    insert_rejected(&mut tx, b).await?;
    insert_events(&mut tx, b).await?;
    write_counted(&mut tx, b.model, b.counted).await?;
    count_corrections(&mut tx, b).await?;
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

/// Stores what the core decided after the batch at `at` (the policy's memory: a drift
/// request clears the drift it noted, an update resets the counts), at the same watermark.
/// Without it a restart before the next batch would decide again on what was already acted
/// on (a second update for one drift). A replica that took the model over moved the
/// watermark: [`StoreError::Conflict`].
pub async fn store_decisions(
    conn: &mut PgConnection,
    model: &str,
    at: Watermark,
    state: &ModelState,
) -> Result<(), StoreError> {
    let updated = sqlx::query(
        "UPDATE driftd.monitor_state SET state = $2, updated_at = now() \
         WHERE model = $1 AND ( \
            ($3 AND watermark_id IS NULL) OR \
            (watermark_labeled_at = $4 AND watermark_id = $5))",
    )
    .bind(model)
    .bind(sqlx::types::Json(state))
    .bind(at == Watermark::start())
    .bind(at.labeled_at)
    .bind(at.id)
    .execute(conn)
    .await?
    .rows_affected();
    if updated != 1 {
        return Err(StoreError::Conflict(model.to_string()));
    }
    Ok(())
}

/// The chunks of counted ids that changed, in one statement.
async fn write_counted(
    conn: &mut PgConnection,
    model: &str,
    counted: &CountedIds,
) -> Result<(), sqlx::Error> {
    let (chunks, bytes) = counted.changed();
    if chunks.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO driftd.counted_ids (model, chunk, ids) \
         SELECT $1, * FROM UNNEST($2::int8[], $3::bytea[]) \
         ON CONFLICT (model, chunk) DO UPDATE SET ids = excluded.ids",
    )
    .bind(model)
    .bind(&chunks)
    .bind(&bytes)
    .execute(conn)
    .await?;
    Ok(())
}

/// The batch's corrected rows, in one statement: one row each in `driftd.label_corrections`,
/// whose count goes up by one per correction.
async fn count_corrections(
    conn: &mut PgConnection,
    b: &BatchCommit<'_>,
) -> Result<(), sqlx::Error> {
    if b.corrections.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO driftd.label_corrections (model, source_id, corrections, last_labeled_at) \
         SELECT $1, id, 1, at FROM UNNEST($2::int8[], $3::timestamptz[]) AS u(id, at) \
         ON CONFLICT (model, source_id) DO UPDATE \
         SET corrections = label_corrections.corrections + 1, last_labeled_at = excluded.last_labeled_at",
    )
    .bind(b.model)
    .bind(&b.corrections.ids)
    .bind(&b.corrections.labeled_at)
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

/// The scored side of the estimate (`driftd.estimates`): its windows and read position, or
/// `None` before the first estimated batch.
pub async fn load_estimates(
    conn: &mut PgConnection,
    model: &str,
) -> Result<Option<(Estimates, Watermark)>, StoreError> {
    let row: Option<(chrono::DateTime<chrono::Utc>, i64, String)> = sqlx::query_as(
        "SELECT scored_created_at, scored_id, state::text FROM driftd.estimates WHERE model = $1",
    )
    .bind(model)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((labeled_at, id, text)) = row else {
        return Ok(None);
    };
    let state = serde_json::from_str(&text).map_err(|source| StoreError::Corrupt {
        model: model.to_string(),
        source,
    })?;
    Ok(Some((state, Watermark { labeled_at, id })))
}

/// Stores the estimate after a batch of scored rows: windows and read position together, and
/// only if the stored position is still `from` (else [`StoreError::Conflict`]: another
/// replica got there first, and nothing is applied).
pub async fn commit_estimates(
    conn: &mut PgConnection,
    model: &str,
    from: Watermark,
    to: Watermark,
    estimates: &Estimates,
) -> Result<(), StoreError> {
    // A first batch inserts; a later one updates from `from`. A first batch that finds a row
    // (another replica's), and a later one that finds another position, change nothing.
    let updated = sqlx::query(
        "INSERT INTO driftd.estimates AS e (model, scored_created_at, scored_id, rows_estimated, state) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (model) DO UPDATE SET scored_created_at = excluded.scored_created_at, \
            scored_id = excluded.scored_id, rows_estimated = excluded.rows_estimated, \
            state = excluded.state, updated_at = now() \
         WHERE e.scored_created_at = $6 AND e.scored_id = $7",
    )
    .bind(model)
    .bind(to.labeled_at)
    .bind(to.id)
    .bind(estimates.rows as i64)
    .bind(sqlx::types::Json(estimates))
    .bind(from.labeled_at)
    .bind(from.id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated != 1 {
        return Err(StoreError::Conflict(model.to_string()));
    }
    Ok(())
}
