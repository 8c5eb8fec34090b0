//! Speed of one per-feature drift check against SciPy's, on the same data, in one run.
//!
//! `cargo bench --profile dev --bench feature_drift` (a plain `main`, no harness; the dev
//! profile already builds driftd at opt-level 2 and spares the long release build of polars,
//! which stays at opt-level 0 there):
//!
//! 1. generates a reference of 5 000 rows and a recent window of 1 000 000 rows × 20 features
//!    (normal, skewed, uniform, small integers with ties, 0/1 and constant features; some
//!    drifting), and writes both as little-endian `f32` files to a temporary directory;
//! 2. times `driftd::feature_drift::check` on them (the best of `DRIFTD_BENCH_REPEAT` runs,
//!    default 3; wall-clock, one thread);
//! 3. runs `scripts/bench_feature_drift.py` with the Python of `DRIFTD_PYTHON` (default
//!    `$HOME/.cache/driftd/venv/bin/python`) on the same files: the same statistics with
//!    NumPy/SciPy (`np.quantile` bins, `ks_2samp`, `jensenshannon`, `wasserstein_distance`),
//!    timed the same way, and its values, which are compared with driftd's;
//! 4. prints both times, their ratio and the largest deviation between the two.
//!
//! `DRIFTD_BENCH_ROWS` changes the recent window's size. Without Python it prints driftd's
//! figures only.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

mod common;
use common::{env_usize, python};

use driftd::feature_drift::{check, FeatureDriftConfig, FeatureDriftReport, ReferenceSample};
use driftd::generate::SplitMix64;

const N_FEATURES: usize = 20;
const REFERENCE_ROWS: usize = 5_000;
const DEFAULT_RECENT_ROWS: usize = 1_000_000;

/// Feature `f` of one row; `drift` selects the recent window's distribution.
fn value(rng: &mut SplitMix64, f: usize, drift: bool) -> f32 {
    let d = if drift { 1.0 } else { 0.0 };
    let v = match f {
        // Normal: unchanged, shifted, scaled.
        0..=2 => rng.normal(),
        3 => rng.normal() + 0.1 * d,
        4 => rng.normal() * (1.0 + 0.2 * d),
        // Log-normal (skewed), a wider one in the window for two of them.
        5..=7 => (rng.normal() * (1.0 + 0.1 * d * (f - 5) as f64)).exp(),
        // Uniform on [0, 1), on [0.05, 1.05) in the window for one.
        8 | 9 => rng.uniform() + 0.05 * d * (f - 8) as f64,
        // Small integers (ties): floor(6 u^2), floor(6 u^1.8) in the window for one.
        10..=12 => {
            let p = if f == 12 { 2.0 - 0.2 * d } else { 2.0 };
            (6.0 * rng.uniform().powf(p)).floor()
        }
        // 0/1 features: 30 % ones, 35 % in the window for one.
        13 | 14 => f64::from(u8::from(rng.uniform() < 0.3 + 0.05 * d * (f - 13) as f64)),
        // A constant.
        15 => 4.0,
        // Far from zero: dollars.
        16..=19 => 1e4 + 2e3 * rng.normal() + 100.0 * d * (f - 16) as f64,
        _ => unreachable!(),
    };
    v as f32
}

fn generate(rows: usize, drift: bool, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64(seed);
    let mut x = Vec::with_capacity(rows * N_FEATURES);
    for _ in 0..rows {
        for f in 0..N_FEATURES {
            x.push(value(&mut rng, f, drift));
        }
    }
    x
}

fn write_f32(path: &Path, v: &[f32]) {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

fn main() {
    let rows = env_usize("DRIFTD_BENCH_ROWS", DEFAULT_RECENT_ROWS);
    let repeat = env_usize("DRIFTD_BENCH_REPEAT", 3).max(1);
    let dir = tempfile::tempdir().unwrap();

    eprintln!(
        "generating {REFERENCE_ROWS} reference and {rows} recent rows × {N_FEATURES} features ..."
    );
    let reference_rows = generate(REFERENCE_ROWS, false, 1);
    let recent = generate(rows, true, 2);
    let (ref_path, rec_path) = (
        dir.path().join("reference.f32"),
        dir.path().join("recent.f32"),
    );
    write_f32(&ref_path, &reference_rows);
    write_f32(&rec_path, &recent);

    let reference = ReferenceSample::from_rows(&reference_rows, N_FEATURES, REFERENCE_ROWS, 0);
    let cfg = FeatureDriftConfig {
        window_rows: rows,
        ..FeatureDriftConfig::default()
    };
    let mut best = f64::INFINITY;
    let mut report: Option<FeatureDriftReport> = None;
    for _ in 0..repeat {
        let t = Instant::now();
        let r = check(&reference, &recent, &cfg).expect("check");
        best = best.min(t.elapsed().as_secs_f64());
        report = Some(r);
    }
    let report = report.unwrap();

    let scipy = python().and_then(|py| {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/bench_feature_drift.py"
        );
        eprintln!("running {} {script} ...", py.display());
        let out = Command::new(&py)
            .arg(script)
            .args(["--reference", ref_path.to_str().unwrap()])
            .args(["--recent", rec_path.to_str().unwrap()])
            .args(["--n-features", &N_FEATURES.to_string()])
            .args(["--bins", &cfg.bins.to_string()])
            .args(["--repeat", &repeat.to_string()])
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!("SciPy run failed: {}", String::from_utf8_lossy(&out.stderr));
            return None;
        }
        serde_json::from_slice::<serde_json::Value>(&out.stdout).ok()
    });

    println!(
        "\n## Per-feature drift check: {rows} recent rows × {N_FEATURES} features, reference {REFERENCE_ROWS} rows\n"
    );
    println!("| feature | PSI | KS | KS p-value | JS | Wasserstein | drifted |");
    println!("|---|---|---|---|---|---|---|");
    for f in &report.features {
        println!(
            "| {} | {:.4} | {:.4} | {:.3e} | {:.4} | {:.4} | {} |",
            f.feature, f.psi, f.ks, f.ks_pvalue, f.js, f.wasserstein, f.drifted
        );
    }
    println!("\ndrifted ratio {:.2}\n", report.drifted_ratio);
    println!("| implementation | seconds (best of {repeat}) | ratio |");
    println!("|---|---|---|");
    println!("| driftd `feature_drift::check` | {best:.3} | 1.0 |");
    match scipy {
        Some(doc) => {
            let s = doc["seconds"].as_f64().unwrap_or(f64::NAN);
            println!(
                "| SciPy {} / NumPy {} | {s:.3} | {:.1}× slower |",
                doc["scipy"].as_str().unwrap_or("?"),
                doc["numpy"].as_str().unwrap_or("?"),
                s / best
            );
            let mut worst: f64 = 0.0;
            for (f, want) in report
                .features
                .iter()
                .zip(doc["features"].as_array().unwrap())
            {
                for (got, key) in [
                    (f.psi, "psi"),
                    (f.ks, "ks"),
                    (f.ks_pvalue, "ks_pvalue"),
                    (f.js, "js"),
                    (f.wasserstein, "wasserstein"),
                ] {
                    let w = want[key].as_f64().unwrap_or(f64::NAN);
                    worst = worst.max((got - w).abs() / w.abs().max(1.0));
                }
            }
            println!("\nlargest deviation from SciPy's values, |a - b| / max(1, |b|): {worst:.1e}");
        }
        None => println!("| SciPy | - (no Python with SciPy) | - |"),
    }
}
