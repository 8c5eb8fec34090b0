//! `driftd check-config --database`: what can be checked against the database before running.
//! One line per finding, naming the key and the column; exit 2 when one would make polling
//! fail.

use std::path::Path;

use serde_json::json;

use super::args::OutputFormat;
use super::{commands, output, Outcome};
use crate::config::Config;
use crate::db;
use crate::outcomes::columns::{self, Finding};
use crate::outcomes::OutcomeSource;

/// Reads the catalog and returns every finding, the table's first.
async fn findings(
    conn: &mut sqlx::PgConnection,
    cfg: &Config,
) -> Result<Vec<Finding>, sqlx::Error> {
    let source = &cfg.source;
    let Some(info) = columns::inspect(conn, source).await? else {
        return Ok(vec![Finding {
            key: "source.table".into(),
            column: source.table.clone(),
            problem: format!(
                "table {} does not exist (`driftd migrate --create-outcomes-table` creates the reference table)",
                source.table
            ),
            fatal: true,
        }]);
    };
    let mut out = info.column_findings(source);
    out.extend(info.index_finding(source));
    if cfg.models.iter().any(|m| m.estimate.enabled) {
        out.extend(info.scoring_index_finding(source));
    }
    out.extend(columns::grant_findings(conn, source, &info).await?);
    if out.iter().any(|f| f.fatal) {
        return Ok(out);
    }
    out.extend(model_findings(conn, cfg).await?);
    Ok(out)
}

/// Per model and template: rows present, the features as wide as configured.
async fn model_findings(
    conn: &mut sqlx::PgConnection,
    cfg: &Config,
) -> Result<Vec<Finding>, sqlx::Error> {
    let source = OutcomeSource::new(&cfg.source);
    let names = source.model_names(conn).await?;
    let mut out = Vec::new();
    for (i, m) in cfg.models.iter().enumerate() {
        let finding = |problem: String| Finding {
            key: format!("models[{i}]"),
            column: cfg.source.model_column.clone(),
            problem,
            fatal: false,
        };
        if !names.contains(&m.name) {
            out.push(finding(format!(
                "no labelled row names model `{}` yet",
                m.name
            )));
            continue;
        }
        if let Some(w) = source.feature_width(conn, &m.name).await? {
            if w != m.n_features {
                out.push(Finding {
                    key: format!("models[{i}].n_features"),
                    ..finding(format!(
                        "model `{}`'s rows have {w} features, configured {}: they would be rejected",
                        m.name, m.n_features
                    ))
                });
            }
        }
    }
    for (i, t) in cfg.model_templates.iter().enumerate() {
        let matched = names
            .iter()
            .filter(|n| cfg.template_for(n).is_some_and(|x| std::ptr::eq(x, t)))
            .count();
        if matched == 0 {
            out.push(Finding {
                key: format!("model_templates[{i}].pattern"),
                column: cfg.source.model_column.clone(),
                problem: format!(
                    "no model name in the table matches `{}` yet",
                    t.pattern.as_str()
                ),
                fatal: false,
            });
        }
    }
    Ok(out)
}

pub async fn check_database(path: &Path, format: OutputFormat) -> Outcome {
    let Ok(cfg) = commands::load_config(path) else {
        // Says what is wrong with the file, as plain `check-config` does.
        return commands::check_config(path, format);
    };
    let dbc = match cfg.database() {
        Ok(d) => d,
        Err(e) => return Outcome::BadConfig(e.to_string()),
    };
    let result = async {
        let mut conn = db::connect_one(&dbc).await?;
        findings(&mut conn, &cfg).await
    };
    let found = match result.await {
        Ok(f) => f,
        Err(e) => return Outcome::failed("cannot check the database", e),
    };
    let fatal = found.iter().filter(|f| f.fatal).count();
    match format {
        OutputFormat::Table => {
            print!("{}", output::config_table(&cfg, chrono::Utc::now()));
            for f in &found {
                println!("{f}");
            }
            if found.is_empty() {
                println!("database OK: table {} fits [source]", cfg.source.table);
            }
        }
        OutputFormat::Json => {
            let mut v = output::config_json(&cfg, chrono::Utc::now());
            v["ok"] = json!(fatal == 0);
            v["database_findings"] = found
                .iter()
                .map(|f| json!({"key": f.key, "column": f.column, "problem": f.problem, "fatal": f.fatal}))
                .collect();
            println!("{v}");
        }
    }
    if fatal > 0 {
        Outcome::BadConfig(format!(
            "{fatal} finding(s) in the database would make polling fail"
        ))
    } else {
        Outcome::Done
    }
}
