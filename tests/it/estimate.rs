//! Accuracy before the labels: the daemon estimates rows scored long before their labels
//! arrive, on a real PostgreSQL, each scored row once across kill -9, and the estimation gap
//! opens when the world changes in a way the model's confidence cannot show.

use std::time::Duration;

use super::helpers::*;

/// A model driftd only monitors: the predictions are the user's, and so is their calibration.
const MONITORED: &str = r#"
[[models]]
name = "churn"
n_features = 3
[models.train]
enabled = false
[models.estimate]
calibration_rows = 300
interval_ms = 100
"#;

const WAIT: Duration = Duration::from_secs(60);

/// The rows as the model service writes them: scored now, labels to come.
fn unlabelled(rows: &[Row]) -> Vec<Row> {
    rows.iter()
        .map(|r| Row {
            label: None,
            labeled_at_secs: None,
            ..r.clone()
        })
        .collect()
}

/// The share of `rows` whose prediction names their label.
fn accuracy(rows: &[Row]) -> f64 {
    let right = rows
        .iter()
        .filter(|r| (r.prediction.unwrap() >= 0.5) == (r.label.unwrap() == 1.0))
        .count();
    right as f64 / rows.len() as f64
}

/// Scored rows the estimate has passed, estimated or not (`-1` before its first batch).
async fn rows_passed(db: &mut TestDb, model: &str) -> i64 {
    db.scalar_i64(&format!(
        "SELECT coalesce((SELECT (state->>'rows')::int8 + (state->>'uncalibrated')::int8 \
         FROM driftd.estimates WHERE model = '{model}'), -1)"
    ))
    .await
}

async fn wait_rows_passed(db: &mut TestDb, model: &str, n: i64) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let got = rows_passed(db, model).await;
        assert!(
            got <= n,
            "{got} scored rows passed, more than the {n} written"
        );
        if got == n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{got} of {n} scored rows passed at the deadline"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `sql` (one bigint; an error, such as a table not created yet, reads as none) until
/// `done` holds.
async fn wait_for(db: &mut TestDb, sql: &str, what: &str, done: impl Fn(i64) -> bool) {
    let deadline = std::time::Instant::now() + WAIT;
    while !db.try_scalar_i64(sql).await.is_some_and(&done) {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for `model`'s first version.
async fn wait_first_model(db: &mut TestDb, model: &str) {
    let sql = format!("SELECT count(*) FROM driftd.model_versions WHERE model = '{model}'");
    wait_for(db, &sql, "the first model", |n| n > 0).await;
}

/// Writes the labels of `rows` (inserted as `ids`) now.
async fn label(db: &mut TestDb, ids: &[i64], rows: &[Row]) {
    let labels: Vec<f64> = rows.iter().map(|r| r.label.unwrap()).collect();
    db.execute_bound_labels(ids, &labels).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn estimates_rows_scored_long_before_their_labels_and_the_gap_shows_concept_drift() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &db.url, MONITORED);
    // 600 labelled rows calibrate the model's probabilities: it says 0.6–0.99 and is right
    // 85 % of the time, whatever it says, so its raw confidence (about 0.80) is too low.
    db.insert(&binary_rows("churn", 600, 0, None)).await;
    let d = Daemon::spawn(&cfg);
    db.wait_rows_processed("churn", 600, WAIT).await;

    // 3 000 rows scored now, their labels weeks away.
    let hidden = binary_rows("churn", 3_000, 10_000, None);
    let ids = db.insert(&unlabelled(&hidden)).await;
    wait_rows_passed(&mut db, "churn", 3_600).await;
    let estimate =
        |d: &Daemon| d.metric(r#"driftd_estimated_accuracy{model="churn",window="1000"}"#);
    let est = estimate(&d).expect("an estimate of the last 1000 scored rows");
    let realized = accuracy(&hidden[2_000..]);
    let raw: f64 = hidden[2_000..]
        .iter()
        .map(|r| r.prediction.unwrap().max(1.0 - r.prediction.unwrap()))
        .sum::<f64>()
        / 1_000.0;
    assert!(
        (est - realized).abs() < 0.035,
        "estimated {est:.3}, realized {realized:.3} (raw confidence {raw:.3})"
    );
    assert!((raw - realized).abs() > 0.04, "the raw confidence is off");
    assert_eq!(
        db.rows_processed("churn").await,
        600,
        "no label of the scored rows is in yet"
    );

    // The labels arrive: the realized accuracy agrees with the estimate, the gap is small.
    label(&mut db, &ids, &hidden).await;
    db.wait_rows_processed("churn", 3_600, WAIT).await;
    let gap = || d.metric(r#"driftd_estimation_gap{model="churn"}"#);
    wait_until(WAIT, "the gap of the labelled rows", || {
        let g = gap();
        async move { g.is_some() }
    })
    .await;
    let g = gap().unwrap();
    assert!(g.abs() < 0.04, "gap {g:.3} while only the labels arrived");

    // The world changes: the model is as confident as before and right only 55 % of the
    // time. The estimate cannot see it; once the labels are in, the gap does.
    let changed = binary_rows("churn", 2_000, 20_000, Some(0));
    let ids = db.insert(&unlabelled(&changed)).await;
    wait_rows_passed(&mut db, "churn", 5_600).await;
    let est = estimate(&d).unwrap();
    assert!(est > 0.8, "the estimate follows the confidence: {est:.3}");
    label(&mut db, &ids, &changed).await;
    db.wait_rows_processed("churn", 5_600, WAIT).await;
    wait_until(WAIT, "the gap opens", || {
        let g = gap();
        async move { g.is_some_and(|g| g > 0.2) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_dash_nine_estimates_each_scored_row_once() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &db.url, MONITORED);
    db.insert(&binary_rows("churn", 600, 0, None)).await;
    let mut d = Daemon::spawn(&cfg);
    db.wait_rows_processed("churn", 600, WAIT).await;
    let chunk = 1_500;
    let chunks = 8;
    let mut kills_mid_stream = 0;
    for k in 0..chunks {
        let rows = unlabelled(&binary_rows("churn", chunk, 10_000 * (k as i64 + 1), None));
        db.insert(&rows).await;
        // Past the settle time, then at an unpredictable point of the estimate's work.
        tokio::time::sleep(Duration::from_millis(300 + 29 * (k as u64 % 5))).await;
        let written = 600 + ((k + 1) * chunk) as i64;
        if rows_passed(&mut db, "churn").await < written {
            kills_mid_stream += 1;
        }
        d.kill9();
        d = Daemon::spawn(&cfg);
    }
    let total = 600 + (chunks * chunk) as i64;
    wait_rows_passed(&mut db, "churn", total).await;
    assert!(
        kills_mid_stream >= 2,
        "only {kills_mid_stream} kills landed while scored rows were pending"
    );
    // Stays there: nothing is estimated twice after the last restart either.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(rows_passed(&mut db, "churn").await, total);
    let (cursor, newest, stored) = (
        db.scalar_i64("SELECT scored_id FROM driftd.estimates WHERE model = 'churn'")
            .await,
        db.scalar_i64("SELECT max(id) FROM outcomes").await,
        db.scalar_i64("SELECT rows_estimated FROM driftd.estimates WHERE model = 'churn'")
            .await,
    );
    assert_eq!(cursor, newest, "the read position is the newest scored row");
    let estimated = db
        .scalar_i64("SELECT (state->>'rows')::int8 FROM driftd.estimates WHERE model = 'churn'")
        .await;
    assert_eq!(stored, estimated);
    assert!(
        estimated >= total - 600,
        "{estimated} of {total} rows estimated"
    );
    drop(d);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_low_estimate_requests_an_update_before_the_labels_show_it() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    // A floor no estimate reaches, so that the trigger's path is what is tested.
    let cfg = write_config(
        dir.path(),
        &db.url,
        r#"
[[models]]
name = "churn"
n_features = 3
[models.train]
fit_epochs = 5
[models.estimate]
calibration_rows = 50
interval_ms = 100
[models.triggers.estimated]
enabled = true
window = "100"
min_accuracy = 0.999
min_rows = 50
hold = "1s"
cooldown = "1s"
strategy = "finetune_combined"
"#,
    );
    db.insert(&binary_rows("churn", 500, 0, None)).await;
    let d = Daemon::spawn(&cfg);
    wait_first_model(&mut db, "churn").await;
    // v1 has no holdout of its own: its first labelled rows calibrate it. Rows are written
    // without a prediction, scored by the champion, then labelled.
    let unscored = |rows: Vec<Row>| -> Vec<Row> {
        rows.into_iter()
            .map(|r| Row {
                prediction: None,
                ..r
            })
            .collect()
    };
    let first = binary_rows("churn", 100, 1_000, None);
    let ids = db.insert(&unlabelled(&unscored(first.clone()))).await;
    let pending = format!(
        "SELECT count(*) FROM outcomes WHERE prediction IS NULL AND id >= {}",
        ids[0]
    );
    wait_for(&mut db, &pending, "the rows to be scored", |n| n == 0).await;
    label(&mut db, &ids, &first).await;
    db.wait_rows_processed("churn", 600, WAIT).await;
    // Scored, never labelled: the estimate alone asks for the update.
    db.insert(&unlabelled(&unscored(binary_rows(
        "churn", 100, 2_000, None,
    ))))
    .await;
    let runs = "SELECT count(*) FROM driftd.training_runs WHERE trigger = 'estimated'";
    wait_for(&mut db, runs, "a run with trigger `estimated`", |n| n > 0).await;
    assert!(
        d.metric(r#"driftd_estimated_accuracy{model="churn",window="100"}"#)
            .is_some_and(|e| e < 0.999),
        "it came from the estimate"
    );
    let reason: String = sqlx::query_scalar(
        "SELECT reason FROM driftd.training_runs WHERE trigger = 'estimated' ORDER BY id LIMIT 1",
    )
    .fetch_one(&mut db.conn)
    .await
    .unwrap();
    assert!(reason.contains("estimated accuracy"), "{reason}");
    assert_eq!(
        db.rows_processed("churn").await,
        600,
        "no label of the estimated rows came in"
    );
}

/// Three classes, told apart by which of the first two features is larger and by the third:
/// about 10 % of labels are noise.
fn three_class_rows(n: usize, seed: u64) -> Vec<Row> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % 1_000_000) as f64 / 1_000_000.0
    };
    (0..n)
        .map(|i| {
            let f = vec![next(), next(), next()];
            let mut label = if f[2] > 0.66 {
                2.0
            } else if f[0] > f[1] {
                1.0
            } else {
                0.0
            };
            if next() < 0.1 {
                label = (label + 1.0) % 3.0;
            }
            Row {
                model: "tri".into(),
                features: f,
                prediction: Some(label),
                label: Some(label),
                labeled_at_secs: Some(i as i64),
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_multiclass_model_is_estimated_with_the_probabilities_of_the_champion_that_scored() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &db.url,
        r#"
[[models]]
name = "tri"
task = "multiclass"
n_classes = 3
n_features = 3
[models.estimate]
interval_ms = 100
"#,
    );
    db.insert(&three_class_rows(2_000, 1)).await;
    let d = Daemon::spawn(&cfg);
    wait_first_model(&mut db, "tri").await;
    // Scored by the champion (a class index each), labels still to come.
    let hidden = three_class_rows(1_000, 2);
    let rows: Vec<Row> = hidden
        .iter()
        .map(|r| Row {
            prediction: None,
            label: None,
            labeled_at_secs: None,
            ..r.clone()
        })
        .collect();
    let ids = db.insert(&rows).await;
    wait_rows_passed(&mut db, "tri", 3_000).await;
    let estimated = db
        .scalar_i64("SELECT (state->>'rows')::int8 FROM driftd.estimates WHERE model = 'tri'")
        .await;
    assert_eq!(
        estimated, 1_000,
        "the rows the champion scored (the first 2 000 it did not)"
    );
    let est = d
        .metric(r#"driftd_estimated_accuracy{model="tri",window="1000"}"#)
        .expect("an estimate");
    let predicted: Vec<f64> = sqlx::query_scalar(
        "SELECT prediction::float8 FROM outcomes WHERE id = ANY($1) ORDER BY id",
    )
    .bind(&ids)
    .fetch_all(&mut db.conn)
    .await
    .unwrap();
    let right = predicted
        .iter()
        .zip(&hidden)
        .filter(|(p, r)| **p == r.label.unwrap())
        .count();
    let realized = right as f64 / hidden.len() as f64;
    eprintln!("multiclass: estimated {est:.3}, realized {realized:.3}");
    assert!(realized > 0.6, "the model learnt something: {realized:.3}");
    assert!(
        (est - realized).abs() < 0.06,
        "estimated {est:.3}, realized {realized:.3}"
    );
}
