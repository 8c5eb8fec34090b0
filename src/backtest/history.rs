//! The history a backtest replays: features, labels and timestamps in time order, read from
//! CSV with polars (or taken from a [`generate::Stream`](crate::generate::Stream)), and the
//! CSV writer behind `driftd generate`.

use std::io::Write;
use std::path::Path;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use polars::prelude::*;

use super::{BacktestError, BacktestOptions};
use crate::config::ModelConfig;
use crate::domain::{Dataset, RejectReason, RowRules};
use crate::generate::{Stream, StreamSpec};

/// `driftd generate` stamps its rows one second apart from 2024-01-01T00:00:00Z.
pub const GENERATE_START_TS: i64 = 1_704_067_200;

/// Labelled rows in replay order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub feature_names: Vec<String>,
    /// The rows, time-ordered: features row-major, labels (class indices), unix seconds of
    /// each row (non-decreasing), and ids (the row's index).
    pub rows: Dataset,
    /// Whether `ts` came from the input (otherwise it is row index × `seconds_per_row`).
    pub has_timestamps: bool,
    /// Rows left out: a null or non-finite feature, a missing or invalid label, no timestamp.
    pub skipped_rows: usize,
    /// The same rows by reason (`null_feature`, `non_finite_feature`, `invalid_label`: null,
    /// negative or not an integer, `unknown_label`: a class the model does not have,
    /// `missing_timestamp`, `missing_label_time`).
    pub skipped_by_reason: std::collections::BTreeMap<String, usize>,
    /// When each row's label arrived (unix seconds, in row order), from the history's label
    /// time column; `None` without one (labels then arrive `label_delay_rows` rows later).
    pub label_ts: Option<Vec<i64>>,
}

impl History {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn n_features(&self) -> usize {
        self.rows.n_features
    }

    pub fn row(&self, i: usize) -> &[f32] {
        self.rows.row(i)
    }

    /// Row `i`'s label, a class index.
    pub fn label(&self, i: usize) -> u32 {
        self.rows.y[i] as u32
    }

    /// Every label, as class indices.
    pub fn labels(&self) -> Vec<u32> {
        self.rows.y.iter().map(|&v| v as u32).collect()
    }

    /// The first `rows` rows of a generated stream, stamped as [`generate_csv`] stamps them.
    pub fn from_stream(spec: &StreamSpec) -> Self {
        let mut h = History {
            feature_names: default_names(spec),
            rows: Dataset::empty(spec.n_features + spec.categorical),
            has_timestamps: true,
            ..Default::default()
        };
        for r in Stream::new(spec.clone()) {
            h.rows.x.extend_from_slice(&r.features);
            h.rows.x.extend(
                r.categories
                    .iter()
                    .map(|&c| crate::domain::category_code(&category_text(c))),
            );
            h.rows.y.push(r.label as f32);
            h.rows.ts.push(GENERATE_START_TS + r.index as i64);
            h.rows.ids.push(r.index as i64);
        }
        h
    }

    fn skip(&mut self, reason: &str) {
        self.skipped_rows += 1;
        *self
            .skipped_by_reason
            .entry(reason.to_string())
            .or_default() += 1;
    }

    /// The first `n` rows.
    pub fn truncate(&mut self, n: usize) {
        if n < self.len() {
            self.rows = self.rows.slice(0, n);
            if let Some(l) = &mut self.label_ts {
                l.truncate(n);
            }
        }
    }

    /// Stable sort by timestamp (a no-op when already ordered); ids are the new indices.
    /// While rows are read, `ids` holds each row's label time when there is a label time
    /// column, so that the sort carries it along.
    fn sort_by_time(&mut self) {
        let n = self.len() as i64;
        if !self.rows.ts.windows(2).all(|w| w[0] <= w[1]) {
            self.rows = self.rows.time_ordered();
        }
        let carried = std::mem::replace(&mut self.rows.ids, (0..n).collect());
        if self.label_ts.is_some() {
            self.label_ts = Some(carried);
        }
    }
}

/// The two input formats `driftd backtest` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    Csv,
    Parquet,
}

impl InputFormat {
    /// Parquet when the file starts with Parquet's magic bytes (`PAR1`) or is named
    /// `*.parquet`/`*.pq`; CSV otherwise. Sniffing the content first means a Parquet file with
    /// an unusual name is not misread as text.
    pub fn detect(path: &Path) -> Result<Self, BacktestError> {
        use std::io::Read;
        let mut magic = [0u8; 4];
        let mut file = std::fs::File::open(path)
            .map_err(|e| BacktestError::Input(format!("{}: {e}", path.display())))?;
        let n = file.read(&mut magic).unwrap_or(0);
        if n == 4 && &magic == b"PAR1" {
            return Ok(InputFormat::Parquet);
        }
        Ok(Self::by_extension(path))
    }

    /// Parquet for `*.parquet`/`*.pq`, else CSV (also what `driftd generate` writes).
    pub fn by_extension(path: &Path) -> Self {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("parquet") | Some("pq") => InputFormat::Parquet,
            _ => InputFormat::Csv,
        }
    }
}

/// Reads a CSV or Parquet history for `model` (see [`super::run`] for the columns used).
pub fn read_history(
    model: &ModelConfig,
    input: &Path,
    opts: &BacktestOptions,
) -> Result<History, BacktestError> {
    let in_file = |m: String| BacktestError::Input(format!("{}: {m}", input.display()));
    let df = match InputFormat::detect(input)? {
        InputFormat::Csv => CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(None)
            .with_n_rows(opts.max_rows)
            .try_into_reader_with_file_path(Some(input.to_path_buf()))
            .and_then(|r| r.finish()),
        InputFormat::Parquet => {
            let file = std::fs::File::open(input).map_err(|e| in_file(e.to_string()))?;
            ParquetReader::new(file)
                .with_slice(opts.max_rows.map(|n| (0, n)))
                .finish()
        }
    }
    .map_err(|e| in_file(e.to_string()))?;
    history_from_frame(model, &df, opts).map_err(|e| match e {
        BacktestError::Input(m) => in_file(m),
        other => other,
    })
}

fn numeric(dtype: &DataType) -> bool {
    dtype.is_primitive_numeric() || dtype.is_bool()
}

/// Values of a numeric column as `f64` (nulls as `None`).
/// Column `name`, or an error naming it.
fn column<'a>(df: &'a DataFrame, name: &str) -> Result<&'a Column, BacktestError> {
    df.column(name)
        .map_err(|_| BacktestError::Input(format!("no column `{name}`")))
}

fn f64_values(df: &DataFrame, name: &str) -> Result<Vec<Option<f64>>, BacktestError> {
    let col = column(df, name)?;
    if !numeric(col.dtype()) {
        return Err(BacktestError::Input(format!(
            "column `{name}` is {}, not numeric",
            col.dtype()
        )));
    }
    let cast = col
        .cast(&DataType::Float64)
        .map_err(|e| BacktestError::Input(format!("column `{name}`: {e}")))?;
    let ca = cast
        .f64()
        .map_err(|e| BacktestError::Input(format!("column `{name}`: {e}")))?;
    Ok(ca.iter().collect())
}

/// A categorical column's values as their codes (see `domain::category`): each value's
/// text, as PostgreSQL would print it (`3`, `true`, `basic`); nulls stay null.
fn category_values(df: &DataFrame, name: &str) -> Result<Vec<Option<f64>>, BacktestError> {
    let col = column(df, name)?;
    let text = col
        .cast(&DataType::String)
        .map_err(|e| BacktestError::Input(format!("column `{name}` as text: {e}")))?;
    let ca = text
        .str()
        .map_err(|e| BacktestError::Input(format!("column `{name}`: {e}")))?;
    Ok(ca
        .iter()
        .map(|v| v.map(|t| f64::from(crate::domain::category_code(t))))
        .collect())
}

/// Unix seconds from `1700000000`, `1700000000.5`, RFC 3339, `YYYY-MM-DD[ HH:MM:SS]`
/// (naive times are UTC).
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(v) = s.parse::<f64>() {
        return v.is_finite().then(|| v.floor() as i64);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp());
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc().timestamp());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp())
}

/// Largest |unix seconds| accepted (year ±200 000, well inside chrono's range).
const MAX_ABS_TS: i64 = 6_000_000_000_000;

fn timestamps(df: &DataFrame, name: &str) -> Result<Vec<Option<i64>>, BacktestError> {
    let col = df
        .column(name)
        .map_err(|_| BacktestError::Input(format!("no timestamp column `{name}`")))?;
    let out: Vec<Option<i64>> = if numeric(col.dtype()) {
        f64_values(df, name)?
            .into_iter()
            .map(|v| v.filter(|v| v.is_finite()).map(|v| v.floor() as i64))
            .collect()
    } else if col.dtype() == &DataType::String {
        let ca = col
            .str()
            .map_err(|e| BacktestError::Input(format!("column `{name}`: {e}")))?;
        let mut out = Vec::with_capacity(ca.len());
        for (i, v) in ca.iter().enumerate() {
            match v {
                None => out.push(None),
                Some(s) => out.push(Some(parse_timestamp(s).ok_or_else(|| {
                    BacktestError::Input(format!(
                        "timestamp `{s}` in row {i} of `{name}` is neither unix seconds nor a \
                         date-time (RFC 3339 or YYYY-MM-DD HH:MM:SS)"
                    ))
                })?)),
            }
        }
        out
    } else if let DataType::Datetime(unit, _) = col.dtype() {
        // Physical values count `unit`s since the epoch in UTC, whatever the column's zone.
        let per_second: i64 = match unit {
            TimeUnit::Nanoseconds => 1_000_000_000,
            TimeUnit::Microseconds => 1_000_000,
            TimeUnit::Milliseconds => 1_000,
        };
        physical_i64(col, name)?
            .into_iter()
            .map(|v| v.map(|v| v.div_euclid(per_second)))
            .collect()
    } else if col.dtype() == &DataType::Date {
        physical_i64(col, name)?
            .into_iter()
            .map(|days| days.map(|d| d * 86_400))
            .collect()
    } else {
        return Err(BacktestError::Input(format!(
            "timestamp column `{name}` is {}; expected unix seconds, a date-time or date column, \
             or date-time strings",
            col.dtype()
        )));
    };
    Ok(out
        .into_iter()
        .map(|t| t.filter(|t| t.abs() <= MAX_ABS_TS))
        .collect())
}

/// The physical integers behind a Datetime or Date column.
fn physical_i64(col: &Column, name: &str) -> Result<Vec<Option<i64>>, BacktestError> {
    let err = |e: PolarsError| BacktestError::Input(format!("column `{name}`: {e}"));
    let phys = col.to_physical_repr().cast(&DataType::Int64).map_err(err)?;
    Ok(phys.i64().map_err(err)?.iter().collect())
}

/// Picks the feature, label and timestamp columns of `df` and builds the time-ordered history.
pub fn history_from_frame(
    model: &ModelConfig,
    df: &DataFrame,
    opts: &BacktestOptions,
) -> Result<History, BacktestError> {
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let label = opts.label_column.as_str();
    if !names.iter().any(|n| n == label) {
        return Err(BacktestError::Input(format!(
            "no label column `{label}` (columns: {}); set the label column",
            names.join(", ")
        )));
    }
    let ts_col = timestamp_column(&names, opts)?;
    let label_ts_col = label_time_column(&names, opts)?;
    let not_features: Vec<&str> = ts_col
        .iter()
        .chain(&label_ts_col)
        .map(String::as_str)
        .collect();
    let features = feature_columns(model, df, label, &not_features)?;
    let rules = model.row_rules();
    // Every column is read (and its type checked) before the first row is, so a bad column
    // fails the input as a whole rather than showing up as skipped rows.
    let labels = f64_values(df, label)?;
    let cols: Vec<Vec<Option<f64>>> = features
        .iter()
        .enumerate()
        .map(|(i, f)| {
            if model.is_categorical(i) {
                category_values(df, f)
            } else {
                f64_values(df, f)
            }
        })
        .collect::<Result<_, _>>()?;
    let ts = match &ts_col {
        Some(c) => Some(timestamps(df, c)?),
        None => None,
    };
    let label_ts = match &label_ts_col {
        Some(c) if ts.is_none() => {
            return Err(BacktestError::Input(format!(
                "label time column `{c}` needs a timestamp column (the scoring time) too"
            )))
        }
        Some(c) => Some(timestamps(df, c)?),
        None => None,
    };
    let nf = features.len();
    let mut h = History {
        feature_names: features,
        rows: Dataset::empty(nf),
        has_timestamps: ts.is_some(),
        label_ts: label_ts.as_ref().map(|_| Vec::new()),
        ..Default::default()
    };
    push_usable_rows(
        &mut h,
        &labels,
        &cols,
        (ts.as_deref(), label_ts.as_deref()),
        rules,
        opts.seconds_per_row,
    );
    // An accuracy over the rows a fixed set of classes leaves would hide every row of the
    // classes it cannot hold: refuse, naming the keys that would.
    if let Some(&n) = h.skipped_by_reason.get(RejectReason::UnknownLabel.as_str()) {
        return Err(BacktestError::Input(format!(
            "{n} rows have labels beyond the {} classes of task = \"{}\" (n_classes = {}) \
             with classes = \"fixed\": set task = \"multiclass\" and n_classes to hold them, \
             or classes = \"grow\" to learn them as they come",
            model.class_count(),
            model.task.as_str(),
            model.n_classes,
        )));
    }
    if h.is_empty() {
        return Err(BacktestError::Input(format!(
            "no usable rows ({} skipped: null or non-finite features, labels that are not a \
             class index, or no timestamp)",
            h.skipped_rows
        )));
    }
    h.sort_by_time();
    Ok(h)
}

/// The timestamp column: the configured one (which must exist), else `ts` if there is one,
/// else none (rows are then `seconds_per_row` apart).
fn timestamp_column(
    names: &[String],
    opts: &BacktestOptions,
) -> Result<Option<String>, BacktestError> {
    match &opts.timestamp_column {
        Some(c) if names.contains(c) => Ok(Some(c.clone())),
        Some(c) => Err(BacktestError::Input(format!(
            "no timestamp column `{c}` (columns: {})",
            names.join(", ")
        ))),
        None => Ok(names.iter().find(|n| *n == "ts").cloned()),
    }
}

/// The label time column: the configured one (which must exist), else `labeled_at` if there
/// is one, else none (labels arrive `label_delay_rows` rows after their predictions).
fn label_time_column(
    names: &[String],
    opts: &BacktestOptions,
) -> Result<Option<String>, BacktestError> {
    match &opts.label_time_column {
        Some(c) if names.contains(c) => Ok(Some(c.clone())),
        Some(c) => Err(BacktestError::Input(format!(
            "no label time column `{c}` (columns: {})",
            names.join(", ")
        ))),
        None => Ok(names.iter().find(|n| *n == "labeled_at").cloned()),
    }
}

/// The model's `feature_names`, or, when it lists none, every numeric column but the label
/// and the time columns; either way as many as the model's `n_features`.
fn feature_columns(
    model: &ModelConfig,
    df: &DataFrame,
    label: &str,
    time_cols: &[&str],
) -> Result<Vec<String>, BacktestError> {
    let features: Vec<String> = if model.feature_names.is_empty() {
        df.columns()
            .iter()
            .filter(|c| {
                let n = c.name().as_str();
                n != label && !time_cols.contains(&n) && numeric(c.dtype())
            })
            .map(|c| c.name().to_string())
            .collect()
    } else {
        model.feature_names.clone()
    };
    if features.len() != model.n_features {
        return Err(BacktestError::Input(format!(
            "model `{}` has n_features = {} but the input has {} numeric feature column(s) \
             besides the label and timestamp ({}); list them in the model's feature_names",
            model.name,
            model.n_features,
            features.len(),
            features.join(", ")
        )));
    }
    Ok(features)
}

/// A row's time, unix seconds (`None`: missing).
type Stamp = Option<i64>;

/// Appends each row whose label is a class of the model's ([`RowRules::label`]), whose features are all
/// finite (also as `f32`) and which has a timestamp (row `i` is at `i × seconds_per_row`
/// without a timestamp column); counts the others in `skipped_rows`. A bad row is left out,
/// never an error: one bad value must not stop a replay of millions of rows.
fn push_usable_rows(
    h: &mut History,
    labels: &[Option<f64>],
    cols: &[Vec<Option<f64>>],
    (ts, label_ts): (Option<&[Stamp]>, Option<&[Stamp]>),
    rules: RowRules,
    seconds_per_row: i64,
) {
    let nf = cols.len();
    h.rows.x.reserve(labels.len() * nf);
    let mut row = vec![0f32; nf];
    'rows: for (i, label) in labels.iter().enumerate() {
        let y = match rules.label(*label) {
            Ok(y) => y,
            Err(defect) => {
                h.skip(defect.reason.as_str());
                continue;
            }
        };
        for (f, col) in cols.iter().enumerate() {
            match col[i] {
                Some(v) if v.is_finite() && (v as f32).is_finite() => row[f] = v as f32,
                Some(_) => {
                    h.skip("non_finite_feature");
                    continue 'rows;
                }
                None => {
                    h.skip("null_feature");
                    continue 'rows;
                }
            }
        }
        let t = match ts {
            Some(ts) => match ts[i] {
                Some(t) => t,
                None => {
                    h.skip("missing_timestamp");
                    continue;
                }
            },
            None => i as i64 * seconds_per_row,
        };
        // A label that arrived before its prediction was made counts as arriving with it.
        let label_at = match label_ts.map(|l| l[i]) {
            Some(Some(l)) => Some(l.max(t)),
            Some(None) => {
                h.skip("missing_label_time");
                continue;
            }
            None => None,
        };
        h.rows.x.extend_from_slice(&row);
        h.rows.y.push(y as f32);
        h.rows.ts.push(t);
        // Carried through the sort in `ids` (see `History::sort_by_time`).
        h.rows.ids.push(label_at.unwrap_or(0));
    }
}

/// Writes a generated stream as CSV: `f0..f{n-1}`, `label`, `ts` (unix seconds, one row a
/// second from [`GENERATE_START_TS`]). Returns the number of rows written.
pub fn generate_csv(spec: &StreamSpec, path: &Path) -> Result<usize, BacktestError> {
    generate_csv_named(spec, path, &default_names(spec))
}

/// `f0..f{n-1}`, then `c0..c{m-1}` for the categorical ones: the feature columns' names when
/// no model names them.
fn default_names(spec: &StreamSpec) -> Vec<String> {
    (0..spec.n_features)
        .map(|f| format!("f{f}"))
        .chain((0..spec.categorical).map(|c| format!("c{c}")))
        .collect()
}

/// A generated category's text.
fn category_text(k: usize) -> String {
    format!("v{k}")
}

fn generate_csv_named(
    spec: &StreamSpec,
    path: &Path,
    names: &[String],
) -> Result<usize, BacktestError> {
    let io = |e: std::io::Error| BacktestError::Io(format!("{}: {e}", path.display()));
    let file = std::fs::File::create(path).map_err(io)?;
    let mut w = std::io::BufWriter::new(file);
    let mut header: Vec<String> = names.to_vec();
    header.push("label".into());
    header.push("ts".into());
    writeln!(w, "{}", header.join(",")).map_err(io)?;
    let mut n = 0;
    let mut line = String::new();
    for r in Stream::new(spec.clone()) {
        line.clear();
        for v in &r.features {
            // `Display` of f32 is the shortest string that reads back to the same value.
            line.push_str(&v.to_string());
            line.push(',');
        }
        for &c in &r.categories {
            line.push_str(&category_text(c));
            line.push(',');
        }
        line.push_str(&r.label.to_string());
        line.push(',');
        line.push_str(&(GENERATE_START_TS + r.index as i64).to_string());
        writeln!(w, "{line}").map_err(io)?;
        n += 1;
        crate::progress::report(n, spec.rows);
    }
    w.flush().map_err(io)?;
    Ok(n)
}

/// Writes a generated stream as Parquet with the CSV's columns: `f0..f{n-1}` (Float32),
/// `label` (Int64) and `ts` (Int64 unix seconds). Returns the number of rows written.
pub fn generate_parquet(spec: &StreamSpec, path: &Path) -> Result<usize, BacktestError> {
    generate_parquet_named(spec, path, &default_names(spec))
}

fn generate_parquet_named(
    spec: &StreamSpec,
    path: &Path,
    names: &[String],
) -> Result<usize, BacktestError> {
    let h = History::from_stream(spec);
    let nf = h.n_features();
    let mut columns: Vec<Column> = (0..spec.n_features)
        .map(|f| {
            let values: Vec<f32> = (0..h.len()).map(|i| h.rows.x[i * nf + f]).collect();
            Column::new(names[f].as_str().into(), values)
        })
        .collect();
    let rows: Vec<crate::generate::StreamRow> = if spec.categorical > 0 {
        Stream::new(spec.clone()).collect()
    } else {
        Vec::new()
    };
    for c in 0..spec.categorical {
        let values: Vec<String> = rows
            .iter()
            .map(|r| category_text(r.categories[c]))
            .collect();
        columns.push(Column::new(
            names[spec.n_features + c].as_str().into(),
            values,
        ));
    }
    let labels: Vec<i64> = h.labels().iter().map(|&y| i64::from(y)).collect();
    columns.push(Column::new("label".into(), labels));
    columns.push(Column::new("ts".into(), h.rows.ts.clone()));
    let mut df = DataFrame::new(h.len(), columns)
        .map_err(|e| BacktestError::Io(format!("{}: {e}", path.display())))?;
    let file = std::fs::File::create(path)
        .map_err(|e| BacktestError::Io(format!("{}: {e}", path.display())))?;
    ParquetWriter::new(file)
        .finish(&mut df)
        .map_err(|e| BacktestError::Io(format!("{}: {e}", path.display())))?;
    Ok(h.len())
}

/// Writes a generated stream in the format its extension names (`.parquet`/`.pq`, else CSV).
pub fn generate_file(spec: &StreamSpec, path: &Path) -> Result<usize, BacktestError> {
    generate_file_named(spec, path, &default_names(spec))
}

/// [`generate_file`] with the feature columns named `names` (a model's `feature_names`, so
/// that `backtest` with that model's configuration reads the file as it is).
pub fn generate_file_named(
    spec: &StreamSpec,
    path: &Path,
    names: &[String],
) -> Result<usize, BacktestError> {
    if names.len() != spec.n_features + spec.categorical {
        return Err(BacktestError::Config(format!(
            "{} feature names for {} features",
            names.len(),
            spec.n_features + spec.categorical
        )));
    }
    match InputFormat::by_extension(path) {
        InputFormat::Parquet => generate_parquet_named(spec, path, names),
        InputFormat::Csv => generate_csv_named(spec, path, names),
    }
}
