//! When to update a model: schedules, drift, accuracy thresholds, manual requests, bootstrap.
//! Pure: the caller passes the clock and what the monitor saw; the answer is a [`TrainRequest`]
//! carrying its reason and the strategy to use.

pub mod schedule;

pub use crate::config::triggers::{
    DriftTriggerConfig, EstimatedTriggerConfig, MoreDataTriggerConfig, NewDataSince,
    ScheduleConfig, ThresholdTriggerConfig, TriggerConfig,
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{Strategy, Watermark};
use crate::monitor::MonitorEvent;
use crate::span::Span;

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
    /// The estimated accuracy of the scored rows stayed below the floor (`[models.estimate]`).
    Estimated,
    /// Labels the champion has no class for (`[models.triggers.new_class]`).
    NewClass,
    /// The backtest's "update every N rows" baseline; the daemon never makes it.
    Periodic,
    /// A challenger in shadow proved better on the same live rows (`crate::shadow`).
    Shadow,
}

impl TriggerKind {
    /// Every trigger the daemon makes (so every metric series it can have).
    pub const ALL: [TriggerKind; 11] = [
        TriggerKind::Bootstrap,
        TriggerKind::Schedule,
        TriggerKind::Drift,
        TriggerKind::Threshold,
        TriggerKind::Manual,
        TriggerKind::FeatureDrift,
        TriggerKind::DriftRefresh,
        TriggerKind::MoreData,
        TriggerKind::Estimated,
        TriggerKind::NewClass,
        TriggerKind::Shadow,
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
            TriggerKind::Estimated => "estimated",
            TriggerKind::NewClass => "new_class",
            TriggerKind::Periodic => "periodic",
            TriggerKind::Shadow => "shadow",
        }
    }
}

/// A decision to update, with why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// Whether enough rows have come in since the last update for a "more data" try. A drift
/// that is waiting for its own update goes first.
pub fn more_data_due(cfg: &MoreDataTriggerConfig, st: &PolicyState, rows: u64) -> bool {
    cfg.enabled
        && st.pending_drift.is_none()
        && rows.saturating_sub(st.rows_at_last_update) >= cfg.every_rows
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
    /// Since when the watched estimate has been below its floor.
    #[serde(default)]
    pub estimate_below_since: Option<DateTime<Utc>>,
    /// Trainings planned so far: the next is seeded with the controller's seed plus this, and
    /// it is stored, so that a restart never uses a seed twice.
    #[serde(default)]
    pub plans: u64,
    /// A request that arrived while a training ran: the follow-up once it ends, or once the
    /// loop is back after a restart.
    #[serde(default)]
    pub follow_up: Option<TrainRequest>,
    /// When the feature-drift check last ran.
    #[serde(default)]
    pub last_feature_check: Option<DateTime<Utc>>,
    /// The monitor's unseen labels (a class the champion could not output) at the last
    /// update: the new-class trigger counts from here.
    #[serde(default)]
    pub unseen_at_last_update: u64,
}

/// What one batch showed the policy.
pub struct BatchView {
    pub rows: u64,
    /// The watched window's accuracy (see `threshold.window`).
    pub watched_accuracy: Option<f64>,
    pub champion_holdout_accuracy: Option<f64>,
    pub has_champion: bool,
    /// Labelled rows so far whose label the serving model has no class for.
    pub unseen_labels: u64,
}

/// The batch's update, if a trigger fires: the bootstrap without a champion; else a new
/// class, the drift trigger, its refresh, the accuracy threshold, then more data (the first
/// that fires wins).
pub fn on_batch(
    cfg: &TriggerConfig,
    st: &mut PolicyState,
    b: &BatchView,
    now: DateTime<Utc>,
) -> Option<TrainRequest> {
    if !b.has_champion {
        if b.rows >= cfg.bootstrap_min_rows && st.last_trigger_at.is_none() {
            st.last_trigger_at = Some(now);
            return Some(bootstrap_request(b.rows));
        }
        return None;
    }
    // The batch's drift is noted already (see [`note_drift`]): a new-class update in the
    // same batch defers it rather than drops it.
    if let Some(r) = new_class_request(cfg, st, b, now) {
        return Some(r);
    }
    if cfg.drift.enabled {
        if let Some(r) = drift_request(&cfg.drift, st, b, now) {
            return Some(r);
        }
        if let Some(r) = refresh_request(&cfg.drift, st, b, now) {
            return Some(r);
        }
    }
    if cfg.threshold.enabled {
        if let Some(r) = threshold_request(&cfg.threshold, st, b, now) {
            return Some(r);
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

/// Whether the cooldown since the last trigger has passed (whole seconds since it). The one
/// cooldown rule: the batch triggers here and the controller's feature-drift trigger use it.
/// After an estimated batch: an update when the watched estimate (its accuracy and rows)
/// has stayed below `min_accuracy` for `hold` of scoring time and the cooldown has passed.
pub fn on_estimate(
    cfg: &EstimatedTriggerConfig,
    st: &mut PolicyState,
    estimate: Option<(f64, u64)>,
    now: DateTime<Utc>,
) -> Option<TrainRequest> {
    if !cfg.enabled {
        return None;
    }
    let below = estimate.filter(|&(acc, rows)| rows >= cfg.min_rows && acc < cfg.min_accuracy);
    let Some((acc, _)) = below else {
        st.estimate_below_since = None;
        return None;
    };
    held_below(
        &mut st.estimate_below_since,
        &mut st.last_trigger_at,
        (&cfg.hold, &cfg.cooldown),
        now,
    )?;
    Some(TrainRequest {
        trigger: TriggerKind::Estimated,
        reason: format!(
            "estimated accuracy {acc:.3} on window {} below {} for {}",
            cfg.window,
            cfg.min_accuracy,
            cfg.hold.as_str()
        ),
        strategy: cfg.strategy,
        run_id: None,
        new_after: None,
    })
}

/// The rule of the threshold and estimated triggers, once a watched value is below its
/// floor: it fires when it has stayed there since `*since` (which starts now if unset) for
/// `hold`, and the `cooldown` since the last trigger has passed; firing records the trigger
/// and starts the hold over. Returns when the hold started, if it fires.
fn held_below(
    since: &mut Option<DateTime<Utc>>,
    last_trigger_at: &mut Option<DateTime<Utc>>,
    (hold, cooldown): (&Span, &Span),
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let start = *since.get_or_insert(now);
    if (now - start).num_seconds() < hold.secs() || !cooled_after(*last_trigger_at, cooldown, now) {
        return None;
    }
    *last_trigger_at = Some(now);
    *since = None;
    Some(start)
}

pub fn cooled(st: &PolicyState, cooldown: &Span, now: DateTime<Utc>) -> bool {
    cooled_after(st.last_trigger_at, cooldown, now)
}

fn cooled_after(
    last_trigger_at: Option<DateTime<Utc>>,
    cooldown: &Span,
    now: DateTime<Utc>,
) -> bool {
    last_trigger_at.is_none_or(|t| (now - t).num_seconds() >= cooldown.secs())
}

/// Remembers the batch's first watched drift (or warning) as pending, keeping where the first
/// pending one was seen; `rows` are the monitor's rows after the batch. Called as the batch
/// is folded, with a champion, so that the note is stored with the batch's watermark: a
/// restart between the batch's commit and the decisions on it keeps the drift (the
/// detectors that reported it are past it and will not report it again).
pub fn note_drift(
    cfg: &DriftTriggerConfig,
    st: &mut PolicyState,
    rows: u64,
    events: &[MonitorEvent],
) {
    if !cfg.enabled {
        return;
    }
    let watched = |d: &String| cfg.detectors.is_empty() || cfg.detectors.contains(d);
    let hit = events.iter().find_map(|e| match e {
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
        } if cfg.on_warning && watched(detector) => {
            Some((detector, *row_id, *labeled_at, "warning"))
        }
        _ => None,
    });
    if let Some((det, id, labeled_at, what)) = hit {
        if st.pending_drift.is_none() {
            st.pending_drift_rows = rows;
            st.pending_drift_at = Some(Watermark { labeled_at, id });
        }
        st.pending_drift = Some(format!("{det} reported {what} at row id {id}"));
    }
}

/// A pending drift's update, once enough rows are in and the cooldown has passed.
fn drift_request(
    cfg: &DriftTriggerConfig,
    st: &mut PolicyState,
    b: &BatchView,
    now: DateTime<Utc>,
) -> Option<TrainRequest> {
    let enough_rows = b.rows.saturating_sub(st.rows_at_last_update) >= cfg.min_new_rows
        && b.rows.saturating_sub(st.pending_drift_rows) >= cfg.min_rows_after_drift;
    if !(enough_rows && cooled(st, &cfg.cooldown, now)) {
        return None;
    }
    let reason = st.pending_drift.take()?;
    let drift_at = st
        .pending_drift_at
        .take()
        .filter(|_| cfg.new_data_since == NewDataSince::Drift);
    st.last_trigger_at = Some(now);
    st.below_since = None;
    (st.refresh_due_rows, st.refresh_from) = match drift_at {
        Some(at) if cfg.refresh_after_rows > 0 => (Some(b.rows + cfg.refresh_after_rows), Some(at)),
        _ => (None, None),
    };
    Some(TrainRequest {
        trigger: TriggerKind::Drift,
        reason,
        strategy: cfg.strategy,
        run_id: None,
        new_after: drift_at,
    })
}

/// A drift update's refresh, once `refresh_after_rows` more rows are in.
fn refresh_request(
    cfg: &DriftTriggerConfig,
    st: &mut PolicyState,
    b: &BatchView,
    now: DateTime<Utc>,
) -> Option<TrainRequest> {
    let (due, from) = st.refresh_due_rows.zip(st.refresh_from)?;
    if b.rows < due || !cooled(st, &cfg.cooldown, now) {
        return None;
    }
    st.refresh_due_rows = None;
    st.refresh_from = None;
    st.last_trigger_at = Some(now);
    st.below_since = None;
    Some(TrainRequest {
        trigger: TriggerKind::DriftRefresh,
        reason: format!(
            "{} rows since the drift update; learning from everything after row id {}",
            cfg.refresh_after_rows, from.id
        ),
        strategy: cfg.strategy,
        run_id: None,
        new_after: Some(from),
    })
}

/// An update when the watched accuracy has stayed below the floor for `hold`.
fn threshold_request(
    t: &ThresholdTriggerConfig,
    st: &mut PolicyState,
    b: &BatchView,
    now: DateTime<Utc>,
) -> Option<TrainRequest> {
    let floor = match (t.min_accuracy, t.max_drop.zip(b.champion_holdout_accuracy)) {
        (Some(a), Some((d, h))) => Some(a.max(h - d)),
        (Some(a), None) => Some(a),
        (None, Some((d, h))) => Some(h - d),
        (None, None) => None,
    };
    let (Some(floor), Some(acc)) = (floor, b.watched_accuracy) else {
        st.below_since = None;
        return None;
    };
    if acc >= floor {
        st.below_since = None;
        return None;
    }
    let since = held_below(
        &mut st.below_since,
        &mut st.last_trigger_at,
        (&t.hold, &t.cooldown),
        now,
    )?;
    Some(TrainRequest {
        trigger: TriggerKind::Threshold,
        reason: format!(
            "accuracy({}) {acc:.4} below {floor:.4} since {since}",
            t.window
        ),
        strategy: t.strategy,
        run_id: None,
        new_after: None,
    })
}

/// The first model's update: every labelled row (`rows` of them) refit from scratch.
pub fn bootstrap_request(rows: u64) -> TrainRequest {
    TrainRequest {
        trigger: TriggerKind::Bootstrap,
        reason: format!("no champion and {rows} labelled rows"),
        strategy: Strategy::RefitCombined,
        run_id: None,
        new_after: None,
    }
}

/// An update once `new_class.min_rows` rows since the last one had a label the champion
/// cannot output: it has to learn the class, and no detector needs to confirm that.
fn new_class_request(
    cfg: &TriggerConfig,
    st: &mut PolicyState,
    b: &BatchView,
    now: DateTime<Utc>,
) -> Option<TrainRequest> {
    let unseen = b.unseen_labels.saturating_sub(st.unseen_at_last_update);
    if !cfg.new_class.enabled || unseen < cfg.new_class.min_rows {
        return None;
    }
    st.last_trigger_at = Some(now);
    Some(TrainRequest {
        trigger: TriggerKind::NewClass,
        reason: format!(
            "{unseen} labelled rows since the last update have a class the champion cannot output"
        ),
        strategy: cfg.new_class.strategy,
        run_id: None,
        new_after: None,
    })
}

/// Records that an update finished, so `min_new_rows` (and the unseen labels of the
/// new-class trigger) count from here. A drift update that kept the champion learnt from the
/// rows since the drift alone, often too few to show a better model: the rows still count
/// from the update before it, so that the more-data trigger's try on every new row is not
/// put off by it.
pub fn on_update(
    st: &mut PolicyState,
    rows: u64,
    unseen_labels: u64,
    now: DateTime<Utc>,
    kept_drift_update: bool,
) {
    if !kept_drift_update {
        st.rows_at_last_update = rows;
    }
    st.unseen_at_last_update = unseen_labels;
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

    /// A batch as the policy sees it, with the events its fold noted.
    struct Shown<'a> {
        view: BatchView,
        events: &'a [MonitorEvent],
    }

    fn view<'a>(rows: u64, events: &'a [MonitorEvent], acc: Option<f64>) -> Shown<'a> {
        Shown {
            view: BatchView {
                rows,
                watched_accuracy: acc,
                champion_holdout_accuracy: Some(0.9),
                has_champion: true,
                unseen_labels: 0,
            },
            events,
        }
    }

    /// The controller's order: the fold notes the batch's drift, then the policy decides.
    fn on_batch(
        cfg: &TriggerConfig,
        st: &mut PolicyState,
        b: &Shown<'_>,
        now: DateTime<Utc>,
    ) -> Option<TrainRequest> {
        if b.view.has_champion {
            note_drift(&cfg.drift, st, b.view.rows, b.events);
        }
        super::on_batch(cfg, st, &b.view, now)
    }

    #[test]
    fn labels_the_champion_cannot_output_ask_for_an_update_before_any_detector() {
        let cfg = TriggerConfig::default();
        let mut st = PolicyState::default();
        let now = Utc::now();
        on_update(&mut st, 1_000, 30, now, false);
        let unseen = |n| {
            let mut b = view(1_050, &[], Some(0.7));
            b.view.unseen_labels = n;
            b
        };
        assert!(on_batch(&cfg, &mut st, &unseen(129), now).is_none());
        // A drift in the same batch is kept for later, not dropped.
        let events = [drift("adwin")];
        let mut both = view(1_050, &events, Some(0.7));
        both.view.unseen_labels = 130;
        let r = on_batch(&cfg, &mut st, &both, now).unwrap();
        assert_eq!(
            (r.trigger, r.strategy),
            (TriggerKind::NewClass, Strategy::Auto)
        );
        assert!(r.reason.contains("100 labelled rows"), "{}", r.reason);
        assert!(st.pending_drift.is_some());
        // Once an update learnt it, it counts from there.
        on_update(&mut st, 1_100, 130, now, false);
        assert!(on_batch(&cfg, &mut st, &unseen(130), now).is_none());
        let off = TriggerConfig {
            new_class: crate::config::triggers::NewClassTriggerConfig {
                enabled: false,
                ..Default::default()
            },
            ..TriggerConfig::default()
        };
        assert!(on_batch(&off, &mut st, &unseen(10_000), now).is_none());
    }

    #[test]
    fn bootstrap_fires_once_enough_rows_exist() {
        let cfg = TriggerConfig::default();
        let mut st = PolicyState::default();
        let now = Utc::now();
        let v = |rows| Shown {
            view: BatchView {
                rows,
                watched_accuracy: None,
                champion_holdout_accuracy: None,
                has_champion: false,
                unseen_labels: 0,
            },
            events: &[],
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
        on_update(&mut st, 1_000, 0, t0, false);
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
        on_update(&mut st, 1_500, 0, t0, false);

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
        cfg.drift.cooldown = Span::parse("1m").unwrap();
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
        on_update(&mut st, 1_300, 0, t0, false);
        let later = t0 + Duration::minutes(10);
        assert!(on_batch(&cfg, &mut st, &view(3_200, &[], None), later).is_none());
        let r = on_batch(&cfg, &mut st, &view(3_300, &[], None), later).unwrap();
        assert_eq!(r.trigger, TriggerKind::DriftRefresh);
        // Everything since the drift, not since the first update's cut-off.
        assert_eq!(r.new_after.map(|w| w.id), Some(990));
        on_update(&mut st, 3_300, 0, later, false);
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
        on_update(&mut st, 1_000, 0, t0, false);
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
        // The drift update kept the champion (it learnt from the 550 rows since the drift
        // only): more data still counts from row 1 000, and tries all the new rows at once.
        let mut kept = st.clone();
        on_update(&mut kept, 2_600, 0, later, true);
        let r = on_batch(&cfg, &mut kept, &view(2_650, &[], None), later).unwrap();
        assert_eq!(r.trigger, TriggerKind::MoreData);
        // Promoted, it counts from the drift update.
        on_update(&mut st, 2_600, 0, later, false);
        assert!(on_batch(&cfg, &mut st, &view(2_650, &[], None), later).is_none());
        assert!(on_batch(&cfg, &mut st, &view(3_600, &[], None), later).is_some());
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
        cfg.threshold.hold = Span::parse("1s").unwrap();
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

    #[test]
    fn the_estimated_trigger_holds_then_fires_once_per_cooldown() {
        let t0 = Utc::now();
        let mut cfg = EstimatedTriggerConfig {
            enabled: true,
            min_accuracy: 0.8,
            min_rows: 100,
            ..Default::default()
        };
        let mut st = PolicyState::default();
        let at = |m| t0 + Duration::minutes(m);
        // Too few rows, then above the floor: nothing, and the hold does not start.
        assert!(on_estimate(&cfg, &mut st, Some((0.5, 99)), at(0)).is_none());
        assert!(on_estimate(&cfg, &mut st, Some((0.9, 500)), at(0)).is_none());
        assert_eq!(st.estimate_below_since, None);
        assert!(on_estimate(&cfg, &mut st, Some((0.7, 500)), at(1)).is_none());
        assert!(on_estimate(&cfg, &mut st, Some((0.7, 500)), at(5)).is_none());
        let r = on_estimate(&cfg, &mut st, Some((0.7, 500)), at(6)).expect("held 5 minutes");
        assert_eq!(r.trigger, TriggerKind::Estimated);
        assert!(r.reason.contains("0.700"), "{}", r.reason);
        // The cooldown (1 h) holds the next one back.
        assert!(on_estimate(&cfg, &mut st, Some((0.7, 500)), at(20)).is_none());
        assert!(on_estimate(&cfg, &mut st, Some((0.7, 500)), at(67)).is_some());
        cfg.enabled = false;
        assert!(on_estimate(&cfg, &mut st, Some((0.1, 500)), at(200)).is_none());
    }
}
