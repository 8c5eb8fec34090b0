//! Idle cost that does not grow with the number of models: instead of every model polling on
//! every interval, each loop publishes where it stands on a [`SweepBoard`], and one task per
//! replica asks PostgreSQL, in two queries for all owned models, which of them have anything
//! to do (settled rows past the watermark, rows to score, a requested run, a new champion),
//! and wakes only those. A woken loop polls as before, so ingest stays exactly-once: the sweep
//! only decides *when* a loop looks, never *what* it reads. `LISTEN` wakes a model the moment
//! its label lands, a run is requested or its champion changes, so the sweep is the fallback
//! for lost notifications and tables without the trigger, and runs every
//! `poll.sweep_interval_ms`. A loop with nothing new goes round on its own every
//! `poll.idle_poll_ms` for the decisions that wait on time (a threshold's hold, a drift held
//! back by the cooldown); when a sweep has seen its standing since it last changed, that round
//! reads nothing (the sweep would have woken it), otherwise it polls, so a failing sweep
//! delays work but never loses it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::{watch, Notify};

use crate::outcomes::{OutcomeSource, Watermark};
use crate::registry;

/// Where one owned model's loop stands.
#[derive(Debug, Clone)]
pub struct Standing {
    pub watermark: Watermark,
    /// Rows after this id without a prediction are work (only while the loop scores).
    pub scored_upto: Option<i64>,
    /// The champion version the loop serves (only for models driftd trains: a monitor-only
    /// model has no runs and does not follow the champion).
    pub champion: Option<Option<i64>>,
    pub wake: Arc<Notify>,
}

impl Standing {
    fn same_as(&self, other: &Standing) -> bool {
        (self.watermark, self.scored_upto, self.champion)
            == (other.watermark, other.scored_upto, other.champion)
    }
}

struct Entry {
    standing: Standing,
    /// When the standing last changed.
    since: Instant,
}

/// The standings of the models this replica's loops are running.
#[derive(Default)]
pub struct SweepBoard {
    models: Mutex<HashMap<String, Entry>>,
    /// When the snapshot of the last sweep that answered for every model was taken.
    covered: Mutex<Option<Instant>>,
}

impl SweepBoard {
    pub fn publish(&self, model: &str, standing: Standing) {
        let mut m = self.models.lock().expect("sweep board lock");
        match m.get_mut(model) {
            Some(e) if e.standing.same_as(&standing) => e.standing = standing,
            _ => {
                let since = Instant::now();
                m.insert(model.to_string(), Entry { standing, since });
            }
        }
    }

    /// Whether a sweep has looked at the model's present standing (and so would have woken
    /// the loop if there were anything to read, score, claim or load).
    pub fn swept_since_published(&self, model: &str) -> bool {
        let covered = *self.covered.lock().expect("sweep board lock");
        let m = self.models.lock().expect("sweep board lock");
        matches!((covered, m.get(model)), (Some(c), Some(e)) if c >= e.since)
    }

    /// The loop stopped (handed over, shutdown): nothing to sweep for it here.
    pub fn withdraw(&self, model: &str) {
        self.models.lock().expect("sweep board lock").remove(model);
    }

    fn snapshot(&self) -> Vec<(String, Standing)> {
        let m = self.models.lock().expect("sweep board lock");
        m.iter()
            .map(|(k, e)| (k.clone(), e.standing.clone()))
            .collect()
    }
}

/// Models per query: keeps each statement's arrays (and its plan) a sensible size.
const CHUNK: usize = 2_000;

/// Every `interval`, wakes the owned models that have something to do.
pub async fn run(
    board: Arc<SweepBoard>,
    pool: PgPool,
    source: Arc<OutcomeSource>,
    interval: Duration,
    settle_ms: u64,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        let taken = Instant::now();
        let standings = board.snapshot();
        let mut answered = true;
        for chunk in standings.chunks(CHUNK) {
            match due(&pool, &source, chunk, settle_ms).await {
                Ok(names) => {
                    let by_name: HashMap<&str, &Standing> =
                        chunk.iter().map(|(n, s)| (n.as_str(), s)).collect();
                    for n in names {
                        if let Some(s) = by_name.get(n.as_str()) {
                            s.wake.notify_one();
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "sweep failed; the loops poll on their own meanwhile");
                    answered = false;
                    break;
                }
            }
        }
        if answered {
            *board.covered.lock().expect("sweep board lock") = Some(taken);
        }
    }
}

async fn due(
    pool: &PgPool,
    source: &OutcomeSource,
    chunk: &[(String, Standing)],
    settle_ms: u64,
) -> Result<Vec<String>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let rows: Vec<(String, Watermark, Option<i64>)> = chunk
        .iter()
        .map(|(n, s)| (n.clone(), s.watermark, s.scored_upto))
        .collect();
    let mut names = source.pending(&mut conn, &rows, settle_ms).await?;
    let champions: Vec<(String, Option<i64>)> = chunk
        .iter()
        .filter_map(|(n, s)| s.champion.map(|c| (n.clone(), c)))
        .collect();
    if !champions.is_empty() {
        names.extend(registry::needing_attention(&mut conn, &champions).await?);
    }
    Ok(names)
}
