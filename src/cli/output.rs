//! What the commands print: tables for people, JSON for scripts. Pure: values in, text out.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::config::{Config, ModelConfig};
use crate::policy::schedule::CronExpr;
use crate::registry::{TrainingRun, VersionInfo};

/// The next three firings of a schedule, as RFC 3339 strings.
fn next_firings(m: &ModelConfig, cron: &CronExpr, now: DateTime<Utc>) -> Vec<String> {
    crate::policy::schedule::next_firings(cron, m.triggers.timezone, now, 3)
        .iter()
        .map(|t| t.to_rfc3339())
        .collect()
}

/// `check-config`: one line per model and schedule.
pub fn config_table(cfg: &Config, now: DateTime<Utc>) -> String {
    let mut s = format!("configuration OK: {} model(s)\n", cfg.models.len());
    for m in &cfg.models {
        let _ = writeln!(
            s,
            "  {}: {:?}, {} features, windows {:?} + {:?}, {} detector(s)",
            m.name,
            m.task,
            m.n_features,
            m.count_windows,
            m.time_windows,
            m.detectors.len()
        );
        for sch in &m.triggers.schedules {
            let next = next_firings(m, &sch.cron, now).join(", ");
            let _ = writeln!(
                s,
                "    schedule `{}` ({}) → {}: next {next}",
                sch.cron, m.triggers.timezone, sch.strategy
            );
        }
    }
    s
}

/// `check-config -o json`: `{"ok": true, "models": [...]}`.
pub fn config_json(cfg: &Config, now: DateTime<Utc>) -> Value {
    let models: Vec<Value> = cfg
        .models
        .iter()
        .map(|m| {
            let schedules: Vec<Value> = m
                .triggers
                .schedules
                .iter()
                .map(|sch| {
                    json!({
                        "cron": sch.cron.as_str(),
                        "timezone": m.triggers.timezone.to_string(),
                        "strategy": sch.strategy,
                        "next": next_firings(m, &sch.cron, now),
                    })
                })
                .collect();
            json!({
                "name": m.name,
                "task": m.task,
                "n_features": m.n_features,
                "count_windows": m.count_windows,
                "time_windows": m.time_windows,
                "detectors": m.detectors.len(),
                "accuracy_floor": m.triggers.threshold.min_accuracy,
                "schedules": schedules,
            })
        })
        .collect();
    json!({ "ok": true, "models": models })
}

fn holdout_accuracy(v: &VersionInfo) -> Option<f64> {
    v.holdout_metrics.accuracy()
}

/// `models list`: one aligned row per version.
pub fn versions_table(versions: &[VersionInfo]) -> String {
    let mut s = format!(
        "{:<16} {:>7} {:>7} {:<10} {:<18} {:<10} {:>9} {:>8}\n",
        "model", "version", "parent", "status", "strategy", "trigger", "rows", "holdout"
    );
    for v in versions {
        let _ = writeln!(
            s,
            "{:<16} {:>7} {:>7} {:<10} {:<18} {:<10} {:>9} {:>8}",
            v.model,
            v.version,
            v.parent_version.map_or("-".into(), |p| p.to_string()),
            v.status,
            v.strategy,
            v.trigger,
            v.n_train_rows,
            holdout_accuracy(v).map_or("-".into(), |a| format!("{a:.4}"))
        );
    }
    s
}

/// `models show`: the champion, the versions and the recent runs.
pub fn model_text(model: &str, versions: &[VersionInfo], runs: &[TrainingRun]) -> String {
    let champion = versions.iter().find(|v| v.status == "champion");
    let mut s = match champion {
        Some(c) => format!(
            "{model}: champion v{} ({}, {} rows, holdout {})\n\n",
            c.version,
            c.strategy,
            c.n_train_rows,
            holdout_accuracy(c).map_or("-".into(), |a| format!("{a:.4}"))
        ),
        None => format!("{model}: no champion yet\n\n"),
    };
    s.push_str(&versions_table(versions));
    let _ = writeln!(
        s,
        "\n{:>6} {:<14} {:<18} {:<10} {:>8} {:<25} reason",
        "run", "trigger", "strategy", "status", "version", "requested"
    );
    for r in runs {
        let _ = writeln!(
            s,
            "{:>6} {:<14} {:<18} {:<10} {:>8} {:<25} {}",
            r.id,
            r.trigger,
            r.strategy,
            r.status,
            r.new_version.map_or("-".into(), |v| v.to_string()),
            r.requested_at.format("%Y-%m-%d %H:%M:%S UTC"),
            r.error.as_deref().unwrap_or(&r.reason)
        );
    }
    s
}
