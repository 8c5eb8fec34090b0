//! The feature column straight from PostgreSQL's binary wire format. Every labelled row's
//! features pass through here, so a `float8[]` is parsed in one pass into one allocation,
//! where the generic array decoder checks the type and builds a value for every element.

use sqlx::error::BoxDynError;
use sqlx::postgres::{PgHasArrayType, PgTypeInfo, PgValueFormat, PgValueRef};
use sqlx::{Decode, Postgres, Type};

/// A one-dimensional `float8[]` (elements may be NULL). The poll casts the feature column to
/// `float8[]`, so this is the only element type it meets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeatureArray(pub Vec<Option<f64>>);

/// `float8`'s type oid.
const FLOAT8_OID: u32 = 701;

impl Type<Postgres> for FeatureArray {
    fn type_info() -> PgTypeInfo {
        f64::array_type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <Vec<Option<f64>> as Type<Postgres>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Postgres> for FeatureArray {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        if value.format() == PgValueFormat::Text {
            return Ok(FeatureArray(<Vec<Option<f64>>>::decode(value)?));
        }
        parse_binary(value.as_bytes()?).map(FeatureArray)
    }
}

/// Reads a big-endian `i32` at `at`.
fn be_i32(bytes: &[u8], at: usize) -> Result<i32, BoxDynError> {
    let b = bytes.get(at..at + 4).ok_or("float8[]: truncated array")?;
    Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// PostgreSQL's binary array: `ndim`, a has-NULLs flag, the element oid, `(length, lower
/// bound)` per dimension, then each element as a length (`-1`: NULL) and its bytes.
fn parse_binary(bytes: &[u8]) -> Result<Vec<Option<f64>>, BoxDynError> {
    let ndim = be_i32(bytes, 0)?;
    let elem = be_i32(bytes, 8)? as u32;
    if ndim == 0 {
        return Ok(Vec::new());
    }
    if ndim != 1 {
        return Err(format!("float8[]: expected one dimension, got {ndim}").into());
    }
    if elem != FLOAT8_OID {
        return Err(format!("float8[]: element type oid {elem}, expected {FLOAT8_OID}").into());
    }
    let len = usize::try_from(be_i32(bytes, 12)?).map_err(|_| "float8[]: negative length")?;
    let mut at = 20;
    // At most one element per four bytes left: a corrupt length cannot allocate much.
    let mut out = Vec::with_capacity(len.min(bytes.len() / 4));
    for _ in 0..len {
        match be_i32(bytes, at)? {
            -1 => {
                out.push(None);
                at += 4;
            }
            8 => {
                let b = bytes
                    .get(at + 4..at + 12)
                    .ok_or("float8[]: truncated element")?;
                out.push(Some(f64::from_be_bytes(b.try_into().expect("8 bytes"))));
                at += 12;
            }
            n => return Err(format!("float8[]: element of {n} bytes").into()),
        }
    }
    if at != bytes.len() {
        return Err("float8[]: bytes after the last element".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What PostgreSQL sends for a one-dimensional `float8[]`.
    fn wire(elems: &[Option<f64>]) -> Vec<u8> {
        let mut b = Vec::new();
        let has_null = elems.iter().any(Option::is_none);
        for v in [
            1i32,
            i32::from(has_null),
            FLOAT8_OID as i32,
            elems.len() as i32,
            1,
        ] {
            b.extend(v.to_be_bytes());
        }
        for e in elems {
            match e {
                None => b.extend((-1i32).to_be_bytes()),
                Some(x) => {
                    b.extend(8i32.to_be_bytes());
                    b.extend(x.to_be_bytes());
                }
            }
        }
        b
    }

    #[test]
    fn parses_values_nulls_and_specials_exactly() {
        let elems = [
            Some(1.5),
            None,
            Some(-0.0),
            Some(f64::MAX),
            Some(f64::NAN),
            Some(f64::NEG_INFINITY),
            Some(5e-324),
        ];
        let got = parse_binary(&wire(&elems)).unwrap();
        let bits = |v: &[Option<f64>]| v.iter().map(|x| x.map(f64::to_bits)).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&elems));
        // '{}' is zero dimensions.
        let empty: Vec<u8> = [0i32, 0, FLOAT8_OID as i32]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        assert_eq!(parse_binary(&empty).unwrap(), Vec::<Option<f64>>::new());
    }

    #[test]
    fn malformed_arrays_are_errors_not_panics() {
        let good = wire(&[Some(1.0), Some(2.0)]);
        for cut in 0..good.len() {
            assert!(parse_binary(&good[..cut]).is_err(), "truncated at {cut}");
        }
        let mut extra = good.clone();
        extra.push(0);
        assert!(parse_binary(&extra).is_err());
        let mut two_dims = good.clone();
        two_dims[3] = 2;
        assert!(parse_binary(&two_dims).is_err());
        let mut int4 = good.clone();
        int4[8..12].copy_from_slice(&23i32.to_be_bytes());
        assert!(parse_binary(&int4).is_err());
        let mut huge = good;
        huge[12..16].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(parse_binary(&huge).is_err());
    }
}
