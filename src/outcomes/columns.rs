//! The user's table as the database's catalog describes it: which columns exist, their
//! types, the poll index and driftd's privileges. Read once at start-up (the casts of the poll
//! query follow the column types) and by `driftd check-config --database`.

use std::collections::HashMap;
use std::fmt;

use sqlx::PgConnection;

use super::query::quote_table;
use crate::config::SourceConfig;

/// A column's type as it matters to driftd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Boolean,
    Integer,
    /// numeric, real, double precision
    Float,
    Text,
    Timestamp,
    TimestampTz,
    /// An array of integers or floats (the features array column).
    NumberArray,
    /// An array of text (the categories array column).
    TextArray,
    /// Anything else: an enum, a domain, … (a categorical feature may be one: it is read
    /// as its text).
    Other,
}

impl Kind {
    fn of(typname: &str) -> Kind {
        match typname {
            "bool" => Kind::Boolean,
            "int2" | "int4" | "int8" => Kind::Integer,
            "numeric" | "float4" | "float8" => Kind::Float,
            "text" | "varchar" | "bpchar" | "name" => Kind::Text,
            "timestamp" => Kind::Timestamp,
            "timestamptz" => Kind::TimestampTz,
            "_int2" | "_int4" | "_int8" | "_numeric" | "_float4" | "_float8" => Kind::NumberArray,
            "_text" | "_varchar" | "_bpchar" => Kind::TextArray,
            _ => Kind::Other,
        }
    }
}

/// How a value column (label, prediction, a feature) is read as `float8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValueCast {
    /// integer, numeric, real, double precision: `::float8`.
    #[default]
    Number,
    /// boolean: false → 0, true → 1.
    Boolean,
    /// A categorical feature: its text's code (see `domain::category`), any type.
    Category,
}

impl ValueCast {
    /// `expr` (a quoted column) read as `float8`.
    pub fn read(self, expr: &str) -> String {
        match self {
            ValueCast::Number => format!("{expr}::float8"),
            ValueCast::Boolean => format!("{expr}::int4::float8"),
            ValueCast::Category => crate::domain::category::sql_code(expr),
        }
    }
}

/// How the scorer writes a `float8` prediction `p` into the prediction column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PredictionWrite {
    #[default]
    Number,
    /// An integer column holds a class: the probability is rounded.
    Integer,
    /// A boolean column holds the predicted class of a binary model.
    Boolean,
}

impl PredictionWrite {
    pub fn write(self, p: &str) -> String {
        match self {
            PredictionWrite::Number => p.to_string(),
            PredictionWrite::Integer => format!("round({p})"),
            PredictionWrite::Boolean => format!("({p} >= 0.5)"),
        }
    }
}

/// The casts the queries use, chosen from the column types.
#[derive(Debug, Clone, Default)]
pub struct Casts {
    pub label: ValueCast,
    pub prediction: ValueCast,
    pub prediction_write: PredictionWrite,
    /// One per listed feature column (empty: the array column, or every one a number).
    pub features: Vec<ValueCast>,
}

/// One column of the table: its catalog type name (`int4`) and its SQL spelling (`integer`).
#[derive(Debug, Clone)]
pub struct Column {
    pub typname: String,
    pub shown: String,
}

impl Column {
    pub fn kind(&self) -> Kind {
        Kind::of(&self.typname)
    }
}

/// What the catalog says about the table.
#[derive(Debug, Clone)]
pub struct TableInfo {
    pub columns: HashMap<String, Column>,
    /// The leading columns of each index on the table.
    pub indexes: Vec<Vec<String>>,
}

/// Something about the table that is wrong or missing, naming the key and the column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The `[source]` key (`source.label_column`).
    pub key: String,
    pub column: String,
    pub problem: String,
    /// Polling (or start-up) would fail on it; the others are advice.
    pub fatal: bool,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = if self.fatal { "error" } else { "warning" };
        write!(
            f,
            "{level}: {} ({}): {}",
            self.key, self.column, self.problem
        )
    }
}

/// Why the source cannot be read: the table is not there, or columns are wrong.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    #[error("table {0} does not exist")]
    NoTable(String),
    #[error("{}", .0.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("; "))]
    Columns(Vec<Finding>),
}

const CATALOG_SQL: &str =
    "SELECT a.attname::text, t.typname::text, format_type(a.atttypid, a.atttypmod) \
     FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
     WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped";

const INDEX_SQL: &str = "SELECT array_agg(a.attname::text ORDER BY k.ord) \
     FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) \
     JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
     WHERE i.indrelid = to_regclass($1) GROUP BY i.indexrelid";

/// Reads the table's columns and indexes; `Ok(None)` when there is no such table.
pub async fn inspect(
    conn: &mut PgConnection,
    cfg: &SourceConfig,
) -> Result<Option<TableInfo>, sqlx::Error> {
    let table = quote_table(&cfg.table);
    let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(&table)
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Ok(None);
    }
    let rows: Vec<(String, String, String)> = sqlx::query_as(CATALOG_SQL)
        .bind(&table)
        .fetch_all(&mut *conn)
        .await?;
    let indexes: Vec<Vec<String>> = sqlx::query_scalar(INDEX_SQL)
        .bind(&table)
        .fetch_all(&mut *conn)
        .await?;
    let columns = rows
        .into_iter()
        .map(|(name, typname, shown)| (name, Column { typname, shown }))
        .collect();
    Ok(Some(TableInfo { columns, indexes }))
}

const NUMBERS: &str = "smallint, integer, bigint, numeric, real, double precision";

/// A column's role: its key, the kinds it may have, and the words for a refusal.
struct Role<'a> {
    key: &'static str,
    column: &'a str,
    accepts: &'static [Kind],
    accepted: String,
}

fn role<'a>(
    key: &'static str,
    column: &'a str,
    accepts: &'static [Kind],
    accepted: &str,
) -> Role<'a> {
    Role {
        key,
        column,
        accepts,
        accepted: accepted.to_string(),
    }
}

fn roles(cfg: &SourceConfig) -> Vec<Role<'_>> {
    use Kind::*;
    let value = format!("boolean, {NUMBERS}");
    let mut out = vec![
        role(
            "source.id_column",
            &cfg.id_column,
            &[Integer],
            "smallint, integer, bigint",
        ),
        role(
            "source.model_column",
            &cfg.model_column,
            &[Text],
            "text, varchar, char",
        ),
        role(
            "source.label_column",
            &cfg.label_column,
            &[Boolean, Integer, Float],
            &value,
        ),
        role(
            "source.prediction_column",
            &cfg.prediction_column,
            &[Boolean, Integer, Float],
            &value,
        ),
        role(
            "source.labeled_at_column",
            &cfg.labeled_at_column,
            &[TimestampTz, Timestamp],
            "timestamptz, timestamp",
        ),
    ];
    if let Some(c) = &cfg.created_at_column {
        let times = "timestamptz, timestamp";
        out.push(role(
            "source.created_at_column",
            c,
            &[TimestampTz, Timestamp],
            times,
        ));
    }
    if let Some(c) = &cfg.model_version_column {
        let ints = "smallint, integer, bigint";
        out.push(role("source.model_version_column", c, &[Integer], ints));
    }
    match cfg.features_array_column() {
        Some(c) => {
            out.push(role(
                "source.features_column",
                c,
                &[NumberArray],
                "an array of smallint, integer, bigint, numeric, real or double precision",
            ));
            if !cfg.categorical.is_empty() {
                out.push(role(
                    "source.categories_column",
                    cfg.categories_array_column(),
                    &[TextArray],
                    "text[] or varchar[] (the categorical features, after the numeric ones)",
                ));
            }
        }
        None => out.extend(cfg.feature_columns.iter().enumerate().map(|(i, c)| {
            if cfg.categorical.contains(&i) {
                role(
                    "source.feature_columns",
                    c,
                    &[Boolean, Integer, Float, Text, Other],
                    "a categorical feature: text, varchar, an integer, boolean or an enum",
                )
            } else {
                role(
                    "source.feature_columns",
                    c,
                    &[Boolean, Integer, Float],
                    &value,
                )
            }
        })),
    }
    out
}

impl TableInfo {
    /// The configured columns that are missing or of a type driftd cannot read.
    pub fn column_findings(&self, cfg: &SourceConfig) -> Vec<Finding> {
        let mut out = Vec::new();
        for r in roles(cfg) {
            let finding = |problem: String| Finding {
                key: r.key.to_string(),
                column: r.column.to_string(),
                problem,
                fatal: true,
            };
            match self.columns.get(r.column) {
                None => out.push(finding(format!(
                    "column {} does not exist in table {}",
                    r.column, cfg.table
                ))),
                Some(c) if !r.accepts.contains(&c.kind()) => out.push(finding(format!(
                    "type {} is not accepted here (accepted: {})",
                    c.shown, r.accepted
                ))),
                Some(_) => {}
            }
        }
        out
    }

    /// The casts for these column types, or the findings that make the table unreadable.
    pub fn casts(&self, cfg: &SourceConfig) -> Result<Casts, Vec<Finding>> {
        let findings = self.column_findings(cfg);
        if !findings.is_empty() {
            return Err(findings);
        }
        let kind = |c: &str| self.columns.get(c).map(Column::kind);
        let value = |c: &str| match kind(c) {
            Some(Kind::Boolean) => ValueCast::Boolean,
            _ => ValueCast::Number,
        };
        let prediction_write = match kind(&cfg.prediction_column) {
            Some(Kind::Boolean) => PredictionWrite::Boolean,
            Some(Kind::Integer) => PredictionWrite::Integer,
            _ => PredictionWrite::Number,
        };
        Ok(Casts {
            label: value(&cfg.label_column),
            prediction: value(&cfg.prediction_column),
            prediction_write,
            features: cfg
                .feature_columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if cfg.categorical.contains(&i) {
                        ValueCast::Category
                    } else {
                        value(c)
                    }
                })
                .collect(),
        })
    }

    /// Advice when no index leads with (model, labeled_at, id): the poll then scans the table.
    /// Whether an index serves the estimate's read of scored rows (model, created_at, id),
    /// when there is a scoring time to read them by.
    pub fn scoring_index_finding(&self, cfg: &SourceConfig) -> Option<Finding> {
        let created = cfg.created_at_column.as_deref()?;
        let want = [cfg.model_column.as_str(), created, cfg.id_column.as_str()];
        let served = self
            .indexes
            .iter()
            .any(|ix| ix.len() >= 3 && ix.iter().zip(want).all(|(a, b)| a == b));
        (!served).then(|| Finding {
            key: "source.created_at_column".into(),
            column: want.join(", "),
            problem: format!(
                "no index for the estimate of scored rows (models.estimate); create one: \
                 CREATE INDEX ON {} ({})",
                quote_table(&cfg.table),
                want.join(", ")
            ),
            fatal: false,
        })
    }

    pub fn index_finding(&self, cfg: &SourceConfig) -> Option<Finding> {
        let want = [
            cfg.model_column.as_str(),
            cfg.labeled_at_column.as_str(),
            cfg.id_column.as_str(),
        ];
        let served = self
            .indexes
            .iter()
            .any(|ix| ix.len() >= 3 && ix.iter().zip(want).all(|(a, b)| a == b));
        (!served).then(|| Finding {
            key: "source.table".into(),
            column: want.join(", "),
            problem: format!(
                "no poll index; create one: CREATE INDEX ON {} ({}) WHERE {} IS NOT NULL",
                quote_table(&cfg.table),
                want.join(", "),
                cfg.labeled_at_column
            ),
            fatal: false,
        })
    }
}

/// Reads the table and chooses the casts: what the daemon does at start-up.
pub async fn resolve(conn: &mut PgConnection, cfg: &SourceConfig) -> Result<Casts, ResolveError> {
    match inspect(conn, cfg).await? {
        None => Err(ResolveError::Source(SourceError::NoTable(
            cfg.table.clone(),
        ))),
        Some(info) => info
            .casts(cfg)
            .map_err(|f| ResolveError::Source(SourceError::Columns(f))),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Source(SourceError),
}

/// Privileges driftd lacks on the table and its schema (`sql/grants.sql`).
pub async fn grant_findings(
    conn: &mut PgConnection,
    cfg: &SourceConfig,
    info: &TableInfo,
) -> Result<Vec<Finding>, sqlx::Error> {
    let table = quote_table(&cfg.table);
    let mut out = Vec::new();
    let select: bool =
        sqlx::query_scalar("SELECT has_table_privilege(current_user, to_regclass($1), 'SELECT')")
            .bind(&table)
            .fetch_one(&mut *conn)
            .await?;
    if !select {
        out.push(Finding {
            key: "source.table".into(),
            column: cfg.table.clone(),
            problem:
                "no SELECT privilege: GRANT SELECT ON <table> TO <driftd's role> (sql/grants.sql)"
                    .into(),
            fatal: true,
        });
    }
    let written = std::iter::once(("source.prediction_column", &cfg.prediction_column))
        .chain(
            cfg.model_version_column
                .iter()
                .map(|c| ("source.model_version_column", c)),
        )
        // A missing column is a finding of its own.
        .filter(|(_, c)| info.columns.contains_key(c.as_str()));
    for (key, col) in written {
        let update: bool = sqlx::query_scalar(
            "SELECT has_column_privilege(current_user, to_regclass($1), $2, 'UPDATE')",
        )
        .bind(&table)
        .bind(col)
        .fetch_one(&mut *conn)
        .await?;
        if !update {
            out.push(Finding {
                key: key.into(),
                column: col.clone(),
                problem: "no UPDATE privilege: driftd cannot score rows without a prediction (GRANT UPDATE (column) …, sql/grants.sql)".into(),
                fatal: false,
            });
        }
    }
    let schema_ok: bool = sqlx::query_scalar(
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'driftd') \
              THEN has_schema_privilege(current_user, 'driftd', 'CREATE') \
              ELSE has_database_privilege(current_user, current_database(), 'CREATE') END",
    )
    .fetch_one(&mut *conn)
    .await?;
    if !schema_ok {
        out.push(Finding {
            key: "database.url".into(),
            column: "schema driftd".into(),
            problem: "driftd cannot create its tables: CREATE SCHEMA driftd AUTHORIZATION <driftd's role> (sql/grants.sql)".into(),
            fatal: true,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(cols: &[(&str, &str)]) -> TableInfo {
        TableInfo {
            columns: cols
                .iter()
                .map(|(n, t)| {
                    let c = Column {
                        typname: t.to_string(),
                        shown: t.to_string(),
                    };
                    (n.to_string(), c)
                })
                .collect(),
            indexes: vec![],
        }
    }

    #[test]
    fn boolean_labels_are_cast_through_integers_and_text_is_refused() {
        let cfg = SourceConfig::default();
        let mut cols = vec![
            ("id", "int8"),
            ("model", "text"),
            ("features", "_float4"),
            ("prediction", "float8"),
            ("label", "bool"),
            ("labeled_at", "timestamptz"),
            ("created_at", "timestamptz"),
            ("model_version", "int4"),
        ];
        let casts = table(&cols).casts(&cfg).unwrap();
        assert_eq!(casts.label, ValueCast::Boolean);
        assert_eq!(casts.label.read("\"label\""), "\"label\"::int4::float8");
        cols[4] = ("label", "text");
        let f = table(&cols).casts(&cfg).unwrap_err();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].key, "source.label_column");
        assert!(f[0].problem.contains("type text"), "{}", f[0]);
        assert!(table(&cols).index_finding(&cfg).is_some());
    }
}
