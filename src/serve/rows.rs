//! The body of `POST /v1/models/{model}/predict`: `{"rows": [[f1, …, fn], …]}`, or rows as
//! objects keyed by the model's `feature_names`. Parsing yields the row-major f32 matrix the
//! predictor takes, or a message saying what is wrong with the request.

use std::cell::RefCell;
use std::fmt;

use serde::de::{
    DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
};

/// What a model accepts.
pub struct RowShape<'a> {
    pub n_features: usize,
    /// Empty when the model has no `feature_names` configured.
    pub feature_names: &'a [String],
    pub max_rows: usize,
    /// Positions of categorical features: they take a string (or a number or a boolean, as
    /// its text), answered as its code (see `domain::category`).
    pub categorical: &'a [usize],
}

/// Row-major features, or why the body is not a valid request for this model.
///
/// The rows are parsed straight into the matrix: nothing is allocated from a size the
/// request claims, a row is refused as soon as it has one value too many, and `max_rows` is
/// enforced at the row past it. The memory a request takes is therefore bounded by
/// `max_rows × n_features` floats, whatever the shape of the body.
pub fn parse_predict_body(body: &[u8], shape: &RowShape<'_>) -> Result<Vec<f32>, String> {
    let why = RefCell::new(None);
    let mut x = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = BodySeed {
        shape,
        x: &mut x,
        why: &why,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    match (parsed, why.into_inner()) {
        (Ok(()), _) if x.is_empty() => Err("`rows` is empty".into()),
        (Ok(()), _) => Ok(x),
        (Err(_), Some(why)) => Err(why),
        (Err(e), None) => Err(format!(
            "body is not {{\"rows\": [[…], …]}} or {{\"rows\": [{{…}}, …]}}: {e}"
        )),
    }
}

/// The parse's state: the shape, the matrix so far, and the request's first fault (kept
/// apart from serde's error, which would add a position to it).
struct BodySeed<'s, 'a> {
    shape: &'s RowShape<'a>,
    x: &'s mut Vec<f32>,
    why: &'s RefCell<Option<String>>,
}

impl BodySeed<'_, '_> {
    fn fail<E: serde::de::Error>(&self, why: String) -> E {
        let e = E::custom(&why);
        self.why.borrow_mut().get_or_insert(why);
        e
    }
}

impl<'de> DeserializeSeed<'de> for BodySeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for BodySeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with `rows`")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = false;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key != "rows" {
                return Err(A::Error::unknown_field(&key, &["rows"]));
            }
            if seen {
                return Err(A::Error::duplicate_field("rows"));
            }
            seen = true;
            map.next_value_seed(RowsSeed {
                shape: self.shape,
                x: &mut *self.x,
                why: self.why,
            })?;
        }
        if !seen {
            return Err(A::Error::missing_field("rows"));
        }
        Ok(())
    }
}

/// `[row, …]`, each row parsed into the matrix as it comes.
struct RowsSeed<'s, 'a> {
    shape: &'s RowShape<'a>,
    x: &'s mut Vec<f32>,
    why: &'s RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for RowsSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RowsSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of rows")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        loop {
            let row = RowSeed {
                i,
                shape: self.shape,
                x: &mut *self.x,
                why: self.why,
            };
            if i == self.shape.max_rows {
                // One more row than allowed is refused without reading it.
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    let why = format!(
                        "more than the {} rows a request may carry (serve.max_rows)",
                        self.shape.max_rows
                    );
                    return Err(row.seed().fail(why));
                }
                return Ok(());
            }
            if seq.next_element_seed(row)?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }
}

/// Row `i`: an array of numbers in feature order, or an object of feature name to number.
struct RowSeed<'s, 'a> {
    i: usize,
    shape: &'s RowShape<'a>,
    x: &'s mut Vec<f32>,
    why: &'s RefCell<Option<String>>,
}

impl<'s, 'a> RowSeed<'s, 'a> {
    fn seed(self) -> BodySeed<'s, 'a> {
        BodySeed {
            shape: self.shape,
            x: self.x,
            why: self.why,
        }
    }
    fn fail<E: serde::de::Error>(&self, why: String) -> E {
        let e = E::custom(&why);
        self.why.borrow_mut().get_or_insert(why);
        e
    }
}

/// One value of a row as it came.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Scalar<'a> {
    Number(f64),
    Bool(bool),
    #[serde(borrow)]
    Text(std::borrow::Cow<'a, str>),
    /// null, an array, an object: never a feature's value.
    Other(IgnoredAny),
}

impl RowSeed<'_, '_> {
    /// Feature `j`'s input: a number, or for a categorical feature the code of its text.
    fn value(&self, v: Scalar<'_>, j: usize) -> Result<f32, String> {
        let i = self.i;
        if matches!(v, Scalar::Other(_)) {
            return Err(format!(
                "row {i}, feature {j}: is not a number (nor a text, for a categorical feature)"
            ));
        }
        if self.shape.categorical.contains(&j) {
            let text = match v {
                Scalar::Text(t) => t.into_owned(),
                Scalar::Bool(b) => b.to_string(),
                // As PostgreSQL prints an integer; other numbers as Rust prints them.
                Scalar::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", n as i64),
                Scalar::Number(n) => n.to_string(),
                Scalar::Other(_) => unreachable!("refused above"),
            };
            return Ok(crate::domain::category_code(&text));
        }
        match v {
            Scalar::Number(n) => finite_f32(n, i, j),
            _ => Err(format!(
                "row {i}, feature {j}: not a number (only categorical features take text)"
            )),
        }
    }
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a row: an array of numbers or an object of feature name to number")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let (i, f) = (self.i, self.shape.n_features);
        let mut n = 0;
        while n < f {
            let Some(v) = seq.next_element::<Scalar>()? else {
                break;
            };
            let x = self.value(v, n).map_err(|why| self.fail(why))?;
            self.x.push(x);
            n += 1;
        }
        // Count what is left without keeping it, for the message.
        while seq.next_element::<IgnoredAny>()?.is_some() {
            n += 1;
        }
        if n != f {
            return Err(self.fail(format!(
                "row {i} has {n} values; the model takes {f} features"
            )));
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (i, names) = (self.i, self.shape.feature_names);
        if names.is_empty() {
            return Err(self.fail(format!(
                "row {i} is an object, but the model has no feature_names configured; send rows as arrays"
            )));
        }
        let mut out: Vec<Option<f32>> = vec![None; names.len()];
        while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let Some(j) = names.iter().position(|n| *n == name) else {
                return Err(self.fail(format!("row {i}: unknown feature `{name}`")));
            };
            if out[j].is_some() {
                return Err(self.fail(format!("row {i}: feature `{name}` is given twice")));
            }
            let v = map.next_value::<Scalar>()?;
            out[j] = Some(self.value(v, j).map_err(|why| self.fail(why))?);
        }
        for (j, v) in out.into_iter().enumerate() {
            let v =
                v.ok_or_else(|| self.fail(format!("row {i}: feature `{}` is missing", names[j])))?;
            self.x.push(v);
        }
        Ok(())
    }
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
                categorical: &[],
            },
        )
    }

    #[test]
    fn categorical_features_take_text_numbers_and_booleans_as_their_codes() {
        let n = vec!["age".to_string(), "plan".to_string()];
        let shape = RowShape {
            n_features: 2,
            feature_names: &n,
            max_rows: 3,
            categorical: &[1],
        };
        let code = crate::domain::category_code;
        let x = parse_predict_body(
            br#"{"rows": [[30, "pro"], {"plan": 3, "age": 1}, [2, true]]}"#,
            &shape,
        )
        .unwrap();
        assert_eq!(
            x,
            vec![30.0, code("pro"), 1.0, code("3"), 2.0, code("true")]
        );
        let err = parse_predict_body(br#"{"rows": [["thirty", "pro"]]}"#, &shape).unwrap_err();
        assert!(err.contains("only categorical features take text"), "{err}");
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
            (
                r#"{"rows": [[1, "a"]]}"#,
                "only categorical features take text",
            ),
            (r#"{"rows": [[1, null]]}"#, "is not a number"),
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
            (r#"{"rows": [[1, 2]], "rows": [[1, 2]]}"#, "duplicate field"),
            (r#"{"rows": [[1, 2]]} x"#, "body is not"),
            (r#"{"rows": [[1, 3.5e38]]}"#, "not a finite"),
            (r#"{"rows": [[], [], []]}"#, "row 0 has 0 values"),
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
                categorical: &[],
            },
        )
        .unwrap_err();
        assert!(err.contains("no feature_names"), "{err}");
    }

    #[test]
    fn the_row_limit_is_enforced_at_the_row_past_it() {
        // The fourth row is refused unread (it is not even a row).
        let err = parse(r#"{"rows": [[1, 2], [1, 2], [1, 2], "not a row"]}"#).unwrap_err();
        assert!(err.contains("serve.max_rows"), "{err}");
        let err = parse(r#"{"rows": [{}, {}, {}, {}, {}]}"#).unwrap_err();
        assert!(err.contains("`age` is missing"), "{err}");
    }
}
