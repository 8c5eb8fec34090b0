//! The systemd unit, as far as it can be exercised without systemd: the real binary started
//! with the environment `deploy/systemd/driftd.service` gives it (`Environment=`,
//! `EnvironmentFile=` from `driftd.env.example`, `LoadCredential=` as a credentials directory
//! and `%d`, `NOTIFY_SOCKET` for `Type=notify`, `WATCHDOG_USEC` from `WatchdogSec=`) and
//! `examples/driftd.toml` (the file the ConfigMap is generated from), with only the database
//! URL and the listen address overridden. It must become ready, say `READY=1`, `STATUS=` and
//! `WATCHDOG=1` on the notify socket, survive `systemctl reload` (SIGHUP) and say
//! `STOPPING=1` on SIGTERM.
//!
//! The static checks of the deployment files (`systemd-analyze verify`, kubernetes-validate,
//! promtool, ...) are `scripts/validate_deploy.sh`, run by `scripts/test.sh`; not repeated here.

use std::collections::BTreeMap;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;

const WAIT: Duration = Duration::from_secs(120);

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// What the test needs from the unit's `[Service]` section.
#[derive(Debug, Default)]
struct Unit {
    service_type: String,
    exec_start: Vec<String>,
    /// `Environment=` assignments, in order.
    environment: Vec<(String, String)>,
    /// `EnvironmentFile=` paths; `true` when prefixed with `-` (optional).
    environment_files: Vec<(String, bool)>,
    /// `LoadCredential=ID:PATH`.
    credentials: Vec<(String, String)>,
    state_directory: Option<String>,
    configuration_directory: Option<String>,
    /// `WatchdogSec=`, in seconds.
    watchdog_sec: Option<u64>,
    exec_reload: Vec<String>,
}

/// Splits a unit value into words, honouring double and single quotes.
fn unit_words(value: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in value.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        words.push(cur);
    }
    words
}

fn parse_unit(text: &str) -> Unit {
    let mut unit = Unit::default();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            section = line.to_string();
            continue;
        }
        if section != "[Service]" {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not key=value: {line}"));
        let (key, value) = (key.trim(), value.trim());
        match key {
            "Type" => unit.service_type = value.to_string(),
            "ExecStart" => unit.exec_start = unit_words(value),
            "Environment" => {
                for w in unit_words(value) {
                    let (k, v) = w
                        .split_once('=')
                        .unwrap_or_else(|| panic!("bad Environment= word {w:?}"));
                    unit.environment.push((k.to_string(), v.to_string()));
                }
            }
            "EnvironmentFile" => match value.strip_prefix('-') {
                Some(p) => unit.environment_files.push((p.to_string(), true)),
                None => unit.environment_files.push((value.to_string(), false)),
            },
            "LoadCredential" => {
                let (id, path) = value
                    .split_once(':')
                    .unwrap_or_else(|| panic!("LoadCredential={value} without a path"));
                unit.credentials.push((id.to_string(), path.to_string()));
            }
            "StateDirectory" => unit.state_directory = Some(value.to_string()),
            "ConfigurationDirectory" => unit.configuration_directory = Some(value.to_string()),
            "WatchdogSec" => {
                let secs = value.strip_suffix('s').unwrap_or(value);
                unit.watchdog_sec = Some(secs.parse().expect("WatchdogSec= in seconds"));
            }
            "ExecReload" => unit.exec_reload = unit_words(value),
            _ => {}
        }
    }
    unit
}

/// `KEY=VALUE` lines of an environment file (comments and blank lines skipped).
fn parse_env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("not KEY=VALUE: {l}"));
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            (k.trim().to_string(), v.to_string())
        })
        .collect()
}

/// Receives notify datagrams until one has `line` or the deadline passes; returns all seen.
fn wait_for_notify(sock: &UnixDatagram, line: &str, timeout: Duration) -> (bool, Vec<String>) {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 4096];
    while Instant::now() < deadline {
        sock.set_read_timeout(Some(
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(10)),
        ))
        .unwrap();
        match sock.recv(&mut buf) {
            Ok(n) => {
                let msg = String::from_utf8_lossy(&buf[..n]).to_string();
                let found = msg.lines().any(|l| l == line);
                seen.push(msg);
                if found {
                    return (true, seen);
                }
            }
            Err(_) => break,
        }
    }
    (false, seen)
}

/// Like [`wait_for_notify`], for a line starting with `prefix`.
fn wait_for_prefix(sock: &UnixDatagram, prefix: &str, timeout: Duration) -> (bool, Vec<String>) {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let (_, got) = wait_for_notify(sock, "\u{0}never", Duration::from_millis(200));
        let found = got.iter().any(|m| m.lines().any(|l| l.starts_with(prefix)));
        seen.extend(got);
        if found {
            return (true, seen);
        }
    }
    (false, seen)
}

#[test]
fn unit_parsing_helpers() {
    assert_eq!(
        unit_words(r#"A=1 "B=two words" C='x y'"#),
        ["A=1", "B=two words", "C=x y"]
    );
    assert_eq!(
        parse_env_file("# c\n\nA=1\nB=\"q\"\n#C=3\n"),
        [("A".into(), "1".into()), ("B".into(), "q".into())]
    );
    assert_eq!(strip_ansi("\x1b[2mx\x1b[0m y"), "x y");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_systemd_units_environment_starts_a_ready_daemon_that_notifies_systemd() {
    let unit =
        parse_unit(&std::fs::read_to_string(repo_file("deploy/systemd/driftd.service")).unwrap());
    assert_eq!(unit.service_type, "notify", "the unit relies on READY=1");
    assert_eq!(
        unit.exec_start[1..],
        ["run", "--config", "/etc/driftd/driftd.toml"],
        "ExecStart changed: {:?}",
        unit.exec_start
    );
    assert!(
        unit.exec_start[0].ends_with("/driftd"),
        "{:?}",
        unit.exec_start
    );

    let pg = shared_pg();
    let db = pg.fresh_db().await;
    let tmp = tempfile::Builder::new()
        .prefix("driftd-unit")
        .tempdir()
        .unwrap();
    // Stand-ins for /etc/driftd, $CREDENTIALS_DIRECTORY and /var/lib/driftd.
    let etc = tmp.path().join("etc");
    let creds = tmp.path().join("credentials");
    let state = tmp.path().join("state");
    for d in [&etc, &creds, &state] {
        std::fs::create_dir_all(d).unwrap();
    }
    // /opt/driftd/libtorch is a copy of the venv's site-packages/torch (deploy/README.md);
    // here the build's own libtorch stands in for it when it is not installed there.
    let libtorch = std::env::var("LIBTORCH")
        .ok()
        .filter(|_| !Path::new("/opt/driftd/libtorch").exists());
    let host_path = |p: &str| -> PathBuf {
        if let Some(rest) = p.strip_prefix("/etc/driftd/") {
            etc.join(rest)
        } else if p == "/var/lib/driftd" {
            state.clone()
        } else {
            PathBuf::from(p)
        }
    };

    // The configuration an operator starts from, the one the ConfigMap is generated from.
    let config_text = std::fs::read_to_string(repo_file("examples/driftd.toml")).unwrap();
    let config = host_path(&unit.exec_start[3]);
    std::fs::write(&config, &config_text).unwrap();

    // LoadCredential=: the secrets, copied by "systemd" into the credentials directory.
    let password = "pw-7b3e1c0d9a";
    let token = "tok-5f0a9e4c27d1b8";
    let read_token = "rtok-91c2d7e0b4a6";
    let mut cred_ids = Vec::new();
    for (id, source) in &unit.credentials {
        let content = match id.as_str() {
            "db-password" => password,
            "admin-token" => token,
            "read-token" => read_token,
            other => panic!("the unit loads a credential this test does not know: {other}"),
        };
        let src = host_path(source);
        std::fs::write(&src, format!("{content}\n")).unwrap();
        std::fs::copy(&src, creds.join(id)).unwrap();
        cred_ids.push(id.as_str());
    }
    cred_ids.sort();
    assert_eq!(cred_ids, ["admin-token", "db-password", "read-token"]);

    // NOTIFY_SOCKET: a datagram socket, as systemd binds for Type=notify.
    let notify_path = tmp.path().join("notify");
    let notify = UnixDatagram::bind(&notify_path).unwrap();

    // The environment: systemd's own, then Environment= (specifiers expanded), then the
    // EnvironmentFile= (which overrides Environment=), then the test's two overrides.
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    env.insert(
        "PATH".into(),
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin".into(),
    );
    env.insert("NOTIFY_SOCKET".into(), notify_path.display().to_string());
    // WatchdogSec=: systemd passes the interval; here 2 s, so that pings show within the test.
    assert_eq!(
        unit.watchdog_sec,
        Some(60),
        "the unit's WatchdogSec= changed"
    );
    env.insert("WATCHDOG_USEC".into(), "2000000".into());
    env.insert("CREDENTIALS_DIRECTORY".into(), creds.display().to_string());
    if unit.state_directory.is_some() {
        env.insert("STATE_DIRECTORY".into(), state.display().to_string());
    }
    if unit.configuration_directory.is_some() {
        env.insert("CONFIGURATION_DIRECTORY".into(), etc.display().to_string());
    }
    for (k, v) in &unit.environment {
        let v = v.replace("%d", &creds.display().to_string());
        assert!(
            !v.contains('%'),
            "{k}={v}: a systemd specifier this test does not expand"
        );
        let mut v = v.replace("/var/lib/driftd", &state.display().to_string());
        if let Some(lt) = &libtorch {
            v = v.replace("/opt/driftd/libtorch", lt);
        }
        env.insert(k.clone(), v);
    }
    assert_eq!(
        unit.environment_files,
        [("/etc/driftd/driftd.env".to_string(), true)],
        "the unit's EnvironmentFile= changed"
    );
    let env_file = parse_env_file(
        &std::fs::read_to_string(repo_file("deploy/systemd/driftd.env.example")).unwrap(),
    );
    assert!(
        env_file.iter().any(|(k, _)| k == "DRIFTD_DATABASE__URL"),
        "the example environment file sets the database URL"
    );
    for (k, v) in env_file {
        env.insert(k, v);
    }
    // The password and token reach the daemon as files named by the unit.
    assert_eq!(
        env.get("DRIFTD_DATABASE__PASSWORD_FILE")
            .map(String::as_str),
        Some(creds.join("db-password").to_str().unwrap())
    );
    assert_eq!(
        env.get("DRIFTD_HTTP__ADMIN_TOKEN_FILE").map(String::as_str),
        Some(creds.join("admin-token").to_str().unwrap())
    );
    assert_eq!(
        env.get("DRIFTD_HTTP__READ_TOKEN_FILE").map(String::as_str),
        Some(creds.join("read-token").to_str().unwrap())
    );
    // Only these two differ from the production environment.
    env.insert("DRIFTD_DATABASE__URL".into(), db.url.clone());
    env.insert("DRIFTD_HTTP__LISTEN".into(), "127.0.0.1:0".into());

    let bin = driftd_bin();
    let check = Command::new(bin)
        .args(["check-config", "--config"])
        .arg(&config)
        .env_clear()
        .envs(&env)
        .current_dir("/")
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "check-config with the unit's environment failed ({}): {}{}",
        check.status,
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    // ExecStart=, with the binary under test and the stand-in config path.
    let mut cmd = Command::new(bin);
    cmd.args(&unit.exec_start[1..3])
        .arg(&config)
        .env_clear()
        .envs(&env)
        .current_dir("/")
        .stdin(Stdio::null());
    let mut d = Daemon::start(cmd);

    wait_until(WAIT, "/readyz 200", || {
        let status = d.get("/readyz").0;
        async move { status == 200 }
    })
    .await;
    let (ready, seen) = wait_for_notify(&notify, "READY=1", Duration::from_secs(30));
    assert!(
        ready,
        "no READY=1 on NOTIFY_SOCKET (got {seen:?}); logs:\n{}",
        d.logs()
    );

    // STATUS= says what this replica owns; WATCHDOG=1 keeps coming while the loops go round.
    let (status_line, seen) = wait_for_notify(
        &notify,
        "STATUS=owning 1 of 1 model(s), ready",
        Duration::from_secs(30),
    );
    assert!(status_line, "no ownership STATUS= (got {seen:?})");
    for _ in 0..2 {
        let (ping, seen) = wait_for_notify(&notify, "WATCHDOG=1", Duration::from_secs(10));
        assert!(ping, "no WATCHDOG=1 within 10 s (got {seen:?})");
    }

    // ExecReload= (SIGHUP): a bad file is reported and the daemon keeps running on the old one;
    // a good one is re-read, with its log level applied.
    assert_eq!(unit.exec_reload, ["/bin/kill", "-HUP", "$MAINPID"]);
    let hup = |d: &Daemon| {
        let ok = Command::new("kill")
            .args(["-HUP", &d.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -HUP failed");
    };
    std::fs::write(&config, "[poll]\nbatch_size = \"many\"\n").unwrap();
    hup(&d);
    let (reported, seen) = wait_for_prefix(&notify, "STATUS=reload failed", WAIT);
    assert!(
        reported,
        "a bad configuration on SIGHUP was not reported (got {seen:?})"
    );
    std::fs::write(&config, &config_text).unwrap();
    hup(&d);
    let (reloaded, seen) = wait_for_prefix(&notify, "STATUS=configuration re-read", WAIT);
    assert!(reloaded, "no reload STATUS= (got {seen:?})");
    assert!(
        d.child.try_wait().unwrap().is_none(),
        "driftd exited on SIGHUP; logs:\n{}",
        d.logs()
    );
    assert_eq!(d.get("/readyz").0, 200, "not ready after the reloads");
    let (ping, _) = wait_for_notify(&notify, "WATCHDOG=1", Duration::from_secs(10));
    assert!(ping, "no WATCHDOG=1 after the reloads");

    // The example's model is served; the credential's admin token is the one in force.
    let metrics = d.get("/metrics").1;
    let build = metrics
        .lines()
        .find(|l| l.starts_with("driftd_build_info{"))
        .unwrap_or_else(|| panic!("no driftd_build_info: {metrics}"));
    assert!(
        build.contains("revision=\"")
            && build.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))),
        "{build}"
    );
    assert!(
        metrics.contains("process_resident_memory_bytes "),
        "no process metrics"
    );
    assert!(
        metrics.contains("driftd_model_owner{model=\"elec2\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("driftd_database_up 1"), "{metrics}");
    let retrain = |auth: &str| {
        http(
            d.addr,
            "POST",
            "/v1/models/no-such-model/retrain",
            None,
            &[("Authorization", auth)],
        )
        .0
    };
    assert_eq!(retrain("Bearer wrong"), 401);
    // The read token does not open the admin API; authorised, but no such model: nothing is
    // requested.
    assert_eq!(retrain(&format!("Bearer {read_token}")), 401);
    assert_eq!(retrain(&format!("Bearer {token}")), 404);
    // The credential's read token opens the serving routes.
    let list = |auth: &str| {
        http(
            d.addr,
            "GET",
            "/v1/models",
            None,
            &[("Authorization", auth)],
        )
        .0
    };
    assert_eq!(list("Bearer wrong"), 401);
    assert_eq!(list(&format!("Bearer {read_token}")), 200);

    // systemd stops the service with SIGTERM: STOPPING=1, then a clean exit.
    let status = d.sigterm();
    assert!(
        status.success(),
        "exit status {status:?}; logs:\n{}",
        d.logs()
    );
    let (stopping, seen) = wait_for_notify(&notify, "STOPPING=1", Duration::from_secs(10));
    assert!(stopping, "no STOPPING=1 (got {seen:?})");

    // Human logs (the environment file overrides the ConfigMap's json), no secrets in them.
    let logs = d.logs();
    assert!(
        !logs.contains(password) && !logs.contains(token) && !logs.contains(read_token),
        "{logs}"
    );
    assert!(
        !logs.lines().any(|l| l.trim_start().starts_with('{')),
        "DRIFTD_LOG__FORMAT=human from the environment file did not win: {logs}"
    );
}
