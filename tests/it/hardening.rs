//! Issue 22 against the real daemon: tokens (none may be empty, each route says which it
//! needs, checked before the body), errors as JSON with database errors behind an id, the
//! memory one hostile body takes, liveness, features beyond f32's range, commands that need no
//! database secret, and a bounded fuzz run against every route.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use driftd::generate::{Stream, StreamSpec};
use serde_json::Value;
use sqlx::{Connection, Executor};

use crate::helpers::*;

const READ: &str = "read-t0ken";
const ADMIN: &str = "admin-t0ken";
const WAIT: Duration = Duration::from_secs(180);

fn driftd(args: &[&str]) -> std::process::Output {
    Command::new(driftd_bin())
        .args(args)
        .env_remove("DRIFTD_CONFIG")
        .output()
        .unwrap()
}

fn with_http(cfg: &Path, lines: &str) {
    let text = std::fs::read_to_string(cfg)
        .unwrap()
        .replace("[http]\n", &format!("[http]\n{lines}\n"));
    std::fs::write(cfg, text).unwrap();
}

/// A trained model `m` (6 features) from 600 prelabelled rows.
fn model_block() -> &'static str {
    r#"
[[models]]
name = "m"
n_features = 6
[models.train]
fit_epochs = 10
finetune_epochs = 5
[models.triggers]
bootstrap_min_rows = 400
"#
}

fn prelabelled(rows: usize) -> Vec<Row> {
    Stream::new(StreamSpec {
        n_features: 6,
        rows,
        abrupt_at: None,
        gradual: None,
        label_noise: 0.02,
        seed: 5,
        categorical: 0,
    })
    .map(|r| Row {
        model: "m".into(),
        features: r.features.iter().map(|&v| f64::from(v)).collect(),
        prediction: Some(if r.index % 3 == 0 { 0.2 } else { 0.8 }),
        label: Some(f64::from(r.label)),
        labeled_at_secs: Some(r.index as i64),
    })
    .collect()
}

fn req(
    d: &Daemon,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let bearer = auth.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(b) = &bearer {
        headers.push(("Authorization", b.as_str()));
    }
    http(d.addr, method, path, body, &headers)
}

/// The `error` of a JSON error body (panics, naming the request, if it is not one).
fn error_of(what: &str, status: u16, body: &str) -> String {
    let v: Value = serde_json::from_str(body)
        .unwrap_or_else(|_| panic!("{what}: {status} is not JSON: {body:?}"));
    v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: {status} has no error: {body}"))
        .to_string()
}

async fn trained_daemon(db: &mut TestDb, cfg: &Path) -> Daemon {
    let d = Daemon::spawn(cfg);
    db.insert(&prelabelled(600)).await;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let v = db
            .try_scalar_i64(
                "SELECT count(*) FROM driftd.model_versions WHERE model = 'm' AND status = 'champion'",
            )
            .await;
        let (status, _) = req(&d, "GET", "/v2/models/m/ready", Some(READ), None);
        if v.unwrap_or(0) > 0 && status == 200 {
            return d;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no champion served; logs: {}",
            d.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn empty_tokens_are_refused_at_load_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "postgres://x@127.0.0.1:1/db", ONE_MODEL);
    let check = |env: &[(&str, &str)]| {
        let mut cmd = Command::new(driftd_bin());
        cmd.args(["check-config", "--config"]).arg(&cfg);
        cmd.env_remove("DRIFTD_CONFIG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let out = check(&[("DRIFTD_HTTP__ADMIN_TOKEN", "")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("http.admin_token") && err.contains("empty"),
        "{err}"
    );
    let out = check(&[("DRIFTD_HTTP__READ_TOKEN", " ")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("http.read_token"), "{err}");
    // `driftd run` refuses the same, before it listens.
    let mut cmd = Command::new(driftd_bin());
    let out = cmd
        .args(["run", "--config"])
        .arg(&cfg)
        .env("DRIFTD_HTTP__ADMIN_TOKEN", "")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // In the file, and in a token file.
    with_http(&cfg, "admin_token = \"\"");
    let out = check(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("http.admin_token"), "{err}");
    let cfg = write_config(dir.path(), "postgres://x@127.0.0.1:1/db", ONE_MODEL);
    let tok = dir.path().join("read-token");
    std::fs::write(&tok, "\n").unwrap();
    with_http(&cfg, &format!("read_token_file = \"{}\"", tok.display()));
    let out = check(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("http.read_token_file"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn each_route_says_which_token_it_needs_and_checks_it_before_the_body() {
    let pg = shared_pg();
    let db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &db.url, model_block());
    with_http(
        &cfg,
        &format!("read_token = \"{READ}\"\nadmin_token = \"{ADMIN}\""),
    );
    let d = Daemon::spawn(&cfg);
    wait_until(WAIT, "migrated and ready", || {
        let ready = d.get("/readyz").0 == 200;
        async move { ready }
    })
    .await;
    // Reading: no token, a wrong one, another scheme: 401 naming the read token.
    for auth in [None, Some("wrong")] {
        let (s, body) = req(&d, "GET", "/v1/models", auth, None);
        assert_eq!(s, 401, "{body}");
        assert!(
            error_of("GET /v1/models", s, &body).contains("http.read_token"),
            "{body}"
        );
    }
    let (s, _) = http(
        d.addr,
        "GET",
        "/v1/models",
        None,
        &[("Authorization", &format!("Basic {READ}"))],
    );
    assert_eq!(s, 401);
    // `Bearer` in any case.
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let (s, body) = http(
            d.addr,
            "GET",
            "/v1/models",
            None,
            &[("Authorization", &format!("{scheme} {READ}"))],
        );
        assert_eq!(s, 200, "{scheme}: {body}");
    }
    // The retrain route needs the admin token; its 401 says so; the body is not looked at
    // before the token (a malformed body without a token is a 401, not a 400).
    let retrain = "/v1/models/m/retrain";
    for auth in [None, Some(READ)] {
        let (s, body) = req(&d, "POST", retrain, auth, Some("{not json"));
        assert_eq!(s, 401, "{body}");
        let e = error_of("retrain", s, &body);
        assert!(e.contains("admin token (http.admin_token)"), "{e}");
    }
    let (s, body) = req(&d, "POST", retrain, Some(ADMIN), Some("{not json"));
    assert_eq!(s, 400, "{body}");
    error_of("retrain, bad body", s, &body);
    let (s, body) = req(
        &d,
        "POST",
        retrain,
        Some(ADMIN),
        Some(r#"{"strategy": "nope"}"#),
    );
    assert_eq!(s, 400, "{body}");
    let (s, body) = req(&d, "POST", "/v1/models/nope/retrain", Some(ADMIN), None);
    assert_eq!(s, 404, "{body}");
    error_of("retrain, unknown model", s, &body);
    let (s, body) = req(&d, "POST", retrain, Some(ADMIN), None);
    assert_eq!(s, 202, "{body}");
    // PUT /log-level: the admin token; errors are JSON.
    let (s, body) = req(&d, "PUT", "/log-level", Some(READ), Some("debug"));
    assert_eq!(s, 401, "{body}");
    assert!(error_of("log-level", s, &body).contains("http.admin_token"));
    let (s, body) = req(&d, "PUT", "/log-level", Some(ADMIN), Some("info,,=x=y["));
    assert_eq!(s, 400, "{body}");
    error_of("log-level, bad filter", s, &body);
    let (s, body) = req(&d, "PUT", "/log-level", Some(ADMIN), Some("info"));
    assert_eq!(s, 200, "{body}");
    // No such route, no such method: JSON too.
    let (s, body) = req(&d, "GET", "/nope", Some(READ), None);
    assert_eq!(s, 404);
    error_of("/nope", s, &body);
    let (s, body) = req(&d, "DELETE", "/v1/models", Some(READ), None);
    assert_eq!(s, 405);
    error_of("DELETE /v1/models", s, &body);
    // Every answer was counted by route template and code.
    let m = |l: &str| d.metric(l).unwrap_or(0.0);
    assert!(m(r#"driftd_http_requests_total{code="401",route="/v1/models"}"#) >= 2.0);
    assert!(
        m(r#"driftd_http_requests_total{code="202",route="/v1/models/{model}/retrain"}"#) >= 1.0
    );
    assert!(m(r#"driftd_http_requests_total{code="404",route="unmatched"}"#) >= 1.0);
    assert!(m(r#"driftd_http_request_duration_seconds_count{route="/v1/models"}"#) >= 5.0);
    drop(d);

    // Without an admin token the admin API answers 404, saying how to turn it on.
    let cfg = write_config(dir.path(), &db.url, model_block());
    with_http(&cfg, &format!("read_token = \"{READ}\""));
    let d = Daemon::spawn(&cfg);
    for (method, path, body) in [
        ("POST", retrain, None),
        ("PUT", "/log-level", Some("debug")),
    ] {
        let (s, text) = req(&d, method, path, Some(READ), body);
        assert_eq!(s, 404, "{method} {path}: {text}");
        let e = error_of(path, s, &text);
        assert!(
            e.contains("admin API is off") && e.contains("http.admin_token"),
            "{e}"
        );
    }
    let (s, _) = req(&d, "GET", "/v1/models", Some(READ), None);
    assert_eq!(s, 200);
    drop(d);

    // With no token at all, nothing opens without one (an empty header is no token).
    let cfg = write_config(dir.path(), &db.url, model_block());
    let d = Daemon::spawn(&cfg);
    for (method, path) in [
        ("GET", "/v1/models"),
        ("POST", "/v1/models/m/predict"),
        ("GET", "/v1/models/m/champion"),
    ] {
        let (s, body) = http(d.addr, method, path, Some("{}"), &[]);
        assert_eq!(s, 401, "{method} {path}: {body}");
        let (s, _) = http(
            d.addr,
            method,
            path,
            Some("{}"),
            &[("Authorization", "Bearer ")],
        );
        assert_eq!(s, 401, "{method} {path}");
    }
    let (s, _) = req(&d, "POST", retrain, None, None);
    assert_eq!(s, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_error_reaches_the_client_as_an_id_only() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &db.url, model_block());
    with_http(
        &cfg,
        &format!("read_token = \"{READ}\"\nadmin_token = \"{ADMIN}\""),
    );
    let d = Daemon::spawn(&cfg);
    wait_until(WAIT, "migrations", || {
        let ok = req(&d, "GET", "/v1/models/m", Some(READ), None).0 == 200;
        async move { ok }
    })
    .await;
    db.conn
        .execute("ALTER TABLE driftd.model_versions RENAME TO model_versions_away")
        .await
        .unwrap();
    let (s, body) = req(&d, "GET", "/v1/models/m", Some(READ), None);
    db.conn
        .execute("ALTER TABLE driftd.model_versions_away RENAME TO model_versions")
        .await
        .unwrap();
    assert_eq!(s, 503, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let id = v["error_id"].as_str().unwrap().to_string();
    let e = v["error"].as_str().unwrap();
    assert!(
        e.contains("cannot read the registry") && e.contains(&id),
        "{e}"
    );
    assert!(
        !body.contains("model_versions") && !body.contains("relation"),
        "{body}"
    );
    wait_until(
        Duration::from_secs(10),
        "the error in the log with its id",
        || {
            let logs = d.logs();
            let found = logs
                .lines()
                .any(|l| l.contains(&id) && l.contains("model_versions"));
            async move { found }
        },
    )
    .await;
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap()
    };
    field("VmHWM:")
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Resets the peak RSS (VmHWM) to the current RSS (`clear_refs` 5, Linux ≥ 4.0).
fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// Bodies just under 8 MiB (the default serve.max_body_bytes) of every shape that used to
/// grow: empty objects, one endless row, an endless string, nested arrays, many inputs,
/// parameters, outputs, data.
fn hostile_bodies(size: usize) -> Vec<(&'static str, &'static str, Vec<u8>)> {
    fn fill(head: &str, unit: &str, tail: &str, size: usize) -> Vec<u8> {
        let n = (size - head.len() - tail.len()) / unit.len();
        let mut b = String::with_capacity(size);
        b.push_str(head);
        for i in 0..n {
            b.push_str(if i + 1 == n {
                unit.trim_end_matches(',')
            } else {
                unit
            });
        }
        b.push_str(tail);
        b.into_bytes()
    }
    let v1 = "/v1/models/m/predict";
    let v2 = "/v2/models/m/infer";
    let input = r#"{"name":"input","datatype":"FP32","shape":[1,6],"data":["#;
    vec![
        (
            "v1 empty objects",
            v1,
            fill(r#"{"rows":["#, "{},", "]}", size),
        ),
        (
            "v1 one endless row",
            v1,
            fill(r#"{"rows":[["#, "0,", "]]}", size),
        ),
        (
            "v1 many valid rows",
            v1,
            fill(r#"{"rows":["#, "[0,0,0,0,0,0],", "]}", size),
        ),
        ("v1 empty rows", v1, fill(r#"{"rows":["#, "[],", "]}", size)),
        (
            "v1 endless string",
            v1,
            fill(r#"{"x":""#, "a", r#""}"#, size),
        ),
        (
            "v2 endless data",
            v2,
            fill(&format!(r#"{{"inputs":[{input}"#), "0,", "]}]}", size),
        ),
        (
            "v2 many inputs",
            v2,
            fill(
                r#"{"inputs":["#,
                r#"{"name":"","shape":[],"datatype":""},"#,
                "]}",
                size,
            ),
        ),
        (
            "v2 endless shape",
            v2,
            fill(
                r#"{"inputs":[{"name":"input","datatype":"FP32","shape":["#,
                "0,",
                "]}]}",
                size,
            ),
        ),
        (
            "v2 parameters",
            v2,
            fill(r#"{"parameters":{"a":["#, "0,", r#"]},"inputs":[]}"#, size),
        ),
        (
            "v2 many outputs",
            v2,
            fill(r#"{"inputs":[],"outputs":["#, r#"{"name":""},"#, "]}", size),
        ),
        (
            "v2 nested data",
            v2,
            fill(&format!(r#"{{"inputs":[{input}"#), "[0],", "]}]}", size),
        ),
    ]
}

/// Each hostile body raises the peak RSS by less than 10× its size (printed: the ratio to
/// the RSS measured just before it).
fn hostile_bodies_stay_small(d: &Daemon, pid: u32) {
    let size = (8 << 20) - 4096;
    let auth = format!("Bearer {READ}");
    let mut worst = 0.0f64;
    let mut report = Vec::new();
    for (what, path, body) in hostile_bodies(size) {
        assert!(body.len() <= size, "{what}");
        let text = String::from_utf8(body).unwrap();
        let before = rss_kib(pid);
        let peak_reset = reset_peak(pid);
        let (s, resp) = http(
            d.addr,
            "POST",
            path,
            Some(&text),
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
        );
        assert_eq!(s, 400, "{what}: {resp}");
        error_of(what, s, &resp);
        let after = if peak_reset {
            peak_rss_kib(pid)
        } else {
            rss_kib(pid)
        };
        let grew = after.saturating_sub(before) as f64 * 1024.0;
        let ratio = grew / text.len() as f64;
        worst = worst.max(ratio);
        report.push(format!(
            "{what}: RSS {before} KiB before, peak {after} KiB: +{:.1} MiB = {ratio:.2}× the body",
            grew / 1048576.0
        ));
    }
    println!(
        "hostile bodies of {size} bytes (peak measured: {}):\n{}",
        reset_peak(pid),
        report.join("\n")
    );
    assert!(worst < 10.0, "{}", report.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn healthz_fails_while_a_model_loop_is_stuck_and_recovers() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &db.url, model_block());
    with_http(&cfg, "liveness_timeout_ms = 3000");
    let d = Daemon::spawn(&cfg);
    wait_until(WAIT, "live and ready", || {
        let ok = d.get("/healthz").0 == 200 && d.get("/readyz").0 == 200;
        async move { ok }
    })
    .await;
    // A transaction that holds the outcomes table: the model loop's next read waits on it.
    let mut blocker = sqlx::PgConnection::connect(&db.url).await.unwrap();
    blocker.execute("BEGIN").await.unwrap();
    blocker
        .execute("LOCK TABLE public.outcomes IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    // Wake the loop (as the outcomes trigger would): it reads the table, and waits.
    db.conn
        .execute("NOTIFY driftd_outcomes, 'm'")
        .await
        .unwrap();
    let mut failing = String::new();
    wait_until(Duration::from_secs(60), "/healthz failing", || {
        let (s, body) = d.get("/healthz");
        if s == 503 {
            failing = body;
        }
        async move { s == 503 }
    })
    .await;
    let e = error_of("/healthz", 503, &failing);
    assert!(
        e.contains("model loops") && e.contains('m') || e.contains("ownership round"),
        "{e}"
    );
    blocker.execute("ROLLBACK").await.unwrap();
    wait_until(Duration::from_secs(60), "/healthz ok again", || {
        let ok = d.get("/healthz").0 == 200;
        async move { ok }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_feature_beyond_f32s_range_is_rejected_as_non_finite() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    db.conn
        .execute("ALTER TABLE outcomes ALTER COLUMN features TYPE float8[]")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let block = "[[models]]\nname = \"m\"\nn_features = 3\n[models.train]\nenabled = false\n";
    let cfg = write_config(dir.path(), &db.url, block);
    let d = Daemon::spawn(&cfg);
    db.insert(&binary_rows("m", 18, 0, None)).await;
    // float8 values the reference table's real[] could not even hold.
    let ids: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO outcomes (model, created_at, features, prediction, label, labeled_at) \
         VALUES ('m', now(), ARRAY[0.5, 1e39, 1]::float8[], 0.5, 1, to_timestamp($1)), \
                ('m', now(), ARRAY[0.5, 1, -3.5e38]::float8[], 0.5, 0, to_timestamp($1 + 1)) \
         RETURNING id",
    )
    .bind((BASE_TS + 100) as f64)
    .fetch_all(&mut db.conn)
    .await
    .unwrap();
    let sql = format!(
        "SELECT count(*) FROM driftd.rejected_rows WHERE model = 'm' AND reason = 'non_finite_feature' AND source_id IN ({}, {})",
        ids[0], ids[1]
    );
    let deadline = std::time::Instant::now() + WAIT;
    while db.try_scalar_i64(&sql).await != Some(2) {
        assert!(std::time::Instant::now() < deadline, "{}", d.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(db.rows_processed("m").await, 18);
    wait_until(Duration::from_secs(10), "the rejections counted", || {
        let n = d.metric(r#"driftd_rows_rejected_total{model="m",reason="non_finite_feature"}"#);
        async move { n == Some(2.0) }
    })
    .await;
}

fn example_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/driftd.toml")
}

#[test]
fn commands_without_a_database_read_no_database_secret() {
    let dir = tempfile::tempdir().unwrap();
    // generate, then the example's own column names (Elec2's six features).
    let input = dir.path().join("stream.csv");
    let out = Command::new(driftd_bin())
        .args(["generate", "--rows", "2600", "--n-features", "6", "--out"])
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&input).unwrap();
    let (head, rest) = text.split_once('\n').unwrap();
    let names = [
        "period",
        "nswprice",
        "nswdemand",
        "vicprice",
        "vicdemand",
        "transfer",
    ];
    let mut head = head.to_string();
    for (i, n) in names.iter().enumerate() {
        head = head.replace(&format!("f{i}"), n);
    }
    std::fs::write(&input, format!("{head}\n{rest}")).unwrap();
    // The example names /run/credentials/driftd.service/db-password, which exists only in
    // the service: backtest never reads it.
    let example = example_config();
    let out = Command::new(driftd_bin())
        .args(["backtest", "--config"])
        .arg(&example)
        .arg("--input")
        .arg(&input)
        .env_remove("DRIFTD_DATABASE__PASSWORD_FILE")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("rows evaluated"));
    // check-config says OK and warns, naming the key.
    let out = driftd(&["check-config", "--config", example.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("warning") && err.contains("database.password_file"),
        "{err}"
    );
    // A command that connects still needs it, and says which key.
    let out = driftd(&["models", "list", "--config", example.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("database.password_file"), "{err}");
}

/// Every route of the daemon, with `{model}` and `{version}` to fill in.
const ROUTES: &[&str] = &[
    "/metrics",
    "/healthz",
    "/readyz",
    "/log-level",
    "/v1/models",
    "/v1/models/{model}",
    "/v1/models/{model}/predict",
    "/v1/models/{model}/champion",
    "/v1/models/{model}/champion/sidecar",
    "/v1/models/{model}/retrain",
    "/v2",
    "/v2/health/live",
    "/v2/health/ready",
    "/v2/models/{model}",
    "/v2/models/{model}/ready",
    "/v2/models/{model}/infer",
    "/v2/models/{model}/versions/{version}",
    "/v2/models/{model}/versions/{version}/ready",
    "/v2/models/{model}/versions/{version}/infer",
    "/no/such/route",
];

/// One malformed (or, now and then, valid) request: method, path, headers, body. The request
/// line and headers are valid HTTP/1.1 (hyper answers a malformed request line with a bare
/// 400 before any route sees it); everything a route reads is fuzzed.
struct Fuzzed {
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

fn pick<T: Clone>(rng: &mut driftd::splitmix::SplitMix64, from: &[T]) -> T {
    from[rng.below(from.len() as u64) as usize].clone()
}

fn fuzz_body(rng: &mut driftd::splitmix::SplitMix64) -> Vec<u8> {
    let valid_v1 = r#"{"rows": [[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]]}"#;
    let valid_v2 = r#"{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 6], "data": [1, 2, 3, 4, 5, 6]}]}"#;
    let pieces = [
        "",
        "{",
        "}",
        "[",
        "]",
        "{}",
        "[]",
        "null",
        "true",
        "1e999",
        "-0",
        "\"",
        "\\u0000",
        r#"{"rows": "#,
        r#"{"rows": [[1e39, 1, 1, 1, 1, 1]]}"#,
        r#"{"rows": [{"a": 1}]}"#,
        r#"{"inputs": [{"name": "input"}]}"#,
        r#"{"strategy": 7}"#,
        r#"{"reason": []}"#,
        "debug",
        "info,x=[",
        "\u{feff}",
        "\u{1F600}",
        valid_v1,
        valid_v2,
        "[[[[[[[[[[",
        r#"{"inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 6], "data": []}]}"#,
    ];
    let mut b = Vec::new();
    for _ in 0..rng.below(4) + 1 {
        let p = pick(rng, &pieces).as_bytes();
        // Cut a piece at a random place now and then.
        let cut = if rng.below(3) == 0 {
            rng.below(p.len() as u64 + 1) as usize
        } else {
            p.len()
        };
        b.extend_from_slice(&p[..cut]);
    }
    if rng.below(8) == 0 {
        b.extend((0..rng.below(64)).map(|_| rng.below(256) as u8));
    }
    b
}

fn fuzzed(rng: &mut driftd::splitmix::SplitMix64) -> Fuzzed {
    let long = "x".repeat(300);
    let models: [&str; 8] = [
        "m",
        "nope",
        "%FF%FE",
        "a%00b",
        "..",
        &long,
        "m%2Fpredict",
        "%C3%A9",
    ];
    let versions = ["1", "2", "-1", "v1", "99999999999999999999", "%FF"];
    let route = pick(rng, ROUTES);
    let path = route
        .replace("{model}", pick(rng, &models))
        .replace("{version}", pick(rng, &versions));
    // Mostly a token that opens the route, so that the bodies reach the handlers.
    let auths = [
        Some(format!("Bearer {READ}")),
        Some(format!("bearer {ADMIN}")),
        Some(format!("Bearer {ADMIN}")),
        Some(format!("BEARER {READ}")),
        None,
        Some("Bearer wrong".to_string()),
        Some("Bearer ".to_string()),
        Some(format!("Basic {READ}")),
        Some("Bearer \tx y".to_string()),
    ];
    let mut headers = Vec::new();
    if let Some(a) = pick(rng, &auths) {
        headers.push(("Authorization", a));
    }
    let types = [
        "application/json",
        "text/plain",
        "application/octet-stream",
        "json; charset=x",
    ];
    if rng.below(4) != 0 {
        headers.push(("Content-Type", pick(rng, &types).to_string()));
    }
    if rng.below(6) == 0 {
        let lens = ["0", "5", "-3", "x", "99999999"];
        headers.push((
            "Inference-Header-Content-Length",
            pick(rng, &lens).to_string(),
        ));
    }
    let mut body = fuzz_body(rng);
    // A valid retrain request with the admin token would start trainings: keep those malformed.
    if route.ends_with("/retrain") {
        body.insert(0, b'x');
    }
    Fuzzed {
        method: if rng.below(4) == 0 {
            pick(rng, &["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
        } else {
            method_of(route, rng)
        },
        path,
        headers,
        body,
    }
}

/// The method a route answers (for `/log-level`, either).
fn method_of(route: &str, rng: &mut driftd::splitmix::SplitMix64) -> &'static str {
    if route.ends_with("/predict") || route.ends_with("/infer") || route.ends_with("/retrain") {
        "POST"
    } else if route == "/log-level" && rng.below(2) == 0 {
        "PUT"
    } else {
        "GET"
    }
}

/// Sends raw bytes (the body need not be UTF-8); `(0, "")` when there is no answer.
fn send(addr: std::net::SocketAddr, f: &Fuzzed) -> (u16, String) {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "{} {} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        f.method,
        f.path,
        f.body.len()
    )
    .into_bytes();
    for (k, v) in &f.headers {
        req.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    req.extend_from_slice(&f.body);
    if s.write_all(&req).is_err() {
        return (0, String::new());
    }
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    parse_http_response(&resp)
}

/// `n` fuzzed requests: none answered 5xx, every 4xx is `{"error": …}`; the counts by status.
fn fuzz(d: &Daemon, n: usize, seed: u64) -> std::collections::BTreeMap<u16, usize> {
    let mut rng = driftd::splitmix::SplitMix64(seed);
    let mut seen = std::collections::BTreeMap::new();
    for i in 0..n {
        let f = fuzzed(&mut rng);
        let (s, body) = send(d.addr, &f);
        let what = format!("request {i}: {} {} {:?}", f.method, f.path, f.headers);
        assert!(s != 0, "{what}: no answer; logs: {}", d.logs());
        assert!(s < 500, "{what}: {s} {body}");
        if s >= 400 {
            error_of(&what, s, &body);
        }
        *seen.entry(s).or_insert(0) += 1;
    }
    seen
}

/// Rows that arrive labelled but without a prediction, in a table driftd scores: scored,
/// then counted, none rejected as `missing_prediction`.
async fn rows_labelled_before_they_are_scored_are_scored(db: &mut TestDb) {
    db.wait_rows_processed("m", 600, WAIT).await;
    let mut late = prelabelled(30);
    for r in &mut late {
        r.prediction = None;
        r.labeled_at_secs = r.labeled_at_secs.map(|s| s + 10_000);
    }
    db.insert(&late).await;
    db.wait_rows_processed("m", 630, WAIT).await;
    let missing = db
        .scalar_i64("SELECT count(*) FROM driftd.rejected_rows WHERE reason = 'missing_prediction'")
        .await;
    assert_eq!(missing, 0);
    let unscored = db
        .scalar_i64("SELECT count(*) FROM outcomes WHERE prediction IS NULL")
        .await;
    assert_eq!(unscored, 0);
}

/// One trained daemon: late-scored rows, hostile bodies, then the fuzz run.
#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_body_of_any_shape_takes_less_than_ten_times_its_size() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &db.url, model_block());
    with_http(
        &cfg,
        &format!("read_token = \"{READ}\"\nadmin_token = \"{ADMIN}\""),
    );
    let d = trained_daemon(&mut db, &cfg).await;
    rows_labelled_before_they_are_scored_are_scored(&mut db).await;
    let pid = d.child.id();
    hostile_bodies_stay_small(&d, pid);
    // Thousands of malformed requests, every route, with and without tokens.
    let before = rss_kib(pid);
    let peak_reset = reset_peak(pid);
    let seen = fuzz(&d, 4000, 22);
    let after = if peak_reset {
        peak_rss_kib(pid)
    } else {
        rss_kib(pid)
    };
    println!("fuzz: 4000 requests, answers by status {seen:?}; RSS {before} KiB before, peak {after} KiB");
    assert!(seen.len() >= 5, "too few kinds of answers: {seen:?}");
    assert!(
        after < before + 200 * 1024,
        "RSS grew from {before} to {after} KiB"
    );
    let (s, _) = req(&d, "PUT", "/log-level", Some(ADMIN), Some("info,sqlx=warn"));
    assert_eq!(s, 200);
    // Still serving.
    let row = r#"{"rows": [[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]]}"#;
    let (s, body) = req(&d, "POST", "/v1/models/m/predict", Some(READ), Some(row));
    assert_eq!(s, 200, "{body}");
    assert_eq!(d.get("/healthz").0, 200);
}

/// A request whose body never finishes: it holds a slot until its timeout.
fn open_slow_request(d: &Daemon) -> std::net::TcpStream {
    use std::io::Write;
    let mut slow = std::net::TcpStream::connect(d.addr).unwrap();
    write!(
        slow,
        "POST /v1/models/m/predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {READ}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"rows\""
    )
    .unwrap();
    slow
}

/// Whether the server has answered (or closed) `conn` already.
fn answered(conn: &std::net::TcpStream) -> bool {
    conn.set_nonblocking(true).unwrap();
    let seen = match conn.peek(&mut [0u8; 1]) {
        Ok(_) => true,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    conn.set_nonblocking(false).unwrap();
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_over_the_limits_gets_a_json_503() {
    use std::io::Read;
    let pg = shared_pg();
    let db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &db.url, model_block());
    with_http(
        &cfg,
        &format!(
            "read_token = \"{READ}\"\nmax_concurrent_requests = 1\nrequest_timeout_ms = 15000"
        ),
    );
    let d = Daemon::spawn(&cfg);
    // The slow request holds the one slot until its timeout (long enough that a loaded
    // machine still sees the refusal before the slot is freed). If it arrived while a probe
    // below held the slot, it was refused itself: then another is sent.
    let mut slow = open_slow_request(&d);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (s, body) = req(&d, "GET", "/v1/models", Some(READ), None);
        if s == 503 && body.contains("http.max_concurrent_requests") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no request refused for the limit: {s} {body}"
        );
        if answered(&slow) {
            slow = open_slow_request(&d);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Probes are not limited.
    assert_eq!(d.get("/healthz").0, 200);
    slow.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut resp = Vec::new();
    let _ = slow.read_to_end(&mut resp);
    let (s, body) = parse_http_response(&resp);
    assert_eq!(s, 503, "{body}");
    assert!(error_of("slow request", s, &body).contains("http.request_timeout_ms"));
    // The slot is free again.
    let (s, body) = req(&d, "GET", "/v1/models", Some(READ), None);
    assert_eq!(s, 200, "{body}");
    assert!(
        d.metric(r#"driftd_http_requests_total{code="503",route="/v1/models"}"#)
            .unwrap_or(0.0)
            >= 1.0
    );
}
