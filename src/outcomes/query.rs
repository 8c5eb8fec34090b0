//! Building and running the poll query. Identifiers come from the (validated) config and are
//! quoted; values are always bound parameters.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Row};

use super::columns::{Casts, PredictionWrite};
use super::wire::FeatureArray;
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

/// Column `i` of a row: the features, decoded from the wire in one pass (see `wire.rs`).
/// Runs a keyset read (`$1` model, rows after (`$2`, `$3`), settled `$4` ms ago, at most
/// `$5`): the poll of labelled rows and the estimate's read of scored rows.
async fn keyset(
    conn: &mut PgConnection,
    sql: &str,
    model: &str,
    after: Watermark,
    (settle_ms, limit): (u64, u32),
) -> Result<Vec<sqlx::postgres::PgRow>, sqlx::Error> {
    sqlx::query(sql)
        .bind(model)
        .bind(after.labeled_at)
        .bind(after.id)
        .bind(settle_ms as f64)
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await
}

fn features(
    row: &sqlx::postgres::PgRow,
    i: usize,
) -> Result<Option<Vec<Option<f64>>>, sqlx::Error> {
    Ok(row.try_get::<Option<FeatureArray>, _>(i)?.map(|f| f.0))
}

pub(super) fn quote_ident(ident: &str) -> String {
    // Identifiers are validated as plain names; doubling quotes keeps this safe regardless.
    format!("\"{}\"", ident.replace('"', "\"\""))
}

pub(super) fn quote_table(table: &str) -> String {
    table
        .split('.')
        .map(quote_ident)
        .collect::<Vec<_>>()
        .join(".")
}

/// Stamps predictions on rows still without one. Only the prediction columns are ever
/// written (see sql/grants.sql).
fn score_sql(cfg: &SourceConfig, write: PredictionWrite) -> String {
    let q = |c: &str| quote_ident(c);
    let id = q(&cfg.id_column);
    let p = write.write("u.p");
    match &cfg.model_version_column {
        Some(v) => format!(
            "UPDATE {table} t SET {pred} = {p}, {ver} = $3 FROM UNNEST($1::int8[], $2::float8[]) AS u(id, p) \
             WHERE t.{id} = u.id AND t.{pred} IS NULL",
            table = quote_table(&cfg.table),
            pred = q(&cfg.prediction_column),
            ver = q(v),
        ),
        None => format!(
            "UPDATE {table} t SET {pred} = {p} FROM UNNEST($1::int8[], $2::float8[]) AS u(id, p) \
             WHERE t.{id} = u.id AND t.{pred} IS NULL AND $3::int8 IS NOT NULL",
            table = quote_table(&cfg.table),
            pred = q(&cfg.prediction_column),
        ),
    }
}

/// The sweep: of the given models, those with settled rows past their watermark, or (when a
/// scored-up-to id is given) rows past it still without a prediction. One query for all of a
/// replica's models, each an index probe.
fn pending_sql(cfg: &SourceConfig) -> String {
    let q = |c: &str| quote_ident(c);
    let (id, at) = (q(&cfg.id_column), q(&cfg.labeled_at_column));
    format!(
        "SELECT w.m FROM UNNEST($1::text[], $2::timestamptz[], $3::int8[], $4::int8[]) AS w(m, at, id, scored) \
         WHERE EXISTS (SELECT 1 FROM {table} t WHERE t.{model} = w.m AND t.{at} IS NOT NULL \
                         AND (t.{at}, t.{id}) > (w.at, w.id) \
                         AND t.{at} <= now() - $5 * interval '1 millisecond') \
            OR (w.scored IS NOT NULL AND EXISTS (SELECT 1 FROM {table} t \
                         WHERE t.{model} = w.m AND t.{pred} IS NULL AND t.{id} > w.scored))",
        pred = q(&cfg.prediction_column),
        table = quote_table(&cfg.table),
        model = q(&cfg.model_column),
    )
}

/// The poll's features, `float8[]`: the array column, or the listed columns with their
/// casts; categorical features as their codes (see `domain::category`).
fn features_expr(cfg: &SourceConfig, casts: &Casts) -> String {
    let q = |c: &str| quote_ident(c);
    match cfg.features_array_column() {
        Some(col) if !cfg.categorical.is_empty() => {
            let (col, cats) = (q(col), q(cfg.categories_array_column()));
            // The numbers, then each category's code, in the array's order (a NULL
            // element stays NULL: a null feature).
            format!(
                "CASE WHEN {col} IS NULL THEN NULL ELSE {col}::float8[] || ARRAY(SELECT {code} \
                 FROM unnest({cats}) WITH ORDINALITY AS u(c, i) ORDER BY i) END",
                code = crate::domain::category::sql_code("u.c")
            )
        }
        Some(col) => format!("{}::float8[]", q(col)),
        None => format!(
            "ARRAY[{}]::float8[]",
            cfg.feature_columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let default = if cfg.categorical.contains(&i) {
                        super::columns::ValueCast::Category
                    } else {
                        super::columns::ValueCast::Number
                    };
                    casts
                        .features
                        .get(i)
                        .copied()
                        .unwrap_or(default)
                        .read(&q(c))
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[derive(Debug, Clone)]
pub struct OutcomeSource {
    poll_sql: String,
    training_sql: String,
    unscored_sql: String,
    /// Without and with the features; `None` without a `created_at_column`: scored rows
    /// have no scoring time to order by.
    scored_sql: Option<[String; 2]>,
    score_sql: Option<String>,
    recent_sql: String,
    pending_sql: String,
    /// Model discovery for `[[model_templates]]` (see `names.rs`).
    pub(super) names: super::names::NameQueries,
    /// What the demo feed writes and reads (see `feed.rs`).
    pub(super) feed: super::feed::FeedQueries,
    pub notify_channel: String,
    /// `[source] table`, for messages.
    table: String,
}

impl OutcomeSource {
    /// The queries for a table whose value columns are all numbers (what the demo feed
    /// writes); the daemon uses [`OutcomeSource::with_casts`] with the casts the catalog's
    /// column types call for.
    pub fn new(cfg: &SourceConfig) -> Self {
        Self::with_casts(cfg, &Casts::default())
    }

    pub fn with_casts(cfg: &SourceConfig, casts: &Casts) -> Self {
        let q = |c: &str| quote_ident(c);
        let features = features_expr(cfg, casts);
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
            "SELECT {id}::int8, {at}::timestamptz, {features}, {pred}, {label}, {version}, {created} \
             FROM {table} \
             WHERE {model} = $1 AND {at} IS NOT NULL \
               AND ({at}, {id}) > ($2, $3) \
               AND {at} <= now() - $4 * interval '1 millisecond' \
             ORDER BY {at}, {id} LIMIT $5",
            pred = casts.prediction.read(&q(&cfg.prediction_column)),
            label = casts.label.read(&q(&cfg.label_column)),
            table = quote_table(&cfg.table),
            model = q(&cfg.model_column),
        );
        // Training rows: newest first within ((after), (upto)], reversed by the caller.
        let training_sql = format!(
            "SELECT {id}::int8, {at}::timestamptz, {features}, {label_read} FROM {table} \
             WHERE {model} = $1 AND {at} IS NOT NULL AND {label} IS NOT NULL \
               AND ({at}, {id}) > ($2, $3) AND ({at}, {id}) <= ($4, $5) \
             ORDER BY {at} DESC, {id} DESC LIMIT $6",
            label = q(&cfg.label_column),
            label_read = casts.label.read(&q(&cfg.label_column)),
            table = quote_table(&cfg.table),
            model = q(&cfg.model_column),
        );
        let unscored_sql = format!(
            "SELECT {id}::int8, {features} FROM {table} \
             WHERE {model} = $1 AND {pred} IS NULL AND {id} > $2 ORDER BY {id} LIMIT $3",
            pred = q(&cfg.prediction_column),
            table = quote_table(&cfg.table),
            model = q(&cfg.model_column),
        );
        // Scored rows, labelled or not, in scoring order: what the estimate reads.
        let scored_sql = cfg.created_at_column.as_deref().map(|c| {
            let created = q(c);
            let sql = |features: &str| format!(
                "SELECT {id}::int8, {created}::timestamptz, {pred}, {version}, {features} FROM {table} \
                 WHERE {model} = $1 AND {created} IS NOT NULL \
                   AND ({created}, {id}) > ($2, $3) \
                   AND {created} <= now() - $4 * interval '1 millisecond' \
                 ORDER BY {created}, {id} LIMIT $5",
                pred = casts.prediction.read(&q(&cfg.prediction_column)),
                table = quote_table(&cfg.table),
                model = q(&cfg.model_column),
            );
            [sql("NULL::float8[]"), sql(&features)]
        });
        let score_sql = Some(score_sql(cfg, casts.prediction_write));
        // The newest inputs, labelled or not: data drift shows before the labels do.
        let recent_sql = format!(
            "SELECT {features} FROM {table} WHERE {model} = $1 ORDER BY {id} DESC LIMIT $2",
            table = quote_table(&cfg.table),
            model = q(&cfg.model_column),
        );
        let pending_sql = pending_sql(cfg);
        OutcomeSource {
            names: super::names::NameQueries::new(cfg),
            feed: super::feed::FeedQueries::new(cfg),
            pending_sql,
            poll_sql,
            training_sql,
            recent_sql,
            unscored_sql,
            scored_sql,
            score_sql,
            notify_channel: cfg.notify_channel.clone(),
            table: cfg.table.clone(),
        }
    }

    /// Which of `models` have something to read: settled rows after their watermark, or,
    /// where `scored_upto` is given, rows after it without a prediction.
    pub async fn pending(
        &self,
        conn: &mut PgConnection,
        models: &[(String, Watermark, Option<i64>)],
        settle_ms: u64,
    ) -> Result<Vec<String>, sqlx::Error> {
        let names: Vec<&str> = models.iter().map(|m| m.0.as_str()).collect();
        let ats: Vec<DateTime<Utc>> = models.iter().map(|m| m.1.labeled_at).collect();
        let ids: Vec<i64> = models.iter().map(|m| m.1.id).collect();
        let scored: Vec<Option<i64>> = models.iter().map(|m| m.2).collect();
        sqlx::query_scalar(&self.pending_sql)
            .bind(&names)
            .bind(&ats)
            .bind(&ids)
            .bind(&scored)
            .bind(settle_ms as f64)
            .fetch_all(conn)
            .await
    }

    /// What a failed query says to a user: a missing table is "table X does not exist",
    /// another error the server reported names the table.
    pub fn describe_error(&self, e: &sqlx::Error) -> String {
        match e {
            sqlx::Error::Database(db) if db.code().as_deref() == Some("42P01") => {
                format!("table {} does not exist", self.table)
            }
            sqlx::Error::Database(db) => format!("table {}: {}", self.table, db.message()),
            other => other.to_string(),
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
        let rows = keyset(conn, &self.poll_sql, model, after, (settle_ms, limit)).await?;
        rows.iter()
            .map(|r| {
                Ok(RawOutcome {
                    id: r.try_get(0)?,
                    labeled_at: r.try_get(1)?,
                    features: features(r, 2)?,
                    prediction: r.try_get(3)?,
                    label: r.try_get(4)?,
                    model_version: r.try_get(5)?,
                    created_at: r.try_get(6)?,
                })
            })
            .collect()
    }
}

/// A row as the estimate reads it: scored (or waiting to be), labelled or not.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredRaw {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub prediction: Option<f64>,
    pub model_version: Option<i64>,
    /// Read only when asked for (a multiclass model's probabilities are recomputed).
    pub features: Option<Vec<Option<f64>>>,
}

/// Labelled rows read back for training, time-ordered.
#[derive(Debug, Clone)]
pub struct TrainingRow {
    pub id: i64,
    pub labeled_at: DateTime<Utc>,
    pub features: Option<Vec<Option<f64>>>,
    pub label: Option<f64>,
}

impl OutcomeSource {
    /// Up to `limit` labelled rows in `(after, upto]` (poll order), the newest ones when there
    /// are more, returned oldest first.
    pub async fn training_rows(
        &self,
        conn: &mut PgConnection,
        model: &str,
        after: Watermark,
        upto: Watermark,
        limit: i64,
    ) -> Result<Vec<TrainingRow>, sqlx::Error> {
        let rows = sqlx::query(&self.training_sql)
            .bind(model)
            .bind(after.labeled_at)
            .bind(after.id)
            .bind(upto.labeled_at)
            .bind(upto.id)
            .bind(limit)
            .fetch_all(conn)
            .await?;
        let mut out = rows
            .iter()
            .map(|r| {
                Ok(TrainingRow {
                    id: r.try_get(0)?,
                    labeled_at: r.try_get(1)?,
                    features: features(r, 2)?,
                    label: r.try_get(3)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        out.reverse();
        Ok(out)
    }

    /// The features of the newest `limit` rows (labelled or not), valid rows only, row-major.
    pub async fn recent_features(
        &self,
        conn: &mut PgConnection,
        model: &str,
        n_features: usize,
        limit: i64,
    ) -> Result<Vec<f32>, sqlx::Error> {
        let rows = sqlx::query(&self.recent_sql)
            .bind(model)
            .bind(limit)
            .fetch_all(conn)
            .await?;
        let mut x = Vec::with_capacity(rows.len() * n_features);
        for r in &rows {
            let f = features(r, 0)?;
            if let Ok(f) = crate::domain::features_f32(n_features, f.as_deref()) {
                x.extend(f);
            }
        }
        Ok(x)
    }

    /// Whether scored rows can be read in scoring order (there is a `created_at_column`).
    pub fn has_scoring_time(&self) -> bool {
        self.scored_sql.is_some()
    }

    /// Up to `limit` rows after `after` in scoring order (`created_at`, id) that settled
    /// `settle_ms` ago, labelled or not, with their features if `with_features`; empty
    /// without a `created_at_column`.
    pub async fn scored(
        &self,
        conn: &mut PgConnection,
        model: &str,
        after: Watermark,
        (settle_ms, limit): (u64, u32),
        with_features: bool,
    ) -> Result<Vec<ScoredRaw>, sqlx::Error> {
        let Some(sql) = &self.scored_sql else {
            return Ok(Vec::new());
        };
        let sql = &sql[usize::from(with_features)];
        let rows = keyset(conn, sql, model, after, (settle_ms, limit)).await?;
        rows.iter()
            .map(|r| {
                Ok(ScoredRaw {
                    id: r.try_get(0)?,
                    created_at: r.try_get(1)?,
                    prediction: r.try_get(2)?,
                    model_version: r.try_get(3)?,
                    features: if with_features { features(r, 4)? } else { None },
                })
            })
            .collect()
    }

    /// Rows still waiting for a prediction, after id `after_id`.
    pub async fn unscored(
        &self,
        conn: &mut PgConnection,
        model: &str,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<(i64, Option<Vec<Option<f64>>>)>, sqlx::Error> {
        let rows = sqlx::query(&self.unscored_sql)
            .bind(model)
            .bind(after_id)
            .bind(limit)
            .fetch_all(conn)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, features(r, 1)?)))
            .collect()
    }

    /// Stamps predictions (and the champion's version) on rows that still have none.
    pub async fn write_predictions(
        &self,
        conn: &mut PgConnection,
        ids: &[i64],
        predictions: &[f64],
        version: i64,
    ) -> Result<u64, sqlx::Error> {
        let Some(sql) = &self.score_sql else {
            return Ok(0);
        };
        Ok(sqlx::query(sql)
            .bind(ids)
            .bind(predictions)
            .bind(version)
            .execute(conn)
            .await?
            .rows_affected())
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
