//! Model discovery for `[[model_templates]]`: when `LISTEN` hears of a model nobody here knows
//! and a template matches its name, that model is adopted at once; every
//! `poll.discover_interval_ms` (for notifications lost or never sent) the model names of the
//! outcomes table are read (one index probe per name) and each new name a template matches is
//! adopted. A template without a
//! feature width takes the one most of the model's first rows agree on; a model with no row
//! with features yet is tried again next round. Every replica discovers on its own: they read
//! the same table, so they agree on the models, and the advisory locks keep one owner each.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

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

/// What `LISTEN` does with a name no model here has: passes it on if a template makes it
/// (outcomes of models nobody monitors cost nothing more than the notification).
pub struct Heard {
    pub cfg: Arc<Config>,
    pub names: mpsc::UnboundedSender<String>,
}

impl Heard {
    pub fn unknown(&self, name: &str) {
        if self.cfg.template_for(name).is_some() {
            let _ = self.names.send(name.to_string());
        }
    }
}

pub struct Discovery {
    cfg: Arc<Config>,
    adopter: Arc<Adopter>,
    /// Names `LISTEN` heard that a template makes (see [`Heard`]).
    heard: mpsc::UnboundedReceiver<String>,
    interval: Duration,
    /// Names a template matched but whose model could not be made (a name too long): warned
    /// about once.
    refused: BTreeSet<String>,
}

impl Discovery {
    pub fn new(
        cfg: Arc<Config>,
        adopter: Arc<Adopter>,
        heard: mpsc::UnboundedReceiver<String>,
        interval: Duration,
    ) -> Self {
        Discovery {
            cfg,
            adopter,
            heard,
            interval,
            refused: BTreeSet::new(),
        }
    }

    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut scan = tokio::time::interval(self.interval);
        scan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Which one woke us; the work is done outside the select (its futures hold a
            // borrow of the shutdown flag).
            let heard = tokio::select! {
                _ = scan.tick() => None,
                Some(name) = self.heard.recv() => Some(name),
                _ = shutdown.wait_for(|s| *s) => return,
            };
            let result = match heard {
                None => self.scan().await,
                Some(name) => self.consider(&name).await,
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "model discovery failed; the next scan tries again");
            }
        }
    }

    /// Every name of the outcomes table.
    async fn scan(&mut self) -> Result<(), sqlx::Error> {
        let names = {
            let mut conn = self.adopter.shared.pool.acquire().await?;
            self.adopter.shared.source.model_names(&mut conn).await?
        };
        let fresh: Vec<String> = new_models(&self.cfg, &self.adopter.catalog, &names)
            .into_iter()
            .map(|(n, _)| n.to_string())
            .collect();
        for name in fresh {
            self.consider(&name).await?;
        }
        Ok(())
    }

    /// Adopts `name` if a template makes it and it is new here; a model without rows with
    /// features yet is left for a later scan.
    async fn consider(&mut self, name: &str) -> Result<(), sqlx::Error> {
        let cfg = self.cfg.clone();
        let Some(template) = cfg.template_for(name) else {
            return Ok(());
        };
        if self.adopter.catalog.contains(name) || self.refused.contains(name) {
            return Ok(());
        }
        let width = match template.n_features {
            Some(n) => n,
            None => {
                let shared = &self.adopter.shared;
                let mut conn = shared.pool.acquire().await?;
                match shared.source.feature_width(&mut conn, name).await? {
                    Some(n) => n,
                    None => return Ok(()),
                }
            }
        };
        let pattern = template.pattern.as_str();
        match template.instantiate(name, width, &cfg.source) {
            Ok(model) => {
                tracing::info!(
                    model = name,
                    pattern,
                    n_features = model.n_features,
                    "found a new model"
                );
                self.adopter.adopt(model, true).await;
                // Served at once if another replica trained it already (no NOTIFY comes).
                let mut conn = self.adopter.shared.pool.acquire().await?;
                self.adopter.champions.refresh(&mut conn, name).await?;
            }
            Err((key, reason)) => {
                tracing::warn!(
                    model = name,
                    pattern,
                    key,
                    reason,
                    "cannot make a model of this name"
                );
                self.refused.insert(name.to_string());
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
