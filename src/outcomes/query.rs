//! Building and running the poll query. Identifiers come from the (validated) config and are
//! quoted; values are always bound parameters.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Row};

use super::Watermark;
use crate::config::SourceConfig;

/// A labelled row as read, before validation.
#[derive(Debug, Clone)]
pub struct RawOutcome {
    pub id: i64,
    pub labeled_at: DateTime<Utc>,
    pub features: Option<Vec<Option<f64>>>,
    pub prediction: Option<f64>,
    pub label: Option<f64>,
    pub model_version: Option<i64>,
    pub created_at: Option<DateTime<Utc>>,
}

fn quote_ident(ident: &str) -> String {
    // Identifiers are validated as plain names; doubling quotes keeps this safe regardless.
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn quote_table(table: &str) -> String {
    table
        .split('.')
        .map(quote_ident)
        .collect::<Vec<_>>()
        .join(".")
}

#[derive(Debug, Clone)]
pub struct OutcomeSource {
    poll_sql: String,
    pub notify_channel: String,
}

impl OutcomeSource {
    pub fn new(cfg: &SourceConfig) -> Self {
        let q = |c: &str| quote_ident(c);
        let features = match cfg.features_array_column() {
            Some(col) => format!("{}::float8[]", q(col)),
            None => format!(
                "ARRAY[{}]::float8[]",
                cfg.feature_columns
                    .iter()
                    .map(|c| format!("{}::float8", q(c)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let version = cfg
            .model_version_column
            .as_deref()
            .map(|c| format!("{}::int8", q(c)))
            .unwrap_or_else(|| "NULL::int8".into());
        let created = cfg
            .created_at_column
            .as_deref()
            .map(|c| format!("{}::timestamptz", q(c)))
            .unwrap_or_else(|| "NULL::timestamptz".into());
        let (id, at) = (q(&cfg.id_column), q(&cfg.labeled_at_column));
        let poll_sql = format!(
            "SELECT {id}::int8, {at}, {features}, {pred}::float8, {label}::float8, {version}, {created} \
             FROM {table} \
             WHERE {model} = $1 AND {at} IS NOT NULL \
               AND ({at}, {id}) > ($2, $3) \
               AND {at} <= now() - $4 * interval '1 millisecond' \
             ORDER BY {at}, {id} LIMIT $5",
            pred = q(&cfg.prediction_column),
            label = q(&cfg.label_column),
            table = quote_table(&cfg.table),
            model = q(&cfg.model_column),
        );
        OutcomeSource {
            poll_sql,
            notify_channel: cfg.notify_channel.clone(),
        }
    }

    pub fn poll_sql(&self) -> &str {
        &self.poll_sql
    }

    /// Reads the next batch after `after` whose labels have settled.
    pub async fn poll(
        &self,
        conn: &mut PgConnection,
        model: &str,
        after: Watermark,
        settle_ms: u64,
        limit: u32,
    ) -> Result<Vec<RawOutcome>, sqlx::Error> {
        let rows = sqlx::query(&self.poll_sql)
            .bind(model)
            .bind(after.labeled_at)
            .bind(after.id)
            .bind(settle_ms as f64)
            .bind(i64::from(limit))
            .fetch_all(conn)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(RawOutcome {
                    id: r.try_get(0)?,
                    labeled_at: r.try_get(1)?,
                    features: r.try_get(2)?,
                    prediction: r.try_get(3)?,
                    label: r.try_get(4)?,
                    model_version: r.try_get(5)?,
                    created_at: r.try_get(6)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_columns_become_an_array_of_quoted_names() {
        let cfg = SourceConfig {
            table: "sales.scored".into(),
            feature_columns: vec!["a".into(), "b".into()],
            ..SourceConfig::default()
        };
        let s = OutcomeSource::new(&cfg);
        assert!(s.poll_sql().contains("ARRAY[\"a\"::float8, \"b\"::float8]"));
        assert!(s.poll_sql().contains("FROM \"sales\".\"scored\""));
    }

    #[test]
    fn quoting_neutralises_quotes() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
