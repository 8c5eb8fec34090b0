//! `driftd generate` and `driftd backtest` as a user runs them, with Parquet written and read
//! by pyarrow on the other side.

use std::path::Path;
use std::process::Command;

use crate::helpers::*;

fn run_ok(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what} failed: {text}");
    text
}

fn driftd(args: &[&str]) -> Command {
    let mut cmd = Command::new(driftd_bin());
    cmd.args(args);
    cmd
}

fn interop(args: &[&Path]) -> Command {
    let mut cmd = Command::new(venv_python());
    cmd.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/parquet_interop.py"
    ));
    cmd.args(args);
    cmd
}

/// The report without the keys that differ between identical replays (timings).
fn report(path: &Path) -> serde_json::Value {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.retain(|k, _| !k.ends_with("seconds"));
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    strip(&mut v);
    v
}

#[test]
fn parquet_round_trips_with_pyarrow_and_backtests_like_csv() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    let (gen_csv, gen_parquet) = (p("gen.csv"), p("gen.parquet"));
    for out in [&gen_csv, &gen_parquet] {
        let text = run_ok(
            driftd(&[
                "generate",
                "--rows",
                "3000",
                "--n-features",
                "4",
                "--seed",
                "3",
            ])
            .arg("--out")
            .arg(out),
            "driftd generate",
        );
        assert!(text.contains("3000 rows written"), "{text}");
    }
    // pyarrow reads what driftd wrote: same schema and values as the CSV.
    run_ok(
        &mut interop(&[Path::new("read"), &gen_parquet, &gen_csv]),
        "pyarrow reading driftd's Parquet",
    );

    // pyarrow writes a user's history (snappy, timestamp[us, UTC], float64, a null, a bad
    // label, shuffled); driftd replays it exactly as it replays the same rows as CSV.
    let (hist_parquet, hist_csv) = (p("hist.parquet"), p("hist.csv"));
    run_ok(
        &mut interop(&[Path::new("write"), &gen_csv, &hist_parquet, &hist_csv]),
        "pyarrow writing a history",
    );
    let config = p("driftd.toml");
    std::fs::write(
        &config,
        r#"
[database]
url = "postgres://unused@localhost/unused"
[[models]]
name = "m"
n_features = 4
feature_names = ["f0", "f1", "f2", "f3"]
max_training_rows = 800
[models.train]
fit_epochs = 20
finetune_epochs = 10
num_threads = 1
[models.triggers]
bootstrap_min_rows = 500
[models.triggers.drift]
min_new_rows = 200
min_rows_after_drift = 300
cooldown = "1h"
"#,
    )
    .unwrap();
    for (input, out) in [(&hist_parquet, "parquet.json"), (&hist_csv, "csv.json")] {
        let text = run_ok(
            driftd(&[
                "backtest",
                "--label-column",
                "y",
                "--timestamp-column",
                "when",
            ])
            .arg("--config")
            .arg(&config)
            .arg("--input")
            .arg(input)
            .arg("--report")
            .arg(p(out)),
            "driftd backtest",
        );
        assert!(text.contains("prequential accuracy"), "{text}");
    }
    let (from_parquet, from_csv) = (report(&p("parquet.json")), report(&p("csv.json")));
    assert_eq!(from_parquet["input_rows"], 2_998, "{from_parquet}");
    assert_eq!(from_parquet["skipped_rows"], 2);
    assert_eq!(from_parquet["rows"], 2_498);
    // The generated stream changes concept at row 1 200 (of 3 000): the replay finds it.
    assert!(
        from_parquet["drifts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d.as_u64().unwrap() > 1_200),
        "{from_parquet}"
    );
    assert_eq!(
        json_diff(&from_parquet, &from_csv, 10),
        Vec::<String>::new()
    );
}

/// A backtest needs a history and a configuration, not a database: without `[database]`,
/// `generate`, `check-config` and `backtest` work, and the commands that do need one say so.
#[test]
fn backtest_generate_and_check_config_need_no_database() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("s.csv");
    run_ok(
        driftd(&["generate", "--rows", "1200", "--n-features", "3"])
            .arg("--out")
            .arg(&input),
        "driftd generate",
    );
    let config = dir.path().join("driftd.toml");
    std::fs::write(
        &config,
        r#"
[[models]]
name = "m"
n_features = 3
[models.train]
fit_epochs = 10
finetune_epochs = 5
num_threads = 1
[models.triggers]
bootstrap_min_rows = 400
"#,
    )
    .unwrap();
    let text = run_ok(
        driftd(&["check-config", "--config"]).arg(&config),
        "check-config",
    );
    assert!(text.contains("configuration OK"), "{text}");
    let text = run_ok(
        driftd(&["backtest", "--config"])
            .arg(&config)
            .arg("--input")
            .arg(&input),
        "driftd backtest",
    );
    assert!(text.contains("800 rows evaluated"), "{text}");
    for cmd in ["run", "migrate"] {
        let out = driftd(&[cmd, "--config"]).arg(&config).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {err}");
        assert!(err.contains("database.url"), "{cmd}: {err}");
    }
    // Given, the URL is still checked.
    let bad = std::fs::read_to_string(&config).unwrap() + "[database]\nurl = \"mysql://x/y\"\n";
    std::fs::write(&config, bad).unwrap();
    let out = driftd(&["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("database.url"), "{err}");
}
