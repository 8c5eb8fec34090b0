//! The online challenger against a champion, row by row.

use chrono::{TimeZone, Utc};

use super::testing::blank;
use super::*;

/// Row `i` of a stream whose label is `x0 > x1`, predicted by version `version` with
/// `prediction`.
fn row(i: i64, version: i64, prediction: f64) -> Outcome {
    let x0 = ((i * 37) % 101) as f32 / 50.0 - 1.0;
    let x1 = ((i * 53) % 97) as f32 / 48.0 - 1.0;
    Outcome {
        id: i,
        labeled_at: Utc.timestamp_opt(1_700_000_000 + i, 0).unwrap(),
        features: vec![x0, x1],
        prediction,
        label: u32::from(x0 > x1),
        model_version: Some(version),
    }
}

fn cfg() -> ShadowConfig {
    ShadowConfig {
        enabled: true,
        learning_rate: 0.5,
        ..ShadowConfig::default()
    }
}

/// A champion that is right on every other row (a coin, in effect) loses to a challenger
/// that learns the concept; the promotion carries its evidence and the rows it learnt.
#[test]
fn a_challenger_that_learns_is_promoted_with_its_evidence() {
    let cfg = cfg();
    let mut s = ShadowState::default();
    s.challenge(3, blank(2, 8));
    let mut promoted_at = None;
    for i in 0..3000 {
        let mut o = row(i, 3, 0.0);
        o.prediction = if i % 2 == 0 {
            f64::from(o.label)
        } else {
            1.0 - f64::from(o.label)
        };
        let right = i % 2 == 0;
        s.observe(&cfg, &o, right);
        if let Some(p) = s.take_promotion() {
            promoted_at = Some((i, p));
            break;
        }
    }
    let (at, p) = promoted_at.expect("the challenger is promoted");
    assert!(at >= cfg.min_rows as i64, "not before min_rows: {at}");
    assert_eq!(
        (at + 1) % cfg.batch_rows as i64,
        0,
        "at a mini-batch's end: {at}"
    );
    assert_eq!(p.champion_version, 3);
    assert_eq!(p.cutoff.id, at);
    assert_eq!(p.rows_learnt, at as u64 + 1);
    assert!(p.standing.p_value < cfg.alpha);
    assert!(p.standing.challenger_accuracy > p.standing.champion_accuracy);
    assert!((p.standing.champion_accuracy - 0.5).abs() < 0.01);
    assert_eq!(p.trace.len(), p.standing.rows);
    // It duels its own version from now, with fresh evidence.
    s.promoted(4);
    let online = s.online.as_ref().unwrap();
    assert_eq!((online.base_version, online.duel.len()), (4, 0));
}

/// A challenger as good as the champion (the same network, learning nothing new because
/// the champion already predicts the labels) is never promoted: a tie is no evidence.
#[test]
fn an_equal_challenger_is_never_promoted() {
    let cfg = cfg();
    let mut s = ShadowState::default();
    let net = blank(2, 8);
    s.challenge(1, net.clone());
    for i in 0..5000 {
        let mut o = row(i, 1, 0.0);
        // The champion's own prediction: the challenger, before it learnt anything, and
        // whether it was right.
        let p = s.online.as_ref().unwrap().network.predict(&o.features);
        o.prediction = p;
        let right = u32::from(p >= 0.5) == o.label;
        s.observe(&cfg, &o, right);
        assert!(s.take_promotion().is_none(), "row {i}");
    }
}

/// Rows of another version are learnt from but not compared, and the state a replay
/// reaches is the same however the rows were batched (each row is seen once, in order).
#[test]
fn other_versions_rows_teach_but_do_not_count() {
    let cfg = cfg();
    let mut s = ShadowState::default();
    s.challenge(2, blank(2, 8));
    for i in 0..100 {
        s.observe(&cfg, &row(i, 1, 0.5), false);
    }
    let online = s.online.as_ref().unwrap();
    assert_eq!(online.duel.len(), 0);
    assert_eq!(online.rows_learnt, 96);
    // A challenge from the same version keeps it; from another starts over.
    let before = s.clone();
    s.challenge(2, blank(2, 8));
    assert_eq!(s, before);
    s.challenge(5, blank(2, 8));
    assert_eq!(s.online.as_ref().unwrap().rows_learnt, 0);
    let json = serde_json::to_string(&before).unwrap();
    assert_eq!(serde_json::from_str::<ShadowState>(&json).unwrap(), before);
}

#[test]
fn settings_out_of_range_name_their_key() {
    let bad = |f: fn(&mut ShadowConfig)| {
        let mut c = ShadowConfig::default();
        f(&mut c);
        c.invalid().map(|(k, _)| k)
    };
    assert_eq!(ShadowConfig::default().invalid(), None);
    assert_eq!(bad(|c| c.learning_rate = 0.0), Some("shadow.learning_rate"));
    assert_eq!(bad(|c| c.batch_rows = 0), Some("shadow.batch_rows"));
    assert_eq!(
        bad(|c| c.min_rows = c.window_rows + 1),
        Some("shadow.min_rows")
    );
    assert_eq!(bad(|c| c.alpha = 0.7), Some("shadow.alpha"));
}

/// A restart after the promotion was registered but before the state saying so was
/// stored: the stored state still holds the promotion; the champion it became is that very
/// network, so the challenger is that version now and goes on (it does not start over).
#[test]
fn a_promotion_registered_before_a_restart_is_not_made_twice() {
    let cfg = cfg();
    let mut s = ShadowState::default();
    s.challenge(3, blank(2, 8));
    let mut stored = None;
    for i in 0..3000 {
        let mut o = row(i, 3, 0.0);
        let right = i % 2 == 0;
        o.prediction = if right {
            f64::from(o.label)
        } else {
            1.0 - f64::from(o.label)
        };
        s.observe(&cfg, &o, right);
        if s.online.as_ref().unwrap().promotion.is_some() {
            stored = Some(s.clone());
            break;
        }
    }
    let mut restored = stored.expect("a promotion");
    let p = s.take_promotion().unwrap();
    restored.challenge(4, p.network.clone());
    let online = restored.online.as_ref().unwrap();
    assert_eq!(online.base_version, 4);
    assert_eq!(online.rows_learnt, p.rows_learnt);
    assert!(online.duel.is_empty() && restored.take_promotion().is_none());
    // Another network as version 4 (an update that was not this promotion) starts over.
    let mut other = s.clone();
    other.challenge(4, blank(2, 8));
    assert_eq!(other.online.as_ref().unwrap().rows_learnt, 0);
}

/// A concept that comes back finds its model again: the champion that knew it was retired
/// when the world changed, duels the serving champion on the same rows, and is promoted back
/// (challenger `recurring`, its own weights) once it is right more often with significance;
/// the online challenger then starts over from it.
#[test]
fn a_retired_champion_comes_back_with_its_concept() {
    let cfg = ShadowConfig {
        recurring: 2,
        ..cfg()
    };
    let mut s = ShadowState::default();
    s.challenge(1, blank(2, 8));
    let mut version = 1;
    let mut promotions: Vec<(i64, String, Network)> = Vec::new();
    // x0 > x1, then its opposite, then x0 > x1 again.
    let flipped = |i: i64| (3_000..6_000).contains(&i);
    for i in 0..9_000 {
        let mut o = row(i, version, 0.0);
        if flipped(i) {
            o.label = 1 - o.label;
        }
        let champion = &s.champion.as_ref().unwrap().network;
        let p = champion.predict(&o.features);
        o.prediction = p;
        let right = champion.class_of(p) == o.label;
        s.observe(&cfg, &o, right);
        if let Some(p) = s.take_promotion() {
            assert_eq!(p.champion_version, version);
            version += 1;
            s.promoted(version);
            promotions.push((i, p.challenger, p.network));
        }
    }
    let recalled: Vec<&(i64, String, Network)> =
        promotions.iter().filter(|p| p.1 == RECURRING).collect();
    assert!(
        !recalled.is_empty(),
        "{:?}",
        promotions.iter().map(|p| (p.0, &p.1)).collect::<Vec<_>>()
    );
    let (at, _, net) = recalled[0];
    assert!(*at >= 6_000, "recalled after the concept came back: {at}");
    // The network that came back is one that served before the change.
    assert!(
        promotions
            .iter()
            .any(|p| p.0 < 3_000 && p.1 == "online" && &p.2 == net),
        "a champion of the first concept"
    );
    // It serves now, and the online challenger learns from it.
    let online = s.online.as_ref().unwrap();
    assert!(s.retired.len() <= cfg.recurring);
    assert_eq!(s.champion.as_ref().unwrap().version, version);
    assert_eq!(online.base_version, version);
}

/// Without `recurring`, no replaced champion is kept.
#[test]
fn no_retired_champion_is_kept_unless_configured() {
    let cfg = cfg();
    let mut s = ShadowState::default();
    s.challenge(1, blank(2, 8));
    s.challenge(2, blank(2, 4));
    s.observe(&cfg, &row(0, 2, 0.5), true);
    assert!(s.retired.is_empty());
    assert_eq!(s.champion.as_ref().unwrap().version, 2);
}
