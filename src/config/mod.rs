//! Typed settings: a TOML file plus `DRIFTD_<SECTION>__<KEY>` environment overrides.
//!
//! Every error names the offending key. Secrets are wrapped in [`Secret`] so that they
//! never reach a log line or an error message.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub mod cron;
mod load;
pub mod serve;
pub mod templates;
pub mod train;
pub mod triggers;

use crate::detect::DetectorConfig;
use crate::span::Span;
use templates::ModelTemplate;
use train::TrainConfig;
use triggers::TriggerConfig;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config is not valid TOML: {0}")]
    Syntax(String),
    #[error("config key `{key}`: {reason}")]
    Key { key: String, reason: String },
}

impl ConfigError {
    fn key(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Key {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// A string that prints as `***`.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Needed by the commands that use the database (`run`, `migrate`, `models`, `retrain`);
    /// `backtest`, `generate` and `check-config` work without it.
    #[serde(default)]
    pub database: Option<DatabaseConfig>,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub poll: PollConfig,
    #[serde(default)]
    pub source: SourceConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub training: TrainingRuntimeConfig,
    /// Online predictions and champion downloads.
    #[serde(default)]
    pub serve: serve::ServeConfig,
    #[serde(default)]
    pub models: Vec<ModelConfig>,
    /// `[[model_templates]]` as written; read into [`Config::model_templates`] at load.
    #[serde(default, rename = "model_templates")]
    template_tables: Vec<toml::Table>,
    /// Settings for models not listed in `models`, by a pattern on their name (see
    /// [`templates`]). An explicit `[[models]]` block wins; the first matching template next.
    #[serde(skip)]
    pub model_templates: Vec<ModelTemplate>,
}

/// How the daemon runs training and scoring (the per-model `train` table says what to train).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingRuntimeConfig {
    /// On SIGTERM, a running training gets this long to stop before the daemon exits anyway.
    pub grace_ms: u64,
    /// Rows without a prediction scored per round by the champion.
    pub score_batch: u32,
    /// Whether driftd writes predictions for rows that have none.
    pub score_unscored: bool,
    /// Trainings that run at once on this replica; more wait (oldest request first) while
    /// their models keep being monitored. Training is CPU-bound: more than the cores helps
    /// nothing.
    pub max_concurrent: usize,
    /// The OS priority (nice, 0..=19) of the threads that train (libtorch's workers included).
    /// Training is CPU-bound and long; predictions are short and on the async runtime's
    /// threads, which keep nice 0. Default 10 (see README, "Updating the model").
    pub nice: i32,
}

impl Default for TrainingRuntimeConfig {
    fn default() -> Self {
        TrainingRuntimeConfig {
            grace_ms: 30_000,
            score_batch: 1_000,
            score_unscored: true,
            max_concurrent: 1,
            nice: 10,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://user@host:port/db?sslmode=verify-full`; the password is better kept out of it.
    pub url: Secret,
    /// Overrides any password in the URL.
    #[serde(default)]
    pub password: Option<Secret>,
    /// A file holding the password (for systemd `LoadCredential=` or a Kubernetes secret).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
}

fn default_max_connections() -> u32 {
    8
}
fn default_connect_timeout_ms() -> u64 {
    5_000
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: String,
    /// Bearer token for the admin endpoints; none configured means they are off.
    pub admin_token: Option<Secret>,
    pub admin_token_file: Option<PathBuf>,
    /// Bearer token for reading models and predicting (the admin token works too).
    pub read_token: Option<Secret>,
    pub read_token_file: Option<PathBuf>,
    /// A request not answered within this gets a 503. Default 30 s.
    pub request_timeout_ms: u64,
    /// Requests handled at once; one more is answered 503 at once (health checks and
    /// `/metrics` do not count). Default 1 024.
    pub max_concurrent_requests: usize,
    /// `/healthz` fails when a model loop or the ownership round has not gone round for this
    /// long. Must exceed `poll.ownership_check_ms`. Default 120 s.
    pub liveness_timeout_ms: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:9187".into(),
            admin_token: None,
            admin_token_file: None,
            read_token: None,
            read_token_file: None,
            request_timeout_ms: 30_000,
            max_concurrent_requests: 1_024,
            liveness_timeout_ms: 120_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PollConfig {
    /// Fallback poll period; `LISTEN` wakes the poller earlier.
    pub interval_ms: u64,
    /// Rows are read only once their label is older than this. It must exceed the longest
    /// transaction that writes labels, or a late-committing row could fall behind the watermark.
    pub settle_ms: u64,
    /// Rows read and committed per transaction.
    pub batch_size: u32,
    /// Ceiling of the exponential reconnect backoff.
    pub max_backoff_ms: u64,
    /// How often a replica checks its ownership connection and tries to take over models
    /// whose owner died: the takeover time is about this plus loading the state.
    pub ownership_check_ms: u64,
    /// A replica whose heartbeat is older than this no longer counts when the models are
    /// shared out; its models go to the others (once its locks are released).
    pub replica_ttl_ms: u64,
    /// A model with nothing new is not polled on its own more often than this: every
    /// `interval_ms` one query for all the models a replica owns finds those with new
    /// settled rows (or rows to score, a requested run, a new champion) and wakes them, so
    /// an idle replica costs a few queries per interval whatever the number of models.
    pub idle_poll_ms: u64,
    /// How often one query for all of a replica's models looks for work that no `NOTIFY`
    /// announced: rows in a table without the notify trigger, lost notifications. Its cost
    /// grows with the number of models, so it runs less often than `interval_ms`.
    pub sweep_interval_ms: u64,
    /// With `[[model_templates]]`: how often the outcomes table's model names are read to
    /// find new models (a `NOTIFY` naming an unknown model starts a round at once).
    pub discover_interval_ms: u64,
    /// A model whose polls have failed for longer than this makes `/readyz` answer not
    /// ready, naming the model and the reason.
    pub not_ready_after_ms: u64,
}

impl Default for PollConfig {
    fn default() -> Self {
        PollConfig {
            interval_ms: 1_000,
            settle_ms: 5_000,
            batch_size: 5_000,
            max_backoff_ms: 30_000,
            ownership_check_ms: 2_000,
            replica_ttl_ms: 10_000,
            idle_poll_ms: 30_000,
            sweep_interval_ms: 10_000,
            discover_interval_ms: 60_000,
            not_ready_after_ms: 60_000,
        }
    }
}

/// How the user's outcomes table is laid out. Every name is validated and quoted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceConfig {
    /// `table` or `schema.table`.
    pub table: String,
    pub id_column: String,
    pub model_column: String,
    /// One `real[]`/`float8[]` column holding all features …
    pub features_column: Option<String>,
    /// … or a list of numeric columns.
    pub feature_columns: Vec<String>,
    pub prediction_column: String,
    pub label_column: String,
    pub labeled_at_column: String,
    /// When the prediction was made; used for the label-delay histogram.
    pub created_at_column: Option<String>,
    pub model_version_column: Option<String>,
    /// Channel the outcomes trigger notifies on.
    pub notify_channel: String,
    /// With categorical features in the array layout: the `text[]` column holding them
    /// (they follow the numbers of `features_column`, in order). Default `categories`.
    pub categories_column: Option<String>,
    /// The feature positions read as category codes (from the models'
    /// `categorical_features`, set at load; not a key).
    #[serde(skip)]
    pub categorical: Vec<usize>,
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig {
            table: "public.outcomes".into(),
            id_column: "id".into(),
            model_column: "model".into(),
            features_column: None,
            feature_columns: Vec::new(),
            prediction_column: "prediction".into(),
            label_column: "label".into(),
            labeled_at_column: "labeled_at".into(),
            created_at_column: Some("created_at".into()),
            model_version_column: Some("model_version".into()),
            categories_column: None,
            categorical: Vec::new(),
            notify_channel: "driftd_outcomes".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: LogLevel,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Human,
            level: LogLevel("info".into()),
        }
    }
}

/// A `tracing` filter such as `info` or `driftd=debug,sqlx=warn`, checked when the
/// configuration loads (an invalid one is an error naming `log.level`), so that what uses it
/// later (start-up, SIGHUP) gets a filter that parses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct LogLevel(String);

impl LogLevel {
    pub fn parse(text: &str) -> Result<Self, String> {
        tracing_subscriber::EnvFilter::try_new(text)
            .map_err(|e| format!("invalid log filter `{text}`: {e}"))?;
        Ok(LogLevel(text.to_string()))
    }

    /// The filter's text, as configured.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for LogLevel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        LogLevel::parse(&text).map_err(serde::de::Error::custom)
    }
}

pub use crate::domain::Task;

/// Which per-row signal a detector consumes.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// 1 when the prediction was wrong, else 0.
    #[default]
    Error,
    /// Per-row log-loss (binary probabilistic predictions only).
    LogLoss,
}

// No `deny_unknown_fields` here: serde does not support it with `flatten`; the detector's own
// parameters still reject unknown keys.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct DetectorSlotConfig {
    #[serde(default)]
    pub signal: Signal,
    #[serde(flatten)]
    pub detector: DetectorConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub name: String,
    #[serde(default)]
    pub task: Task,
    /// Number of classes for `multiclass`.
    #[serde(default = "default_n_classes")]
    pub n_classes: u32,
    /// `grow` (default): a label beyond the classes is a new class the next update learns;
    /// `fixed`: such a row is set aside as `unknown_label`.
    #[serde(default)]
    pub classes: crate::domain::Classes,
    pub n_features: usize,
    /// Optional feature names, for metrics and exports.
    #[serde(default)]
    pub feature_names: Vec<String>,
    /// Features (named in `feature_names`) whose values are categories, not numbers: read as
    /// text and coded (see `domain::category`), one-hot encoded for the MLP with a
    /// vocabulary per version, and compared by category frequencies for feature drift.
    #[serde(default)]
    pub categorical_features: Vec<String>,
    /// The most categories a categorical feature's vocabulary keeps (its most frequent in the
    /// training rows); the rest, and anything unseen, share one "other" input.
    #[serde(default = "default_max_categories")]
    pub max_categories: usize,
    #[serde(default = "default_count_windows")]
    pub count_windows: Vec<usize>,
    /// Durations such as `"1h"`, `"24h"`, `"7d"`, measured in label time.
    #[serde(default = "default_time_windows")]
    pub time_windows: Vec<Span>,
    #[serde(default = "default_detectors")]
    pub detectors: Vec<DetectorSlotConfig>,
    /// Start the detectors over when rows begin to name a newer `model_version`, so that an
    /// update's own effect on the error rate is not reported as drift. Default true.
    #[serde(default = "default_true")]
    pub restart_detectors_on_new_version: bool,
    #[serde(default)]
    pub train: TrainConfig,
    #[serde(default)]
    pub triggers: TriggerConfig,
    /// Per-feature data drift against the champion's training rows (off when absent).
    #[serde(default)]
    pub feature_drift: Option<crate::feature_drift::FeatureDriftConfig>,
    /// Most labelled rows read back for each of "old" and "new" data in one update.
    #[serde(default = "default_max_training_rows")]
    pub max_training_rows: usize,
    /// Accuracy before the labels arrive: calibration and the estimate of scored rows.
    #[serde(default)]
    pub estimate: crate::estimate::EstimateConfig,
    /// Challengers in shadow: an online copy of the champion, promoted on evidence.
    #[serde(default)]
    pub shadow: crate::shadow::ShadowConfig,
}

/// A model key's error: the key relative to the model's table, and the reason.
type FieldError = (String, String);

fn field(key: impl Into<String>, reason: impl Into<String>) -> FieldError {
    (key.into(), reason.into())
}

impl ModelConfig {
    /// The positions of `categorical_features` among the features, in feature order.
    pub fn categorical_indices(&self) -> Vec<usize> {
        let mut at: Vec<usize> = self
            .categorical_features
            .iter()
            .filter_map(|c| self.feature_names.iter().position(|n| n == c))
            .collect();
        at.sort_unstable();
        at
    }

    /// Whether feature `i` is categorical.
    pub fn is_categorical(&self, i: usize) -> bool {
        self.feature_names
            .get(i)
            .is_some_and(|n| self.categorical_features.contains(n))
    }

    /// How many classes the model has: 2 for a binary task, `n_classes` for multiclass.
    pub fn class_count(&self) -> usize {
        self.task.classes(self.n_classes)
    }

    /// What the model's rows must be (features, label, prediction).
    pub fn row_rules(&self) -> crate::domain::RowRules {
        crate::domain::RowRules {
            n_features: self.n_features,
            task: self.task,
            n_classes: self.n_classes,
            classes: self.classes,
        }
    }

    /// Checks one model's settings against the source they are read from.
    pub fn validate(&self, source: &SourceConfig) -> Result<(), FieldError> {
        if self.name.is_empty() || self.name.chars().count() > 100 {
            return Err(field("name", "must be 1 to 100 characters"));
        }
        self.validate_shape(source)?;
        self.validate_detectors()?;
        self.validate_triggers()?;
        self.validate_estimate()?;
        if let Some((key, reason)) = self.shadow.invalid() {
            return Err(field(key, reason));
        }
        if let Some(fd) = &self.feature_drift {
            fd.validate()
                .map_err(|(key, reason)| field(format!("feature_drift.{key}"), reason))?;
        }
        // The trainer's messages start with the field name.
        self.train
            .validate()
            .map_err(|e| field("train", e.to_string()))
    }

    /// Features, classes and windows.
    fn validate_shape(&self, source: &SourceConfig) -> Result<(), FieldError> {
        if self.n_features == 0 {
            return Err(field("n_features", "must be at least 1"));
        }
        if !source.feature_columns.is_empty() && source.feature_columns.len() != self.n_features {
            return Err(field(
                "n_features",
                format!(
                    "is {} but source.feature_columns lists {} columns",
                    self.n_features,
                    source.feature_columns.len()
                ),
            ));
        }
        if !self.feature_names.is_empty() && self.feature_names.len() != self.n_features {
            return Err(field("feature_names", "must have n_features entries"));
        }
        self.validate_categorical()?;
        if self.task == Task::Multiclass && self.n_classes < 2 {
            return Err(field("n_classes", "must be at least 2"));
        }
        if self.count_windows.iter().any(|&w| w == 0 || w > 1_000_000) {
            return Err(field(
                "count_windows",
                "each window must be 1 to 1000000 rows",
            ));
        }
        Ok(())
    }

    fn validate_categorical(&self) -> Result<(), FieldError> {
        for (i, c) in self.categorical_features.iter().enumerate() {
            if !self.feature_names.contains(c) {
                return Err(field(
                    format!("categorical_features[{i}]"),
                    format!(
                        "`{c}` is not one of feature_names (categorical features are named there)"
                    ),
                ));
            }
            if self.categorical_features[..i].contains(c) {
                return Err(field(
                    format!("categorical_features[{i}]"),
                    format!("`{c}` is listed twice"),
                ));
            }
        }
        if !(1..=10_000).contains(&self.max_categories) {
            return Err(field("max_categories", "must be 1 to 10000"));
        }
        Ok(())
    }

    fn validate_detectors(&self) -> Result<(), FieldError> {
        for (j, d) in self.detectors.iter().enumerate() {
            d.detector
                .build()
                .map_err(|e| field(format!("detectors[{j}]"), e.to_string()))?;
            if d.signal == Signal::LogLoss && !d.detector.accepts_real_valued() {
                return Err(field(
                    format!("detectors[{j}].signal"),
                    format!(
                        "{} takes a 0/1 stream; use signal = \"error\"",
                        d.detector.name()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn has_window(&self, name: &str) -> bool {
        self.count_windows.iter().any(|w| w.to_string() == name)
            || self.time_windows.iter().any(|w| w.as_str() == name)
    }

    /// The estimate's settings.
    fn validate_estimate(&self) -> Result<(), FieldError> {
        let e = &self.estimate;
        if !(20..=1_000_000).contains(&e.calibration_rows) {
            return Err(field(
                "estimate.calibration_rows",
                "must be 20 to 1000000 rows",
            ));
        }
        if !(1..=1_000_000).contains(&e.gap_rows) {
            return Err(field("estimate.gap_rows", "must be 1 to 1000000 rows"));
        }
        Ok(())
    }

    /// The time windows as (metric label, seconds), as the estimate's windows take them.
    pub fn time_window_spans(&self) -> Vec<(String, i64)> {
        self.time_windows
            .iter()
            .map(|w| (w.as_str().to_string(), w.secs()))
            .collect()
    }

    fn validate_triggers(&self) -> Result<(), FieldError> {
        let window = &self.triggers.threshold.window;
        let known = self.count_windows.iter().any(|w| w.to_string() == *window)
            || self.time_windows.iter().any(|w| w.as_str() == window);
        if self.triggers.threshold.enabled && !known {
            return Err(field(
                "triggers.threshold.window",
                format!("`{window}` is none of the model's count_windows or time_windows"),
            ));
        }
        let window = &self.triggers.estimated.window;
        if self.triggers.estimated.enabled && !self.has_window(window) {
            return Err(field(
                "triggers.estimated.window",
                format!("`{window}` is none of the model's count_windows or time_windows"),
            ));
        }
        if self.triggers.estimated.enabled && !self.estimate.enabled {
            return Err(field(
                "triggers.estimated.enabled",
                "the estimated trigger needs [models.estimate] enabled = true",
            ));
        }
        self.triggers
            .validate()
            .map_err(|(key, reason)| field(format!("triggers.{key}"), reason))
    }
}

fn default_max_training_rows() -> usize {
    100_000
}

fn default_max_categories() -> usize {
    32
}

fn default_n_classes() -> u32 {
    2
}
fn default_count_windows() -> Vec<usize> {
    vec![100, 1_000, 10_000]
}
fn default_time_windows() -> Vec<Span> {
    vec![
        Span::of(3_600, "1h"),
        Span::of(86_400, "24h"),
        Span::of(604_800, "7d"),
    ]
}
fn default_true() -> bool {
    true
}

fn default_detectors() -> Vec<DetectorSlotConfig> {
    vec![DetectorSlotConfig {
        signal: Signal::Error,
        detector: serde_json::from_str(r#"{"kind":"adwin"}"#)
            .expect("ADWIN has defaults for every parameter"),
    }]
}

/// SQL identifiers from the config: plain names only, so quoting is enough to make them inert.
pub fn validate_identifier(key: &str, ident: &str) -> Result<(), ConfigError> {
    let ok = !ident.is_empty()
        && ident.len() <= 63
        && ident
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && ident
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::key(
            key,
            format!("`{ident}` is not a plain SQL identifier (letters, digits, _; at most 63)"),
        ))
    }
}

/// Deserialises the file with the overrides applied. An override of a key the file does not
/// set takes its TOML type from its text; if the key turns out to want a string (a password
/// of digits), it is applied again as a string, so an override always takes its key's type.
fn deserialize_with_overrides(
    file: &toml::Value,
    overrides: &[Override],
) -> Result<Config, ConfigError> {
    let mut as_string = vec![false; overrides.len()];
    loop {
        let mut value = file.clone();
        for (o, s) in overrides.iter().zip(&as_string) {
            apply_override(&mut value, o, *s)?;
        }
        let err = match serde_path_to_error::deserialize::<_, Config>(value) {
            Ok(cfg) => return Ok(cfg),
            Err(e) => e,
        };
        let key = err.path().to_string();
        let retry = overrides.iter().position(|o| o.key == key).filter(|&i| {
            !as_string[i] && !matches!(parse_env_value(&overrides[i].raw), toml::Value::String(_))
        });
        match retry {
            Some(i) => as_string[i] = true,
            None => {
                return Err(ConfigError::key(
                    key,
                    err.into_inner().message().to_string(),
                ))
            }
        }
    }
}

impl Config {
    /// Refuses an empty token, from whichever source (the file, an environment
    /// override, a `*_file`): an empty token would let a request without one in.
    fn validate_secrets(&self) -> Result<(), ConfigError> {
        let secrets = [
            ("http.admin_token", self.http.admin_token.as_ref()),
            ("http.read_token", self.http.read_token.as_ref()),
        ];
        for (key, secret) in secrets {
            if secret.is_some_and(|s| s.expose().trim().is_empty()) {
                let key = match (key, &self.http) {
                    ("http.admin_token", h) if h.admin_token_file.is_some() => {
                        "http.admin_token_file"
                    }
                    ("http.read_token", h) if h.read_token_file.is_some() => "http.read_token_file",
                    _ => key,
                };
                return Err(ConfigError::key(
                    key,
                    "is empty: give it a value, or remove it (and its DRIFTD_* override) to leave it unset",
                ));
            }
        }
        Ok(())
    }

    fn validate_http(&self) -> Result<(), ConfigError> {
        let h = &self.http;
        h.listen
            .parse::<std::net::SocketAddr>()
            .map_err(|e| ConfigError::key("http.listen", format!("not a socket address: {e}")))?;
        if h.request_timeout_ms == 0 {
            return Err(ConfigError::key(
                "http.request_timeout_ms",
                "must be at least 1",
            ));
        }
        if h.max_concurrent_requests == 0 {
            return Err(ConfigError::key(
                "http.max_concurrent_requests",
                "must be at least 1",
            ));
        }
        if h.liveness_timeout_ms <= self.poll.ownership_check_ms {
            return Err(ConfigError::key(
                "http.liveness_timeout_ms",
                format!(
                    "must exceed poll.ownership_check_ms ({} ms): the ownership round goes round that often",
                    self.poll.ownership_check_ms
                ),
            ));
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.validate_secrets()?;
        self.validate_http()?;
        if let Some(db) = &self.database {
            let url = db.url.expose();
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(ConfigError::key(
                    "database.url",
                    "must start with postgres:// or postgresql://",
                ));
            }
        }
        if self.poll.batch_size == 0 {
            return Err(ConfigError::key("poll.batch_size", "must be at least 1"));
        }
        if self.training.max_concurrent == 0 {
            return Err(ConfigError::key(
                "training.max_concurrent",
                "must be at least 1",
            ));
        }
        if !(0..=19).contains(&self.training.nice) {
            return Err(ConfigError::key(
                "training.nice",
                "must be between 0 and 19 (a lower priority than the serving threads, or the same)",
            ));
        }
        if self.poll.interval_ms == 0 {
            return Err(ConfigError::key("poll.interval_ms", "must be at least 1"));
        }
        if self.poll.sweep_interval_ms == 0 {
            return Err(ConfigError::key(
                "poll.sweep_interval_ms",
                "must be at least 1",
            ));
        }
        if self.poll.discover_interval_ms == 0 {
            return Err(ConfigError::key(
                "poll.discover_interval_ms",
                "must be at least 1",
            ));
        }
        self.source.validate()?;
        self.serve
            .validate()
            .map_err(|(key, reason)| ConfigError::key(format!("serve.{key}"), reason))?;
        let mut seen = BTreeMap::new();
        for (i, m) in self.models.iter().enumerate() {
            if seen.insert(m.name.clone(), i).is_some() {
                return Err(ConfigError::key(
                    format!("models[{i}].name"),
                    format!("`{}` is configured twice", m.name),
                ));
            }
            m.validate(&self.source)
                .map_err(|(key, reason)| ConfigError::key(format!("models[{i}].{key}"), reason))?;
        }
        Ok(())
    }

    /// The feature positions the table's reads code as categories: those of the models
    /// with `categorical_features`, which must agree (one read serves every model), and in
    /// the array layout come after the numeric features (they are read from
    /// `source.categories_column`).
    fn categorical_positions(&self) -> Result<Vec<usize>, ConfigError> {
        let mut positions: Option<(usize, Vec<usize>)> = None;
        // A template's positions from its own keys (it is checked as a model later).
        let templates = self.template_tables.iter().map(|t| {
            let strings = |key: &str| -> Vec<String> {
                t.get(key)
                    .and_then(toml::Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let (names, cats) = (strings("feature_names"), strings("categorical_features"));
            let at: Vec<usize> = (0..names.len())
                .filter(|&i| cats.contains(&names[i]))
                .collect();
            (names.len(), at)
        });
        let models = self
            .models
            .iter()
            .map(|m| (m.n_features, m.categorical_indices()));
        let n_models = self.models.len();
        let block = |i: usize| {
            if i < n_models {
                format!("models[{i}]")
            } else {
                format!("model_templates[{}]", i - n_models)
            }
        };
        for (i, (n_features, at)) in models.chain(templates).enumerate() {
            if at.is_empty() {
                continue;
            }
            match &positions {
                Some((j, p)) if *p != at => {
                    return Err(ConfigError::key(
                        format!("{}.categorical_features", block(i)),
                        format!(
                            "names features at positions {at:?}, {}'s at {p:?}: the table's \
                             columns are read once for every model, so they must agree",
                            block(*j)
                        ),
                    ))
                }
                Some(_) => {}
                None => positions = Some((i, at.clone())),
            }
            let trailing = (n_features - at.len()..n_features).collect::<Vec<_>>();
            if self.source.feature_columns.is_empty() && at != trailing {
                return Err(ConfigError::key(
                    format!("{}.categorical_features", block(i)),
                    format!(
                        "must be the last of feature_names with an array column: the numbers are \
                         read from `{}`, the categories after them from `{}` (text[])",
                        self.source.features_array_column().unwrap_or("features"),
                        self.source.categories_array_column()
                    ),
                ));
            }
        }
        Ok(positions.map(|(_, p)| p).unwrap_or_default())
    }

    pub fn model(&self, name: &str) -> Option<&ModelConfig> {
        self.models.iter().find(|m| m.name == name)
    }

    /// The settings of model `name` for what does not depend on its width (training on or
    /// off, the manual strategy): its `[[models]]` block, or what its template makes.
    pub fn model_settings(&self, name: &str) -> Option<ModelConfig> {
        if let Some(m) = self.model(name) {
            return Some(m.clone());
        }
        let t = self.template_for(name)?;
        t.instantiate(name, t.n_features.unwrap_or(1), &self.source)
            .ok()
    }

    /// The template that makes model `name`: none if `[[models]]` names it, else the first
    /// whose pattern matches.
    pub fn template_for(&self, name: &str) -> Option<&ModelTemplate> {
        if self.model(name).is_some() {
            return None;
        }
        self.model_templates
            .iter()
            .find(|t| t.pattern.matches(name))
    }
}

impl SourceConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let parts: Vec<&str> = self.table.split('.').collect();
        if parts.len() > 2 {
            return Err(ConfigError::key(
                "source.table",
                "use `table` or `schema.table`",
            ));
        }
        for p in &parts {
            validate_identifier("source.table", p)?;
        }
        validate_identifier("source.id_column", &self.id_column)?;
        validate_identifier("source.model_column", &self.model_column)?;
        validate_identifier("source.prediction_column", &self.prediction_column)?;
        validate_identifier("source.label_column", &self.label_column)?;
        validate_identifier("source.labeled_at_column", &self.labeled_at_column)?;
        if let Some(c) = &self.created_at_column {
            validate_identifier("source.created_at_column", c)?;
        }
        if let Some(c) = &self.categories_column {
            validate_identifier("source.categories_column", c)?;
        }
        if let Some(c) = &self.model_version_column {
            validate_identifier("source.model_version_column", c)?;
        }
        validate_identifier("source.notify_channel", &self.notify_channel)?;
        match (&self.features_column, self.feature_columns.is_empty()) {
            (Some(c), true) => validate_identifier("source.features_column", c)?,
            (None, false) => {
                for c in &self.feature_columns {
                    validate_identifier("source.feature_columns", c)?;
                }
            }
            (Some(_), false) => {
                return Err(ConfigError::key(
                    "source.feature_columns",
                    "set either features_column or feature_columns, not both",
                ))
            }
            // The reference table's array column.
            (None, true) => {}
        }
        Ok(())
    }

    /// The `text[]` column of categorical features in the array layout.
    pub fn categories_array_column(&self) -> &str {
        self.categories_column.as_deref().unwrap_or("categories")
    }

    pub fn features_array_column(&self) -> Option<&str> {
        if self.feature_columns.is_empty() {
            Some(self.features_column.as_deref().unwrap_or("features"))
        } else {
            None
        }
    }
}

/// One `DRIFTD_<SECTION>__<KEY>` variable.
struct Override {
    name: String,
    /// `poll.batch_size`, as serde's error paths spell it.
    key: String,
    path: Vec<String>,
    raw: String,
}

/// `DRIFTD_DATABASE__URL=…` sets `database.url`; `DRIFTD_POLL__BATCH_SIZE=100` sets a number.
/// Only names with a `__` are overrides, so `DRIFTD_CACHE` and friends are left alone.
fn overrides(
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<Override>, ConfigError> {
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with("DRIFTD_") && k.contains("__"))
        .collect();
    vars.sort();
    vars.into_iter()
        .map(|(name, raw)| {
            let path: Vec<String> = name["DRIFTD_".len()..]
                .split("__")
                .map(|p| p.to_ascii_lowercase())
                .collect();
            let key = path.join(".");
            if path.iter().any(|p| p.is_empty()) {
                return Err(ConfigError::key(
                    key,
                    format!("malformed override variable {name}"),
                ));
            }
            Ok(Override {
                name,
                key,
                path,
                raw,
            })
        })
        .collect()
}

/// Sets `o` in the TOML tree: as the type of the value the file already has there, or else
/// as the value's own TOML type (a number, a boolean, an array), or as a string when
/// `as_string` (the key's type, once deserialising said it wants one).
fn apply_override(
    root: &mut toml::Value,
    o: &Override,
    as_string: bool,
) -> Result<(), ConfigError> {
    let mut node = &mut *root;
    for (i, part) in o.path.iter().enumerate() {
        let table = node.as_table_mut().ok_or_else(|| {
            ConfigError::key(
                &o.key,
                format!("{} overrides a key inside a non-table", o.name),
            )
        })?;
        if i + 1 == o.path.len() {
            let value = match table.get(part) {
                Some(existing) => typed_like(existing, &o.raw)
                    .map_err(|why| ConfigError::key(&o.key, format!("{}: {why}", o.name)))?,
                None if as_string => toml::Value::String(o.raw.clone()),
                None => parse_env_value(&o.raw),
            };
            table.insert(part.clone(), value);
            break;
        }
        node = table
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    }
    Ok(())
}

/// `raw` as a value of the same TOML type as `existing`.
fn typed_like(existing: &toml::Value, raw: &str) -> Result<toml::Value, String> {
    use toml::Value as V;
    let parsed = || {
        format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
    };
    let want = existing.type_str();
    let v = match existing {
        V::String(_) => Some(V::String(raw.to_string())),
        V::Float(_) => raw.trim().parse::<f64>().ok().map(V::Float),
        V::Integer(_) | V::Boolean(_) | V::Array(_) | V::Datetime(_) => {
            parsed().filter(|v| v.type_str() == want)
        }
        V::Table(_) => None,
    };
    v.ok_or_else(|| format!("`{raw}` is not a {want} like the value it overrides"))
}

fn parse_env_value(raw: &str) -> toml::Value {
    // Numbers, booleans and arrays keep their type; anything else is a string.
    if let Ok(t) = format!("v = {raw}").parse::<toml::Table>() {
        if let Some(v) = t.get("v") {
            if !matches!(v, toml::Value::Table(_)) {
                return v.clone();
            }
        }
    }
    toml::Value::String(raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = r#"
[database]
url = "postgres://driftd@localhost/app"
[[models]]
name = "churn"
n_features = 3
"#;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_toml_str(
            text,
            env.iter().map(|(a, b)| (a.to_string(), b.to_string())),
        )
    }

    #[test]
    fn minimal_config_gets_documented_defaults() {
        let c = load(MIN, &[]).unwrap();
        assert_eq!(c.poll.settle_ms, 5_000);
        assert_eq!(c.models[0].count_windows, vec![100, 1_000, 10_000]);
        assert_eq!(c.source.features_array_column(), Some("features"));
    }

    #[test]
    fn categorical_features_are_checked_and_read_where_the_layout_puts_them() {
        let model = |extra: &str| {
            format!(
                "[database]\nurl = \"postgres://x@y/z\"\n[[models]]\nname = \"m\"\nn_features = 3\n\
                 feature_names = [\"spend\", \"plan\", \"region\"]\n{extra}"
            )
        };
        let key = |text: &str| match load(text, &[]) {
            Err(ConfigError::Key { key, .. }) => key,
            other => panic!("{other:?}"),
        };
        // Array layout: the categorical features come last (from `categories`).
        let c = load(
            &model("categorical_features = [\"region\", \"plan\"]\n"),
            &[],
        )
        .unwrap();
        assert_eq!(c.source.categorical, vec![1, 2]);
        assert_eq!(c.models[0].categorical_indices(), vec![1, 2]);
        assert_eq!(
            key(&model("categorical_features = [\"spend\"]\n")),
            "models[0].categorical_features"
        );
        assert_eq!(
            key(&model("categorical_features = [\"plans\"]\n")),
            "models[0].categorical_features[0]"
        );
        assert_eq!(
            key(&model("categorical_features = [\"plan\", \"plan\"]\n")),
            "models[0].categorical_features[1]"
        );
        assert_eq!(
            key(&model("max_categories = 0\n")),
            "models[0].max_categories"
        );
        // Listed columns: any position, and every model must agree.
        let cols = "[source]\nfeature_columns = [\"spend\", \"plan\", \"region\"]\n";
        let c = load(
            &(cols.to_string() + &model("categorical_features = [\"plan\"]\n")),
            &[],
        )
        .unwrap();
        assert_eq!(c.source.categorical, vec![1]);
        let two = cols.to_string()
            + &model("categorical_features = [\"plan\"]\n")
            + "[[models]]\nname = \"k\"\nn_features = 3\nfeature_names = [\"a\", \"b\", \"c\"]\ncategorical_features = [\"c\"]\n";
        assert_eq!(key(&two), "models[1].categorical_features");
        assert_eq!(c.models[0].classes, crate::domain::Classes::Grow);
    }

    #[test]
    fn the_estimate_s_settings_are_checked_and_name_their_key() {
        let c = load(MIN, &[]).unwrap();
        let e = &c.models[0].estimate;
        assert!(e.enabled && e.calibration == crate::estimate::Method::Isotonic);
        assert!(
            !c.models[0].triggers.estimated.enabled,
            "the trigger is off by default"
        );
        for (extra, key) in [
            (
                "[models.estimate]\ncalibration_rows = 5",
                "models[0].estimate.calibration_rows",
            ),
            (
                "[models.estimate]\ncalibration = \"beta\"",
                "models[0].estimate.calibration",
            ),
            (
                "[models.triggers.estimated]\nenabled = true\nwindow = \"500\"",
                "models[0].triggers.estimated.window",
            ),
            (
                "[models.estimate]\nenabled = false\n[models.triggers.estimated]\nenabled = true",
                "models[0].triggers.estimated.enabled",
            ),
            (
                "[models.triggers.estimated]\nmin_accuracy = 1.5",
                "models[0].triggers.estimated.min_accuracy",
            ),
        ] {
            let msg = load(&format!("{MIN}{extra}\n"), &[])
                .unwrap_err()
                .to_string();
            assert!(msg.contains(key), "{extra}: {msg}");
        }
        let platt = load(
            &format!("{MIN}[models.estimate]\ncalibration = \"platt\"\n"),
            &[],
        );
        assert_eq!(
            platt.unwrap().models[0].estimate.calibration,
            crate::estimate::Method::Platt
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let err = load(&format!("{MIN}\n[poll]\nintervall_ms = 3\n"), &[]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("poll.intervall_ms"), "{msg}");
    }

    #[test]
    fn bad_value_names_nested_key() {
        let text = MIN.replace("n_features = 3", "n_features = 3\ncount_windows = [0]");
        let msg = load(&text, &[]).unwrap_err().to_string();
        assert!(msg.contains("models[0].count_windows"), "{msg}");
    }

    #[test]
    fn env_overrides_keep_types_and_ignore_plain_vars() {
        let c = load(
            MIN,
            &[
                ("DRIFTD_POLL__BATCH_SIZE", "17"),
                ("DRIFTD_HTTP__LISTEN", "127.0.0.1:0"),
                ("DRIFTD_CACHE", "/tmp/x"),
            ],
        )
        .unwrap();
        assert_eq!(c.poll.batch_size, 17);
        assert_eq!(c.http.listen, "127.0.0.1:0");
    }

    #[test]
    fn env_overrides_take_the_type_of_their_key() {
        // A password of digits is a string; a batch size is a number; with or without the
        // key in the file.
        let env = [
            ("DRIFTD_DATABASE__PASSWORD", "123456"),
            ("DRIFTD_POLL__BATCH_SIZE", "10000"),
            ("DRIFTD_LOG__LEVEL", "7"),
        ];
        let c = load(MIN, &env).unwrap();
        let db = c.database.unwrap();
        assert_eq!(db.password.unwrap().expose(), "123456");
        assert_eq!(c.poll.batch_size, 10_000);
        assert_eq!(c.log.level.as_str(), "7");
        let text = format!("{MIN}\n[poll]\nbatch_size = 50\n");
        let text = text.replace(
            "url = \"postgres://driftd@localhost/app\"",
            "url = \"postgres://driftd@localhost/app\"\npassword = \"x\"",
        );
        let c = load(&text, &env).unwrap();
        assert_eq!(c.database.unwrap().password.unwrap().expose(), "123456");
        assert_eq!(c.poll.batch_size, 10_000);
        // A value that is not of the key's type is an error naming the key.
        let msg = load(&text, &[("DRIFTD_POLL__BATCH_SIZE", "lots")])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("poll.batch_size"), "{msg}");
        let msg = load(MIN, &[("DRIFTD_POLL__BATCH_SIZE", "lots")])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("poll.batch_size"), "{msg}");
    }

    #[test]
    fn the_threshold_watches_a_configured_window() {
        let on = "[models.triggers.threshold]\nenabled = true\nmin_accuracy = 0.8\n";
        let text = format!("{MIN}{on}window = \"24h\"\n");
        assert!(load(&text, &[]).is_ok());
        let text = format!("{MIN}{on}window = \"12h\"\n");
        let msg = load(&text, &[]).unwrap_err().to_string();
        assert!(msg.contains("models[0].triggers.threshold.window"), "{msg}");
    }

    #[test]
    fn the_database_section_is_optional_but_checked_when_given() {
        let without = MIN.replace(
            "[database]\nurl = \"postgres://driftd@localhost/app\"\n",
            "",
        );
        let c = load(&without, &[]).unwrap();
        let msg = c.database().unwrap_err().to_string();
        assert!(msg.contains("database.url"), "{msg}");
        let bad = MIN.replace("postgres://driftd@localhost/app", "mysql://x/y");
        let msg = load(&bad, &[]).unwrap_err().to_string();
        assert!(msg.contains("database.url"), "{msg}");
    }

    #[test]
    fn identifiers_are_validated() {
        let text = format!("{MIN}\n[source]\ntable = \"public.outcomes; drop table x\"\n");
        let msg = load(&text, &[]).unwrap_err().to_string();
        assert!(msg.contains("source.table"), "{msg}");
    }

    #[test]
    fn an_empty_token_is_refused_from_every_source() {
        for env in [
            ("DRIFTD_HTTP__ADMIN_TOKEN", ""),
            ("DRIFTD_HTTP__READ_TOKEN", "  "),
        ] {
            let msg = load(MIN, &[env]).unwrap_err().to_string();
            let key = env.0["DRIFTD_HTTP__".len()..].to_ascii_lowercase();
            assert!(msg.contains(&format!("http.{key}")), "{msg}");
            assert!(msg.contains("empty"), "{msg}");
        }
        let msg = load(&format!("{MIN}[http]\nadmin_token = \"\"\n"), &[])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("http.admin_token"), "{msg}");
        let dir = std::env::temp_dir().join(format!("driftd-empty-token-{}", std::process::id()));
        std::fs::write(&dir, "\n").unwrap();
        let text = format!("{MIN}[http]\nread_token_file = \"{}\"\n", dir.display());
        let msg = load(&text, &[]).unwrap_err().to_string();
        let _ = std::fs::remove_file(&dir);
        assert!(msg.contains("http.read_token_file"), "{msg}");
        assert!(load(MIN, &[("DRIFTD_HTTP__ADMIN_TOKEN", "x")]).is_ok());
    }

    #[test]
    fn the_database_password_file_is_read_only_when_a_command_connects() {
        let text = MIN.replace(
            "url = \"postgres://driftd@localhost/app\"",
            "url = \"postgres://driftd@localhost/app\"\npassword_file = \"/nonexistent/db-password\"",
        );
        let c = load(&text, &[]).unwrap();
        let w = c.secret_warnings();
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("database.password_file"), "{w:?}");
        let msg = c.database().unwrap_err().to_string();
        assert!(msg.contains("database.password_file"), "{msg}");
    }

    #[test]
    fn the_liveness_deadline_exceeds_the_ownership_round() {
        let text = format!("{MIN}[http]\nliveness_timeout_ms = 1000\n");
        let msg = load(&text, &[]).unwrap_err().to_string();
        assert!(msg.contains("http.liveness_timeout_ms"), "{msg}");
        let msg = load(&format!("{MIN}[http]\nmax_concurrent_requests = 0\n"), &[])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("http.max_concurrent_requests"), "{msg}");
    }

    #[test]
    fn training_nice_is_a_lower_or_equal_priority() {
        assert_eq!(load(MIN, &[]).unwrap().training.nice, 10);
        let c = load(&format!("{MIN}[training]\nnice = 0\n"), &[]).unwrap();
        assert_eq!(c.training.nice, 0);
        for bad in ["-5", "20"] {
            let msg = load(&format!("{MIN}[training]\nnice = {bad}\n"), &[])
                .unwrap_err()
                .to_string();
            assert!(msg.contains("training.nice"), "{bad}: {msg}");
        }
    }

    #[test]
    fn secrets_do_not_print() {
        let c = load(MIN, &[("DRIFTD_DATABASE__PASSWORD", "hunter2")]).unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("hunter2"));
        assert_eq!(c.database.unwrap().password.unwrap().expose(), "hunter2");
    }

    #[test]
    fn a_bad_duration_is_named_with_its_key_at_load() {
        let text = format!("{MIN}time_windows = [\"1h\", \"3y\"]\n");
        let msg = load(&text, &[]).unwrap_err().to_string();
        assert!(msg.contains("models[0].time_windows[1]"), "{msg}");
        assert!(msg.contains("unknown unit `y`"), "{msg}");
        let text = format!("{MIN}[models.triggers.drift]\ncooldown = \"0m\"\n");
        let msg = load(&text, &[]).unwrap_err().to_string();
        assert!(msg.contains("models[0].triggers.drift.cooldown"), "{msg}");
    }

    #[test]
    fn templates_are_checked_like_models_and_name_their_keys() {
        let t = "[[model_templates]]\npattern = \"tenant-*\"\n";
        let c = load(&format!("{MIN}{t}feature_names = [\"a\", \"b\"]\n"), &[]).unwrap();
        assert_eq!(
            c.model_templates[0].n_features,
            Some(2),
            "from feature_names"
        );
        assert!(c.template_for("tenant-7").is_some());
        assert!(c.template_for("churn").is_none(), "an explicit model wins");
        assert!(c.template_for("other").is_none());
        let m = c.model_templates[0]
            .instantiate("tenant-7", 9, &c.source)
            .unwrap();
        assert_eq!((m.name.as_str(), m.n_features), ("tenant-7", 2));
        let c = load(&format!("{MIN}{t}"), &[]).unwrap();
        assert_eq!(c.model_templates[0].n_features, None, "from the rows");

        let bad = format!("{MIN}{t}count_windows = [0]\n");
        let msg = load(&bad, &[]).unwrap_err().to_string();
        assert!(msg.contains("model_templates[0].count_windows"), "{msg}");
        let bad = format!("{MIN}{t}[model_templates.train]\nlearning_rat = 0.1\n");
        let msg = load(&bad, &[]).unwrap_err().to_string();
        assert!(msg.contains("model_templates[0].train"), "{msg}");
        assert!(msg.contains("learning_rat"), "{msg}");
        let named = format!("{MIN}{t}name = \"x\"\n");
        let msg = load(&named, &[]).unwrap_err().to_string();
        assert!(msg.contains("model_templates[0].name"), "{msg}");
        let msg = load(&format!("{MIN}[[model_templates]]\nn_features = 2\n"), &[])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("model_templates[0].pattern"), "{msg}");
    }
}
