//! Several daemons against one database: each model is owned by one replica at a time
//! (advisory locks), the replicas share the models evenly (heartbeats in `driftd.replicas`),
//! the survivors take over when an owner dies, and nothing is counted twice.

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

/// How many of `models` this replica reports owning.
fn owned_by(d: &Daemon, models: &[&str]) -> usize {
    let (_, body) = d.get("/metrics");
    models
        .iter()
        .filter(|m| {
            let line = format!("driftd_model_owner{{model=\"{m}\"}} 1");
            body.lines().any(|l| l == line)
        })
        .count()
}

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
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "[poll]",
        "[poll]\nownership_check_ms = 300\nreplica_ttl_ms = 1500",
    );
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
        "the second replica is ready and owns its share: one model each",
        || {
            let ready = second.get("/readyz").0;
            let mine = owned_by(&second, &["a", "b"]);
            let theirs = owned_by(&first, &["a", "b"]);
            async move { ready == 200 && mine == 1 && theirs == 1 }
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

/// Three replicas share 300 models evenly; when one is killed the other two take its models
/// within 30 s; a fourth joins and the four rebalance; every row is counted exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn replicas_share_the_models_evenly_and_rebalance() {
    const M: usize = 300;
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..M).map(|i| format!("tenant-{i:03}")).collect();
    let models: String = names
        .iter()
        .map(|n| format!("[[models]]\nname = \"{n}\"\nn_features = 3\n"))
        .collect();
    let cfg = write_config(dir.path(), &db.url, &models);
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "[poll]\ninterval_ms = 100",
        "[poll]\ninterval_ms = 2000\nownership_check_ms = 500\nreplica_ttl_ms = 3000",
    );
    std::fs::write(&cfg, &text).unwrap();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let counts = |ds: &[&Daemon]| ds.iter().map(|d| owned_by(d, &refs)).collect::<Vec<_>>();

    let mut replicas: Vec<Daemon> = (0..3).map(|_| Daemon::spawn(&cfg)).collect();
    let balanced = |c: &[usize], r: usize| {
        c.iter().sum::<usize>() == M && c.iter().all(|&n| n == M / r || n == M.div_ceil(r))
    };
    wait_until(
        Duration::from_secs(90),
        "three replicas own 100 models each",
        || {
            let c = counts(&replicas.iter().collect::<Vec<_>>());
            async move { balanced(&c, 3) }
        },
    )
    .await;
    assert_eq!(replicas[0].metric("driftd_replicas"), Some(3.0));

    // Rows for every model, written while a replica dies.
    let per_model = 40usize;
    let mut written = 0usize;
    for (k, chunk) in names.chunks(50).enumerate() {
        let rows: Vec<Row> = chunk
            .iter()
            .enumerate()
            .flat_map(|(j, n)| binary_rows(n, per_model, (k * 50 + j) as i64 * 1_000, None))
            .collect();
        written += db.insert(&rows).await.len();
        if k == 2 {
            replicas[0].kill9();
        }
    }
    let killed_at = Instant::now();
    let survivors: Vec<&Daemon> = replicas[1..].iter().collect();
    wait_until(
        Duration::from_secs(30),
        "the two survivors own 150 models each",
        || {
            let c = counts(&survivors);
            async move { balanced(&c, 2) }
        },
    )
    .await;
    eprintln!("rebalanced after SIGKILL in {:?}", killed_at.elapsed());

    replicas.push(Daemon::spawn(&cfg));
    let live: Vec<&Daemon> = replicas[1..].iter().collect();
    wait_until(
        Duration::from_secs(60),
        "a fourth replica takes its share (100 each of three)",
        || {
            let c = counts(&live);
            async move { balanced(&c, 3) }
        },
    )
    .await;

    for n in &names {
        db.wait_rows_processed(n, per_model as i64, Duration::from_secs(60))
            .await;
    }
    let total = db
        .scalar_i64("SELECT coalesce(sum(rows_processed), 0)::bigint FROM driftd.monitor_state")
        .await;
    assert_eq!(total as usize, written, "every row counted exactly once");
}

/// `training.max_concurrent = 1`: three models ask for their first model at once; the
/// trainings run one after another (never two at a time on the replica), all three finish,
/// and every row is still counted while the others wait.
#[tokio::test(flavor = "multi_thread")]
async fn training_slots_bound_the_trainings_that_run_at_once() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let models: String = ["a", "b", "c"]
        .iter()
        .map(|n| {
            format!(
                "[[models]]\nname = \"{n}\"\nn_features = 3\n[models.triggers]\nbootstrap_min_rows = 400\n"
            )
        })
        .collect();
    let cfg = write_config(
        dir.path(),
        &db.url,
        &format!("[training]\nmax_concurrent = 1\n{models}"),
    );
    let d = Daemon::spawn(&cfg);
    for (k, n) in ["a", "b", "c"].iter().enumerate() {
        db.insert(&binary_rows(n, 600, k as i64 * 10_000, None))
            .await;
    }
    for n in ["a", "b", "c"] {
        db.wait_rows_processed(n, 600, Duration::from_secs(60))
            .await;
    }
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let champions = db
            .scalar_i64("SELECT count(*) FROM driftd.model_versions WHERE status = 'champion'")
            .await;
        if champions == 3 {
            break;
        }
        if Instant::now() > deadline {
            let runs = db
                .scalar_text(
                    "SELECT coalesce(string_agg(format('%s %s %s %s', model, trigger, status, error), '; '), '') \
                     FROM driftd.training_runs",
                )
                .await;
            panic!(
                "{champions} of 3 models have a champion; runs: {runs}\n{}",
                d.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let bootstraps = db
        .scalar_i64("SELECT count(*) FROM driftd.training_runs WHERE trigger = 'bootstrap' AND finished_at IS NOT NULL AND started_at IS NOT NULL")
        .await;
    assert_eq!(bootstraps, 3);
    let overlaps = db
        .scalar_i64(
            "SELECT count(*) FROM driftd.training_runs x JOIN driftd.training_runs y ON x.id < y.id \
             WHERE x.started_at IS NOT NULL AND y.started_at IS NOT NULL \
               AND x.status NOT IN ('coalesced', 'requested') AND y.status NOT IN ('coalesced', 'requested') \
               AND tstzrange(x.started_at, x.finished_at) && tstzrange(y.started_at, y.finished_at)",
        )
        .await;
    let runs = db
        .scalar_text(
            "SELECT string_agg(format('%s %s %s %s..%s', model, trigger, status, started_at, finished_at), '; ' ORDER BY id) \
             FROM driftd.training_runs",
        )
        .await;
    assert_eq!(
        overlaps, 0,
        "two trainings ran at once with max_concurrent = 1: {runs}"
    );
}
