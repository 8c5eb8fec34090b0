//! `driftd backtest`: replays a labelled history through the same monitor, policy and
//! training code the daemon runs, prequentially, on a simulated clock, so a configuration
//! can be judged before it is deployed.
//!
//! The replay ([`run_history`]):
//! - The first `bootstrap_rows` rows fit the first model (`train::run_update` with no
//!   champion, as the daemon's bootstrap does: `refit_combined` on the newest
//!   `max_training_rows` of them).
//! - Every later row is predicted by the champion of the moment *before* its label is used
//!   for anything; its label arrives `label_delay_rows` rows later (0: at once), or, when the
//!   history has a label time column (`labeled_at`), when that column says: the replay then
//!   sees predictions at the timestamp (`created_at`) and labels at their own time, in
//!   (label time, row) order, as the daemon's poll does. Rows are
//!   taken in steps of `batch_rows`: the batch's rows are predicted, the labels that arrived
//!   during it become [`Outcome`](crate::outcomes::Outcome)s folded into the model's
//!   [`MonitorState`](crate::monitor::MonitorState), and then the policy sees the batch,
//!   exactly as the daemon's loop does after each poll.
//! - The clock is the newest row's timestamp (a `ts` column, unix seconds or date-times), or
//!   row index × `seconds_per_row`; time windows, cooldowns, hold times, cron schedules and
//!   feature-drift check intervals run on it.
//! - What to train, when and on what rows is decided by the daemon's own decision core
//!   ([`crate::control::Controller`]): the old/new split at the champion's cut-off or at the
//!   drift, each bounded to the newest `max_training_rows`. A promoted model serves from the
//!   next row on and moves the cut-off; a kept one leaves both alone. Training is
//!   instantaneous on the simulated clock (no rows are predicted by the old model while it
//!   runs); a second request in the same batch is coalesced, as in the daemon, and becomes
//!   one follow-up update once the first is done (on the same rows, here).
//! - Every predicted row is also estimated before its label is in ([`crate::estimate`]): the
//!   report's `estimation` compares the estimated and the realized accuracy per
//!   `estimate_window` rows.
//! - Deterministic for a seed: training seeds are `seed + run number` (the bootstrap is run
//!   0), as the daemon's are from its start.
//!
//! [`compare`] replays one history three ways (never update, update every N rows, the
//! configured policy); [`write_svg`] draws a report.

mod chart;
mod history;
mod metrics;
mod simulate;
#[cfg(test)]
mod tests;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{Config, ModelConfig};
use crate::control::RowRanges;
use crate::generate::StreamSpec;
use crate::train::{Strategy, TrainError};

pub use chart::{render_svg, write_comparison_svg, write_svg};
pub use history::{
    generate_csv, generate_file, generate_file_named, generate_parquet, history_from_frame,
    parse_timestamp, read_history, History, InputFormat, GENERATE_START_TS,
};
pub use metrics::{class_reports, stream_metrics, ClassReport, StreamMetrics, UpdateCost};
pub use simulate::run_history;

#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    /// The configuration does not fit the backtest (unknown model, bad options).
    #[error("{0}")]
    Config(String),
    /// The input cannot be used (unreadable, wrong columns, no rows).
    #[error("input: {0}")]
    Input(String),
    #[error("{0}")]
    Io(String),
    #[error("training: {0}")]
    Train(#[from] TrainError),
}

/// When the replay updates the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum PolicyMode {
    /// The model's `[models.triggers]` (drift, threshold, schedules) and `feature_drift`.
    #[default]
    Configured,
    /// Only the bootstrap fit.
    Never,
    /// Every `every_rows` labelled rows, with the drift trigger's strategy.
    Periodic { every_rows: u64 },
}

impl PolicyMode {
    pub fn describe(&self) -> String {
        match self {
            PolicyMode::Configured => "policy".into(),
            PolicyMode::Never => "never".into(),
            PolicyMode::Periodic { every_rows } => format!("every {every_rows} rows"),
        }
    }
}

/// How to read and replay the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BacktestOptions {
    /// The label column (0/1, or the class index). Default `label`.
    pub label_column: String,
    /// The timestamp column (unix seconds, or date-times). Default: `ts` if there is one, else
    /// none, and row `i` is at `i × seconds_per_row`.
    pub timestamp_column: Option<String>,
    /// Seconds between rows when there is no timestamp column. Default 1.
    pub seconds_per_row: i64,
    /// Only the first rows of the input. Default: all.
    pub max_rows: Option<usize>,
    /// Rows the first model is fit on. Default: the model's `triggers.bootstrap_min_rows`.
    pub bootstrap_rows: Option<usize>,
    /// Rows per simulated poll (the policy sees each batch). Default 100.
    pub batch_rows: usize,
    /// A row's label arrives this many rows after its prediction. Default 0. Not used when
    /// the history has a label time column.
    pub label_delay_rows: usize,
    /// The column of each row's label time (unix seconds, or date-times). Default:
    /// `labeled_at` if there is one, else none.
    pub label_time_column: Option<String>,
    /// Rows per point of `estimation`. Default 1 000.
    pub estimate_window: usize,
    /// Rows per point of `accuracy_series` (accuracy of the rows since the previous point).
    /// Default 500.
    pub series_every: usize,
    pub seed: u64,
    pub policy: PolicyMode,
    /// The period of [`compare`]'s periodic baseline. Default: the period giving as many
    /// updates as the configured policy made (at least one).
    pub periodic_every_rows: Option<u64>,
}

impl Default for BacktestOptions {
    fn default() -> Self {
        BacktestOptions {
            label_column: "label".into(),
            timestamp_column: None,
            seconds_per_row: 1,
            max_rows: None,
            bootstrap_rows: None,
            batch_rows: 100,
            label_delay_rows: 0,
            label_time_column: None,
            estimate_window: 1_000,
            series_every: 500,
            seed: 0,
            policy: PolicyMode::Configured,
            periodic_every_rows: None,
        }
    }
}

impl BacktestOptions {
    fn validate(&self) -> Result<(), BacktestError> {
        let bad = |m: &str| Err(BacktestError::Config(m.into()));
        if self.batch_rows == 0 {
            return bad("batch_rows must be at least 1");
        }
        if self.series_every == 0 {
            return bad("series_every must be at least 1");
        }
        if self.estimate_window == 0 {
            return bad("estimate_window must be at least 1");
        }
        if self.seconds_per_row <= 0 {
            return bad("seconds_per_row must be positive");
        }
        if self.max_rows == Some(0) {
            return bad("max_rows must be at least 1");
        }
        if matches!(self.policy, PolicyMode::Periodic { every_rows: 0 })
            || self.periodic_every_rows == Some(0)
        {
            return bad("the periodic baseline's period must be at least 1 row");
        }
        Ok(())
    }
}

/// One update of the replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retrain {
    /// The newest row predicted by the old champion: a promoted model predicts from
    /// `index + 1`.
    pub index: usize,
    /// The newest row trained on (rows with labels by then).
    pub trained_upto: usize,
    /// `bootstrap`, `drift`, `threshold`, `schedule`, `feature_drift`, `periodic`.
    pub trigger: String,
    pub reason: String,
    /// The strategy asked for (`auto` runs the tournament).
    pub requested_strategy: Strategy,
    /// The strategy of the model it produced (the requested one when nothing trained).
    pub strategy: Strategy,
    pub promoted: bool,
    /// The produced model's accuracy on the update's holdout (the newest new rows).
    pub holdout_accuracy: Option<f64>,
    /// The champion's accuracy on the same holdout.
    pub champion_holdout_accuracy: Option<f64>,
    pub n_old_rows: usize,
    pub n_new_rows: usize,
    /// The rows it read (row = index in the history) and its holdout, as the daemon records
    /// them in `driftd.training_runs`.
    #[serde(default)]
    pub rows: RowRanges,
    pub train_seconds: f64,
    /// Optimiser steps of all its training jobs (the update's cost in work).
    pub steps: usize,
    /// The produced model learnt from only the newest this many rows (a window or the
    /// incremental candidate).
    pub recent_rows: Option<usize>,
    /// Why it produced nothing (training failed); the champion was kept.
    pub error: Option<String>,
    /// It learnt classes the champion could not output (`classes = "grow"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grew_classes: Option<crate::train::ClassGrowth>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftPoint {
    /// The row whose label showed the drift.
    pub index: usize,
    pub detector: String,
}

/// A shadow challenger promoted after the row at `index`: the version it became, and how it
/// and the champion did on the same rows before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowPoint {
    pub index: usize,
    pub version: i64,
    pub challenger: String,
    /// The newest row it learnt from.
    pub trained_upto: usize,
    pub rows: usize,
    pub challenger_accuracy: f64,
    pub champion_accuracy: f64,
    pub p_value: f64,
}

/// Estimated against realized accuracy over one window of predicted rows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EstimationPoint {
    /// The last row of the window.
    pub end_row: usize,
    /// The mean expected correctness of the window's estimated rows.
    pub estimated_accuracy: f64,
    /// The accuracy of the same rows, once their labels were in.
    pub realized_accuracy: f64,
    /// Rows estimated (a version's first rows are not, until it is calibrated).
    pub rows: usize,
}

/// How the online challenger and the champion stood after a batch: their accuracy on the
/// same newest rows of the duel (`[models.shadow] window_rows`), each row predicted by the
/// challenger before it learnt from it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ShadowSeriesPoint {
    /// The newest row predicted when it was read.
    pub index: usize,
    pub rows: usize,
    pub challenger_accuracy: f64,
    pub champion_accuracy: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    /// The last row of the span.
    pub index: usize,
    /// Accuracy over the span's rows.
    pub accuracy: f64,
}

/// What a replay found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub model: String,
    /// `policy`, `never`, or `every N rows`.
    pub policy: String,
    pub n_features: usize,
    pub feature_names: Vec<String>,
    /// Rows replayed (bootstrap included) and rows left out of the input.
    pub input_rows: usize,
    pub skipped_rows: usize,
    /// The skipped rows by reason (see [`History::skipped_by_reason`]).
    #[serde(default)]
    pub skipped_by_reason: std::collections::BTreeMap<String, usize>,
    pub bootstrap_rows: usize,
    pub label_delay_rows: usize,
    /// `rows` (`label_delay_rows` later) or `timestamps` (the history's label time column).
    #[serde(default)]
    pub label_delay: String,
    pub seed: u64,
    /// Rows evaluated (predicted before their label was learnt from).
    pub rows: usize,
    pub prequential_accuracy: f64,
    /// Accuracy, κ, κ-temporal and the no-change and majority baselines on the same rows.
    pub metrics: StreamMetrics,
    /// Time and steps per update after the bootstrap.
    pub update_cost: UpdateCost,
    /// Rows where some detector reported drift, ascending and distinct.
    pub drifts: Vec<usize>,
    pub drift_events: Vec<DriftPoint>,
    /// The bootstrap fit.
    pub bootstrap: Retrain,
    /// Every later update, in order.
    pub retrains: Vec<Retrain>,
    /// Updates that produced a new champion (the shadow promotions included).
    pub promotions: usize,
    /// Each shadow challenger that replaced the champion, in order (`[models.shadow]`).
    #[serde(default)]
    pub shadow_promotions: Vec<ShadowPoint>,
    /// The online challenger against the champion after each batch (empty when shadow is
    /// off).
    #[serde(default)]
    pub shadow_series: Vec<ShadowSeriesPoint>,
    /// Requests that arrived while an update was decided on: each became (part of) a
    /// follow-up update.
    pub coalesced: usize,
    /// Requests with nothing to learn from (every row already the champion's): dropped,
    /// as the daemon records them `skipped`.
    #[serde(default)]
    pub skipped: usize,
    /// Accuracy every `series_every` rows from the first evaluated row.
    pub accuracy_series: Vec<SeriesPoint>,
    /// Each class's accuracy, overall and per 1 000 rows from its first label.
    #[serde(default)]
    pub classes: Vec<ClassReport>,
    /// Estimated against realized accuracy every `estimate_window` rows.
    #[serde(default)]
    pub estimation: Vec<EstimationPoint>,
    /// Mean |estimated − realized| over `estimation`'s windows (`None`: nothing estimated).
    #[serde(default)]
    pub estimated_accuracy_mae: Option<f64>,
    /// All training, bootstrap included.
    pub training_seconds: f64,
    /// Champion predictions of every evaluated row.
    pub predict_seconds: f64,
    /// Monitor, detectors, policy and feature-drift checks.
    pub monitor_seconds: f64,
    /// The whole replay (reading the input not included).
    pub wall_seconds: f64,
}

/// The model `name` of `cfg`, or the only model when `name` is `None`.
pub fn resolve_model<'a>(
    cfg: &'a Config,
    name: Option<&str>,
) -> Result<&'a ModelConfig, BacktestError> {
    match name {
        Some(n) => cfg.model(n).ok_or_else(|| {
            let names: Vec<&str> = cfg.models.iter().map(|m| m.name.as_str()).collect();
            BacktestError::Config(format!(
                "no model named `{n}` in the configuration (models: {})",
                names.join(", ")
            ))
        }),
        None => match cfg.models.as_slice() {
            [only] => Ok(only),
            [] => Err(BacktestError::Config(
                "the configuration has no [[models]]".into(),
            )),
            _ => Err(BacktestError::Config(
                "the configuration has several models: name one with --model".into(),
            )),
        },
    }
}

/// Replays the history in `input` (CSV or Parquet, see [`InputFormat::detect`]) through model `model`'s monitor, policy and training.
///
/// Columns: the model's `feature_names`, or else every numeric column but the label and the
/// timestamp (there must be `n_features` of them); the label (`opts.label_column`); the
/// optional timestamp (`opts.timestamp_column`, default `ts` when present). Rows with a null
/// or non-finite feature or an invalid label are skipped and counted; rows are replayed in
/// timestamp order (stable).
pub fn run(
    cfg: &Config,
    model: &str,
    input: &Path,
    opts: &BacktestOptions,
) -> Result<Report, BacktestError> {
    opts.validate()?;
    let m = resolve_model(cfg, Some(model))?;
    let h = read_history(m, input, opts)?;
    run_history(m, &h, opts)
}

/// One line of the comparison table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparisonRow {
    pub name: String,
    pub prequential_accuracy: f64,
    pub kappa: f64,
    pub kappa_temporal: f64,
    /// Updates after the bootstrap, and how many were promoted.
    pub updates: usize,
    pub promotions: usize,
    pub training_seconds: f64,
    /// Mean wall seconds of one update after the bootstrap.
    pub seconds_per_update: f64,
}

/// The same history replayed three ways.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub table: Vec<ComparisonRow>,
    pub never: Report,
    pub periodic: Report,
    pub policy: Report,
}

impl Comparison {
    /// The table as Markdown, with the no-change and majority baselines (the same for every
    /// run: they depend on the labels only) as the last two lines.
    pub fn to_markdown(&self) -> String {
        let mut s = String::from(
            "| run | prequential accuracy | κ | κ-temporal | updates | promoted | s/update | training s |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for r in &self.table {
            s.push_str(&format!(
                "| {} | {:.4} | {:.3} | {:.3} | {} | {} | {:.3} | {:.2} |\n",
                r.name,
                r.prequential_accuracy,
                r.kappa,
                r.kappa_temporal,
                r.updates,
                r.promotions,
                r.seconds_per_update,
                r.training_seconds
            ));
        }
        let m = &self.policy.metrics;
        s.push_str(&format!(
            "| no-change baseline | {:.4} | | 0 | | | | |\n| majority baseline | {:.4} | | | | | | |\n",
            m.no_change_accuracy, m.majority_accuracy
        ));
        s
    }
}

fn row_of(r: &Report) -> ComparisonRow {
    ComparisonRow {
        name: r.policy.clone(),
        prequential_accuracy: r.prequential_accuracy,
        kappa: r.metrics.kappa,
        kappa_temporal: r.metrics.kappa_temporal,
        updates: r.retrains.len(),
        promotions: r.promotions,
        training_seconds: r.training_seconds,
        seconds_per_update: r.update_cost.mean_seconds,
    }
}

/// Replays `h` with the configured policy, never updating, and updating every
/// `opts.periodic_every_rows` rows (default: as many updates as the policy made).
pub fn compare_history(
    model: &ModelConfig,
    h: &History,
    opts: &BacktestOptions,
) -> Result<Comparison, BacktestError> {
    let with = |policy| BacktestOptions {
        policy,
        ..opts.clone()
    };
    let policy = run_history(model, h, &with(PolicyMode::Configured))?;
    let never = run_history(model, h, &with(PolicyMode::Never))?;
    let every_rows = opts.periodic_every_rows.unwrap_or_else(|| {
        let updates = policy.retrains.len().max(1);
        (policy.rows / (updates + 1)).max(1) as u64
    });
    let periodic = run_history(model, h, &with(PolicyMode::Periodic { every_rows }))?;
    Ok(Comparison {
        table: vec![row_of(&never), row_of(&periodic), row_of(&policy)],
        never,
        periodic,
        policy,
    })
}

/// [`compare_history`] on the CSV or Parquet history in `input`.
pub fn compare(
    cfg: &Config,
    model: &str,
    input: &Path,
    opts: &BacktestOptions,
) -> Result<Comparison, BacktestError> {
    opts.validate()?;
    let m = resolve_model(cfg, Some(model))?;
    let h = read_history(m, input, opts)?;
    compare_history(m, &h, opts)
}

/// What `driftd backtest` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct BacktestCommand {
    /// Default: the configuration's only model.
    pub model: Option<String>,
    pub input: PathBuf,
    /// Where to write the report (with `compare`: the comparison) as JSON.
    pub report: Option<PathBuf>,
    /// Where to write the SVG chart (with `compare`: the baselines' lines too).
    pub chart: Option<PathBuf>,
    /// Also replay never-updating and periodic baselines.
    pub compare: bool,
    pub options: BacktestOptions,
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), BacktestError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| BacktestError::Io(format!("{}: {e}", path.display())))?;
    std::fs::write(path, text + "\n")
        .map_err(|e| BacktestError::Io(format!("{}: {e}", path.display())))
}

fn summary(r: &Report) -> String {
    let estimate = match r.estimated_accuracy_mae {
        Some(mae) => format!(
            "; estimated accuracy before the labels: mean absolute error {mae:.4} over {} \
             window(s)",
            r.estimation.len()
        ),
        None => String::new(),
    };
    let delay = if r.label_delay == "timestamps" {
        "; labels at their own label times".to_string()
    } else {
        String::new()
    };
    let skipped = if r.skipped_rows > 0 {
        let reasons: Vec<String> = r
            .skipped_by_reason
            .iter()
            .map(|(reason, n)| format!("{reason} {n}"))
            .collect();
        format!(
            "; {} input row(s) skipped ({})",
            r.skipped_rows,
            reasons.join(", ")
        )
    } else {
        String::new()
    };
    summary_line(r) + &skipped + &delay + &estimate + &shadow_summary(r) + &grown_classes(r)
}

/// The challengers' part of the summary: their promotions and where they stood last.
fn shadow_summary(r: &Report) -> String {
    let Some(last) = r.shadow_series.last() else {
        return String::new();
    };
    let promotions: Vec<String> = r
        .shadow_promotions
        .iter()
        .map(|p| {
            format!(
                "row {} ({:.3} vs {:.3}, p {:.2e})",
                p.index + 1,
                p.challenger_accuracy,
                p.champion_accuracy,
                p.p_value
            )
        })
        .collect();
    let listed = if promotions.is_empty() {
        String::new()
    } else {
        format!(": {}", promotions.join(", "))
    };
    format!(
        "; shadow: {} promotion(s){listed}; at the end the challenger {:.3} vs the champion \
         {:.3} on the newest {} rows",
        r.shadow_promotions.len(),
        last.challenger_accuracy,
        last.champion_accuracy,
        last.rows
    )
}

/// The classes the updates learnt that the bootstrap model did not have, with how soon.
fn grown_classes(r: &Report) -> String {
    let Some(first) = r.retrains.iter().find_map(|u| u.grew_classes) else {
        return String::new();
    };
    let to = r
        .retrains
        .iter()
        .filter_map(|u| u.grew_classes)
        .map(|g| g.to)
        .max();
    let mut s = format!(
        "; classes grew from {} to {}",
        first.from,
        to.unwrap_or(first.to)
    );
    if first.from <= 2 {
        s.push_str(" (binary became multiclass)");
    }
    for c in r.classes.iter().filter(|c| c.class as usize >= first.from) {
        let blocks: Vec<String> = c
            .accuracy_by_block
            .iter()
            .map(|a| a.map_or("–".into(), |a| format!("{a:.2}")))
            .collect();
        s.push_str(&format!(
            "; class {} from row {}: accuracy {:.3}, per 1000 rows {}",
            c.class,
            c.first_row,
            c.accuracy,
            blocks.join(" ")
        ));
    }
    s
}

fn summary_line(r: &Report) -> String {
    let m = &r.metrics;
    let c = &r.update_cost;
    format!(
        "{} ({}): {} rows evaluated after a {}-row bootstrap, prequential accuracy {:.4}, \
         κ {:.3}, κ-temporal {:.3} (no-change baseline {:.4}, majority {:.4}); \
         {} drift(s), {} update(s), {} promoted, {:.3} s per update (max {:.3} s, {:.0} steps); \
         training {:.2} s of {:.2} s",
        r.model,
        r.policy,
        r.rows,
        r.bootstrap_rows,
        r.prequential_accuracy,
        m.kappa,
        m.kappa_temporal,
        m.no_change_accuracy,
        m.majority_accuracy,
        r.drifts.len(),
        r.retrains.len(),
        r.promotions,
        c.mean_seconds,
        c.max_seconds,
        c.mean_steps,
        r.training_seconds,
        r.wall_seconds
    )
}

/// What `driftd backtest` found: the text to print and the accuracy `--fail-under` gates on.
#[derive(Debug, Clone, PartialEq)]
pub struct Executed {
    pub text: String,
    /// The configured policy's prequential accuracy (with `compare`, too).
    pub prequential_accuracy: f64,
}

/// Runs `driftd backtest`: replays, writes the report and chart asked for, and returns what
/// to print. [`BacktestError::Config`] is a usage error (exit code 2), the rest failures.
pub fn execute(cfg: &Config, cmd: &BacktestCommand) -> Result<Executed, BacktestError> {
    let model = resolve_model(cfg, cmd.model.as_deref())?;
    let mut out = String::new();
    let accuracy;
    if cmd.compare {
        let c = compare(cfg, &model.name, &cmd.input, &cmd.options)?;
        accuracy = c.policy.prequential_accuracy;
        let _ = writeln!(out, "{}\n", summary(&c.policy));
        out.push_str(&c.to_markdown());
        if let Some(p) = &cmd.report {
            write_json(p, &c)?;
            let _ = writeln!(out, "comparison written to {}", p.display());
        }
        if let Some(p) = &cmd.chart {
            write_comparison_svg(&c, p)?;
            let _ = writeln!(out, "chart written to {}", p.display());
        }
    } else {
        let r = run(cfg, &model.name, &cmd.input, &cmd.options)?;
        accuracy = r.prequential_accuracy;
        let _ = writeln!(out, "{}", summary(&r));
        if let Some(p) = &cmd.report {
            write_json(p, &r)?;
            let _ = writeln!(out, "report written to {}", p.display());
        }
        if let Some(p) = &cmd.chart {
            write_svg(&r, p)?;
            let _ = writeln!(out, "chart written to {}", p.display());
        }
    }
    Ok(Executed {
        text: out,
        prequential_accuracy: accuracy,
    })
}

/// The stream `driftd generate` writes: [`StreamSpec::default`]'s shape (an abrupt change at
/// 40% of the rows, a gradual one over 70–85%) scaled to `rows`.
pub fn generate_spec(rows: usize, n_features: usize, seed: u64) -> StreamSpec {
    StreamSpec {
        n_features,
        rows,
        abrupt_at: Some(rows * 2 / 5),
        gradual: Some((rows * 7 / 10, rows * 17 / 20)),
        seed,
        ..StreamSpec::default()
    }
}
