//! Read-only views of driftd's schema for progress reports and summaries (the demo's):
//! monitor progress, drift events, training runs and versions in brief.

use sqlx::{PgConnection, Row};

/// Rows folded into the monitor and the newest count window's accuracy (`None`: no state yet).
pub async fn monitor_progress(
    conn: &mut PgConnection,
    model: &str,
) -> Result<Option<(i64, Option<f64>)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT rows_processed, \
                (state->'count_windows'->0->'stats'->>'correct')::float8 / \
                nullif((state->'count_windows'->0->'stats'->>'n')::float8, 0) AS accuracy \
         FROM driftd.monitor_state WHERE model = $1",
    )
    .bind(model)
    .fetch_optional(conn)
    .await?;
    row.map(|r| Ok((r.try_get("rows_processed")?, r.try_get("accuracy")?)))
        .transpose()
}

/// Rows consumed for `model`: folded into the monitor or set aside as rejected.
pub async fn rows_consumed(conn: &mut PgConnection, model: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT coalesce((SELECT rows_processed FROM driftd.monitor_state WHERE model = $1), 0) \
                + (SELECT count(*) FROM driftd.rejected_rows WHERE model = $1)",
    )
    .bind(model)
    .fetch_one(conn)
    .await
}

/// Whether a training of `model` is waiting or running.
pub async fn training_pending(conn: &mut PgConnection, model: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM driftd.training_runs \
                        WHERE model = $1 AND status IN ('requested', 'running'))",
    )
    .bind(model)
    .fetch_one(conn)
    .await
}

/// One recorded drift detection.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftDetection {
    pub detector: String,
    pub row_index: i64,
    /// The detector's estimate (NaN when it gave none).
    pub estimate: f64,
}

/// Every drift detection of `model`, in row order.
pub async fn drift_detections(
    conn: &mut PgConnection,
    model: &str,
) -> Result<Vec<DriftDetection>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT detector, row_index, coalesce(estimate, 'NaN') AS estimate FROM driftd.drift_events \
         WHERE model = $1 AND kind = 'drift' ORDER BY row_index",
    )
    .bind(model)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(DriftDetection {
                detector: r.try_get("detector")?,
                row_index: r.try_get("row_index")?,
                estimate: r.try_get("estimate")?,
            })
        })
        .collect()
}

/// A training run in brief, with the strategy of the version it produced.
#[derive(Debug, Clone)]
pub struct RunBrief {
    pub id: i64,
    pub trigger: String,
    pub strategy: String,
    pub status: String,
    pub new_version: Option<i64>,
    pub candidates: serde_json::Value,
    pub chosen_strategy: Option<String>,
}

pub async fn run_briefs(
    conn: &mut PgConnection,
    model: &str,
) -> Result<Vec<RunBrief>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT r.id, r.trigger, r.strategy, r.status, r.new_version, r.candidates, \
                v.strategy AS chosen_strategy \
         FROM driftd.training_runs r LEFT JOIN driftd.model_versions v \
           ON v.model = r.model AND v.version = r.new_version \
         WHERE r.model = $1 ORDER BY r.id",
    )
    .bind(model)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(RunBrief {
                id: r.try_get("id")?,
                trigger: r.try_get("trigger")?,
                strategy: r.try_get("strategy")?,
                status: r.try_get("status")?,
                new_version: r.try_get("new_version")?,
                candidates: r.try_get("candidates")?,
                chosen_strategy: r.try_get("chosen_strategy")?,
            })
        })
        .collect()
}

/// A registered version in brief.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionBrief {
    pub version: i64,
    pub strategy: String,
    pub trigger: String,
    /// Holdout accuracy of the version and of the champion it replaced (time-ordered holdout).
    pub holdout_accuracy: Option<f64>,
    pub champion_holdout_accuracy: Option<f64>,
    /// The newest row (outcome id) it was trained on.
    pub cutoff_id: Option<i64>,
}

pub async fn version_briefs(
    conn: &mut PgConnection,
    model: &str,
) -> Result<Vec<VersionBrief>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT version, strategy, trigger, \
                (holdout_metrics->'holdout'->>'accuracy')::float8 AS holdout, \
                (holdout_metrics->'champion_holdout'->>'accuracy')::float8 AS champion_holdout, \
                cutoff_id \
         FROM driftd.model_versions WHERE model = $1 ORDER BY version",
    )
    .bind(model)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(VersionBrief {
                version: r.try_get("version")?,
                strategy: r.try_get("strategy")?,
                trigger: r.try_get("trigger")?,
                holdout_accuracy: r.try_get("holdout")?,
                champion_holdout_accuracy: r.try_get("champion_holdout")?,
                cutoff_id: r.try_get("cutoff_id")?,
            })
        })
        .collect()
}
