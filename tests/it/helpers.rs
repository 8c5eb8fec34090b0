//! Test harness: a throwaway PostgreSQL per test binary (or per test, when the test restarts
//! it), a fresh database per test, the real `driftd` binary on port 0, and deadline polling.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use sqlx::{Connection, Executor, PgConnection};

pub fn pg_bin(tool: &str) -> PathBuf {
    Path::new("/usr/lib/postgresql/15/bin").join(tool)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A PostgreSQL server on loopback, run as the `postgres` user (initdb refuses root).
pub struct PgServer {
    pub port: u16,
    pub data_dir: PathBuf,
    _dir: tempfile::TempDir,
}

fn as_postgres(cmd: &str) -> std::process::Output {
    let is_root = unsafe_geteuid() == 0;
    let out = if is_root {
        Command::new("runuser")
            .args(["-u", "postgres", "--", "sh", "-c", cmd])
            .output()
    } else {
        Command::new("sh").args(["-c", cmd]).output()
    };
    out.expect("run a PostgreSQL tool")
}

fn unsafe_geteuid() -> u32 {
    // The uid of /proc/self is the effective uid; avoids a libc dependency.
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0)
}

impl PgServer {
    pub fn start() -> PgServer {
        let dir = tempfile::Builder::new()
            .prefix("driftd-pg")
            .tempdir()
            .unwrap();
        let data_dir = dir.path().join("data");
        std::fs::create_dir_all(&data_dir).unwrap();
        let _ = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status();
        let out = as_postgres(&format!(
            "{} -D {} -U postgres --auth=trust --no-sync -E UTF8 >/dev/null",
            pg_bin("initdb").display(),
            data_dir.display()
        ));
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let server = PgServer {
            port: free_port(),
            data_dir,
            _dir: dir,
        };
        server.start_again();
        server
    }

    /// Starts (or restarts) the server on its port. A watchdog stops it when the test
    /// process exits, so no server outlives the tests.
    pub fn start_again(&self) {
        let ppid = std::process::id();
        let out = as_postgres(&format!(
            "{pg_ctl} -D {d} -w -t 60 -l {d}/log -o '-p {p} -k /tmp -c listen_addresses=127.0.0.1 \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200' start >/dev/null; \
             (while [ -d /proc/{ppid} ]; do sleep 1; done; {pg_ctl} -D {d} -m immediate stop) >/dev/null 2>&1 &",
            pg_ctl = pg_bin("pg_ctl").display(),
            d = self.data_dir.display(),
            p = self.port,
        ));
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn stop(&self) {
        let out = as_postgres(&format!(
            "{} -D {} -m fast -w stop",
            pg_bin("pg_ctl").display(),
            self.data_dir.display()
        ));
        assert!(
            out.status.success(),
            "pg_ctl stop failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// A new, empty database with driftd's reference outcomes table.
    pub async fn fresh_db(&self) -> TestDb {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = PgConnection::connect(&self.url("postgres")).await.unwrap();
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        let url = self.url(&name);
        let mut conn = PgConnection::connect(&url).await.unwrap();
        conn.execute(driftd::db::OUTCOMES_REFERENCE_SQL)
            .await
            .unwrap();
        TestDb { url, conn }
    }
}

/// The server shared by the tests that do not restart it.
pub fn shared_pg() -> &'static PgServer {
    static PG: OnceLock<PgServer> = OnceLock::new();
    PG.get_or_init(PgServer::start)
}

pub struct TestDb {
    pub url: String,
    pub conn: PgConnection,
}

/// One synthetic outcome; `labeled_at` is seconds after 2026-01-01 (safely in the past, so
/// the settle interval never holds it back).
#[derive(Debug, Clone)]
pub struct Row {
    pub model: String,
    pub features: Vec<f64>,
    pub prediction: Option<f64>,
    pub label: Option<f64>,
    pub labeled_at_secs: Option<i64>,
}

pub const BASE_TS: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

pub fn features_literal(f: &[f64]) -> String {
    let parts: Vec<String> = f
        .iter()
        .map(|v| {
            if v.is_nan() {
                "NaN".to_string()
            } else {
                v.to_string()
            }
        })
        .collect();
    format!("{{{}}}", parts.join(","))
}

impl TestDb {
    pub async fn insert(&mut self, rows: &[Row]) -> Vec<i64> {
        let models: Vec<&str> = rows.iter().map(|r| r.model.as_str()).collect();
        let feats: Vec<String> = rows.iter().map(|r| features_literal(&r.features)).collect();
        let preds: Vec<Option<f64>> = rows.iter().map(|r| r.prediction).collect();
        let labels: Vec<Option<f64>> = rows.iter().map(|r| r.label).collect();
        let ats: Vec<Option<f64>> = rows
            .iter()
            .map(|r| r.labeled_at_secs.map(|s| (BASE_TS + s) as f64))
            .collect();
        sqlx::query_scalar(
            "INSERT INTO outcomes (model, created_at, features, prediction, label, labeled_at) \
             SELECT m, coalesce(to_timestamp(a) - interval '30 seconds', now()), f::real[], p, l, to_timestamp(a) \
             FROM UNNEST($1::text[], $2::text[], $3::float8[], $4::float8[], $5::float8[]) AS u(m, f, p, l, a) \
             RETURNING id",
        )
        .bind(&models)
        .bind(&feats)
        .bind(&preds)
        .bind(&labels)
        .bind(&ats)
        .fetch_all(&mut self.conn)
        .await
        .unwrap()
    }

    /// The labels of rows `ids` arrive now.
    pub async fn execute_bound_labels(&mut self, ids: &[i64], labels: &[f64]) {
        sqlx::query(
            "UPDATE outcomes o SET label = u.l, labeled_at = now() \
             FROM UNNEST($1::int8[], $2::float8[]) AS u(id, l) WHERE o.id = u.id",
        )
        .bind(ids)
        .bind(labels)
        .execute(&mut self.conn)
        .await
        .unwrap();
    }

    pub async fn scalar_i64(&mut self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&mut self.conn)
            .await
            .unwrap()
    }

    pub async fn scalar_text(&mut self, sql: &str) -> String {
        sqlx::query_scalar::<_, String>(sql)
            .fetch_one(&mut self.conn)
            .await
            .unwrap()
    }

    /// `None` while the query fails (for instance before the daemon has migrated).
    pub async fn try_scalar_i64(&mut self, sql: &str) -> Option<i64> {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&mut self.conn)
            .await
            .ok()
    }

    pub async fn rows_processed(&mut self, model: &str) -> i64 {
        sqlx::query_scalar::<_, i64>("SELECT coalesce((SELECT rows_processed FROM driftd.monitor_state WHERE model = $1), -1)")
            .bind(model)
            .fetch_one(&mut self.conn)
            .await
            .unwrap_or(-1)
    }

    /// Waits until driftd has committed exactly `n` rows for `model`.
    pub async fn wait_rows_processed(&mut self, model: &str, n: i64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.rows_processed(model).await;
            if got == n {
                return;
            }
            assert!(
                got <= n,
                "{model}: {got} rows processed, more than the {n} written"
            );
            assert!(
                Instant::now() < deadline,
                "{model}: {got} of {n} rows processed at the deadline"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn state_json(&mut self, model: &str) -> serde_json::Value {
        let text: String =
            sqlx::query_scalar("SELECT state::text FROM driftd.monitor_state WHERE model = $1")
                .bind(model)
                .fetch_one(&mut self.conn)
                .await
                .unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

/// A deterministic binary stream: the model is right 85% of the time, 55% after `change`.
pub fn binary_rows(model: &str, n: usize, start_secs: i64, change: Option<usize>) -> Vec<Row> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ (start_secs as u64);
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x % 10_000) as f64 / 10_000.0;
            let label = (x >> 20) % 2;
            let right = u < if change.is_some_and(|c| i >= c) {
                0.55
            } else {
                0.85
            };
            let p_label = 0.6 + 0.39 * ((x >> 30) % 100) as f64 / 100.0;
            let prediction = if right == (label == 1) {
                p_label
            } else {
                1.0 - p_label
            };
            Row {
                model: model.into(),
                features: vec![u, (i % 7) as f64, 1.0],
                prediction: Some(prediction),
                label: Some(label as f64),
                labeled_at_secs: Some(start_secs + i as i64),
            }
        })
        .collect()
}

pub fn write_config(dir: &Path, db_url: &str, extra: &str) -> PathBuf {
    let path = dir.join("driftd.toml");
    let text = format!(
        r#"
[database]
url = "{db_url}"
max_connections = 4

[http]
listen = "127.0.0.1:0"

[poll]
interval_ms = 100
settle_ms = 300
batch_size = 500
max_backoff_ms = 1000

{extra}
"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

pub const ONE_MODEL: &str = r#"
[[models]]
name = "churn"
n_features = 3
"#;

/// Removes terminal colour codes (a daemon started without `NO_COLOR` writes them).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The real binary, started with `run --config`.
pub struct Daemon {
    pub child: Child,
    pub addr: SocketAddr,
    pub logs: Arc<Mutex<Vec<String>>>,
}

/// The Python with torch, scipy, river and pyarrow that `scripts/setup.sh` installs
/// (`DRIFTD_PYTHON` overrides it).
pub fn venv_python() -> String {
    std::env::var("DRIFTD_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/.cache/driftd/venv/bin/python",
            std::env::var("HOME").unwrap()
        )
    })
}

pub fn driftd_bin() -> &'static str {
    env!("CARGO_BIN_EXE_driftd")
}

impl Daemon {
    pub fn spawn(config: &Path) -> Daemon {
        Self::spawn_with_env(config, &[])
    }

    pub fn spawn_with_env(config: &Path, env: &[(&str, &str)]) -> Daemon {
        let mut cmd = Command::new(driftd_bin());
        cmd.args(["run", "--config"]).arg(config);
        cmd.env("RUST_LOG", "info,sqlx=warn").env("NO_COLOR", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        Self::start(cmd)
    }

    /// Starts `cmd` (a `driftd run`), collects its log lines and waits for its listen address.
    pub fn start(mut cmd: Command) -> Daemon {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn driftd");
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let line = strip_ansi(&line);
                    if let Some(i) = line.find("listening on http://") {
                        let addr = line[i + "listening on http://".len()..]
                            .split(|c: char| c.is_whitespace() || c == '"')
                            .next()
                            .unwrap_or("")
                            .to_string();
                        let _ = tx.send(addr);
                    }
                    logs.lock().unwrap().push(line);
                }
            });
        }
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "driftd did not start listening; logs: {:?}",
                    logs.lock().unwrap()
                )
            });
        Daemon {
            child,
            addr: addr
                .parse()
                .unwrap_or_else(|e| panic!("listen address {addr:?}: {e}")),
            logs,
        }
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        http(self.addr, "GET", path, None, &[])
    }

    pub fn metric(&self, name_with_labels: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics");
        body.lines()
            .find(|l| {
                l.starts_with(name_with_labels) && l[name_with_labels.len()..].starts_with(' ')
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn sigterm(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "driftd did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 client (no client crate needed for tests).
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let mut s = match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
        Ok(s) => s,
        Err(_) => return (0, String::new()),
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = body.unwrap_or("");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    if s.write_all(req.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    parse_http_response(&resp)
}

/// Status code and body of a raw (unchunked) HTTP response; `(0, "")` if it is not one.
pub fn parse_http_response(raw: &[u8]) -> (u16, String) {
    let resp = String::from_utf8_lossy(raw);
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Polls `cond` until it holds or the deadline passes (then panics with `what`).
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if cond().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The JSON paths where two values differ (at most `limit`), for readable assertion messages.
pub fn json_diff(a: &serde_json::Value, b: &serde_json::Value, limit: usize) -> Vec<String> {
    fn walk(
        a: &serde_json::Value,
        b: &serde_json::Value,
        path: String,
        out: &mut Vec<String>,
        limit: usize,
    ) {
        use serde_json::Value::*;
        if out.len() >= limit {
            return;
        }
        match (a, b) {
            (Object(x), Object(y)) => {
                for (k, v) in x {
                    match y.get(k) {
                        Some(w) => walk(v, w, format!("{path}.{k}"), out, limit),
                        None => out.push(format!("{path}.{k}: only on the left")),
                    }
                }
                for k in y.keys().filter(|k| !x.contains_key(*k)) {
                    out.push(format!("{path}.{k}: only on the right"));
                }
            }
            (Array(x), Array(y)) if x.len() == y.len() => {
                for (i, (v, w)) in x.iter().zip(y).enumerate() {
                    walk(v, w, format!("{path}[{i}]"), out, limit);
                }
            }
            _ if a != b => {
                let short = |v: &serde_json::Value| {
                    v.to_string()
                        .chars()
                        .take(120)
                        .collect::<std::string::String>()
                };
                out.push(format!("{path}: {} != {}", short(a), short(b)));
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(a, b, String::new(), &mut out, limit);
    out
}
