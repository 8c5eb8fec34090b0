//! The Open Inference Protocol ("V2", spoken by KServe, Triton and MLServer): request parsing
//! and response encoding, pure. Tensors travel as JSON `data` or, with the binary tensor
//! extension that Triton's clients use by default, as little-endian bytes after a JSON header
//! whose length is in the `Inference-Header-Content-Length` HTTP header.
//!
//! A model has one input, `input` (FP32, `[rows, n_features]`), and, with categorical
//! features, a second, `categorical` (BYTES, `[rows, n_categorical]`: each value's text, as
//! JSON strings or in the binary extension as a 4-byte little-endian length and the bytes),
//! the numeric features then being `input`'s; and two outputs:
//! `probabilities` (FP32, `[rows, n_classes]`; for a binary model `[1 − p, p]`) and `label`
//! (INT64, `[rows]`, the arg-max).

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{json, Value};

use super::predictor::Probabilities;

pub const INPUT: &str = "input";
pub const INPUT_CATEGORICAL: &str = "categorical";
pub const OUT_PROBABILITIES: &str = "probabilities";
pub const OUT_LABEL: &str = "label";
pub const HEADER_LENGTH: &str = "inference-header-content-length";

// The request is parsed into types whose size is bounded by the body's: unknown keys and
// parameters are skipped unread, lists that the protocol keeps short are capped, and tensor
// data goes straight to f32. No JSON tree is built, so a hostile body of any shape takes a
// few times its size at most.

#[derive(Deserialize)]
struct InferRequest {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    parameters: Params,
    inputs: Capped<InputTensor, 2>,
    #[serde(default)]
    outputs: Option<Capped<RequestedOutput, 8>>,
}

#[derive(Deserialize)]
struct InputTensor {
    name: String,
    shape: Capped<i64, 8>,
    datatype: String,
    #[serde(default)]
    parameters: Params,
    #[serde(default)]
    data: Option<Data>,
}

#[derive(Deserialize)]
struct RequestedOutput {
    name: String,
    #[serde(default)]
    parameters: Params,
}

/// The parameters driftd reads; any others are skipped.
#[derive(Deserialize, Default)]
struct Params {
    binary_data_output: Option<Param>,
    binary_data: Option<Param>,
    binary_data_size: Option<Param>,
}

/// A parameter's value, as far as driftd cares.
#[derive(Clone, Copy)]
enum Param {
    Bool(bool),
    Whole(u64),
    Other,
}

impl Param {
    fn truthy(p: Option<Param>) -> Option<bool> {
        match p {
            Some(Param::Bool(b)) => Some(b),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Param {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Param;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a parameter value")
            }
            fn visit_bool<E>(self, b: bool) -> Result<Param, E> {
                Ok(Param::Bool(b))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Param, E> {
                Ok(Param::Whole(n))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Param, E> {
                Ok(Param::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Param, E> {
                Ok(Param::Other)
            }
            fn visit_str<E>(self, _: &str) -> Result<Param, E> {
                Ok(Param::Other)
            }
            fn visit_unit<E>(self) -> Result<Param, E> {
                Ok(Param::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Param, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Param::Other)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Param, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Param::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// The first `N` items of a list, and how many it had.
struct Capped<T, const N: usize> {
    items: Vec<T>,
    total: usize,
}

impl<'de, T: Deserialize<'de>, const N: usize> Deserialize<'de> for Capped<T, N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T, const N: usize>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for V<T, N> {
            type Value = Capped<T, N>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while items.len() < N {
                    match a.next_element()? {
                        Some(x) => items.push(x),
                        None => break,
                    }
                }
                let mut total = items.len();
                while a.next_element::<IgnoredAny>()?.is_some() {
                    total += 1;
                }
                Ok(Capped { items, total })
            }
        }
        d.deserialize_seq(V::<T, N>(PhantomData))
    }
}

/// Tensor `data`: flat or nested arrays of numbers, row-major, straight into f32; strings
/// (a BYTES tensor's) become their category codes, and are counted.
struct Data(Vec<f32>, usize);

impl<'de> Deserialize<'de> for Data {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (mut out, mut texts) = (Vec::new(), 0);
        d.deserialize_seq(Flatten(&mut out, &mut texts))?;
        Ok(Data(out, texts))
    }
}

struct Flatten<'a>(&'a mut Vec<f32>, &'a mut usize);

impl<'de> serde::de::DeserializeSeed<'de> for Flatten<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Flatten<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("numbers (strings for BYTES) in `data`, flat or in nested arrays (a boolean or null is neither)")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<(), A::Error> {
        while a
            .next_element_seed(Flatten(&mut *self.0, &mut *self.1))?
            .is_some()
        {}
        Ok(())
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.0.push(crate::domain::category_code(v));
        *self.1 += 1;
        Ok(())
    }
    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        self.0.push(v as f32);
        Ok(())
    }
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.0.push(v as f32);
        Ok(())
    }
    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.0.push(v as f32);
        Ok(())
    }
}

/// A parsed inference request.
#[derive(Debug, PartialEq)]
pub struct Infer {
    pub id: Option<String>,
    /// Row-major `[rows, n_features]`.
    pub x: Vec<f32>,
    /// The outputs to return, each with whether it goes as binary data.
    pub outputs: Vec<(&'static str, bool)>,
}

/// Parses an infer request for a model with `n_features` numeric inputs. `header_len` is
/// the value of `Inference-Header-Content-Length` (binary tensor data follows the JSON), if
/// sent.
pub fn parse_infer(
    body: &[u8],
    header_len: Option<usize>,
    n_features: usize,
    max_rows: usize,
) -> Result<Infer, String> {
    parse_infer_with(body, header_len, n_features, &[], max_rows)
}

/// [`parse_infer`] for a model whose features at `categorical` (of `n_features`) take text:
/// `input` then holds the others and `categorical` those, and `x` is every feature in order
/// (a category as its code).
pub fn parse_infer_with(
    body: &[u8],
    header_len: Option<usize>,
    n_features: usize,
    categorical: &[usize],
    max_rows: usize,
) -> Result<Infer, String> {
    let (json_part, binary) = match header_len {
        Some(n) if n > body.len() => {
            return Err(format!(
                "Inference-Header-Content-Length is {n} but the body has {} bytes",
                body.len()
            ))
        }
        Some(n) => body.split_at(n),
        None => (body, &[][..]),
    };
    let mut req: InferRequest = serde_json::from_slice(json_part)
        .map_err(|e| format!("the inference request is not valid JSON of the V2 protocol: {e}"))?;
    let n_numeric = n_features - categorical.len();
    let wanted: Vec<(&str, &str, usize)> = [
        (INPUT, "FP32", n_numeric),
        (INPUT_CATEGORICAL, "BYTES", categorical.len()),
    ]
    .into_iter()
    .filter(|&(_, _, width)| width > 0)
    .collect();
    let names: Vec<String> = wanted
        .iter()
        .map(|w| format!("`{}` ({})", w.0, w.1))
        .collect();
    if req.inputs.total != wanted.len() || req.inputs.items.len() != wanted.len() {
        return Err(format!(
            "the model takes {} input(s), {}; the request has {}",
            wanted.len(),
            names.join(" and "),
            req.inputs.total
        ));
    }
    let mut rows = None;
    let mut binary = binary;
    let mut parts: Vec<Vec<f32>> = vec![Vec::new(); wanted.len()];
    // Binary data comes in the order of the request's inputs.
    for input in req.inputs.items.iter_mut() {
        let Some(k) = wanted.iter().position(|w| w.0 == input.name) else {
            return Err(format!(
                "unknown input `{}`; the model's inputs are {}",
                input.name,
                names.join(" and ")
            ));
        };
        let (name, datatype, width) = wanted[k];
        let r = check_input(input, name, datatype, width, max_rows)?;
        if rows.is_some_and(|n| n != r) {
            return Err(format!(
                "the inputs have different numbers of rows ({} and {r})",
                rows.unwrap_or(0)
            ));
        }
        rows = Some(r);
        let (values, rest) = input_values(input, binary, r * width, datatype == "BYTES")?;
        binary = rest;
        parts[k] = values;
    }
    if !binary.is_empty() {
        return Err(format!(
            "{} bytes of binary data belong to no input",
            binary.len()
        ));
    }
    let numeric = if n_numeric > 0 {
        parts.remove(0)
    } else {
        Vec::new()
    };
    if let Some(i) = numeric.iter().position(|v| !v.is_finite()) {
        return Err(format!(
            "input `{INPUT}`: value {i} (row {}, feature {}) is not finite",
            i / n_numeric,
            i % n_numeric
        ));
    }
    let codes = parts
        .pop()
        .filter(|_| !categorical.is_empty())
        .unwrap_or_default();
    let x = merge(&numeric, &codes, n_features, categorical, rows.unwrap_or(0));
    Ok(Infer {
        id: req.id.take(),
        x,
        outputs: requested_outputs(&req)?,
    })
}

/// Rows of every feature in order, from the numeric ones and the categorical codes.
fn merge(
    numeric: &[f32],
    codes: &[f32],
    n_features: usize,
    categorical: &[usize],
    rows: usize,
) -> Vec<f32> {
    if categorical.is_empty() {
        return numeric.to_vec();
    }
    let (n_num, n_cat) = (n_features - categorical.len(), categorical.len());
    let mut x = Vec::with_capacity(rows * n_features);
    for r in 0..rows {
        let (mut a, mut b) = (r * n_num, r * n_cat);
        for j in 0..n_features {
            if categorical.contains(&j) {
                x.push(codes[b]);
                b += 1;
            } else {
                x.push(numeric[a]);
                a += 1;
            }
        }
    }
    x
}

/// The number of rows, once name, datatype and shape are right.
fn check_input(
    input: &InputTensor,
    name: &str,
    datatype: &str,
    width: usize,
    max_rows: usize,
) -> Result<usize, String> {
    if input.datatype != datatype {
        return Err(format!(
            "input `{name}` has datatype {}; the model takes {datatype}",
            input.datatype
        ));
    }
    let rows = match (input.shape.items.as_slice(), input.shape.total) {
        ([r, f], 2) if *r >= 1 && *f == width as i64 => *r as usize,
        (shape, _) => {
            let want = format!("[rows, {width}] with rows ≥ 1");
            return Err(format!(
                "input `{name}` has shape {shape:?}; the model takes {want}"
            ));
        }
    };
    if rows > max_rows {
        return Err(format!(
            "{rows} rows is more than the {max_rows} a request may carry (serve.max_rows)"
        ));
    }
    Ok(rows)
}

/// The input's `want` values, from its JSON `data` or from the front of the body's binary
/// part (the rest is returned for the next input). A BYTES input's values are the codes of
/// its texts.
fn input_values<'b>(
    input: &mut InputTensor,
    binary: &'b [u8],
    want: usize,
    bytes: bool,
) -> Result<(Vec<f32>, &'b [u8]), String> {
    let name = input.name.clone();
    let size = match (&mut input.data, input.parameters.binary_data_size) {
        (Some(data), None) => {
            let Data(values, texts) = std::mem::replace(data, Data(Vec::new(), 0));
            if bytes && texts != values.len() {
                return Err(format!(
                    "input `{name}` is BYTES: its `data` must be strings"
                ));
            }
            if !bytes && texts > 0 {
                return Err(format!(
                    "input `{name}` is FP32: its `data` must be numbers"
                ));
            }
            return Ok((json_values(values, want)?, binary));
        }
        (None, Some(Param::Whole(size))) => size as usize,
        (None, Some(_)) => return Err("binary_data_size must be a whole number".into()),
        (Some(_), Some(_)) => return Err("input has both `data` and binary_data_size".into()),
        (None, None) => return Err(format!("input `{name}` has no `data`")),
    };
    if binary.len() < size {
        return Err(format!(
            "the body carries {} bytes of binary data, input `{name}` needs {size}",
            binary.len()
        ));
    }
    let (mine, rest) = binary.split_at(size);
    if bytes {
        return Ok((bytes_values(mine, want, &name)?, rest));
    }
    if size != 4 * want {
        return Err(format!(
            "binary_data_size is {size} bytes; shape {:?} of FP32 needs {}",
            input.shape.items,
            4 * want
        ));
    }
    let values = mine
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("chunks of 4")))
        .collect();
    Ok((values, rest))
}

/// A binary BYTES tensor: `want` elements, each a 4-byte little-endian length and its bytes.
fn bytes_values(mut b: &[u8], want: usize, name: &str) -> Result<Vec<f32>, String> {
    let mut out = Vec::with_capacity(want);
    while !b.is_empty() {
        let bad = || format!("input `{name}`: malformed BYTES element {}", out.len());
        let len = b.get(..4).ok_or_else(bad)?;
        let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
        let text = b.get(4..4 + len).ok_or_else(bad)?;
        let text = std::str::from_utf8(text)
            .map_err(|_| format!("input `{name}`: element {} is not UTF-8", out.len()))?;
        out.push(crate::domain::category_code(text));
        b = &b[4 + len..];
        if out.len() > want {
            break;
        }
    }
    if out.len() != want {
        return Err(format!(
            "input `{name}` has {} elements; its shape needs {want}",
            out.len()
        ));
    }
    Ok(out)
}

/// The outputs to return and whether each goes as binary data: an output's own
/// `binary_data` parameter, else the request's `binary_data_output`.
fn requested_outputs(req: &InferRequest) -> Result<Vec<(&'static str, bool)>, String> {
    let all_binary = Param::truthy(req.parameters.binary_data_output).unwrap_or(false);
    let Some(list) = &req.outputs else {
        return Ok(vec![
            (OUT_PROBABILITIES, all_binary),
            (OUT_LABEL, all_binary),
        ]);
    };
    if list.total > list.items.len() {
        return Err(format!(
            "{} outputs requested; the model has two (`{OUT_PROBABILITIES}`, `{OUT_LABEL}`)",
            list.total
        ));
    }
    list.items
        .iter()
        .map(|o| {
            let name = match o.name.as_str() {
                OUT_PROBABILITIES => OUT_PROBABILITIES,
                OUT_LABEL => OUT_LABEL,
                other => {
                    return Err(format!(
                        "unknown output `{other}`; the model's outputs are `{OUT_PROBABILITIES}` and `{OUT_LABEL}`"
                    ))
                }
            };
            let binary = Param::truthy(o.parameters.binary_data).unwrap_or(all_binary);
            Ok((name, binary))
        })
        .collect()
}

/// Checks that `data` has the `want` numbers of its shape.
fn json_values(data: Vec<f32>, want: usize) -> Result<Vec<f32>, String> {
    if data.len() > want {
        return Err(format!(
            "`data` has more than the {want} values of its shape ({})",
            data.len()
        ));
    }
    if data.len() != want {
        return Err(format!(
            "`data` has {} values; its shape needs {want}",
            data.len()
        ));
    }
    Ok(data)
}

/// An encoded response: the JSON, then binary tensors (if any) after it.
pub struct Encoded {
    pub body: Vec<u8>,
    /// `Some(json length)` when binary data follows the JSON.
    pub header_len: Option<usize>,
}

pub fn encode_response(
    model: &str,
    version: i64,
    req: &Infer,
    p: &Probabilities,
    n_classes: usize,
) -> Encoded {
    let rows = p.values.len() / p.width;
    let mut binary: Vec<u8> = Vec::new();
    let mut outputs = Vec::with_capacity(req.outputs.len());
    for &(name, as_binary) in &req.outputs {
        let (datatype, shape, data): (&str, Value, Value) = if name == OUT_PROBABILITIES {
            let per_class = p.per_class();
            if as_binary {
                per_class
                    .iter()
                    .for_each(|v| binary.extend_from_slice(&v.to_le_bytes()));
            }
            ("FP32", json!([rows, n_classes]), json!(per_class))
        } else {
            let labels = p.labels();
            if as_binary {
                labels
                    .iter()
                    .for_each(|v| binary.extend_from_slice(&v.to_le_bytes()));
            }
            ("INT64", json!([rows]), json!(labels))
        };
        let mut o = json!({ "name": name, "datatype": datatype, "shape": shape });
        if as_binary {
            let size = if name == OUT_PROBABILITIES {
                4 * rows * n_classes
            } else {
                8 * rows
            };
            o["parameters"] = json!({ "binary_data_size": size });
        } else {
            o["data"] = data;
        }
        outputs.push(o);
    }
    let mut head = json!({
        "model_name": model,
        "model_version": version.to_string(),
        "outputs": outputs,
    });
    if let Some(id) = &req.id {
        head["id"] = json!(id);
    }
    let mut body = serde_json::to_vec(&head).expect("a JSON value serialises");
    if binary.is_empty() && req.outputs.iter().all(|(_, b)| !b) {
        return Encoded {
            body,
            header_len: None,
        };
    }
    let header_len = body.len();
    body.extend_from_slice(&binary);
    Encoded {
        body,
        header_len: Some(header_len),
    }
}

/// `GET /v2/models/{model}`.
pub fn model_metadata(
    model: &str,
    version: i64,
    (n_features, n_categorical): (usize, usize),
    n_classes: usize,
) -> Value {
    let mut inputs = Vec::new();
    if n_features > n_categorical {
        inputs.push(
            json!({ "name": INPUT, "datatype": "FP32", "shape": [-1, n_features - n_categorical] }),
        );
    }
    if n_categorical > 0 {
        inputs.push(
            json!({ "name": INPUT_CATEGORICAL, "datatype": "BYTES", "shape": [-1, n_categorical] }),
        );
    }
    json!({
        "name": model,
        "versions": [version.to_string()],
        "platform": "driftd_mlp",
        "inputs": inputs,
        "outputs": [
            { "name": OUT_PROBABILITIES, "datatype": "FP32", "shape": [-1, n_classes] },
            { "name": OUT_LABEL, "datatype": "INT64", "shape": [-1] },
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_req(shape: &str, data: &str) -> String {
        format!(
            r#"{{"id": "r1", "inputs": [{{"name": "input", "datatype": "FP32", "shape": {shape}, "data": {data}}}]}}"#
        )
    }

    #[test]
    fn json_and_binary_inputs() {
        let r = parse_infer(
            json_req("[2, 2]", "[[1, 2], [3, 4]]").as_bytes(),
            None,
            2,
            10,
        )
        .unwrap();
        assert_eq!(r.x, vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(r.id.as_deref(), Some("r1"));
        assert_eq!(
            r.outputs,
            vec![(OUT_PROBABILITIES, false), (OUT_LABEL, false)]
        );
        let flat = parse_infer(json_req("[2, 2]", "[1, 2, 3, 4]").as_bytes(), None, 2, 10).unwrap();
        assert_eq!(flat.x, r.x);

        let head = r#"{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 2], "parameters": {"binary_data_size": 8}}], "outputs": [{"name": "label", "parameters": {"binary_data": true}}]}"#;
        let mut body = head.as_bytes().to_vec();
        body.extend_from_slice(&1.5f32.to_le_bytes());
        body.extend_from_slice(&(-2f32).to_le_bytes());
        let b = parse_infer(&body, Some(head.len()), 2, 10).unwrap();
        assert_eq!(b.x, vec![1.5, -2.0]);
        assert_eq!(b.outputs, vec![(OUT_LABEL, true)]);
    }

    #[test]
    fn responses_carry_json_or_binary_outputs() {
        let p = Probabilities {
            width: 1,
            values: vec![0.25, 0.75],
        };
        let req = Infer {
            id: None,
            x: vec![],
            outputs: vec![(OUT_PROBABILITIES, false), (OUT_LABEL, true)],
        };
        let e = encode_response("m", 3, &req, &p, 2);
        let n = e.header_len.unwrap();
        let head: Value = serde_json::from_slice(&e.body[..n]).unwrap();
        assert_eq!(head["model_version"], "3");
        assert_eq!(head["outputs"][0]["data"], json!([0.75, 0.25, 0.25, 0.75]));
        assert_eq!(head["outputs"][0]["shape"], json!([2, 2]));
        assert_eq!(head["outputs"][1]["parameters"]["binary_data_size"], 16);
        let labels: Vec<i64> = e.body[n..]
            .chunks(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(labels, vec![0, 1]);
        let all_json = Infer {
            id: Some("x".into()),
            x: vec![],
            outputs: vec![(OUT_LABEL, false)],
        };
        let e = encode_response("m", 3, &all_json, &p, 2);
        assert!(e.header_len.is_none());
        let v: Value = serde_json::from_slice(&e.body).unwrap();
        assert_eq!(v["id"], "x");
    }

    #[test]
    fn a_bytes_input_carries_the_categorical_features_as_json_or_binary() {
        let code = crate::domain::category_code;
        let json = r#"{"inputs": [{"name": "input", "datatype": "FP32", "shape": [2, 2], "data": [1, 2, 3, 4]},
            {"name": "categorical", "datatype": "BYTES", "shape": [2, 1], "data": ["pro", "free"]}]}"#;
        // Features: numeric, categorical, numeric.
        let r = parse_infer_with(json.as_bytes(), None, 3, &[1], 10).unwrap();
        assert_eq!(r.x, vec![1.0, code("pro"), 2.0, 3.0, code("free"), 4.0]);
        // Binary: the categorical input first, then the numbers.
        let head = r#"{"inputs": [{"name": "categorical", "datatype": "BYTES", "shape": [2, 1], "parameters": {"binary_data_size": 15}},
            {"name": "input", "datatype": "FP32", "shape": [2, 2], "parameters": {"binary_data_size": 16}}]}"#;
        let mut body = head.as_bytes().to_vec();
        for t in ["pro", "free"] {
            body.extend((t.len() as u32).to_le_bytes());
            body.extend(t.as_bytes());
        }
        [1f32, 2.0, 3.0, 4.0]
            .iter()
            .for_each(|v| body.extend(v.to_le_bytes()));
        let b = parse_infer_with(&body, Some(head.len()), 3, &[1], 10).unwrap();
        assert_eq!(b.x, r.x);
        let meta = model_metadata("m", 1, (3, 1), 2);
        assert_eq!(meta["inputs"][1]["datatype"], "BYTES");
        assert_eq!(meta["inputs"][0]["shape"], json!([-1, 2]));
        for (body, says) in [
            (json.replace(r#""pro", "free""#, "5, 6"), "must be strings"),
            (json.replace("[2, 1]", "[3, 1]"), "different numbers of rows"),
            (json.replace(r#",
            {"name": "categorical", "datatype": "BYTES", "shape": [2, 1], "data": ["pro", "free"]}"#, ""), "takes 2 input(s)"),
        ] {
            let err = parse_infer_with(body.as_bytes(), None, 3, &[1], 10).map(|_| ()).unwrap_err();
            assert!(err.contains(says), "{body}: {err}");
        }
    }

    #[test]
    fn every_bad_request_says_why() {
        let bin_head = r#"{"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 2], "parameters": {"binary_data_size": 8}}]}"#;
        for (body, header_len, says) in [
            ("nope".to_string(), None, "not valid JSON"),
            (r#"{"inputs": []}"#.into(), None, "takes 1 input(s)"),
            (
                json_req("[1, 2]", "[1, 2]").replace("\"input\"", "\"x\""),
                None,
                "unknown input `x`",
            ),
            (
                json_req("[1, 2]", "[1, 2]").replace("FP32", "FP64"),
                None,
                "datatype FP64",
            ),
            (json_req("[1, 3]", "[1, 2, 3]"), None, "shape [1, 3]"),
            (json_req("[2]", "[1, 2]"), None, "shape [2]"),
            (json_req("[0, 2]", "[]"), None, "rows ≥ 1"),
            (json_req("[1, 2]", "[1]"), None, "has 1 values"),
            (json_req("[1, 2]", "[1, 2, 3]"), None, "more than the 2"),
            (json_req("[1, 2]", "[1, \"a\"]"), None, "must be numbers"),
            (json_req("[1, 2]", "[1, 1e300]"), None, "not finite"),
            (
                json_req("[20, 2]", &format!("[{}]", vec!["1"; 40].join(","))),
                None,
                "serve.max_rows",
            ),
            (
                json_req("[1, 2]", "[1, 2]")
                    .replace("]}]}", "]}], \"outputs\": [{\"name\": \"logits\"}]}"),
                None,
                "unknown output `logits`",
            ),
            (bin_head.into(), Some(bin_head.len()), "carries 0 bytes"),
            (
                bin_head.into(),
                Some(bin_head.len() + 5),
                "Inference-Header-Content-Length",
            ),
        ] {
            let err = parse_infer(body.as_bytes(), header_len, 2, 10)
                .map(|_| ())
                .expect_err(&body);
            assert!(err.contains(says), "{body}: {err}");
        }
        let mut nan = bin_head.as_bytes().to_vec();
        nan.extend_from_slice(&1f32.to_le_bytes());
        nan.extend_from_slice(&f32::NAN.to_le_bytes());
        let err = parse_infer(&nan, Some(bin_head.len()), 2, 10)
            .map(|_| ())
            .unwrap_err();
        assert!(err.contains("row 0, feature 1) is not finite"), "{err}");
    }
}
