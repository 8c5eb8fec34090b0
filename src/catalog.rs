//! The models this process knows while it runs: those of `[[models]]`, and those found in the
//! outcomes table through `[[model_templates]]` (`daemon::discover` adds them). Serving, the
//! admin API and the daemon look models up here, so a model found at run time is served,
//! retrained on request and monitored like a configured one. A model is never removed while
//! the process runs: its rows, versions and series stay meaningful.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::config::ModelConfig;

#[derive(Default)]
pub struct Catalog {
    models: RwLock<BTreeMap<String, Arc<ModelConfig>>>,
}

impl Catalog {
    pub fn new(models: impl IntoIterator<Item = ModelConfig>) -> Self {
        let c = Catalog::default();
        for m in models {
            c.insert(m);
        }
        c
    }

    pub fn get(&self, name: &str) -> Option<Arc<ModelConfig>> {
        self.read().get(name).cloned()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.read().contains_key(name)
    }

    /// Every known model's name, in order.
    pub fn names(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    /// Adds `model`; false (and nothing changes) when a model of that name is known.
    pub fn insert(&self, model: ModelConfig) -> bool {
        let mut m = self.models.write().unwrap_or_else(|p| p.into_inner());
        if m.contains_key(&model.name) {
            return false;
        }
        m.insert(model.name.clone(), Arc::new(model));
        true
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<ModelConfig>>> {
        self.models.read().unwrap_or_else(|p| p.into_inner())
    }
}
