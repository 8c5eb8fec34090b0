use chrono::{Duration, TimeZone};

use super::*;
use crate::config::Config;
use crate::feature_drift::FeatureStat;

fn model(extra: &str) -> ModelConfig {
    let text = format!(
        r#"
[database]
url = "postgres://x@localhost/y"
[[models]]
name = "m"
n_features = 2
max_training_rows = 1000
{extra}
"#
    );
    Config::from_toml_str(&text, Vec::new())
        .unwrap()
        .models
        .remove(0)
}

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
}

fn wm(id: i64) -> Watermark {
    Watermark {
        labeled_at: t(id),
        id,
    }
}

fn outcome(id: i64, correct: bool) -> Outcome {
    Outcome {
        id,
        labeled_at: t(id),
        features: vec![0.0, 1.0],
        prediction: 0.9,
        label: u32::from(correct),
        model_version: Some(1),
    }
}

fn controller(extra: &str) -> Controller {
    let cfg = model(extra);
    let state = ModelState::new(&cfg);
    Controller::new(cfg, state, Watermark::start(), 7)
}

fn feed(
    c: &mut Controller,
    ids: std::ops::Range<i64>,
    correct: impl Fn(i64) -> bool,
) -> Vec<MonitorEvent> {
    let rows: Vec<Outcome> = ids.map(|i| outcome(i, correct(i))).collect();
    let to = Watermark {
        labeled_at: rows.last().unwrap().labeled_at,
        id: rows.last().unwrap().id,
    };
    let folded = c.fold(&rows, to);
    c.commit(folded)
}

fn plan(d: Decision) -> TrainPlan {
    match d {
        Decision::Train(p) => p,
        other => panic!("expected a training, got {other:?}"),
    }
}

#[test]
fn a_folded_batch_is_not_the_state_until_committed() {
    let mut c = controller("");
    let rows: Vec<Outcome> = (1..=10).map(|i| outcome(i, true)).collect();
    let folded = c.fold(&rows, wm(10));
    assert_eq!(
        (c.state().monitor.rows, c.watermark()),
        (0, Watermark::start())
    );
    assert_eq!(folded.state.monitor.rows, 10);
    c.commit(folded);
    assert_eq!((c.state().monitor.rows, c.watermark()), (10, wm(10)));
}

#[test]
fn the_bootstrap_reads_every_row_and_seeds_count_up() {
    let mut c = controller("[models.triggers]\nbootstrap_min_rows = 50");
    feed(&mut c, 1..40, |_| true);
    assert!(c.on_batch(t(40)).is_empty(), "below bootstrap_min_rows");
    feed(&mut c, 40..60, |_| true);
    let p = plan(c.on_batch(t(60)).remove(0));
    assert_eq!(p.trigger, TriggerKind::Bootstrap);
    assert_eq!((p.split, p.upto, p.seed), (None, wm(59), 7));
    assert_eq!(p.old_rows(), None);
    assert_eq!(p.new_rows(), (Watermark::start(), wm(59)));
    assert_eq!(p.cutoff(59, Watermark::start()), wm(59));
    let champion = ChampionView {
        version: 1,
        holdout_accuracy: Some(0.9),
        cutoff: wm(59),
        classes: 2,
    };
    assert_eq!(c.on_training_finished(Some(champion), t(61)), None);
    assert_eq!(c.champion(), Some(&champion));
    assert_eq!(c.state().policy.rows_at_last_update, 59);
    // The next plan has the next seed and splits at the champion's cut-off.
    feed(&mut c, 60..70, |_| true);
    assert!(c.on_batch(t(70)).is_empty());
    let req = manual_request(c.config(), 5, None, "because".into());
    let p = plan(c.on_request(req));
    assert_eq!((p.seed, p.split, p.upto), (8, Some(wm(59)), wm(69)));
    assert_eq!(p.old_rows(), Some((Watermark::start(), wm(59))));
    assert_eq!(p.new_rows(), (wm(59), wm(69)));
    assert_eq!((p.run_id, p.strategy), (Some(5), Strategy::Auto));
    assert_eq!(p.champion_version, Some(1));
    assert_eq!(
        p.cutoff(0, wm(59)),
        wm(59),
        "no new rows: the cut-off stays"
    );
}

#[test]
fn requests_during_a_training_coalesce_into_one_follow_up() {
    let mut c = controller("[[models.triggers.schedules]]\ncron = \"0 0 3 * * Mon\"");
    c.set_champion(Some(ChampionView {
        version: 3,
        holdout_accuracy: None,
        cutoff: Watermark::start(),
        classes: 2,
    }));
    feed(&mut c, 1..10, |_| true);
    let first = plan(c.on_request(schedule_request(c.config(), 0).unwrap()));
    assert_eq!(first.trigger, TriggerKind::Schedule);
    assert_eq!(first.reason, "schedule `0 0 3 * * Mon` (UTC)");
    assert!(c.is_training());
    let manual = manual_request(c.config(), 42, Some(Strategy::RefitNew), "ops".into());
    assert_eq!(c.on_request(manual.clone()), Decision::Coalesce(manual));
    let sched = schedule_request(c.config(), 0).unwrap();
    assert_eq!(c.on_request(sched.clone()), Decision::Coalesce(sched));
    assert!(schedule_request(c.config(), 1).is_none());
    feed(&mut c, 10..20, |_| true);
    // The last request wins, with no run row of its own; it reads up to the newest row.
    let next = plan(c.on_training_finished(None, t(30)).unwrap());
    assert_eq!(
        (next.trigger, next.run_id, next.upto),
        (TriggerKind::Schedule, None, wm(19))
    );
    assert_eq!(c.on_training_finished(None, t(31)), None);
    assert!(!c.is_training());
}

#[test]
fn a_drift_update_learns_from_the_detection_on() {
    let mut c = controller(
        "[models.triggers.drift]\nmin_new_rows = 100\nmin_rows_after_drift = 100\ncooldown = \"1s\"\nrefresh_after_rows = 300",
    );
    c.set_champion(Some(ChampionView {
        version: 1,
        holdout_accuracy: Some(0.9),
        cutoff: wm(0),
        classes: 2,
    }));
    let mut drift = None;
    let mut id = 1;
    // Right, then wrong on every row: ADWIN sees the change.
    while drift.is_none() && id < 5_000 {
        feed(&mut c, id..id + 50, |i| i < 1_000);
        for d in c.on_batch(t(id + 50)) {
            drift = Some(plan(d));
        }
        id += 50;
    }
    let p = drift.expect("a drift update");
    assert_eq!(p.trigger, TriggerKind::Drift);
    let split = p.split.unwrap();
    assert!(
        split.id >= 1_000 && split.id < p.upto.id,
        "{split:?} {:?}",
        p.upto
    );
    assert!(p.upto.id - split.id >= 100, "min_rows_after_drift");
    c.on_training_finished(None, t(id));
    // The refresh learns from the same detection on, once 300 more rows are in.
    let mut refresh = None;
    while refresh.is_none() && id < 10_000 {
        feed(&mut c, id..id + 50, |_| false);
        for d in c.on_batch(t(id + 50)) {
            refresh = Some(plan(d));
        }
        id += 50;
    }
    let r = refresh.expect("a refresh");
    assert_eq!(
        (r.trigger, r.split),
        (TriggerKind::DriftRefresh, Some(split))
    );
    assert!(r.upto.id - p.upto.id >= 300);
}

fn report(ratio: f64) -> FeatureDriftReport {
    FeatureDriftReport {
        features: vec![
            FeatureStat {
                feature: "a".into(),
                psi: 1.0,
                ks: 0.5,
                ks_pvalue: 0.0,
                js: 0.5,
                wasserstein: 1.0,
                drifted: true,
                chi2: None,
                chi2_pvalue: None,
                unseen_share: None,
            },
            FeatureStat {
                feature: "b".into(),
                psi: 0.0,
                ks: 0.0,
                ks_pvalue: 1.0,
                js: 0.0,
                wasserstein: 0.0,
                drifted: ratio > 0.5,
                chi2: None,
                chi2_pvalue: None,
                unseen_share: None,
            },
        ],
        drifted_ratio: ratio,
        n_reference: 100,
        n_recent: 100,
    }
}

#[test]
fn feature_drift_is_checked_every_interval_and_triggers_after_the_cooldown() {
    let mut c = controller(
        "[models.triggers.drift]\ncooldown = \"10m\"\n[models.feature_drift]\ncheck_interval = \"1m\"\ndrifted_ratio_trigger = 0.5",
    );
    c.set_champion(Some(ChampionView {
        version: 1,
        holdout_accuracy: None,
        cutoff: Watermark::start(),
        classes: 2,
    }));
    // Labelled rows the champion has not seen: an update has something to learn from.
    feed(&mut c, 1..20, |_| true);
    assert!(c.feature_check_due(t(0)));
    assert!(!c.feature_check_due(t(59)));
    assert!(c.feature_check_due(t(60)));
    assert!(
        c.on_feature_drift(&report(0.4), t(60)).is_empty(),
        "below the ratio"
    );
    let p = plan(c.on_feature_drift(&report(1.0), t(60)).remove(0));
    assert_eq!(p.trigger, TriggerKind::FeatureDrift);
    assert_eq!(p.reason, "100% of features drifted: a, b");
    c.on_training_finished(None, t(70));
    assert!(
        c.on_feature_drift(&report(1.0), t(70) + Duration::seconds(599))
            .is_empty(),
        "cooling down"
    );
    assert_eq!(c.on_feature_drift(&report(1.0), t(670)).len(), 1);
    // The baselines make no feature-drift checks.
    let mut never = controller("[models.feature_drift]\ndrifted_ratio_trigger = 0.5")
        .with_mode(TriggerMode::Never);
    assert!(!never.feature_check_due(t(0)));
}

#[test]
fn the_periodic_baseline_counts_rows_since_the_last_update() {
    let mut c = controller("").with_mode(TriggerMode::EveryRows(100));
    c.set_champion(Some(ChampionView {
        version: 1,
        holdout_accuracy: None,
        cutoff: Watermark::start(),
        classes: 2,
    }));
    feed(&mut c, 1..100, |_| true);
    assert!(c.on_batch(t(100)).is_empty());
    feed(&mut c, 100..101, |_| true);
    let p = plan(c.on_batch(t(101)).remove(0));
    assert_eq!(
        (p.trigger, p.reason.as_str()),
        (TriggerKind::Periodic, "100 rows since the last update")
    );
    c.on_training_finished(None, t(102));
    feed(&mut c, 101..150, |_| true);
    assert!(c.on_batch(t(150)).is_empty());
}

#[test]
fn row_ranges_name_the_holdout_as_the_newest_new_rows() {
    let ds = |ids: std::ops::Range<i64>| Dataset {
        x: vec![0.0; ids.clone().count()],
        n_features: 1,
        y: vec![0.0; ids.clone().count()],
        ts: ids.clone().collect(),
        ids: ids.collect(),
    };
    let r = RowRanges::of(&ds(0..10), &ds(10..30), 5);
    assert_eq!(r.old, Some((0, 9)));
    assert_eq!(r.new, Some((10, 29)));
    assert_eq!(r.holdout, Some((25, 29)));
    let r = RowRanges::of(&Dataset::empty(1), &ds(0..3), 0);
    assert_eq!((r.old, r.holdout), (None, None));
}

#[test]
fn a_request_with_nothing_new_is_skipped_with_why_and_never_trains() {
    let mut c = controller("");
    // No row at all, no champion: nothing to fit.
    let req = manual_request(c.config(), 1, None, "test".into());
    match c.on_request(req.clone()) {
        Decision::Skip(s) => assert!(s.why.contains("no labelled rows yet"), "{}", s.why),
        other => panic!("expected a skip, got {other:?}"),
    }
    assert!(!c.is_training());
    feed(&mut c, 1..30, |_| true);
    let p = plan(c.on_request(req.clone()));
    // The training promoted a champion trained up to the watermark; a request coalesced
    // meanwhile becomes a follow-up with nothing new: skipped, not trained.
    assert_eq!(c.on_request(req.clone()), Decision::Coalesce(req.clone()));
    let champion = ChampionView {
        version: 1,
        holdout_accuracy: Some(0.9),
        cutoff: p.upto,
        classes: 2,
    };
    match c.on_training_finished(Some(champion), t(100)) {
        Some(Decision::Skip(s)) => assert!(s.why.contains("nothing new since v1"), "{}", s.why),
        other => panic!("expected a skip, got {other:?}"),
    }
    assert!(!c.is_training());
    // Strategy none still runs (it reads no new rows).
    let none = TrainRequest {
        strategy: Strategy::None,
        ..req.clone()
    };
    plan(c.on_request(none));
    c.on_training_finished(None, t(110));
    // New rows: the request trains.
    feed(&mut c, 30..40, |_| true);
    plan(c.on_request(req));
}

#[test]
fn a_manual_refit_combined_with_nothing_new_trains_on_old_rows_and_others_are_skipped() {
    let mut c = controller("");
    feed(&mut c, 1..30, |_| true);
    let cfg = c.config().clone();
    let req = |strategy| manual_request(&cfg, 1, Some(strategy), "test".into());
    let first = req(Strategy::RefitCombined);
    let p = plan(c.on_request(first));
    let champion = ChampionView {
        version: 1,
        holdout_accuracy: Some(0.9),
        cutoff: p.upto,
        classes: 2,
    };
    assert_eq!(c.on_training_finished(Some(champion), t(100)), None);
    // Nothing new: another strategy is skipped, naming the one that would train.
    let finetune = req(Strategy::FinetuneCombined);
    match c.on_request(finetune) {
        Decision::Skip(s) => {
            assert!(s.why.contains("nothing new since v1"), "{}", s.why);
            assert!(
                s.why
                    .contains("driftd retrain --model m --strategy refit_combined"),
                "{}",
                s.why
            );
        }
        other => panic!("expected a skip, got {other:?}"),
    }
    assert!(!c.is_training());
    // refit_combined trains on the old rows: every row is old, none is new.
    let p = plan(c.on_request(req(Strategy::RefitCombined)));
    assert_eq!(p.strategy, Strategy::RefitCombined);
    assert_eq!(p.split, Some(champion.cutoff));
    assert_eq!(p.upto, champion.cutoff);
    assert_eq!(p.old_rows(), Some((Watermark::start(), champion.cutoff)));
    c.on_training_finished(None, t(110));
    // An automatic request with refit_combined and nothing new is still skipped.
    let auto = TrainRequest {
        trigger: TriggerKind::Schedule,
        run_id: None,
        ..req(Strategy::RefitCombined)
    };
    assert!(matches!(c.on_request(auto), Decision::Skip(_)));
}

#[test]
fn a_low_estimate_of_scored_rows_requests_an_update_once_it_held() {
    let mut c = controller(
        "[models.triggers.estimated]\nenabled = true\nmin_accuracy = 0.8\nmin_rows = 50\n\
         hold = \"1m\"\nstrategy = \"finetune_combined\"",
    );
    c.set_champion(Some(ChampionView {
        version: 1,
        holdout_accuracy: Some(0.9),
        cutoff: wm(10),
        classes: 2,
    }));
    feed(&mut c, 1..21, |_| true);
    // Version 1's holdout calibration: whatever it says, it is right 60 % of the time.
    c.calibrate(
        1,
        Some(Calibration::Isotonic {
            x: vec![0.0, 0.5, 1.0],
            y: vec![0.4, 0.6, 0.6],
        }),
    );
    let scored = |from: i64, n: i64| -> Vec<ScoredRow> {
        (from..from + n)
            .map(|id| ScoredRow {
                id,
                created_at: t(100 + id),
                score: 0.95,
                version: Some(1),
            })
            .collect()
    };
    let rows = scored(1, 100);
    let folded = c.fold_scored(&rows, wm(100));
    assert!(folded
        .expected
        .iter()
        .all(|e| e.is_some_and(|e| (e - 0.6).abs() < 1e-9)));
    assert_eq!(c.estimates().rows, 0, "not in force until committed");
    c.commit_scored(folded);
    assert!(c.on_batch(t(200)).is_empty(), "the hold starts");
    assert_eq!(c.scored_cursor(), wm(100));
    let (acc, n) = c.estimates().window("1000").unwrap();
    assert!((acc - 0.6).abs() < 1e-6 && n == 100, "{acc} over {n}");
    let rows = scored(101, 10);
    let folded = c.fold_scored(&rows, wm(110));
    c.commit_scored(folded);
    assert!(c.on_batch(t(230)).is_empty(), "still holding");
    let p = plan(c.on_batch(t(261)).remove(0));
    assert_eq!(
        (p.trigger, p.strategy),
        (TriggerKind::Estimated, Strategy::FinetuneCombined)
    );
    assert!(
        p.reason.contains("estimated accuracy 0.600"),
        "{}",
        p.reason
    );
}

#[test]
fn a_restart_neither_reuses_a_seed_nor_loses_a_follow_up() {
    let mut c = controller("[models.triggers]\nbootstrap_min_rows = 10");
    feed(&mut c, 1..21, |_| true);
    let first = plan(c.on_request(manual_request(&c.cfg, 1, None, "a".into())));
    // A request while it trains is the follow-up; the process stops before it runs.
    assert!(matches!(
        c.on_request(manual_request(&c.cfg, 2, None, "b".into())),
        Decision::Coalesce(_)
    ));
    let stored: ModelState =
        serde_json::from_str(&serde_json::to_string(c.state()).unwrap()).unwrap();
    let mut again = Controller::new(c.cfg.clone(), stored, c.watermark(), 7);
    let next = plan(again.resume().expect("the stored follow-up"));
    assert_eq!(next.reason, "b");
    assert_ne!(
        next.seed, first.seed,
        "seeds go on from the stored plan count"
    );
    assert!(again.resume().is_none(), "once");
}

#[test]
fn the_next_deadline_is_the_earliest_hold_cooldown_or_check() {
    let threshold = "[models.triggers.threshold]\nenabled = true\nmin_accuracy = 0.9\n\
                     hold = \"5m\"\ncooldown = \"1h\"\n";
    let mut c = controller(threshold);
    assert_eq!(c.next_deadline(), None, "nothing waits on time");
    // Below the floor since t(60): the hold ends at t(360).
    c.state.policy.below_since = Some(t(60));
    assert_eq!(c.next_deadline(), Some(t(360)));
    // An update at t(100): the cooldown holds the trigger back until t(3700).
    c.state.policy.last_trigger_at = Some(t(100));
    assert_eq!(c.next_deadline(), Some(t(3_700)));
    // A feature check every 10 minutes comes first; never checked, it is due at once.
    let mut c = controller(&format!(
        "{threshold}[models.feature_drift]\ncheck_interval = \"10m\""
    ));
    assert_eq!(c.next_deadline(), Some(DateTime::UNIX_EPOCH));
    assert!(c.feature_check_due(t(0)));
    c.state.policy.below_since = Some(t(60));
    c.state.policy.last_trigger_at = Some(t(100));
    assert_eq!(c.next_deadline(), Some(t(600)));
    assert_eq!(
        controller(threshold)
            .with_mode(TriggerMode::Never)
            .next_deadline(),
        None
    );
}

/// Rows of a concept (`x0 > x1`) that champion v1 gets right on every other row only.
fn concept_rows(ids: std::ops::Range<i64>) -> Vec<Outcome> {
    ids.map(|i| {
        let x0 = ((i * 37) % 101) as f32 / 50.0 - 1.0;
        let x1 = ((i * 53) % 97) as f32 / 48.0 - 1.0;
        let label = u32::from(x0 > x1);
        let right = i % 2 == 0;
        Outcome {
            id: i,
            labeled_at: t(i),
            features: vec![x0, x1],
            prediction: if right == (label == 1) { 0.9 } else { 0.1 },
            label,
            model_version: Some(1),
        }
    })
    .collect()
}

fn shadowed() -> Controller {
    let mut c = controller(
        "[models.shadow]\nenabled = true\nlearning_rate = 0.5\n[models.triggers.drift]\nenabled = false",
    );
    c.set_champion(Some(ChampionView {
        version: 1,
        holdout_accuracy: Some(0.5),
        cutoff: Watermark::start(),
        classes: 2,
    }));
    c.challenge(1, Some(crate::shadow::testing::blank(2, 8)));
    c
}

/// Feeds `rows` in polls of `batch` rows; returns the decisions after each poll.
fn poll_in(c: &mut Controller, rows: &[Outcome], batch: usize) -> Vec<Decision> {
    let mut decisions = Vec::new();
    for chunk in rows.chunks(batch) {
        let last = chunk.last().unwrap();
        let folded = c.fold(
            chunk,
            Watermark {
                labeled_at: last.labeled_at,
                id: last.id,
            },
        );
        c.commit(folded);
        decisions.extend(c.on_batch(last.labeled_at));
    }
    decisions
}

/// The shadow challenger's promotion comes from the core: the same rows in polls of 7 or of
/// 250 rows give the same promotion (the same weights, cut-off and evidence); a request while
/// it is carried out coalesces, and the challenger then duels the version it became.
#[test]
fn a_shadow_promotion_does_not_depend_on_the_poll_size_and_requests_coalesce_behind_it() {
    let rows = concept_rows(1..1001);
    let promotion = |batch| {
        let mut c = shadowed();
        let promotes: Vec<_> = poll_in(&mut c, &rows[..400], batch)
            .into_iter()
            .filter_map(|d| match d {
                Decision::Promote(p) => Some(*p),
                _ => None,
            })
            .collect();
        (c, promotes)
    };
    let (mut small, a) = promotion(7);
    let (_, b) = promotion(250);
    assert_eq!(a.len(), 1, "one promotion");
    assert_eq!(a, b, "the same promotion whatever the poll size");
    let p = &a[0];
    assert!(p.standing.challenger_accuracy > p.standing.champion_accuracy + 0.2);
    assert_eq!(p.champion_version, 1);
    assert!(small.is_training(), "a promotion is in flight");
    let manual = manual_request(small.config(), 9, None, "operator".into());
    assert!(matches!(small.on_request(manual), Decision::Coalesce(_)));
    let v2 = ChampionView {
        version: 2,
        holdout_accuracy: Some(p.standing.challenger_accuracy),
        cutoff: p.cutoff,
        classes: 2,
    };
    let next = small.on_training_finished(Some(v2), t(400));
    assert!(matches!(next, Some(Decision::Train(ref plan)) if plan.champion_version == Some(2)));
    let online = small.state().shadow.online.as_ref().unwrap();
    assert_eq!((online.base_version, online.duel.len()), (2, 0));
    // Stored and restored, the challenger goes on from where it was.
    let json = serde_json::to_string(small.state()).unwrap();
    let back: ModelState = serde_json::from_str(&json).unwrap();
    assert_eq!(back.shadow, small.state().shadow);
}

/// Without `[models.shadow]` nothing is challenged, and a baseline replay never is.
#[test]
fn no_challenger_unless_configured() {
    let mut c = controller("");
    c.challenge(1, Some(crate::shadow::testing::blank(2, 8)));
    assert!(c.state().shadow.online.is_none());
    let mut baseline = controller("[models.shadow]\nenabled = true").with_mode(TriggerMode::Never);
    baseline.challenge(1, Some(crate::shadow::testing::blank(2, 8)));
    assert!(baseline.state().shadow.online.is_none());
}

/// A drift is noted as its batch is folded, so it is stored with the batch: a driver killed
/// after the commit, before it asked the core for its decisions, makes the same drift
/// update after the restart (the detectors are past that drift and do not report it again).
#[test]
fn a_drift_noted_in_a_committed_batch_survives_a_restart_before_the_decision() {
    let extra = "[models.triggers.drift]\nmin_new_rows = 100\nmin_rows_after_drift = 200\ncooldown = \"1s\"";
    let champion = ChampionView {
        version: 1,
        holdout_accuracy: Some(0.9),
        cutoff: wm(0),
        classes: 2,
    };
    let mut c = controller(extra);
    c.set_champion(Some(champion));
    let mut id = 1;
    // Right, then wrong on every row, up to the batch where ADWIN reports it.
    let mut drifted = false;
    while !drifted && id < 5_000 {
        let events = feed(&mut c, id..id + 50, |i| i < 1_000);
        drifted = events
            .iter()
            .any(|e| matches!(e, MonitorEvent::Drift { .. }));
        id += 50;
        if !drifted {
            assert!(c.on_batch(t(id)).is_empty());
        }
    }
    assert!(drifted, "ADWIN saw the change");
    assert!(
        c.state().policy.pending_drift.is_some(),
        "noted by the fold"
    );
    // The uninterrupted driver decides now; the killed one restarts from the stored state.
    let mut restarted = Controller::new(
        model(extra),
        serde_json::from_value(serde_json::to_value(c.state()).unwrap()).unwrap(),
        c.watermark(),
        7,
    );
    restarted.set_champion(Some(champion));
    let updates = |ctl: &mut Controller| {
        let mut i = id;
        let mut got = ctl.on_batch(t(i)).into_iter().next().map(plan);
        while got.is_none() && i < 5_000 {
            feed(ctl, i..i + 50, |_| false);
            i += 50;
            got = ctl.on_batch(t(i)).into_iter().next().map(plan);
        }
        got.map(|p| (p.trigger, p.split, p.upto))
    };
    let expected = updates(&mut c);
    assert_eq!(expected.map(|e| e.0), Some(TriggerKind::Drift));
    assert_eq!(updates(&mut restarted), expected);
}
