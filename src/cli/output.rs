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
            "  {}: {:?}, {} classes ({}), {} features, windows {:?} + {:?}, {} detector(s)",
            m.name,
            m.task,
            m.class_count(),
            m.classes.as_str(),
            m.n_features,
            m.count_windows,
            m.time_windows,
            m.detectors.len()
        );
        if !m.categorical_features.is_empty() {
            let _ = writeln!(
                s,
                "    categorical: {} (up to {} categories each); numeric: the others",
                m.categorical_features.join(", "),
                m.max_categories
            );
        }
        for sch in &m.triggers.schedules {
            let next = next_firings(m, &sch.cron, now).join(", ");
            let _ = writeln!(
                s,
                "    schedule `{}` ({}) → {}: next {next}",
                sch.cron, m.triggers.timezone, sch.strategy
            );
        }
    }
    for t in &cfg.model_templates {
        let width = t
            .n_features
            .map_or("features from the first rows".to_string(), |n| {
                format!("{n} features")
            });
        let _ = writeln!(s, "  template `{}`: {width}", t.pattern.as_str());
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
                "n_classes": m.class_count(),
                "classes": m.classes,
                "n_features": m.n_features,
                "feature_kinds": (0..m.n_features)
                    .map(|i| if m.is_categorical(i) { "categorical" } else { "numeric" })
                    .collect::<Vec<_>>(),
                "count_windows": m.count_windows,
                "time_windows": m.time_windows,
                "detectors": m.detectors.len(),
                "accuracy_floor": m.triggers.threshold.min_accuracy,
                "schedules": schedules,
            })
        })
        .collect();
    let templates: Vec<Value> = cfg
        .model_templates
        .iter()
        .map(|t| json!({ "pattern": t.pattern.as_str(), "n_features": t.n_features }))
        .collect();
    json!({ "ok": true, "models": models, "model_templates": templates })
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

/// What `driftd migrate` did, one line each: the schema, the migrations, the reference table.
pub fn migrated_text(m: &crate::db::Migrated, table_created: Option<bool>) -> String {
    let mut s = String::new();
    let schema = if m.schema_created {
        "schema driftd created"
    } else {
        "schema driftd exists"
    };
    let _ = writeln!(s, "{schema}");
    if m.applied.is_empty() {
        let _ = writeln!(s, "migrations: up to date ({} applied before)", m.known);
    } else {
        let _ = writeln!(
            s,
            "migrations applied: {} ({} of {})",
            m.applied.join(", "),
            m.applied.len(),
            m.known
        );
    }
    match table_created {
        Some(true) => {
            let _ = writeln!(
                s,
                "table public.outcomes created, with its poll index and NOTIFY trigger"
            );
        }
        Some(false) => {
            let _ = writeln!(
                s,
                "table public.outcomes exists: left as it is (its poll index and NOTIFY trigger ensured)"
            );
        }
        None => {}
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_config_lists_the_templates() {
        let cfg = Config::from_toml_str(
            "[[model_templates]]\npattern = \"tenant-*\"\n[[model_templates]]\npattern = \"*\"\nn_features = 4\n",
            std::iter::empty(),
        )
        .unwrap();
        let now = Utc::now();
        let text = config_table(&cfg, now);
        assert!(
            text.contains("template `tenant-*`: features from the first rows"),
            "{text}"
        );
        assert!(text.contains("template `*`: 4 features"), "{text}");
        let v = config_json(&cfg, now);
        assert_eq!(
            v["model_templates"][1],
            json!({"pattern": "*", "n_features": 4})
        );
        assert_eq!(v["model_templates"][0]["n_features"], Value::Null);
    }
}
