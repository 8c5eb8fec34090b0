//! The command line: `run`, `migrate`, `check-config`, and the operator commands.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio::sync::watch;

use crate::config::{Config, ConfigError, ModelConfig};
use crate::{daemon, db, telemetry};

#[derive(Parser, Debug)]
#[command(
    name = "driftd",
    version,
    about = "Keeps a deployed model accurate while the world under it changes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the daemon.
    Run {
        #[arg(long, short, default_value = "/etc/driftd/driftd.toml")]
        config: PathBuf,
    },
    /// Apply driftd's migrations (schema `driftd`).
    Migrate {
        #[arg(long, short, default_value = "/etc/driftd/driftd.toml")]
        config: PathBuf,
        /// Also create the reference `public.outcomes` table, its index and NOTIFY trigger.
        #[arg(long)]
        create_outcomes_table: bool,
    },
    /// Validate the configuration and print what it resolves to.
    CheckConfig {
        #[arg(long, short, default_value = "/etc/driftd/driftd.toml")]
        config: PathBuf,
    },
    /// Inspect and manage the model registry.
    Models {
        #[arg(long, short, global = true, default_value = "/etc/driftd/driftd.toml")]
        config: PathBuf,
        #[command(subcommand)]
        action: ModelsAction,
    },
    /// Ask the running daemon (through the database) to update a model now.
    Retrain {
        #[arg(long, short, default_value = "/etc/driftd/driftd.toml")]
        config: PathBuf,
        #[arg(long)]
        model: String,
        /// none, finetune_new, finetune_combined, refit_new, refit_combined, ensemble_new, ensemble_combined, auto
        #[arg(long)]
        strategy: Option<String>,
    },
    /// Replay a labelled history (CSV or Parquet) through a model's monitor, policy and
    /// updates, offline.
    Backtest {
        #[arg(long, short, default_value = "/etc/driftd/driftd.toml")]
        config: PathBuf,
        /// CSV or Parquet (by content or `.parquet`/`.pq`): the model's feature_names (or every
        /// numeric column but the label and the timestamp), the label and optionally a
        /// timestamp (unix seconds, a date-time column or date-time strings).
        #[arg(long)]
        input: PathBuf,
        /// Default: the configuration's only model.
        #[arg(long)]
        model: Option<String>,
        /// Write the report (with --compare, the comparison) as JSON.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Write an SVG chart of rolling accuracy, drifts and updates.
        #[arg(long)]
        chart: Option<PathBuf>,
        /// Also replay never updating and updating every N rows, and print the table.
        #[arg(long)]
        compare: bool,
        #[arg(long, default_value = "label")]
        label_column: String,
        /// Unix seconds or date-times. Default: `ts` if present, else one row a second.
        #[arg(long)]
        timestamp_column: Option<String>,
        /// Seconds between rows when there is no timestamp column.
        #[arg(long, default_value_t = 1)]
        seconds_per_row: i64,
        /// Labels arrive this many rows after the prediction.
        #[arg(long, default_value_t = 0)]
        label_delay_rows: usize,
        /// Rows the first model is fit on. Default: the model's triggers.bootstrap_min_rows.
        #[arg(long)]
        bootstrap_rows: Option<usize>,
        /// Only the first N rows of the input.
        #[arg(long)]
        max_rows: Option<usize>,
        /// The periodic baseline's period (--compare). Default: as many updates as the policy.
        #[arg(long)]
        every_rows: Option<u64>,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Write a synthetic drifting stream (f0..fN, label, ts) for `driftd backtest`: Parquet when
    /// `--out` ends in `.parquet` or `.pq`, CSV otherwise.
    Generate {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 20_000)]
        rows: usize,
        #[arg(long, default_value_t = 8)]
        n_features: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// Stream a synthetic drifting workload into the outcomes table (the demo's model service).
    DemoFeed {
        #[arg(long, short, default_value = "/etc/driftd/driftd.toml")]
        config: PathBuf,
        #[arg(long, default_value = "demo")]
        model: String,
        #[arg(long, default_value_t = 20_000)]
        rows: usize,
        #[arg(long, default_value_t = 300)]
        rows_per_sec: u32,
        #[arg(long, default_value_t = 1_000)]
        label_delay_ms: u64,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
}

#[derive(Subcommand, Debug)]
enum ModelsAction {
    /// Every version of every (or one) model.
    List {
        #[arg(long)]
        model: Option<String>,
    },
    /// A model's champion, versions and recent training runs, as JSON.
    Show {
        #[arg(long)]
        model: String,
    },
    /// Make a version the champion.
    Promote {
        #[arg(long)]
        model: String,
        #[arg(long)]
        version: i64,
    },
    /// Put back the champion that served before the current one.
    Rollback {
        #[arg(long)]
        model: String,
    },
    /// Write a version as `.safetensors` plus a JSON sidecar (loadable from PyTorch).
    Export {
        #[arg(long)]
        model: String,
        /// Default: the champion.
        #[arg(long)]
        version: Option<i64>,
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
}

/// Exit codes: 0 fine, 1 runtime failure, 2 bad configuration or usage.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("driftd: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(dispatch(cli.command))
}

/// Model `name` of `cfg`, or exit code 2 after saying which models there are.
fn configured_model<'a>(cfg: &'a Config, name: &str) -> Result<&'a ModelConfig, ExitCode> {
    cfg.model(name).ok_or_else(|| {
        let names: Vec<&str> = cfg.models.iter().map(|m| m.name.as_str()).collect();
        eprintln!(
            "driftd: bad configuration: config key `models`: no model named `{name}` (models: {})",
            names.join(", ")
        );
        ExitCode::from(2)
    })
}

fn load_config(path: &std::path::Path) -> Result<Config, ExitCode> {
    Config::load(path, std::env::vars()).map_err(|e: ConfigError| {
        eprintln!("driftd: bad configuration: {e}");
        ExitCode::from(2)
    })
}

/// [`load_config`] for the commands that use the database: without `[database]`, exit code
/// 2 naming `database.url`.
fn load_config_with_database(
    path: &std::path::Path,
) -> Result<(Config, crate::config::DatabaseConfig), ExitCode> {
    let cfg = load_config(path)?;
    match cfg.database() {
        Ok(db) => {
            let db = db.clone();
            Ok((cfg, db))
        }
        Err(e) => {
            eprintln!("driftd: bad configuration: {e}");
            Err(ExitCode::from(2))
        }
    }
}

async fn dispatch(cmd: Command) -> ExitCode {
    match cmd {
        Command::Run { config } => {
            let (cfg, _database) = match load_config_with_database(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let log = match telemetry::init(cfg.log.format, &cfg.log.level) {
                Ok(h) => h,
                Err(e) => {
                    eprintln!("driftd: bad configuration: config key `log.level`: {e}");
                    return ExitCode::from(2);
                }
            };
            let (tx, rx) = watch::channel(false);
            tokio::spawn(async move {
                wait_for_signal().await;
                let _ = tx.send(true);
            });
            match daemon::run(cfg, log, rx).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "driftd failed");
                    ExitCode::from(1)
                }
            }
        }
        Command::Migrate {
            config,
            create_outcomes_table,
        } => {
            let (_cfg, database) = match load_config_with_database(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let result = async {
                let mut conn = db::connect_one(&database).await?;
                db::migrate(&mut conn).await?;
                if create_outcomes_table {
                    db::create_reference_outcomes_table(&mut conn).await?;
                }
                Ok::<_, sqlx::Error>(())
            };
            match result.await {
                Ok(()) => {
                    println!("migrations applied");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("driftd: migrate failed: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Backtest {
            config,
            input,
            model,
            report,
            chart,
            compare,
            label_column,
            timestamp_column,
            seconds_per_row,
            label_delay_rows,
            bootstrap_rows,
            max_rows,
            every_rows,
            seed,
        } => {
            let cfg = match load_config(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let cmd = crate::backtest::BacktestCommand {
                model,
                input,
                report,
                chart,
                compare,
                options: crate::backtest::BacktestOptions {
                    label_column,
                    timestamp_column,
                    seconds_per_row,
                    label_delay_rows,
                    bootstrap_rows,
                    max_rows,
                    periodic_every_rows: every_rows,
                    seed,
                    ..Default::default()
                },
            };
            // libtorch work never runs on the async runtime.
            match tokio::task::spawn_blocking(move || crate::backtest::execute(&cfg, &cmd)).await {
                Ok(Ok(out)) => {
                    print!("{out}");
                    ExitCode::SUCCESS
                }
                Ok(Err(e @ crate::backtest::BacktestError::Config(_))) => {
                    eprintln!("driftd: backtest: {e}");
                    ExitCode::from(2)
                }
                Ok(Err(e)) => {
                    eprintln!("driftd: backtest failed: {e}");
                    ExitCode::from(1)
                }
                Err(e) => {
                    eprintln!("driftd: backtest failed: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Generate {
            out,
            rows,
            n_features,
            seed,
        } => {
            let spec = crate::backtest::generate_spec(rows, n_features, seed);
            match crate::backtest::generate_file(&spec, &out) {
                Ok(n) => {
                    println!(
                        "{n} rows written to {} (abrupt change at row {}, gradual over rows {}..{})",
                        out.display(),
                        spec.abrupt_at.unwrap_or(0),
                        spec.gradual.map_or(0, |g| g.0),
                        spec.gradual.map_or(0, |g| g.1)
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("driftd: generate failed: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::DemoFeed {
            config,
            model,
            rows,
            rows_per_sec,
            label_delay_ms,
            seed,
        } => {
            let (cfg, database) = match load_config_with_database(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let mcfg = match configured_model(&cfg, &model) {
                Ok(m) => m,
                Err(code) => return code,
            };
            let spec = crate::generate::StreamSpec {
                n_features: mcfg.n_features,
                rows,
                abrupt_at: Some(rows * 3 / 10),
                gradual: Some((rows * 13 / 20, rows * 3 / 4)),
                seed,
                ..Default::default()
            };
            let opts = crate::demo::FeedOptions {
                model,
                rows_per_sec,
                label_delay: std::time::Duration::from_millis(label_delay_ms),
                spec,
            };
            let result = async {
                let mut conn = db::connect_one(&database).await?;
                crate::demo::feed(&mut conn, &opts).await?;
                // The last labels wait out the settle interval, and an update may be running.
                let deadline = std::time::Duration::from_millis(cfg.poll.settle_ms)
                    + std::time::Duration::from_secs(60);
                if !crate::demo::wait_caught_up(&mut conn, &opts.model, deadline).await? {
                    println!("[demo] driftd has not caught up after {deadline:?}; summary so far");
                }
                crate::demo::summary(&mut conn, &opts.model, &opts.spec).await
            };
            match result.await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("driftd: demo feed failed: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Models { config, action } => {
            let (_cfg, database) = match load_config_with_database(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            match models(&database, action).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("driftd: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Retrain {
            config,
            model,
            strategy,
        } => {
            let (cfg, database) = match load_config_with_database(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let mcfg = match configured_model(&cfg, &model) {
                Ok(m) => m,
                Err(code) => return code,
            };
            let strategy = match strategy.as_deref().map(|s| (s, daemon::parse_strategy(s))) {
                None => mcfg.triggers.manual_strategy,
                Some((_, Some(s))) => s,
                Some((s, None)) => {
                    eprintln!("driftd: unknown strategy `{s}`");
                    return ExitCode::from(2);
                }
            };
            let result = async {
                let mut conn = db::connect_one(&database).await?;
                crate::registry::runs_create(
                    &mut conn,
                    &model,
                    "manual",
                    "driftd retrain",
                    strategy.as_str(),
                    crate::registry::RunStatus::Requested,
                )
                .await
            };
            match result.await {
                Ok(id) => {
                    println!("{id}");
                    eprintln!("training run {id} requested; follow it with `driftd models show --model {model}`");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("driftd: retrain request failed: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::CheckConfig { config } => match load_config(&config) {
            Ok(cfg) => {
                println!("configuration OK: {} model(s)", cfg.models.len());
                for m in &cfg.models {
                    println!(
                        "  {}: {:?}, {} features, windows {:?} + {:?}, {} detector(s)",
                        m.name,
                        m.task,
                        m.n_features,
                        m.count_windows,
                        m.time_windows,
                        m.detectors.len()
                    );
                    for sch in &m.triggers.schedules {
                        let next = crate::policy::schedule::next_firings(
                            &sch.cron,
                            m.triggers.timezone,
                            chrono::Utc::now(),
                            3,
                        )
                        .iter()
                        .map(|t| t.to_rfc3339())
                        .collect::<Vec<_>>()
                        .join(", ");
                        println!(
                            "    schedule `{}` ({}) → {}: next {next}",
                            sch.cron, m.triggers.timezone, sch.strategy
                        );
                    }
                }
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

async fn models(
    database: &crate::config::DatabaseConfig,
    action: ModelsAction,
) -> anyhow::Result<()> {
    use crate::registry;
    let mut conn = db::connect_one(database).await?;
    match action {
        ModelsAction::List { model } => {
            println!(
                "{:<16} {:>7} {:>7} {:<10} {:<18} {:<10} {:>9} {:>8}",
                "model", "version", "parent", "status", "strategy", "trigger", "rows", "holdout"
            );
            for v in registry::list(&mut conn, model.as_deref()).await? {
                let acc = v.holdout_metrics.accuracy();
                println!(
                    "{:<16} {:>7} {:>7} {:<10} {:<18} {:<10} {:>9} {:>8}",
                    v.model,
                    v.version,
                    v.parent_version.map_or("-".into(), |p| p.to_string()),
                    v.status,
                    v.strategy,
                    v.trigger,
                    v.n_train_rows,
                    acc.map_or("-".into(), |a| format!("{a:.4}"))
                );
            }
        }
        ModelsAction::Show { model } => {
            let versions = registry::list(&mut conn, Some(&model)).await?;
            let champion = versions.iter().find(|v| v.status == "champion").cloned();
            let runs = registry::runs_list(&mut conn, &model, 20).await?;
            let out = serde_json::json!({ "model": model, "champion": champion, "versions": versions, "training_runs": runs });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        ModelsAction::Promote { model, version } => {
            registry::promote(&mut conn, &model, version).await?;
            println!("{model} v{version} is the champion");
        }
        ModelsAction::Rollback { model } => {
            let v = registry::rollback(&mut conn, &model).await?;
            println!("{model} rolled back to v{v}");
        }
        ModelsAction::Export {
            model,
            version,
            out,
        } => {
            let version = match version {
                Some(v) => v,
                None => registry::champion(&mut conn, &model)
                    .await?
                    .map(|(i, _)| i.version)
                    .ok_or_else(|| anyhow::anyhow!("model {model} has no champion"))?,
            };
            let (w, s) = registry::export(&mut conn, &model, version, &out).await?;
            println!("{}\n{}", w.display(), s.display());
        }
    }
    Ok(())
}
