//! Grafana drift dashboards and alert rules, proven against a real Prometheus scraping the
//! real daemon: every PromQL expression of `dashboards/*.json` and
//! `deploy/prometheus/alerts.yml` (as listed by `scripts/list_promql.py`) is evaluated through
//! Prometheus' HTTP API while driftd processes a drifting workload, trains, scores and rejects
//! rows. Also the run-time log level (`GET`/`PUT /log-level`).

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::Executor;

use crate::helpers::*;

/// Training and the first scrapes share two cores with the other tests: be generous.
const WAIT: Duration = Duration::from_secs(240);
/// Prometheus makes the first sample queryable only after about 6 s (validators note).
const PROM_WAIT: Duration = Duration::from_secs(90);

const MODEL: &str = "churn";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `GET` over HTTP/1.0, so that Go's server answers without chunked encoding and closes.
fn http10_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let req = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: application/json\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    parse_http_response(&resp)
}

fn free_loopback_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Debian's `prometheus`, run by hand in a temporary directory; killed on drop.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Scrapes `target` every second as job `driftd` and evaluates `rules` every second.
    fn start(target: SocketAddr, rules: &Path) -> Prometheus {
        let mut last_log = String::new();
        // The port is picked free and then handed over: retry if someone took it meanwhile.
        for _attempt in 0..3 {
            let dir = tempfile::Builder::new()
                .prefix("driftd-prom")
                .tempdir()
                .unwrap();
            let config = dir.path().join("prometheus.yml");
            std::fs::write(
                &config,
                format!(
                    "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                     rule_files:\n  - {rules}\n\
                     scrape_configs:\n  - job_name: driftd\n    metrics_path: /metrics\n    \
                     scrape_interval: 1s\n    scrape_timeout: 1s\n    static_configs:\n      \
                     - targets: [\"{target}\"]\n",
                    rules = rules.display(),
                ),
            )
            .unwrap();
            let addr: SocketAddr = format!("127.0.0.1:{}", free_loopback_port())
                .parse()
                .unwrap();
            let log = dir.path().join("prometheus.log");
            let logf = std::fs::File::create(&log).unwrap();
            let child = Command::new("/usr/bin/prometheus")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .stdin(Stdio::null())
                .stdout(logf.try_clone().unwrap())
                .stderr(logf)
                .spawn()
                .expect("spawn /usr/bin/prometheus (scripts/setup.sh installs it)");
            // If the test process dies without unwinding (kill -9), do not leave Prometheus
            // behind: a watchdog stops it (and ends when Prometheus is gone).
            let _ = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "(while [ -d /proc/{me} ] && [ -d /proc/{pid} ]; do sleep 1; done; \
                     [ -d /proc/{pid} ] && kill {pid}) >/dev/null 2>&1 &",
                    me = std::process::id(),
                    pid = child.id(),
                ))
                .status();
            let mut p = Prometheus {
                child,
                addr,
                log,
                _dir: dir,
            };
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if let Ok(Some(_)) = p.child.try_wait() {
                    last_log = p.log();
                    break; // exited: try again on another port
                }
                if http10_get(p.addr, "/-/ready").0 == 200 {
                    return p;
                }
                assert!(
                    Instant::now() < deadline,
                    "Prometheus not ready after 60 s; log:\n{}",
                    p.log()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        panic!("Prometheus did not start; last log:\n{last_log}");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn api(&self, path: &str) -> Result<Value, String> {
        let (status, body) = http10_get(self.addr, path);
        let v: Value = serde_json::from_str(&body)
            .map_err(|e| format!("HTTP {status}, unreadable body ({e}): {body}"))?;
        if status != 200 || v["status"] != "success" {
            return Err(format!(
                "HTTP {status}: {}: {}",
                v["errorType"].as_str().unwrap_or("?"),
                v["error"].as_str().unwrap_or(&body)
            ));
        }
        if let Some(w) = v.get("warnings") {
            eprintln!("prometheus warnings for {path}: {w}");
        }
        Ok(v["data"].clone())
    }

    /// An instant query; Ok(number of series or values), Err(Prometheus' error).
    fn query(&self, expr: &str) -> Result<usize, String> {
        let data = self.api(&format!("/api/v1/query?query={}", percent_encode(expr)))?;
        match data["resultType"].as_str() {
            Some("vector") | Some("matrix") => Ok(data["result"].as_array().map_or(0, |a| a.len())),
            Some("scalar") | Some("string") => Ok(1),
            other => Err(format!("unexpected resultType {other:?}: {data}")),
        }
    }
}

#[derive(Debug, Clone)]
struct Expr {
    file: String,
    kind: String,
    title: String,
    expr: String,
    must_have_data: bool,
}

fn list_promql(model: &str) -> Vec<Expr> {
    let root = repo_root();
    let out = Command::new("python3")
        .arg(root.join("scripts/list_promql.py"))
        .args(["--model", model, "--root"])
        .arg(&root)
        .output()
        .expect("run python3 scripts/list_promql.py");
    assert!(
        out.status.success(),
        "list_promql.py failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let exprs: Vec<Expr> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            let s = |k: &str| {
                v[k].as_str()
                    .unwrap_or_else(|| panic!("no {k}: {l}"))
                    .to_string()
            };
            Expr {
                file: s("file"),
                kind: s("kind"),
                title: s("title"),
                expr: s("expr"),
                must_have_data: v["must_have_data"].as_bool().expect("must_have_data"),
            }
        })
        .collect();
    // Both dashboards and the alert rules must be there, or this test proves little.
    for f in [
        "dashboards/overview.json",
        "dashboards/model-drift.json",
        "deploy/prometheus/alerts.yml",
    ] {
        assert!(
            exprs.iter().any(|e| e.file == f),
            "list_promql.py listed nothing from {f}"
        );
    }
    assert!(exprs.iter().any(|e| e.kind == "annotation"));
    assert!(exprs.iter().any(|e| e.must_have_data));
    exprs
}

/// `driftd_*` names in an expression, histogram suffixes stripped.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = expr.as_bytes();
    let mut i = 0;
    while let Some(off) = expr[i..].find("driftd_") {
        let start = i + off;
        // Not in the middle of another identifier.
        let boundary =
            start == 0 || !(b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'_');
        let mut end = start + "driftd_".len();
        while end < b.len()
            && (b[end].is_ascii_lowercase() || b[end].is_ascii_digit() || b[end] == b'_')
        {
            end += 1;
        }
        if boundary {
            let mut name = &expr[start..end];
            for suffix in ["_bucket", "_sum", "_count"] {
                if let Some(base) = name.strip_suffix(suffix) {
                    name = base;
                    break;
                }
            }
            out.insert(name.to_string());
        }
        i = end;
    }
    out
}

/// The metric families `/metrics` exposes (with at least one sample: the exporter leaves
/// out families without series).
fn exposed_families(metrics_text: &str) -> BTreeSet<String> {
    let typed: BTreeSet<String> = metrics_text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    let sampled: BTreeSet<String> = metrics_text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let name = l.split(['{', ' ']).next().unwrap_or("");
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|b| typed.contains(*b)))
                .unwrap_or(name)
                .to_string()
        })
        .collect();
    typed.intersection(&sampled).cloned().collect()
}

const WORKLOAD_MODEL: &str = r#"
[[models]]
name = "churn"
n_features = 3

[models.train]
fit_epochs = 5
finetune_epochs = 3

# The challenger in shadow (driftd_shadow_accuracy).
[models.shadow]
enabled = true

[models.triggers]
bootstrap_min_rows = 500

[[models.triggers.schedules]]
cron = "0 0 3 * * Mon"
strategy = "finetune_combined"

[models.triggers.drift]
min_new_rows = 200
cooldown = "1s"

# The floor the accuracy alert compares with (driftd_accuracy_floor); no threshold trigger.
[models.triggers.threshold]
min_accuracy = 0.7

[models.feature_drift]
check_interval = "1s"
window_rows = 300
min_rows = 100

# A model with a categorical feature (the reference table's `categories`), for the
# categorical drift gauges.
[[models]]
name = "plans"
n_features = 2
feature_names = ["spend", "plan"]
categorical_features = ["plan"]
[models.train]
fit_epochs = 5
[models.triggers]
bootstrap_min_rows = 300
[models.feature_drift]
check_interval = "1s"
window_rows = 200
min_rows = 100
"#;

/// 400 labelled rows of the `plans` model: one number, one plan (a category).
const PLANS_ROWS: &str =
    "INSERT INTO outcomes (model, features, categories, prediction, label, labeled_at) \
     SELECT 'plans', ARRAY[(i % 7)::real], ARRAY[(ARRAY['free', 'pro', 'team'])[1 + i % 3]], 0.5, \
            (i % 3 > 0)::int, to_timestamp(1767225600 + i) \
     FROM generate_series(1, 400) AS i";

fn bad_rows(start_secs: i64) -> Vec<Row> {
    let good = |i: i64| Row {
        model: MODEL.into(),
        features: vec![0.5, 1.0, 1.0],
        prediction: Some(0.8),
        label: Some(1.0),
        labeled_at_secs: Some(start_secs + i),
    };
    let mut rows = Vec::new();
    let mut bad = |i: i64, f: &dyn Fn(&mut Row)| {
        let mut r = good(i);
        f(&mut r);
        rows.push(r);
    };
    bad(0, &|r| r.features = vec![1.0, 2.0]);
    bad(1, &|r| r.features = vec![1.0, f64::NAN, 3.0]);
    bad(2, &|r| r.label = Some(0.5));
    bad(3, &|r| r.prediction = Some(1.7));
    rows
}

/// Panels (and the drift annotation) that this workload fills although `list_promql.py`
/// does not require data of them in general: (file, title); every expression of each must
/// return data. Left out because this workload cannot fill them: failed / not-promoted
/// retrains, "Champion change" (depends on whether the drift update is promoted), and "Retrain
/// promoted", whose `changes(…[1m])` only shows within a minute of the promotion. (The first
/// retrain in `increase()` is checked on its own, below.)
const WORKLOAD_DATA: &[(&str, &str)] = &[
    ("dashboards/model-drift.json", "Rolling log loss"),
    ("dashboards/model-drift.json", "Rolling Brier score"),
    ("dashboards/model-drift.json", "Detector estimates"),
    ("dashboards/model-drift.json", "Detector warnings"),
    ("dashboards/model-drift.json", "Drift detections"),
    ("dashboards/model-drift.json", "Last drift"),
    ("dashboards/model-drift.json", "Drift events in range"),
    ("dashboards/model-drift.json", "Rows per second"),
    ("dashboards/model-drift.json", "Rejected rows by reason"),
    ("dashboards/model-drift.json", "Owner"),
    ("dashboards/model-drift.json", "Retrains"),
    ("dashboards/model-drift.json", "Retrains in range"),
    (
        "dashboards/model-drift.json",
        "Training duration by strategy",
    ),
    ("dashboards/model-drift.json", "Champion version"),
    ("dashboards/model-drift.json", "Champion"),
    ("dashboards/model-drift.json", "Last retrain"),
    ("dashboards/model-drift.json", "Next scheduled retrain"),
    ("dashboards/model-drift.json", "PSI per feature"),
    ("dashboards/model-drift.json", "Drifted features ratio"),
    ("dashboards/model-drift.json", "KS statistic per feature"),
    ("dashboards/model-drift.json", "Feature drift statistics"),
    ("dashboards/model-drift.json", "Drift"),
    ("dashboards/overview.json", "Database"),
    ("dashboards/overview.json", "Unowned models"),
    ("dashboards/overview.json", "Drift events"),
    ("dashboards/overview.json", "Retrains"),
    ("dashboards/overview.json", "Drift detections"),
    ("dashboards/overview.json", "Retrains by result"),
    ("dashboards/overview.json", "Drift warnings"),
    ("dashboards/overview.json", "Model summary"),
    ("dashboards/overview.json", "Rows rejected"),
    ("dashboards/overview.json", "Poll errors"),
    ("dashboards/overview.json", "Drift"),
];

fn workload_fills(e: &Expr) -> bool {
    e.kind != "alert"
        && WORKLOAD_DATA
            .iter()
            .any(|(f, t)| *f == e.file && *t == e.title)
}

/// Polls `expr` until Prometheus returns data; Err with the reason at the deadline or on
/// the first query error.
async fn poll_for_data(prom: &Prometheus, expr: &str, deadline: Instant) -> Result<(), String> {
    loop {
        match prom.query(expr) {
            Err(err) => return Err(format!("error: {err}")),
            Ok(0) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await
            }
            Ok(0) => return Err("no data".into()),
            Ok(_) => return Ok(()),
        }
    }
}

fn log_tail(d: &Daemon) -> String {
    let logs = d.logs();
    let tail: Vec<&str> = logs.lines().rev().take(40).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_dashboard_and_alert_expression_runs_against_prometheus_scraping_driftd() {
    let exprs = list_promql(MODEL);
    for (f, t) in WORKLOAD_DATA {
        assert!(
            exprs.iter().any(|e| e.file == *f && e.title == *t),
            "no {t:?} in {f} any more: update WORKLOAD_DATA"
        );
    }
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &db.url, WORKLOAD_MODEL);
    let d = Daemon::spawn(&cfg);
    let prom = Prometheus::start(d.addr, &repo_root().join("deploy/prometheus/alerts.yml"));

    // Prometheus scrapes the daemon before anything happens, so that it sees the events
    // (changes() and increase() need a sample before the change).
    let deadline = Instant::now() + PROM_WAIT;
    loop {
        match prom.query("up{job=\"driftd\"} == 1") {
            Ok(n) if n > 0 => break,
            r => assert!(
                Instant::now() < deadline,
                "Prometheus has no successful scrape of driftd: {r:?}; targets: {:?}\nlog:\n{}",
                prom.api("/api/v1/targets"),
                prom.log()
            ),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Phase 1: a few rows that are rejected, then 1000 rows of a stable stream (85% right);
    // the first 500 bootstrap the first model.
    let n = 2_000;
    let all = binary_rows(MODEL, n, 0, Some(n / 2));
    db.insert(&bad_rows(-10)).await;
    db.conn.execute(PLANS_ROWS).await.unwrap();
    db.insert(&all[..n / 2]).await;
    wait_until(WAIT, "the stable half processed", || {
        let got = d.metric("driftd_outcomes_processed_total{model=\"churn\"}");
        async move { got == Some((n / 2) as f64) }
    })
    .await;
    let deadline = Instant::now() + WAIT;
    while !d
        .metric("driftd_champion_version{model=\"churn\"}")
        .is_some_and(|v| v >= 1.0)
    {
        assert!(
            Instant::now() < deadline,
            "no champion (bootstrap training); log tail:\n{}",
            log_tail(&d)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The first retrain shows in increase(): every series of the model existed at 0 before
    // it (Prometheus ignores a series' first sample, so one born at 1 would show nothing).
    if let Err(e) = poll_for_data(
        &prom,
        "increase(driftd_retrains_total{model=\"churn\", trigger=\"bootstrap\", result=\"promoted\"}[10m]) > 0",
        Instant::now() + PROM_WAIT,
    )
    .await
    {
        panic!("the first retrain is not in increase(): {e}\nlog tail:\n{}", log_tail(&d));
    }
    // With a champion, rows without a prediction are scored by it.
    let mut unscored = binary_rows(MODEL, 30, n as i64 + 100, None);
    for r in &mut unscored {
        r.prediction = None;
        r.label = None;
        r.labeled_at_secs = None;
    }
    db.insert(&unscored).await;
    // Prometheus holds the drift counter before the drift.
    if let Err(e) = poll_for_data(
        &prom,
        "driftd_drift_detected_total{model=\"churn\"}",
        Instant::now() + PROM_WAIT,
    )
    .await
    {
        panic!("the drift counter before the drift: {e}");
    }

    // Phase 2: the error rate jumps from 15% to 45%; ADWIN detects it.
    db.insert(&all[n / 2..]).await;
    wait_until(WAIT, "all rows processed", || {
        let got = d.metric("driftd_outcomes_processed_total{model=\"churn\"}");
        async move { got == Some(n as f64) }
    })
    .await;
    let drifts = || {
        d.get("/metrics")
            .1
            .lines()
            .filter(|l| l.starts_with("driftd_drift_detected_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    wait_until(WAIT, "ADWIN detects the drift", || {
        let n = drifts();
        async move { n > 0.0 }
    })
    .await;
    // The drift annotations look back 1 minute: check them now.
    let drift_annotations: Vec<&Expr> = exprs
        .iter()
        .filter(|e| e.kind == "annotation" && e.title == "Drift")
        .collect();
    assert_eq!(drift_annotations.len(), 2, "{drift_annotations:?}");
    for e in &drift_annotations {
        if let Err(err) = poll_for_data(&prom, &e.expr, Instant::now() + PROM_WAIT).await {
            panic!("{} annotation {:?}: {}: {err}", e.file, e.title, e.expr);
        }
    }

    // Every metric a dashboard or rule names must be on /metrics (the workload makes all of
    // them exist: drift, retrains, rejections, scoring, schedules, feature drift).
    let named: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(&e.expr)).collect();
    assert!(
        named.len() >= 15,
        "suspiciously few metric names: {named:?}"
    );
    let deadline = Instant::now() + WAIT;
    loop {
        let exposed = exposed_families(&d.get("/metrics").1);
        let missing: Vec<&String> = named.iter().filter(|m| !exposed.contains(*m)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "dashboards or alert rules name metrics that driftd's /metrics does not expose: \
             {missing:?}\nexposed: {exposed:?}\ndaemon log tail:\n{}",
            log_tail(&d)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let metrics = d.get("/metrics").1;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("driftd_rows_rejected_total{model=\"churn\"")),
        "{metrics}"
    );
    assert_eq!(d.metric("driftd_model_owner{model=\"churn\"}"), Some(1.0));

    // Every expression: no error, and data where the dashboards promise it (and where this
    // workload provides it). rate() and increase() need two samples in their window, so those
    // are polled up to a deadline, before the others are evaluated once.
    let mut failures = Vec::new();
    let deadline = Instant::now() + PROM_WAIT;
    let required = |e: &Expr| e.must_have_data || workload_fills(e);
    for e in exprs.iter().filter(|e| required(e)) {
        if let Err(err) = poll_for_data(&prom, &e.expr, deadline).await {
            let why = if e.must_have_data {
                "must_have_data"
            } else {
                "this workload fills it"
            };
            failures.push(format!(
                "{} {} {:?} ({why}): {}\n    {err}",
                e.file, e.kind, e.title, e.expr
            ));
        }
    }
    let mut without_data = Vec::new();
    for e in exprs.iter().filter(|e| !required(e)) {
        let what = format!("{} {} {:?}: {}", e.file, e.kind, e.title, e.expr);
        match prom.query(&e.expr) {
            Err(err) => failures.push(format!("{what}\n    error: {err}")),
            Ok(0) => without_data.push(what),
            Ok(_) => {}
        }
    }
    eprintln!(
        "{} expressions evaluated ({} must have data, {} more filled by this workload); \
         without data (allowed): {}",
        exprs.len(),
        exprs.iter().filter(|e| e.must_have_data).count(),
        exprs
            .iter()
            .filter(|e| !e.must_have_data && workload_fills(e))
            .count(),
        without_data.len()
    );
    for w in &without_data {
        eprintln!("  {}", w.replace('\n', " "));
    }
    assert!(
        failures.is_empty(),
        "{} of {} dashboard/alert expressions failed against Prometheus:\n{}",
        failures.len(),
        exprs.len(),
        failures.join("\n")
    );

    // Prometheus loaded deploy/prometheus/alerts.yml and evaluates every rule without error.
    let alerts_listed = exprs.iter().filter(|e| e.kind == "alert").count();
    let deadline = Instant::now() + PROM_WAIT;
    loop {
        let data = prom.api("/api/v1/rules").expect("GET /api/v1/rules");
        let mut health: Vec<(String, String)> = Vec::new();
        for g in data["groups"].as_array().into_iter().flatten() {
            for r in g["rules"].as_array().into_iter().flatten() {
                let name = r["name"].as_str().unwrap_or("?").to_string();
                let h = r["health"].as_str().unwrap_or("?").to_string();
                let err = r["lastError"].as_str().unwrap_or("");
                assert_ne!(h, "err", "rule {name} fails to evaluate: {err}");
                health.push((name, h));
            }
        }
        assert_eq!(
            health.len(),
            alerts_listed,
            "Prometheus loaded other rules than list_promql.py listed: {health:?}"
        );
        if health.iter().all(|(_, h)| h == "ok") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rules not all evaluated: {health:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    drop(prom);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_log_level_can_be_read_and_changed_at_run_time() {
    let pg = shared_pg();
    let db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &db.url, ONE_MODEL);
    // Daemon::spawn sets RUST_LOG=info,sqlx=warn, which wins over the configured level.
    let d = Daemon::spawn_with_env(&cfg, &[("DRIFTD_HTTP__ADMIN_TOKEN", "t0ken")]);
    let get = || http(d.addr, "GET", "/log-level", None, &[]);
    assert_eq!(get(), (200, "info,sqlx=warn\n".to_string()));
    let admin = [("Authorization", "Bearer t0ken")];
    // Changing it needs the admin token.
    let (status, body) = http(d.addr, "PUT", "/log-level", Some("debug"), &[]);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("admin token (http.admin_token)"), "{body}");
    assert_eq!(get(), (200, "info,sqlx=warn\n".to_string()));

    let (status, body) = http(d.addr, "PUT", "/log-level", Some("debug,sqlx=warn"), &admin);
    assert_eq!((status, body.as_str()), (200, "debug,sqlx=warn\n"));
    assert_eq!(get(), (200, "debug,sqlx=warn\n".to_string()));
    wait_until(Duration::from_secs(30), "the change logged", || {
        let logged = d.logs().contains("log filter changed");
        async move { logged }
    })
    .await;

    for invalid in ["driftd=loudest", "info,[unclosed"] {
        let (status, body) = http(d.addr, "PUT", "/log-level", Some(invalid), &admin);
        assert_eq!(status, 400, "{invalid:?} accepted: {body}");
        assert!(body.contains("invalid filter"), "{body}");
        // The filter in force is unchanged.
        assert_eq!(get(), (200, "debug,sqlx=warn\n".to_string()));
    }

    let (status, _) = http(d.addr, "PUT", "/log-level", Some("info\n"), &admin);
    assert_eq!(status, 200);
    assert_eq!(get(), (200, "info\n".to_string()));
    // Changing the filter disturbs nothing else.
    wait_until(Duration::from_secs(60), "/readyz 200", || {
        let status = d.get("/readyz").0;
        async move { status == 200 }
    })
    .await;
}

#[test]
fn percent_encoding_and_metric_names() {
    assert_eq!(
        percent_encode("sum(rate(x{a=\"b c\"}[1m])) > 0"),
        "sum%28rate%28x%7Ba%3D%22b%20c%22%7D%5B1m%5D%29%29%20%3E%200"
    );
    assert_eq!(percent_encode("a+b/é"), "a%2Bb%2F%C3%A9");
    let names = metric_names(
        "histogram_quantile(0.5, rate(driftd_label_delay_seconds_bucket[1m])) / \
         driftd_outcomes_processed_total unless not_driftd_x",
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        [
            "driftd_label_delay_seconds",
            "driftd_outcomes_processed_total"
        ]
    );
    let exposed = exposed_families(
        "# HELP a_b x\n# TYPE a_b histogram\na_b_bucket{le=\"1\"} 0\na_b_sum 0\na_b_count 0\n\
         # TYPE c gauge\n",
    );
    assert_eq!(exposed.into_iter().collect::<Vec<_>>(), ["a_b"]);
}
