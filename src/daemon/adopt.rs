//! Bringing a model into this replica: its loop (handed to ownership, which runs it only while
//! it holds the model's lock), its wake-up for `LISTEN` and the sweep, its schedules, its
//! champion slot for serving and its alert floor. Configured models are adopted at start;
//! models found through `[[model_templates]]` the moment discovery finds them.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tokio::sync::{mpsc, watch, Notify};

use super::schedule::Schedules;
use super::{ModelLoop, Shared};
use crate::catalog::Catalog;
use crate::config::{ModelConfig, PollConfig, TrainingRuntimeConfig};
use crate::serve::cache::ChampionCache;

/// A loop not running yet, with the receiver of its "loaded" flag.
pub type Idle = (ModelLoop, watch::Receiver<bool>);

/// Each known model's wake-up, by name.
#[derive(Default)]
pub struct Wakers(RwLock<HashMap<String, Arc<Notify>>>);

impl Wakers {
    pub fn get(&self, model: &str) -> Option<Arc<Notify>> {
        let m = self.0.read().unwrap_or_else(|p| p.into_inner());
        m.get(model).cloned()
    }

    fn insert(&self, model: &str, wake: Arc<Notify>) {
        let mut m = self.0.write().unwrap_or_else(|p| p.into_inner());
        m.insert(model.to_string(), wake);
    }
}

pub struct Adopter {
    pub shared: Shared,
    pub runtime: TrainingRuntimeConfig,
    pub poll: PollConfig,
    pub catalog: Arc<Catalog>,
    pub wakers: Arc<Wakers>,
    pub schedules: Schedules,
    pub champions: Arc<ChampionCache>,
    /// New loops for the ownership task.
    pub loops: mpsc::UnboundedSender<Idle>,
}

impl Adopter {
    /// Adopts `model`; true if it was new. A configured model is in the catalog from the
    /// start (so serving knows it before the database is reached) and is adopted once; a
    /// model discovery found (`from_template`) is adopted unless one of its name is known.
    pub async fn adopt(&self, model: ModelConfig, from_template: bool) -> bool {
        if !self.catalog.insert(model.clone()) && from_template {
            return false;
        }
        self.shared.metrics.ownership.model_adopted(from_template);
        let wake = Arc::new(Notify::new());
        self.wakers.insert(&model.name, wake.clone());
        // Capacity 1: a trigger waiting behind another one coalesces instead of queueing.
        let (trig_tx, trig_rx) = mpsc::channel(1);
        if model.train.enabled {
            if let Err(e) = self.schedules.add(&model, trig_tx, wake.clone()).await {
                tracing::error!(model = %model.name, error = %e, "cannot arm the model's schedules");
            }
        }
        self.champions.add(&model.name);
        self.shared
            .metrics
            .monitor
            .publish_accuracy_floors(std::slice::from_ref(&model));
        let (loaded, loaded_rx) = watch::channel(false);
        let lp = ModelLoop {
            cfg: model,
            runtime: self.runtime.clone(),
            triggers: trig_rx,
            poll: self.poll.clone(),
            source: self.shared.source.clone(),
            pool: self.shared.pool.clone(),
            metrics: self.shared.metrics.clone(),
            wake,
            loaded,
            database: self.shared.database.clone(),
            health: self.shared.health.clone(),
            board: self.shared.board.clone(),
            training_slots: self.shared.training_slots.clone(),
        };
        // The ownership task ends only at shutdown, when nothing is adopted any more.
        let _ = self.loops.send((lp, loaded_rx));
        true
    }
}
