//! What the demo feed (`driftd demo-feed`, playing the user's model service) writes into and
//! reads back from the outcomes table, laid out as `[source]` says: insert a prediction, write
//! labels, and the summary's reads. The daemon never runs these.

use sqlx::{PgConnection, Row};

use super::query::{quote_ident, quote_table};
use super::OutcomeSource;
use crate::config::SourceConfig;

#[derive(Debug, Clone)]
pub(super) struct FeedQueries {
    insert_sql: String,
    label_sql: String,
    labelled_sql: String,
    segments_sql: String,
    served_sql: String,
}

impl FeedQueries {
    pub(super) fn new(cfg: &SourceConfig) -> Self {
        let q = |c: &str| quote_ident(c);
        let table = quote_table(&cfg.table);
        let (id, model, pred) = (
            q(&cfg.id_column),
            q(&cfg.model_column),
            q(&cfg.prediction_column),
        );
        let (label, at) = (q(&cfg.label_column), q(&cfg.labeled_at_column));
        // The features as one array column, or spread over the listed columns.
        let (columns, values) = match cfg.features_array_column() {
            Some(col) => (q(col), "$2::float8[]".to_string()),
            None => (
                cfg.feature_columns
                    .iter()
                    .map(|c| q(c))
                    .collect::<Vec<_>>()
                    .join(", "),
                (1..=cfg.feature_columns.len())
                    .map(|i| format!("($2::float8[])[{i}]"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        };
        let version = cfg
            .model_version_column
            .as_deref()
            .map(|c| format!("{}::int8", q(c)))
            .unwrap_or_else(|| "NULL::int8".into());
        let correct = format!("(({pred} >= 0.5)::int = {label}::int)");
        FeedQueries {
            insert_sql: format!(
                "INSERT INTO {table} ({model}, {columns}, {pred}) VALUES ($1, {values}, $3) \
                 RETURNING {id}::int8"
            ),
            label_sql: format!(
                "UPDATE {table} o SET {label} = u.l, {at} = now() \
                 FROM UNNEST($1::int8[], $2::float8[]) AS u(id, l) WHERE o.{id} = u.id"
            ),
            labelled_sql: format!(
                "SELECT count(*) FROM {table} WHERE {model} = $1 AND {label} IS NOT NULL"
            ),
            segments_sql: format!(
                "SELECT (rn - 1) / $2 AS seg, avg(c::int)::float8 FROM \
                   (SELECT row_number() OVER (ORDER BY {id}) AS rn, {correct} AS c FROM {table} \
                    WHERE {model} = $1 AND {label} IS NOT NULL AND {pred} IS NOT NULL) t \
                 GROUP BY 1 ORDER BY 1"
            ),
            served_sql: format!(
                "SELECT {id}::int8, {version}, {correct} FROM {table} WHERE {model} = $1 ORDER BY {id}"
            ),
        }
    }
}

impl OutcomeSource {
    /// A prediction as the model service records it (`None`: left for driftd to score).
    pub async fn feed_prediction(
        &self,
        conn: &mut PgConnection,
        model: &str,
        features: &[f64],
        prediction: Option<f64>,
    ) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(&self.feed.insert_sql)
            .bind(model)
            .bind(features)
            .bind(prediction)
            .fetch_one(conn)
            .await
    }

    /// The true outcomes of rows `ids`, labelled now.
    pub async fn feed_labels(
        &self,
        conn: &mut PgConnection,
        ids: &[i64],
        labels: &[f64],
    ) -> Result<(), sqlx::Error> {
        sqlx::query(&self.feed.label_sql)
            .bind(ids)
            .bind(labels)
            .execute(conn)
            .await
            .map(|_| ())
    }

    /// Rows of `model` with a label.
    pub async fn labelled_rows(
        &self,
        conn: &mut PgConnection,
        model: &str,
    ) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(&self.feed.labelled_sql)
            .bind(model)
            .fetch_one(conn)
            .await
    }

    /// Accuracy of the served predictions in segments of `rows_per_segment` labelled rows.
    pub async fn accuracy_by_segment(
        &self,
        conn: &mut PgConnection,
        model: &str,
        rows_per_segment: i64,
    ) -> Result<Vec<(i64, f64)>, sqlx::Error> {
        sqlx::query_as(&self.feed.segments_sql)
            .bind(model)
            .bind(rows_per_segment)
            .fetch_all(conn)
            .await
    }

    /// Every row of `model` in id order: the version that scored it and whether it was right.
    pub async fn served_rows(
        &self,
        conn: &mut PgConnection,
        model: &str,
    ) -> Result<Vec<(i64, Option<i64>, Option<bool>)>, sqlx::Error> {
        let rows = sqlx::query(&self.feed.served_sql)
            .bind(model)
            .fetch_all(conn)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }
}
