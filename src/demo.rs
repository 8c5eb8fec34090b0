//! `driftd demo-feed`: streams a drifting workload into the outcomes table the way a real
//! model service would (prediction first, label later), and narrates what driftd makes of it.

use std::time::{Duration, Instant};

use chrono::Utc;
use sqlx::{PgConnection, Row};

use crate::generate::{Stream, StreamSpec};

pub struct FeedOptions {
    pub model: String,
    pub rows_per_sec: u32,
    pub label_delay: Duration,
    pub spec: StreamSpec,
}

/// The "deployed" model of the demo: the first concept's boundary, turned into a probability.
fn deployed_prediction(w: &[f64], x: &[f32]) -> f64 {
    let m: f64 = w.iter().zip(x).map(|(a, b)| a * f64::from(*b)).sum();
    1.0 / (1.0 + (-2.0 * m).exp())
}

pub async fn feed(conn: &mut PgConnection, opts: &FeedOptions) -> Result<(), sqlx::Error> {
    let stream = Stream::new(opts.spec.clone());
    let w = stream.initial_concept().to_vec();
    let started = Instant::now();
    let mut pending: std::collections::VecDeque<(Instant, i64, u32)> = Default::default();
    let mut last_report = Instant::now();
    let tick = Duration::from_millis(100);
    let per_tick = (opts.rows_per_sec as usize / 10).max(1);
    let mut rows = stream.peekable();
    let mut sent = 0usize;
    while rows.peek().is_some() || !pending.is_empty() {
        // Until driftd has a champion, the "deployed" model predicts; then rows arrive
        // unscored and driftd's champion scores them.
        let has_champion: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM driftd.model_versions WHERE model = $1 AND status = 'champion')",
        )
        .bind(&opts.model)
        .fetch_one(&mut *conn)
        .await
        .unwrap_or(false);
        let batch: Vec<_> = rows.by_ref().take(per_tick).collect();
        for r in &batch {
            let feats: Vec<f32> = r.features.clone();
            let prediction = (!has_champion).then(|| deployed_prediction(&w, &r.features) as f32);
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO outcomes (model, features, prediction) VALUES ($1, $2, $3) RETURNING id",
            )
            .bind(&opts.model)
            .bind(&feats)
            .bind(prediction)
            .fetch_one(&mut *conn)
            .await?;
            pending.push_back((Instant::now() + opts.label_delay, id, r.label));
        }
        sent += batch.len();
        let now = Instant::now();
        let mut ids = Vec::new();
        let mut labels = Vec::new();
        while pending.front().is_some_and(|(due, _, _)| *due <= now) {
            let (_, id, label) = pending.pop_front().expect("checked non-empty");
            ids.push(id);
            labels.push(label as f32);
        }
        if !ids.is_empty() {
            sqlx::query(
                "UPDATE outcomes o SET label = u.l, labeled_at = now() \
                 FROM UNNEST($1::int8[], $2::real[]) AS u(id, l) WHERE o.id = u.id",
            )
            .bind(&ids)
            .bind(&labels)
            .execute(&mut *conn)
            .await?;
        }
        if last_report.elapsed() >= Duration::from_secs(3) {
            last_report = Instant::now();
            report(conn, &opts.model, sent, started.elapsed()).await?;
        }
        tokio::time::sleep(tick).await;
    }
    Ok(())
}

async fn report(
    conn: &mut PgConnection,
    model: &str,
    sent: usize,
    elapsed: Duration,
) -> Result<(), sqlx::Error> {
    let state = sqlx::query(
        "SELECT rows_processed, \
                (state->'count_windows'->0->'stats'->>'correct')::float8 / \
                nullif((state->'count_windows'->0->'stats'->>'n')::float8, 0) \
         FROM driftd.monitor_state WHERE model = $1",
    )
    .bind(model)
    .fetch_optional(&mut *conn)
    .await?;
    let drifts: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM driftd.drift_events WHERE model = $1 AND kind = 'drift'",
    )
    .bind(model)
    .fetch_one(&mut *conn)
    .await?;
    let (processed, acc) = match state {
        Some(r) => (r.try_get::<i64, _>(0)?, r.try_get::<Option<f64>, _>(1)?),
        None => (0, None),
    };
    println!(
        "[demo {:>5.1}s] sent {sent:>6} rows | driftd processed {processed:>6} | accuracy(last 100) {} | drifts detected {drifts} | {}",
        elapsed.as_secs_f64(),
        acc.map_or("  -  ".into(), |a| format!("{a:.3}")),
        Utc::now().format("%H:%M:%S"),
    );
    Ok(())
}

/// The closing summary: when drift was detected and what accuracy looked like around it.
pub async fn summary(
    conn: &mut PgConnection,
    model: &str,
    spec: &StreamSpec,
) -> Result<(), sqlx::Error> {
    let events: Vec<(String, i64, f64)> = sqlx::query_as(
        "SELECT detector, row_index, coalesce(estimate, 'NaN') FROM driftd.drift_events \
         WHERE model = $1 AND kind = 'drift' ORDER BY row_index",
    )
    .bind(model)
    .fetch_all(&mut *conn)
    .await?;
    println!("\n=== driftd demo summary ===");
    if let Some(a) = spec.abrupt_at {
        println!("abrupt concept change at row {a}");
    }
    if let Some((s, e)) = spec.gradual {
        println!("gradual drift over rows {s}..{e}");
    }
    for (det, idx, est) in &events {
        println!("  {det} detected drift at row {idx} (estimate {est:.3})");
    }
    if events.is_empty() {
        println!("  no drift detected");
    }
    let runs: Vec<(i64, String, String, String, Option<i64>, serde_json::Value)> = sqlx::query_as(
        "SELECT id, trigger, strategy, status, new_version, candidates FROM driftd.training_runs \
         WHERE model = $1 ORDER BY id",
    )
    .bind(model)
    .fetch_all(&mut *conn)
    .await?;
    for (id, trigger, strategy, status, version, candidates) in &runs {
        let best = candidates
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| {
                Some((
                    c["strategy"].as_str()?.to_string(),
                    c["holdout_accuracy"].as_f64()?,
                ))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let best = best.map_or(String::new(), |(s, a)| {
            format!(", best candidate {s} with holdout accuracy {a:.3}")
        });
        let version = version.map_or(String::new(), |v| format!(" → v{v}"));
        println!("  training run {id}: {trigger} / {strategy}: {status}{version}{best}");
    }
    // Accuracy of the served predictions, in segments of the stream.
    let seg = (spec.rows / 10).max(1) as i64;
    let acc: Vec<(i64, f64)> = sqlx::query_as(
        "SELECT (rn - 1) / $2 AS seg, avg(((prediction >= 0.5)::int = label::int)::int)::float8 \
         FROM (SELECT row_number() OVER (ORDER BY id) AS rn, prediction, label FROM outcomes \
               WHERE model = $1 AND label IS NOT NULL AND prediction IS NOT NULL) t GROUP BY 1 ORDER BY 1",
    )
    .bind(model)
    .bind(seg)
    .fetch_all(&mut *conn)
    .await?;
    let line: Vec<String> = acc.iter().map(|(_, a)| format!("{a:.2}")).collect();
    println!("accuracy by tenth of the stream: {}", line.join(" "));
    Ok(())
}
