//! The demo's feed (`driftd demo-feed`, the README's main command) against the real daemon,
//! compressed: the stream is shorter and faster, the story the summary tells is the same.

use std::process::Command;
use std::time::Instant;

use crate::helpers::*;

/// Runs `driftd demo-feed` for `model` with `[rows, rows_per_sec, label_delay_ms]`; its
/// standard output, once it succeeded.
fn demo_feed(cfg: &std::path::Path, model: &str, [rows, rate, delay]: [&str; 3]) -> String {
    let out = Command::new(driftd_bin())
        .args(["demo-feed", "--model", model, "--rows", rows])
        .args(["--rows-per-sec", rate, "--label-delay-ms", delay])
        .arg("--config")
        .arg(cfg)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_feed_tells_what_drift_did_and_what_the_update_recovered() {
    let pg = shared_pg();
    let db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    // The demo's configuration (scripts/demo.sh), scaled to 6 000 rows and quicker training.
    let cfg = write_config(
        dir.path(),
        &db.url,
        r#"
[[models]]
name = "demo"
n_features = 8
[[models.detectors]]
kind = "adwin"
[models.train]
window = { max_rows = 1500 }
fit_epochs = 40
finetune_epochs = 20
num_threads = 1
[models.triggers]
bootstrap_min_rows = 500
[models.triggers.drift]
detectors = ["adwin"]
min_new_rows = 300
min_rows_after_drift = 600
cooldown = "2s"
strategy = "auto"
"#,
    );
    let _daemon = Daemon::spawn(&cfg);
    let started = Instant::now();
    let text = demo_feed(&cfg, "demo", ["6000", "600", "300"]);
    eprintln!(
        "demo feed took {:.1} s:\n{text}",
        started.elapsed().as_secs_f64()
    );
    // The progress lines, then the summary with its story.
    assert!(text.contains("driftd processed"), "{text}");
    let summary = &text[text.find("=== driftd demo summary ===").expect("a summary")..];
    assert!(
        summary.contains("abrupt concept change at row 1800"),
        "{summary}"
    );
    assert!(
        summary.contains("the deployed model (before driftd's first champion)"),
        "{summary}"
    );
    assert!(
        summary.contains("v1 (bootstrap via refit_combined"),
        "{summary}"
    );
    // The abrupt change is detected soon after it happens, and a drift-triggered version
    // takes over and serves better than the stale champion did right after the change.
    let line = summary
        .lines()
        .find(|l| l.starts_with("abrupt change at row 1800:"))
        .expect("a line about the abrupt change");
    let after: usize = line
        .split("first detection by adwin at row ")
        .nth(1)
        .and_then(|s| s.split(" (").nth(1))
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no detection in: {line}"));
    assert!(
        after < 600,
        "detected {after} rows after the change: {line}"
    );
    let recovered: f64 = line
        .split("(recovered ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no recovery in: {line}"));
    assert!(recovered > 0.25, "{line}");
    // The new version's lower error rate is not itself reported as drift: the detectors start
    // over with each version, so nothing fires between the first detection and the gradual
    // drift (row 3 900).
    let detections: Vec<usize> = summary
        .lines()
        .filter_map(|l| l.trim().strip_prefix("adwin detected drift at row "))
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .collect();
    assert!(
        !detections.iter().any(|&d| d > 1_800 + after && d < 3_900),
        "{detections:?}\n{summary}"
    );
    assert!(summary.contains("(drift via "), "{summary}");
}

/// The feed honours `[source]`: it writes the table the configuration describes (the README's
/// "Your own table" layout: listed feature columns, other column names, no NOTIFY trigger), and
/// the daemon reads every row from it, found by the sweep.
#[tokio::test(flavor = "multi_thread")]
async fn the_demo_feed_writes_the_table_source_describes() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    sqlx::raw_sql(
        "CREATE SCHEMA sales; \
         CREATE TABLE sales.scored_leads (lead_id bigserial PRIMARY KEY, model_name text NOT NULL, \
           scored_at timestamptz NOT NULL DEFAULT now(), age real, visits real, spend real, \
           p_convert double precision, model_version bigint, converted smallint, converted_at timestamptz); \
         CREATE INDEX ON sales.scored_leads (model_name, converted_at, lead_id); \
         CREATE INDEX ON sales.scored_leads (model_name, lead_id);",
    )
    .execute(&mut db.conn)
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &db.url,
        r#"
[source]
table = "sales.scored_leads"
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
[models.triggers]
bootstrap_min_rows = 300
"#,
    );
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("[poll]", "[poll]\nsweep_interval_ms = 300");
    std::fs::write(&cfg, text).unwrap();
    let _daemon = Daemon::spawn(&cfg);
    let text = demo_feed(&cfg, "leads", ["1200", "300", "200"]);
    assert!(text.contains("=== driftd demo summary ==="), "{text}");
    assert!(text.contains("accuracy by tenth of the stream:"), "{text}");
    let written = db
        .scalar_i64(
            "SELECT count(*) FROM sales.scored_leads WHERE model_name = 'leads' \
             AND converted IS NOT NULL AND spend IS NOT NULL",
        )
        .await;
    assert_eq!(
        written, 1200,
        "every row in the configured table and columns"
    );
    assert_eq!(db.rows_processed("leads").await, 1200, "{text}");
    let scored_by_driftd = db
        .scalar_i64("SELECT count(*) FROM sales.scored_leads WHERE model_version IS NOT NULL")
        .await;
    assert!(
        scored_by_driftd > 0,
        "driftd's champion scored rows of the table: {text}"
    );
}
