//! Categorical features through the real daemon: a user's table with a text, an enum and an
//! integer-code column; the model learns them one-hot, `/v1` answers rows with their text
//! (an unknown category is answered and counted), and a shift of a category's frequencies
//! shows in the chi-square and unseen-share gauges.

use std::time::Duration;

use sqlx::Executor;

use crate::helpers::*;

const WAIT: Duration = Duration::from_secs(180);

const TABLE: &str = "CREATE TYPE region AS ENUM ('eu', 'us', 'apac');
  CREATE TABLE accounts (
    id bigserial PRIMARY KEY, model text NOT NULL, created_at timestamptz DEFAULT now(),
    spend real, plan text, region region, seats integer,
    prediction real, label real, labeled_at timestamptz, model_version int8);
  CREATE INDEX accounts_poll ON accounts (model, labeled_at, id)";

const CONFIG: &str = r#"
[source]
table = "accounts"
feature_columns = ["spend", "plan", "region", "seats"]

[[models]]
name = "acct"
n_features = 4
feature_names = ["spend", "plan", "region", "seats"]
categorical_features = ["plan", "region", "seats"]
[models.train]
fit_epochs = 40
[models.triggers]
bootstrap_min_rows = 400
[models.triggers.drift]
enabled = false
[models.feature_drift]
check_interval = "1s"
window_rows = 300
min_rows = 100
"#;

/// `n` rows from `first`; labelled ones convert when the plan is `pro` or `team`. The plan
/// follows `i % 4`, the seats `i / 4`, the region `i / 16`: no feature stands in for another.
async fn insert(db: &mut TestDb, first: i64, n: i64, plans: &str, labelled: bool) {
    let label = if labelled {
        "(p IN ('pro', 'team'))::int::real, to_timestamp(1767225600 + i)"
    } else {
        "NULL, NULL"
    };
    let sql = format!(
        "INSERT INTO accounts (model, spend, plan, region, seats, prediction, label, labeled_at) \
         SELECT 'acct', ((i * 13) % 17)::real, p, (ARRAY['eu','us','apac'])[1 + (i / 16) % 3]::region, \
                1 + (i / 4) % 4, \
                {pred}, {label} \
         FROM (SELECT i, (ARRAY[{plans}])[1 + (i * 7) % array_length(ARRAY[{plans}], 1)] AS p \
               FROM generate_series({first}, {last}) AS i) AS s",
        pred = if labelled { "0.5" } else { "NULL" },
        last = first + n - 1,
    );
    db.conn.execute(sql.as_str()).await.unwrap();
}

fn predict(d: &Daemon, rows: &str) -> (u16, serde_json::Value) {
    let (code, body) = http(
        d.addr,
        "POST",
        "/v1/models/acct/predict",
        Some(rows),
        &[
            ("Authorization", "Bearer r"),
            ("Content-Type", "application/json"),
        ],
    );
    (
        code,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn text_enum_and_code_columns_are_learnt_served_and_watched_for_drift() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    db.conn.execute(TABLE).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &db.url, CONFIG);
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace("[http]\n", "[http]\nread_token = \"r\"\n"),
    )
    .unwrap();
    let check = std::process::Command::new(driftd_bin())
        .args(["check-config", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&check.stdout);
    assert!(
        shown.contains("categorical: plan, region, seats"),
        "{shown}"
    );

    let d = Daemon::spawn(&cfg);
    insert(&mut db, 0, 600, "'free', 'basic', 'pro', 'team'", true).await;
    let one = r#"{"rows": [[1, "pro", "eu", 1]]}"#;
    wait_until(WAIT, "the champion served", || {
        let code = predict(&d, one).0;
        async move { code == 200 }
    })
    .await;

    // Rows by their text: the plan decides, the other categoricals and numbers are taken too.
    let (code, out) = predict(
        &d,
        r#"{"rows": [{"spend": 3, "plan": "pro", "region": "eu", "seats": 2},
                     {"spend": 3, "plan": "free", "region": "us", "seats": 2},
                     [3, "team", "apac", 1],
                     [3, "enterprise", "eu", 1]]}"#,
    );
    assert_eq!(code, 200, "{out}");
    let p: Vec<f64> = serde_json::from_value(out["predictions"].clone()).unwrap();
    assert!(
        p[0] > 0.8 && p[2] > 0.8 && p[1] < 0.2,
        "{p:?}\n{}",
        d.logs()
    );
    // The Open Inference Protocol with tritonclient: FP32 numbers and BYTES categories.
    let rows = serde_json::json!({
        "numeric": [[3.0], [3.0], [3.0], [3.0]],
        "categorical": [["pro", "eu", "2"], ["free", "us", "2"], ["team", "apac", "1"], ["enterprise", "eu", "1"]],
        "expected": p,
    });
    let rows_path = dir.path().join("rows.json");
    std::fs::write(&rows_path, rows.to_string()).unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/serve_check_categorical.py"
    );
    let out = std::process::Command::new(venv_python())
        .args([
            script,
            &d.addr.to_string(),
            "acct",
            "r",
            rows_path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // A plan it never saw is answered (as its "other" category) and counted: once by /v1,
    // twice by the two tritonclient requests.
    assert!((0.0..=1.0).contains(&p[3]));
    let unknown = "driftd_serve_unknown_categories_total{feature=\"plan\",model=\"acct\"}";
    assert_eq!(d.metric(unknown), Some(3.0));
    let (code, out) = predict(&d, r#"{"rows": [["lots", "pro", "eu", 1]]}"#);
    assert_eq!(code, 400, "{out}");
    assert!(
        out["error"]
            .as_str()
            .unwrap()
            .contains("only categorical features take text"),
        "{out}"
    );

    // A new plan takes over the incoming rows: chi-square and the unseen share see it.
    insert(
        &mut db,
        600,
        400,
        "'enterprise', 'enterprise', 'pro'",
        false,
    )
    .await;
    let share = "driftd_feature_unseen_category_share{feature=\"plan\",model=\"acct\"}";
    wait_until(WAIT, "the plan's drift", || {
        let s = d.metric(share);
        async move { s.is_some_and(|s| s > 0.3) }
    })
    .await;
    let p = d
        .metric("driftd_feature_chi2_pvalue{feature=\"plan\",model=\"acct\"}")
        .unwrap();
    assert!(p < 1e-6, "{p}");
    // The region's frequencies did not move.
    let region = d
        .metric("driftd_feature_unseen_category_share{feature=\"region\",model=\"acct\"}")
        .unwrap();
    assert_eq!(region, 0.0);
}
