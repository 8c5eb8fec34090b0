//! What a challenger in shadow costs per labelled row, against PyTorch doing the same work
//! in the same run.
//!
//! `cargo bench --bench shadow` (a plain `main`, no harness). The work per labelled row of
//! one model with `[models.shadow]` on: the champion's forward pass (its prediction, as the
//! scorer makes it), the online challenger's forward pass (scored before it learns), its
//! duel bookkeeping, and one SGD step per `batch_rows` rows on that mini-batch. driftd does
//! it through [`ShadowState::observe`], the daemon's and the backtest's own path; the
//! reference (`scripts/bench_shadow.py`, one PyTorch thread) does the two forward passes and
//! the step per mini-batch with `torch.nn` on the same architecture.
//!
//! Prints µs per row for both and their ratio, then the memory the challenger adds to a
//! model: its in-memory size and its share of the stored snapshot. Environment:
//! `DRIFTD_PYTHON` (default `$HOME/.cache/driftd/venv/bin/python`; the reference is skipped
//! without it), `DRIFTD_BENCH_ROWS` (default 50 000), `DRIFTD_BENCH_FEATURES` (default 8).

use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

mod common;
use common::{env_usize, python};

use chrono::{TimeZone, Utc};
use driftd::outcomes::Outcome;
use driftd::shadow::{ShadowConfig, ShadowState};
use driftd::train::synth::{make_classification, Concept};
use driftd::train::{fit, Arch, FitOptions, ModelArtifact, TrainConfig};

fn main() {
    let rows = env_usize("DRIFTD_BENCH_ROWS", 50_000);
    let nf = env_usize("DRIFTD_BENCH_FEATURES", 8);
    let hidden = TrainConfig::default().hidden_layers;
    let cfg = ShadowConfig {
        enabled: true,
        ..ShadowConfig::default()
    };
    // A champion fit as the trainer would (default architecture), then a stream of rows
    // from a changed concept for the challenger to learn.
    let concept = Concept::new(1, nf, nf.min(6), 2);
    let train = make_classification(&concept, 2_000, 0, 2);
    let arch = Arch::new(nf, &hidden, 2);
    let opts = FitOptions::fresh(
        &TrainConfig {
            fit_epochs: 5,
            ..TrainConfig::default()
        },
        3,
    );
    let (member, _) = fit(&arch, &train, None, &opts, &AtomicBool::new(false)).unwrap();
    let champion = ModelArtifact::single(arch, member).to_network().unwrap();
    let stream = make_classification(&Concept::new(9, nf, nf.min(6), 2), rows, 0, 4);
    let t0 = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
    let outcomes: Vec<Outcome> = (0..rows)
        .map(|i| Outcome {
            id: i as i64,
            labeled_at: t0 + chrono::Duration::seconds(i as i64),
            features: stream.x[i * nf..(i + 1) * nf].to_vec(),
            prediction: 0.0,
            label: stream.y[i] as u32,
            model_version: Some(1),
        })
        .collect();

    let mut state = ShadowState::default();
    state.challenge(1, champion.clone());
    let started = Instant::now();
    let mut right = 0usize;
    for o in &outcomes {
        let p = champion.predict(&o.features);
        let champion_right = u32::from(p >= 0.5) == o.label;
        right += usize::from(champion_right);
        state.observe(&cfg, o, champion_right);
    }
    let ours = started.elapsed().as_secs_f64() * 1e6 / rows as f64;
    let standing = state.standing().unwrap();
    // A promotion, once due, stops the duel until the driver carries it out (none here).
    let due = state.clone().take_promotion().is_some();
    println!(
        "driftd: {ours:.2} µs per labelled row ({rows} rows, {nf} features, hidden {hidden:?}, \
         batch_rows {}); champion {:.3}, challenger {:.3} on {} rows of the duel{} \
         (the champion right on {right} rows overall)",
        cfg.batch_rows,
        standing.champion_accuracy,
        standing.challenger_accuracy,
        standing.rows,
        if due { ", promotion due" } else { "" },
    );
    reference(nf, &hidden, rows, &cfg, ours);
    memory(&state, &cfg, nf);
}

/// PyTorch doing the same per-row work, timed by the script itself (the interpreter's start
/// and the import excluded).
fn reference(nf: usize, hidden: &[usize], rows: usize, cfg: &ShadowConfig, ours: f64) {
    let Some(py) = python() else {
        println!("PyTorch: skipped (no DRIFTD_PYTHON)");
        return;
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/bench_shadow.py");
    let hidden: Vec<String> = hidden.iter().map(|h| h.to_string()).collect();
    let out = Command::new(py)
        .arg(script)
        .args(["--features", &nf.to_string()])
        .args(["--hidden", &hidden.join(",")])
        .args(["--rows", &rows.min(20_000).to_string()])
        .args(["--batch-rows", &cfg.batch_rows.to_string()])
        .args(["--lr", &cfg.learning_rate.to_string()])
        .output()
        .expect("run bench_shadow.py");
    assert!(
        out.status.success(),
        "bench_shadow.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let us: f64 = text
        .trim()
        .parse()
        .expect("µs per row from bench_shadow.py");
    println!(
        "PyTorch (1 thread, torch.nn, per row: two forward passes; an SGD step per mini-batch): \
         {us:.2} µs per labelled row; driftd/PyTorch = {:.3} ({:.1}x faster)",
        ours / us,
        us / ours
    );
}

/// What the challenger adds to a model: in memory (its weights, the mini-batch it gathers,
/// the duel's window) and in the stored snapshot (JSON).
fn memory(state: &ShadowState, cfg: &ShadowConfig, nf: usize) {
    let count = |n: &driftd::shadow::Network| -> usize {
        n.members
            .iter()
            .map(|m| {
                m.mean.len()
                    + m.std.len()
                    + m.layers
                        .iter()
                        .map(|l| l.w.len() + l.b.len())
                        .sum::<usize>()
            })
            .sum()
    };
    // The learning copy, and the champion's own weights (kept to retire it, see
    // `recurring`).
    let online = count(&state.online.as_ref().unwrap().network);
    let weights = online + state.champion.as_ref().map_or(0, |c| count(&c.network));
    // f32 weights; a pending row of f32 features and a u32 label; per duel row a code byte,
    // an f32 prediction and a u32 label.
    let bytes = 4 * weights + cfg.batch_rows * (4 * nf + 4) + cfg.window_rows * 9;
    let stored = serde_json::to_vec(state).unwrap().len();
    println!(
        "memory per model: {:.1} KiB in memory ({weights} weights: the challenger's {online} and \
         the champion's copy; a {}-row mini-batch, a {}-row duel), {:.1} KiB in the stored snapshot; bounded by the architecture and the \
         two windows, not by the rows seen",
        bytes as f64 / 1024.0,
        cfg.batch_rows,
        cfg.window_rows,
        stored as f64 / 1024.0
    );
}
