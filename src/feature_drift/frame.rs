//! The reference sample as a polars [`DataFrame`] (one `Float64` column per feature, named
//! after it), and what each check needs from it: the sorted column and its quantiles.
//!
//! The recent window is not put in a frame: it is transposed and radix-sorted by hand
//! (`stats::sort_f32`). Sorting is the bulk of a check, and polars is built at
//! `opt-level = 0` in the dev profile (see `Cargo.toml`): on a million-row `f32` column its
//! sort took 103 ms, `sort_unstable_by(total_cmp)` 75 ms and the radix sort 27 ms (the
//! `#[ignore]`d `polars_sort_speed` test measures them).

use polars::prelude::*;

use super::ReferenceSample;

/// One reference feature, ready for comparisons: ascending values and bin quantiles.
pub(crate) struct ReferenceColumn {
    pub sorted: Vec<f64>,
    /// Linear-interpolation quantiles at `k / bins`, `k = 0 ..= bins` (NumPy's default
    /// `method='linear'`: `(n - 1) q` as the fractional index).
    pub quantiles: Vec<f64>,
}

/// The sample as a frame, `-0.0` folded into `+0.0` so that ties compare as SciPy's do.
pub(crate) fn reference_frame(sample: &ReferenceSample) -> PolarsResult<DataFrame> {
    let nf = sample.n_features;
    let n = sample.n_rows();
    let columns = (0..nf)
        .map(|f| {
            let values: Vec<f64> = (0..n)
                .map(|r| f64::from(sample.rows[r * nf + f]) + 0.0)
                .collect();
            Column::new(sample.feature_names[f].as_str().into(), values)
        })
        .collect();
    DataFrame::new(n, columns)
}

/// Every column of the frame, sorted, with its quantiles at `k / bins`.
pub(crate) fn reference_columns(df: &DataFrame, bins: usize) -> PolarsResult<Vec<ReferenceColumn>> {
    let probs: Vec<f64> = (0..=bins).map(|k| k as f64 / bins as f64).collect();
    df.columns()
        .iter()
        .map(|col| {
            let ca = col.f64()?;
            let quantiles = ca
                .quantiles(&probs, QuantileMethod::Linear)?
                .into_iter()
                .map(|q| q.ok_or_else(|| polars_err!(ComputeError: "empty reference column")))
                .collect::<PolarsResult<Vec<f64>>>()?;
            let sorted = ca.sort(false).cont_slice()?.to_vec();
            Ok(ReferenceColumn { sorted, quantiles })
        })
        .collect()
}
