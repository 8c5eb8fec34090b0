//! `[models.triggers]`: when to update a model (the rules are in [`crate::policy`]).

use serde::Deserialize;

use super::cron::{CronExpr, Zone};
use crate::domain::Strategy;
use crate::span::Span;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Cron with seconds: `0 0 3 * * Mon` (weekly), `0 0 4 1 * *` (monthly).
    pub cron: CronExpr,
    #[serde(default = "default_schedule_strategy")]
    pub strategy: Strategy,
}

fn default_schedule_strategy() -> Strategy {
    Strategy::FinetuneCombined
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DriftTriggerConfig {
    pub enabled: bool,
    /// Detector labels whose drift triggers (empty: any detector).
    pub detectors: Vec<String>,
    /// Also trigger on entering a warning zone.
    pub on_warning: bool,
    /// Labelled rows needed since the last update before a drift may trigger another.
    pub min_new_rows: u64,
    /// Labelled rows to wait for after the drift itself, so that the update (and its
    /// time-ordered holdout) sees enough of the new concept.
    pub min_rows_after_drift: u64,
    pub cooldown: Span,
    pub strategy: Strategy,
    /// What a drift-triggered update calls new data: the rows labelled after the (first
    /// pending) detection, `"drift"` (default), or every row after the champion's training
    /// data, `"last_update"`.
    pub new_data_since: NewDataSince,
    /// With `new_data_since = "drift"`: update once more when this many labelled rows have
    /// arrived after a drift update, on everything since the drift, because the first update
    /// saw only `min_rows_after_drift` rows of the new concept. 0 turns it off.
    pub refresh_after_rows: u64,
}

const DEFAULT_REFRESH_AFTER_ROWS: u64 = 2_000;

/// See [`DriftTriggerConfig::new_data_since`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NewDataSince {
    #[default]
    Drift,
    LastUpdate,
}

impl Default for DriftTriggerConfig {
    fn default() -> Self {
        DriftTriggerConfig {
            enabled: true,
            detectors: Vec::new(),
            on_warning: false,
            min_new_rows: 200,
            min_rows_after_drift: 200,
            cooldown: Span::of(600, "10m"),
            strategy: Strategy::Auto,
            new_data_since: NewDataSince::Drift,
            refresh_after_rows: DEFAULT_REFRESH_AFTER_ROWS,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThresholdTriggerConfig {
    pub enabled: bool,
    /// Which rolling window to watch (`"1000"`, `"24h"`).
    pub window: String,
    /// Trigger when accuracy stays below this …
    pub min_accuracy: Option<f64>,
    /// … or more than this many points (0–1) below the champion's holdout accuracy …
    pub max_drop: Option<f64>,
    /// … for at least this long.
    pub hold: Span,
    pub cooldown: Span,
    pub strategy: Strategy,
}

impl Default for ThresholdTriggerConfig {
    fn default() -> Self {
        ThresholdTriggerConfig {
            enabled: false,
            window: "1000".into(),
            min_accuracy: None,
            max_drop: None,
            hold: Span::of(300, "5m"),
            cooldown: Span::of(3_600, "1h"),
            strategy: Strategy::Auto,
        }
    }
}

/// The tutorial's second reason to update: more labelled data has become available. Every
/// `every_rows` labelled rows since the last update (tried or promoted), an update is tried;
/// the holdout gate decides whether it helps, so frequent tries are safe, and slow drift that
/// no detector reports is followed too.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MoreDataTriggerConfig {
    pub enabled: bool,
    pub every_rows: u64,
    pub strategy: Strategy,
}

impl Default for MoreDataTriggerConfig {
    fn default() -> Self {
        MoreDataTriggerConfig {
            enabled: false,
            every_rows: 2_000,
            strategy: Strategy::Auto,
        }
    }
}

/// A class the champion has never output: request an update once `min_rows` labelled rows
/// since the last update had a label it has no class for (`classes = "grow"`). No detector
/// is needed to know that such a model is wrong on them; on by default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NewClassTriggerConfig {
    pub enabled: bool,
    pub min_rows: u64,
    pub strategy: Strategy,
}

impl Default for NewClassTriggerConfig {
    fn default() -> Self {
        NewClassTriggerConfig {
            enabled: true,
            min_rows: 100,
            strategy: Strategy::Auto,
        }
    }
}

/// Accuracy before the labels: request an update when the estimated accuracy of the scored
/// rows (`[models.estimate]`) stays below `min_accuracy` on `window` for `hold` of scoring
/// time. Off by default: the estimate cannot see concept drift, and an update needs the
/// labels anyway; it is for labels that arrive much later than the inputs move.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EstimatedTriggerConfig {
    pub enabled: bool,
    /// Which estimate window to watch (`"1000"`, `"24h"`: one of the model's windows).
    pub window: String,
    pub min_accuracy: f64,
    /// Estimated rows the window must hold first.
    pub min_rows: u64,
    pub hold: Span,
    pub cooldown: Span,
    pub strategy: Strategy,
}

impl Default for EstimatedTriggerConfig {
    fn default() -> Self {
        EstimatedTriggerConfig {
            enabled: false,
            window: "1000".into(),
            min_accuracy: 0.8,
            min_rows: 200,
            hold: Span::of(300, "5m"),
            cooldown: Span::of(3_600, "1h"),
            strategy: Strategy::Auto,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TriggerConfig {
    /// IANA name or `UTC`, for the schedules.
    pub timezone: Zone,
    pub schedules: Vec<ScheduleConfig>,
    pub drift: DriftTriggerConfig,
    pub threshold: ThresholdTriggerConfig,
    pub more_data: MoreDataTriggerConfig,
    pub estimated: EstimatedTriggerConfig,
    pub new_class: NewClassTriggerConfig,
    pub manual_strategy: Strategy,
    /// With no champion, fit the first model once this many labelled rows exist.
    pub bootstrap_min_rows: u64,
}

impl Default for TriggerConfig {
    fn default() -> Self {
        TriggerConfig {
            timezone: Zone::default(),
            schedules: Vec::new(),
            drift: DriftTriggerConfig::default(),
            threshold: ThresholdTriggerConfig::default(),
            more_data: MoreDataTriggerConfig::default(),
            estimated: EstimatedTriggerConfig::default(),
            new_class: NewClassTriggerConfig::default(),
            manual_strategy: Strategy::Auto,
            bootstrap_min_rows: 500,
        }
    }
}

impl TriggerConfig {
    /// Checks durations and thresholds; returns the offending key (relative) and why.
    pub fn validate(&self) -> Result<(), (String, String)> {
        for (i, s) in self.schedules.iter().enumerate() {
            if matches!(s.strategy, Strategy::None) {
                return Err((
                    format!("schedules[{i}].strategy"),
                    "`none` would never update".into(),
                ));
            }
        }
        for (name, v) in [
            ("threshold.min_accuracy", self.threshold.min_accuracy),
            ("threshold.max_drop", self.threshold.max_drop),
            ("estimated.min_accuracy", Some(self.estimated.min_accuracy)),
        ] {
            if let Some(v) = v {
                if !(0.0..=1.0).contains(&v) {
                    return Err((name.into(), format!("{v} is not between 0 and 1")));
                }
            }
        }
        if self.more_data.enabled && self.more_data.every_rows == 0 {
            return Err((
                "more_data.every_rows".into(),
                "must be at least 1 when more_data is enabled".into(),
            ));
        }
        if matches!(self.estimated.strategy, Strategy::None) {
            return Err((
                "estimated.strategy".into(),
                "`none` would never update".into(),
            ));
        }
        if self.new_class.enabled && self.new_class.min_rows == 0 {
            return Err((
                "new_class.min_rows".into(),
                "must be at least 1 when new_class is enabled".into(),
            ));
        }
        if matches!(self.new_class.strategy, Strategy::None) {
            return Err((
                "new_class.strategy".into(),
                "`none` would never learn the class".into(),
            ));
        }
        if matches!(self.more_data.strategy, Strategy::None) {
            return Err((
                "more_data.strategy".into(),
                "`none` would never update".into(),
            ));
        }
        if self.threshold.enabled
            && self.threshold.min_accuracy.is_none()
            && self.threshold.max_drop.is_none()
        {
            return Err((
                "threshold".into(),
                "enabled but neither min_accuracy nor max_drop is set".into(),
            ));
        }
        Ok(())
    }
}
