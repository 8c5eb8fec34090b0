//! The classic update experiment: which strategy keeps a model accurate on new data?
//!
//! `cargo run --release --example classic_experiment [-- SEEDS [FIRST_SEED]]` (default 10 seeds
//! from 0; `DRIFTD_TRAIN_CONFIG='{"selection_metric": "log_loss"}'` overrides config fields).
//!
//! Per seed: `make_classification`-style data (1 000 rows, 20 features, 15 informative, the
//! rest redundant). The first 500 rows ("old", concept A) train the champion (bootstrap fit).
//! The other 500 rows ("new") are split in time into 250 training rows (given to the update;
//! its holdout is their newest 20 %) and 250 test rows. Two scenarios:
//! - stationary: the new rows come from concept A as well;
//! - drifted: each new row comes from another concept B with probability ½.
//!
//! For each of the seven fixed strategies and `auto`, the model the update yields (the
//! champion for `none`, and for `auto` when it does not promote) is scored on the 250 test
//! rows. Prints mean ± sd of test accuracy over the seeds as a markdown table.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use driftd::train::synth::{make_classification, make_mixture, Concept};
use driftd::train::{
    predict, run_update, Dataset, ModelArtifact, Strategy, TrainConfig, UpdateRequest,
};

fn accuracy(art: &ModelArtifact, d: &Dataset) -> f64 {
    let p = predict(art, &d.x).unwrap();
    p.labels
        .iter()
        .zip(&d.y)
        .filter(|(a, b)| **a as f32 == **b)
        .count() as f64
        / d.len() as f64
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len().max(2) - 1) as f64;
    (m, var.sqrt())
}

fn main() {
    let seeds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let first: u64 = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let threads: i32 = std::env::var("DRIFTD_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut cfg = TrainConfig {
        num_threads: Some(threads),
        ..Default::default()
    };
    if let Ok(extra) = std::env::var("DRIFTD_TRAIN_CONFIG") {
        // Overrides as JSON, e.g. '{"selection_metric": "log_loss"}'.
        let mut v = serde_json::to_value(&cfg).unwrap();
        let o: serde_json::Value =
            serde_json::from_str(&extra).expect("DRIFTD_TRAIN_CONFIG is JSON");
        for (k, x) in o.as_object().expect("a JSON object") {
            v[k] = x.clone();
        }
        cfg = serde_json::from_value(v).expect("valid TrainConfig overrides");
    }
    let no = AtomicBool::new(false);
    let mut strategies = vec![Strategy::None];
    strategies.extend(Strategy::TRAINING);
    strategies.push(Strategy::Auto);
    let scenarios = ["stationary", "drifted"];
    // (scenario, strategy) -> accuracies; auto's picks per scenario.
    let mut acc: BTreeMap<(usize, usize), Vec<f64>> = BTreeMap::new();
    let mut picks: Vec<BTreeMap<String, usize>> = vec![BTreeMap::new(); 2];
    let t0 = Instant::now();
    for seed in first..first + seeds {
        let a = Concept::new(1000 + seed, 20, 15, 2);
        let b = Concept::new(5000 + seed, 20, 15, 2);
        let old = make_classification(&a, 500, 0, 10 * seed + 1);
        let boot = run_update(
            &UpdateRequest::new(seed, None),
            None,
            &old,
            &Dataset::empty(20),
            &cfg,
            &no,
        )
        .expect("bootstrap");
        let champion = boot.chosen.expect("first model").artifact;
        for (si, scenario) in scenarios.iter().enumerate() {
            let new = match *scenario {
                "stationary" => make_classification(&a, 500, 500, 10 * seed + 2),
                _ => make_mixture(&a, &b, 0.5, 500, 500, 10 * seed + 2),
            };
            let (new_train, test) = (new.slice(0, 250), new.slice(250, 500));
            for (ki, &s) in strategies.iter().enumerate() {
                let req = UpdateRequest::new(seed, Some(s));
                let out =
                    run_update(&req, Some(&champion), &old, &new_train, &cfg, &no).expect("update");
                let model = match (&out.chosen, out.promoted) {
                    (Some(c), true) => &c.artifact,
                    _ => &champion,
                };
                acc.entry((si, ki))
                    .or_default()
                    .push(accuracy(model, &test));
                if s == Strategy::Auto {
                    let pick = match (&out.chosen, out.promoted) {
                        (Some(c), true) => c.strategy.to_string(),
                        _ => "none (kept)".into(),
                    };
                    *picks[si].entry(pick).or_default() += 1;
                }
            }
        }
    }
    println!(
        "## Classic experiment: test accuracy on the new rows (mean ± sd over {seeds} seeds from {first})\n"
    );
    println!("1 000 rows × 20 features (15 informative); old 500 → champion; new 250 train (newest 20 % holdout) + 250 test;");
    println!("drifted: each new row from another concept with probability ½. Defaults: MLP 20→10 relu, fit lr 0.01 × 150 epochs,");
    println!("fine-tune lr 0.001 × 100 epochs, batch 32, SGD momentum 0.9, libtorch threads {threads}.\n");
    println!("| strategy | stationary | drifted |\n|---|---:|---:|");
    let mut best_fixed = [f64::MIN; 2];
    let mut auto_mean = [0.0; 2];
    for (ki, s) in strategies.iter().enumerate() {
        let cells: Vec<String> = (0..2)
            .map(|si| {
                let (m, sd) = mean_sd(&acc[&(si, ki)]);
                if *s == Strategy::Auto {
                    auto_mean[si] = m;
                } else {
                    best_fixed[si] = best_fixed[si].max(m);
                }
                format!("{:.1} ± {:.1}", 100.0 * m, 100.0 * sd)
            })
            .collect();
        let name = if *s == Strategy::Auto {
            "**auto**".to_string()
        } else {
            s.to_string()
        };
        println!("| {name} | {} | {} |", cells[0], cells[1]);
    }
    println!();
    for (si, scenario) in scenarios.iter().enumerate() {
        println!(
            "- {scenario}: auto {:.1} vs best fixed {:.1} → gap {:+.1} points; auto picked {:?}",
            100.0 * auto_mean[si],
            100.0 * best_fixed[si],
            100.0 * (auto_mean[si] - best_fixed[si]),
            picks[si]
        );
    }
    println!("\n({:.1} s)", t0.elapsed().as_secs_f64());
}
