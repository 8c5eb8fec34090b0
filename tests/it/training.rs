//! Updating the model through the real daemon: bootstrap, scoring, drift-triggered updates,
//! the registry and its CLI, the PyTorch export, manual/HTTP/schedule triggers, coalescing,
//! and cancellation at shutdown.

use std::process::Command;
use std::time::{Duration, Instant};

use driftd::generate::{Stream, StreamSpec};
use sqlx::Row as _;

use crate::helpers::*;

const WAIT: Duration = Duration::from_secs(180);

fn model_block(extra_train: &str, extra_triggers: &str) -> String {
    format!(
        r#"
[[models]]
name = "m"
n_features = 6
[models.train]
fit_epochs = 15
finetune_epochs = 8
{extra_train}
[models.triggers]
bootstrap_min_rows = 400
{extra_triggers}
"#
    )
}

fn stream(rows: usize, abrupt_at: Option<usize>, seed: u64) -> Vec<driftd::generate::StreamRow> {
    Stream::new(StreamSpec {
        n_features: 6,
        rows,
        abrupt_at,
        gradual: None,
        label_noise: 0.02,
        seed,
        categorical: 0,
    })
    .collect()
}

/// Rows with an outside model's prediction (the model deployed before driftd had one).
fn prelabelled(rows: &[driftd::generate::StreamRow], start_secs: i64) -> Vec<Row> {
    rows.iter()
        .map(|r| Row {
            model: "m".into(),
            features: r.features.iter().map(|&v| f64::from(v)).collect(),
            prediction: Some(if r.index % 3 == 0 { 0.2 } else { 0.8 }),
            label: Some(f64::from(r.label)),
            labeled_at_secs: Some(start_secs + r.index as i64),
        })
        .collect()
}

/// A model whose bootstrap fit runs `epochs` epochs over every row (no sample budget): slow
/// enough that requests arrive while it runs.
fn slow_fit_block(epochs: u32) -> String {
    model_block("", "").replace(
        "fit_epochs = 15",
        &format!("fit_epochs = {epochs}\nsample_budget = 0"),
    )
}

async fn wait_training_running(db: &mut TestDb, d: &Daemon) {
    wait_sql(
        db,
        d,
        "a running training",
        "SELECT count(*) FROM driftd.training_runs WHERE status = 'running'",
        WAIT,
    )
    .await;
}

async fn run_count(db: &mut TestDb, filter: &str) -> i64 {
    db.scalar_i64(&format!(
        "SELECT count(*) FROM driftd.training_runs WHERE {filter}"
    ))
    .await
}

async fn wait_sql(db: &mut TestDb, d: &Daemon, what: &str, sql: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        if db.try_scalar_i64(sql).await.unwrap_or(0) > 0 {
            return;
        }
        if Instant::now() >= deadline {
            let logs = d.logs();
            let tail: Vec<&str> = logs.lines().rev().take(40).collect();
            panic!(
                "timed out waiting for: {what}; daemon log tail:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every thread of process `pid`: its name and its nice value (`/proc/PID/task/TID/stat`,
/// field 19).
fn thread_nices(pid: u32) -> Vec<(String, i32)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = task.unwrap().path();
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(dir.join("comm")),
            std::fs::read_to_string(dir.join("stat")),
        ) else {
            continue; // the thread ended meanwhile
        };
        // Fields after the parenthesised name start with field 3 (state).
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let nice: i32 = rest.split(' ').nth(19 - 3).unwrap().parse().unwrap();
        out.push((comm.trim().to_string(), nice));
    }
    out
}

fn driftd(args: &[&str]) -> std::process::Output {
    Command::new(driftd_bin()).args(args).output().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn bootstrap_then_scoring_then_a_drift_triggered_update() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let triggers = "[models.triggers.drift]\nmin_new_rows = 200\ncooldown = \"1s\"";
    let cfg = write_config(dir.path(), &db.url, &model_block("", triggers));
    let d = Daemon::spawn(&cfg);
    let all = stream(3_000, Some(1_500), 11);
    db.insert(&prelabelled(&all[..500], 0)).await;
    wait_sql(
        &mut db,
        &d,
        "the bootstrap champion",
        "SELECT count(*) FROM driftd.model_versions WHERE model = 'm' AND status = 'champion'",
        WAIT,
    )
    .await;
    let boot: (String, String) = sqlx::query_as(
        "SELECT trigger, status FROM driftd.training_runs WHERE model = 'm' ORDER BY id LIMIT 1",
    )
    .fetch_one(&mut db.conn)
    .await
    .unwrap();
    assert_eq!(boot, ("bootstrap".into(), "promoted".into()));

    // New rows arrive without predictions: the champion scores them, stamping its version.
    let mut unscored = prelabelled(&all[500..], 500);
    for r in &mut unscored {
        r.prediction = None;
        r.label = None;
        r.labeled_at_secs = None;
    }
    let ids = db.insert(&unscored).await;
    wait_sql(
        &mut db,
        &d,
        "every new row scored",
        &format!(
            "SELECT (count(*) = 0)::int::int8 FROM outcomes WHERE id >= {} AND prediction IS NULL",
            ids[0]
        ),
        WAIT,
    )
    .await;
    let stamped = db
        .scalar_i64(&format!(
            "SELECT count(*) FROM outcomes WHERE id >= {} AND model_version = 1",
            ids[0]
        ))
        .await;
    assert_eq!(stamped, 2_500);
    assert!(d.metric("driftd_rows_scored_total{model=\"m\"}").unwrap() >= 2_500.0);
    // Before the change the champion is good: labels for the stable part.
    let label_upto = |n: usize| {
        let (ids, labels): (Vec<i64>, Vec<f64>) = all[500..n]
            .iter()
            .zip(&ids)
            .map(|(r, id)| (*id, f64::from(r.label)))
            .unzip();
        (ids, labels)
    };
    let (lid, lab) = label_upto(3_000);
    sqlx::query("UPDATE outcomes o SET label = u.l, labeled_at = to_timestamp($3) + (u.i * interval '1 second') FROM UNNEST($1::int8[], $2::float8[]) WITH ORDINALITY AS u(id, l, i) WHERE o.id = u.id")
        .bind(&lid)
        .bind(&lab)
        .bind((BASE_TS + 10_000) as f64)
        .execute(&mut db.conn)
        .await
        .unwrap();
    db.wait_rows_processed("m", 3_000, WAIT).await;
    let stable_acc: f64 = sqlx::query_scalar(
        "SELECT avg(((prediction >= 0.5)::int = label::int)::int)::float8 FROM outcomes WHERE id >= $1 AND id < $2",
    )
    .bind(ids[0])
    .bind(ids[1_000])
    .fetch_one(&mut db.conn)
    .await
    .unwrap();
    assert!(
        stable_acc > 0.85,
        "the bootstrap model should fit the first concept: {stable_acc}"
    );
    // The concept changed at row 1500: a detector fires and the drift trigger updates the model.
    wait_sql(&mut db, &d, "a drift event", "SELECT count(*) FROM driftd.drift_events WHERE model = 'm' AND kind = 'drift' AND row_index >= 1500", WAIT).await;
    wait_sql(&mut db, &d, "a finished drift-triggered run", "SELECT count(*) FROM driftd.training_runs WHERE model = 'm' AND trigger = 'drift' AND status IN ('promoted', 'kept')", WAIT).await;
    let row = sqlx::query("SELECT status, candidates FROM driftd.training_runs WHERE model = 'm' AND trigger = 'drift' AND status IN ('promoted','kept') ORDER BY id LIMIT 1")
        .fetch_one(&mut db.conn)
        .await
        .unwrap();
    let candidates: serde_json::Value = row.get(1);
    let names: Vec<&str> = candidates
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["strategy"].as_str())
        .collect();
    assert!(
        names.len() >= 4,
        "auto trains several candidates: {names:?}"
    );
    let status: String = row.get(0);
    assert_eq!(
        status, "promoted",
        "after an abrupt change some candidate beats the stale champion"
    );
    // The loop collects the finished run on its next round, then exports it.
    wait_until(WAIT, "the promotion in the metrics", || {
        let retrains =
            d.metric("driftd_retrains_total{model=\"m\",result=\"promoted\",trigger=\"drift\"}");
        let version = d.metric("driftd_champion_version{model=\"m\"}");
        async move { retrains.unwrap_or(0.0) >= 1.0 && version.unwrap_or(0.0) >= 2.0 }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn registry_cli_export_loads_in_pytorch_and_rollback_works() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &db.url, &model_block("", ""));
    let cfgs = cfg.to_str().unwrap();
    let d = Daemon::spawn(&cfg);
    let all = stream(1_200, None, 5);
    db.insert(&prelabelled(&all[..600], 0)).await;
    wait_sql(
        &mut db,
        &d,
        "v1",
        "SELECT count(*) FROM driftd.model_versions WHERE model = 'm' AND version = 1",
        WAIT,
    )
    .await;
    // Unscored rows get the champion's predictions; those are what the export must reproduce.
    let mut unscored = prelabelled(&all[600..800], 600);
    for r in &mut unscored {
        r.prediction = None;
        r.label = None;
        r.labeled_at_secs = None;
    }
    let ids = db.insert(&unscored).await;
    wait_sql(
        &mut db,
        &d,
        "scored",
        &format!(
            "SELECT (count(*) = 0)::int::int8 FROM outcomes WHERE id >= {} AND prediction IS NULL",
            ids[0]
        ),
        WAIT,
    )
    .await;
    let rows: Vec<(Vec<f32>, f32)> =
        sqlx::query_as("SELECT features, prediction FROM outcomes WHERE id >= $1 ORDER BY id")
            .bind(ids[0])
            .fetch_all(&mut db.conn)
            .await
            .unwrap();
    let out = driftd(&[
        "models",
        "export",
        "--config",
        cfgs,
        "--model",
        "m",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let paths: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    let input = dir.path().join("input.json");
    let expected = dir.path().join("expected.json");
    std::fs::write(
        &input,
        serde_json::json!({ "x": rows.iter().map(|r| &r.0).collect::<Vec<_>>() }).to_string(),
    )
    .unwrap();
    std::fs::write(
        &expected,
        serde_json::json!({ "proba": rows.iter().map(|r| r.1).collect::<Vec<_>>() }).to_string(),
    )
    .unwrap();
    let check = Command::new(venv_python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/export_check.py"
        ))
        .args([&paths[0], &paths[1]])
        .arg(&input)
        .arg(&expected)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "PyTorch disagrees with driftd: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    // A second version through a manual request, then roll back to the first.
    let out = driftd(&[
        "retrain",
        "--config",
        cfgs,
        "--model",
        "m",
        "--strategy",
        "refit_combined",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run_id: i64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    db.insert(&prelabelled(&all[800..], 800)).await;
    wait_sql(&mut db, &d, "the manual run", &format!("SELECT count(*) FROM driftd.training_runs WHERE id = {run_id} AND status IN ('promoted','kept','failed')"), WAIT).await;
    let out = driftd(&[
        "models", "show", "--config", cfgs, "--model", "m", "-o", "json",
    ]);
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let run = shown["training_runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == run_id)
        .unwrap()
        .clone();
    assert_eq!(run["trigger"], "manual");
    assert_eq!(run["strategy"], "refit_combined");
    // Force v2 to be the champion, whatever the holdout said, then roll back.
    let v2 = db
        .scalar_i64("SELECT max(version) FROM driftd.model_versions WHERE model = 'm'")
        .await;
    assert_eq!(v2, 2);
    assert!(driftd(&[
        "models",
        "promote",
        "--config",
        cfgs,
        "--model",
        "m",
        "--version",
        "2"
    ])
    .status
    .success());
    let out = driftd(&["models", "rollback", "--config", cfgs, "--model", "m"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let champ = db
        .scalar_i64(
            "SELECT version FROM driftd.model_versions WHERE model = 'm' AND status = 'champion'",
        )
        .await;
    assert_eq!(champ, 1);
    let list =
        String::from_utf8_lossy(&driftd(&["models", "list", "--config", cfgs]).stdout).to_string();
    assert!(
        list.lines().filter(|l| l.starts_with("m ")).count() == 2,
        "{list}"
    );
    drop(d);
}

#[tokio::test(flavor = "multi_thread")]
async fn http_retrain_needs_the_token_and_schedules_fire() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "t0ken-xyz\n").unwrap();
    let triggers = "schedules = [{ cron = \"*/3 * * * * *\", strategy = \"finetune_new\" }]\ntimezone = \"Europe/Berlin\"";
    let cfg = write_config(dir.path(), &db.url, &model_block("", triggers));
    std::fs::write(
        &cfg,
        std::fs::read_to_string(&cfg).unwrap().replace(
            "[http]\n",
            &format!(
                "[http]\nadmin_token_file = \"{}\"\n",
                dir.path().join("token").display()
            ),
        ),
    )
    .unwrap();
    let out = driftd(&["check-config", "--config", cfg.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("schedule `*/3 * * * * *` (Europe/Berlin)")
            && text.matches("+00:00").count() >= 3,
        "{text}"
    );
    let d = Daemon::spawn(&cfg);
    db.insert(&prelabelled(&stream(600, None, 3), 0)).await;
    wait_sql(
        &mut db,
        &d,
        "v1",
        "SELECT count(*) FROM driftd.model_versions WHERE model = 'm'",
        WAIT,
    )
    .await;
    let path = "/v1/models/m/retrain";
    assert_eq!(http(d.addr, "POST", path, None, &[]).0, 401);
    assert_eq!(
        http(
            d.addr,
            "POST",
            path,
            None,
            &[("Authorization", "Bearer wrong")]
        )
        .0,
        401
    );
    let (status, body) = http(
        d.addr,
        "POST",
        path,
        Some(r#"{"strategy": "ensemble_new"}"#),
        &[
            ("Authorization", "Bearer t0ken-xyz"),
            ("Content-Type", "application/json"),
        ],
    );
    assert_eq!(status, 202, "{body}");
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["run_id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        http(
            d.addr,
            "POST",
            "/v1/models/nope/retrain",
            None,
            &[("Authorization", "Bearer t0ken-xyz")]
        )
        .0,
        404
    );
    // Carried out: trained (promoted or kept; skipped when it finds no new rows, as with no
    // rows since v1), or folded into a scheduled run already running.
    wait_sql(&mut db, &d, "the HTTP-requested run", &format!("SELECT count(*) FROM driftd.training_runs WHERE id = {id} AND status IN ('promoted','kept','coalesced','skipped')"), WAIT).await;
    wait_sql(&mut db, &d, "a scheduled run", "SELECT count(*) FROM driftd.training_runs WHERE trigger = 'schedule' AND strategy = 'finetune_new'", WAIT).await;
    let next = d
        .metric("driftd_next_scheduled_retrain_timestamp_seconds{model=\"m\"}")
        .unwrap();
    assert!(
        (next - chrono::Utc::now().timestamp() as f64).abs() < 10.0,
        "{next}"
    );
    // Every firing armed the next one-shot job and removed the one that ran, without errors.
    wait_sql(
        &mut db,
        &d,
        "three scheduled runs",
        "SELECT (count(*) >= 3)::int::int8 FROM driftd.training_runs WHERE trigger = 'schedule'",
        WAIT,
    )
    .await;
    let logs = d.logs();
    assert!(!logs.contains(" ERROR "), "{logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn triggers_during_training_coalesce_and_sigterm_cancels_it() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    // A deliberately slow fit (many epochs) so requests arrive while it runs.
    let cfg = write_config(dir.path(), &db.url, &slow_fit_block(200_000));
    std::fs::write(
        &cfg,
        std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("[poll]", "[training]\ngrace_ms = 20000\n\n[poll]"),
    )
    .unwrap();
    let cfgs = cfg.to_str().unwrap();
    let mut d = Daemon::spawn(&cfg);
    db.insert(&prelabelled(&stream(600, None, 9), 0)).await;
    wait_training_running(&mut db, &d).await;
    // The training runs below the serving threads' priority (`training.nice`, default 10),
    // and so do the threads it starts (libtorch's workers inherit the name and the nice).
    let threads = thread_nices(d.child.id());
    let train: Vec<i32> = threads
        .iter()
        .filter(|(name, _)| name == "driftd-train")
        .map(|t| t.1)
        .collect();
    assert!(!train.is_empty(), "no driftd-train thread: {threads:?}");
    assert!(train.iter().all(|&n| n == 10), "{threads:?}");
    let workers: Vec<i32> = threads
        .iter()
        .filter(|(name, _)| name.starts_with("tokio-r"))
        .map(|t| t.1)
        .collect();
    assert!(!workers.is_empty(), "{threads:?}");
    assert!(workers.iter().all(|&n| n == 0), "{threads:?}");
    for _ in 0..3 {
        assert!(driftd(&["retrain", "--config", cfgs, "--model", "m"])
            .status
            .success());
    }
    wait_sql(&mut db, &d, "coalesced requests", "SELECT (count(*) = 3)::int::int8 FROM driftd.training_runs WHERE trigger = 'manual' AND status = 'coalesced'", WAIT).await;
    assert_eq!(
        run_count(&mut db, "status = 'running'").await,
        1,
        "never two trainings of one model at once"
    );
    let started = Instant::now();
    let st = d.sigterm();
    assert!(st.success(), "{st:?}: {}", d.logs());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "stopped within the grace period"
    );
    assert_eq!(run_count(&mut db, "status = 'cancelled'").await, 1);
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM driftd.model_versions")
            .await,
        0,
        "a cancelled run registers nothing"
    );
}

/// Issue 27, finding 3: a request coalesced behind a training becomes a follow-up; when that
/// training's champion has seen every row, the follow-up has nothing to do and is recorded as
/// `skipped` (with why), never as a failure that `DriftdRetrainFailing` would count.
#[tokio::test(flavor = "multi_thread")]
async fn a_follow_up_with_nothing_new_is_skipped_not_failed() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    // Slow enough that the request arrives while the bootstrap trains.
    let cfg = write_config(dir.path(), &db.url, &slow_fit_block(1_500));
    let cfgs = cfg.to_str().unwrap();
    let d = Daemon::spawn(&cfg);
    // One batch (the tests' batch_size is 500): the bootstrap sees every row.
    db.insert(&prelabelled(&stream(450, None, 4), 0)).await;
    wait_training_running(&mut db, &d).await;
    let out = driftd(&["retrain", "--config", cfgs, "--model", "m"]);
    assert!(out.status.success(), "{out:?}");
    // The request is recorded as coalesced; its follow-up is a run of its own.
    wait_sql(
        &mut db,
        &d,
        "the follow-up ended",
        "SELECT count(*) FROM driftd.training_runs WHERE trigger = 'manual' AND status NOT IN ('requested', 'running', 'coalesced')",
        WAIT,
    )
    .await;
    let (status, why): (String, Option<String>) = sqlx::query_as(
        "SELECT status, error FROM driftd.training_runs WHERE trigger = 'manual' \
         AND status NOT IN ('requested', 'running', 'coalesced')",
    )
    .fetch_one(&mut db.conn)
    .await
    .unwrap();
    assert_eq!(status, "skipped", "{why:?}\n{}", d.logs());
    assert!(
        why.as_deref()
            .unwrap_or("")
            .contains("nothing new since v1"),
        "{why:?}"
    );
    assert_eq!(run_count(&mut db, "status = 'promoted'").await, 1);
    assert_eq!(run_count(&mut db, "status = 'failed'").await, 0);
    wait_until(Duration::from_secs(10), "the skip counted", || {
        let n = d.metric(r#"driftd_retrains_total{model="m",result="skipped",trigger="manual"}"#);
        async move { n == Some(1.0) }
    })
    .await;
    assert_eq!(
        d.metric(r#"driftd_retrains_total{model="m",result="failed",trigger="manual"}"#),
        Some(0.0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn accuracy_below_the_floor_for_the_hold_time_triggers_an_update() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let triggers = "[models.triggers.drift]\nenabled = false\n[models.triggers.threshold]\nenabled = true\nwindow = \"100\"\nmin_accuracy = 0.9\nhold = \"1s\"\ncooldown = \"1s\"\nstrategy = \"refit_new\"";
    let cfg = write_config(dir.path(), &db.url, &model_block("", triggers));
    let d = Daemon::spawn(&cfg);
    db.insert(&prelabelled(&stream(500, None, 21), 0)).await;
    wait_sql(
        &mut db,
        &d,
        "v1",
        "SELECT count(*) FROM driftd.model_versions WHERE model = 'm'",
        WAIT,
    )
    .await;
    // Rows whose labels the champion cannot know (noise): its rolling accuracy sits near 0.5.
    let mut noisy = prelabelled(&stream(400, None, 22), 1_000);
    for (i, r) in noisy.iter_mut().enumerate() {
        r.label = Some(((i * 7919) % 2) as f64);
    }
    db.insert(&noisy).await;
    wait_sql(
        &mut db,
        &d,
        "a threshold-triggered run",
        "SELECT count(*) FROM driftd.training_runs WHERE trigger = 'threshold' AND strategy = 'refit_new' AND reason LIKE 'accuracy(100)%'",
        WAIT,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_with_only_the_documented_grants() {
    use sqlx::{Connection, Executor};
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    // sql/grants.sql, with the role created idempotently (roles are cluster-wide).
    let grants =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sql/grants.sql")).unwrap();
    db.conn
        .execute("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'driftd') THEN CREATE ROLE driftd LOGIN; END IF; END $$")
        .await
        .unwrap();
    let rest: String = grants
        .lines()
        .filter(|l| !l.starts_with("CREATE ROLE"))
        .collect::<Vec<_>>()
        .join("\n");
    db.conn.execute(rest.as_str()).await.unwrap();
    let url = db.url.replace("postgres@", "driftd@");
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &url, &model_block("", ""));
    let d = Daemon::spawn(&cfg);
    db.insert(&prelabelled(&stream(600, None, 31), 0)).await;
    wait_sql(
        &mut db,
        &d,
        "a champion trained as the driftd role",
        "SELECT count(*) FROM driftd.model_versions",
        WAIT,
    )
    .await;
    let mut unscored = prelabelled(&stream(50, None, 32), 5_000);
    for r in &mut unscored {
        r.prediction = None;
        r.label = None;
        r.labeled_at_secs = None;
    }
    let ids = db.insert(&unscored).await;
    wait_sql(
        &mut db,
        &d,
        "rows scored as the driftd role",
        &format!(
            "SELECT (count(*) = 0)::int::int8 FROM outcomes WHERE id >= {} AND prediction IS NULL",
            ids[0]
        ),
        WAIT,
    )
    .await;
    sqlx::query(
        "UPDATE outcomes SET label = 1, labeled_at = now() - interval '1 hour' WHERE id >= $1",
    )
    .bind(ids[0])
    .execute(&mut db.conn)
    .await
    .unwrap();
    db.wait_rows_processed("m", 650, WAIT).await;
    // And no more than that: the role cannot touch the labels.
    let mut as_driftd = sqlx::PgConnection::connect(&url).await.unwrap();
    let err = as_driftd
        .execute("UPDATE outcomes SET label = 0")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("permission denied"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn shifted_inputs_raise_feature_drift_before_any_label() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let block = model_block("", "[models.triggers.drift]\nenabled = false\ncooldown = \"1s\"")
        + "[models.feature_drift]\ncheck_interval = \"1s\"\nwindow_rows = 300\nmin_rows = 100\ndrifted_ratio_trigger = 0.5\n";
    let cfg = write_config(dir.path(), &db.url, &block);
    let d = Daemon::spawn(&cfg);
    db.insert(&prelabelled(&stream(500, None, 41), 0)).await;
    wait_sql(
        &mut db,
        &d,
        "v1",
        "SELECT count(*) FROM driftd.model_versions WHERE model = 'm'",
        WAIT,
    )
    .await;
    // Same inputs: checked, nothing drifted.
    wait_sql(
        &mut db,
        &d,
        "a first check",
        "SELECT count(*) FROM driftd.feature_drift WHERE model = 'm'",
        WAIT,
    )
    .await;
    assert_eq!(
        d.metric("driftd_drifted_features_ratio{model=\"m\"}"),
        Some(0.0)
    );
    // New inputs moved by three standard deviations, no labels yet.
    let mut shifted = prelabelled(&stream(400, None, 42), 1_000);
    for r in &mut shifted {
        r.features.iter_mut().for_each(|v| *v += 3.0);
        r.prediction = None;
        r.label = None;
        r.labeled_at_secs = None;
    }
    db.insert(&shifted).await;
    wait_sql(
        &mut db,
        &d,
        "a feature-drift-triggered run",
        "SELECT count(*) FROM driftd.training_runs WHERE trigger = 'feature_drift'",
        WAIT,
    )
    .await;
    assert!(
        d.metric("driftd_drifted_features_ratio{model=\"m\"}")
            .unwrap()
            > 0.5
    );
    let psi = d
        .metric("driftd_feature_psi{feature=\"f0\",model=\"m\"}")
        .unwrap();
    assert!(psi > 0.2, "{psi}");
    let drifted = db.scalar_i64("SELECT count(DISTINCT feature) FROM driftd.feature_drift WHERE model = 'm' AND drifted").await;
    assert_eq!(drifted, 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_class_the_champion_never_saw_is_counted_then_learnt_and_served() {
    use driftd::train::synth::{make_classification, Concept};
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    // A binary model (the default task, `classes = "grow"` by default); no drift updates.
    let block = model_block("", "[models.triggers.drift]\nenabled = false");
    let cfg = write_config(dir.path(), &db.url, &block);
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace("[http]\n", "[http]\nread_token = \"r\"\n"),
    )
    .unwrap();
    // A world of three well-separated classes, of which the first rows show two.
    let world = make_classification(&Concept::with_options(7, 6, 4, 2, 3, 1, 2.0), 3_000, 0, 7);
    let row = |i: usize, labelled: bool| Row {
        model: "m".into(),
        features: world.row(i).iter().map(|&v| f64::from(v)).collect(),
        prediction: labelled.then_some(0.8),
        label: labelled.then(|| f64::from(world.y[i])),
        labeled_at_secs: labelled.then_some(i as i64),
    };
    let first: Vec<Row> = (0..800)
        .filter(|&i| world.y[i] < 2.0)
        .map(|i| row(i, true))
        .collect();
    let d = Daemon::spawn(&cfg);
    db.insert(&first).await;
    let champion =
        "SELECT count(*) FROM driftd.model_versions WHERE model = 'm' AND status = 'champion'";
    wait_sql(&mut db, &d, "the bootstrap champion", champion, WAIT).await;

    // Then the third class arrives: its rows are counted as unseen, and as errors.
    let next: Vec<Row> = (800..1_800).map(|i| row(i, true)).collect();
    let new_class = (800..1_800).filter(|&i| world.y[i] == 2.0).count();
    assert!(new_class > 200, "{new_class}");
    db.insert(&next).await;
    db.wait_rows_processed("m", (first.len() + next.len()) as i64, WAIT)
        .await;
    let unseen = "driftd_unseen_labels_total{model=\"m\"}";
    assert_eq!(d.metric(unseen), Some(new_class as f64));
    assert!(
        d.logs().contains("labels the champion has no class for"),
        "{}",
        d.logs()
    );

    // The new-class trigger asks for the update that learns it, no detector needed: the
    // champion becomes a three-class model.
    let learnt = "SELECT count(*) FROM driftd.training_runs WHERE model = 'm' \
                  AND trigger = 'new_class' AND status = 'promoted'";
    wait_sql(&mut db, &d, "the new-class update", learnt, WAIT).await;
    let (grew, reason): (Option<serde_json::Value>, String) = sqlx::query_as(
        "SELECT v.holdout_metrics->'grew_classes', v.holdout_metrics->>'reason' \
         FROM driftd.training_runs r JOIN driftd.model_versions v ON v.model = r.model AND v.version = r.new_version \
         WHERE r.model = 'm' AND r.trigger = 'new_class' AND r.status = 'promoted' ORDER BY r.id LIMIT 1",
    )
    .fetch_one(&mut db.conn)
    .await
    .unwrap();
    assert_eq!(
        grew,
        Some(serde_json::json!({"from": 2, "to": 3})),
        "{reason}"
    );
    assert!(reason.contains("binary became multiclass"), "{reason}");
    // Each promoted version keeps its predictions on the newest holdout rows (at most
    // 1 000), which its detectors start from.
    let traces: Vec<(i32, i32, i32)> = sqlx::query_as(
        "SELECT jsonb_array_length(holdout_metrics->'trace'->'labels'), \
                jsonb_array_length(holdout_metrics->'trace'->'predictions'), \
                (holdout_metrics->>'n_holdout')::int \
         FROM driftd.model_versions WHERE model = 'm' AND version > 1 ORDER BY version",
    )
    .fetch_all(&mut db.conn)
    .await
    .unwrap();
    assert!(!traces.is_empty());
    // ... which the listing leaves out (it would carry up to 1 000 predictions a version).
    let (code, listing) = http(
        d.addr,
        "GET",
        "/v1/models/m",
        None,
        &[("Authorization", "Bearer r")],
    );
    let listing: serde_json::Value = serde_json::from_str(&listing).unwrap();
    let versions = listing["versions"].as_array().unwrap();
    assert_eq!(code, 200);
    assert!(versions.len() >= 2, "{listing}");
    assert!(
        versions.iter().all(
            |v| v["holdout_metrics"].is_object() && v["holdout_metrics"].get("trace").is_none()
        ),
        "{listing}"
    );
    for (labels, predictions, n_holdout) in traces {
        assert_eq!(
            (labels, predictions),
            (n_holdout.min(1_000), n_holdout.min(1_000))
        );
    }

    // It serves three classes, and scores new rows with class indices.
    let metadata = || {
        http(
            d.addr,
            "GET",
            "/v2/models/m",
            None,
            &[("Authorization", "Bearer r")],
        )
    };
    wait_until(WAIT, "the grown champion served", || {
        let (code, meta) = metadata();
        async move { code == 200 && meta.contains("[-1,3]") }
    })
    .await;
    let meta: serde_json::Value = serde_json::from_str(&metadata().1).unwrap();
    assert_eq!(
        meta["outputs"][0]["shape"],
        serde_json::json!([-1, 3]),
        "{meta}"
    );
    let unscored: Vec<Row> = (1_800..2_400).map(|i| row(i, false)).collect();
    let ids = db.insert(&unscored).await;
    let pending = format!(
        "SELECT (count(*) = 0)::int::int8 FROM outcomes WHERE id >= {} AND prediction IS NULL",
        ids[0]
    );
    wait_sql(&mut db, &d, "the new rows scored", &pending, WAIT).await;
    let preds: Vec<f64> =
        sqlx::query_scalar("SELECT prediction::float8 FROM outcomes WHERE id >= $1 ORDER BY id")
            .bind(ids[0])
            .fetch_all(&mut db.conn)
            .await
            .unwrap();
    let of_new: Vec<usize> = (0..preds.len())
        .filter(|&k| world.y[1_800 + k] == 2.0)
        .collect();
    let right = of_new.iter().filter(|&&k| preds[k] == 2.0).count();
    assert!(
        right as f64 >= 0.8 * of_new.len() as f64,
        "class 2 predicted on {right} of its {} rows",
        of_new.len()
    );
    // Labelled now, its class is no longer unseen.
    let labels: Vec<f64> = (1_800..2_400).map(|i| f64::from(world.y[i])).collect();
    sqlx::query("UPDATE outcomes o SET label = u.l, labeled_at = now() FROM UNNEST($1::int8[], $2::float8[]) AS u(id, l) WHERE o.id = u.id")
        .bind(&ids)
        .bind(&labels)
        .execute(&mut db.conn)
        .await
        .unwrap();
    db.wait_rows_processed(
        "m",
        (first.len() + next.len() + unscored.len()) as i64,
        WAIT,
    )
    .await;
    assert_eq!(d.metric(unseen), Some(new_class as f64));
}
