//! Serving the champion from the real daemon: a model trained in PyTorch is imported, then
//! answered for over `/v1` and the Open Inference Protocol (checked with tritonclient against
//! PyTorch), downloaded with its version as ETag, refused with a message for every bad
//! request; a second replica sees promotions within 2 s; driftd fine-tunes the imported
//! model; and a monitor-only model is never trained.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::*;

const READ: &str = "read-s3cret";
const ADMIN: &str = "admin-s3cret";

fn served_config(db_url: &str, dir: &Path, models: &str) -> std::path::PathBuf {
    let extra = format!(
        "[serve]\nmax_rows = 50\nmax_body_bytes = 20000\nrefresh_interval_ms = 60000\n{models}"
    );
    let path = write_config(dir, db_url, &extra);
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "[http]\n",
        &format!("[http]\nread_token = \"{READ}\"\nadmin_token = \"{ADMIN}\"\n"),
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn call(d: &Daemon, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let auth = bearer(READ);
    http(
        d.addr,
        method,
        path,
        body,
        &[
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ],
    )
}

fn driftd(args: &[&str]) -> std::process::Output {
    Command::new(driftd_bin()).args(args).output().unwrap()
}

fn must(out: std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Trains a model in PyTorch into `dir` (state_dict.`format`, scaler.json, expected.json).
fn torch_model(dir: &Path, n_features: usize, n_classes: usize, seed: u64, format: &str) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/torch_model.py");
    let out = Command::new(venv_python())
        .arg(script)
        .arg(dir)
        .args([
            n_features.to_string(),
            n_classes.to_string(),
            seed.to_string(),
            format.to_string(),
        ])
        .output()
        .unwrap();
    must(out, "torch_model.py");
    serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap()
}

fn import(cfg: &Path, model: &str, dir: &Path, promote: bool) -> String {
    let mut args = vec![
        "models",
        "import",
        "--config",
        cfg.to_str().unwrap(),
        "--model",
        model,
        "--from",
        dir.to_str().unwrap(),
    ];
    if promote {
        args.push("--promote");
    }
    must(driftd(&args), "driftd models import")
}

/// The version that answers `/v1/models/{model}/predict` for one row, if any.
fn serving_version(d: &Daemon, model: &str, n_features: usize) -> Option<i64> {
    let row = vec![0.5; n_features];
    let (status, body) = call(
        d,
        "POST",
        &format!("/v1/models/{model}/predict"),
        Some(&json!({ "rows": [row] }).to_string()),
    );
    (status == 200).then(|| {
        serde_json::from_str::<Value>(&body).unwrap()["version"]
            .as_i64()
            .unwrap()
    })
}

async fn wait_serving(d: &Daemon, model: &str, n_features: usize, version: i64) {
    wait_until(
        Duration::from_secs(30),
        &format!("{model} v{version} serving"),
        || {
            let v = serving_version(d, model, n_features);
            async move { v == Some(version) }
        },
    )
    .await;
}

fn max_abs_diff(got: &Value, want: &Value) -> f64 {
    match (got, want) {
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "lengths differ");
            a.iter()
                .zip(b)
                .map(|(x, y)| max_abs_diff(x, y))
                .fold(0.0, f64::max)
        }
        _ => (got.as_f64().unwrap() - want.as_f64().unwrap()).abs(),
    }
}

const MODELS: &str = r#"
[[models]]
name = "m"
n_features = 4
feature_names = ["a", "b", "c", "d"]
[models.train]
fit_epochs = 5
finetune_epochs = 5
[models.triggers]
bootstrap_min_rows = 100000
[[models]]
name = "k"
task = "multiclass"
n_classes = 3
n_features = 5
[models.train]
enabled = false
"#;

#[tokio::test(flavor = "multi_thread")]
async fn imported_pytorch_models_answer_v1_and_v2_like_pytorch() {
    let pg = shared_pg();
    let db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = served_config(&db.url, dir.path(), MODELS);
    let d = Daemon::spawn(&cfg);
    wait_until(Duration::from_secs(60), "ready", || {
        let s = d.get("/v2/health/ready").0;
        async move { s == 200 }
    })
    .await;
    // No champion yet: 503 with a message, for /v1 and V2 alike.
    let (s, body) = call(
        &d,
        "POST",
        "/v1/models/m/predict",
        Some(r#"{"rows": [[1, 2, 3, 4]]}"#),
    );
    assert_eq!((s, body.contains("no champion yet")), (503, true), "{body}");
    assert_eq!(call(&d, "GET", "/v2/models/m/ready", None).0, 503);

    let (bin_dir, multi_dir) = (dir.path().join("binary"), dir.path().join("multi"));
    let bin_expected = torch_model(&bin_dir, 4, 2, 1, "pt");
    let multi_expected = torch_model(&multi_dir, 5, 3, 2, "safetensors");
    let printed = import(&cfg, "m", &bin_dir, true);
    assert!(printed.contains("m v1 imported"), "{printed}");
    import(&cfg, "k", &multi_dir, true);
    wait_serving(&d, "m", 4, 1).await;
    wait_serving(&d, "k", 5, 1).await;

    // /v1 reproduces PyTorch's outputs to 1e-5 (binary: P(label = 1); multiclass: rows).
    let body = json!({ "rows": bin_expected["x"] }).to_string();
    let (s, answer) = call(&d, "POST", "/v1/models/m/predict", Some(&body));
    assert_eq!(s, 200, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(
        (answer["model"].as_str(), answer["version"].as_i64()),
        (Some("m"), Some(1))
    );
    let diff = max_abs_diff(&answer["predictions"], &bin_expected["p"]);
    assert!(
        diff <= 1e-5,
        "binary /predict differs from PyTorch by {diff}"
    );
    let body = json!({ "rows": multi_expected["x"] }).to_string();
    let (_, answer) = call(&d, "POST", "/v1/models/k/predict", Some(&body));
    let answer: Value = serde_json::from_str(&answer).unwrap();
    let probs: Vec<Value> = answer["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["probabilities"].clone())
        .collect();
    let diff = max_abs_diff(&Value::Array(probs), &multi_expected["p"]);
    assert!(
        diff <= 1e-5,
        "multiclass /predict differs from PyTorch by {diff}"
    );
    for (p, want) in answer["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .zip(multi_expected["p"].as_array().unwrap())
    {
        let row: Vec<f64> = want
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let argmax = (0..row.len())
            .max_by(|&a, &b| row[a].total_cmp(&row[b]))
            .unwrap() as i64;
        assert_eq!(p["label"].as_i64(), Some(argmax));
    }
    // Rows as objects keyed by feature_names give the same answer as arrays.
    let x0: Vec<f64> = bin_expected["x"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let (_, by_name) = call(
        &d,
        "POST",
        "/v1/models/m/predict",
        Some(&json!({"rows": [{"d": x0[3], "b": x0[1], "a": x0[0], "c": x0[2]}]}).to_string()),
    );
    let by_name: Value = serde_json::from_str(&by_name).unwrap();
    assert!(max_abs_diff(&by_name["predictions"][0], &bin_expected["p"][0]) <= 1e-5);

    // tritonclient (JSON and binary tensors) and the README's PyTorch example, against PyTorch.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/serve_check.py");
    for model in ["m", "k"] {
        let out = Command::new(venv_python())
            .args([script, &d.addr.to_string(), model, READ, "1"])
            .output()
            .unwrap();
        let printed = must(out, "serve_check.py");
        assert!(printed.contains("\"ok\": true"), "{printed}");
    }

    // Downloads: the version is the ETag, and If-None-Match answers 304.
    let auth = bearer(READ);
    let (s, weights) = http(
        d.addr,
        "GET",
        "/v1/models/m/champion",
        None,
        &[("Authorization", &auth)],
    );
    assert_eq!(s, 200);
    assert!(!weights.is_empty());
    let (s, _) = http(
        d.addr,
        "GET",
        "/v1/models/m/champion",
        None,
        &[("Authorization", &auth), ("If-None-Match", "\"1\"")],
    );
    assert_eq!(s, 304);
    let (s, _) = http(
        d.addr,
        "GET",
        "/v1/models/m/champion/sidecar",
        None,
        &[("Authorization", &auth), ("If-None-Match", "\"7\"")],
    );
    assert_eq!(s, 200);
    let (s, listing) = call(&d, "GET", "/v1/models/m", None);
    let listing: Value = serde_json::from_str(&listing).unwrap();
    assert_eq!((s, listing["champion"].as_i64()), (200, Some(1)));
    assert_eq!(listing["versions"][0]["trigger"], "import");
    assert!(listing["versions"][0]["holdout_metrics"].is_object());

    // Every bad request gets a 4xx (or 503) with a message, and the daemon keeps answering.
    let big = json!({ "rows": vec![vec![1.0; 4]; 51] }).to_string();
    let huge = format!("{{\"rows\": [[{}]]}}", vec!["1"; 12_000].join(","));
    let v2 = |shape: &str, data: &str, dtype: &str| {
        format!(
            r#"{{"inputs": [{{"name": "input", "shape": {shape}, "datatype": "{dtype}", "data": {data}}}]}}"#
        )
    };
    let cases: Vec<(&str, String, Option<String>, u16, &str)> = vec![
        (
            "POST",
            "/v1/models/m/predict".into(),
            Some("{\"rows\": [[1, 2".into()),
            400,
            "body is not",
        ),
        (
            "POST",
            "/v1/models/m/predict".into(),
            Some(r#"{"rows": [[1, 2, 3]]}"#.into()),
            400,
            "row 0 has 3 values; the model takes 4",
        ),
        (
            "POST",
            "/v1/models/m/predict".into(),
            Some(r#"{"rows": [[1, 2, 3, 1e39]]}"#.into()),
            400,
            "not a finite",
        ),
        (
            "POST",
            "/v1/models/m/predict".into(),
            Some(r#"{"rows": [{"a": 1, "b": 2, "c": 3}]}"#.into()),
            400,
            "`d` is missing",
        ),
        (
            "POST",
            "/v1/models/k/predict".into(),
            Some(r#"{"rows": [{"a": 1}]}"#.into()),
            400,
            "no feature_names",
        ),
        (
            "POST",
            "/v1/models/m/predict".into(),
            Some(big),
            400,
            "serve.max_rows",
        ),
        (
            "POST",
            "/v1/models/m/predict".into(),
            Some(huge),
            413,
            "max_body_bytes",
        ),
        (
            "POST",
            "/v1/models/nope/predict".into(),
            Some(r#"{"rows": [[1]]}"#.into()),
            404,
            "no model named `nope` (models: k, m)",
        ),
        (
            "GET",
            "/v1/models/nope/champion".into(),
            None,
            404,
            "no model named",
        ),
        (
            "POST",
            "/v2/models/m/infer".into(),
            Some(v2("[1, 3]", "[1, 2, 3]", "FP32")),
            400,
            "shape [1, 3]",
        ),
        (
            "POST",
            "/v2/models/m/infer".into(),
            Some(v2("[1, 4]", "[1, 2, 3, 4]", "INT32")),
            400,
            "datatype INT32",
        ),
        (
            "POST",
            "/v2/models/m/infer".into(),
            Some(v2("[1, 4]", "[1, 2, 3]", "FP32")),
            400,
            "has 3 values",
        ),
        (
            "POST",
            "/v2/models/m/infer".into(),
            Some("[]".into()),
            400,
            "not valid JSON",
        ),
        (
            "POST",
            "/v2/models/m/versions/9/infer".into(),
            Some(v2("[1, 4]", "[1, 2, 3, 4]", "FP32")),
            404,
            "serves version 1",
        ),
        ("GET", "/v2/models/nope".into(), None, 404, "no model named"),
    ];
    for (method, path, body, status, says) in &cases {
        let (s, text) = call(&d, method, path, body.as_deref());
        assert_eq!(s, *status, "{method} {path}: {text}");
        let msg: Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: not JSON: {text}"));
        let msg = msg["error"].as_str().unwrap_or_default();
        assert!(
            msg.contains(says),
            "{method} {path}: {msg:?} should say {says:?}"
        );
    }
    // Tokens: none or a wrong one is refused; the admin token reads too; health needs none.
    assert_eq!(http(d.addr, "GET", "/v1/models", None, &[]).0, 401);
    assert_eq!(
        http(
            d.addr,
            "GET",
            "/v1/models",
            None,
            &[("Authorization", "Bearer nope")]
        )
        .0,
        401
    );
    let admin = bearer(ADMIN);
    assert_eq!(
        http(
            d.addr,
            "GET",
            "/v1/models",
            None,
            &[("Authorization", &admin)]
        )
        .0,
        200
    );
    assert_eq!(http(d.addr, "GET", "/v2/health/live", None, &[]).0, 200);
    // PUT /log-level needs the admin token, not the read token.
    assert_eq!(
        http(
            d.addr,
            "PUT",
            "/log-level",
            Some("debug"),
            &[("Authorization", &auth)]
        )
        .0,
        401
    );
    assert_eq!(
        http(
            d.addr,
            "PUT",
            "/log-level",
            Some("info"),
            &[("Authorization", &admin)]
        )
        .0,
        200
    );
    // A monitor-only model cannot be retrained.
    let (s, text) = http(
        d.addr,
        "POST",
        "/v1/models/k/retrain",
        None,
        &[("Authorization", &admin)],
    );
    assert_eq!(s, 409, "{text}");
    assert_eq!(
        serving_version(&d, "m", 4),
        Some(1),
        "still serving after the bad requests"
    );
    // The import validates: a model of the wrong width is refused and registers nothing.
    let out = driftd(&[
        "models",
        "import",
        "--config",
        cfg.to_str().unwrap(),
        "--model",
        "m",
        "--from",
        multi_dir.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("n_features = 4"), "{err}");
    let mut db = db;
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM driftd.model_versions")
            .await,
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_replica_serves_a_promotion_within_two_seconds_and_the_import_is_fine_tuned() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let models = r#"
[[models]]
name = "m"
n_features = 4
[models.train]
fit_epochs = 5
finetune_epochs = 5
[models.triggers]
bootstrap_min_rows = 100000
"#;
    let cfg = served_config(&db.url, dir.path(), models);
    let first = Daemon::spawn(&cfg);
    let second = Daemon::spawn(&cfg);
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    torch_model(&a, 4, 2, 3, "safetensors");
    torch_model(&b, 4, 2, 4, "pt");
    import(&cfg, "m", &a, true);
    wait_serving(&first, "m", 4, 1).await;
    wait_serving(&second, "m", 4, 1).await;
    import(&cfg, "m", &b, false);
    assert_eq!(
        serving_version(&second, "m", 4),
        Some(1),
        "an import without --promote does not serve"
    );
    // Promotion and rollback reach both replicas through NOTIFY (the poll fallback is 60 s).
    for (args, version) in [
        (vec!["promote", "--version", "2"], 2),
        (vec!["rollback"], 1),
    ] {
        let mut full = vec![
            "models",
            args[0],
            "--config",
            cfg.to_str().unwrap(),
            "--model",
            "m",
        ];
        full.extend(&args[1..]);
        must(driftd(&full), "driftd models promote/rollback");
        let changed = Instant::now();
        for d in [&second, &first] {
            while serving_version(d, "m", 4) != Some(version) {
                assert!(
                    changed.elapsed() < Duration::from_secs(2),
                    "v{version} not served within 2 s"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        eprintln!(
            "v{version} served by both replicas {:?} after the command returned",
            changed.elapsed()
        );
    }

    // driftd fine-tunes the imported model like one of its own.
    let rows: Vec<Row> = (0..600)
        .map(|i| {
            let f: Vec<f64> = (0..4)
                .map(|j| ((i * 7 + j * 13) % 17) as f64 / 3.0 - 1.0)
                .collect();
            let label = f64::from(f[0] + f[1] > f[2]);
            Row {
                model: "m".into(),
                features: f,
                prediction: Some(0.5),
                label: Some(label),
                labeled_at_secs: Some(i as i64),
            }
        })
        .collect();
    db.insert(&rows).await;
    db.wait_rows_processed("m", 600, Duration::from_secs(60))
        .await;
    let id = must(
        driftd(&[
            "retrain",
            "--config",
            cfg.to_str().unwrap(),
            "--model",
            "m",
            "--strategy",
            "finetune_new",
        ]),
        "driftd retrain",
    );
    let sql = format!(
        "SELECT count(*) FROM driftd.training_runs r JOIN driftd.model_versions v ON v.model = r.model AND v.version = r.new_version \
         WHERE r.id = {} AND r.status IN ('promoted', 'kept') AND v.parent_version = 1 AND v.strategy = 'finetune_new'",
        id.trim()
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while db.try_scalar_i64(&sql).await != Some(1) {
        assert!(
            Instant::now() < deadline,
            "no fine-tuned version of the import; logs:\n{}",
            first.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn monitor_only_monitors_and_never_trains_or_scores() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let models = r#"
[[models]]
name = "watch"
n_features = 3
[models.train]
enabled = false
[models.triggers]
bootstrap_min_rows = 100
schedules = [{ cron = "* * * * * *", strategy = "auto" }]
[models.triggers.drift]
min_new_rows = 10
min_rows_after_drift = 10
cooldown = "1s"
"#;
    let cfg = served_config(&db.url, dir.path(), models);
    let d = Daemon::spawn(&cfg);
    let rows = binary_rows("watch", 3_000, 0, Some(1_500));
    db.insert(&rows).await;
    let mut unscored = binary_rows("watch", 50, 10_000, None);
    for r in &mut unscored {
        (r.prediction, r.label, r.labeled_at_secs) = (None, None, None);
    }
    db.insert(&unscored).await;
    db.wait_rows_processed("watch", 3_000, Duration::from_secs(60))
        .await;
    let drifts = "driftd_drift_detected_total{detector=\"adwin\",model=\"watch\"}";
    wait_until(Duration::from_secs(30), "drift reported", || {
        let n = d.metric(drifts).unwrap_or(0.0);
        async move { n >= 1.0 }
    })
    .await;
    // Bootstrap (100 rows), drift and the every-second schedule would all have trained by now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(d
        .metric("driftd_rolling_accuracy{model=\"watch\",window=\"1000\"}")
        .is_some());
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM driftd.model_versions")
            .await,
        0
    );
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM driftd.training_runs")
            .await,
        0
    );
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM outcomes WHERE prediction IS NULL")
            .await,
        50
    );
    assert_eq!(
        d.metric("driftd_next_scheduled_retrain_timestamp_seconds{model=\"watch\"}"),
        None
    );
    let out = driftd(&[
        "retrain",
        "--config",
        cfg.to_str().unwrap(),
        "--model",
        "watch",
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
