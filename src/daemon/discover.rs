//! Model discovery for `[[model_templates]]`: every `poll.discover_interval_ms`, and at once
//! when `LISTEN` hears of a model nobody here knows, read the model names of the outcomes table
//! (one index probe per name) and adopt each new name a template matches. A template without a
//! feature width takes the one most of the model's first rows agree on; a model with no row
//! with features yet is tried again next round. Every replica discovers on its own: they read
//! the same table, so they agree on the models, and the advisory locks keep one owner each.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use super::adopt::Adopter;
use crate::catalog::Catalog;
use crate::config::templates::ModelTemplate;
use crate::config::Config;

/// The names of `names` that no model here has and that a template makes, with the template.
pub fn new_models<'a>(
    cfg: &'a Config,
    catalog: &Catalog,
    names: &'a [String],
) -> Vec<(&'a str, &'a ModelTemplate)> {
    names
        .iter()
        .filter(|n| !catalog.contains(n))
        .filter_map(|n| cfg.template_for(n).map(|t| (n.as_str(), t)))
        .collect()
}

pub struct Discovery {
    pub cfg: Arc<Config>,
    pub adopter: Arc<Adopter>,
    /// `LISTEN` rings this for a model name it does not know.
    pub heard_unknown: Arc<Notify>,
    pub interval: Duration,
}

impl Discovery {
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        // Names a template matched but whose model could not be made (a name too long): warned
        // about once, not every round.
        let mut refused = BTreeSet::new();
        loop {
            if let Err(e) = self.round(&mut refused).await {
                tracing::debug!(error = %e, "model discovery failed; trying again next round");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = self.heard_unknown.notified() => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
        }
    }

    async fn round(&self, refused: &mut BTreeSet<String>) -> Result<(), sqlx::Error> {
        let shared = &self.adopter.shared;
        let mut conn = shared.pool.acquire().await?;
        let names = shared.source.model_names(&mut conn).await?;
        for (name, template) in new_models(&self.cfg, &self.adopter.catalog, &names) {
            if refused.contains(name) {
                continue;
            }
            let width = match template.n_features {
                Some(n) => n,
                None => match shared.source.feature_width(&mut conn, name).await? {
                    Some(n) => n,
                    None => continue,
                },
            };
            match template.instantiate(name, width, &self.cfg.source) {
                Ok(model) => {
                    tracing::info!(
                        model = name,
                        pattern = template.pattern.as_str(),
                        n_features = model.n_features,
                        "found a new model"
                    );
                    self.adopter.adopt(model).await;
                }
                Err((key, reason)) => {
                    tracing::warn!(
                        model = name,
                        pattern = template.pattern.as_str(),
                        key,
                        reason,
                        "cannot make a model of this name"
                    );
                    refused.insert(name.to_string());
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_and_known_models_are_not_rediscovered() {
        let cfg = Config::from_toml_str(
            r#"
[[models]]
name = "tenant-vip"
n_features = 3
[[model_templates]]
pattern = "tenant-*"
n_features = 4
[[model_templates]]
pattern = "*"
"#,
            std::iter::empty(),
        )
        .unwrap();
        let catalog = Catalog::new(cfg.models.clone());
        let names: Vec<String> = ["other", "tenant-1", "tenant-vip"]
            .into_iter()
            .map(String::from)
            .collect();
        let found = new_models(&cfg, &catalog, &names);
        let patterns: Vec<(&str, &str)> = found
            .iter()
            .map(|(n, t)| (*n, t.pattern.as_str()))
            .collect();
        // The first matching template wins; an explicit model is never a template's.
        assert_eq!(patterns, vec![("other", "*"), ("tenant-1", "tenant-*")]);
        assert_eq!(found[1].1.n_features, Some(4));
        assert_eq!(found[0].1.n_features, None, "from the rows");
    }
}
