//! The demo's feed (`driftd demo-feed`, the README's main command) against the real daemon,
//! compressed: the stream is shorter and faster, the story the summary tells is the same.

use std::process::Command;
use std::time::Instant;

use crate::helpers::*;

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
    let out = Command::new(driftd_bin())
        .args(["demo-feed", "--model", "demo", "--rows", "6000"])
        .args(["--rows-per-sec", "600", "--label-delay-ms", "300"])
        .arg("--config")
        .arg(&cfg)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
