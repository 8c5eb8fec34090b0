//! Which models the outcomes table holds, and how wide a new model's features are: what
//! `[[model_templates]]` need to pick up a model while the daemon runs.

use sqlx::PgConnection;

use super::query::{quote_ident, quote_table};
use super::OutcomeSource;
use crate::config::SourceConfig;

#[derive(Debug, Clone)]
pub(super) struct NameQueries {
    names_sql: String,
    /// `None` when the features are listed columns: their number is known from the config.
    width_sql: Option<String>,
}

impl NameQueries {
    pub(super) fn new(cfg: &SourceConfig) -> Self {
        let table = quote_table(&cfg.table);
        let model = quote_ident(&cfg.model_column);
        let at = quote_ident(&cfg.labeled_at_column);
        // A loose index scan: one probe per distinct name of the poll index (model, labeled_at,
        // id), instead of reading every row for a DISTINCT. `labeled_at IS NOT NULL` lets a
        // partial poll index (the reference table's) serve it: a model is found once it has a
        // labelled row, which is when there is something to monitor.
        let names_sql = format!(
            "WITH RECURSIVE names(m) AS ( \
               (SELECT {model} FROM {table} WHERE {model} IS NOT NULL AND {at} IS NOT NULL \
                ORDER BY {model} LIMIT 1) \
               UNION ALL \
               SELECT (SELECT t.{model} FROM {table} t WHERE t.{model} > names.m \
                         AND t.{at} IS NOT NULL ORDER BY t.{model} LIMIT 1) \
               FROM names WHERE names.m IS NOT NULL) \
             SELECT m::text FROM names WHERE m IS NOT NULL"
        );
        // The width most of the model's first labelled rows (in poll order, on the poll
        // index) agree on: one malformed first row does not decide the width of every row
        // after it.
        let width_sql = cfg.features_array_column().map(|col| {
            let (f, id) = (quote_ident(col), quote_ident(&cfg.id_column));
            format!(
                "SELECT w::int8 FROM (SELECT cardinality({f}) AS w FROM {table} \
                   WHERE {model} = $1 AND {at} IS NOT NULL AND {f} IS NOT NULL \
                   ORDER BY {at}, {id} LIMIT 100) r \
                 WHERE w > 0 GROUP BY w ORDER BY count(*) DESC, w LIMIT 1"
            )
        });
        NameQueries {
            names_sql,
            width_sql,
        }
    }
}

impl OutcomeSource {
    /// Every model name in the outcomes table, in order.
    pub async fn model_names(&self, conn: &mut PgConnection) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar(&self.names.names_sql)
            .fetch_all(conn)
            .await
    }

    /// The feature width of `model`'s rows: `None` when it has no row with features yet.
    /// Only for an array column (listed columns fix the width in the configuration).
    pub async fn feature_width(
        &self,
        conn: &mut PgConnection,
        model: &str,
    ) -> Result<Option<usize>, sqlx::Error> {
        let Some(sql) = &self.names.width_sql else {
            return Ok(None);
        };
        let w: Option<i64> = sqlx::query_scalar(sql)
            .bind(model)
            .fetch_optional(conn)
            .await?;
        Ok(w.map(|w| w as usize))
    }
}
