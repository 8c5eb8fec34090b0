//! Speed of driftd's drift detectors against River's, on the same input.
//!
//! `cargo bench --bench detectors` (a plain `main`, no harness):
//!
//! 1. generates one long binary error stream and one long real-valued stream (10 million
//!    updates each by default, `DRIFTD_BENCH_N` to change; a few change points) and writes
//!    them as `.npy` files to `DRIFTD_BENCH_DIR` (default: `<tmp>/driftd-bench-detectors`);
//! 2. times every detector here (updates per second over the whole stream, median of three
//!    runs, KSWIN one; in CPU time of the benchmarking thread so that a busy machine
//!    distorts less; River likewise);
//! 3. runs `scripts/bench_detectors.py` with River on the same files, with the Python of
//!    `DRIFTD_PYTHON` (default `/root/.cache/driftd/venv/bin/python`); River runs each
//!    detector for a time budget (`DRIFTD_BENCH_RIVER_BUDGET` seconds, default 4) on a
//!    prefix of the stream and its rate is extrapolated;
//! 4. compares the drift and warning indices on the prefix River processed, and prints a
//!    table: detector, driftd updates/s, River updates/s, ratio, indices identical.
//!
//! `DRIFTD_BENCH_ONLY=adwin,kswin` restricts the run to some detectors. Without Python or
//! River it still prints driftd's figures.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use driftd::detect::{DetectorConfig, DriftDetector};
use driftd::generate::SplitMix64;

const DEFAULT_N: usize = 10_000_000;
const DEFAULT_PYTHON: &str = "/root/.cache/driftd/venv/bin/python";

/// Segment `k` of 8 equal segments: binary error rate and real-valued mean.
const SEGMENTS: [(f64, f64); 8] = [
    (0.10, 0.0),
    (0.10, 0.0),
    (0.25, 1.0),
    (0.25, 1.0),
    (0.05, 0.5),
    (0.05, 0.5),
    (0.30, 2.0),
    (0.20, 1.5),
];

fn generate(n: usize) -> (Vec<u8>, Vec<f64>) {
    let mut rng = SplitMix64(20_260_101);
    let mut binary = Vec::with_capacity(n);
    let mut real = Vec::with_capacity(n);
    for i in 0..n {
        let (p, mu) = SEGMENTS[i * SEGMENTS.len() / n];
        binary.push(u8::from(rng.uniform() < p));
        real.push(mu + rng.normal());
    }
    (binary, real)
}

/// Writes a 1-D `.npy` (format 1.0).
fn write_npy(path: &Path, descr: &str, len: usize, data: &[u8]) -> std::io::Result<()> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({len},), }}");
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut f = BufWriter::new(File::create(path)?);
    f.write_all(b"\x93NUMPY\x01\x00")?;
    f.write_all(&(header.len() as u16).to_le_bytes())?;
    f.write_all(header.as_bytes())?;
    f.write_all(data)?;
    f.flush()
}

struct Row {
    name: &'static str,
    stream: &'static str,
    rate: f64,
    drifts: Vec<usize>,
    warning_runs: Vec<(usize, usize)>,
}

/// CPU time of this thread in seconds (`CLOCK_THREAD_CPUTIME_ID`: nanoseconds, where
/// `/proc/thread-self/schedstat` only advances at scheduler ticks), so that other
/// processes competing for the CPU do not count.
fn cpu_seconds() -> Option<f64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then_some(ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9)
}

/// Seconds spent running `f` (CPU time where available).
fn timed(f: impl FnOnce()) -> f64 {
    let (cpu, wall) = (cpu_seconds(), Instant::now());
    f();
    match (cpu, cpu_seconds()) {
        (Some(a), Some(b)) => b - a,
        _ => wall.elapsed().as_secs_f64(),
    }
}

/// Times `cfg` over `xs`: the median of `runs` runs (each on a fresh detector).
fn time_detector(cfg: &DetectorConfig, stream: &'static str, xs: &[f64], runs: usize) -> Row {
    let mut rates = Vec::new();
    let mut row = None;
    for _ in 0..runs {
        let r = time_once(cfg, stream, xs);
        rates.push(r.rate);
        row = Some(r);
    }
    rates.sort_by(f64::total_cmp);
    let mut row = row.expect("at least one run");
    row.rate = rates[rates.len() / 2];
    row
}

fn time_once(cfg: &DetectorConfig, stream: &'static str, xs: &[f64]) -> Row {
    let mut d = cfg.build().expect("defaults are valid");
    let mut drifts = Vec::new();
    let mut warnings: Vec<(usize, usize)> = Vec::new();
    let secs = timed(|| {
        for (i, &x) in xs.iter().enumerate() {
            d.update(x);
            if d.drift_detected() {
                drifts.push(i);
            }
            if d.warning_detected() {
                match warnings.last_mut() {
                    Some(run) if run.1 + 1 == i => run.1 = i,
                    _ => warnings.push((i, i)),
                }
            }
        }
    });
    std::hint::black_box(d.estimate());
    Row {
        name: cfg.name(),
        stream,
        rate: xs.len() as f64 / secs,
        drifts,
        warning_runs: warnings,
    }
}

/// River's result for one detector, from the script's JSON.
struct RiverRow {
    rate: f64,
    updates: usize,
    extrapolated: bool,
    drifts: Vec<usize>,
    warning_runs: Vec<(usize, usize)>,
}

fn run_river(
    dir: &Path,
    bin_path: &Path,
    real_path: &Path,
    only: &str,
) -> Option<Vec<(String, RiverRow)>> {
    let python = std::env::var("DRIFTD_PYTHON").unwrap_or_else(|_| DEFAULT_PYTHON.to_string());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/bench_detectors.py");
    let out = dir.join("river.json");
    let budget = std::env::var("DRIFTD_BENCH_RIVER_BUDGET").unwrap_or_else(|_| "4".into());
    eprintln!("\nRunning River ({python} {script}) ...");
    let status = Command::new(&python)
        .arg(script)
        .arg("--binary")
        .arg(bin_path)
        .arg("--real")
        .arg(real_path)
        .arg("--budget")
        .arg(&budget)
        .arg("--only")
        .arg(only)
        .arg("--json-out")
        .arg(&out)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => {
            eprintln!("River run failed ({s}); driftd figures only.");
            return None;
        }
        Err(e) => {
            eprintln!("cannot run {python}: {e}; driftd figures only.");
            return None;
        }
    }
    let text = std::fs::read_to_string(&out).ok()?;
    let doc: serde_json::Value = serde_json::from_str(&text).ok()?;
    let usizes = |v: &serde_json::Value| -> Vec<usize> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_u64())
                    .map(|x| x as usize)
                    .collect()
            })
            .unwrap_or_default()
    };
    let rows = doc["results"]
        .as_array()?
        .iter()
        .map(|r| {
            let key = format!(
                "{}/{}",
                r["detector"].as_str().unwrap_or(""),
                r["stream"].as_str().unwrap_or("")
            );
            let warning_runs = r["warning_runs"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|p| {
                            let p = usizes(p);
                            (p[0], p[1])
                        })
                        .collect()
                })
                .unwrap_or_default();
            (
                key,
                RiverRow {
                    rate: r["updates_per_second"].as_f64().unwrap_or(f64::NAN),
                    updates: r["updates"].as_u64().unwrap_or(0) as usize,
                    extrapolated: r["extrapolated"].as_bool().unwrap_or(true),
                    drifts: usizes(&r["drifts"]),
                    warning_runs,
                },
            )
        })
        .collect();
    Some(rows)
}

/// Warning runs restricted to indices `< n`.
fn clip_runs(runs: &[(usize, usize)], n: usize) -> Vec<(usize, usize)> {
    runs.iter()
        .filter(|r| r.0 < n)
        .map(|&(a, b)| (a, b.min(n - 1)))
        .collect()
}

fn fmt_rate(r: f64) -> String {
    if !r.is_finite() {
        return "-".into();
    }
    let s = format!("{:.0}", r);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn main() {
    let n: usize = std::env::var("DRIFTD_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_N);
    let dir: PathBuf = std::env::var_os("DRIFTD_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("driftd-bench-detectors"));
    std::fs::create_dir_all(&dir).expect("create the bench directory");

    eprintln!(
        "Generating {n} binary and {n} real-valued updates ({} segments) ...",
        SEGMENTS.len()
    );
    let (binary, real) = generate(n);
    let bin_path = dir.join("binary.npy");
    let real_path = dir.join("real.npy");
    write_npy(&bin_path, "|u1", n, &binary).expect("write binary.npy");
    let real_bytes: Vec<u8> = real.iter().flat_map(|x| x.to_le_bytes()).collect();
    write_npy(&real_path, "<f8", n, &real_bytes).expect("write real.npy");
    eprintln!("Inputs: {} and {}", bin_path.display(), real_path.display());
    let binary_f64: Vec<f64> = binary.iter().map(|&b| f64::from(b)).collect();

    let cfg = |kind: &str| DetectorConfig::default_for(kind).expect("known kind");
    let kswin = DetectorConfig::Kswin {
        alpha: 0.005,
        window_size: 100,
        stat_size: 30,
        seed: Some(42),
    };
    let plan: Vec<(DetectorConfig, &'static str)> = vec![
        (cfg("ddm"), "binary"),
        (cfg("eddm"), "binary"),
        (cfg("hddm_a"), "binary"),
        (cfg("hddm_w"), "binary"),
        (cfg("fhddm"), "binary"),
        (cfg("adwin"), "binary"),
        (cfg("page_hinkley"), "binary"),
        (cfg("adwin"), "real"),
        (cfg("page_hinkley"), "real"),
        (kswin, "real"),
    ];
    let only: Vec<String> = std::env::var("DRIFTD_BENCH_ONLY")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let mut rows = Vec::new();
    for (c, stream) in &plan {
        if !only.is_empty() && !only.iter().any(|o| o == c.name()) {
            continue;
        }
        let xs = if *stream == "binary" {
            &binary_f64
        } else {
            &real
        };
        // Median of three runs; KSWIN (seconds per run) once.
        let runs = if c.name() == "kswin" { 1 } else { 3 };
        let row = time_detector(c, stream, xs, runs);
        eprintln!(
            "driftd {:<13} {:<7} {:>14} updates/s  ({} drifts in {n} updates)",
            row.name,
            row.stream,
            fmt_rate(row.rate),
            row.drifts.len()
        );
        rows.push(row);
    }

    let river = run_river(&dir, &bin_path, &real_path, &only.join(","));

    println!();
    println!(
        "{:<14}{:<8}{:>16}{:>15}{:>9}{:>11}  indices identical",
        "detector", "stream", "driftd upd/s", "River upd/s", "ratio", "River n"
    );
    for row in &rows {
        let key = format!("{}/{}", row.name, row.stream);
        let r = river
            .as_ref()
            .and_then(|rs| rs.iter().find(|(k, _)| *k == key).map(|(_, r)| r));
        match r {
            None => println!(
                "{:<14}{:<8}{:>16}{:>15}{:>9}{:>11}  -",
                row.name,
                row.stream,
                fmt_rate(row.rate),
                "-",
                "-",
                "-"
            ),
            Some(r) => {
                let m = r.updates;
                let ours: Vec<usize> = row.drifts.iter().copied().filter(|&i| i < m).collect();
                let identical = if row.name == "kswin" {
                    format!(
                        "n/a (random sampling; driftd {} vs River {} drifts)",
                        ours.len(),
                        r.drifts.len()
                    )
                } else {
                    let same = ours == r.drifts
                        && clip_runs(&row.warning_runs, m) == clip_runs(&r.warning_runs, m);
                    format!(
                        "{} ({} drifts, {} warning runs)",
                        if same { "yes" } else { "NO" },
                        r.drifts.len(),
                        r.warning_runs.len()
                    )
                };
                println!(
                    "{:<14}{:<8}{:>16}{:>15}{:>8.0}x{:>11}{} {}",
                    row.name,
                    row.stream,
                    fmt_rate(row.rate),
                    fmt_rate(r.rate),
                    row.rate / r.rate,
                    m,
                    if r.extrapolated { "*" } else { " " },
                    identical
                );
            }
        }
    }
    if river.is_some() {
        println!(
            "\n* River ran a prefix of the {n}-update stream (time budget per detector); its rate is \
             extrapolated from that prefix, and indices are compared on that prefix."
        );
    }
}
