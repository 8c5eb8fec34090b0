//! The replica's one `LISTEN` connection, on three channels:
//! - the outcomes channel (the model's name, from the trigger on the user's table): wakes the
//!   model's loop; a name nobody here knows goes to model discovery if a template makes it;
//! - `driftd_champion` (`{"model", "version"}`, sent in the transaction that changes a
//!   champion): reloads the serving cache's copy and wakes the loop, which scores with it;
//! - `driftd_requests` (a manual run was requested): wakes the loop, which claims it.
//!
//! Losing notifications is harmless: the sweep and the cache's slow poll are the fallbacks.
//! So errors only back off; each new session tells the cache to reload everything, since
//! changes made while nobody listened were not heard.

use std::sync::Arc;

use sqlx::postgres::PgListener;
use tokio::sync::{mpsc, watch};

use super::adopt::Wakers;
use super::discover::Heard;
use crate::config::DatabaseConfig;
use crate::db::{self, Backoff};
use crate::registry::{CHAMPION_CHANNEL, REQUEST_CHANNEL};
use crate::serve::cache::{notified_model, Reload};

pub struct Listen {
    pub db: DatabaseConfig,
    pub outcomes_channel: String,
    pub wakers: Arc<Wakers>,
    /// With templates: where names nobody here knows go.
    pub heard: Option<Heard>,
    /// The serving cache's reloads.
    pub reloads: mpsc::UnboundedSender<Reload>,
}

impl Listen {
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Backoff::new(500, 30_000);
        loop {
            let result = tokio::select! {
                r = self.session(&mut backoff) => r,
                _ = shutdown.wait_for(|s| *s) => return,
            };
            if let Err(e) = result {
                let d = backoff.next_delay();
                tracing::debug!(error = %e, "LISTEN connection lost; the sweep and polls go on");
                tokio::select! {
                    _ = tokio::time::sleep(d) => {}
                    _ = shutdown.wait_for(|s| *s) => return,
                }
            }
        }
    }

    async fn session(&self, backoff: &mut Backoff) -> Result<(), sqlx::Error> {
        let pool = db::pool(&DatabaseConfig {
            max_connections: 1,
            ..self.db.clone()
        })?;
        let mut listener = PgListener::connect_with(&pool).await?;
        listener
            .listen_all([
                self.outcomes_channel.as_str(),
                CHAMPION_CHANNEL,
                REQUEST_CHANNEL,
            ])
            .await?;
        // Listening first, reloading second: a change in between is not missed.
        let _ = self.reloads.send(Reload::All);
        backoff.reset();
        loop {
            let n = listener.recv().await?;
            self.dispatch(n.channel(), n.payload());
        }
    }

    fn dispatch(&self, channel: &str, payload: &str) {
        if channel == CHAMPION_CHANNEL {
            if let Some(model) = notified_model(payload) {
                self.wake(&model);
                let _ = self.reloads.send(Reload::Model(model));
            }
        } else if channel == REQUEST_CHANNEL {
            self.wake(payload);
        } else if !self.wake(payload) {
            if let Some(heard) = &self.heard {
                heard.unknown(payload);
            }
        }
    }

    /// Wakes `model`'s loop; false when no model here has that name.
    fn wake(&self, model: &str) -> bool {
        match self.wakers.get(model) {
            Some(w) => {
                w.notify_one();
                true
            }
            None => false,
        }
    }
}
