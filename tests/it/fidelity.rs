//! The backtest replays what the daemon does: the same stream through the real daemon (real
//! PostgreSQL, the reference outcomes table, the daemon's scorer predicting each row) and
//! through `driftd backtest` gives the same triggers, on the same train and holdout rows,
//! with the same promotions.
//!
//! A second test gives every row a label time of its own (`labeled_at`, out of row order):
//! the feed labels what has arrived by each batch's newest prediction, as the replay does.
//! A third has a promotion where the world changes: both see it through detectors that start
//! from the new version's holdout errors.
//!
//! The feed makes training instantaneous for the daemon as it is for the backtest: it writes
//! a batch of rows, waits for the champion to score them, labels them, waits for the daemon
//! to have decided on the batch, and, while a training runs, waits for it to end.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use sqlx::Row as _;

use driftd::backtest::History;

use crate::helpers::*;

const MODEL: &str = "m";
const BATCH: usize = 100;
const BOOTSTRAP: usize = 500;
const ROWS: usize = 3_000;

const MODEL_TOML: &str = r#"
[training]
score_batch = 1000

[[models]]
name = "m"
n_features = 4
max_training_rows = 1000
[models.train]
fit_epochs = 20
finetune_epochs = 10
num_threads = 1
[models.triggers]
bootstrap_min_rows = 500
[models.triggers.drift]
min_new_rows = 200
min_rows_after_drift = 300
cooldown = "1s"
refresh_after_rows = 600
"#;

/// One update as both sides record it: trigger, promoted, and the (first, last) row ids of
/// its old, new and holdout rows.
type Update = (String, bool, [Option<(i64, i64)>; 3]);

async fn insert_unlabelled(db: &mut TestDb, h: &History, rows: std::ops::Range<usize>) {
    let ids: Vec<i64> = rows.clone().map(|i| i as i64).collect();
    let feats: Vec<String> = rows
        .clone()
        .map(|i| {
            let f: Vec<f64> = h.row(i).iter().map(|&v| f64::from(v)).collect();
            features_literal(&f)
        })
        .collect();
    sqlx::query(
        "INSERT INTO outcomes (id, model, features) \
         SELECT i, $3, f::real[] FROM UNNEST($1::bigint[], $2::text[]) AS u(i, f)",
    )
    .bind(&ids)
    .bind(&feats)
    .bind(MODEL)
    .execute(&mut db.conn)
    .await
    .unwrap();
}

/// Labels rows `rows`, row `rows[k]` at unix time `at[k]` (and, for the bootstrap rows no
/// model scored, gives them a prediction).
async fn label_at(db: &mut TestDb, h: &History, rows: &[usize], at: &[i64]) {
    let ids: Vec<i64> = rows.iter().map(|&i| i as i64).collect();
    let labels: Vec<f64> = rows.iter().map(|&i| f64::from(h.rows.y[i])).collect();
    let ats: Vec<f64> = at.iter().map(|&a| a as f64).collect();
    sqlx::query(
        "UPDATE outcomes o SET label = u.l, labeled_at = to_timestamp(u.a), \
             prediction = coalesce(o.prediction, 0.5) \
         FROM UNNEST($1::bigint[], $2::float8[], $3::float8[]) AS u(i, l, a) WHERE o.id = u.i",
    )
    .bind(&ids)
    .bind(&labels)
    .bind(&ats)
    .execute(&mut db.conn)
    .await
    .unwrap();
}

fn lag(d: &Daemon) -> Option<f64> {
    d.metric(&format!(
        "driftd_watermark_lag_seconds{{model=\"{MODEL}\"}}"
    ))
}

/// Waits until the daemon has committed rows up to `last_id` and then finished the loop
/// round that decides on them (it sets the lag gauge at the end of every round), and until
/// any training it started has ended.
async fn wait_decided(db: &mut TestDb, d: &Daemon, last_id: i64) {
    let deadline = Instant::now() + Duration::from_secs(180);
    let watermark = format!(
        "SELECT coalesce((SELECT watermark_id FROM driftd.monitor_state WHERE model = '{MODEL}'), -1)"
    );
    loop {
        let seen = db.try_scalar_i64(&watermark).await.unwrap_or(-1);
        assert!(
            seen <= last_id,
            "the daemon read past row {last_id}: {seen}"
        );
        if seen == last_id {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "batch up to {last_id} not committed: {seen}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = lag(d);
    while lag(d) == before || lag(d).is_none() {
        assert!(
            Instant::now() < deadline,
            "no loop round after row {last_id}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let running =
        "SELECT count(*) FROM driftd.training_runs WHERE status IN ('running', 'requested')";
    while db.scalar_i64(running).await > 0 {
        assert!(Instant::now() < deadline, "a training did not end");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The daemon's runs that trained. A request recorded as `coalesced` (made by a round while a
/// training ran, which the backtest's instantaneous trainings never meet) is not one: the
/// follow-up it becomes is.
async fn daemon_updates(db: &mut TestDb) -> Vec<Update> {
    let rows = sqlx::query(
        "SELECT trigger, status, old_first_id, old_last_id, new_first_id, new_last_id, \
                holdout_first_id, holdout_last_id FROM driftd.training_runs \
         WHERE status NOT IN ('skipped', 'coalesced') ORDER BY id",
    )
    .fetch_all(&mut db.conn)
    .await
    .unwrap();
    rows.iter()
        .map(|r| {
            let span = |a: &str, b: &str| {
                let first: Option<i64> = r.get(a);
                first.zip(r.get::<Option<i64>, _>(b))
            };
            let status: String = r.get("status");
            assert!(
                status == "promoted" || status == "kept",
                "a run ended {status}"
            );
            (
                r.get("trigger"),
                status == "promoted",
                [
                    span("old_first_id", "old_last_id"),
                    span("new_first_id", "new_last_id"),
                    span("holdout_first_id", "holdout_last_id"),
                ],
            )
        })
        .collect()
}

/// The daemon's updates, which must be `expected` (the backtest's).
async fn same_updates_as(db: &mut TestDb, daemon: &Daemon, expected: &[Update]) -> Vec<Update> {
    let got = daemon_updates(db).await;
    for u in &got {
        eprintln!("daemon: {u:?}");
    }
    assert_eq!(
        got,
        expected,
        "daemon (left) and backtest (right) differ; daemon log:\n{}",
        daemon.logs()
    );
    got
}

fn backtest_updates(report: &Path) -> Vec<Update> {
    let r: driftd::backtest::Report =
        serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
    std::iter::once(&r.bootstrap)
        .chain(&r.retrains)
        .map(|u| {
            (
                u.trigger.clone(),
                u.promoted,
                [u.rows.old, u.rows.new, u.rows.holdout],
            )
        })
        .collect()
}

/// The daemon's configuration for `input` (an idle loop goes round every 100 ms:
/// `wait_decided` tells a finished round by the lag gauge each round sets), the rows exactly
/// as the backtest reads them, and the updates `driftd backtest` makes on them.
async fn replayed(dir: &Path, input: &Path) -> (TestDb, std::path::PathBuf, History, Vec<Update>) {
    replayed_with(dir, input, MODEL_TOML).await
}

/// [`replayed`] with the model section `model_toml`.
async fn replayed_with(
    dir: &Path,
    input: &Path,
    model_toml: &str,
) -> (TestDb, std::path::PathBuf, History, Vec<Update>) {
    let db = shared_pg().fresh_db().await;
    let config = write_config(dir, &db.url, model_toml);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[poll]", "[poll]\nidle_poll_ms = 100");
    std::fs::write(&config, text).unwrap();
    let cfg = driftd::config::Config::load(&config, Vec::new()).unwrap();
    let opts = driftd::backtest::BacktestOptions::default();
    let h = driftd::backtest::read_history(&cfg.models[0], input, &opts).unwrap();
    assert_eq!(h.len(), ROWS);
    let report = dir.join("report.json");
    let out = Command::new(driftd_bin())
        .args(["backtest", "--config"])
        .arg(&config)
        .arg("--input")
        .arg(input)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (db, config, h, backtest_updates(&report))
}

/// Feeds the daemon as the replay sees the history: each batch of `BATCH` rows is written,
/// scored by the champion, and then every label that has arrived by the batch's newest
/// prediction (`arrival[j]`: when row `j`'s label is in) is written at that time; then the
/// round that decides on them is waited for, and after an update the cooldown (1 s of wall
/// time in the daemon, nothing next to the replay's 100 s batches) is let pass, so that it
/// holds back neither. The backtest decides nothing after its last batch: neither is it fed.
///
/// With `kills`, the daemon is killed (SIGKILL) a few milliseconds after the labels of each
/// batch it names arrive, while it reads, folds and commits them, and started again with the
/// configuration.
async fn feed(
    db: &mut TestDb,
    daemon: &mut Daemon,
    h: &History,
    arrival: &[i64],
    kills: Option<(&Path, &[usize])>,
) {
    let mut batch = 0;
    let mut labelled = vec![false; ROWS];
    // The newest label in the poll's order, (label time, id).
    let mut newest = (i64::MIN, -1i64);
    let mut start = 0;
    let mut end = BOOTSTRAP;
    while end < ROWS {
        let runs = "SELECT count(*) FROM driftd.training_runs";
        // Before the daemon's migrations, no run.
        let runs_before = db.try_scalar_i64(runs).await.unwrap_or(0);
        insert_unlabelled(db, h, start..end).await;
        let unscored = format!(
            "SELECT count(*) FROM outcomes WHERE id >= {start} AND id < {end} AND prediction IS NULL"
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        // The bootstrap rows have no model to score them.
        while start > 0 && db.scalar_i64(&unscored).await > 0 {
            assert!(Instant::now() < deadline, "rows {start}..{end} not scored");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let now = h.rows.ts[end - 1];
        let due: Vec<usize> = (0..end)
            .filter(|&j| !labelled[j] && arrival[j] <= now)
            .collect();
        assert!(!due.is_empty(), "some label arrives during every batch");
        for &j in &due {
            labelled[j] = true;
            newest = newest.max((arrival[j], j as i64));
        }
        let at: Vec<i64> = due.iter().map(|&j| arrival[j]).collect();
        label_at(db, h, &due, &at).await;
        if let Some((config, _)) = kills.filter(|(_, b)| b.contains(&batch)) {
            tokio::time::sleep(Duration::from_millis(3 * (batch as u64 % 11))).await;
            daemon.kill9();
            *daemon = Daemon::spawn(config);
        }
        batch += 1;
        wait_decided(db, daemon, newest.1).await;
        if start == 0 || db.scalar_i64(runs).await > runs_before {
            tokio::time::sleep(Duration::from_millis(1_300)).await;
        }
        start = end;
        end = start + BATCH;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_and_the_backtest_make_the_same_updates_on_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("stream.csv");
    // An abrupt change at row 1 200: a drift update, its refresh, and their promotions.
    let spec = driftd::backtest::generate_spec(ROWS, 4, 5);
    driftd::backtest::generate_csv(&spec, &input).unwrap();
    let (mut db, config, h, expected) = replayed(dir.path(), &input).await;
    assert!(h.label_ts.is_none());
    let mut daemon = Daemon::spawn(&config);
    // Each label arrives with its own row's prediction.
    feed(&mut db, &mut daemon, &h, &h.rows.ts, None).await;
    let got = same_updates_as(&mut db, &daemon, &expected).await;
    let triggers: Vec<&str> = got.iter().map(|u| u.0.as_str()).collect();
    assert_eq!(triggers[0], "bootstrap");
    assert!(triggers.contains(&"drift"), "{triggers:?}");
    assert!(got.iter().filter(|u| u.1).count() >= 2, "{got:?}");
}

/// The more-data trigger promotes version 2 at row 1 200, just where the world changes. Its
/// detectors start from its holdout errors, so they see the change at once (restarted empty,
/// they would have only the new error rate to go on: the release before them first saw it
/// 1 000 rows later), in the daemon as in the backtest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_that_comes_with_a_promotion_is_seen_at_once_by_both() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("stream.csv");
    let spec = driftd::backtest::generate_spec(ROWS, 4, 5);
    assert_eq!(spec.abrupt_at, Some(1_200));
    driftd::backtest::generate_csv(&spec, &input).unwrap();
    let toml =
        format!("{MODEL_TOML}[models.triggers.more_data]\nenabled = true\nevery_rows = 700\n");
    let (mut db, config, h, expected) = replayed_with(dir.path(), &input, &toml).await;
    let mut daemon = Daemon::spawn(&config);
    feed(&mut db, &mut daemon, &h, &h.rows.ts, None).await;
    let got = same_updates_as(&mut db, &daemon, &expected).await;
    let triggers: Vec<(&str, bool)> = got.iter().map(|u| (u.0.as_str(), u.1)).collect();
    assert_eq!(
        triggers[..3],
        [("bootstrap", true), ("more_data", true), ("drift", true)],
        "{got:?}"
    );
    // The more-data version serves from row 1 200; its detectors fire within 100 rows.
    let first: i64 = db
        .scalar_i64(
            "SELECT coalesce(min(row_index), -1) FROM driftd.drift_events \
             WHERE model = 'm' AND kind = 'drift'",
        )
        .await;
    assert!(
        (1_200..1_300).contains(&first),
        "first drift at row {first}"
    );
}

/// Adds a `labeled_at` column to a generated CSV: row `i`'s label arrives 0 to 249 s (rows)
/// after its prediction, in a fixed pseudo-random pattern, so labels come out of row order.
fn with_label_times(input: &Path, output: &Path) {
    let text = std::fs::read_to_string(input).unwrap();
    let mut lines = text.lines();
    let mut out = format!("{},labeled_at\n", lines.next().unwrap());
    for (i, line) in lines.enumerate() {
        let ts: i64 = line.rsplit(',').next().unwrap().parse().unwrap();
        let delay = (i as i64 * 7_919) % 250;
        out.push_str(&format!("{line},{}\n", ts + delay));
    }
    std::fs::write(output, out).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_their_own_label_times_the_daemon_and_the_backtest_make_the_same_updates() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.csv");
    let input = dir.path().join("stream.csv");
    let spec = driftd::backtest::generate_spec(ROWS, 4, 5);
    driftd::backtest::generate_csv(&spec, &plain).unwrap();
    with_label_times(&plain, &input);
    let (mut db, config, h, expected) = replayed(dir.path(), &input).await;
    let label_ts = h.label_ts.clone().expect("the labeled_at column is read");
    // When the backtest sees each label: the bootstrap's when the first model is fit.
    let fit_at = h.rows.ts[BOOTSTRAP - 1];
    let arrival: Vec<i64> = (0..ROWS)
        .map(|j| {
            if j < BOOTSTRAP {
                label_ts[j].min(fit_at)
            } else {
                label_ts[j]
            }
        })
        .collect();
    let mut daemon = Daemon::spawn(&config);
    feed(&mut db, &mut daemon, &h, &arrival, None).await;
    let got = same_updates_as(&mut db, &daemon, &expected).await;
    assert!(got.len() >= 2, "{got:?}");
}

/// The daemon's shadow versions, checked for their evidence: the newest row each learnt.
async fn daemon_shadow_cutoffs(db: &mut TestDb) -> Vec<i64> {
    let rows = sqlx::query(
        "SELECT cutoff_id, strategy, holdout_metrics FROM driftd.model_versions \
         WHERE model = 'm' AND trigger = 'shadow' ORDER BY version",
    )
    .fetch_all(&mut db.conn)
    .await
    .unwrap();
    for r in &rows {
        assert_eq!(r.get::<String, _>("strategy"), "online");
        let sqlx::types::Json(m): sqlx::types::Json<serde_json::Value> = r.get("holdout_metrics");
        let s = &m["shadow"];
        assert!(
            s["challenger_accuracy"].as_f64() > s["champion_accuracy"].as_f64()
                && s["p_value"].as_f64().unwrap() < 0.01,
            "{m}"
        );
    }
    rows.iter().map(|r| r.get("cutoff_id")).collect()
}

/// With `[models.shadow]` on, the online challenger learns from every labelled row and
/// replaces the champion when it is right more often on the same rows: the daemon, which
/// reads the rows in its own polls, promotes it after the same rows as the backtest, with
/// the same weights (its later trainings and their holdouts are the same too), and records
/// it as a version with trigger `shadow` and its evidence.
///
/// Then the same again, killing the daemon (SIGKILL) while it reads every third batch that
/// makes no update: each row advances the challenger exactly once, so the promotions are
/// the same and the stored challenger at the end is the uninterrupted run's, bit for bit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_and_the_backtest_make_the_same_shadow_promotions_even_through_kill_dash_nine() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("stream.csv");
    let spec = driftd::backtest::generate_spec(ROWS, 4, 5);
    driftd::backtest::generate_csv(&spec, &input).unwrap();
    let toml = format!("{MODEL_TOML}[models.shadow]\nenabled = true\n");
    let (mut db, config, h, expected) = replayed_with(dir.path(), &input, &toml).await;
    let report: driftd::backtest::Report =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    let shadow_expected: Vec<i64> = report
        .shadow_promotions
        .iter()
        .map(|p| p.trained_upto as i64)
        .collect();
    assert!(
        !shadow_expected.is_empty(),
        "the backtest promoted no challenger"
    );
    let mut daemon = Daemon::spawn(&config);
    feed(&mut db, &mut daemon, &h, &h.rows.ts, None).await;
    same_updates_as(&mut db, &daemon, &expected).await;
    let cutoffs = daemon_shadow_cutoffs(&mut db).await;
    assert_eq!(cutoffs, shadow_expected, "daemon log:\n{}", daemon.logs());
    let series =
        daemon.metric(r#"driftd_shadow_accuracy{challenger="online",model="m",window="500"}"#);
    assert!(series.is_some(), "the shadow accuracy is exported");
    let uninterrupted = db.state_json(MODEL).await["shadow"].clone();
    assert!(
        uninterrupted["online"]["network"].is_object(),
        "{uninterrupted}"
    );
    drop(daemon);

    // Kill only where the backtest made no update (a killed training is a failed run).
    let busy: Vec<usize> = std::iter::once(&report.bootstrap)
        .chain(&report.retrains)
        .map(|r| r.index)
        .chain(report.shadow_promotions.iter().map(|p| p.index))
        .collect();
    let quiet: Vec<usize> = (1..(ROWS - BOOTSTRAP) / BATCH)
        .filter(|b| !busy.contains(&(BOOTSTRAP + b * BATCH - 1)))
        .collect();
    let kills: Vec<usize> = quiet.iter().copied().step_by(3).collect();
    assert!(kills.len() >= 5, "{kills:?}");
    let dir2 = tempfile::tempdir().unwrap();
    let (mut db2, config2, _, _) = replayed_with(dir2.path(), &input, &toml).await;
    let mut daemon = Daemon::spawn(&config2);
    feed(
        &mut db2,
        &mut daemon,
        &h,
        &h.rows.ts,
        Some((&config2, &kills)),
    )
    .await;
    same_updates_as(&mut db2, &daemon, &expected).await;
    assert_eq!(daemon_shadow_cutoffs(&mut db2).await, shadow_expected);
    assert_eq!(
        db2.state_json(MODEL).await["shadow"],
        uninterrupted,
        "the challenger after {} kills differs from the uninterrupted run's",
        kills.len()
    );
}
