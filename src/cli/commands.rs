//! One function per command. Each returns an [`Outcome`]; none picks an exit code itself.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::args::{
    BacktestArgs, DemoFeedArgs, ModelsAction, OutputFormat, RetrainArgs, StrategyArg,
};
use super::{output, Outcome};
use crate::config::{Config, ConfigError, DatabaseConfig, ModelConfig};
use crate::policy::TriggerKind;
use crate::registry::{self, RunStatus};
use crate::{daemon, db, telemetry};

pub(super) fn load_config(path: &Path) -> Result<Config, Outcome> {
    Config::load(path, std::env::vars()).map_err(|e: ConfigError| Outcome::BadConfig(e.to_string()))
}

/// The `[database]` section (its password file read now), for the commands that need one.
fn database(cfg: &Config) -> Result<DatabaseConfig, Outcome> {
    cfg.database()
        .map_err(|e| Outcome::BadConfig(e.to_string()))
}

/// Model `name` of `cfg`, or a bad-configuration outcome naming the models there are.
fn configured_model<'a>(cfg: &'a Config, name: &str) -> Result<&'a ModelConfig, Outcome> {
    cfg.model(name).ok_or_else(|| no_such_model(cfg, name))
}

/// The model names of the outcomes table that a template makes (what a running daemon
/// discovers); empty when the table cannot be read.
async fn discovered_models(conn: &mut sqlx::PgConnection, cfg: &Config) -> Vec<String> {
    if cfg.model_templates.is_empty() {
        return Vec::new();
    }
    let source = crate::outcomes::OutcomeSource::new(&cfg.source);
    let names = source.model_names(conn).await.unwrap_or_default();
    names
        .into_iter()
        .filter(|n| cfg.template_for(n).is_some())
        .collect()
}

/// The bad-configuration outcome for a model neither `[[models]]` nor a template makes,
/// listing the configured models, the ones templates found (when the database could be
/// asked) and the templates' patterns.
fn no_such_model_among(cfg: &Config, name: &str, discovered: Option<&[String]>) -> Outcome {
    let names: Vec<&str> = cfg.models.iter().map(|m| m.name.as_str()).collect();
    let patterns: Vec<&str> = cfg
        .model_templates
        .iter()
        .map(|t| t.pattern.as_str())
        .collect();
    let none = |v: String| if v.is_empty() { "none".to_string() } else { v };
    let found = match discovered {
        Some(d) => format!("; found through templates: {}", none(d.join(", "))),
        None => String::new(),
    };
    Outcome::BadConfig(format!(
        "config key `models`: no model named `{name}` (models: {}{found}; templates: {})",
        none(names.join(", ")),
        none(patterns.join(", "))
    ))
}

fn no_such_model(cfg: &Config, name: &str) -> Outcome {
    no_such_model_among(cfg, name, None)
}

/// Model `name` as a running daemon knows it: its `[[models]]` block, or the model a
/// template makes for a name of the outcomes table (its width from the template or the
/// rows). Anything else is a bad-configuration outcome listing the models there are.
async fn known_model(
    conn: &mut sqlx::PgConnection,
    cfg: &Config,
    name: &str,
) -> Result<ModelConfig, Outcome> {
    if let Some(m) = cfg.model(name) {
        return Ok(m.clone());
    }
    let discovered = discovered_models(conn, cfg).await;
    let template = cfg.template_for(name);
    match template {
        Some(t) if discovered.iter().any(|d| d == name) => {
            let source = crate::outcomes::OutcomeSource::new(&cfg.source);
            let width = match t.n_features {
                Some(w) => Some(w),
                None => source.feature_width(conn, name).await.ok().flatten(),
            };
            t.instantiate(name, width.unwrap_or(1), &cfg.source)
                .map_err(|(k, reason)| {
                    Outcome::BadConfig(format!("model `{name}` (from its template): {k}: {reason}"))
                })
        }
        _ => Err(no_such_model_among(cfg, name, Some(&discovered))),
    }
}

/// `?` for functions returning `Outcome`.
macro_rules! attempt {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(outcome) => return outcome,
        }
    };
}

pub async fn run(path: &Path) -> Outcome {
    let cfg = attempt!(load_config(path));
    attempt!(database(&cfg));
    let log = match telemetry::init(cfg.log.format, cfg.log.level.as_str()) {
        Ok(h) => h,
        Err(e) => return Outcome::BadConfig(format!("RUST_LOG: {e}")),
    };
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_shutdown_signal().await;
        let _ = tx.send(true);
    });
    tokio::spawn(reload_on_sighup(path.to_path_buf(), log.clone()));
    match daemon::run(cfg, log, rx).await {
        Ok(()) => Outcome::Done,
        // The table's columns cannot be read as `[source]` says: a configuration error.
        Err(e) if e.is::<crate::outcomes::columns::SourceError>() => {
            tracing::error!(error = %e, "the outcomes table does not fit [source]");
            Outcome::BadConfig(format!("the outcomes table does not fit [source]: {e}"))
        }
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "driftd failed");
            Outcome::Failed(format!("driftd failed: {e:#}"))
        }
    }
}

async fn wait_for_shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// SIGHUP (`systemctl reload`): re-reads the configuration. A bad file is reported and the
/// running configuration kept; a good one applies its `log.level` (unless `RUST_LOG` is set)
/// and says that other changes take effect at the next restart.
async fn reload_on_sighup(path: PathBuf, log: telemetry::LogLevelHandle) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot handle SIGHUP; `systemctl reload` would stop driftd");
        return;
    };
    while hup.recv().await.is_some() {
        let status = match Config::load(&path, std::env::vars()) {
            Err(e) => {
                tracing::error!(error = %e, path = %path.display(), "SIGHUP: the configuration is invalid; keeping the running one");
                format!("reload failed, running configuration kept: {e}")
            }
            Ok(cfg) => {
                let level = std::env::var("RUST_LOG")
                    .unwrap_or_else(|_| cfg.log.level.as_str().to_string());
                match log.set(&level) {
                    Ok(()) => {
                        tracing::info!(path = %path.display(), log_level = %level, "SIGHUP: configuration re-read; log level applied, other changes take effect at the next restart")
                    }
                    Err(e) => tracing::error!(error = %e, "SIGHUP: log level not applied"),
                }
                format!("configuration re-read (log level {level})")
            }
        };
        crate::systemd::status(&status);
    }
}

pub async fn migrate(path: &Path, create_outcomes_table: bool) -> Outcome {
    let cfg = attempt!(load_config(path));
    let dbc = attempt!(database(&cfg));
    let result = async {
        let mut conn = db::connect_one(&dbc).await?;
        let migrated = db::migrate_reporting(&mut conn).await?;
        let table = match create_outcomes_table {
            true => Some(db::create_reference_outcomes_table(&mut conn).await?),
            false => None,
        };
        Ok::<_, sqlx::Error>((migrated, table))
    };
    match result.await {
        Ok((m, table)) => {
            print!("{}", output::migrated_text(&m, table));
            Outcome::Done
        }
        Err(e) => Outcome::failed("migrate failed", e),
    }
}

pub fn check_config(path: &Path, format: OutputFormat) -> Outcome {
    let loaded = load_config(path);
    if let Ok(cfg) = &loaded {
        // A secret file the service has and this shell may not: a warning, not a failure.
        for w in cfg.secret_warnings() {
            eprintln!("driftd: warning: {w}");
        }
    }
    match (loaded, format) {
        (Ok(cfg), OutputFormat::Table) => {
            print!("{}", output::config_table(&cfg, chrono::Utc::now()));
            Outcome::Done
        }
        (Ok(cfg), OutputFormat::Json) => {
            println!("{}", output::config_json(&cfg, chrono::Utc::now()));
            Outcome::Done
        }
        (Err(Outcome::BadConfig(e)), OutputFormat::Json) => {
            println!("{}", serde_json::json!({ "ok": false, "error": e }));
            Outcome::BadConfig(e)
        }
        (Err(outcome), _) => outcome,
    }
}

pub async fn models(config: &Path, action: ModelsAction) -> Outcome {
    let cfg = attempt!(load_config(config));
    let dbc = attempt!(database(&cfg));
    let mut conn = match db::connect_one(&dbc).await {
        Ok(c) => c,
        Err(e) => return Outcome::failed("cannot connect to the database", e),
    };
    if let Some(name) = action.model() {
        if let Err(unknown) = known_model(&mut conn, &cfg, name).await {
            return unknown;
        }
    }
    let result = match action {
        ModelsAction::List { model, output } => {
            models_list(&mut conn, model.as_deref(), output).await
        }
        ModelsAction::Show { model, output } => models_show(&mut conn, &model, output).await,
        ModelsAction::Promote { model, version } => registry::promote(&mut conn, &model, version)
            .await
            .map(|()| println!("{model} v{version} is the champion"))
            .map_err(anyhow::Error::from),
        ModelsAction::Rollback { model, to } => registry::rollback(&mut conn, &model, to)
            .await
            .map(|r| match r.from {
                Some(from) => println!("{model} rolled back from v{from} to v{}", r.to),
                None => println!("{model} rolled back to v{} (there was no champion)", r.to),
            })
            .map_err(anyhow::Error::from),
        ModelsAction::Import {
            model,
            from,
            promote,
        } => models_import(&mut conn, &cfg, &model, &from, promote).await,
        ModelsAction::Export {
            model,
            version,
            out,
        } => models_export(&mut conn, &model, version, &out).await,
    };
    match result {
        Ok(()) => Outcome::Done,
        Err(e) => Outcome::Failed(format!("{e:#}")),
    }
}

async fn models_import(
    conn: &mut sqlx::PgConnection,
    cfg: &Config,
    model: &str,
    from: &Path,
    promote: bool,
) -> anyhow::Result<()> {
    // Configured or found through a template: `models` checked it is known.
    let mcfg = match known_model(conn, cfg, model).await {
        Ok(m) => m,
        Err(_) => anyhow::bail!("no model named `{model}`"),
    };
    let (v, layout) = crate::serve::import::import(conn, &mcfg, from, promote).await?;
    let role = if promote {
        "the champion"
    } else {
        "not promoted"
    };
    println!(
        "{model} v{v} imported from {} ({}; {role})",
        from.display(),
        layout.as_str()
    );
    Ok(())
}

async fn models_list(
    conn: &mut sqlx::PgConnection,
    model: Option<&str>,
    format: OutputFormat,
) -> anyhow::Result<()> {
    let versions = registry::list(conn, model).await?;
    match format {
        OutputFormat::Table => print!("{}", output::versions_table(&versions)),
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&versions)?),
    }
    Ok(())
}

async fn models_show(
    conn: &mut sqlx::PgConnection,
    model: &str,
    format: OutputFormat,
) -> anyhow::Result<()> {
    let versions = registry::list(conn, Some(model)).await?;
    let runs = registry::runs_list(conn, model, 20).await?;
    match format {
        OutputFormat::Table => print!("{}", output::model_text(model, &versions, &runs)),
        OutputFormat::Json => {
            let champion = versions.iter().find(|v| v.status == "champion");
            let out = serde_json::json!({ "model": model, "champion": champion, "versions": versions, "training_runs": runs });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
    }
    Ok(())
}

async fn models_export(
    conn: &mut sqlx::PgConnection,
    model: &str,
    version: Option<i64>,
    out: &Path,
) -> anyhow::Result<()> {
    let version = match version {
        Some(v) => v,
        None => registry::champion(conn, model)
            .await?
            .map(|(i, _)| i.version)
            .ok_or_else(|| anyhow::anyhow!("model {model} has no champion"))?,
    };
    let (w, s) = registry::export(conn, model, version, out).await?;
    println!("{}\n{}", w.display(), s.display());
    Ok(())
}

pub async fn retrain(args: RetrainArgs) -> Outcome {
    let cfg = attempt!(load_config(&args.config.config));
    // Without a matching block or template, no database is needed to say so.
    if cfg.model_settings(&args.model).is_none() {
        return no_such_model(&cfg, &args.model);
    }
    let dbc = attempt!(database(&cfg));
    let mut conn = match db::connect_one(&dbc).await {
        Ok(c) => c,
        Err(e) => return Outcome::failed("retrain request failed", e),
    };
    // A model a template makes is retrained like a configured one, once the daemon can
    // have found it (it has rows).
    let mcfg = attempt!(known_model(&mut conn, &cfg, &args.model).await);
    if !mcfg.train.enabled {
        return Outcome::BadConfig(format!(
            "model `{}` is monitor-only (train.enabled = false): driftd does not train it",
            args.model
        ));
    }
    let strategy = args
        .strategy
        .map_or(mcfg.triggers.manual_strategy, |StrategyArg(s)| s);
    let created = registry::runs_create(
        &mut conn,
        &args.model,
        TriggerKind::Manual,
        "driftd retrain",
        strategy,
        RunStatus::Requested,
    )
    .await;
    let id = match created {
        Ok(id) => id,
        Err(e) => return Outcome::failed("retrain request failed", e),
    };
    println!("{id}");
    if !args.wait {
        eprintln!(
            "training run {id} requested; follow it with `driftd models show --model {}`",
            args.model
        );
        return Outcome::Done;
    }
    eprintln!(
        "training run {id} requested; waiting up to {:?}",
        args.timeout
    );
    wait_for_run(&mut conn, id, args.timeout).await
}

/// Polls run `id` until it ends or `timeout` passes.
async fn wait_for_run(conn: &mut sqlx::PgConnection, id: i64, timeout: Duration) -> Outcome {
    let deadline = Instant::now() + timeout;
    loop {
        let run = match registry::runs_get(conn, id).await {
            Ok(Some(r)) => r,
            Ok(None) => return Outcome::Failed(format!("training run {id} disappeared")),
            Err(e) => return Outcome::failed("cannot read the training run", e),
        };
        match run.status.as_str() {
            "promoted" => {
                eprintln!(
                    "run {id} promoted v{}",
                    run.new_version.map_or("?".into(), |v| v.to_string())
                );
                return Outcome::Done;
            }
            "kept" => return Outcome::RunKept,
            "skipped" => {
                let why = run.error.unwrap_or_else(|| "the run was skipped".into());
                return Outcome::NothingToDo(why);
            }
            "failed" | "cancelled" => {
                let why = run.error.unwrap_or_else(|| run.status.clone());
                return Outcome::RunFailed(why);
            }
            _ if Instant::now() >= deadline => return Outcome::WaitTimedOut,
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

pub async fn backtest(args: BacktestArgs) -> Outcome {
    let cfg = attempt!(load_config(&args.config.config));
    let fail_under = args.fail_under;
    let cmd = crate::backtest::BacktestCommand {
        model: args.model,
        input: args.input,
        report: args.report,
        chart: args.chart,
        compare: args.compare,
        options: crate::backtest::BacktestOptions {
            label_column: args.label_column,
            timestamp_column: args.timestamp_column,
            seconds_per_row: args.seconds_per_row,
            label_delay_rows: args.label_delay_rows,
            label_time_column: args.label_time_column,
            estimate_window: args.estimate_window,
            bootstrap_rows: args.bootstrap_rows,
            max_rows: args.max_rows,
            periodic_every_rows: args.every_rows,
            seed: args.seed,
            ..Default::default()
        },
    };
    // libtorch work never runs on the async runtime.
    let replay = tokio::task::spawn_blocking(move || {
        crate::progress::with_terminal_reporter("backtest", || crate::backtest::execute(&cfg, &cmd))
    });
    let done = match replay.await {
        Ok(Ok(done)) => done,
        Ok(Err(e @ crate::backtest::BacktestError::Config(_))) => {
            return Outcome::BadConfig(format!("backtest: {e}"))
        }
        Ok(Err(e)) => return Outcome::failed("backtest failed", e),
        Err(e) => return Outcome::failed("backtest failed", e),
    };
    print!("{}", done.text);
    match fail_under {
        Some(threshold) if done.prequential_accuracy < threshold => Outcome::BelowThreshold {
            accuracy: done.prequential_accuracy,
            threshold,
        },
        _ => Outcome::Done,
    }
}

/// The feature names `generate` writes: `--config`'s model's, or `f0..` (`None`).
/// The columns of `--config`'s model and how many of them (the last) are categorical.
fn generate_names(
    config: Option<&Path>,
    model: Option<&str>,
) -> Result<Option<(Vec<String>, usize)>, Outcome> {
    let Some(path) = config else {
        return Ok(None);
    };
    let cfg = load_config(path)?;
    let m = match model {
        Some(name) => configured_model(&cfg, name)?,
        None => cfg
            .models
            .first()
            .ok_or_else(|| no_such_model(&cfg, "(any)"))?,
    };
    let categorical = m.categorical_indices();
    let trailing: Vec<usize> = (m.n_features - categorical.len()..m.n_features).collect();
    if categorical != trailing {
        return Err(Outcome::BadConfig(format!(
            "model `{}`: generate writes the categorical features last; list them last in \
             feature_names",
            m.name
        )));
    }
    let names = if m.feature_names.len() == m.n_features {
        m.feature_names.clone()
    } else {
        (0..m.n_features).map(|f| format!("f{f}")).collect()
    };
    Ok(Some((names, categorical.len())))
}

pub fn generate(
    out: &Path,
    rows: usize,
    (n_features, categorical): (Option<usize>, Option<usize>),
    (config, model): (Option<PathBuf>, Option<String>),
    seed: u64,
) -> Outcome {
    let named = attempt!(generate_names(config.as_deref(), model.as_deref()));
    let names = named.as_ref().map(|(names, _)| names);
    if let (Some(names), Some(n)) = (names, n_features) {
        if names.len() != n {
            return Outcome::BadConfig(format!(
                "--n-features {n}: the model of --config has {} features",
                names.len()
            ));
        }
    }
    let model_categorical = named.as_ref().map(|(_, c)| *c);
    if let (Some(m), Some(c)) = (model_categorical, categorical) {
        if m != c {
            return Outcome::BadConfig(format!(
                "--categorical {c}: the model of --config has {m} categorical features"
            ));
        }
    }
    let categorical = model_categorical.or(categorical).unwrap_or(0);
    let n_features = names.map_or(n_features.unwrap_or(8), |n| {
        n.len().saturating_sub(categorical)
    });
    let mut spec = crate::backtest::generate_spec(rows, n_features, seed);
    spec.categorical = categorical;
    let written = crate::progress::with_terminal_reporter("generate", || match names {
        Some(names) => crate::backtest::generate_file_named(&spec, out, names),
        None => crate::backtest::generate_file(&spec, out),
    });
    match written {
        Ok(n) => {
            let change = if categorical > 0 {
                " in c0's categories"
            } else {
                ""
            };
            println!(
                "{n} rows written to {} (abrupt change{change} at row {}, gradual over rows {}..{})",
                out.display(),
                spec.abrupt_at.unwrap_or(0),
                spec.gradual.map_or(0, |g| g.0),
                spec.gradual.map_or(0, |g| g.1)
            );
            Outcome::Done
        }
        Err(e) => Outcome::failed("generate failed", e),
    }
}

pub async fn demo_feed(args: DemoFeedArgs) -> Outcome {
    let cfg = attempt!(load_config(&args.config.config));
    let mcfg = attempt!(configured_model(&cfg, &args.model));
    let dbc = attempt!(database(&cfg));
    let rows = args.rows;
    let spec = crate::generate::StreamSpec {
        n_features: mcfg.n_features,
        rows,
        abrupt_at: Some(rows * 3 / 10),
        gradual: Some((rows * 13 / 20, rows * 3 / 4)),
        seed: args.seed,
        categorical: 0,
        ..Default::default()
    };
    let opts = crate::demo::FeedOptions {
        model: args.model,
        rows_per_sec: args.rows_per_sec,
        label_delay: Duration::from_millis(args.label_delay_ms),
        spec,
    };
    // The feed writes the table `[source]` describes, as the user's model service would.
    let source = crate::outcomes::OutcomeSource::new(&cfg.source);
    let result = async {
        let mut conn = db::connect_one(&dbc).await?;
        crate::demo::feed(&mut conn, &source, &opts).await?;
        // The last labels wait out the settle interval, and an update may be running.
        let deadline = Duration::from_millis(cfg.poll.settle_ms) + Duration::from_secs(60);
        if !crate::demo::wait_caught_up(&mut conn, &source, &opts.model, deadline).await? {
            println!("[demo] driftd has not caught up after {deadline:?}; summary so far");
        }
        crate::demo::summary(&mut conn, &source, &opts.model, &opts.spec).await
    };
    match result.await {
        Ok(()) => Outcome::Done,
        Err(e) => Outcome::failed("demo feed failed", e),
    }
}

pub fn completions(shell: clap_complete::Shell) -> Outcome {
    use clap::CommandFactory;
    let mut cmd = super::Cli::command();
    clap_complete::generate(shell, &mut cmd, "driftd", &mut std::io::stdout());
    Outcome::Done
}
