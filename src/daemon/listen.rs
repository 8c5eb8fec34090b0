//! `LISTEN` on the outcomes channel: a notification wakes the model it names early; one that
//! names a model nobody here knows goes to model discovery if a template makes it.
//! Losing notifications is harmless (the poll interval is the fallback), so errors only back
//! off.

use std::sync::Arc;

use sqlx::postgres::PgListener;
use tokio::sync::watch;

use super::adopt::Wakers;
use super::discover::Heard;
use crate::config::DatabaseConfig;
use crate::db::{self, Backoff};

pub async fn wake_on_notify(
    db_cfg: DatabaseConfig,
    channel: String,
    wakers: Arc<Wakers>,
    heard: Option<Heard>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new(500, 30_000);
    loop {
        let session = async {
            let pool = db::pool(&DatabaseConfig {
                max_connections: 1,
                ..db_cfg.clone()
            })?;
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(&channel).await?;
            loop {
                let n = listener.recv().await?;
                match (wakers.get(n.payload()), &heard) {
                    (Some(w), _) => w.notify_one(),
                    (None, Some(heard)) => heard.unknown(n.payload()),
                    (None, None) => {}
                }
            }
            #[allow(unreachable_code)]
            Ok::<(), sqlx::Error>(())
        };
        let result = tokio::select! {
            r = session => r,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        if let Err(e) = result {
            let d = backoff.next_delay();
            tracing::debug!(error = %e, "LISTEN connection lost; polling continues");
            tokio::select! {
                _ = tokio::time::sleep(d) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
        }
    }
}
