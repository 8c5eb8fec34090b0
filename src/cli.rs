//! The command line: `run`, `migrate`, `check-config`, and the operator commands.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio::sync::watch;

use crate::config::{Config, ConfigError};
use crate::{daemon, db, telemetry};

#[derive(Parser, Debug)]
#[command(name = "driftd", version, about = "Keeps a deployed model accurate while the world under it changes")]
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
    /// Stream a synthetic drifting workload into the outcomes table (the demo's model service).
    DemoFeed {
        #[arg(long, short, default_value = "/etc/driftd/driftd.toml")]
        config: PathBuf,
        #[arg(long, default_value = "demo")]
        model: String,
        #[arg(long, default_value_t = 20_000)]
        rows: usize,
        #[arg(long, default_value_t = 500)]
        rows_per_sec: u32,
        #[arg(long, default_value_t = 1_000)]
        label_delay_ms: u64,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
}

/// Exit codes: 0 fine, 1 runtime failure, 2 bad configuration or usage.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("driftd: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(dispatch(cli.command))
}

fn load_config(path: &std::path::Path) -> Result<Config, ExitCode> {
    Config::load(path, std::env::vars()).map_err(|e: ConfigError| {
        eprintln!("driftd: bad configuration: {e}");
        ExitCode::from(2)
    })
}

async fn dispatch(cmd: Command) -> ExitCode {
    match cmd {
        Command::Run { config } => {
            let cfg = match load_config(&config) {
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
            let cfg = match load_config(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let result = async {
                let mut conn = db::connect_one(&cfg.database).await?;
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
        Command::DemoFeed {
            config,
            model,
            rows,
            rows_per_sec,
            label_delay_ms,
            seed,
        } => {
            let cfg = match load_config(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let Some(mcfg) = cfg.model(&model) else {
                eprintln!("driftd: bad configuration: config key `models`: no model named `{model}`");
                return ExitCode::from(2);
            };
            let spec = crate::generate::StreamSpec {
                n_features: mcfg.n_features,
                rows,
                abrupt_at: Some(rows * 2 / 5),
                gradual: Some((rows * 7 / 10, rows * 17 / 20)),
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
                let mut conn = db::connect_one(&cfg.database).await?;
                crate::demo::feed(&mut conn, &opts).await?;
                // Give the daemon a moment past the settle interval to catch the last labels.
                tokio::time::sleep(std::time::Duration::from_millis(cfg.poll.settle_ms + 2 * cfg.poll.interval_ms)).await;
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
