//! driftd training vs PyTorch-Python, same MLP / data / batch size / threads, in one run.
//!
//! `cargo bench --bench train` (release). Environment:
//! - `DRIFTD_PYTHON`: python with torch (default `$HOME/.cache/driftd/venv/bin/python`);
//!   the PyTorch side is skipped when it is missing.
//! - `DRIFTD_BENCH_THREADS`: intra-op threads for both sides (default 1).
//! - `DRIFTD_BENCH_QUICK=1`: fewer epochs / smaller sizes (smoke run).
//! - `DRIFTD_BENCH_REPEAT`: every timing is the minimum of this many runs (default 3), which
//!   keeps the figures usable on a shared machine.
//!
//! Prints markdown tables: seconds per epoch and test accuracy for driftd and PyTorch at
//! 1 000 and 100 000 rows × 20 features, their ratio, and the `auto` tournament's time next
//! to each single candidate's.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

mod common;
use common::{env_usize, python};

use driftd::train::synth::{make_classification, Concept};
use driftd::train::{
    fit, predict, run_update, Arch, Dataset, FitOptions, ModelArtifact, Strategy, TrainConfig,
    UpdateRequest,
};

fn write_f32(path: &Path, v: &[f32]) {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

fn accuracy(art: &ModelArtifact, d: &Dataset) -> f64 {
    let p = predict(art, &d.x).unwrap();
    p.labels
        .iter()
        .zip(&d.y)
        .filter(|(a, b)| **a as f32 == **b)
        .count() as f64
        / d.len() as f64
}

struct Row {
    rows: usize,
    epochs: usize,
    ours: f64,
    ours_acc: f64,
    py: Option<(f64, f64)>,
}

fn repeats() -> usize {
    env_usize("DRIFTD_BENCH_REPEAT", 3).max(1)
}

fn single_model(n: usize, epochs: usize, threads: i32, py: Option<&Path>) -> Row {
    let concept = Concept::new(42, 20, 15, 2);
    let data = make_classification(&concept, n, 0, 43);
    let n_train = n * 4 / 5;
    let (train, test) = (data.slice(0, n_train), data.slice(n_train, n));
    let arch = Arch::new(20, &[20, 10], 2);
    // Epochs are what is measured here: no sample budget.
    let cfg = TrainConfig {
        fit_epochs: epochs,
        sample_budget: 0,
        ..Default::default()
    };
    let opts = FitOptions::fresh(&cfg, 7);
    let no = AtomicBool::new(false);
    // Warm-up (libtorch's first-op initialisation), then the measured fit.
    let _ = fit(
        &arch,
        &train.slice(0, 64),
        None,
        &FitOptions {
            epochs: 2,
            ..opts.clone()
        },
        &no,
    )
    .unwrap();
    let mut ours = f64::INFINITY;
    let mut member = None;
    for _ in 0..repeats() {
        let t0 = Instant::now();
        let (m, _) = fit(&arch, &train, None, &opts, &no).unwrap();
        ours = ours.min(t0.elapsed().as_secs_f64() / epochs as f64);
        member = Some(m);
    }
    let member = member.unwrap();
    let ours_acc = accuracy(&ModelArtifact::single(arch, member), &test);

    let py = py.map(|python| {
        let dir = std::env::temp_dir().join(format!("driftd-bench-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("meta.json"), r#"{"n_features": 20}"#).unwrap();
        write_f32(&dir.join("x_train.f32"), &train.x);
        write_f32(&dir.join("y_train.f32"), &train.y);
        write_f32(&dir.join("x_test.f32"), &test.x);
        write_f32(&dir.join("y_test.f32"), &test.y);
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/bench_train.py");
        let mut best = (f64::INFINITY, f64::NAN);
        for _ in 0..repeats() {
            let out = Command::new(python)
                .arg(script)
                .arg(&dir)
                .args([
                    "--epochs",
                    &epochs.to_string(),
                    "--threads",
                    &threads.to_string(),
                ])
                .output()
                .expect("run bench_train.py");
            assert!(
                out.status.success(),
                "bench_train.py: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let v: serde_json::Value =
                serde_json::from_slice(&out.stdout).expect("json from bench_train.py");
            let spe = v["seconds_per_epoch"].as_f64().unwrap();
            if spe < best.0 {
                best = (spe, v["test_accuracy"].as_f64().unwrap());
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        best
    });
    Row {
        rows: n,
        epochs,
        ours,
        ours_acc,
        py,
    }
}

fn tournament(n: usize, epochs_scale: f64) {
    let concept = Concept::new(42, 20, 15, 2);
    let drifted = Concept::new(4242, 20, 15, 2);
    let old = make_classification(&concept, n / 2, 0, 1);
    let new = driftd::train::synth::make_mixture(&concept, &drifted, 0.5, n / 2, (n / 2) as i64, 2);
    let cfg = TrainConfig {
        fit_epochs: (150.0 * epochs_scale) as usize,
        finetune_epochs: (100.0 * epochs_scale) as usize,
        sample_budget: 0,
        ..Default::default()
    };
    let no = AtomicBool::new(false);
    let req = UpdateRequest::new(1, None);
    let champion = run_update(&req, None, &old, &Dataset::empty(20), &cfg, &no)
        .unwrap()
        .chosen
        .unwrap()
        .artifact;
    let time = |strategy: Strategy, batched: bool| -> (f64, f64) {
        let cfg = TrainConfig {
            batched_tournament: batched,
            ..cfg.clone()
        };
        let req = UpdateRequest::new(1, Some(strategy));
        let mut best = (f64::INFINITY, f64::NAN);
        for _ in 0..repeats() {
            let t0 = Instant::now();
            let out = run_update(&req, Some(&champion), &old, &new, &cfg, &no).unwrap();
            let acc = out
                .chosen
                .as_ref()
                .and_then(|c| c.holdout)
                .map_or(f64::NAN, |s| s.accuracy);
            best = (best.0.min(t0.elapsed().as_secs_f64()), acc);
        }
        best
    };
    println!(
        "\n### Tournament, {n} rows (old {}, new {}; fit {} epochs, fine-tune {} epochs)\n",
        n / 2,
        n / 2,
        cfg.fit_epochs,
        cfg.finetune_epochs
    );
    println!(
        "| run (`run_update`, min of {} runs) | seconds | holdout acc of chosen |\n|---|---:|---:|",
        repeats()
    );
    let mut singles = Vec::new();
    for s in Strategy::TRAINING {
        let (t, a) = time(s, true);
        println!("| {s} alone | {t:.3} | {a:.3} |");
        singles.push(t);
    }
    let (tb, ab) = time(Strategy::Auto, true);
    let (ts, as_) = time(Strategy::Auto, false);
    println!("| **auto, batched (6 candidates)** | **{tb:.3}** | {ab:.3} |");
    println!("| auto, one job at a time | {ts:.3} | {as_:.3} |");
    let max_single = singles.iter().cloned().fold(0.0, f64::max);
    let min_single = singles.iter().cloned().fold(f64::INFINITY, f64::min);
    println!(
        "\nauto batched / slowest single candidate = {:.2}x; / fastest single candidate = {:.2}x; \
         / sum of the six singles = {:.2}x; batched speed-up over one-at-a-time = {:.2}x",
        tb / max_single,
        tb / min_single,
        tb / singles.iter().sum::<f64>(),
        ts / tb
    );
}

fn main() {
    let threads: i32 = std::env::var("DRIFTD_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let quick = std::env::var("DRIFTD_BENCH_QUICK").is_ok_and(|v| v == "1");
    tch::set_num_threads(threads);
    let py = python();
    println!("## driftd training benchmark\n");
    println!(
        "threads: {threads} (both sides); batch 32; MLP 20→20→10→1 relu, SGD lr 0.01 momentum 0.9; \
         PyTorch: {}",
        py.as_ref().map_or("not found (skipped)".into(), |p| p.display().to_string())
    );
    let sizes: &[(usize, usize)] = if quick {
        &[(1_000, 20), (100_000, 1)]
    } else {
        &[(1_000, 150), (100_000, 5)]
    };
    let mut rows = Vec::new();
    for &(n, epochs) in sizes {
        rows.push(single_model(n, epochs, threads, py.as_deref()));
    }
    println!("\n### Single model, time per epoch (80 % of rows train, 20 % test)\n");
    println!("| rows | epochs | driftd s/epoch | PyTorch s/epoch | ratio driftd/PyTorch | driftd test acc | PyTorch test acc |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        match r.py {
            Some((pt, pa)) => println!(
                "| {} | {} | {:.5} | {:.5} | **{:.2}** | {:.3} | {:.3} |",
                r.rows,
                r.epochs,
                r.ours,
                pt,
                r.ours / pt,
                r.ours_acc,
                pa
            ),
            None => println!(
                "| {} | {} | {:.5} | – | – | {:.3} | – |",
                r.rows, r.epochs, r.ours, r.ours_acc
            ),
        }
    }
    if quick {
        tournament(1_000, 0.2);
    } else {
        tournament(1_000, 1.0);
        tournament(10_000, 1.0);
    }
}
