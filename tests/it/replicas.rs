//! Two daemons against one database: each model is owned by one replica at a time (advisory
//! locks), the survivor takes over when the owner dies, and nothing is counted twice.

use std::time::{Duration, Instant};

use driftd::monitor::MonitorState;

use crate::helpers::*;
use crate::monitor::reference_state;

const MODELS: &str = r#"
[[models]]
name = "a"
n_features = 3
[[models]]
name = "b"
n_features = 3
"#;

fn owner(d: &Daemon, model: &str) -> f64 {
    d.metric(&format!("driftd_model_owner{{model=\"{model}\"}}"))
        .unwrap_or(-1.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_survivor_takes_over_and_counts_nothing_twice() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &db.url, MODELS);
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("[poll]", "[poll]\nownership_check_ms = 300");
    std::fs::write(&cfg, &text).unwrap();
    let mut first = Daemon::spawn(&cfg);
    wait_until(
        Duration::from_secs(60),
        "the first replica owns both models",
        || {
            let (a, b) = (owner(&first, "a"), owner(&first, "b"));
            async move { a == 1.0 && b == 1.0 }
        },
    )
    .await;
    let second = Daemon::spawn(&cfg);
    wait_until(
        Duration::from_secs(60),
        "the second replica is a ready standby",
        || {
            let ready = second.get("/readyz").0;
            let (a, b) = (owner(&second, "a"), owner(&second, "b"));
            async move { ready == 200 && a == 0.0 && b == 0.0 }
        },
    )
    .await;

    let total = 12_000usize;
    let rows_a = binary_rows("a", total, 0, Some(total / 2));
    let rows_b = binary_rows("b", total, 50_000, None);
    let mut first_ids = (None, None);
    let mut killed_at = None;
    for (k, (ca, cb)) in rows_a.chunks(1_000).zip(rows_b.chunks(1_000)).enumerate() {
        let ia = db.insert(ca).await;
        let ib = db.insert(cb).await;
        first_ids.0.get_or_insert(ia[0]);
        first_ids.1.get_or_insert(ib[0]);
        if k == 5 {
            first.kill9();
            killed_at = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let killed_at = killed_at.unwrap();
    wait_until(
        Duration::from_secs(60),
        "the survivor owns both models",
        || {
            let (a, b) = (owner(&second, "a"), owner(&second, "b"));
            async move { a == 1.0 && b == 1.0 }
        },
    )
    .await;
    let takeover = killed_at.elapsed();
    eprintln!("takeover after the owner's SIGKILL: {takeover:?}");
    assert!(
        takeover < Duration::from_secs(30),
        "takeover took {takeover:?}"
    );

    db.wait_rows_processed("a", total as i64, Duration::from_secs(120))
        .await;
    db.wait_rows_processed("b", total as i64, Duration::from_secs(120))
        .await;
    let canon = |s: &MonitorState| {
        let mut v: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(s).unwrap()).unwrap();
        v.as_object_mut().unwrap().remove("policy");
        v
    };
    for (model, rows, first_id) in [
        ("a", &rows_a, first_ids.0.unwrap()),
        ("b", &rows_b, first_ids.1.unwrap()),
    ] {
        let want = canon(&reference_state(&text, model, rows, first_id));
        let got = canon(&serde_json::from_value(db.state_json(model).await).unwrap());
        let diff = json_diff(&got, &want, 5);
        assert!(
            diff.is_empty(),
            "{model}: state after the takeover differs: {diff:#?}"
        );
    }
    // No two trainings of one model overlap in time.
    let overlaps = db
        .scalar_i64(
            "SELECT count(*) FROM driftd.training_runs x JOIN driftd.training_runs y \
               ON x.model = y.model AND x.id < y.id \
             WHERE x.started_at IS NOT NULL AND y.started_at IS NOT NULL \
               AND tstzrange(x.started_at, coalesce(x.finished_at, 'infinity')) && \
                   tstzrange(y.started_at, coalesce(y.finished_at, 'infinity'))",
        )
        .await;
    assert_eq!(overlaps, 0);
}
