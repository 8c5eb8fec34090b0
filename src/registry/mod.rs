//! The model registry in PostgreSQL: every version's weights (safetensors), sidecar and holdout
//! metrics, exactly one champion per model, and the record of training runs. The only code that
//! writes model weights.

pub mod progress;
pub mod replicas;
mod runs;

pub use runs::{
    claim_requested as runs_claim_requested, create as runs_create,
    fail_orphans as runs_fail_orphans, finish as runs_finish, get as runs_get, list as runs_list,
    mark_running as runs_mark_running, parse_strategy, ClaimedRun, RunEnd, RunStatus, TrainingRun,
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, Row};

use crate::feature_drift::ReferenceSample;
use crate::outcomes::Watermark;
use crate::policy::TriggerKind;
use crate::train::{ModelArtifact, Scores, Strategy};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("stored weights of {model} v{version} are unreadable: {reason}")]
    Corrupt {
        model: String,
        version: i64,
        reason: String,
    },
    #[error("model {model} has no version {version}")]
    NoSuchVersion { model: String, version: i64 },
    #[error("model {0} has no earlier champion to roll back to")]
    NothingToRollBack(String),
    #[error("stored reference sample of {model} v{version} is unreadable: {reason}")]
    CorruptReference {
        model: String,
        version: i64,
        reason: String,
    },
}

/// The channel every change of champion is announced on, with `{"model": …, "version": …}`
/// as payload, from inside the transaction that makes the change (so it arrives on commit).
pub const CHAMPION_CHANNEL: &str = "driftd_champion";

/// The channel a requested (manual) run is announced on, with the model's name as payload.
pub const REQUEST_CHANNEL: &str = "driftd_requests";

async fn notify_champion(
    conn: &mut PgConnection,
    model: &str,
    version: i64,
) -> Result<(), sqlx::Error> {
    let payload = serde_json::json!({ "model": model, "version": version }).to_string();
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHAMPION_CHANNEL)
        .bind(payload)
        .execute(conn)
        .await?;
    Ok(())
}

/// How a version did on its update's holdout (the newest new rows), next to the champion it
/// competed with; stored as `holdout_metrics` JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HoldoutMetrics {
    pub holdout: Option<Scores>,
    pub champion_holdout: Option<Scores>,
    pub n_holdout: usize,
    /// The update's decision, in words.
    pub reason: String,
    /// The version's probabilities calibrated on that holdout, for the estimated accuracy
    /// (`None`: calibrated on its first labelled rows instead; see `crate::estimate`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration: Option<crate::estimate::Calibration>,
    /// Its predictions on the newest holdout rows, which its detectors start from (`None`:
    /// no holdout, or a version registered before they were kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<crate::domain::HoldoutTrace>,
    /// The update learnt classes its parent could not output (a binary model that became
    /// multiclass among them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grew_classes: Option<crate::train::ClassGrowth>,
    /// A shadow promotion's evidence: the challenger and the champion on the same live rows
    /// (then `holdout` is `None`: it had no holdout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<crate::shadow::StandingRecord>,
}

impl HoldoutMetrics {
    pub fn accuracy(&self) -> Option<f64> {
        self.holdout.map(|s| s.accuracy)
    }
}

/// A version's metadata (everything but the weights).
#[derive(Debug, Clone, Serialize)]
pub struct VersionInfo {
    pub model: String,
    pub version: i64,
    pub parent_version: Option<i64>,
    pub strategy: String,
    pub trigger: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub promoted_at: Option<DateTime<Utc>>,
    pub n_train_rows: i64,
    pub n_holdout_rows: i64,
    pub cutoff: Option<Watermark>,
    pub holdout_metrics: HoldoutMetrics,
}

impl VersionInfo {
    /// Without its holdout trace: only the model loop reads it (for the detectors); a
    /// listing or the serving cache would carry up to 1 000 predictions per version for
    /// nothing.
    pub fn without_trace(mut self) -> Self {
        self.holdout_metrics.trace = None;
        self
    }
}

/// Where a new version comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// An update driftd trained with `strategy`, on what `trigger` asked for.
    Trained {
        strategy: Strategy,
        trigger: TriggerKind,
    },
    /// A model trained elsewhere (`driftd import`): stored with strategy and trigger `import`.
    Imported,
    /// A challenger in shadow that beat the champion on the same live rows
    /// (`crate::shadow`): stored with trigger `shadow` and strategy `online`, or `recurring`
    /// for a replaced champion that came back.
    Shadow { recurring: bool },
}

impl Origin {
    /// The stored `strategy` and `trigger` columns.
    fn columns(self) -> (&'static str, &'static str) {
        match self {
            Origin::Trained { strategy, trigger } => (strategy.as_str(), trigger.as_str()),
            Origin::Imported => ("import", "import"),
            Origin::Shadow { recurring } => (
                if recurring { "recurring" } else { "online" },
                TriggerKind::Shadow.as_str(),
            ),
        }
    }
}

/// What a new version is made of.
pub struct NewVersion<'a> {
    pub model: &'a str,
    pub parent_version: Option<i64>,
    pub origin: Origin,
    pub n_train_rows: i64,
    pub n_holdout_rows: i64,
    pub cutoff: Watermark,
    pub holdout_metrics: HoldoutMetrics,
    pub artifact: &'a ModelArtifact,
    /// A bounded sample of the training rows, for data-drift checks.
    pub reference_sample: Option<&'a ReferenceSample>,
}

/// The champion's sample of its training rows, for data-drift checks.
#[derive(Debug, Clone)]
pub struct ChampionReference {
    pub version: i64,
    pub sample: ReferenceSample,
}

/// A [`VersionInfo`]'s columns, `holdout_metrics` read as `$metrics`.
macro_rules! info_columns {
    ($metrics:literal) => {
        concat!(
            "model, version, parent_version, strategy, trigger, status, created_at, ",
            "promoted_at, n_train_rows, n_holdout_rows, cutoff_labeled_at, cutoff_id, ",
            $metrics
        )
    };
}

const INFO_COLUMNS: &str = info_columns!("holdout_metrics");

/// [`INFO_COLUMNS`] without the holdout trace (see [`VersionInfo::without_trace`]), for
/// listings: the database does not send it.
const LIST_COLUMNS: &str = info_columns!("holdout_metrics - 'trace' AS holdout_metrics");

fn info_from_row(r: &sqlx::postgres::PgRow) -> Result<VersionInfo, sqlx::Error> {
    let cutoff = match (
        r.try_get("cutoff_labeled_at")?,
        r.try_get::<Option<i64>, _>("cutoff_id")?,
    ) {
        (Some(labeled_at), Some(id)) => Some(Watermark { labeled_at, id }),
        _ => None,
    };
    let sqlx::types::Json(holdout_metrics) = r.try_get("holdout_metrics")?;
    Ok(VersionInfo {
        model: r.try_get("model")?,
        version: r.try_get("version")?,
        parent_version: r.try_get("parent_version")?,
        strategy: r.try_get("strategy")?,
        trigger: r.try_get("trigger")?,
        status: r.try_get("status")?,
        created_at: r.try_get("created_at")?,
        promoted_at: r.try_get("promoted_at")?,
        n_train_rows: r.try_get("n_train_rows")?,
        n_holdout_rows: r.try_get("n_holdout_rows")?,
        cutoff,
        holdout_metrics,
    })
}

/// Stores a version; with `promote`, it becomes the champion in the same transaction.
pub async fn register(
    conn: &mut PgConnection,
    v: &NewVersion<'_>,
    promote: bool,
) -> Result<i64, RegistryError> {
    use sqlx::Connection;
    let (strategy, trigger) = v.origin.columns();
    let mut tx = conn.begin().await?;
    // Versions are numbered per model; the row lock on the model's versions serialises writers.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('driftd.registry'), hashtext($1))")
        .bind(v.model)
        .execute(&mut *tx)
        .await?;
    let version: i64 = sqlx::query_scalar(
        "SELECT coalesce(max(version), 0) + 1 FROM driftd.model_versions WHERE model = $1",
    )
    .bind(v.model)
    .fetch_one(&mut *tx)
    .await?;
    if promote {
        sqlx::query("UPDATE driftd.model_versions SET status = 'retired' WHERE model = $1 AND status = 'champion'")
            .bind(v.model)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "INSERT INTO driftd.model_versions (model, version, parent_version, strategy, trigger, status, promoted_at, \
            n_train_rows, n_holdout_rows, cutoff_labeled_at, cutoff_id, holdout_metrics, sidecar, weights, reference_sample) \
         VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $7 THEN now() END, $8, $9, $10, $11, $12, $13::jsonb, $14, $15)",
    )
    .bind(v.model)
    .bind(version)
    .bind(v.parent_version)
    .bind(strategy)
    .bind(trigger)
    .bind(match (promote, &v.origin) {
        (true, _) => "champion",
        // Imported, waiting for `models promote`: not a candidate that lost.
        (false, Origin::Imported) => "imported",
        (false, _) => "rejected",
    })
    .bind(promote)
    .bind(v.n_train_rows)
    .bind(v.n_holdout_rows)
    .bind(v.cutoff.labeled_at)
    .bind(v.cutoff.id)
    .bind(sqlx::types::Json(&v.holdout_metrics))
    .bind(v.artifact.sidecar_json())
    .bind(v.artifact.to_safetensors_bytes())
    // Stored through serde_json's `Value`, as it always was (its f32s widened to f64).
    .bind(v.reference_sample.and_then(|r| serde_json::to_value(r).ok()))
    .execute(&mut *tx)
    .await?;
    if promote {
        notify_champion(&mut tx, v.model, version).await?;
    }
    tx.commit().await?;
    Ok(version)
}

pub async fn champion(
    conn: &mut PgConnection,
    model: &str,
) -> Result<Option<(VersionInfo, ModelArtifact)>, RegistryError> {
    let row = sqlx::query(&format!(
        "SELECT {INFO_COLUMNS}, weights FROM driftd.model_versions WHERE model = $1 AND status = 'champion'"
    ))
    .bind(model)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let info = info_from_row(&row)?;
    let bytes: Vec<u8> = row.try_get("weights")?;
    let artifact =
        ModelArtifact::from_safetensors_bytes(&bytes).map_err(|e| RegistryError::Corrupt {
            model: model.into(),
            version: info.version,
            reason: e.to_string(),
        })?;
    Ok(Some((info, artifact)))
}

/// The champion's version number, if the model has one (cheap: no weights).
/// Of `models` (with the champion version each loop knows), those with a requested training
/// run or whose champion changed: the sweep wakes them.
pub async fn needing_attention(
    conn: &mut PgConnection,
    models: &[(String, Option<i64>)],
) -> Result<Vec<String>, sqlx::Error> {
    let names: Vec<&str> = models.iter().map(|m| m.0.as_str()).collect();
    let known: Vec<Option<i64>> = models.iter().map(|m| m.1).collect();
    sqlx::query_scalar(
        "SELECT w.m FROM UNNEST($1::text[], $2::int8[]) AS w(m, known) \
         WHERE EXISTS (SELECT 1 FROM driftd.training_runs r WHERE r.model = w.m AND r.status = 'requested') \
            OR (SELECT v.version FROM driftd.model_versions v WHERE v.model = w.m AND v.status = 'champion') \
               IS DISTINCT FROM w.known",
    )
    .bind(&names)
    .bind(&known)
    .fetch_all(conn)
    .await
}

/// Every model's champion version, in one query.
pub async fn champion_versions(conn: &mut PgConnection) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT model, version FROM driftd.model_versions WHERE status = 'champion'")
        .fetch_all(conn)
        .await
}

pub async fn champion_version(
    conn: &mut PgConnection,
    model: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT version FROM driftd.model_versions WHERE model = $1 AND status = 'champion'",
    )
    .bind(model)
    .fetch_optional(conn)
    .await
}

/// The champion's reference sample for data-drift checks, if it has one
/// ([`RegistryError::CorruptReference`] when the stored one cannot be read).
pub async fn champion_reference(
    conn: &mut PgConnection,
    model: &str,
) -> Result<Option<ChampionReference>, RegistryError> {
    let row: Option<(i64, Option<serde_json::Value>)> = sqlx::query_as(
        "SELECT version, reference_sample FROM driftd.model_versions WHERE model = $1 AND status = 'champion'",
    )
    .bind(model)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((version, Some(stored))) = row else {
        return Ok(None);
    };
    let sample = serde_json::from_value(stored).map_err(|e| RegistryError::CorruptReference {
        model: model.into(),
        version,
        reason: e.to_string(),
    })?;
    Ok(Some(ChampionReference { version, sample }))
}

/// Stores a reference sample for `version`, if it has none (a champion trained before
/// feature drift was enabled).
pub async fn set_reference_sample(
    conn: &mut PgConnection,
    model: &str,
    version: i64,
    sample: &ReferenceSample,
) -> Result<(), RegistryError> {
    sqlx::query(
        "UPDATE driftd.model_versions SET reference_sample = $3 \
         WHERE model = $1 AND version = $2 AND reference_sample IS NULL",
    )
    .bind(model)
    .bind(version)
    // Stored through serde_json's `Value`, as `register` stores it.
    .bind(serde_json::to_value(sample).ok())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records one data-drift check.
pub async fn record_feature_drift(
    conn: &mut PgConnection,
    model: &str,
    version: i64,
    report: &crate::feature_drift::FeatureDriftReport,
) -> Result<(), RegistryError> {
    if report.features.is_empty() {
        return Ok(());
    }
    let fs = &report.features;
    let column = |v: fn(&crate::feature_drift::FeatureStat) -> f64| -> Vec<f64> {
        fs.iter().map(v).collect()
    };
    // One statement for the whole check, its rows in the report's order.
    sqlx::query(
        "INSERT INTO driftd.feature_drift (model, version, feature, psi, ks, ks_pvalue, js, wasserstein, drifted, n_reference, n_recent) \
         SELECT $1, $2, f, psi, ks, p, js, w, d, $10, $11 \
         FROM UNNEST($3::text[], $4::float8[], $5::float8[], $6::float8[], $7::float8[], $8::float8[], $9::bool[]) \
              WITH ORDINALITY AS c(f, psi, ks, p, js, w, d, n) \
         ORDER BY n",
    )
    .bind(model)
    .bind(version)
    .bind(fs.iter().map(|f| f.feature.as_str()).collect::<Vec<_>>())
    .bind(column(|f| f.psi))
    .bind(column(|f| f.ks))
    .bind(column(|f| f.ks_pvalue))
    .bind(column(|f| f.js))
    .bind(column(|f| f.wasserstein))
    .bind(fs.iter().map(|f| f.drifted).collect::<Vec<_>>())
    .bind(report.n_reference as i32)
    .bind(report.n_recent as i32)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn list(
    conn: &mut PgConnection,
    model: Option<&str>,
) -> Result<Vec<VersionInfo>, RegistryError> {
    let rows = sqlx::query(&format!(
        "SELECT {LIST_COLUMNS} FROM driftd.model_versions WHERE $1::text IS NULL OR model = $1 ORDER BY model, version"
    ))
    .bind(model)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.iter().map(info_from_row).collect::<Result<_, _>>()?)
}

/// The weights and sidecar of one version (for export).
pub async fn artifact(
    conn: &mut PgConnection,
    model: &str,
    version: i64,
) -> Result<(ModelArtifact, String), RegistryError> {
    let row = sqlx::query("SELECT weights, sidecar::text AS sidecar FROM driftd.model_versions WHERE model = $1 AND version = $2")
        .bind(model)
        .bind(version)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| RegistryError::NoSuchVersion { model: model.into(), version })?;
    let bytes: Vec<u8> = row.try_get("weights")?;
    let artifact =
        ModelArtifact::from_safetensors_bytes(&bytes).map_err(|e| RegistryError::Corrupt {
            model: model.into(),
            version,
            reason: e.to_string(),
        })?;
    let sidecar = artifact.sidecar_json();
    Ok((artifact, sidecar))
}

/// Makes `version` the champion (the current one is retired), in one transaction.
pub async fn promote(
    conn: &mut PgConnection,
    model: &str,
    version: i64,
) -> Result<(), RegistryError> {
    use sqlx::Connection;
    let mut tx = conn.begin().await?;
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM driftd.model_versions WHERE model = $1 AND version = $2)",
    )
    .bind(model)
    .bind(version)
    .fetch_one(&mut *tx)
    .await?;
    if !exists {
        return Err(RegistryError::NoSuchVersion {
            model: model.into(),
            version,
        });
    }
    sqlx::query("UPDATE driftd.model_versions SET status = 'retired' WHERE model = $1 AND status = 'champion'")
        .bind(model)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE driftd.model_versions SET status = 'champion', promoted_at = now() WHERE model = $1 AND version = $2")
        .bind(model)
        .bind(version)
        .execute(&mut *tx)
        .await?;
    notify_champion(&mut tx, model, version).await?;
    tx.commit().await?;
    Ok(())
}

/// Where a rollback went: from the champion `from` (if there was one) to `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RolledBack {
    pub from: Option<i64>,
    pub to: i64,
}

/// Steps back through the champion history: the newest version older than the current
/// champion that was a champion once becomes the champion again (v3 → v2 → v1; a version
/// that never served is skipped). `to`: that version instead.
pub async fn rollback(
    conn: &mut PgConnection,
    model: &str,
    to: Option<i64>,
) -> Result<RolledBack, RegistryError> {
    let from = champion_version(conn, model).await?;
    let target = match to {
        Some(v) => Some(v),
        None => sqlx::query_scalar(
            "SELECT version FROM driftd.model_versions WHERE model = $1 AND status = 'retired' \
                   AND promoted_at IS NOT NULL AND version < coalesce($2, 9223372036854775807) \
                 ORDER BY version DESC LIMIT 1",
        )
        .bind(model)
        .bind(from)
        .fetch_optional(&mut *conn)
        .await?,
    };
    let to = target.ok_or_else(|| RegistryError::NothingToRollBack(model.into()))?;
    promote(conn, model, to).await?;
    Ok(RolledBack { from, to })
}

/// Writes `<dir>/<model>-v<version>.safetensors` and its `.json` sidecar.
pub async fn export(
    conn: &mut PgConnection,
    model: &str,
    version: i64,
    dir: &std::path::Path,
) -> Result<(std::path::PathBuf, std::path::PathBuf), anyhow::Error> {
    let (artifact, sidecar) = artifact(conn, model, version).await?;
    std::fs::create_dir_all(dir)?;
    let weights = dir.join(format!("{model}-v{version}.safetensors"));
    let side = dir.join(format!("{model}-v{version}.json"));
    std::fs::write(&weights, artifact.to_safetensors_bytes())?;
    std::fs::write(&side, sidecar)?;
    Ok((weights, side))
}
