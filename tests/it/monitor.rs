//! The monitor foundation against a real PostgreSQL: accuracy, label delay, late commits,
//! bad rows, several models, kill -9, server restarts, config errors, SIGTERM.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use driftd::config::Config;
use driftd::monitor::MonitorState;
use driftd::outcomes::{validate, RawOutcome};
use sqlx::{Connection, Executor, PgConnection};

use crate::helpers::*;

const WAIT: Duration = Duration::from_secs(60);

/// What an uninterrupted, in-process run makes of `rows` (which are in label-time order).
pub(crate) fn reference_state(
    config_text: &str,
    model: &str,
    rows: &[Row],
    first_id: i64,
) -> MonitorState {
    let cfg = Config::from_toml_str(config_text, Vec::new()).unwrap();
    let mcfg = cfg.model(model).unwrap();
    let mut st = MonitorState::new(mcfg);
    for (i, r) in rows.iter().enumerate() {
        let raw = RawOutcome {
            id: first_id + i as i64,
            labeled_at: Utc
                .timestamp_opt(BASE_TS + r.labeled_at_secs.unwrap(), 0)
                .unwrap(),
            // Features travel as real (f32) in the reference table.
            features: Some(r.features.iter().map(|v| Some(*v as f32 as f64)).collect()),
            prediction: r.prediction.map(|p| p as f32 as f64),
            label: r.label,
            model_version: None,
            created_at: None,
        };
        if let Ok(o) = validate(&raw, mcfg.row_rules()) {
            st.update(&o);
        }
    }
    st
}

fn accuracy_of_last(rows: &[Row], n: usize) -> f64 {
    let tail = &rows[rows.len() - n..];
    let right = tail
        .iter()
        .filter(|r| (r.prediction.unwrap() as f32 >= 0.5) == (r.label.unwrap() == 1.0))
        .count();
    right as f64 / n as f64
}

#[tokio::test(flavor = "multi_thread")]
async fn rolling_accuracy_on_a_known_stream() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &db.url, ONE_MODEL);
    let rows = binary_rows("churn", 1_500, 0, None);
    db.insert(&rows).await;
    let d = Daemon::spawn(&cfg);
    wait_until(WAIT, "1500 rows processed", || {
        let n = d.metric("driftd_outcomes_processed_total{model=\"churn\"}");
        async move { n == Some(1_500.0) }
    })
    .await;
    for w in [100usize, 1_000] {
        let got = d
            .metric(&format!(
                "driftd_rolling_accuracy{{model=\"churn\",window=\"{w}\"}}"
            ))
            .unwrap();
        let want = accuracy_of_last(&rows, w);
        assert!((got - want).abs() < 1e-12, "window {w}: {got} vs {want}");
    }
    // 1500 rows one second apart: the 1h window holds them all, so it equals the overall rate.
    let hour = d
        .metric("driftd_rolling_accuracy{model=\"churn\",window=\"1h\"}")
        .unwrap();
    assert!((hour - accuracy_of_last(&rows, 1_500)).abs() < 1e-12);
    assert!(
        d.metric("driftd_rolling_log_loss{model=\"churn\",window=\"100\"}")
            .unwrap()
            > 0.0
    );
    assert_eq!(db.rows_processed("churn").await, 1_500);
    assert_eq!(d.get("/readyz").0, 200);
    assert_eq!(d.get("/healthz").0, 200);
    assert!(d.get("/metrics").1.contains("driftd_build_info{revision="));
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_count_only_once_labelled_and_label_delay_is_measured() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &db.url, ONE_MODEL);
    let mut rows = binary_rows("churn", 200, 0, None);
    for r in rows.iter_mut().skip(100) {
        r.label = None;
        r.labeled_at_secs = None;
    }
    let ids = db.insert(&rows).await;
    let d = Daemon::spawn(&cfg);
    wait_until(WAIT, "the 100 labelled rows", || {
        let n = d.metric("driftd_outcomes_processed_total{model=\"churn\"}");
        async move { n == Some(100.0) }
    })
    .await;
    // The other half gets labels now, with labeled_at = now(): they appear after the settle time.
    sqlx::query("UPDATE outcomes SET label = 1, labeled_at = now(), created_at = now() - interval '90 seconds' WHERE id >= $1")
        .bind(ids[100])
        .execute(&mut db.conn)
        .await
        .unwrap();
    wait_until(WAIT, "the late labels", || {
        let n = d.metric("driftd_outcomes_processed_total{model=\"churn\"}");
        async move { n == Some(200.0) }
    })
    .await;
    let count = d
        .metric("driftd_label_delay_seconds_count{model=\"churn\"}")
        .unwrap();
    assert_eq!(count, 200.0);
    // 100 rows at 30 s and 100 at about 90 s.
    let sum = d
        .metric("driftd_label_delay_seconds_sum{model=\"churn\"}")
        .unwrap();
    assert!(
        sum > 100.0 * 30.0 + 100.0 * 89.0 && sum < 100.0 * 30.0 + 100.0 * 120.0,
        "{sum}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_late_committing_transaction_is_not_skipped() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    // settle_ms (1500) exceeds how long the slow transaction stays open (700 ms).
    let cfg = write_config(dir.path(), &db.url, ONE_MODEL);
    std::fs::write(
        &cfg,
        std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("settle_ms = 300", "settle_ms = 1500"),
    )
    .unwrap();
    let d = Daemon::spawn(&cfg);
    let mut slow = PgConnection::connect(&db.url).await.unwrap();
    slow.execute("BEGIN").await.unwrap();
    // labeled_at = now() is the transaction's start time: older than what commits after it.
    slow.execute("INSERT INTO outcomes (model, features, prediction, label, labeled_at) VALUES ('churn', '{1,2,3}', 0.9, 1, now())")
        .await
        .unwrap();
    for _ in 0..7 {
        db.conn
            .execute("INSERT INTO outcomes (model, features, prediction, label, labeled_at) VALUES ('churn', '{1,2,3}', 0.9, 1, now())")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    slow.execute("COMMIT").await.unwrap();
    wait_until(WAIT, "all 8 rows including the late commit", || {
        let n = d.metric("driftd_outcomes_processed_total{model=\"churn\"}");
        async move { n == Some(8.0) }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(db.rows_processed("churn").await, 8);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_rows_are_set_aside_and_do_not_stall_the_watermark() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    // `fixed`: a label beyond the classes is set aside too (with `grow` it is a new class).
    let model = format!("{ONE_MODEL}classes = \"fixed\"\n");
    let cfg = write_config(dir.path(), &db.url, &model);
    let good = |i: i64| Row {
        model: "churn".into(),
        features: vec![1.0, 2.0, 3.0],
        prediction: Some(0.8),
        label: Some(1.0),
        labeled_at_secs: Some(i),
    };
    let mut rows = vec![good(0)];
    let mut bad = |i: i64, f: &dyn Fn(&mut Row)| {
        let mut r = good(i);
        f(&mut r);
        rows.push(r);
    };
    bad(1, &|r| r.features = vec![1.0, 2.0]);
    bad(2, &|r| r.features = vec![1.0, f64::NAN, 3.0]);
    bad(3, &|r| r.label = Some(2.0));
    bad(4, &|r| r.prediction = None);
    bad(5, &|r| r.prediction = Some(1.7));
    bad(6, &|r| r.label = Some(0.5));
    rows.push(good(7));
    db.insert(&rows).await;
    // A NULL inside the array cannot come through the text literal above.
    sqlx::query("INSERT INTO outcomes (model, features, prediction, label, labeled_at) VALUES ('churn', ARRAY[1, NULL, 3]::real[], 0.8, 1, to_timestamp($1))")
        .bind((BASE_TS + 8) as f64)
        .execute(&mut db.conn)
        .await
        .unwrap();
    db.insert(&[good(9)]).await;
    let d = Daemon::spawn(&cfg);
    wait_until(WAIT, "good rows after the bad ones", || {
        let n = d.metric("driftd_outcomes_processed_total{model=\"churn\"}");
        async move { n == Some(3.0) }
    })
    .await;
    let reasons: Vec<(String, i64)> = sqlx::query_as(
        "SELECT reason, count(*) FROM driftd.rejected_rows WHERE model = 'churn' GROUP BY reason ORDER BY reason",
    )
    .fetch_all(&mut db.conn)
    .await
    .unwrap();
    let reasons: Vec<(&str, i64)> = reasons.iter().map(|(r, n)| (r.as_str(), *n)).collect();
    assert_eq!(
        reasons,
        vec![
            ("invalid_label", 1),
            ("invalid_prediction", 1),
            ("missing_prediction", 1),
            ("non_finite_feature", 1),
            ("null_feature", 1),
            ("unknown_label", 1),
            ("wrong_feature_count", 1),
        ]
    );
    assert_eq!(
        d.metric("driftd_rows_rejected_total{model=\"churn\",reason=\"unknown_label\"}"),
        Some(1.0)
    );
    assert!(d.logs().contains("rows set aside"), "{}", d.logs());
    // The watermark is past every row: the last good one.
    let wm: i64 = db
        .scalar_i64("SELECT watermark_id FROM driftd.monitor_state WHERE model = 'churn'")
        .await;
    let last: i64 = db.scalar_i64("SELECT max(id) FROM outcomes").await;
    assert_eq!(wm, last);
}

#[tokio::test(flavor = "multi_thread")]
async fn several_models_in_one_table_are_independent() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let models = r#"
[[models]]
name = "a"
n_features = 3
[[models]]
name = "b"
n_features = 3
count_windows = [50]
"#;
    let cfg = write_config(dir.path(), &db.url, models);
    let a = binary_rows("a", 700, 0, None);
    let b = binary_rows("b", 300, 10_000, Some(0));
    db.insert(&a).await;
    db.insert(&b).await;
    let d = Daemon::spawn(&cfg);
    wait_until(WAIT, "both models", || {
        let (na, nb) = (
            d.metric("driftd_outcomes_processed_total{model=\"a\"}"),
            d.metric("driftd_outcomes_processed_total{model=\"b\"}"),
        );
        async move { na == Some(700.0) && nb == Some(300.0) }
    })
    .await;
    let acc_b = d
        .metric("driftd_rolling_accuracy{model=\"b\",window=\"50\"}")
        .unwrap();
    assert!((acc_b - accuracy_of_last(&b, 50)).abs() < 1e-12);
    assert!(d
        .metric("driftd_rolling_accuracy{model=\"b\",window=\"100\"}")
        .is_none());
    assert_eq!(db.rows_processed("a").await, 700);
    assert_eq!(db.rows_processed("b").await, 300);
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_dash_nine_loop_loses_nothing_and_counts_nothing_twice() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &db.url, ONE_MODEL);
    let cfg_text = std::fs::read_to_string(&cfg).unwrap();
    let total = 30_000usize;
    let rows = binary_rows("churn", total, 0, Some(total / 2));
    let chunk = 3_000;
    let mut first_id = None;
    let mut d = Daemon::spawn(&cfg);
    let mut kills = 0;
    let mut kills_mid_stream = 0;
    for (k, part) in rows.chunks(chunk).enumerate() {
        let ids = db.insert(part).await;
        first_id.get_or_insert(ids[0]);
        // Kill at an unpredictable point of the daemon's work on this chunk.
        tokio::time::sleep(Duration::from_millis(37 * (k as u64 % 7) + 20)).await;
        let inserted = ((k + 1) * chunk) as i64;
        if db.rows_processed("churn").await < inserted {
            kills_mid_stream += 1;
        }
        d.kill9();
        kills += 1;
        d = Daemon::spawn(&cfg);
    }
    db.wait_rows_processed("churn", total as i64, Duration::from_secs(120))
        .await;
    assert!(kills >= 10);
    assert!(
        kills_mid_stream >= 3,
        "only {kills_mid_stream} kills landed while rows were pending"
    );
    // Compare as text-serialised JSON on both sides (f32 fields print in their shortest form).
    // The retrain policy's memory holds wall-clock times (cooldowns), so it is left out.
    let canon = |s: &MonitorState| {
        let mut v =
            serde_json::from_str::<serde_json::Value>(&serde_json::to_string(s).unwrap()).unwrap();
        v.as_object_mut().unwrap().remove("policy");
        v
    };
    let want = canon(&reference_state(
        &cfg_text,
        "churn",
        &rows,
        first_id.unwrap(),
    ));
    let got = canon(&serde_json::from_value(db.state_json("churn").await).unwrap());
    let diff = json_diff(&got, &want, 10);
    assert!(
        diff.is_empty(),
        "state after {kills} kills differs from an uninterrupted run: {diff:#?}"
    );
    let drifts = db
        .scalar_i64("SELECT count(*) FROM driftd.drift_events WHERE kind = 'drift'")
        .await;
    assert!(
        drifts >= 1,
        "the change at row {} was not detected",
        total / 2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn survives_a_database_restart() {
    let pg = PgServer::start();
    let mut db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &db.url, ONE_MODEL);
    let rows = binary_rows("churn", 2_000, 0, None);
    db.insert(&rows[..1_000]).await;
    let d = Daemon::spawn(&cfg);
    wait_until(WAIT, "first half", || {
        let n = d.metric("driftd_outcomes_processed_total{model=\"churn\"}");
        async move { n == Some(1_000.0) }
    })
    .await;
    pg.stop();
    wait_until(WAIT, "not ready while the server is down", || {
        let s = d.get("/readyz").0;
        async move { s == 503 }
    })
    .await;
    wait_until(WAIT, "database_up 0 and a counted error", || {
        // Counted by the model's loop or by the ownership task (model ""), kind database.
        let errors: Option<f64> = d
            .get("/metrics")
            .1
            .lines()
            .filter(|l| {
                l.starts_with("driftd_poll_errors_total{") && l.contains("kind=\"database\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .reduce(|a, b| a + b);
        let up = d.metric("driftd_database_up");
        async move { up == Some(0.0) && errors.unwrap_or(0.0) >= 1.0 }
    })
    .await;
    pg.start_again();
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    db.conn = PgConnection::connect(&db.url).await.unwrap();
    let _ = &mut conn;
    db.insert(&rows[1_000..]).await;
    wait_until(WAIT, "second half after the restart", || {
        let n = d.metric("driftd_outcomes_processed_total{model=\"churn\"}");
        async move { n == Some(2_000.0) }
    })
    .await;
    assert_eq!(d.get("/readyz").0, 200);
    assert_eq!(db.rows_processed("churn").await, 2_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_config_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "postgres://x@127.0.0.1:1/x",
        &format!("{ONE_MODEL}\ncount_windows = [0]\n"),
    );
    let out = std::process::Command::new(driftd_bin())
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("models[0].count_windows"), "{err}");

    let out = std::process::Command::new(driftd_bin())
        .args(["check-config", "--config"])
        .arg(&cfg)
        .env("DRIFTD_POLL__BATCH_SIZE", "many")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("poll.batch_size"));
}

#[tokio::test(flavor = "multi_thread")]
async fn password_from_a_file_never_appears_in_logs() {
    let pg = shared_pg();
    let db = pg.fresh_db().await;
    let mut admin = PgConnection::connect(&db.url).await.unwrap();
    admin.execute("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pwuser') THEN CREATE ROLE pwuser LOGIN SUPERUSER PASSWORD 's3cret-pw'; END IF; END $$").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "wrong-s3cret\n").unwrap();
    let url = db.url.replace("postgres@", "pwuser@");
    let cfg = write_config(dir.path(), &url, ONE_MODEL);
    let d = Daemon::spawn_with_env(
        &cfg,
        &[("DRIFTD_DATABASE__PASSWORD_FILE", pw.to_str().unwrap())],
    );
    // trust auth accepts any password, so the daemon comes up; the secret must still not leak.
    wait_until(WAIT, "ready", || {
        let s = d.get("/readyz").0;
        async move { s == 200 }
    })
    .await;
    assert!(!d.logs().contains("wrong-s3cret"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_commits_and_exits_zero() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &db.url, ONE_MODEL);
    db.insert(&binary_rows("churn", 5_000, 0, None)).await;
    let mut d = Daemon::spawn(&cfg);
    wait_until(WAIT, "some rows", || {
        let n = d.metric("driftd_outcomes_processed_total{model=\"churn\"}");
        async move { n.unwrap_or(0.0) > 0.0 }
    })
    .await;
    let st = d.sigterm();
    assert!(st.success(), "exit status {st:?}; logs: {}", d.logs());
    let committed = db.rows_processed("churn").await;
    assert!(
        committed > 0 && committed % 500 == 0 || committed == 5_000,
        "{committed}"
    );
    let d2 = Daemon::spawn(&cfg);
    wait_until(WAIT, "the rest after restart", || {
        let n = d2.metric("driftd_outcomes_processed_total{model=\"churn\"}");
        async move { n == Some((5_000 - committed) as f64) }
    })
    .await;
}
