//! `driftd.training_runs`: one row per training run, including manual requests waiting to be
//! picked up and triggers that were coalesced into a running one.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, Row};

use crate::control::RowRanges;
use crate::policy::TriggerKind;
use crate::train::{CandidateReport, Strategy};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Requested,
    Running,
    Promoted,
    Kept,
    Failed,
    Cancelled,
    Coalesced,
    /// Nothing to do: every row the run would learn from is already the champion's.
    Skipped,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Requested => "requested",
            RunStatus::Running => "running",
            RunStatus::Promoted => "promoted",
            RunStatus::Kept => "kept",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Coalesced => "coalesced",
            RunStatus::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TrainingRun {
    pub id: i64,
    pub model: String,
    pub trigger: String,
    pub reason: String,
    pub strategy: String,
    pub status: String,
    pub requested_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub champion_version: Option<i64>,
    pub new_version: Option<i64>,
    pub candidates: serde_json::Value,
    pub error: Option<String>,
}

/// A strategy by its stored (and configured) name: `None` for a name that is none of them.
pub fn parse_strategy(name: &str) -> Option<Strategy> {
    use serde::de::{value, Deserialize, IntoDeserializer};
    let name: value::StrDeserializer<'_, value::Error> = name.into_deserializer();
    Strategy::deserialize(name).ok()
}

/// A manual request, claimed by its model's owner (now `running`).
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedRun {
    pub id: i64,
    /// The requested strategy; `None` when the stored name is not one (the model's
    /// `manual_strategy` is used then).
    pub strategy: Option<Strategy>,
    pub reason: String,
}

/// Records a run in `status` and returns its id.
pub async fn create(
    conn: &mut PgConnection,
    model: &str,
    trigger: TriggerKind,
    reason: &str,
    strategy: Strategy,
    status: RunStatus,
) -> Result<i64, sqlx::Error> {
    let id = sqlx::query_scalar(
        "INSERT INTO driftd.training_runs (model, trigger, reason, strategy, status, started_at) \
         VALUES ($1, $2, $3, $4, $5, CASE WHEN $5 = 'running' THEN now() END) RETURNING id",
    )
    .bind(model)
    .bind(trigger.as_str())
    .bind(reason)
    .bind(strategy.as_str())
    .bind(status.as_str())
    .fetch_one(&mut *conn)
    .await?;
    if status == RunStatus::Requested {
        // Wakes the owner's loop at once; its replica's sweep finds the request otherwise.
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(super::REQUEST_CHANNEL)
            .bind(model)
            .execute(conn)
            .await?;
    }
    Ok(id)
}

/// Claims the oldest manual request for `model`, marking it running.
pub async fn claim_requested(
    conn: &mut PgConnection,
    model: &str,
) -> Result<Option<ClaimedRun>, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE driftd.training_runs SET status = 'running', started_at = now() \
         WHERE id = (SELECT id FROM driftd.training_runs WHERE model = $1 AND status = 'requested' \
                     ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) \
         RETURNING id, strategy, reason",
    )
    .bind(model)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(ClaimedRun {
            id: r.try_get("id")?,
            strategy: parse_strategy(r.try_get("strategy")?),
            reason: r.try_get("reason")?,
        })
    })
    .transpose()
}

/// The run's training begins now (after waiting for a training slot, if it had to): its
/// `started_at` is this moment, not when it was requested.
pub async fn mark_running(
    conn: &mut PgConnection,
    id: i64,
    champion_version: Option<i64>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE driftd.training_runs SET status = 'running', started_at = now(), champion_version = $2 WHERE id = $1")
        .bind(id)
        .bind(champion_version)
        .execute(conn)
        .await?;
    Ok(())
}

/// How a run ended.
#[derive(Debug, Clone, Default)]
pub struct RunEnd<'a> {
    pub new_version: Option<i64>,
    /// Every candidate the run trained (none when it trained nothing).
    pub candidates: &'a [CandidateReport],
    pub error: Option<&'a str>,
    /// The rows it read (none when it read nothing, or never ran).
    pub rows: RowRanges,
    pub seed: Option<u64>,
}

pub async fn finish(
    conn: &mut PgConnection,
    id: i64,
    status: RunStatus,
    end: &RunEnd<'_>,
) -> Result<(), sqlx::Error> {
    let first = |r: Option<(i64, i64)>| r.map(|r| r.0);
    let last = |r: Option<(i64, i64)>| r.map(|r| r.1);
    let candidates = match serde_json::to_value(end.candidates) {
        Ok(serde_json::Value::Null) | Err(_) => serde_json::json!([]),
        Ok(c) => c,
    };
    sqlx::query(
        "UPDATE driftd.training_runs SET status = $2, finished_at = now(), new_version = $3, candidates = $4, error = $5, \
             old_first_id = $6, old_last_id = $7, new_first_id = $8, new_last_id = $9, \
             holdout_first_id = $10, holdout_last_id = $11, seed = $12 \
         WHERE id = $1",
    )
    .bind(id)
    .bind(status.as_str())
    .bind(end.new_version)
    .bind(candidates)
    .bind(end.error)
    .bind(first(end.rows.old))
    .bind(last(end.rows.old))
    .bind(first(end.rows.new))
    .bind(last(end.rows.new))
    .bind(first(end.rows.holdout))
    .bind(last(end.rows.holdout))
    // Stored as the same 64 bits: PostgreSQL has no unsigned type.
    .bind(end.seed.map(|s| s as i64))
    .execute(conn)
    .await?;
    Ok(())
}

/// Runs left `running` by a process that died are marked failed when the model is taken up again.
pub async fn fail_orphans(conn: &mut PgConnection, model: &str) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE driftd.training_runs SET status = 'failed', finished_at = now(), error = 'the daemon stopped during training' \
         WHERE model = $1 AND status = 'running'",
    )
    .bind(model)
    .execute(conn)
    .await?
    .rows_affected())
}

const RUN_COLUMNS: &str =
    "id, model, trigger, reason, strategy, status, requested_at, finished_at, \
                           champion_version, new_version, candidates, error";

pub async fn list(
    conn: &mut PgConnection,
    model: &str,
    limit: i64,
) -> Result<Vec<TrainingRun>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {RUN_COLUMNS} FROM driftd.training_runs WHERE model = $1 ORDER BY id DESC LIMIT $2"
    ))
    .bind(model)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(run_of_row).collect()
}

/// Run `id`, if there is one (`driftd retrain --wait` polls it).
pub async fn get(conn: &mut PgConnection, id: i64) -> Result<Option<TrainingRun>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {RUN_COLUMNS} FROM driftd.training_runs WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(run_of_row).transpose()
}

fn run_of_row(r: &sqlx::postgres::PgRow) -> Result<TrainingRun, sqlx::Error> {
    Ok(TrainingRun {
        id: r.try_get("id")?,
        model: r.try_get("model")?,
        trigger: r.try_get("trigger")?,
        reason: r.try_get("reason")?,
        strategy: r.try_get("strategy")?,
        status: r.try_get("status")?,
        requested_at: r.try_get("requested_at")?,
        finished_at: r.try_get("finished_at")?,
        champion_version: r.try_get("champion_version")?,
        new_version: r.try_get("new_version")?,
        candidates: r.try_get("candidates")?,
        error: r.try_get("error")?,
    })
}
