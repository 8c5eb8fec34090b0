//! `driftd run`: wires the source, the per-model loops and the HTTP surface together and runs
//! them until shutdown.

mod adopt;
pub mod counted;
mod discover;
mod listen;
mod membership;
mod model_loop;
mod niced;
mod ownership;
mod reference;
mod schedule;
pub mod store;
mod sweep;
mod training;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;

use crate::catalog::Catalog;
use crate::config::{Config, DatabaseConfig};
use crate::db::{self, Backoff};
use crate::exporter::{self, DatabaseHealth, Health, HttpState, Metrics};
use crate::outcomes::columns::{self, Casts, ResolveError, SourceError};
use crate::outcomes::OutcomeSource;
use crate::serve;
use crate::serve::cache::{ChampionCache, Reload};
use crate::telemetry::LogLevelHandle;

pub use model_loop::{ModelLoop, StepOutcome};

/// Keeps trying to apply the migrations (the server may still be starting), reporting
/// not-ready meanwhile; false when shutdown came first.
async fn migrate_when_ready(
    cfg: &Config,
    database: &DatabaseConfig,
    metrics: &Metrics,
    database_health: &DatabaseHealth,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let mut backoff = Backoff::new(200, cfg.poll.max_backoff_ms);
    loop {
        let attempt = async {
            let mut conn = db::connect_one(database).await?;
            db::migrate(&mut conn).await
        };
        match attempt.await {
            Ok(()) => {
                database_health.set(true);
                return true;
            }
            Err(e) => {
                database_health.set(false);
                metrics.ingest.daemon_database_failed();
                let d = backoff.next_delay();
                tracing::warn!(error = %e, retry_in_ms = d.as_millis() as u64, "database not ready");
                tokio::select! {
                    _ = tokio::time::sleep(d) => {}
                    _ = shutdown.wait_for(|s| *s) => { return false; }
                }
            }
        }
    }
}

/// Reads the outcomes table's column types and chooses the poll query's casts. A missing
/// table is waited for (not ready: "table X does not exist"); a missing column or one of a
/// type driftd cannot read is refused, naming the column and its type. `None`: shutdown.
async fn resolve_source(
    cfg: &Config,
    database: &DatabaseConfig,
    health: &Health,
    shutdown: &mut watch::Receiver<bool>,
) -> anyhow::Result<Option<Casts>> {
    let mut backoff = Backoff::new(200, cfg.poll.max_backoff_ms);
    loop {
        let attempt = async {
            let mut conn = db::connect_one(database).await?;
            columns::resolve(&mut conn, &cfg.source).await
        };
        let why = match attempt.await {
            Ok(casts) => {
                health.set_source_problem(None);
                return Ok(Some(casts));
            }
            Err(ResolveError::Source(e @ SourceError::Columns(_))) => return Err(e.into()),
            Err(ResolveError::Source(e @ SourceError::NoTable(_))) => {
                health.set_source_problem(Some(e.to_string()));
                e.to_string()
            }
            Err(ResolveError::Db(e)) => e.to_string(),
        };
        crate::systemd::status(&format!("not ready: {why}"));
        let d = backoff.next_delay();
        tracing::warn!(error = %why, retry_in_ms = d.as_millis() as u64, "cannot read the outcomes table yet");
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = shutdown.wait_for(|s| *s) => { return Ok(None); }
        }
    }
}

/// What every model loop of this replica shares.
pub struct Shared {
    health: Arc<Health>,
    source: Arc<OutcomeSource>,
    pool: sqlx::PgPool,
    metrics: Arc<Metrics>,
    database: DatabaseHealth,
    board: Arc<sweep::SweepBoard>,
    training_slots: Arc<Semaphore>,
}

/// The HTTP surface: metrics and health, predictions and downloads, the admin API. Returns
/// the champion cache's task and the server's.
struct HttpTasks {
    champions: Arc<ChampionCache>,
    /// Where `LISTEN` asks the champion cache to reload.
    reloads: mpsc::UnboundedSender<Reload>,
    keep_fresh: JoinHandle<()>,
    server: JoinHandle<std::io::Result<()>>,
}

async fn start_http(
    cfg: &Config,
    catalog: &Arc<Catalog>,
    pool: &sqlx::PgPool,
    http_state: HttpState,
    shutdown: &watch::Receiver<bool>,
) -> anyhow::Result<HttpTasks> {
    let mut http_shutdown = shutdown.clone();
    let (reloads, reloads_rx) = mpsc::unbounded_channel();
    let (serving, champions, keep_fresh) = serve::start(
        cfg,
        catalog.clone(),
        http_state.metrics.clone(),
        pool.clone(),
        reloads_rx,
        shutdown.clone(),
    );
    let (addr, http_task) = exporter::serve(&cfg.http.listen, http_state, serving, async move {
        let _ = http_shutdown.wait_for(|s| *s).await;
    })
    .await
    .with_context(|| format!("cannot listen on {}", cfg.http.listen))?;
    tracing::info!("listening on http://{addr}");
    Ok(HttpTasks {
        champions,
        reloads,
        keep_fresh,
        server: http_task,
    })
}

/// The model side of a replica: ownership (which runs the loops) and what wakes the loops.
struct ModelTasks {
    ownership: JoinHandle<()>,
    /// Holds the schedules (their jobs stop when it is dropped) and the catalog.
    _adopter: Arc<adopt::Adopter>,
    /// The sweep, `LISTEN` and discovery: aborted once the loops have stopped.
    background: Vec<JoinHandle<()>>,
}

/// Adopts the configured models, then starts ownership, the sweep, discovery (with
/// templates) and `LISTEN`.
async fn start_models(
    cfg: &Config,
    database: &DatabaseConfig,
    shared: Shared,
    catalog: Arc<Catalog>,
    serving: (Arc<ChampionCache>, mpsc::UnboundedSender<Reload>),
    health: &Arc<Health>,
    shutdown: &watch::Receiver<bool>,
) -> ModelTasks {
    let mut background = vec![tokio::spawn(sweep::run(
        shared.board.clone(),
        shared.pool.clone(),
        shared.source.clone(),
        Duration::from_millis(cfg.poll.sweep_interval_ms),
        cfg.poll.settle_ms,
        shutdown.clone(),
    ))];
    let (loops_tx, loops_rx) = mpsc::unbounded_channel();
    let reloads = serving.1;
    let metrics = shared.metrics.clone();
    let database_health = shared.database.clone();
    let channel = shared.source.notify_channel.clone();
    let adopter = Arc::new(adopt::Adopter {
        shared,
        runtime: cfg.training.clone(),
        poll: cfg.poll.clone(),
        catalog,
        wakers: Arc::new(adopt::Wakers::default()),
        schedules: schedule::Schedules::new(metrics.clone()),
        champions: serving.0,
        loops: loops_tx,
    });
    for m in &cfg.models {
        adopter.adopt(m.clone(), false).await;
    }
    let ownership = tokio::spawn(
        ownership::Ownership {
            db: database.clone(),
            interval: Duration::from_millis(cfg.poll.ownership_check_ms),
            replica_ttl: Duration::from_millis(cfg.poll.replica_ttl_ms),
            metrics,
            health: health.clone(),
            database: database_health,
        }
        .run(loops_rx, shutdown.clone()),
    );
    let heard = (!cfg.model_templates.is_empty()).then(|| {
        let cfg = Arc::new(cfg.clone());
        let (tx, rx) = mpsc::unbounded_channel();
        let interval = Duration::from_millis(cfg.poll.discover_interval_ms);
        let discovery = discover::Discovery::new(cfg.clone(), adopter.clone(), rx, interval);
        background.push(tokio::spawn(discovery.run(shutdown.clone())));
        discover::Heard { cfg, names: tx }
    });
    let listen = listen::Listen {
        db: database.clone(),
        outcomes_channel: channel,
        wakers: adopter.wakers.clone(),
        heard,
        reloads,
    };
    background.push(tokio::spawn(listen.run(shutdown.clone())));
    ModelTasks {
        ownership,
        _adopter: adopter,
        background,
    }
}

/// Runs the daemon until `shutdown` turns true; then each model finishes the batch in hand,
/// commits, and the function returns.
pub async fn run(
    cfg: Config,
    log_level: LogLevelHandle,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::new(Duration::from_millis(
        cfg.poll.not_ready_after_ms,
    )));
    let database = cfg.database()?;
    crate::systemd::set_liveness_timeout(Duration::from_millis(cfg.http.liveness_timeout_ms));
    let pool = db::pool(&database).context("database.url")?;
    let http_state = HttpState {
        http_metrics: Arc::new(exporter::http_metrics::HttpMetrics::register(
            metrics.registry(),
        )),
        metrics: metrics.clone(),
        health: health.clone(),
        log_level,
        tokens: Arc::new(crate::auth::Tokens::new(
            cfg.http.read_token.as_ref(),
            cfg.http.admin_token.as_ref(),
        )),
        limits: exporter::RequestLimits {
            timeout: Duration::from_millis(cfg.http.request_timeout_ms),
            max_concurrent: cfg.http.max_concurrent_requests,
        },
    };
    // The configured models are known (and served) from the start; discovery adds to them.
    let catalog = Arc::new(Catalog::new(cfg.models.iter().cloned()));
    let http = start_http(&cfg, &catalog, &pool, http_state, &shutdown).await?;

    let database_health = DatabaseHealth::new(health.clone(), metrics.clone());
    if !migrate_when_ready(&cfg, &database, &metrics, &database_health, &mut shutdown).await {
        return Ok(());
    }

    let Some(casts) = resolve_source(&cfg, &database, &health, &mut shutdown).await? else {
        return Ok(());
    };
    let shared = Shared {
        health: health.clone(),
        source: Arc::new(OutcomeSource::with_casts(&cfg.source, &casts)),
        pool: pool.clone(),
        metrics: metrics.clone(),
        database: database_health,
        board: Arc::new(sweep::SweepBoard::default()),
        training_slots: Arc::new(Semaphore::new(cfg.training.max_concurrent)),
    };
    let tasks = start_models(
        &cfg,
        &database,
        shared,
        catalog,
        (http.champions.clone(), http.reloads.clone()),
        &health,
        &shutdown,
    )
    .await;

    let _ = shutdown.wait_for(|s| *s).await;
    tracing::info!("shutting down: finishing the batches in hand");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    if let Err(e) = tasks.ownership.await {
        tracing::error!(error = %e, "the ownership task ended abnormally");
    }
    for t in tasks.background {
        t.abort();
    }
    let _ = http.keep_fresh.await;
    let _ = http.server.await;
    pool.close().await;
    tracing::info!("stopped");
    Ok(())
}
