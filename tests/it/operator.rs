//! The operator's path (issue 27), against a real PostgreSQL and the real daemon: the column
//! types users have, `check-config --database`, readiness that names its reason (also on
//! systemd's `STATUS=`), `migrate` saying what it created, connection errors naming the
//! server, plain logs when stderr is not a terminal, and reference samples for champions
//! trained before feature drift was enabled.

use std::io::Read;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::Executor;

use crate::helpers::*;

fn driftd(args: &[&str]) -> Output {
    Command::new(driftd_bin())
        .args(args)
        .env_remove("DRIFTD_CONFIG")
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited, not killed")
}

/// The README's own-table layout ("Your own table"), with the types users have: a boolean
/// label and prediction, integer/numeric/real features, a timestamp without time zone.
const OWN_TABLE: &str = "CREATE TABLE scored_leads (
    lead_id bigserial PRIMARY KEY, model_name text NOT NULL, scored_at timestamptz DEFAULT now(),
    age integer, visits numeric, spend real, p_convert boolean, converted LABEL_TYPE,
    converted_at timestamp, model_version int4);
  CREATE INDEX scored_leads_poll ON scored_leads (model_name, converted_at, lead_id);
  CREATE INDEX scored_leads_scoring ON scored_leads (model_name, scored_at, lead_id)";

const OWN_SOURCE: &str = r#"
[source]
table = "scored_leads"
id_column = "lead_id"
model_column = "model_name"
feature_columns = ["age", "visits", "spend"]
prediction_column = "p_convert"
label_column = "converted"
labeled_at_column = "converted_at"
created_at_column = "scored_at"
model_version_column = "model_version"

[[models]]
name = "leads"
n_features = 3
[models.train]
enabled = false
"#;

async fn own_table(db: &mut TestDb, label_type: &str, rows: usize) {
    db.conn
        .execute(OWN_TABLE.replace("LABEL_TYPE", label_type).as_str())
        .await
        .unwrap();
    let label = if label_type == "boolean" {
        "(i % 3 = 0)"
    } else {
        "(i % 3)::text"
    };
    db.conn
        .execute(
            format!(
                "INSERT INTO scored_leads (model_name, age, visits, spend, p_convert, converted, converted_at) \
                 SELECT 'leads', 20 + i % 50, (i % 7)::numeric, i * 0.5, i % 2 = 0, {label}, \
                        '2026-01-01'::timestamp + i * interval '1 second' \
                 FROM generate_series(1, {rows}) AS i"
            )
            .as_str(),
        )
        .await
        .unwrap();
}

/// Waits for `child` to exit (a daemon that should refuse to start), killing it at the deadline.
fn wait_exit(child: &mut std::process::Child, timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn boolean_labels_and_integer_features_are_read_and_a_text_label_is_refused_at_start() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    own_table(&mut db, "boolean", 60).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &db.url, OWN_SOURCE);
    let cfgs = cfg.to_str().unwrap();
    let out = driftd(&["check-config", "--config", cfgs, "--database"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("database OK"),
        "{}",
        text(&out)
    );
    let d = Daemon::spawn(&cfg);
    db.wait_rows_processed("leads", 60, Duration::from_secs(60))
        .await;
    assert_eq!(d.get("/readyz"), (200, "ready\n".to_string()));
    let rejected = db
        .scalar_i64("SELECT count(*) FROM driftd.rejected_rows")
        .await;
    assert_eq!(rejected, 0, "{}", d.logs());
    drop(d);

    // A text label: refused at start, naming the key, the column and its type (exit 2), not
    // retried forever.
    let mut db = pg.fresh_db().await;
    own_table(&mut db, "text", 5).await;
    let cfg = write_config(dir.path(), &db.url, OWN_SOURCE);
    let mut child = Command::new(driftd_bin())
        .args(["run", "--config"])
        .arg(&cfg)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(60));
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status, Some(2), "{err}");
    assert!(
        err.contains("source.label_column (converted)") && err.contains("type text"),
        "{err}"
    );
    // check-config --database says the same beforehand.
    let out = driftd(&[
        "check-config",
        "--config",
        cfg.to_str().unwrap(),
        "--database",
    ]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("error: source.label_column (converted): type text"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn check_config_database_names_the_key_and_the_column() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    own_table(&mut db, "boolean", 3).await;
    let dir = tempfile::tempdir().unwrap();
    let check = |extra: &str, url: &str| {
        let cfg = write_config(dir.path(), url, extra);
        driftd(&[
            "check-config",
            "--config",
            cfg.to_str().unwrap(),
            "--database",
        ])
    };
    let stdout = |o: &Output| String::from_utf8_lossy(&o.stdout).to_string();

    // A typo in a feature column: exit 2, the key and the column named.
    let out = check(&OWN_SOURCE.replace("\"visits\"", "\"visit\""), &db.url);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        stdout(&out).contains("error: source.feature_columns (visit): column visit does not exist"),
        "{}",
        text(&out)
    );
    // The same as JSON: one document, the findings with their keys.
    let cfg = write_config(
        dir.path(),
        &db.url,
        &OWN_SOURCE.replace("\"visits\"", "\"visit\""),
    );
    let out = driftd(&[
        "check-config",
        "--config",
        cfg.to_str().unwrap(),
        "--database",
        "-o",
        "json",
    ]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(
        v["database_findings"][0]["key"], "source.feature_columns",
        "{v}"
    );
    assert_eq!(v["database_findings"][0]["column"], "visit", "{v}");
    // A misspelt table.
    let out = check(
        &OWN_SOURCE.replace("table = \"scored_leads\"", "table = \"scored_lead\""),
        &db.url,
    );
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        stdout(&out).contains("table scored_lead does not exist"),
        "{}",
        text(&out)
    );
    // No poll index, no index for the estimate: warnings saying which to create, exit 0.
    db.conn
        .execute("DROP INDEX scored_leads_poll; DROP INDEX scored_leads_scoring")
        .await
        .unwrap();
    let out = check(OWN_SOURCE, &db.url);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        stdout(&out)
            .contains("warning: source.table (model_name, converted_at, lead_id): no poll index")
            && stdout(&out)
                .contains("CREATE INDEX ON \"scored_leads\" (model_name, converted_at, lead_id)"),
        "{}",
        text(&out)
    );
    // The estimate reads scored rows by (model, scored_at, lead_id): without that index too,
    // the warning names the key and the index to create.
    assert!(
        stdout(&out).contains("warning: source.created_at_column (model_name, scored_at, lead_id)")
            && stdout(&out)
                .contains("CREATE INDEX ON \"scored_leads\" (model_name, scored_at, lead_id)"),
        "{}",
        text(&out)
    );
    // A role without the grants of sql/grants.sql.
    db.conn
        .execute("CREATE ROLE driftd_nogrants LOGIN")
        .await
        .unwrap();
    let limited = db.url.replacen("postgres@", "driftd_nogrants@", 1);
    let out = check(OWN_SOURCE, &limited);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        stdout(&out).contains("error: source.table (scored_leads): no SELECT privilege")
            && stdout(&out).contains("source.prediction_column (p_convert): no UPDATE privilege"),
        "{}",
        text(&out)
    );
    // An unreachable server is named by host and port (exit 1).
    let out = check(OWN_SOURCE, "postgres://postgres@127.0.0.1:1/none");
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("127.0.0.1:1"),
        "{}",
        text(&out)
    );
}

/// systemd's notify socket, collecting every datagram driftd sends.
fn notify_socket(dir: &Path) -> (String, Arc<Mutex<Vec<String>>>) {
    let path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = sock.recv(&mut buf) {
            sink.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..n]).to_string());
        }
    });
    (path.display().to_string(), got)
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_names_the_missing_table_and_the_failing_model() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    db.conn
        .execute("DROP TABLE outcomes CASCADE")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &db.url,
        &format!("{ONE_MODEL}[models.train]\nenabled = false\n"),
    );
    let text_cfg = std::fs::read_to_string(&cfg).unwrap().replace(
        "[poll]",
        "[poll]\nnot_ready_after_ms = 300\nownership_check_ms = 200",
    );
    std::fs::write(&cfg, text_cfg).unwrap();
    let (socket, status) = notify_socket(dir.path());
    let d = Daemon::spawn_with_env(&cfg, &[("NOTIFY_SOCKET", &socket)]);
    let said = |what: &'static str| {
        let status = status.clone();
        move || {
            let s = status.lock().unwrap().iter().any(|m| m.contains(what));
            async move { s }
        }
    };
    wait_until(
        Duration::from_secs(30),
        "/readyz names the missing table",
        || {
            let r = d.get("/readyz");
            async move {
                r.0 == 503
                    && serde_json::from_str::<serde_json::Value>(&r.1).ok()
                        == Some(serde_json::json!({
                            "error": "not ready: table public.outcomes does not exist"
                        }))
            }
        },
    )
    .await;
    wait_until(
        Duration::from_secs(30),
        "STATUS= names the missing table",
        said("STATUS=not ready: table public.outcomes does not exist"),
    )
    .await;
    assert_eq!(
        d.metric("driftd_database_up"),
        Some(1.0),
        "the database is up"
    );

    // The table appears: the daemon starts reading.
    db.conn
        .execute(driftd::db::OUTCOMES_REFERENCE_SQL)
        .await
        .unwrap();
    db.insert(&binary_rows("churn", 20, 0, None)).await;
    db.wait_rows_processed("churn", 20, Duration::from_secs(60))
        .await;
    wait_until(Duration::from_secs(30), "ready", || {
        let r = d.get("/readyz").0;
        async move { r == 200 }
    })
    .await;

    // A column goes away under the running daemon: its polls fail; after not_ready_after_ms
    // the replica is not ready, naming the model and the reason, and so is STATUS=.
    db.conn
        .execute("ALTER TABLE outcomes RENAME COLUMN features TO features_gone")
        .await
        .unwrap();
    db.conn
        .execute(
            "INSERT INTO outcomes (model, features_gone, prediction, label, labeled_at) \
             VALUES ('churn', '{1,2,3}', 0.5, 1, now() - interval '1 hour')",
        )
        .await
        .unwrap();
    wait_until(
        Duration::from_secs(30),
        "/readyz names the failing model",
        || {
            let (code, body) = d.get("/readyz");
            let error = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or_default();
            async move {
                code == 503
                    && error.starts_with("not ready: model churn: polls failing for over 0.3 s")
                    && error.contains("column \"features\" does not exist")
            }
        },
    )
    .await;
    wait_until(
        Duration::from_secs(30),
        "STATUS= names the failing model",
        said("not ready: model churn: polls failing"),
    )
    .await;
    assert_eq!(
        d.metric("driftd_database_up"),
        Some(1.0),
        "the database is still up"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_says_what_it_created_and_logs_are_plain_in_a_pipe() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    db.conn
        .execute("DROP TABLE outcomes CASCADE")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &db.url, ONE_MODEL);
    let cfgs = cfg.to_str().unwrap();
    let migrate = || driftd(&["migrate", "--config", cfgs, "--create-outcomes-table"]);
    let out = migrate();
    assert_eq!(code(&out), 0, "{}", text(&out));
    let first = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        first.contains("schema driftd created")
            && first.contains("migrations applied: 0001 monitor")
            && first.contains("table public.outcomes created"),
        "{first}"
    );
    let out = migrate();
    let again = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        again.contains("schema driftd exists")
            && again.contains("migrations: up to date")
            && again.contains("table public.outcomes exists: left as it is"),
        "{again}"
    );

    // An unknown model without templates: the list says "none", not an empty list.
    let out = driftd(&["retrain", "--config", cfgs, "--model", "nope"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("(models: churn; templates: none)"),
        "{}",
        text(&out)
    );

    // An unreachable database: the migration error names the server.
    let bad = write_config(
        dir.path(),
        "postgres://postgres@127.0.0.1:1/none",
        ONE_MODEL,
    );
    let out = driftd(&["migrate", "--config", bad.to_str().unwrap()]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot connect to 127.0.0.1:1"),
        "{}",
        text(&out)
    );
    // The daemon, its stderr a pipe and NO_COLOR unset: no colour codes in its log.
    let mut cmd = Command::new(driftd_bin());
    cmd.args(["run", "--config"])
        .arg(&bad)
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR");
    let raw = Arc::new(Mutex::new(String::new()));
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    {
        let raw = raw.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                raw.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
    }
    wait_until(Duration::from_secs(30), "a database-not-ready line", || {
        let s = raw.lock().unwrap().contains("database not ready");
        async move { s }
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let log = raw.lock().unwrap().clone();
    assert!(!log.contains('\x1b'), "colour codes in a pipe: {log:?}");
    assert!(log.contains("127.0.0.1:1"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_champion_trained_before_feature_drift_gets_a_reference_sample() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let model = "[[models]]\nname = \"churn\"\nn_features = 3\n[models.train]\nfit_epochs = 5\n\
                 [models.triggers]\nbootstrap_min_rows = 300\n";
    let cfg = write_config(dir.path(), &db.url, model);
    db.insert(&binary_rows("churn", 400, 0, None)).await;
    let mut d = Daemon::spawn(&cfg);
    let champion = "SELECT count(*) FROM driftd.model_versions WHERE status = 'champion'";
    let deadline = Instant::now() + Duration::from_secs(120);
    while db.try_scalar_i64(champion).await != Some(1) {
        assert!(Instant::now() < deadline, "no champion: {}", d.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    d.sigterm();
    let sampled = "SELECT count(*) FROM driftd.model_versions WHERE reference_sample IS NOT NULL";
    assert_eq!(db.scalar_i64(sampled).await, 0);

    // Feature drift enabled later: the champion's sample is computed from its training rows
    // and the check runs.
    let cfg = write_config(
        dir.path(),
        &db.url,
        &format!("{model}[models.feature_drift]\ncheck_interval = \"1s\"\nwindow_rows = 200\nmin_rows = 50\n"),
    );
    let d = Daemon::spawn(&cfg);
    let deadline = Instant::now() + Duration::from_secs(60);
    while db.scalar_i64(sampled).await != 1
        || db
            .scalar_i64("SELECT count(*) FROM driftd.feature_drift")
            .await
            == 0
    {
        assert!(
            Instant::now() < deadline,
            "no reference sample: {}",
            d.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        d.logs()
            .contains("reference sample computed from the champion's training rows"),
        "{}",
        d.logs()
    );
}
