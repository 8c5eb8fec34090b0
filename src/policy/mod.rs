//! When to update a model: schedules, drift, accuracy thresholds, manual requests, bootstrap.
//! Pure: the caller passes the clock and what the monitor saw; the answer is a [`TrainRequest`]
//! carrying its reason and the strategy to use.

pub mod schedule;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::parse_duration_secs;
use crate::monitor::MonitorEvent;
use crate::outcomes::Watermark;
use crate::train::Strategy;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    Bootstrap,
    Schedule,
    Drift,
    Threshold,
    Manual,
    FeatureDrift,
    /// The second update after a drift, once more of the new concept is in.
    DriftRefresh,
    /// Enough new labelled rows since the last update: try whether more data helps.
    MoreData,
}

impl TriggerKind {
    pub const ALL: [TriggerKind; 8] = [
        TriggerKind::Bootstrap,
        TriggerKind::Schedule,
        TriggerKind::Drift,
        TriggerKind::Threshold,
        TriggerKind::Manual,
        TriggerKind::FeatureDrift,
        TriggerKind::DriftRefresh,
        TriggerKind::MoreData,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TriggerKind::Bootstrap => "bootstrap",
            TriggerKind::Schedule => "schedule",
            TriggerKind::Drift => "drift",
            TriggerKind::Threshold => "threshold",
            TriggerKind::Manual => "manual",
            TriggerKind::FeatureDrift => "feature_drift",
            TriggerKind::DriftRefresh => "drift_refresh",
            TriggerKind::MoreData => "more_data",
        }
    }
}

/// A decision to update, with why.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainRequest {
    pub trigger: TriggerKind,
    pub reason: String,
    pub strategy: Strategy,
    /// The `driftd.training_runs` row already created for it (manual requests).
    pub run_id: Option<i64>,
    /// Where the new data starts when the trigger knows better than "after the champion's
    /// cut-off": a drift update treats the rows labelled after the detection as new (and the
    /// rows before it as old), so `*_new` candidates and the holdout see the new concept only.
    pub new_after: Option<Watermark>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Cron with seconds: `0 0 3 * * Mon` (weekly), `0 0 4 1 * *` (monthly).
    pub cron: String,
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
    pub cooldown: String,
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
            cooldown: "10m".into(),
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
    pub hold: String,
    pub cooldown: String,
    pub strategy: Strategy,
}

impl Default for ThresholdTriggerConfig {
    fn default() -> Self {
        ThresholdTriggerConfig {
            enabled: false,
            window: "1000".into(),
            min_accuracy: None,
            max_drop: None,
            hold: "5m".into(),
            cooldown: "1h".into(),
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

/// Whether enough rows have come in since the last update for a "more data" try. A drift
/// that is waiting for its own update goes first.
pub fn more_data_due(cfg: &MoreDataTriggerConfig, st: &PolicyState, rows: u64) -> bool {
    cfg.enabled
        && st.pending_drift.is_none()
        && rows.saturating_sub(st.rows_at_last_update) >= cfg.every_rows
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TriggerConfig {
    /// IANA name or `UTC`, for the schedules.
    pub timezone: String,
    pub schedules: Vec<ScheduleConfig>,
    pub drift: DriftTriggerConfig,
    pub threshold: ThresholdTriggerConfig,
    pub more_data: MoreDataTriggerConfig,
    pub manual_strategy: Strategy,
    /// With no champion, fit the first model once this many labelled rows exist.
    pub bootstrap_min_rows: u64,
}

impl Default for TriggerConfig {
    fn default() -> Self {
        TriggerConfig {
            timezone: "UTC".into(),
            schedules: Vec::new(),
            drift: DriftTriggerConfig::default(),
            threshold: ThresholdTriggerConfig::default(),
            more_data: MoreDataTriggerConfig::default(),
            manual_strategy: Strategy::Auto,
            bootstrap_min_rows: 500,
        }
    }
}

impl TriggerConfig {
    /// Checks durations and thresholds; returns the offending key (relative) and why.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let dur = |k: &str, v: &str| {
            parse_duration_secs(v)
                .map(|_| ())
                .map_err(|r| (k.to_string(), r))
        };
        dur("drift.cooldown", &self.drift.cooldown)?;
        dur("threshold.hold", &self.threshold.hold)?;
        dur("threshold.cooldown", &self.threshold.cooldown)?;
        schedule::parse_timezone(&self.timezone).map_err(|r| ("timezone".to_string(), r))?;
        for (i, s) in self.schedules.iter().enumerate() {
            schedule::parse_cron(&s.cron).map_err(|r| (format!("schedules[{i}].cron"), r))?;
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

/// What the policy remembers between batches (part of the model's committed state).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PolicyState {
    pub last_trigger_at: Option<DateTime<Utc>>,
    pub rows_at_last_update: u64,
    pub below_since: Option<DateTime<Utc>>,
    /// A drift seen during the cooldown or before enough new rows: deferred, not dropped.
    #[serde(default)]
    pub pending_drift: Option<String>,
    /// Rows seen when the pending drift was detected.
    #[serde(default)]
    pub pending_drift_rows: u64,
    /// The row at which the pending drift was first detected.
    #[serde(default)]
    pub pending_drift_at: Option<Watermark>,
    /// A drift update's refresh: due at this many rows, learning from after this row.
    #[serde(default)]
    pub refresh_due_rows: Option<u64>,
    #[serde(default)]
    pub refresh_from: Option<Watermark>,
}

/// What one batch showed the policy.
pub struct BatchView<'a> {
    pub rows: u64,
    pub events: &'a [MonitorEvent],
    /// The watched window's accuracy (see `threshold.window`).
    pub watched_accuracy: Option<f64>,
    pub champion_holdout_accuracy: Option<f64>,
    pub has_champion: bool,
}

pub fn on_batch(
    cfg: &TriggerConfig,
    st: &mut PolicyState,
    b: &BatchView<'_>,
    now: DateTime<Utc>,
) -> Option<TrainRequest> {
    if !b.has_champion {
        if b.rows >= cfg.bootstrap_min_rows && st.last_trigger_at.is_none() {
            st.last_trigger_at = Some(now);
            return Some(TrainRequest {
                trigger: TriggerKind::Bootstrap,
                reason: format!("no champion and {} labelled rows", b.rows),
                strategy: Strategy::RefitCombined,
                run_id: None,
                new_after: None,
            });
        }
        return None;
    }
    let cooled = |cooldown: &str| {
        let secs = parse_duration_secs(cooldown).unwrap_or(0);
        st.last_trigger_at
            .is_none_or(|t| (now - t).num_seconds() >= secs)
    };
    if cfg.drift.enabled {
        let watched =
            |d: &String| cfg.drift.detectors.is_empty() || cfg.drift.detectors.contains(d);
        let hit = b.events.iter().find_map(|e| match e {
            MonitorEvent::Drift {
                detector,
                row_id,
                labeled_at,
                ..
            } if watched(detector) => Some((detector, *row_id, *labeled_at, "drift")),
            MonitorEvent::Warning {
                detector,
                row_id,
                labeled_at,
                ..
            } if cfg.drift.on_warning && watched(detector) => {
                Some((detector, *row_id, *labeled_at, "warning"))
            }
            _ => None,
        });
        if let Some((det, id, labeled_at, what)) = hit {
            if st.pending_drift.is_none() {
                st.pending_drift_rows = b.rows;
                st.pending_drift_at = Some(Watermark { labeled_at, id });
            }
            st.pending_drift = Some(format!("{det} reported {what} at row id {id}"));
        }
        let enough_rows = b.rows.saturating_sub(st.rows_at_last_update) >= cfg.drift.min_new_rows
            && b.rows.saturating_sub(st.pending_drift_rows) >= cfg.drift.min_rows_after_drift;
        if st.pending_drift.is_some() && enough_rows && cooled(&cfg.drift.cooldown) {
            let reason = st.pending_drift.take().expect("checked above");
            let drift_at = st
                .pending_drift_at
                .take()
                .filter(|_| cfg.drift.new_data_since == NewDataSince::Drift);
            st.last_trigger_at = Some(now);
            st.below_since = None;
            (st.refresh_due_rows, st.refresh_from) = match drift_at {
                Some(at) if cfg.drift.refresh_after_rows > 0 => {
                    (Some(b.rows + cfg.drift.refresh_after_rows), Some(at))
                }
                _ => (None, None),
            };
            return Some(TrainRequest {
                trigger: TriggerKind::Drift,
                reason,
                strategy: cfg.drift.strategy,
                run_id: None,
                new_after: drift_at,
            });
        }
        if let (Some(due), Some(from)) = (st.refresh_due_rows, st.refresh_from) {
            if b.rows >= due && cooled(&cfg.drift.cooldown) {
                st.refresh_due_rows = None;
                st.refresh_from = None;
                st.last_trigger_at = Some(now);
                st.below_since = None;
                return Some(TrainRequest {
                    trigger: TriggerKind::DriftRefresh,
                    reason: format!(
                        "{} rows since the drift update; learning from everything after row id {}",
                        cfg.drift.refresh_after_rows, from.id
                    ),
                    strategy: cfg.drift.strategy,
                    run_id: None,
                    new_after: Some(from),
                });
            }
        }
    }
    let t = &cfg.threshold;
    if t.enabled {
        let floor = match (t.min_accuracy, t.max_drop.zip(b.champion_holdout_accuracy)) {
            (Some(a), Some((d, h))) => Some(a.max(h - d)),
            (Some(a), None) => Some(a),
            (None, Some((d, h))) => Some(h - d),
            (None, None) => None,
        };
        match (floor, b.watched_accuracy) {
            (Some(floor), Some(acc)) if acc < floor => {
                let since = *st.below_since.get_or_insert(now);
                let hold = parse_duration_secs(&t.hold).unwrap_or(0);
                if (now - since).num_seconds() >= hold && cooled(&t.cooldown) {
                    st.last_trigger_at = Some(now);
                    st.below_since = None;
                    return Some(TrainRequest {
                        trigger: TriggerKind::Threshold,
                        reason: format!(
                            "accuracy({}) {acc:.4} below {floor:.4} since {since}",
                            t.window
                        ),
                        strategy: t.strategy,
                        run_id: None,
                        new_after: None,
                    });
                }
            }
            _ => st.below_since = None,
        }
    }
    if more_data_due(&cfg.more_data, st, b.rows) {
        st.last_trigger_at = Some(now);
        return Some(TrainRequest {
            trigger: TriggerKind::MoreData,
            reason: format!(
                "{} labelled rows since the last update",
                b.rows.saturating_sub(st.rows_at_last_update)
            ),
            strategy: cfg.more_data.strategy,
            run_id: None,
            new_after: None,
        });
    }
    None
}

/// Records that an update finished, so `min_new_rows` counts from here.
pub fn on_update(st: &mut PolicyState, rows: u64, now: DateTime<Utc>) {
    st.rows_at_last_update = rows;
    st.last_trigger_at = Some(now);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Signal;
    use chrono::{Duration, TimeZone};

    fn drift(det: &str) -> MonitorEvent {
        drift_at(det, 42, 0)
    }

    /// A drift reported by `det` at outcome `id`, labelled at unix second `labeled_at`.
    fn drift_at(det: &str, id: i64, labeled_at: i64) -> MonitorEvent {
        MonitorEvent::Drift {
            detector: det.into(),
            signal: Signal::Error,
            row_id: id,
            row_index: id as u64 - 1,
            labeled_at: Utc.timestamp_opt(labeled_at, 0).unwrap(),
            estimate: 0.3,
        }
    }

    fn view<'a>(rows: u64, events: &'a [MonitorEvent], acc: Option<f64>) -> BatchView<'a> {
        BatchView {
            rows,
            events,
            watched_accuracy: acc,
            champion_holdout_accuracy: Some(0.9),
            has_champion: true,
        }
    }

    #[test]
    fn bootstrap_fires_once_enough_rows_exist() {
        let cfg = TriggerConfig::default();
        let mut st = PolicyState::default();
        let now = Utc::now();
        let v = |rows| BatchView {
            rows,
            events: &[],
            watched_accuracy: None,
            champion_holdout_accuracy: None,
            has_champion: false,
        };
        assert!(on_batch(&cfg, &mut st, &v(499), now).is_none());
        let r = on_batch(&cfg, &mut st, &v(500), now).unwrap();
        assert_eq!(r.trigger, TriggerKind::Bootstrap);
        assert!(on_batch(&cfg, &mut st, &v(600), now).is_none());
    }

    #[test]
    fn drift_respects_detectors_min_rows_and_cooldown() {
        let mut cfg = TriggerConfig::default();
        cfg.drift.detectors = vec!["adwin".into()];
        let mut st = PolicyState::default();
        let t0 = Utc::now();
        assert!(on_batch(&cfg, &mut st, &view(1_000, &[drift("ddm")], None), t0).is_none());
        assert!(
            on_batch(&cfg, &mut st, &view(100, &[drift("adwin")], None), t0).is_none(),
            "too few rows"
        );
        let r = on_batch(&cfg, &mut st, &view(1_000, &[], None), t0).unwrap();
        assert_eq!(
            (r.trigger, r.strategy),
            (TriggerKind::Drift, Strategy::Auto)
        );
        assert!(r.reason.contains("adwin"));
        on_update(&mut st, 1_000, t0);
        assert!(
            on_batch(
                &cfg,
                &mut st,
                &view(5_000, &[drift("adwin")], None),
                t0 + Duration::minutes(5)
            )
            .is_none(),
            "cooldown"
        );
        // The drift seen during the cooldown is deferred, not dropped: it fires once the cooldown ends.
        let r = on_batch(
            &cfg,
            &mut st,
            &view(5_300, &[], None),
            t0 + Duration::minutes(11),
        )
        .unwrap();
        assert_eq!(r.trigger, TriggerKind::Drift);
        assert!(
            on_batch(
                &cfg,
                &mut st,
                &view(6_000, &[], None),
                t0 + Duration::minutes(30)
            )
            .is_none(),
            "fired once"
        );
    }

    #[test]
    fn a_drift_update_takes_new_data_from_the_first_pending_detection() {
        let at = |id: i64| drift_at("adwin", id, 1_000 + id);
        let mut cfg = TriggerConfig::default();
        cfg.drift.min_rows_after_drift = 500;
        let mut st = PolicyState::default();
        let t0 = Utc::now();
        assert!(on_batch(&cfg, &mut st, &view(1_000, &[at(990)], None), t0).is_none());
        // A second detection while the first waits for rows does not move the start.
        assert!(on_batch(&cfg, &mut st, &view(1_200, &[at(1_150)], None), t0).is_none());
        let r = on_batch(&cfg, &mut st, &view(1_500, &[], None), t0).unwrap();
        assert_eq!(
            r.new_after,
            Some(Watermark {
                labeled_at: Utc.timestamp_opt(1_990, 0).unwrap(),
                id: 990
            })
        );
        assert!(st.pending_drift_at.is_none());
        on_update(&mut st, 1_500, t0);

        cfg.drift.new_data_since = NewDataSince::LastUpdate;
        let later = t0 + Duration::hours(1);
        assert!(on_batch(&cfg, &mut st, &view(2_000, &[at(1_990)], None), later).is_none());
        let r = on_batch(&cfg, &mut st, &view(2_600, &[], None), later).unwrap();
        assert_eq!((r.trigger, r.new_after), (TriggerKind::Drift, None));
    }

    #[test]
    fn a_drift_update_is_refreshed_once_more_of_the_new_concept_is_in() {
        let mut cfg = TriggerConfig::default();
        cfg.drift.refresh_after_rows = 2_000;
        cfg.drift.cooldown = "1m".into();
        let mut st = PolicyState::default();
        let t0 = Utc::now();
        assert!(on_batch(
            &cfg,
            &mut st,
            &view(1_000, &[drift_at("adwin", 990, 5_000)], None),
            t0
        )
        .is_none());
        let r = on_batch(&cfg, &mut st, &view(1_300, &[], None), t0).unwrap();
        assert_eq!(r.trigger, TriggerKind::Drift);
        on_update(&mut st, 1_300, t0);
        let later = t0 + Duration::minutes(10);
        assert!(on_batch(&cfg, &mut st, &view(3_200, &[], None), later).is_none());
        let r = on_batch(&cfg, &mut st, &view(3_300, &[], None), later).unwrap();
        assert_eq!(r.trigger, TriggerKind::DriftRefresh);
        // Everything since the drift, not since the first update's cut-off.
        assert_eq!(r.new_after.map(|w| w.id), Some(990));
        on_update(&mut st, 3_300, later);
        assert!(
            on_batch(
                &cfg,
                &mut st,
                &view(9_000, &[], None),
                later + Duration::hours(1)
            )
            .is_none(),
            "once"
        );
        // Off: no refresh.
        cfg.drift.refresh_after_rows = 0;
        let mut st = PolicyState::default();
        assert!(on_batch(
            &cfg,
            &mut st,
            &view(1_000, &[drift_at("adwin", 990, 5_000)], None),
            t0
        )
        .is_none());
        assert!(on_batch(&cfg, &mut st, &view(1_300, &[], None), t0).is_some());
        assert!(on_batch(&cfg, &mut st, &view(9_000, &[], None), later).is_none());
    }

    #[test]
    fn more_data_tries_an_update_every_n_rows_after_any_update() {
        let mut cfg = TriggerConfig::default();
        cfg.more_data.enabled = true;
        cfg.more_data.every_rows = 1_000;
        let mut st = PolicyState::default();
        let t0 = Utc::now();
        assert!(on_batch(&cfg, &mut st, &view(999, &[], None), t0).is_none());
        let r = on_batch(&cfg, &mut st, &view(1_000, &[], None), t0).unwrap();
        assert_eq!(
            (r.trigger, r.strategy, r.new_after),
            (TriggerKind::MoreData, Strategy::Auto, None)
        );
        assert_eq!(r.reason, "1000 labelled rows since the last update");
        on_update(&mut st, 1_000, t0);
        assert!(on_batch(&cfg, &mut st, &view(1_900, &[], None), t0).is_none());
        // A pending drift goes first (here: still waiting for rows after the drift).
        cfg.drift.min_rows_after_drift = 500;
        assert!(on_batch(
            &cfg,
            &mut st,
            &view(2_100, &[drift_at("adwin", 2_050, 9)], None),
            t0
        )
        .is_none());
        let later = t0 + Duration::minutes(11);
        let r = on_batch(&cfg, &mut st, &view(2_600, &[], None), later).unwrap();
        assert_eq!(r.trigger, TriggerKind::Drift);
        // Off by default; every_rows = 0 is a configuration error naming the key.
        assert!(!TriggerConfig::default().more_data.enabled);
        cfg.more_data.every_rows = 0;
        assert_eq!(cfg.validate().unwrap_err().0, "more_data.every_rows");
    }

    #[test]
    fn threshold_needs_the_hold_time() {
        let mut cfg = TriggerConfig::default();
        cfg.drift.enabled = false;
        cfg.threshold.enabled = true;
        cfg.threshold.min_accuracy = Some(0.8);
        let mut st = PolicyState::default();
        let t0 = Utc::now();
        assert!(on_batch(&cfg, &mut st, &view(10, &[], Some(0.7)), t0).is_none());
        assert!(on_batch(
            &cfg,
            &mut st,
            &view(10, &[], Some(0.7)),
            t0 + Duration::minutes(4)
        )
        .is_none());
        // Recovering resets the clock.
        assert!(on_batch(
            &cfg,
            &mut st,
            &view(10, &[], Some(0.85)),
            t0 + Duration::minutes(4)
        )
        .is_none());
        assert!(on_batch(
            &cfg,
            &mut st,
            &view(10, &[], Some(0.7)),
            t0 + Duration::minutes(6)
        )
        .is_none());
        let r = on_batch(
            &cfg,
            &mut st,
            &view(10, &[], Some(0.7)),
            t0 + Duration::minutes(11),
        )
        .unwrap();
        assert_eq!(r.trigger, TriggerKind::Threshold);
        // max_drop relative to the champion's holdout accuracy (0.9): 0.84 is 6 points down.
        cfg.threshold.min_accuracy = None;
        cfg.threshold.max_drop = Some(0.05);
        cfg.threshold.hold = "1s".into();
        let mut st = PolicyState::default();
        assert!(on_batch(&cfg, &mut st, &view(10, &[], Some(0.86)), t0).is_none());
        on_batch(&cfg, &mut st, &view(10, &[], Some(0.84)), t0);
        assert!(on_batch(
            &cfg,
            &mut st,
            &view(10, &[], Some(0.84)),
            t0 + Duration::seconds(2)
        )
        .is_some());
    }
}
