//! The command line as scripts use it: exit codes (`retrain --wait` against the real daemon,
//! `backtest --fail-under`, bad usage), `-o json`, `DRIFTD_CONFIG`, `--version`, completions,
//! and progress lines when stderr is not a terminal.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::helpers::*;

fn driftd(args: &[&str]) -> Output {
    Command::new(driftd_bin())
        .args(args)
        .env_remove("DRIFTD_CONFIG")
        .output()
        .unwrap()
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited, not killed")
}

fn text(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn example_config() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/driftd.toml")
        .display()
        .to_string()
}

/// `driftd check-config ARGS` with the example's systemd credential (the database password
/// file) provided, as `LoadCredential=` would.
fn check_config(args: &[&str], password_file: &Path, config_env: Option<&str>) -> Output {
    let mut cmd = Command::new(driftd_bin());
    cmd.arg("check-config")
        .args(args)
        .env("DRIFTD_DATABASE__PASSWORD_FILE", password_file)
        .env_remove("DRIFTD_CONFIG");
    if let Some(c) = config_env {
        cmd.env("DRIFTD_CONFIG", c);
    }
    cmd.output().unwrap()
}

#[test]
fn check_config_accepts_the_example_and_speaks_json() {
    let example = example_config();
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("db-password");
    std::fs::write(&pw, "secret\n").unwrap();
    let out = check_config(&["--config", &example], &pw, None);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let out = check_config(&["--config", &example, "-o", "json"], &pw, None);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    let m = &v["models"][0];
    assert_eq!(m["name"], "elec2");
    assert_eq!(m["accuracy_floor"], 0.7);
    assert_eq!(m["schedules"].as_array().unwrap().len(), 0);
    // The example's commented schedule, switched on (weekly and monthly): each shows its next
    // three firings.
    let with_schedules = dir.path().join("with-schedules.toml");
    let toml_text = std::fs::read_to_string(&example).unwrap()
        + "\n[[models.triggers.schedules]]\ncron = \"0 0 3 * * Mon\"\nstrategy = \"auto\"\n\
           [[models.triggers.schedules]]\ncron = \"0 0 4 1 * *\"\nstrategy = \"auto\"\n";
    std::fs::write(&with_schedules, toml_text).unwrap();
    let ws = with_schedules.to_str().unwrap();
    let out = check_config(&["--config", ws, "-o", "json"], &pw, None);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let schedules = v["models"][0]["schedules"].as_array().unwrap().clone();
    assert_eq!(schedules.len(), 2);
    assert!(schedules
        .iter()
        .all(|s| s["next"].as_array().unwrap().len() == 3));

    // DRIFTD_CONFIG stands in for --config.
    let out = check_config(&["-o", "json"], &pw, Some(&example));
    assert_eq!(code(&out), 0, "{}", text(&out));
    // Without the credential the example names (it exists only inside the service): OK,
    // with a warning that names the key.
    let out = driftd(&["check-config", "--config", &example]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning") && err.contains("database.password_file"),
        "{err}"
    );

    // A bad file: exit 2, the key named, and still one JSON document on stdout.
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&example)
            .unwrap()
            .replace("batch_size = 5000", "batch_size = \"many\""),
    )
    .unwrap();
    let out = check_config(
        &["--config", bad.to_str().unwrap(), "-o", "json"],
        &pw,
        None,
    );
    assert_eq!(code(&out), 2, "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert!(
        v["error"].as_str().unwrap().contains("poll.batch_size"),
        "{v}"
    );
}

#[test]
fn version_help_and_completions() {
    let out = driftd(&["--version"]);
    assert_eq!(code(&out), 0);
    let version = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        version.starts_with(&format!("driftd {} (", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    let out = driftd(&["retrain", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout).to_string();
    for s in ["none", "finetune_new", "ensemble_combined", "auto"] {
        assert!(
            help.contains(s),
            "strategy {s} missing from --help:\n{help}"
        );
    }
    // A strategy outside the closed set is a usage error.
    let out = driftd(&["retrain", "--model", "m", "--strategy", "finetune"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("possible values"));
    for shell in ["bash", "zsh", "fish"] {
        let out = driftd(&["completions", shell]);
        assert_eq!(code(&out), 0, "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            script.contains("retrain") && script.contains("check-config"),
            "{shell}"
        );
    }
}

#[test]
fn generate_and_backtest_report_progress_and_gate_on_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("s.csv");
    let out = driftd(&[
        "generate",
        "--out",
        csv.to_str().unwrap(),
        "--rows",
        "3000",
        "--n-features",
        "4",
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    // Not a terminal: plain progress lines on stderr, the last one for all rows.
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        err.lines()
            .any(|l| l.starts_with("generate: 3000/3000 rows (100%)") && l.contains("rows/s")),
        "{err}"
    );
    let cfg = write_config(
        dir.path(),
        "postgres://unused@127.0.0.1:1/none",
        "[[models]]\nname = \"m\"\nn_features = 4\n[models.train]\nfit_epochs = 5\nfinetune_epochs = 3\n[models.triggers]\nbootstrap_min_rows = 500\n",
    );
    let backtest = |fail_under: &str| {
        driftd(&[
            "backtest",
            "--config",
            cfg.to_str().unwrap(),
            "--input",
            csv.to_str().unwrap(),
            "--fail-under",
            fail_under,
        ])
    };
    let out = backtest("0.99");
    assert_eq!(code(&out), 6, "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        err.contains("below --fail-under 0.99") && err.contains("backtest: 3000/3000 rows"),
        "{err}"
    );
    // Every line before the last is printed a period (1 s) after the start at the earliest,
    // so its rate is at most the rows done: no rate over a few microseconds.
    for l in err.lines().filter(|l| l.starts_with("backtest: ")) {
        let done: f64 = l["backtest: ".len()..]
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let rate: f64 = l
            .split(", ")
            .nth(1)
            .unwrap()
            .trim_end_matches(" rows/s")
            .parse()
            .unwrap();
        assert!(
            l.contains("(100%)") || rate <= done,
            "a rate over less than a second: {l}"
        );
    }
    let out = backtest("0.1");
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("prequential accuracy"));
    let out = backtest("1.5");
    assert_eq!(code(&out), 2, "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn retrain_wait_exit_codes_against_the_daemon() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    // No automatic bootstrap: every run here is a manual one. Models found through the
    // template can be imported.
    let model = "[[models]]\nname = \"m\"\nn_features = 3\n[models.train]\nfit_epochs = 10\n[models.triggers]\nbootstrap_min_rows = 1000000\n\
                 [[model_templates]]\npattern = \"tenant-*\"\nn_features = 3\n[model_templates.train]\nenabled = false\n";
    let cfg = write_config(dir.path(), &db.url, model);
    let cfgs = cfg.to_str().unwrap();
    let mut d = Daemon::spawn(&cfg);
    wait_until(Duration::from_secs(60), "ready", || {
        let status = d.get("/readyz").0;
        async move { status == 200 }
    })
    .await;
    let retrain = |extra: &[&str]| {
        let mut args = vec!["retrain", "--config", cfgs, "--model", "m", "--wait"];
        args.extend_from_slice(extra);
        driftd(&args)
    };
    let run_id = |out: &Output| -> i64 {
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no run id: {}", text(out)))
    };

    // An unknown model is an error in every command, listing the models there are.
    for args in [
        vec!["retrain", "--config", cfgs, "--model", "no-such-model"],
        vec![
            "models",
            "show",
            "--config",
            cfgs,
            "--model",
            "no-such-model",
        ],
        vec![
            "models",
            "rollback",
            "--config",
            cfgs,
            "--model",
            "no-such-model",
        ],
        vec![
            "models",
            "list",
            "--config",
            cfgs,
            "--model",
            "no-such-model",
        ],
    ] {
        let out = driftd(&args);
        assert_eq!(code(&out), 2, "{args:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("no model named `no-such-model` (models: m;") && err.contains("tenant-*"),
            "{args:?}: {err}"
        );
    }

    // No rows at all: nothing to do, which is not a failure: the run is skipped, exit 7.
    let out = retrain(&["--timeout", "2m"]);
    assert_eq!(code(&out), 7, "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing to do: no labelled rows yet"),
        "{}",
        text(&out)
    );
    let id = run_id(&out);
    let sql = |id: i64| {
        format!("SELECT count(*) FROM driftd.training_runs WHERE id = {id} AND status = 'skipped'")
    };
    assert_eq!(db.scalar_i64(&sql(id)).await, 1);

    // With rows and no champion: the first model is fitted and promoted, exit 0.
    db.insert(&binary_rows("m", 600, 0, None)).await;
    db.wait_rows_processed("m", 600, Duration::from_secs(60))
        .await;
    let out = retrain(&["--strategy", "refit_combined", "--timeout", "3m"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let id = run_id(&out);
    assert_eq!(
        db.scalar_i64(&format!(
            "SELECT count(*) FROM driftd.training_runs WHERE id = {id} AND status = 'promoted'"
        ))
        .await,
        1
    );

    // Right after the promotion nothing is new: skipped (exit 7), saying since which version.
    let out = retrain(&["--strategy", "finetune_combined", "--timeout", "2m"]);
    assert_eq!(code(&out), 7, "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("nothing to do: nothing new since v1 was trained"),
        "{}",
        text(&out)
    );
    assert_eq!(db.scalar_i64(&sql(run_id(&out))).await, 1);
    assert_eq!(
        d.metric("driftd_retrains_total{model=\"m\",trigger=\"manual\",result=\"failed\"}")
            .unwrap_or(0.0),
        0.0,
        "a skipped run is no failure"
    );

    // The skip names the strategy that would train now.
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("driftd retrain --model m --strategy refit_combined"),
        "{}",
        text(&out)
    );

    // Strategy none keeps the champion: exit 3.
    let out = retrain(&["--strategy", "none", "--timeout", "2m"]);
    assert_eq!(code(&out), 3, "{}", text(&out));

    // The registry as JSON and as text.
    let out = driftd(&["models", "list", "--config", cfgs, "-o", "json"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let versions: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(versions.as_array().unwrap().len(), 1);
    assert_eq!(versions[0]["status"], "champion");
    let out = driftd(&["models", "show", "--config", cfgs, "--model", "m"]);
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(shown.starts_with("m: champion v1"), "{shown}");
    assert!(
        shown
            .lines()
            .any(|l| l.contains(" none ") && l.contains(" kept ")),
        "{shown}"
    );
    assert!(
        !d.logs().contains("Some("),
        "Rust debug text in the log: {}",
        d.logs()
    );

    // Rollback steps back through the champion history and says where it went.
    let export = dir.path().join("export");
    let out = driftd(
        &[
            "models", "export", "--config", cfgs, "--model", "m", "--out",
        ]
        .into_iter()
        .chain([export.to_str().unwrap()])
        .collect::<Vec<_>>(),
    );
    assert_eq!(code(&out), 0, "{}", text(&out));
    let import = |model: &str, promote: bool| {
        let mut args = vec!["models", "import", "--config", cfgs, "--model", model];
        args.extend(["--from", export.to_str().unwrap()]);
        if promote {
            args.push("--promote");
        }
        driftd(&args)
    };
    for _ in 0..2 {
        let out = import("m", true);
        assert_eq!(code(&out), 0, "{}", text(&out));
    }
    let out = import("m", false);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let out = driftd(&[
        "models", "list", "--config", cfgs, "--model", "m", "-o", "json",
    ]);
    let versions: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let status_of = |v: i64| {
        versions
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["version"] == v)
            .map(|x| x["status"].as_str().unwrap().to_string())
    };
    assert_eq!(status_of(4).as_deref(), Some("imported"), "{versions}");
    assert_eq!(status_of(3).as_deref(), Some("champion"), "{versions}");
    let rollback = |extra: &[&str]| {
        let mut args = vec!["models", "rollback", "--config", cfgs, "--model", "m"];
        args.extend_from_slice(extra);
        driftd(&args)
    };
    for (from, to) in [(3, 2), (2, 1)] {
        let out = rollback(&[]);
        assert_eq!(code(&out), 0, "{}", text(&out));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("m rolled back from v{from} to v{to}")
        );
    }
    let out = rollback(&[]);
    assert_eq!(code(&out), 1, "nothing before v1: {}", text(&out));
    let out = rollback(&["--to", "3"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "m rolled back from v1 to v3"
    );

    // A model found through the template can be imported (once it has rows).
    let out = import("tenant-b", false);
    assert_eq!(code(&out), 2, "no rows name it yet: {}", text(&out));
    db.insert(&binary_rows("tenant-b", 3, 0, None)).await;
    let out = import("tenant-b", false);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let out = driftd(&["models", "show", "--config", cfgs, "--model", "tenant-zzz"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("found through templates: tenant-b"),
        "{}",
        text(&out)
    );

    // Nobody picks the request up: exit 5 once the timeout passes.
    d.sigterm();
    let out = retrain(&["--timeout", "2s"]);
    assert_eq!(code(&out), 5, "{}", text(&out));
    let id = run_id(&out);
    assert_eq!(
        db.scalar_i64(&format!(
            "SELECT count(*) FROM driftd.training_runs WHERE id = {id} AND status = 'requested'"
        ))
        .await,
        1
    );
}

/// A manual `refit_combined` right after a promotion, with nothing new, trains on the old
/// rows (holding out their newest part) and ends promoted or kept: not skipped, not failed.
#[tokio::test(flavor = "multi_thread")]
async fn a_manual_refit_combined_with_nothing_new_trains() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let model = "[[models]]\nname = \"m\"\nn_features = 3\n[models.train]\nfit_epochs = 10\n[models.triggers]\nbootstrap_min_rows = 1000000\n";
    let cfg = write_config(dir.path(), &db.url, model);
    let cfgs = cfg.to_str().unwrap();
    let d = Daemon::spawn(&cfg);
    wait_until(Duration::from_secs(60), "ready", || {
        let status = d.get("/readyz").0;
        async move { status == 200 }
    })
    .await;
    let retrain = |extra: &[&str]| {
        let mut args = vec!["retrain", "--config", cfgs, "--model", "m", "--wait"];
        args.extend_from_slice(extra);
        driftd(&args)
    };
    db.insert(&binary_rows("m", 600, 0, None)).await;
    db.wait_rows_processed("m", 600, Duration::from_secs(60))
        .await;
    let out = retrain(&["--strategy", "refit_combined", "--timeout", "3m"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    // Nothing new since v1: refit_combined still trains (exit 0 promoted, 3 kept; never
    // 7 skipped or a failure).
    let out = retrain(&["--strategy", "refit_combined", "--timeout", "3m"]);
    assert!(matches!(code(&out), 0 | 3), "{}", text(&out));
    let id: i64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no run id: {}", text(&out)));
    assert_eq!(
        db.scalar_i64(&format!(
            "SELECT count(*) FROM driftd.training_runs WHERE id = {id} AND status IN ('promoted', 'kept')"
        ))
        .await,
        1
    );
}
