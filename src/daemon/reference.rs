//! A reference sample for a champion that has none: one trained or imported before
//! `[models.feature_drift]` was added. It is computed from the champion's training rows (every
//! labelled row up to its cut-off, bounded as an update's are) and stored with the version;
//! a champion without a known cut-off (an import) cannot have one, and the loop says so once:
//! the check then waits for the next version.

use sqlx::PgConnection;

use super::store::StoreError;
use crate::config::ModelConfig;
use crate::control::ChampionView;
use crate::feature_drift::ReferenceSample;
use crate::outcomes::{OutcomeSource, Watermark};
use crate::registry;

/// The sample, stored, or `Err(why)` when the champion cannot have one now.
pub async fn backfill(
    conn: &mut PgConnection,
    source: &OutcomeSource,
    cfg: &ModelConfig,
    champion: ChampionView,
) -> Result<Result<ReferenceSample, String>, StoreError> {
    let Some(fd) = &cfg.feature_drift else {
        return Ok(Err("feature drift is off".into()));
    };
    if champion.cutoff == Watermark::start() {
        return Ok(Err(format!(
            "champion v{} has no reference sample and its training rows are not known (an import); \
             the feature-drift check waits for the next version",
            champion.version
        )));
    }
    let rows = source
        .training_rows(
            conn,
            &cfg.name,
            Watermark::start(),
            champion.cutoff,
            cfg.max_training_rows as i64,
        )
        .await?;
    let n = cfg.n_features;
    let mut x = Vec::with_capacity(rows.len() * n);
    for r in &rows {
        if let Ok(f) = crate::domain::features_f32(n, r.features.as_deref()) {
            x.extend(f);
        }
    }
    if x.is_empty() {
        return Ok(Err(format!(
            "champion v{} has no reference sample and none of its training rows (up to id {}) is left; \
             the feature-drift check waits for the next version",
            champion.version, champion.cutoff.id
        )));
    }
    let seed = crate::splitmix::seed_from(&cfg.name, champion.version as u64);
    let mut sample = ReferenceSample::from_rows(&x, n, fd.reference_sample_rows, seed);
    if cfg.feature_names.len() == n {
        if let Ok(named) = sample.clone().with_feature_names(cfg.feature_names.clone()) {
            sample = named;
        }
    }
    registry::set_reference_sample(conn, &cfg.name, champion.version, &sample).await?;
    tracing::info!(model = %cfg.name, version = champion.version, rows = x.len() / n, upto_id = champion.cutoff.id,
        "reference sample computed from the champion's training rows (feature drift was enabled after it was trained)");
    Ok(Ok(sample))
}
