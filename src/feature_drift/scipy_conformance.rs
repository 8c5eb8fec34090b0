//! Every statistic against SciPy on the same samples (`scripts/feature_drift_reference.py`,
//! run with the Python of `DRIFTD_PYTHON`, default `$HOME/.cache/driftd/venv/bin/python`,
//! which `scripts/setup.sh` installs). A missing Python fails the test: it is not skipped.
//!
//! The samples cover the exact KS branch (equal and unequal sizes), the asymptotic one (with
//! effective sizes above and below 140, so every method of `kstwo.sf` runs), ties, constant
//! features, `-0.0`, and values far from zero; `kstwo.sf` is also compared directly on a grid.

use std::path::PathBuf;
use std::process::Command;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use serde_json::json;

use super::{check, frame, ks, stats, FeatureDriftConfig, ReferenceSample};

/// Abs/rel tolerance of the statistics: `|a - b| <= 1e-6 max(1, |b|)`.
const TOL: f64 = 1e-6;

fn python() -> PathBuf {
    let p = std::env::var("DRIFTD_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/driftd/venv/bin/python")
        });
    assert!(
        p.exists(),
        "no Python with SciPy at {} (set DRIFTD_PYTHON or run scripts/setup.sh): the SciPy \
         conformance test cannot run",
        p.display()
    );
    p
}

fn run_reference(spec: &serde_json::Value) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("samples.json");
    std::fs::write(&input, serde_json::to_vec(spec).unwrap()).unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/feature_drift_reference.py"
    );
    let out = Command::new(python())
        .arg(script)
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[derive(Deserialize)]
struct Output {
    scipy: String,
    #[serde(default)]
    cases: Vec<CaseOut>,
    #[serde(default)]
    kstwo: Vec<f64>,
    #[serde(default)]
    categorical: Vec<CategoricalOut>,
}

#[derive(Deserialize)]
struct CategoricalOut {
    chi2: f64,
    chi2_pvalue: f64,
    psi: f64,
    js: f64,
    unseen_share: f64,
}

#[derive(Deserialize)]
struct CaseOut {
    name: String,
    features: Vec<FeatureOut>,
}

#[derive(Deserialize)]
struct FeatureOut {
    lower: f64,
    upper: Vec<f64>,
    ref_counts: Vec<u64>,
    rec_counts: Vec<u64>,
    psi: f64,
    ks: f64,
    ks_pvalue: f64,
    js: f64,
    wasserstein: f64,
}

struct Case {
    name: &'static str,
    n_features: usize,
    bins: usize,
    reference: Vec<f32>,
    recent: Vec<f32>,
}

fn normal(rng: &mut SmallRng) -> f64 {
    let (u, v): (f64, f64) = (rng.gen_range(f64::EPSILON..1.0), rng.gen());
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

fn normals(rng: &mut SmallRng, n: usize, mu: f64, sigma: f64) -> Vec<f32> {
    (0..n).map(|_| (mu + sigma * normal(rng)) as f32).collect()
}

/// Small non-negative integers (many ties): `floor(lambda * U^2 * 6)`.
fn counts(rng: &mut SmallRng, n: usize, lambda: f64) -> Vec<f32> {
    (0..n)
        .map(|_| (lambda * rng.gen::<f64>().powi(2) * 6.0).floor() as f32)
        .collect()
}

fn interleave(cols: &[Vec<f32>]) -> Vec<f32> {
    let n = cols[0].len();
    (0..n)
        .flat_map(|r| cols.iter().map(move |c| c[r]))
        .collect()
}

fn one(name: &'static str, bins: usize, reference: Vec<f32>, recent: Vec<f32>) -> Case {
    Case {
        name,
        n_features: 1,
        bins,
        reference,
        recent,
    }
}

fn cases() -> Vec<Case> {
    let mut rng = SmallRng::seed_from_u64(20_260_501);
    let r = &mut rng;
    let mut v = vec![
        // Exact branch, equal sizes.
        one(
            "exact_equal_20",
            10,
            normals(r, 20, 0.0, 1.0),
            normals(r, 20, 0.8, 1.0),
        ),
        one(
            "exact_equal_5000",
            10,
            normals(r, 5000, 0.0, 1.0),
            normals(r, 5000, 0.05, 1.0),
        ),
        // Exact branch, unequal sizes (the inside method).
        one(
            "exact_unequal_37_53",
            10,
            normals(r, 37, 0.0, 1.0),
            normals(r, 53, 0.3, 1.3),
        ),
        one(
            "exact_unequal_5000_4321",
            20,
            normals(r, 5000, 0.0, 1.0),
            normals(r, 4321, 0.04, 1.0),
        ),
        one(
            "exact_unequal_big_d",
            10,
            normals(r, 900, 0.0, 1.0),
            normals(r, 1300, 1.5, 1.0),
        ),
        // Ties: small integers, reference and recent from different rates.
        one(
            "ties_integers",
            10,
            counts(r, 300, 1.0),
            counts(r, 450, 1.2),
        ),
        one(
            "ties_binary",
            10,
            (0..400).map(|i| f32::from(i % 10 < 7)).collect(),
            (0..600).map(|i| f32::from(i % 10 < 5)).collect(),
        ),
        // Constant features.
        one("constant_same", 10, vec![1.5; 120], vec![1.5; 130]),
        one("constant_different", 10, vec![1.0; 100], vec![3.0; 100]),
        one(
            "constant_reference",
            10,
            vec![2.0; 150],
            (0..200).map(|i| [2.0, 1.0, 5.0, 2.0][i % 4]).collect(),
        ),
        one(
            "constant_recent",
            10,
            normals(r, 300, 0.0, 1.0),
            vec![0.25; 250],
        ),
        // Signed zeros tie.
        one(
            "signed_zero",
            5,
            (0..200)
                .map(|i| if i % 3 == 0 { -0.0 } else { (i % 7) as f32 })
                .collect(),
            (0..300)
                .map(|i| if i % 2 == 0 { 0.0 } else { (i % 5) as f32 })
                .collect(),
        ),
        // Far from zero: f32 granularity, large Wasserstein.
        one(
            "large_magnitude",
            10,
            normals(r, 2000, 1e6, 1e4),
            normals(r, 2500, 1.01e6, 1.2e4),
        ),
        // Asymptotic branch, effective size > 140.
        one(
            "asymp_no_shift",
            10,
            normals(r, 5000, 0.0, 1.0),
            normals(r, 200_000, 0.0, 1.0),
        ),
        one(
            "asymp_small_shift",
            10,
            normals(r, 5000, 0.0, 1.0),
            normals(r, 200_000, 0.03, 1.0),
        ),
        one(
            "asymp_shift",
            10,
            normals(r, 5000, 0.0, 1.0),
            normals(r, 200_000, 0.1, 1.0),
        ),
        one(
            "asymp_big_shift",
            10,
            normals(r, 5000, 0.0, 1.0),
            normals(r, 100_000, 1.0, 1.0),
        ),
        one(
            "asymp_equal_20000",
            10,
            normals(r, 20_000, 0.0, 1.0),
            normals(r, 20_000, 0.01, 1.0),
        ),
        // Asymptotic branch, effective size <= 140.
        one(
            "asymp_small_ref_none",
            10,
            normals(r, 120, 0.0, 1.0),
            normals(r, 20_000, 0.0, 1.0),
        ),
        one(
            "asymp_small_ref_shift",
            10,
            normals(r, 130, 0.0, 1.0),
            normals(r, 20_000, 0.2, 1.0),
        ),
        one(
            "asymp_small_ref_big",
            10,
            normals(r, 110, 0.0, 1.0),
            normals(r, 15_000, 0.7, 1.0),
        ),
        // Bin counts other than the default.
        one(
            "bins_2",
            2,
            normals(r, 700, 0.0, 1.0),
            normals(r, 800, 0.2, 1.1),
        ),
        one(
            "bins_50",
            50,
            normals(r, 3000, 0.0, 1.0),
            normals(r, 3500, 0.0, 0.9),
        ),
    ];
    // Several features in one check (asymptotic): normal, binary, skewed, constant.
    let (n_ref, n_rec) = (800, 12_000);
    let skew = |r: &mut SmallRng, n: usize, s: f64| -> Vec<f32> {
        (0..n).map(|_| (s * normal(r)).exp() as f32).collect()
    };
    let reference = interleave(&[
        normals(r, n_ref, 0.0, 1.0),
        (0..n_ref).map(|_| f32::from(r.gen_bool(0.3))).collect(),
        skew(r, n_ref, 1.0),
        vec![7.0; n_ref],
    ]);
    let recent = interleave(&[
        normals(r, n_rec, 0.1, 1.0),
        (0..n_rec).map(|_| f32::from(r.gen_bool(0.4))).collect(),
        skew(r, n_rec, 1.2),
        vec![7.0; n_rec],
    ]);
    v.push(Case {
        name: "multi_feature",
        n_features: 4,
        bins: 10,
        reference,
        recent,
    });
    v
}

/// `kstwo.sf(x, n)` arguments spanning every method `_kolmogn` picks.
fn kstwo_grid() -> Vec<(u64, f64)> {
    let ns = [
        1u64, 2, 3, 10, 50, 139, 140, 141, 1000, 4878, 10_000, 100_000, 100_001, 250_000, 1_500_000,
    ];
    let xs = [
        0.0005, 0.001, 0.003, 0.006, 0.01, 0.02, 0.03, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3, 0.45, 0.5,
        0.6, 0.8, 0.95, 0.999,
    ];
    let mut grid = Vec::new();
    for &n in &ns {
        for &x in &xs {
            grid.push((n, x));
        }
        let nf = n as f64;
        for x in [0.75 / nf, 1.0 / nf, 1.5 / nf, 1.0 - 1.5 / nf] {
            if x > 0.0 && x < 1.0 {
                grid.push((n, x));
            }
        }
        // Around the method switches: n x^2 = 0.754693, 2.2, 4, 18, 370; n x^1.5 = 1.4.
        for c in [0.7, 0.8, 2.1, 2.3, 3.9, 4.1, 17.0, 19.0, 360.0, 380.0] {
            let x = (c / nf).sqrt();
            if x < 1.0 {
                grid.push((n, x));
            }
        }
        for c in [1.3, 1.5] {
            let x = (c / nf).powf(2.0 / 3.0);
            if x < 1.0 {
                grid.push((n, x));
            }
        }
    }
    grid
}

fn assert_close(what: &str, got: f64, want: f64) {
    assert!(
        got.is_finite() && (got - want).abs() <= TOL * want.abs().max(1.0),
        "{what}: driftd {got:e}, SciPy {want:e}"
    );
}

/// p-values: within 1e-6 absolute, and within 1e-6 relative unless SciPy's is below 1e-290.
fn assert_pvalue(what: &str, got: f64, want: f64) {
    assert_close(what, got, want);
    assert!(
        want < 1e-290 || (got - want).abs() <= TOL * want,
        "{what}: driftd {got:e}, SciPy {want:e} (relative)"
    );
}

#[test]
fn statistics_match_scipy() {
    let cases = cases();
    let spec = json!({
        "cases": cases.iter().map(|c| json!({
            "name": c.name,
            "n_features": c.n_features,
            "bins": c.bins,
            // As f64 so that Python reads the exact f32 values.
            "reference": c.reference.iter().map(|&x| f64::from(x)).collect::<Vec<_>>(),
            "recent": c.recent.iter().map(|&x| f64::from(x)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    let out = run_reference(&spec);
    eprintln!("comparing with SciPy {}", out.scipy);
    assert_eq!(out.cases.len(), cases.len());
    let mut worst = std::collections::BTreeMap::new();
    for (case, want) in cases.iter().zip(&out.cases) {
        assert_eq!(case.name, want.name);
        let reference = ReferenceSample::from_rows(&case.reference, case.n_features, usize::MAX, 0);
        let cfg = FeatureDriftConfig {
            bins: case.bins,
            min_rows: 1,
            ..FeatureDriftConfig::default()
        };
        let report = check(&reference, &case.recent, &cfg).unwrap();
        let df = frame::reference_frame(&reference).unwrap();
        let cols = frame::reference_columns(&df, case.bins).unwrap();
        for (j, (got, want)) in report.features.iter().zip(&want.features).enumerate() {
            let what = |s: &str| format!("{} feature {j} {s}", case.name);
            // Same bins, same histograms.
            let (lower, upper) = stats::bin_bounds(&cols[j].quantiles);
            assert_close(&what("lower edge"), lower, want.lower);
            assert_eq!(upper.len(), want.upper.len(), "{}", what("bin count"));
            for (a, b) in upper.iter().zip(&want.upper) {
                assert!(
                    (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                    "{}",
                    what("edge")
                );
            }
            let ref_counts = stats::bin_counts(&cols[j].sorted, |x| x, lower, &upper);
            assert_eq!(
                ref_counts,
                want.ref_counts,
                "{}",
                what("reference histogram")
            );
            let mut rec: Vec<f32> = case
                .recent
                .chunks(case.n_features)
                .map(|r| r[j] + 0.0)
                .collect();
            stats::sort_f32(&mut rec);
            let rec_counts = stats::bin_counts(&rec, f64::from, lower, &upper);
            assert_eq!(rec_counts, want.rec_counts, "{}", what("recent histogram"));

            eprintln!(
                "{:28} f{j} psi {:.6e} ks {:.6e} p {:.6e} (SciPy {:.6e}) js {:.6e} w {:.6e}",
                case.name, got.psi, got.ks, got.ks_pvalue, want.ks_pvalue, got.js, got.wasserstein
            );
            for (s, a, b) in [
                ("psi", got.psi, want.psi),
                ("ks", got.ks, want.ks),
                ("ks_pvalue", got.ks_pvalue, want.ks_pvalue),
                ("js", got.js, want.js),
                ("wasserstein", got.wasserstein, want.wasserstein),
            ] {
                let e = (a - b).abs() / b.abs().max(1e-300);
                worst
                    .entry(s)
                    .and_modify(|w: &mut f64| *w = w.max(e))
                    .or_insert(e);
            }
            assert_close(&what("psi"), got.psi, want.psi);
            assert_close(&what("ks"), got.ks, want.ks);
            assert_pvalue(&what("ks_pvalue"), got.ks_pvalue, want.ks_pvalue);
            assert_close(&what("js"), got.js, want.js);
            assert_close(&what("wasserstein"), got.wasserstein, want.wasserstein);
        }
    }
    eprintln!("largest relative deviation from SciPy: {worst:?}");
}

#[test]
fn kstwo_sf_matches_scipy() {
    let grid = kstwo_grid();
    let out = run_reference(&json!({ "kstwo": grid }));
    assert_eq!(out.kstwo.len(), grid.len());
    let mut worst: f64 = 0.0;
    for (&(n, x), &want) in grid.iter().zip(&out.kstwo) {
        let got = ks::kolmogn_sf(n, x);
        worst = worst.max((got - want).abs() / want.abs().max(1e-300));
        assert_pvalue(&format!("kstwo.sf({x}, {n})"), got, want);
    }
    eprintln!(
        "kstwo.sf: {} points, largest relative deviation from SciPy {worst:e}",
        grid.len()
    );
}

/// Codes of `k` categories with frequencies skewed by `skew` (0: uniform), `n` values.
fn categories(rng: &mut SmallRng, n: usize, k: u32, skew: f64) -> Vec<f32> {
    let weights: Vec<f64> = (0..k).map(|i| (-(skew * f64::from(i))).exp()).collect();
    let total: f64 = weights.iter().sum();
    (0..n)
        .map(|_| {
            let mut u = rng.gen::<f64>() * total;
            let mut c = 0;
            while c + 1 < k as usize && u >= weights[c] {
                u -= weights[c];
                c += 1;
            }
            crate::domain::category_code(&format!("cat{c}"))
        })
        .collect()
}

#[test]
fn categorical_statistics_match_scipy_to_1e_9() {
    let mut rng = SmallRng::seed_from_u64(20_261_203);
    let r = &mut rng;
    let pairs = [
        // The same frequencies; a shift in frequencies; categories the reference never had;
        // one category only; two categories (1 degree of freedom); small and large samples.
        (categories(r, 2000, 5, 0.3), categories(r, 2000, 5, 0.3)),
        (categories(r, 5000, 8, 0.2), categories(r, 3000, 8, 0.6)),
        (categories(r, 1000, 4, 0.0), categories(r, 800, 7, 0.0)),
        (
            vec![crate::domain::category_code("x"); 300],
            vec![crate::domain::category_code("x"); 200],
        ),
        (categories(r, 150, 2, 0.1), categories(r, 120, 2, 0.9)),
        (categories(r, 40, 12, 0.1), categories(r, 60_000, 12, 0.15)),
    ];
    let spec = json!({
        "categorical": pairs.iter().map(|(a, b)| json!({"reference": a, "recent": b})).collect::<Vec<_>>()
    });
    let out = run_reference(&spec);
    assert_eq!(out.categorical.len(), pairs.len());
    for (i, ((a, b), want)) in pairs.iter().zip(&out.categorical).enumerate() {
        let got = super::categorical::compare(a, b);
        for (what, g, w) in [
            ("chi2", got.chi2, want.chi2),
            ("chi2_pvalue", got.chi2_pvalue, want.chi2_pvalue),
            ("psi", got.psi, want.psi),
            ("js", got.js, want.js),
            ("unseen_share", got.unseen_share, want.unseen_share),
        ] {
            let tol = 1e-9
                * w.abs()
                    .max(if what == "chi2_pvalue" { 1e-300 } else { 1.0 });
            assert!(
                (g - w).abs() <= tol.max(1e-300),
                "pair {i} {what}: {g} vs SciPy {w} ({})",
                out.scipy
            );
        }
    }
}
