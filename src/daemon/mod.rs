//! `driftd run`: wires the source, the per-model loops and the HTTP surface together and runs
//! them until shutdown.

mod listen;
mod membership;
mod model_loop;
mod ownership;
mod schedule;
pub mod store;
mod sweep;
mod training;

pub use training::parse_strategy;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::{watch, Notify};

use crate::config::Config;
use crate::db::{self, Backoff};
use crate::exporter::{self, Health, HttpState, Metrics};
use crate::outcomes::OutcomeSource;
use crate::serve;
use crate::telemetry::LogLevelHandle;

pub use model_loop::{ModelLoop, StepOutcome};

/// Runs the daemon until `shutdown` turns true; then each model finishes the batch in hand,
/// commits, and the function returns.
pub async fn run(
    cfg: Config,
    log_level: LogLevelHandle,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());
    metrics.publish_accuracy_floors(&cfg.models);
    let health = Arc::new(Health::default());
    let database = cfg.database()?.clone();
    let pool = db::pool(&database).context("database.url")?;

    let http_state = HttpState {
        metrics: metrics.clone(),
        health: health.clone(),
        log_level,
        admin_token: cfg.http.admin_token.clone().map(Arc::new),
    };
    let mut http_shutdown = shutdown.clone();
    let admin = exporter::admin::router(
        pool.clone(),
        cfg.http.admin_token.clone(),
        cfg.models
            .iter()
            .map(|m| {
                let strategy = m.train.enabled.then_some(m.triggers.manual_strategy);
                (m.name.clone(), strategy)
            })
            .collect(),
    );
    let (serving, champions) = serve::start(&cfg, &database, pool.clone(), shutdown.clone());
    let extra = admin.merge(serving);
    let (addr, http_task) = exporter::serve(&cfg.http.listen, http_state, extra, async move {
        let _ = http_shutdown.wait_for(|s| *s).await;
    })
    .await
    .with_context(|| format!("cannot listen on {}", cfg.http.listen))?;
    tracing::info!("listening on http://{addr}");

    let set_db_up = {
        let (health, metrics) = (health.clone(), metrics.clone());
        Arc::new(move |up: bool| {
            health.database_up.store(up, Ordering::Relaxed);
            metrics.database_up.set(if up { 1.0 } else { 0.0 });
        })
    };

    // The server may still be starting: keep trying to migrate, reporting not-ready meanwhile.
    let mut backoff = Backoff::new(200, cfg.poll.max_backoff_ms);
    loop {
        let attempt = async {
            let mut conn = db::connect_one(&database).await?;
            db::migrate(&mut conn).await
        };
        match attempt.await {
            Ok(()) => {
                set_db_up(true);
                break;
            }
            Err(e) => {
                set_db_up(false);
                metrics.poll_failed("", "database");
                let d = backoff.next_delay();
                tracing::warn!(error = %e, retry_in_ms = d.as_millis() as u64, "database not ready");
                tokio::select! {
                    _ = tokio::time::sleep(d) => {}
                    _ = shutdown.wait_for(|s| *s) => { return Ok(()); }
                }
            }
        }
    }

    let source = Arc::new(OutcomeSource::new(&cfg.source));
    let mut wakers: HashMap<String, Arc<Notify>> = HashMap::new();
    let mut trigger_senders = HashMap::new();
    let board = Arc::new(sweep::SweepBoard::default());
    let training_slots = Arc::new(tokio::sync::Semaphore::new(cfg.training.max_concurrent));
    let sweeper = tokio::spawn(sweep::run(
        board.clone(),
        pool.clone(),
        source.clone(),
        std::time::Duration::from_millis(cfg.poll.interval_ms),
        cfg.poll.settle_ms,
        shutdown.clone(),
    ));
    let mut loops = Vec::new();
    for m in &cfg.models {
        let wake = Arc::new(Notify::new());
        wakers.insert(m.name.clone(), wake.clone());
        let (tx, rx) = watch::channel(false);
        // Capacity 1: a trigger waiting behind another one coalesces instead of queueing.
        let (trig_tx, trig_rx) = tokio::sync::mpsc::channel(1);
        trigger_senders.insert(m.name.clone(), trig_tx);
        let lp = ModelLoop {
            cfg: m.clone(),
            runtime: cfg.training.clone(),
            triggers: trig_rx,
            poll: cfg.poll.clone(),
            source: source.clone(),
            pool: pool.clone(),
            metrics: metrics.clone(),
            wake,
            loaded: tx,
            db_up: set_db_up.clone(),
            board: board.clone(),
            training_slots: training_slots.clone(),
        };
        loops.push((lp, rx));
    }
    let ownership = tokio::spawn(
        ownership::Ownership {
            db: database.clone(),
            interval: std::time::Duration::from_millis(cfg.poll.ownership_check_ms),
            replica_ttl: std::time::Duration::from_millis(cfg.poll.replica_ttl_ms),
            metrics: metrics.clone(),
            health: health.clone(),
        }
        .run(loops, shutdown.clone()),
    );
    let trained: Vec<_> = cfg
        .models
        .iter()
        .filter(|m| m.train.enabled)
        .cloned()
        .collect();
    let _scheduler = schedule::start(&trained, &trigger_senders, &wakers, metrics.clone())
        .await
        .context("starting the retrain schedules")?;
    let listener = tokio::spawn(listen::wake_on_notify(
        database.clone(),
        source.notify_channel.clone(),
        wakers,
        shutdown.clone(),
    ));

    let _ = shutdown.wait_for(|s| *s).await;
    tracing::info!("shutting down: finishing the batches in hand");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    if let Err(e) = ownership.await {
        tracing::error!(error = %e, "the ownership task ended abnormally");
    }
    listener.abort();
    sweeper.abort();
    let _ = champions.await;
    let _ = http_task.await;
    pool.close().await;
    tracing::info!("stopped");
    Ok(())
}
