//! The command line's shape (clap derive): subcommands, their arguments and closed value sets.

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::PossibleValue;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::train::Strategy;

/// `driftd 0.1.0 (3f2c1a9e0b7d)`: the crate version and the git revision it was built from.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("DRIFTD_GIT_REVISION"),
    ")"
);

const EXIT_CODES: &str = "Exit codes: 0 done (retrain --wait: promoted), 1 failure, \
2 bad configuration or usage, 3 retrain --wait: kept, 4 retrain --wait: failed or cancelled, \
5 retrain --wait: timed out, 6 backtest --fail-under: below the threshold, 7 retrain --wait: nothing to do (skipped).";

#[derive(Parser, Debug)]
#[command(
    name = "driftd",
    version = VERSION,
    about = "Keeps a deployed model accurate while the world under it changes",
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// `--config`, defaulting to `$DRIFTD_CONFIG`, then `/etc/driftd/driftd.toml`.
#[derive(Args, Debug, Clone)]
pub struct ConfigArg {
    /// The configuration file.
    #[arg(
        long,
        short,
        env = "DRIFTD_CONFIG",
        default_value = "/etc/driftd/driftd.toml"
    )]
    pub config: PathBuf,
}

/// How a command prints what it found.
#[derive(ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OutputFormat {
    /// Aligned columns or indented text, for people.
    #[default]
    Table,
    /// One JSON document on stdout, for scripts.
    Json,
}

/// An update strategy, as a closed value set for `--help` and completions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StrategyArg(pub Strategy);

const STRATEGIES: [StrategyArg; 8] = [
    StrategyArg(Strategy::None),
    StrategyArg(Strategy::FinetuneNew),
    StrategyArg(Strategy::FinetuneCombined),
    StrategyArg(Strategy::RefitNew),
    StrategyArg(Strategy::RefitCombined),
    StrategyArg(Strategy::EnsembleNew),
    StrategyArg(Strategy::EnsembleCombined),
    StrategyArg(Strategy::Auto),
];

/// One line per strategy; the match is exhaustive, so a new strategy cannot be left out.
fn strategy_help(s: Strategy) -> &'static str {
    match s {
        Strategy::None => "keep the champion",
        Strategy::FinetuneNew => "continue training the champion on the new rows",
        Strategy::FinetuneCombined => "continue training the champion on old + new rows",
        Strategy::RefitNew => "fit a fresh model on the new rows",
        Strategy::RefitCombined => "fit a fresh model on old + new rows",
        Strategy::EnsembleNew => "average the champion with a fresh model on the new rows",
        Strategy::EnsembleCombined => "average the champion with a fresh model on old + new rows",
        Strategy::Auto => "train every candidate, promote the best if it beats the champion",
    }
}

impl ValueEnum for StrategyArg {
    fn value_variants<'a>() -> &'a [Self] {
        &STRATEGIES
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.0.as_str()).help(strategy_help(self.0)))
    }
}

/// `--fail-under`: an accuracy in [0, 1].
fn accuracy(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(a) if (0.0..=1.0).contains(&a) => Ok(a),
        _ => Err(format!("`{s}` is not an accuracy between 0 and 1")),
    }
}

/// `--timeout`: `90s`, `15m`, `2h`.
fn duration(s: &str) -> Result<Duration, String> {
    crate::span::Span::parse(s).map(|span| Duration::from_secs(span.secs().max(0) as u64))
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the daemon.
    Run {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Apply driftd's migrations (schema `driftd`).
    Migrate {
        #[command(flatten)]
        config: ConfigArg,
        /// Also create the reference `public.outcomes` table, its index and NOTIFY trigger.
        #[arg(long)]
        create_outcomes_table: bool,
    },
    /// Validate the configuration and print what it resolves to.
    CheckConfig {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long, short, value_enum, default_value_t)]
        output: OutputFormat,
        /// Also connect and check the outcomes table against `[source]` and every model and
        /// template: the table and columns exist, their types can be read, the poll index,
        /// the grants. Exit 2 on a finding that would make polling fail.
        #[arg(long)]
        database: bool,
    },
    /// Inspect and manage the model registry.
    Models {
        /// The configuration file (also accepted after the action).
        #[arg(
            long,
            short,
            global = true,
            env = "DRIFTD_CONFIG",
            default_value = "/etc/driftd/driftd.toml"
        )]
        config: PathBuf,
        #[command(subcommand)]
        action: ModelsAction,
    },
    /// Ask the running daemon (through the database) to update a model now.
    Retrain(RetrainArgs),
    /// Replay a labelled history (CSV or Parquet) through a model's monitor, policy and
    /// updates, offline.
    Backtest(Box<BacktestArgs>),
    /// Write a synthetic drifting stream (f0..fN, label, ts) for `driftd backtest`: Parquet when
    /// `--out` ends in `.parquet` or `.pq`, CSV otherwise. With `--config`, the columns are a
    /// model's `feature_names` (and its `n_features`), so `backtest --config` reads the file.
    Generate {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 20_000)]
        rows: usize,
        /// Default 8, or the model's with `--config`.
        #[arg(long)]
        n_features: Option<usize>,
        /// Take the feature count and names from this configuration's model.
        #[arg(long)]
        config: Option<PathBuf>,
        /// The model of `--config` (default: its only or first model).
        #[arg(long, requires = "config")]
        model: Option<String>,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Categorical features after the numeric ones (text columns `c0`…, values `v0`…`v5`);
        /// the abrupt change is then in `c0`'s categories. With `--config`: the model's
        /// `categorical_features` (the last of its `feature_names`).
        #[arg(long)]
        categorical: Option<usize>,
    },
    /// Stream a synthetic drifting workload into the outcomes table (the demo's model service).
    DemoFeed(DemoFeedArgs),
    /// Print a shell completion script (e.g. `driftd completions bash > /etc/bash_completion.d/driftd`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Args, Debug)]
pub struct RetrainArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[arg(long)]
    pub model: String,
    /// Default: the model's `triggers.manual_strategy`.
    #[arg(long, value_enum)]
    pub strategy: Option<StrategyArg>,
    /// Wait for the run to finish; the exit code says how it ended (0 promoted, 3 kept,
    /// 4 failed or cancelled, 5 timed out).
    #[arg(long)]
    pub wait: bool,
    /// How long `--wait` waits (`90s`, `15m`, `2h`).
    #[arg(long, value_parser = duration, default_value = "30m", requires = "wait")]
    pub timeout: Duration,
}

#[derive(Args, Debug)]
pub struct BacktestArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// CSV or Parquet (by content or `.parquet`/`.pq`): the model's feature_names (or every
    /// numeric column but the label and the timestamp), the label and optionally a
    /// timestamp (unix seconds, a date-time column or date-time strings).
    #[arg(long)]
    pub input: PathBuf,
    /// Default: the configuration's only model.
    #[arg(long)]
    pub model: Option<String>,
    /// Write the report (with --compare, the comparison) as JSON.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Write an SVG chart of rolling accuracy, drifts and updates.
    #[arg(long)]
    pub chart: Option<PathBuf>,
    /// Also replay never updating and updating every N rows, and print the table.
    #[arg(long)]
    pub compare: bool,
    /// Exit with code 6 when the (policy's) prequential accuracy is below this (0–1).
    #[arg(long, value_parser = accuracy, value_name = "ACCURACY")]
    pub fail_under: Option<f64>,
    #[arg(long, default_value = "label")]
    pub label_column: String,
    /// Unix seconds or date-times. Default: `ts` if present, else one row a second.
    #[arg(long)]
    pub timestamp_column: Option<String>,
    /// Seconds between rows when there is no timestamp column.
    #[arg(long, default_value_t = 1)]
    pub seconds_per_row: i64,
    /// Labels arrive this many rows after the prediction (without a label time column).
    #[arg(long, default_value_t = 0)]
    pub label_delay_rows: usize,
    /// Each row's label time (unix seconds or date-times): the replay then sees labels when
    /// they arrived. Default: `labeled_at` if present.
    #[arg(long)]
    pub label_time_column: Option<String>,
    /// Rows per point of the report's `estimation` (estimated against realized accuracy).
    #[arg(long, default_value_t = 1_000)]
    pub estimate_window: usize,
    /// Rows the first model is fit on. Default: the model's triggers.bootstrap_min_rows.
    #[arg(long)]
    pub bootstrap_rows: Option<usize>,
    /// Only the first N rows of the input.
    #[arg(long)]
    pub max_rows: Option<usize>,
    /// The periodic baseline's period (--compare). Default: as many updates as the policy.
    #[arg(long)]
    pub every_rows: Option<u64>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Args, Debug)]
pub struct DemoFeedArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[arg(long, default_value = "demo")]
    pub model: String,
    #[arg(long, default_value_t = 20_000)]
    pub rows: usize,
    #[arg(long, default_value_t = 300)]
    pub rows_per_sec: u32,
    #[arg(long, default_value_t = 1_000)]
    pub label_delay_ms: u64,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

#[derive(Subcommand, Debug)]
pub enum ModelsAction {
    /// Every version of every (or one) model.
    List {
        #[arg(long)]
        model: Option<String>,
        #[arg(long, short, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// A model's champion, versions and recent training runs.
    Show {
        #[arg(long)]
        model: String,
        #[arg(long, short, value_enum, default_value_t)]
        output: OutputFormat,
    },
    /// Make a version the champion.
    Promote {
        #[arg(long)]
        model: String,
        #[arg(long)]
        version: i64,
    },
    /// Step back to the previous champion (v3 → v2 → v1), or to `--to N`.
    Rollback {
        #[arg(long)]
        model: String,
        /// The version to go back to (default: the newest earlier champion).
        #[arg(long)]
        to: Option<i64>,
    },
    /// Register a model trained elsewhere: driftd's export format, or a PyTorch state_dict
    /// with scaler.json (see `driftd::serve::import`).
    Import {
        #[arg(long)]
        model: String,
        #[arg(long = "from")]
        from: PathBuf,
        /// Make it the champion at once.
        #[arg(long)]
        promote: bool,
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

impl ModelsAction {
    /// The model the action names, if it names one.
    pub fn model(&self) -> Option<&str> {
        match self {
            ModelsAction::List { model, .. } => model.as_deref(),
            ModelsAction::Show { model, .. }
            | ModelsAction::Promote { model, .. }
            | ModelsAction::Rollback { model, .. }
            | ModelsAction::Import { model, .. }
            | ModelsAction::Export { model, .. } => Some(model),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategy_values_are_the_configs_names() {
        for s in STRATEGIES {
            let name = s.to_possible_value().unwrap().get_name().to_string();
            assert_eq!(crate::registry::parse_strategy(&name), Some(s.0));
            assert_eq!(StrategyArg::from_str(&name, false), Ok(s));
        }
        assert!(StrategyArg::from_str("finetune", false).is_err());
    }

    #[test]
    fn fail_under_and_timeout_are_checked() {
        assert_eq!(accuracy("0.8"), Ok(0.8));
        assert!(accuracy("1.5").is_err() && accuracy("x").is_err());
        assert_eq!(duration("90s"), Ok(Duration::from_secs(90)));
        assert!(duration("90").is_err());
    }
}
