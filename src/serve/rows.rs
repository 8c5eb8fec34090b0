//! The body of `POST /v1/models/{model}/predict`: `{"rows": [[f1, …, fn], …]}`, or rows as
//! objects keyed by the model's `feature_names`. Parsing yields the row-major f32 matrix the
//! predictor takes, or a message saying what is wrong with the request.

use std::fmt;

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// One row as sent: values in feature order, or `(name, value)` pairs.
#[derive(Debug, PartialEq)]
enum RowIn {
    Values(Vec<f64>),
    Named(Vec<(String, f64)>),
}

impl<'de> Deserialize<'de> for RowIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RowVisitor;
        impl<'de> Visitor<'de> for RowVisitor {
            type Value = RowIn;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a row: an array of numbers or an object of feature name to number")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RowIn, A::Error> {
                let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(16));
                while let Some(x) = seq.next_element::<f64>()? {
                    v.push(x);
                }
                Ok(RowIn::Values(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RowIn, A::Error> {
                let mut v = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some((k, x)) = map.next_entry::<String, f64>()? {
                    v.push((k, x));
                }
                Ok(RowIn::Named(v))
            }
        }
        d.deserialize_any(RowVisitor)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PredictBody {
    rows: Vec<RowIn>,
}

/// What a model accepts.
pub struct RowShape<'a> {
    pub n_features: usize,
    /// Empty when the model has no `feature_names` configured.
    pub feature_names: &'a [String],
    pub max_rows: usize,
}

/// Row-major features, or why the body is not a valid request for this model.
pub fn parse_predict_body(body: &[u8], shape: &RowShape<'_>) -> Result<Vec<f32>, String> {
    let parsed: PredictBody = serde_json::from_slice(body).map_err(|e| {
        format!("body is not {{\"rows\": [[…], …]}} or {{\"rows\": [{{…}}, …]}}: {e}")
    })?;
    if parsed.rows.is_empty() {
        return Err("`rows` is empty".into());
    }
    if parsed.rows.len() > shape.max_rows {
        return Err(format!(
            "{} rows is more than the {} a request may carry (serve.max_rows)",
            parsed.rows.len(),
            shape.max_rows
        ));
    }
    let f = shape.n_features;
    let mut x = Vec::with_capacity(parsed.rows.len() * f);
    for (i, row) in parsed.rows.into_iter().enumerate() {
        match row {
            RowIn::Values(v) => {
                if v.len() != f {
                    return Err(format!(
                        "row {i} has {} values; the model takes {f} features",
                        v.len()
                    ));
                }
                for (j, value) in v.into_iter().enumerate() {
                    x.push(finite_f32(value, i, j)?);
                }
            }
            RowIn::Named(pairs) => x.extend(named_row(pairs, i, shape)?),
        }
    }
    Ok(x)
}

/// A row given as an object, in `feature_names` order.
fn named_row(
    pairs: Vec<(String, f64)>,
    i: usize,
    shape: &RowShape<'_>,
) -> Result<Vec<f32>, String> {
    if shape.feature_names.is_empty() {
        return Err(format!(
            "row {i} is an object, but the model has no feature_names configured; send rows as arrays"
        ));
    }
    let mut out: Vec<Option<f32>> = vec![None; shape.feature_names.len()];
    for (name, value) in pairs {
        let j = shape
            .feature_names
            .iter()
            .position(|n| *n == name)
            .ok_or_else(|| format!("row {i}: unknown feature `{name}`"))?;
        if out[j].is_some() {
            return Err(format!("row {i}: feature `{name}` is given twice"));
        }
        out[j] = Some(finite_f32(value, i, j)?);
    }
    out.into_iter()
        .enumerate()
        .map(|(j, v)| {
            v.ok_or_else(|| format!("row {i}: feature `{}` is missing", shape.feature_names[j]))
        })
        .collect()
}

fn finite_f32(v: f64, row: usize, feature: usize) -> Result<f32, String> {
    let x = v as f32;
    if x.is_finite() {
        Ok(x)
    } else {
        Err(format!(
            "row {row}, feature {feature}: {v} is not a finite 32-bit float"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["age".into(), "visits".into()]
    }

    fn parse(body: &str) -> Result<Vec<f32>, String> {
        let n = names();
        parse_predict_body(
            body.as_bytes(),
            &RowShape {
                n_features: 2,
                feature_names: &n,
                max_rows: 3,
            },
        )
    }

    #[test]
    fn arrays_and_objects() {
        assert_eq!(
            parse(r#"{"rows": [[1, 2.5], [-3, 0]]}"#),
            Ok(vec![1.0, 2.5, -3.0, 0.0])
        );
        assert_eq!(
            parse(r#"{"rows": [{"visits": 2, "age": 1}, [5, 6]]}"#),
            Ok(vec![1.0, 2.0, 5.0, 6.0])
        );
    }

    #[test]
    fn every_bad_input_says_why() {
        for (body, says) in [
            ("{", "body is not"),
            (r#"{"row": [[1, 2]]}"#, "unknown field"),
            (r#"{"rows": []}"#, "empty"),
            (r#"{"rows": [[1, 2, 3]]}"#, "row 0 has 3 values"),
            (r#"{"rows": [[1, 2], [1]]}"#, "row 1 has 1 values"),
            (r#"{"rows": [[1, "a"]]}"#, "invalid type"),
            (r#"{"rows": [[1, null]]}"#, "invalid type"),
            (r#"{"rows": [[1, 1e300]]}"#, "not a finite"),
            (
                r#"{"rows": [[1, 2], [1, 2], [1, 2], [1, 2]]}"#,
                "serve.max_rows",
            ),
            (r#"{"rows": [{"age": 1}]}"#, "`visits` is missing"),
            (
                r#"{"rows": [{"age": 1, "visits": 2, "x": 3}]}"#,
                "unknown feature `x`",
            ),
            (r#"{"rows": [{"age": 1, "age": 2}]}"#, "given twice"),
            (r#"{"rows": [7]}"#, "a row"),
        ] {
            let err = parse(body).expect_err(body);
            assert!(err.contains(says), "{body}: {err}");
        }
        let err = parse_predict_body(
            br#"{"rows": [{"a": 1}]}"#,
            &RowShape {
                n_features: 1,
                feature_names: &[],
                max_rows: 9,
            },
        )
        .unwrap_err();
        assert!(err.contains("no feature_names"), "{err}");
    }
}
