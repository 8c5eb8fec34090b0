//! `driftd demo-feed`: streams a drifting workload into the outcomes table the way a real
//! model service would (prediction first, label later), and narrates what driftd makes of it.

use std::time::{Duration, Instant};

use chrono::Utc;
use sqlx::PgConnection;

use crate::generate::{Stream, StreamSpec};
use crate::outcomes::OutcomeSource;
use crate::registry::{self, progress};

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

pub async fn feed(
    conn: &mut PgConnection,
    source: &OutcomeSource,
    opts: &FeedOptions,
) -> Result<(), sqlx::Error> {
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
        let has_champion = registry::champion_version(&mut *conn, &opts.model)
            .await
            .is_ok_and(|v| v.is_some());
        let batch: Vec<_> = rows.by_ref().take(per_tick).collect();
        for r in &batch {
            let feats: Vec<f64> = r.features.iter().map(|&v| f64::from(v)).collect();
            // Stored as the service would (its own precision), not as f32 widened.
            let prediction =
                (!has_champion).then(|| f64::from(deployed_prediction(&w, &r.features) as f32));
            let id = source
                .feed_prediction(&mut *conn, &opts.model, &feats, prediction)
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
            labels.push(f64::from(label));
        }
        if !ids.is_empty() {
            source.feed_labels(&mut *conn, &ids, &labels).await?;
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
    let (processed, acc) = progress::monitor_progress(&mut *conn, model)
        .await?
        .unwrap_or((0, None));
    let drifts = progress::drift_detections(&mut *conn, model).await?.len();
    println!(
        "[demo {:>5.1}s] sent {sent:>6} rows | driftd processed {processed:>6} | accuracy(last 100) {} | drifts detected {drifts} | {}",
        elapsed.as_secs_f64(),
        acc.map_or("  -  ".into(), |a| format!("{a:.3}")),
        Utc::now().format("%H:%M:%S"),
    );
    Ok(())
}

/// Waits until driftd has consumed every labelled row of `model` (folded in or rejected) and
/// no update is waiting or running, polling until `deadline`; returns whether it got there.
pub async fn wait_caught_up(
    conn: &mut PgConnection,
    source: &OutcomeSource,
    model: &str,
    deadline: Duration,
) -> Result<bool, sqlx::Error> {
    let until = Instant::now() + deadline;
    loop {
        let labelled = source.labelled_rows(&mut *conn, model).await?;
        let done = progress::rows_consumed(&mut *conn, model).await? >= labelled
            && !progress::training_pending(&mut *conn, model).await?;
        if done {
            return Ok(true);
        }
        if Instant::now() >= until {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One row of the demo's stream as served: which version scored it (`None`: the "deployed"
/// model before driftd had a champion) and whether the prediction was right (`None`: no label
/// or no prediction yet).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServedRow {
    pub id: i64,
    pub version: Option<i64>,
    pub correct: Option<bool>,
}

/// A registered version, as the summary describes it.
pub use crate::registry::progress::VersionBrief as VersionInfo;

/// Rows before a change that stand for "before".
const BEFORE_ROWS: usize = 1_000;
/// Rows of a new version's service that stand for "after".
const AFTER_ROWS: usize = 1_000;

fn accuracy(rows: &[ServedRow]) -> Option<(f64, usize)> {
    let (n, ok) = rows
        .iter()
        .filter_map(|r| r.correct)
        .fold((0usize, 0usize), |(n, ok), c| (n + 1, ok + usize::from(c)));
    (n > 0).then(|| (ok as f64 / n as f64, n))
}

/// What happened, in words: each version's share of the stream and its served accuracy, then
/// for each change point the accuracy before it, until a new version took over, and in that
/// version's first rows. `drifts` are `(detector, row)` detections, ascending.
pub fn narrate(
    rows: &[ServedRow],
    versions: &[VersionInfo],
    drifts: &[(String, usize)],
    changes: &[(String, usize)],
) -> Vec<String> {
    let spans = served_spans(rows);
    let mut out = vec!["served accuracy by model version:".to_string()];
    for &(version, start, end) in &spans {
        let acc = accuracy(&rows[start..end]).map_or("-".to_string(), |(a, n)| {
            format!("{a:.3} over {n} labelled rows")
        });
        let what = describe_version(version, versions);
        out.push(format!("  rows {start:>6}..{end:<6} {what}: {acc}"));
    }
    for (label, at) in changes {
        out.push(change_line(label, *at, rows, versions, drifts, &spans));
    }
    out
}

/// A contiguous run of rows served by one version: (version, first row, end).
type Span = (Option<i64>, usize, usize);

fn served_spans(rows: &[ServedRow]) -> Vec<Span> {
    let mut spans: Vec<Span> = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        if r.correct.is_none() && r.version.is_none() {
            continue;
        }
        match spans.last_mut() {
            Some((v, _, end)) if *v == r.version => *end = i + 1,
            _ => spans.push((r.version, i, i + 1)),
        }
    }
    spans
}

fn describe_version(version: Option<i64>, versions: &[VersionInfo]) -> String {
    match (
        version,
        versions.iter().find(|i| Some(i.version) == version),
    ) {
        (None, _) => "the deployed model (before driftd's first champion)".into(),
        (Some(v), None) => format!("v{v}"),
        (Some(_), Some(i)) => {
            let margin = match (i.holdout_accuracy, i.champion_holdout_accuracy) {
                (Some(a), Some(c)) => format!(
                    ", holdout {a:.3} vs {c:.3} for the champion it replaced ({:+.3})",
                    a - c
                ),
                (Some(a), None) => format!(", holdout {a:.3}"),
                _ => String::new(),
            };
            format!("v{} ({} via {}{margin})", i.version, i.trigger, i.strategy)
        }
    }
}

/// What happened around one change: accuracy before, the first detection, the version that
/// answered it and how much it recovered.
fn change_line(
    label: &str,
    at: usize,
    rows: &[ServedRow],
    versions: &[VersionInfo],
    drifts: &[(String, usize)],
    spans: &[Span],
) -> String {
    let at = at.min(rows.len());
    let before = accuracy(&rows[at.saturating_sub(BEFORE_ROWS)..at]);
    let detection = drifts.iter().find(|(_, row)| *row >= at);
    // The first version that served after the change and was trained on rows from after
    // the first detection (or the change): the update that answered it, not one that was
    // already on its way.
    let answer_from = detection.map_or(at, |(_, row)| *row);
    let trained_after = |v: i64| {
        versions
            .iter()
            .find(|i| i.version == v)
            .and_then(|i| i.cutoff_id)
            .and_then(|id| rows.iter().position(|r| r.id == id))
            .is_some_and(|pos| pos >= answer_from)
    };
    let takeover = spans
        .iter()
        .find(|(v, start, _)| *start > at && v.is_some_and(trained_after))
        .map(|&(v, start, end)| (v.unwrap_or_default(), start, end));
    let mut line = format!("{label} at row {at}:");
    if let Some((a, _)) = before {
        line.push_str(&format!(
            " accuracy {a:.3} in the {BEFORE_ROWS} rows before;"
        ));
    }
    match detection {
        Some((det, row)) => line.push_str(&format!(
            " first detection by {det} at row {row} ({} rows after);",
            row - at
        )),
        None => line.push_str(" not detected;"),
    }
    match takeover {
        Some((v, start, end)) => {
            let until = accuracy(&rows[at..start]);
            let after = accuracy(&rows[start..end.min(start + AFTER_ROWS)]);
            if let Some((a, _)) = until {
                line.push_str(&format!(" {a:.3} until v{v} took over at row {start};"));
            }
            if let Some((a, n)) = after {
                line.push_str(&format!(" {a:.3} in v{v}'s first {n} labelled rows"));
                if let (Some((b, _)), Some((u, _))) = (before, until) {
                    // Differences under a point or two are noise at these sizes.
                    if b - u > 0.02 {
                        line.push_str(&format!(
                            " (recovered {:+.3} of the {:.3} lost)",
                            a - u,
                            b - u
                        ));
                    } else if a < u - 0.02 {
                        line.push_str(" (below the accuracy before it)");
                    }
                }
            }
        }
        None => {
            if let Some((a, _)) = accuracy(&rows[at..]) {
                line.push_str(&format!(" {a:.3} since, no new version took over"));
            }
        }
    }
    line
}

/// One training run of the summary, with its candidates' holdout accuracy.
fn print_run(run: &progress::RunBrief) {
    let progress::RunBrief {
        id,
        trigger,
        strategy,
        status,
        new_version: version,
        candidates,
        chosen_strategy: chosen,
    } = run;
    let version = version.map_or(String::new(), |v| format!(" → v{v}"));
    println!("  training run {id}: {trigger} / {strategy}: {status}{version}");
    let mut scored: Vec<(String, f64)> = candidates
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| {
            Some((
                c["strategy"].as_str()?.to_string(),
                c["holdout_accuracy"].as_f64()?,
            ))
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    if !scored.is_empty() {
        let listed: Vec<String> = scored
            .iter()
            .map(|(s, a)| {
                let mark = if chosen.as_deref() == Some(s.as_str()) {
                    "*"
                } else {
                    ""
                };
                format!("{s}{mark} {a:.3}")
            })
            .collect();
        println!(
            "      holdout accuracy (* chosen; within noise of the best, the simpler wins): {}",
            listed.join(", ")
        );
    }
}

/// The closing summary: when drift was detected, what each update chose, and what accuracy
/// did around each change.
pub async fn summary(
    conn: &mut PgConnection,
    source: &OutcomeSource,
    model: &str,
    spec: &StreamSpec,
) -> Result<(), sqlx::Error> {
    let events: Vec<(String, i64, f64)> = progress::drift_detections(&mut *conn, model)
        .await?
        .into_iter()
        .map(|d| (d.detector, d.row_index, d.estimate))
        .collect();
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
    for run in progress::run_briefs(&mut *conn, model).await? {
        print_run(&run);
    }
    // Accuracy of the served predictions, in segments of the stream.
    let seg = (spec.rows / 10).max(1) as i64;
    let acc = source.accuracy_by_segment(&mut *conn, model, seg).await?;
    let line: Vec<String> = acc.iter().map(|(_, a)| format!("{a:.2}")).collect();
    println!("accuracy by tenth of the stream: {}", line.join(" "));

    let served = source.served_rows(&mut *conn, model).await?;
    let rows: Vec<ServedRow> = served
        .into_iter()
        .map(|(id, version, correct)| ServedRow {
            id,
            version,
            correct,
        })
        .collect();
    let versions = progress::version_briefs(&mut *conn, model).await?;
    let drifts: Vec<(String, usize)> = events
        .iter()
        .map(|(d, i, _)| (d.clone(), (*i).max(0) as usize))
        .collect();
    let mut changes = Vec::new();
    if let Some(a) = spec.abrupt_at {
        changes.push(("abrupt change".to_string(), a));
    }
    if let Some((s, _)) = spec.gradual {
        changes.push(("gradual drift".to_string(), s));
    }
    println!();
    for line in narrate(&rows, &versions, &drifts, &changes) {
        println!("{line}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs of `n` rows served by `version`, exactly `n * percent / 100` of them right (spread
    /// evenly); ids count from 1.
    fn rows(spec: &[(Option<i64>, usize, usize)]) -> Vec<ServedRow> {
        let mut out = Vec::new();
        for &(version, n, percent) in spec {
            for k in 0..n {
                out.push(ServedRow {
                    id: out.len() as i64 + 1,
                    version,
                    correct: Some((k + 1) * percent / 100 != k * percent / 100),
                });
            }
        }
        out
    }

    fn version(
        v: i64,
        trigger: &str,
        strategy: &str,
        holdout: (f64, Option<f64>),
        cutoff_row: usize,
    ) -> VersionInfo {
        VersionInfo {
            version: v,
            strategy: strategy.into(),
            trigger: trigger.into(),
            holdout_accuracy: Some(holdout.0),
            champion_holdout_accuracy: holdout.1,
            cutoff_id: Some(cutoff_row as i64 + 1),
        }
    }

    #[test]
    fn the_story_names_the_drop_the_detection_and_the_recovery() {
        let served = rows(&[
            (None, 500, 80),
            (Some(1), 1_500, 90),
            (Some(1), 300, 40),
            // v2 was trained before the change was detected: not the update that answered it.
            (Some(2), 200, 45),
            (Some(3), 1_500, 85),
        ]);
        let versions = vec![
            version(1, "bootstrap", "refit_combined", (0.95, None), 499),
            version(2, "schedule", "finetune_combined", (0.91, Some(0.9)), 1_900),
            version(3, "drift", "refit_new", (0.9, Some(0.45)), 2_400),
        ];
        let lines = narrate(
            &served,
            &versions,
            &[("ddm".into(), 300), ("adwin".into(), 2_100)],
            &[
                ("abrupt change".into(), 2_000),
                ("late change".into(), 3_900),
            ],
        );
        let text = lines.join("\n");
        eprintln!("{text}");
        assert!(
            text.contains("rows      0..500    the deployed model (before driftd's first champion): 0.800 over 500 labelled rows"),
            "{text}"
        );
        assert!(
            text.contains("rows    500..2300   v1 (bootstrap via refit_combined, holdout 0.950): 0.817 over 1800"),
            "{text}"
        );
        assert!(
            text.contains("v3 (drift via refit_new, holdout 0.900 vs 0.450 for the champion it replaced (+0.450)): 0.850 over 1500"),
            "{text}"
        );
        assert!(
            text.contains(
                "abrupt change at row 2000: accuracy 0.900 in the 1000 rows before; first detection \
                 by adwin at row 2100 (100 rows after); 0.420 until v3 took over at row 2500; 0.850 \
                 in v3's first 1000 labelled rows (recovered +0.430 of the 0.480 lost)"
            ),
            "{text}"
        );
        assert!(
            text.contains("late change at row 3900: accuracy 0.850 in the 1000 rows before; not detected; 0.850 since, no new version took over"),
            "{text}"
        );
    }
}
