//! Per-feature data drift: compares the recent window of a model's inputs with a bounded
//! reference sample (kept from the training data), feature by feature, so that a shift in the
//! inputs raises an alert before the labels that would show the accuracy drop arrive.
//!
//! Pure: no I/O, no clock. The daemon keeps a [`ReferenceSample`] with the model, gathers the
//! last [`FeatureDriftConfig::window_rows`] rows every [`FeatureDriftConfig::check_interval`]
//! and calls [`check`].
//!
//! # Statistics (per feature)
//! All computed in `f64` on the `f32` inputs, each matching SciPy 1.17 to 1e-6 on the same
//! samples (`scripts/feature_drift_reference.py`, run by the `scipy_conformance` tests):
//! - **PSI**, population stability index, `Σ (q_i - p_i) ln(q_i / p_i)` over the reference's
//!   quantile bins, `p` the reference's and `q` the recent window's proportions; a bin empty on
//!   one side counts as [`PSI_EPSILON`] (`1e-4`, as in Evidently) instead of zero.
//! - **KS**, the two-sample Kolmogorov–Smirnov statistic `max |F_ref - F_recent|` and its
//!   two-sided p-value exactly as `scipy.stats.ks_2samp(reference, recent)` (default
//!   `method='auto'`): the exact distribution when both sizes are at most 10 000, the
//!   asymptotic one (`kstwo.sf(D, round(n m / (n + m)))`) otherwise; see `ks.rs`. In the
//!   exact branch the statistic is SciPy's rounded `h / lcm(n, m)`.
//! - **JS**, the Jensen–Shannon distance with base-2 logarithms (in `[0, 1]`), as
//!   `scipy.spatial.distance.jensenshannon(p, q, base=2)` on the two bin histograms (no epsilon
//!   needed).
//! - **Wasserstein**, the 1-D earth mover's distance `∫ |F_ref - F_recent|`, as
//!   `scipy.stats.wasserstein_distance(reference, recent)`, in the feature's units.
//!
//! # Bins
//! From the reference's quantiles at `k / bins`, `k = 0 ..= bins` (linear interpolation,
//! NumPy's default), duplicates removed: `e_0 < e_1 < … < e_m`. The bins are
//! `(-inf, e_0)`, `[e_0, e_0]`, `(e_0, e_1]`, …, `(e_{m-1}, e_m]`, `(e_m, +inf)`: for
//! continuous data, `bins` bins of about equal reference mass, the reference's minimum alone,
//! and one bin below and one above the reference's range (empty in the reference, so recent
//! values outside it count). Ties merge quantiles, so a feature with few distinct values gets
//! fewer bins, and since the bins are right-closed and the minimum has its own, each of its
//! frequent values lands in a bin of its own (a 0/1 feature: `{0}`, `(0, 1]`). A constant
//! reference `c` gets `(-inf, c)`, `[c, c]`, `(c, +inf)`.
//!
//! # Drift
//! A feature is `drifted` when any configured threshold is crossed:
//! `psi > psi_threshold`, `ks_pvalue < ks_pvalue_threshold`, `js > js_threshold`, or
//! (when set) `wasserstein > wasserstein_threshold`. The KS p-value tends to zero for any
//! difference once the windows are large; keep `window_rows` moderate (the default 5 000) or
//! lower `ks_pvalue_threshold` if that is too sensitive.
//!
//! # Edge cases
//! - Fewer than `min_rows` rows on either side (an empty window included) is
//!   [`FeatureDriftError::NotEnoughData`], never a NaN.
//! - Constant features and ties are defined: identical constants give PSI = KS = JS =
//!   Wasserstein = 0 and p = 1; a constant reference `c` against anything else gives finite
//!   values (e.g. everything moved off `c` gives PSI = `2 (1 - 1e-4) ln 1e4` ≈ 18.42, KS = 1,
//!   JS = 1, Wasserstein = the mean distance to `c`).
//! - Non-finite values are [`FeatureDriftError::NonFinite`] (the outcomes reader rejects such
//!   rows before they reach here). `-0.0` and `0.0` are the same value.

mod categorical;
mod frame;
mod ks;
pub(crate) use ks::prob_outside_square;
mod stats;

#[cfg(test)]
mod scipy_conformance;

use std::collections::HashSet;

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::span::Span;

pub use stats::PSI_EPSILON;

/// Settings of the per-feature drift check (unknown keys are rejected; every key has a default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeatureDriftConfig {
    /// Quantile bins of the reference for PSI and JS (default 10; 2 to 1 000).
    pub bins: usize,
    /// A feature drifted when its PSI exceeds this (default 0.2: the usual "significant shift").
    pub psi_threshold: f64,
    /// … or its KS p-value is below this (default 0.01; 0 turns the KS test off).
    pub ks_pvalue_threshold: f64,
    /// … or its Jensen–Shannon distance (base 2, in [0, 1]) exceeds this (default 0.1; 1 turns
    /// it off).
    pub js_threshold: f64,
    /// … or its Wasserstein distance, in the feature's units, exceeds this (default: unset, as
    /// no single value suits every feature's scale).
    pub wasserstein_threshold: Option<f64>,
    /// Fewer rows than this on either side and no check is made (default 100).
    pub min_rows: usize,
    /// Rows kept from the training data as the reference, sampled uniformly (default 5 000;
    /// at most 1 000 000).
    pub reference_sample_rows: usize,
    /// Most recent rows compared with the reference at each check (default 5 000).
    pub window_rows: usize,
    /// How often to check, `"90s"`, `"5m"`, `"1h"` (default `"5m"`).
    pub check_interval: Span,
    /// Request an update of the model when at least this fraction (0–1] of the features drifted
    /// (default: unset, alert only).
    pub drifted_ratio_trigger: Option<f64>,
    /// A categorical feature drifted when its chi-square p-value is below this (default 0.01;
    /// 0 turns the test off) …
    pub chi2_pvalue_threshold: f64,
    /// … or more than this share of the recent values is in no reference category (default
    /// 0.05).
    pub unseen_share_threshold: f64,
}

impl Default for FeatureDriftConfig {
    fn default() -> Self {
        FeatureDriftConfig {
            bins: 10,
            psi_threshold: 0.2,
            ks_pvalue_threshold: 0.01,
            js_threshold: 0.1,
            wasserstein_threshold: None,
            min_rows: 100,
            reference_sample_rows: 5_000,
            window_rows: 5_000,
            check_interval: Span::of(300, "5m"),
            drifted_ratio_trigger: None,
            chi2_pvalue_threshold: 0.01,
            unseen_share_threshold: 0.05,
        }
    }
}

/// Most rows a reference sample may keep (it is stored with the model's state).
pub const MAX_REFERENCE_SAMPLE_ROWS: usize = 1_000_000;

impl FeatureDriftConfig {
    /// Checks every key; returns the offending key and why.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let err = |k: &str, r: String| Err((k.to_string(), r));
        if !(2..=1000).contains(&self.bins) {
            return err("bins", format!("{} is not between 2 and 1000", self.bins));
        }
        if !(self.psi_threshold.is_finite() && self.psi_threshold > 0.0) {
            return err(
                "psi_threshold",
                format!("{} is not a positive number", self.psi_threshold),
            );
        }
        if !(0.0..1.0).contains(&self.ks_pvalue_threshold) {
            return err(
                "ks_pvalue_threshold",
                format!("{} is not in [0, 1)", self.ks_pvalue_threshold),
            );
        }
        if !(self.js_threshold > 0.0 && self.js_threshold <= 1.0) {
            return err(
                "js_threshold",
                format!("{} is not in (0, 1]", self.js_threshold),
            );
        }
        if let Some(w) = self.wasserstein_threshold {
            if !(w.is_finite() && w > 0.0) {
                return err(
                    "wasserstein_threshold",
                    format!("{w} is not a positive number"),
                );
            }
        }
        if self.min_rows == 0 {
            return err("min_rows", "must be at least 1".into());
        }
        if self.reference_sample_rows < self.min_rows
            || self.reference_sample_rows > MAX_REFERENCE_SAMPLE_ROWS
        {
            return err(
                "reference_sample_rows",
                format!(
                    "{} is not between min_rows ({}) and {MAX_REFERENCE_SAMPLE_ROWS}",
                    self.reference_sample_rows, self.min_rows
                ),
            );
        }
        if self.window_rows < self.min_rows {
            return err(
                "window_rows",
                format!("{} is below min_rows ({})", self.window_rows, self.min_rows),
            );
        }
        if !(0.0..1.0).contains(&self.chi2_pvalue_threshold) {
            return err(
                "chi2_pvalue_threshold",
                format!("{} is not in [0, 1)", self.chi2_pvalue_threshold),
            );
        }
        if !(self.unseen_share_threshold > 0.0 && self.unseen_share_threshold <= 1.0) {
            return err(
                "unseen_share_threshold",
                format!("{} is not in (0, 1]", self.unseen_share_threshold),
            );
        }
        if let Some(r) = self.drifted_ratio_trigger {
            if !(r > 0.0 && r <= 1.0) {
                return err("drifted_ratio_trigger", format!("{r} is not in (0, 1]"));
            }
        }
        Ok(())
    }
}

/// A bounded sample of the training inputs, row-major, stored with the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceSample {
    pub n_features: usize,
    /// Row-major, `n_rows() * n_features` values.
    pub rows: Vec<f32>,
    /// One per feature (unique); [`from_rows`](Self::from_rows) names them `f0`, `f1`, ….
    pub feature_names: Vec<String>,
    /// The positions of categorical features (their values are codes), compared by category
    /// frequencies (see `categorical.rs`).
    #[serde(default)]
    pub categorical: Vec<usize>,
}

impl ReferenceSample {
    /// Keeps at most `max_rows` of the rows of `x` (row-major, `n_features` per row): all of
    /// them when there are that few, otherwise a uniform sample without replacement drawn with
    /// a `StdRng` seeded by `seed` (the same data and seed give the same sample), in their
    /// original order.
    ///
    /// # Panics
    /// When `n_features` is 0 or `x.len()` is not a multiple of it (a caller's bug: rows come
    /// from validated datasets).
    pub fn from_rows(x: &[f32], n_features: usize, max_rows: usize, seed: u64) -> Self {
        assert!(
            n_features > 0,
            "a reference sample needs at least one feature"
        );
        assert_eq!(
            x.len() % n_features,
            0,
            "{} values are not rows of {n_features} features",
            x.len()
        );
        let n = x.len() / n_features;
        let rows = if n <= max_rows {
            x.to_vec()
        } else {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut idx = rand::seq::index::sample(&mut rng, n, max_rows).into_vec();
            idx.sort_unstable();
            let mut rows = Vec::with_capacity(max_rows * n_features);
            for i in idx {
                rows.extend_from_slice(&x[i * n_features..(i + 1) * n_features]);
            }
            rows
        };
        ReferenceSample {
            n_features,
            rows,
            feature_names: (0..n_features).map(|i| format!("f{i}")).collect(),
            categorical: Vec::new(),
        }
    }

    /// Marks the features at `positions` categorical.
    pub fn with_categorical(mut self, positions: Vec<usize>) -> Self {
        self.categorical = positions;
        self
    }

    /// Names the features (as many names as features, all different).
    pub fn with_feature_names(mut self, names: Vec<String>) -> Result<Self, FeatureDriftError> {
        self.feature_names = names;
        self.check_shape()?;
        Ok(self)
    }

    /// Rows in the sample (whole rows; see [`check`] for the shape checks).
    pub fn n_rows(&self) -> usize {
        self.rows.len().checked_div(self.n_features).unwrap_or(0)
    }

    fn check_shape(&self) -> Result<(), FeatureDriftError> {
        if self.n_features == 0 {
            return Err(FeatureDriftError::NoFeatures);
        }
        if self.feature_names.len() != self.n_features {
            return Err(FeatureDriftError::FeatureNames {
                reason: format!(
                    "{} names for {} features",
                    self.feature_names.len(),
                    self.n_features
                ),
            });
        }
        let mut seen = HashSet::new();
        if let Some(dup) = self.feature_names.iter().find(|n| !seen.insert(n.as_str())) {
            return Err(FeatureDriftError::FeatureNames {
                reason: format!("`{dup}` appears twice"),
            });
        }
        if self.rows.len() % self.n_features != 0 {
            return Err(FeatureDriftError::Shape {
                which: "reference",
                len: self.rows.len(),
                n_features: self.n_features,
            });
        }
        Ok(())
    }
}

/// One feature's comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureStat {
    pub feature: String,
    pub psi: f64,
    /// Two-sample KS statistic, in [0, 1].
    pub ks: f64,
    pub ks_pvalue: f64,
    /// Jensen–Shannon distance, base 2, in [0, 1].
    pub js: f64,
    pub wasserstein: f64,
    /// Some configured threshold was crossed (see the module docs).
    pub drifted: bool,
    /// A categorical feature's chi-square statistic, its p-value and the share of recent
    /// values in no reference category (`None` for a numeric feature; a categorical one has
    /// no KS or Wasserstein: 0, p-value 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chi2: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chi2_pvalue: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unseen_share: Option<f64>,
}

/// A whole check: every feature, in the reference's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDriftReport {
    pub features: Vec<FeatureStat>,
    /// Drifted features / features.
    pub drifted_ratio: f64,
    pub n_reference: usize,
    pub n_recent: usize,
}

impl FeatureDriftReport {
    /// The features that drifted.
    pub fn drifted(&self) -> impl Iterator<Item = &FeatureStat> {
        self.features.iter().filter(|f| f.drifted)
    }

    /// Whether this report should request an update of the model: `drifted_ratio_trigger` is
    /// set and `drifted_ratio >= drifted_ratio_trigger`.
    pub fn triggers_update(&self, cfg: &FeatureDriftConfig) -> bool {
        cfg.drifted_ratio_trigger
            .is_some_and(|t| self.drifted_ratio >= t)
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FeatureDriftError {
    #[error("not enough {which} rows for a feature drift check: {have}, need at least {need}")]
    NotEnoughData {
        have: usize,
        need: usize,
        which: &'static str,
    },
    #[error("{which} rows: {len} values is not a whole number of rows of {n_features} features")]
    Shape {
        which: &'static str,
        len: usize,
        n_features: usize,
    },
    #[error("the reference sample has no features")]
    NoFeatures,
    #[error("reference feature names: {reason}")]
    FeatureNames { reason: String },
    #[error("{which} row {row}, feature `{feature}`: {value} is not a finite number")]
    NonFinite {
        which: &'static str,
        row: usize,
        feature: String,
        value: f32,
    },
    #[error("feature drift configuration, `{key}`: {reason}")]
    Config { key: String, reason: String },
    #[error("feature drift: building the reference frame failed: {0}")]
    Frame(String),
}

/// Compares `recent` (row-major, `reference.n_features` per row; all of it is used) with the
/// reference, feature by feature. See the module docs for the statistics.
///
/// Errors: an invalid `cfg`, a malformed reference, `recent` not whole rows, fewer than
/// `cfg.min_rows` rows on either side, or a non-finite value.
pub fn check(
    reference: &ReferenceSample,
    recent: &[f32],
    cfg: &FeatureDriftConfig,
) -> Result<FeatureDriftReport, FeatureDriftError> {
    cfg.validate()
        .map_err(|(key, reason)| FeatureDriftError::Config { key, reason })?;
    reference.check_shape()?;
    let nf = reference.n_features;
    if recent.len() % nf != 0 {
        return Err(FeatureDriftError::Shape {
            which: "recent",
            len: recent.len(),
            n_features: nf,
        });
    }
    let (n_ref, n_rec) = (reference.n_rows(), recent.len() / nf);
    for (which, have) in [("reference", n_ref), ("recent", n_rec)] {
        if have < cfg.min_rows {
            return Err(FeatureDriftError::NotEnoughData {
                have,
                need: cfg.min_rows,
                which,
            });
        }
    }
    first_non_finite(reference, "reference", &reference.rows)?;

    let recent_cols = transpose(recent, nf);
    if recent_cols.iter().any(|c| c.iter().any(|x| !x.is_finite())) {
        first_non_finite(reference, "recent", recent)?;
    }
    let df =
        frame::reference_frame(reference).map_err(|e| FeatureDriftError::Frame(e.to_string()))?;
    let ref_cols = frame::reference_columns(&df, cfg.bins)
        .map_err(|e| FeatureDriftError::Frame(e.to_string()))?;

    let ref_by_feature = transpose(&reference.rows, nf);
    let features: Vec<FeatureStat> = ref_cols
        .iter()
        .zip(recent_cols)
        .zip(&reference.feature_names)
        .enumerate()
        .map(|(i, ((rc, mut col), name))| {
            if reference.categorical.contains(&i) {
                return categorical_stat(name, &ref_by_feature[i], &col, cfg);
            }
            stats::sort_f32(&mut col);
            feature_stat(name, rc, &col, cfg)
        })
        .collect();
    let drifted = features.iter().filter(|f| f.drifted).count();
    Ok(FeatureDriftReport {
        drifted_ratio: drifted as f64 / nf as f64,
        features,
        n_reference: n_ref,
        n_recent: n_rec,
    })
}

/// One feature: `rc` the prepared reference column, `recent` sorted ascending.
fn feature_stat(
    name: &str,
    rc: &frame::ReferenceColumn,
    recent: &[f32],
    cfg: &FeatureDriftConfig,
) -> FeatureStat {
    let (lower, upper) = stats::bin_bounds(&rc.quantiles);
    let ref_counts = stats::bin_counts(&rc.sorted, |x| x, lower, &upper);
    let rec_counts = stats::bin_counts(recent, f64::from, lower, &upper);
    let psi = stats::psi(&ref_counts, &rec_counts);
    let js = stats::js_distance(&ref_counts, &rec_counts);
    let (d, wasserstein) = stats::ks_and_wasserstein(&rc.sorted, recent);
    let (ks, ks_pvalue) = ks::ks_2samp_pvalue(d, rc.sorted.len(), recent.len());
    let drifted = psi > cfg.psi_threshold
        || ks_pvalue < cfg.ks_pvalue_threshold
        || js > cfg.js_threshold
        || cfg.wasserstein_threshold.is_some_and(|t| wasserstein > t);
    FeatureStat {
        feature: name.to_string(),
        psi,
        ks,
        ks_pvalue,
        js,
        wasserstein,
        drifted,
        chi2: None,
        chi2_pvalue: None,
        unseen_share: None,
    }
}

/// One categorical feature (see `categorical.rs`): χ², PSI, JS and the unseen share.
fn categorical_stat(
    name: &str,
    reference: &[f32],
    recent: &[f32],
    cfg: &FeatureDriftConfig,
) -> FeatureStat {
    let c = categorical::compare(reference, recent);
    let drifted = c.psi > cfg.psi_threshold
        || c.js > cfg.js_threshold
        || c.chi2_pvalue < cfg.chi2_pvalue_threshold
        || c.unseen_share > cfg.unseen_share_threshold;
    FeatureStat {
        feature: name.to_string(),
        psi: c.psi,
        ks: 0.0,
        ks_pvalue: 1.0,
        js: c.js,
        wasserstein: 0.0,
        drifted,
        chi2: Some(c.chi2),
        chi2_pvalue: Some(c.chi2_pvalue),
        unseen_share: Some(c.unseen_share),
    }
}

/// Row-major `x` into one column per feature, `-0.0` folded into `+0.0`.
fn transpose(x: &[f32], nf: usize) -> Vec<Vec<f32>> {
    let n = x.len() / nf;
    let mut cols: Vec<Vec<f32>> = (0..nf).map(|_| Vec::with_capacity(n)).collect();
    for row in x.chunks_exact(nf) {
        for (c, &v) in cols.iter_mut().zip(row) {
            c.push(v + 0.0);
        }
    }
    cols
}

fn first_non_finite(
    reference: &ReferenceSample,
    which: &'static str,
    x: &[f32],
) -> Result<(), FeatureDriftError> {
    let nf = reference.n_features;
    match x.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(FeatureDriftError::NonFinite {
            which,
            row: i / nf,
            feature: reference.feature_names[i % nf].clone(),
            value: x[i],
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(min_rows: usize) -> FeatureDriftConfig {
        FeatureDriftConfig {
            min_rows,
            ..FeatureDriftConfig::default()
        }
    }

    fn sample(cols: &[Vec<f32>]) -> ReferenceSample {
        let n = cols[0].len();
        let rows: Vec<f32> = (0..n)
            .flat_map(|r| cols.iter().map(move |c| c[r]))
            .collect();
        ReferenceSample::from_rows(&rows, cols.len(), usize::MAX, 0)
    }

    fn rows(cols: &[Vec<f32>]) -> Vec<f32> {
        let n = cols[0].len();
        (0..n)
            .flat_map(|r| cols.iter().map(move |c| c[r]))
            .collect()
    }

    #[test]
    fn defaults_validate_and_parse() {
        let c = FeatureDriftConfig::default();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.check_interval.secs(), 300);
        let c: FeatureDriftConfig =
            toml::from_str("bins = 20\nwasserstein_threshold = 0.5").unwrap();
        assert_eq!(
            (c.bins, c.wasserstein_threshold, c.min_rows),
            (20, Some(0.5), 100)
        );
        assert!(toml::from_str::<FeatureDriftConfig>("binz = 3").is_err());
    }

    #[test]
    fn validation_names_the_key() {
        let bad = |f: &dyn Fn(&mut FeatureDriftConfig)| {
            let mut c = FeatureDriftConfig::default();
            f(&mut c);
            c.validate().unwrap_err().0
        };
        assert_eq!(bad(&|c| c.bins = 1), "bins");
        assert_eq!(bad(&|c| c.psi_threshold = f64::NAN), "psi_threshold");
        assert_eq!(bad(&|c| c.ks_pvalue_threshold = 1.0), "ks_pvalue_threshold");
        assert_eq!(bad(&|c| c.js_threshold = 0.0), "js_threshold");
        assert_eq!(
            bad(&|c| c.wasserstein_threshold = Some(-1.0)),
            "wasserstein_threshold"
        );
        assert_eq!(bad(&|c| c.min_rows = 0), "min_rows");
        assert_eq!(
            bad(&|c| c.reference_sample_rows = 10),
            "reference_sample_rows"
        );
        assert_eq!(bad(&|c| c.window_rows = 10), "window_rows");
        assert_eq!(
            bad(&|c| c.drifted_ratio_trigger = Some(0.0)),
            "drifted_ratio_trigger"
        );
        let err = check(
            &sample(&[vec![0.0; 10]]),
            &[0.0; 10],
            &FeatureDriftConfig { bins: 0, ..cfg(1) },
        )
        .unwrap_err();
        assert!(matches!(err, FeatureDriftError::Config { ref key, .. } if key == "bins"));
    }

    #[test]
    fn reference_sampling_is_seeded_uniform_and_ordered() {
        let x: Vec<f32> = (0..10_000).flat_map(|i| [i as f32, -(i as f32)]).collect();
        let a = ReferenceSample::from_rows(&x, 2, 1000, 42);
        let b = ReferenceSample::from_rows(&x, 2, 1000, 42);
        let c = ReferenceSample::from_rows(&x, 2, 1000, 43);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!((a.n_rows(), a.rows.len()), (1000, 2000));
        assert_eq!(a.feature_names, ["f0", "f1"]);
        let firsts: Vec<f32> = a.rows.chunks(2).map(|r| r[0]).collect();
        // Whole rows, no duplicates, original order.
        assert!(a.rows.chunks(2).all(|r| r[1] == -r[0]));
        assert!(firsts.windows(2).all(|w| w[0] < w[1]));
        // Roughly uniform: the mean index is near 5000.
        let mean = firsts.iter().map(|&v| f64::from(v)).sum::<f64>() / 1000.0;
        assert!((mean - 5000.0).abs() < 400.0, "{mean}");
        // Fewer rows than max_rows: all kept.
        assert_eq!(
            ReferenceSample::from_rows(&x[..20], 2, 1000, 1).rows,
            x[..20]
        );
        // Serde round trip.
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<ReferenceSample>(&json).unwrap(), a);
    }

    #[test]
    fn empty_or_small_windows_are_not_enough_data() {
        let reference = sample(&[(0..200).map(|i| i as f32).collect()]);
        let err = check(&reference, &[], &cfg(100)).unwrap_err();
        assert_eq!(
            err,
            FeatureDriftError::NotEnoughData {
                have: 0,
                need: 100,
                which: "recent"
            }
        );
        assert_eq!(
            err.to_string(),
            "not enough recent rows for a feature drift check: 0, need at least 100"
        );
        let err = check(&reference, &[1.0; 99], &cfg(100)).unwrap_err();
        assert!(matches!(
            err,
            FeatureDriftError::NotEnoughData {
                have: 99,
                which: "recent",
                ..
            }
        ));
        let small = sample(&[vec![1.0; 50]]);
        let err = check(&small, &[1.0; 500], &cfg(100)).unwrap_err();
        assert!(matches!(
            err,
            FeatureDriftError::NotEnoughData {
                have: 50,
                which: "reference",
                ..
            }
        ));
        let empty = ReferenceSample {
            n_features: 1,
            rows: vec![],
            feature_names: vec!["x".into()],
            categorical: Vec::new(),
        };
        let err = check(&empty, &[1.0; 500], &cfg(1)).unwrap_err();
        assert!(matches!(
            err,
            FeatureDriftError::NotEnoughData {
                have: 0,
                which: "reference",
                ..
            }
        ));
    }

    #[test]
    fn malformed_input_is_an_error() {
        let reference = sample(&[vec![1.0; 10], vec![2.0; 10]]);
        let err = check(&reference, &[1.0; 21], &cfg(1)).unwrap_err();
        assert!(matches!(
            err,
            FeatureDriftError::Shape {
                which: "recent",
                len: 21,
                n_features: 2
            }
        ));
        let mut r = reference.clone();
        r.feature_names = vec!["a".into(), "a".into()];
        assert!(matches!(
            check(&r, &[1.0; 20], &cfg(1)),
            Err(FeatureDriftError::FeatureNames { .. })
        ));
        let mut recent = vec![1.0; 20];
        recent[7] = f32::NAN;
        let err = check(&reference, &recent, &cfg(1)).unwrap_err();
        assert!(
            matches!(err, FeatureDriftError::NonFinite { which: "recent", row: 3, ref feature, .. } if feature == "f1")
        );
        assert_eq!(
            err.to_string(),
            "recent row 3, feature `f1`: NaN is not a finite number"
        );
        let mut bad_ref = reference.clone();
        bad_ref.rows[0] = f32::INFINITY;
        assert!(matches!(
            check(&bad_ref, &[1.0; 20], &cfg(1)),
            Err(FeatureDriftError::NonFinite {
                which: "reference",
                row: 0,
                ..
            })
        ));
        assert!(reference
            .clone()
            .with_feature_names(vec!["only".into()])
            .is_err());
    }

    #[test]
    fn identical_windows_do_not_drift() {
        let a: Vec<f32> = (0..1000).map(|i| ((i * 37) % 1000) as f32 / 10.0).collect();
        let reference = sample(&[a.clone(), vec![3.0; 1000]]);
        let rep = check(&reference, &rows(&[a, vec![3.0; 1000]]), &cfg(100)).unwrap();
        assert_eq!(rep.n_reference, 1000);
        assert_eq!(rep.n_recent, 1000);
        assert_eq!(rep.drifted_ratio, 0.0);
        for f in &rep.features {
            assert_eq!(
                (f.psi, f.ks, f.ks_pvalue, f.js, f.wasserstein),
                (0.0, 0.0, 1.0, 0.0, 0.0)
            );
            assert!(!f.drifted);
        }
        assert_eq!(rep.features[1].feature, "f1");
    }

    #[test]
    fn constant_reference_is_defined() {
        let reference = sample(&[vec![2.0; 200]]);
        // All moved below the constant: PSI = 2 (1 - eps) ln(1/eps), KS = JS = 1.
        let rep = check(&reference, &[1.0; 300], &cfg(100)).unwrap();
        let f = &rep.features[0];
        let want_psi = 2.0 * (1.0 - PSI_EPSILON) * (1.0 / PSI_EPSILON).ln();
        assert!((f.psi - want_psi).abs() < 1e-12, "{}", f.psi);
        assert_eq!((f.ks, f.js, f.wasserstein), (1.0, 1.0, 1.0));
        assert!(f.ks_pvalue < 1e-50 && f.drifted);
        // Half on it, half above: PSI on bins [c,c] and (c, inf).
        let recent: Vec<f32> = (0..300)
            .map(|i| if i % 2 == 0 { 2.0 } else { 4.0 })
            .collect();
        let f = check(&reference, &recent, &cfg(100))
            .unwrap()
            .features
            .remove(0);
        let want_psi = (0.5 - 1.0) * 0.5f64.ln() + (0.5 - PSI_EPSILON) * (0.5 / PSI_EPSILON).ln();
        assert!((f.psi - want_psi).abs() < 1e-12);
        assert!((f.ks - 0.5).abs() < 1e-15 && (f.wasserstein - 1.0).abs() < 1e-12);
        assert!(f.psi.is_finite() && f.js.is_finite() && f.ks_pvalue.is_finite());
        // Constant recent against a spread reference.
        let spread = sample(&[(0..200).map(|i| i as f32).collect()]);
        let f = check(&spread, &[50.0; 200], &cfg(100))
            .unwrap()
            .features
            .remove(0);
        assert!(f.psi.is_finite() && f.js > 0.0 && f.ks > 0.7 && f.drifted);
    }

    #[test]
    fn thresholds_decide_drift() {
        // Reference uniform over 0..1000; recent shifted by 10 %: every statistic moves.
        let a: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        let b: Vec<f32> = (0..1000).map(|i| i as f32 + 100.0).collect();
        let reference = sample(&[a]);
        let base = check(&reference, &b, &cfg(100)).unwrap().features.remove(0);
        assert!((base.ks - 0.1).abs() < 1e-12);
        assert!((base.wasserstein - 100.0).abs() < 1e-9);
        assert!(base.drifted);
        let off = FeatureDriftConfig {
            psi_threshold: 1e9,
            ks_pvalue_threshold: 0.0,
            js_threshold: 1.0,
            ..cfg(100)
        };
        assert!(!check(&reference, &b, &off).unwrap().features[0].drifted);
        let only_w = FeatureDriftConfig {
            wasserstein_threshold: Some(99.0),
            ..off.clone()
        };
        assert!(check(&reference, &b, &only_w).unwrap().features[0].drifted);
        let only_ks = FeatureDriftConfig {
            ks_pvalue_threshold: base.ks_pvalue * 1.01,
            ..off.clone()
        };
        assert!(check(&reference, &b, &only_ks).unwrap().features[0].drifted);
        let only_psi = FeatureDriftConfig {
            psi_threshold: base.psi * 0.99,
            ..off.clone()
        };
        assert!(check(&reference, &b, &only_psi).unwrap().features[0].drifted);
        let only_js = FeatureDriftConfig {
            js_threshold: base.js * 0.99,
            ..off
        };
        assert!(check(&reference, &b, &only_js).unwrap().features[0].drifted);
    }

    #[test]
    fn drifted_ratio_and_trigger() {
        let a: Vec<f32> = (0..500).map(|i| i as f32).collect();
        let shifted: Vec<f32> = a.iter().map(|x| x + 250.0).collect();
        let reference = sample(&[a.clone(), a.clone(), a.clone(), a.clone()]);
        let recent = rows(&[a.clone(), shifted, a.clone(), a]);
        let rep = check(&reference, &recent, &cfg(100)).unwrap();
        assert_eq!(rep.drifted_ratio, 0.25);
        assert_eq!(
            rep.drifted()
                .map(|f| f.feature.as_str())
                .collect::<Vec<_>>(),
            ["f1"]
        );
        let mut c = cfg(100);
        assert!(!rep.triggers_update(&c));
        c.drifted_ratio_trigger = Some(0.25);
        assert!(rep.triggers_update(&c));
        c.drifted_ratio_trigger = Some(0.5);
        assert!(!rep.triggers_update(&c));
    }

    #[test]
    fn negative_zero_ties_with_zero() {
        let reference = sample(&[vec![0.0; 100]]);
        let rep = check(&reference, &[-0.0; 100], &cfg(100)).unwrap();
        assert_eq!(rep.features[0].ks, 0.0);
        assert_eq!(rep.features[0].psi, 0.0);
    }

    /// Not a check: how long polars (opt-level 0 in the dev profile) takes to sort a
    /// million-row column, next to `stats::sort_f32`. `cargo test … polars_sort_speed -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn polars_sort_speed() {
        use polars::prelude::*;
        use rand::Rng;
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let v: Vec<f32> = (0..1_000_000)
            .map(|_| rng.gen_range(-10.0f32..10.0))
            .collect();
        let t = std::time::Instant::now();
        let ca = Float32Chunked::from_vec("x".into(), v.clone());
        let sorted = ca.sort(false);
        let polars_s = t.elapsed().as_secs_f64();
        assert_eq!(sorted.len(), v.len());
        let mut w = v.clone();
        let t = std::time::Instant::now();
        w.sort_unstable_by(f32::total_cmp);
        let std_s = t.elapsed().as_secs_f64();
        let mut r = v;
        let t = std::time::Instant::now();
        stats::sort_f32(&mut r);
        let radix_s = t.elapsed().as_secs_f64();
        assert_eq!(r, w);
        eprintln!(
            "sort 1e6 f32: polars {:.1} ms, std sort_unstable {:.1} ms, radix {:.1} ms",
            polars_s * 1e3,
            std_s * 1e3,
            radix_s * 1e3
        );
    }
}
