//! A categorical feature's value as a number: its *code*, the first 24 bits of the MD5 of
//! its text, exact as an `f32` (below 2^24). The code of a value is the same wherever it is
//! computed, with no dictionary to keep: PostgreSQL computes it in the poll
//! ([`sql_code`]: `md5(col::text)`), driftd for a CSV, Parquet or HTTP value
//! ([`category_code`]), and Python in the export check (`hashlib.md5`). So the core keeps
//! seeing one `f32` per feature, and only the model (its vocabulary, see
//! `train::encoding`) and the categorical drift statistics treat codes as categories.
//!
//! Integers, booleans and enum labels are read as the text PostgreSQL gives them (`3`,
//! `true`, the label). Two different values share a code with a chance of about n²/2²⁵ for n
//! distinct values (0.03 % for 100 of them); they are one category then.

use md5::{Digest, Md5};

/// The code of `text`: the first three bytes of its MD5, big-endian.
pub fn category_code(text: &str) -> f32 {
    let d = Md5::digest(text.as_bytes());
    (u32::from(d[0]) << 16 | u32::from(d[1]) << 8 | u32::from(d[2])) as f32
}

/// `expr` (a quoted column or an element) as its code in SQL, `float8` (NULL stays NULL).
pub fn sql_code(expr: &str) -> String {
    format!("(('x' || substr(md5(({expr})::text), 1, 6))::bit(24)::int)::float8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_first_24_bits_of_md5() {
        // md5("") = d41d8cd98f00b204e9800998ecf8427e; md5("3") = eccbc87e4b5ce2fe28308fd9f2a7baf3.
        assert_eq!(category_code(""), 0xd41d8c as f32);
        assert_eq!(category_code("3"), 0xeccbc8 as f32);
        assert_ne!(category_code("basic"), category_code("pro"));
        assert!(category_code("basic") < 16_777_216.0);
    }
}
