//! `[[model_templates]]`: model names that appear in the outcomes table while the daemons run
//! are picked up without a restart, take their settings from the first matching template
//! (explicit `[[models]]` win), get their feature width from their first rows, are owned by one
//! replica each, served by every replica, and have every row counted exactly once.

use std::time::Duration;

use crate::helpers::*;

const CONFIG: &str = r#"
[[models]]
name = "tenant-vip"
n_features = 3
count_windows = [50]

[[model_templates]]
pattern = "tenant-*"
count_windows = [200]
[model_templates.triggers]
bootstrap_min_rows = 300
"#;

fn rows_of_width(model: &str, n: usize, width: usize, start_secs: i64) -> Vec<Row> {
    binary_rows(model, n, start_secs, None)
        .into_iter()
        .map(|mut r| {
            r.features.resize(width, 0.5);
            r
        })
        .collect()
}

fn read(d: &Daemon, path: &str) -> (u16, String) {
    http(
        d.addr,
        "GET",
        path,
        None,
        &[("Authorization", "Bearer reader")],
    )
}

fn owners(replicas: &[&Daemon], model: &str) -> Vec<f64> {
    replicas
        .iter()
        .map(|d| {
            d.metric(&format!("driftd_model_owner{{model=\"{model}\"}}"))
                .unwrap_or(-1.0)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn new_model_names_are_picked_up_while_running() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &db.url, CONFIG);
    // A discovery round every 5 minutes: a new name must be picked up through its NOTIFY.
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(
            "[poll]",
            "[poll]\ndiscover_interval_ms = 300000\nownership_check_ms = 300",
        )
        .replace("[http]", "[http]\nread_token = \"reader\"");
    std::fs::write(&cfg, &text).unwrap();
    let first = Daemon::spawn(&cfg);
    let second = Daemon::spawn(&cfg);
    let both = [&first, &second];
    wait_until(Duration::from_secs(60), "both replicas are ready", || {
        let ready = both.iter().all(|d| d.get("/readyz").0 == 200);
        async move { ready }
    })
    .await;

    // While they run: the explicit model, two new tenants of widths 3 and 5, a tenant whose
    // first row is malformed (width 2, the rest width 4), and a name no template matches.
    let n = 600;
    let mut c_rows = rows_of_width("tenant-c", 1, 2, 30_000);
    c_rows.extend(rows_of_width("tenant-c", n - 1, 4, 30_001));
    let batches = [
        rows_of_width("tenant-vip", n, 3, 0),
        rows_of_width("tenant-a", n, 3, 10_000),
        rows_of_width("tenant-b", n, 5, 20_000),
        c_rows,
        rows_of_width("stranger", n, 3, 40_000),
    ];
    for b in &batches {
        db.insert(b).await;
    }
    // Rejected rows are set aside, not folded in: tenant-c folds all but its first.
    for (m, folded) in [
        ("tenant-vip", n),
        ("tenant-a", n),
        ("tenant-b", n),
        ("tenant-c", n - 1),
    ] {
        db.wait_rows_processed(m, folded as i64, Duration::from_secs(90))
            .await;
    }
    let rejected = db
        .scalar_i64("SELECT count(*) FROM driftd.rejected_rows WHERE model = 'tenant-c'")
        .await;
    assert_eq!(
        rejected, 1,
        "the malformed first row is set aside, not the rest"
    );
    let stranger = db
        .scalar_i64("SELECT count(*) FROM driftd.monitor_state WHERE model = 'stranger'")
        .await;
    assert_eq!(stranger, 0, "no template matches `stranger`");

    // One owner each, across the two replicas.
    for m in ["tenant-vip", "tenant-a", "tenant-b", "tenant-c"] {
        wait_until(
            Duration::from_secs(30),
            &format!("{m} has one owner"),
            || {
                let o = owners(&both, m);
                async move { o.iter().filter(|&&x| x == 1.0).count() == 1 }
            },
        )
        .await;
    }
    // The explicit block wins over the template: its window, not the template's.
    let window = |model: &str, w: &str| {
        both.iter()
            .filter_map(|d| {
                d.metric(&format!(
                    "driftd_rolling_accuracy{{model=\"{model}\",window=\"{w}\"}}"
                ))
            })
            .count()
    };
    assert_eq!(window("tenant-vip", "50"), 1);
    assert_eq!(window("tenant-vip", "200"), 0);
    assert_eq!(window("tenant-a", "200"), 1);
    assert_eq!(
        window("tenant-a", "1000"),
        0,
        "the template replaces the default windows"
    );

    // The template's bootstrap trains each tenant's first model, of the width its rows have,
    // and both replicas serve it (one of them does not own it).
    for (m, width) in [("tenant-a", 3), ("tenant-b", 5), ("tenant-c", 4)] {
        wait_until(
            Duration::from_secs(180),
            &format!("both replicas serve {m}'s first model"),
            || {
                let ready = both
                    .iter()
                    .all(|d| read(d, &format!("/v2/models/{m}/ready")).0 == 200);
                async move { ready }
            },
        )
        .await;
        for d in both {
            let (status, body) = read(d, &format!("/v2/models/{m}"));
            assert_eq!(status, 200, "{body}");
            let meta: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(
                meta["inputs"][0]["shape"],
                serde_json::json!([-1, width]),
                "{m}: {body}"
            );
        }
    }
    for d in both {
        assert_eq!(d.metric("driftd_models{origin=\"configured\"}"), Some(1.0));
        assert_eq!(d.metric("driftd_models{origin=\"template\"}"), Some(3.0));
    }
    let (status, body) = read(&second, "/v2/models/stranger");
    assert_eq!(status, 404, "{body}");

    // A replica started now hears no notification of these names: its first scan of the
    // table finds them, and it takes its share (4 models over 3 replicas: 2, 1, 1).
    let third = Daemon::spawn(&cfg);
    let all = [&first, &second, &third];
    let models = ["tenant-vip", "tenant-a", "tenant-b", "tenant-c"];
    wait_until(
        Duration::from_secs(60),
        "the third replica owns its share",
        || {
            let counts: Vec<usize> = all
                .iter()
                .map(|d| models.iter().filter(|m| owners(&[d], m)[0] == 1.0).count())
                .collect();
            async move {
                let mut c = counts.clone();
                c.sort_unstable();
                c == [1, 1, 2]
            }
        },
    )
    .await;
    let (status, body) = read(&third, "/v2/models/tenant-b");
    assert_eq!(
        status, 200,
        "the new replica serves a discovered model: {body}"
    );

    let total = db
        .scalar_i64("SELECT coalesce(sum(rows_processed), 0)::bigint FROM driftd.monitor_state")
        .await;
    assert_eq!(total as usize, 4 * n - 1, "every row counted exactly once");
}
