//! Corrected labels against the real daemon (issue 22, item 7): a row whose label and
//! `labeled_at` are rewritten comes past the watermark again; it is counted once, the
//! correction is counted, and neither changes across kill -9.

use std::time::Duration;

use crate::helpers::*;

const WAIT: Duration = Duration::from_secs(120);

const BLOCK: &str = "[[models]]\nname = \"m\"\nn_features = 3\n[models.train]\nenabled = false\n";

async fn correct(db: &mut TestDb, ids: &[i64], at_secs: i64, move_labeled_at: bool) {
    let sql = if move_labeled_at {
        "UPDATE outcomes SET label = 1 - label, labeled_at = to_timestamp($2) WHERE id = ANY($1)"
    } else {
        "UPDATE outcomes SET label = 1 - label WHERE id = ANY($1) AND $2::float8 IS NOT NULL"
    };
    sqlx::query(sql)
        .bind(ids)
        .bind((BASE_TS + at_secs) as f64)
        .execute(&mut db.conn)
        .await
        .unwrap();
}

/// Waits until this process of the daemon has counted `n` corrections.
async fn wait_corrections(d: &Daemon, n: f64) {
    wait_until(WAIT, "the corrections counted", || {
        let got = d.metric(r#"driftd_label_corrections_total{model="m"}"#);
        async move { got == Some(n) }
    })
    .await;
}

async fn ledger_corrections(db: &mut TestDb) -> i64 {
    db.scalar_i64(
        "SELECT coalesce(sum(corrections), 0)::int8 FROM driftd.label_corrections WHERE model = 'm'",
    )
    .await
}

/// The ids the ledger says model `m` has counted, sorted (decoding the stored bitmaps with
/// the `roaring` crate: chunk `c` holds ids `c * 2^20 + low`).
async fn counted_ids(db: &mut TestDb) -> Vec<i64> {
    let chunks: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT chunk, ids FROM driftd.counted_ids WHERE model = 'm'")
            .fetch_all(&mut db.conn)
            .await
            .unwrap();
    let mut ids: Vec<i64> = chunks
        .iter()
        .flat_map(|(chunk, bytes)| {
            let bitmap = roaring::RoaringBitmap::deserialize_from(&bytes[..]).unwrap();
            bitmap
                .into_iter()
                .map(move |low| chunk * (1 << 20) + i64::from(low))
        })
        .collect();
    ids.sort_unstable();
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrected_label_is_counted_once_and_the_correction_is_counted() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &db.url, BLOCK);
    let mut d = Daemon::spawn(&cfg);
    let first = binary_rows("m", 200, 0, None);
    let ids = db.insert(&first).await;
    db.wait_rows_processed("m", 200, WAIT).await;

    // 15 corrections, then 5 new rows after them: only the new rows are counted.
    correct(&mut db, &ids[10..25], 1_000, true).await;
    let second = binary_rows("m", 5, 2_000, None);
    db.insert(&second).await;
    db.wait_rows_processed("m", 205, WAIT).await;
    wait_corrections(&d, 15.0).await;
    assert_eq!(ledger_corrections(&mut db).await, 15);
    assert_eq!(
        d.metric(r#"driftd_outcomes_processed_total{model="m"}"#),
        Some(205.0)
    );
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM driftd.rejected_rows")
            .await,
        0,
        "a correction is not a bad row"
    );
    // The monitor keeps the labels it first saw: its count of right predictions is that of
    // the rows as first written.
    let right = |rows: &[Row]| {
        rows.iter()
            .filter(|r| (r.prediction.unwrap() >= 0.5) == (r.label.unwrap() == 1.0))
            .count() as u64
    };
    let state = db.state_json("m").await;
    assert_eq!(state["rows"], 205);
    assert_eq!(state["correct"], right(&first) + right(&second));

    // Across kill -9: nothing is counted again. Two rows corrected a second time count as
    // two more corrections; a label rewritten without labeled_at is not seen.
    d.kill9();
    let d = Daemon::spawn(&cfg);
    correct(&mut db, &ids[10..12], 3_000, true).await;
    correct(&mut db, &ids[40..50], 0, false).await;
    db.insert(&binary_rows("m", 5, 4_000, None)).await;
    db.wait_rows_processed("m", 210, WAIT).await;
    wait_corrections(&d, 2.0).await;
    assert_eq!(ledger_corrections(&mut db).await, 17);
    assert_eq!(
        db.scalar_i64(
            "SELECT count(*) FROM driftd.label_corrections WHERE model = 'm' AND corrections = 2"
        )
        .await,
        2
    );
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM driftd.label_corrections WHERE model = 'm'")
            .await,
        15,
        "one row per corrected row"
    );
    let all: Vec<i64> = db_ids(&mut db).await;
    assert_eq!(counted_ids(&mut db).await, all, "every row counted, once");
    let label_only: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM driftd.label_corrections WHERE model = 'm' AND source_id = ANY($1)",
    )
    .bind(&ids[40..50])
    .fetch_one(&mut db.conn)
    .await
    .unwrap();
    assert_eq!(label_only, 0, "a label-only rewrite is not a correction");
}

async fn db_ids(db: &mut TestDb) -> Vec<i64> {
    sqlx::query_scalar("SELECT id FROM outcomes WHERE model = 'm' ORDER BY id")
        .fetch_all(&mut db.conn)
        .await
        .unwrap()
}

/// A database that an earlier release ledgered one row per counted id (`driftd.label_ledger`,
/// migration 0030): on load the daemon folds those rows into the compact ledger, so that a
/// correction of a row counted then is still known for what it is.
#[tokio::test(flavor = "multi_thread")]
async fn the_old_one_row_per_id_ledger_is_folded_in_on_load() {
    let pg = shared_pg();
    let mut db = pg.fresh_db().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &db.url, BLOCK);
    let mut d = Daemon::spawn(&cfg);
    let ids = db.insert(&binary_rows("m", 100, 0, None)).await;
    db.wait_rows_processed("m", 100, WAIT).await;
    d.kill9();
    // What the earlier release would have left: its ledger, one row per counted id (one of
    // them corrected once already), and none of the compact one.
    for sql in [
        "INSERT INTO driftd.label_ledger (model, source_id, corrections, last_labeled_at) \
         SELECT 'm', id, (id = (SELECT min(id) FROM outcomes))::int, labeled_at FROM outcomes",
        "DELETE FROM driftd.counted_ids",
    ] {
        sqlx::query(sql).execute(&mut db.conn).await.unwrap();
    }
    let d = Daemon::spawn(&cfg);
    correct(&mut db, &ids[..3], 1_000, true).await;
    db.insert(&binary_rows("m", 5, 2_000, None)).await;
    db.wait_rows_processed("m", 105, WAIT).await;
    wait_corrections(&d, 3.0).await;
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM driftd.label_ledger")
            .await,
        0,
        "the old rows are gone"
    );
    assert_eq!(counted_ids(&mut db).await, db_ids(&mut db).await);
    // The first row: one correction before the upgrade, one after.
    assert_eq!(ledger_corrections(&mut db).await, 4);
    let first: i64 = sqlx::query_scalar(
        "SELECT corrections::int8 FROM driftd.label_corrections WHERE model = 'm' AND source_id = $1",
    )
    .bind(ids[0])
    .fetch_one(&mut db.conn)
    .await
    .unwrap();
    assert_eq!(first, 2);
}
