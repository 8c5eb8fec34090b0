#!/usr/bin/env python3
"""How well driftd estimates accuracy before the labels arrive (a benchmark, not a test).

For every stream and seed it writes a history with per-row label delays (a `ts` scoring time
and a `labeled_at` label time, delays drawn from an exponential distribution), replays it with
`driftd backtest` and examples/driftd.toml (only [[models]]' name/n_features/feature_names
adapted, and [models.estimate] calibration set per run), and prints one Markdown table: the
mean absolute error of the estimated accuracy over windows of 1 000 scored rows, for isotonic
and Platt calibration and for the raw probabilities (calibration = "none"), and, on
concept-drift streams, how many rows after the change the gap (estimated minus realized) first
exceeds 0.05.

Streams (5 features unless said):
  cov_toward    covariate shift toward the decision boundary: inputs drift from far to on
                the boundary, P(y|x) fixed; accuracy falls with no concept change
  cov_away      the reverse, and a sideways drift on top: accuracy rises
  cov_jumps     abrupt jumps of the input mean between regions, P(y|x) fixed
  concept       inputs stationary, the labelling rule rotates at the middle (concept drift)
  elec2         the real Electricity benchmark (../shared/data/elec2.csv), delays drawn the same way

Usage:
The gap's timing is read from a second replay with windows of 200 rows (the first window
ending after the change whose |estimated - realized| exceeds 0.05).

  scripts/eval_estimate.py --driftd target/debug/driftd [--rows 20000] [--seeds 1 2]
      [--delay-rows 300] [--streams cov_toward,...] [--out /tmp/driftd-estimate]
"""

import argparse
import json
import os
import subprocess
import sys
import tomllib

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import eval_streams  # noqa: E402  (its TOML writer and the recommended file's adaptation)
SECONDS_PER_ROW = 60
BOOTSTRAP = 1000
CHANGE_GAP = 0.05
GAP_WINDOW = 200


def logistic_rows(x, w, b, rng, sharpness=3.0):
    p = 1.0 / (1.0 + np.exp(-sharpness * (x @ w + b)))
    return (rng.random(len(x)) < p).astype(int)


def stream(name, seed, n):
    """(feature matrix, labels, index of a concept change or None)."""
    rng = np.random.default_rng(seed)
    d = 5
    w = rng.normal(size=d)
    w /= np.linalg.norm(w)
    side = rng.normal(size=d)
    side -= (side @ w) * w
    side /= np.linalg.norm(side)
    t = np.linspace(0.0, 1.0, n)[:, None]
    noise = rng.normal(size=(n, d))
    if name == "cov_toward":
        # Two clusters, one per side of the boundary, that close in on it.
        sign = np.where(rng.random(n) < 0.5, 1.0, -1.0)[:, None]
        x = noise * 0.7 + sign * (1.5 * (1.0 - t)) * w
        return x, logistic_rows(x, w, 0.0, rng), None
    if name == "cov_away":
        sign = np.where(rng.random(n) < 0.5, 1.0, -1.0)[:, None]
        x = noise * 0.7 + sign * (0.2 + 1.3 * t) * w + 3.0 * t * side
        return x, logistic_rows(x, w, 0.0, rng), None
    if name == "cov_jumps":
        regions = [0.0, 1.5, -1.0, 0.5]
        k = np.minimum((t[:, 0] * len(regions)).astype(int), len(regions) - 1)
        centre = np.array([regions[i] for i in k])[:, None]
        x = noise + centre * w + np.array([regions[i] for i in k])[:, None] * 2.0 * side
        return x, logistic_rows(x, w, 0.0, rng), None
    if name == "concept":
        x = noise
        w2 = rng.normal(size=d)
        w2 -= (w2 @ w) * w  # orthogonal: half the old rule's answers turn wrong
        w2 /= np.linalg.norm(w2)
        half = n // 2
        y = np.concatenate([logistic_rows(x[:half], w, 0.0, rng), logistic_rows(x[half:], w2, 0.0, rng)])
        return x, y, half
    if name == "elec2":
        path = os.path.join(ROOT, "..", "shared", "data", "elec2.csv")
        data = np.genfromtxt(path, delimiter=",", names=True)
        cols = [c for c in data.dtype.names if c != "class"]
        x = np.column_stack([data[c] for c in cols])[:n]
        return x, data["class"].astype(int)[:n], None
    raise SystemExit(f"unknown stream {name}")


def write_history(path, x, y, delay_rows, seed):
    rng = np.random.default_rng(seed + 1000)
    n = len(y)
    ts = np.arange(n) * SECONDS_PER_ROW
    delay = rng.exponential(delay_rows * SECONDS_PER_ROW, size=n).astype(int)
    labeled = ts + delay
    names = [f"f{i}" for i in range(x.shape[1])]
    with open(path, "w") as f:
        f.write(",".join(names + ["label", "ts", "labeled_at"]) + "\n")
        for i in range(n):
            f.write(",".join(repr(float(v)) for v in x[i]) + f",{y[i]},{ts[i]},{labeled[i]}\n")
    return names


def adapt(base, feats, calibration):
    """eval_streams' adaptation of the recommended file, with the calibration set."""
    cfg = eval_streams.adapt(base, feats)
    cfg["models"][0].setdefault("estimate", {})["calibration"] = calibration
    return cfg


def run(driftd, cfg, data, out, window=1000):
    toml = out + ".toml"
    with open(toml, "w") as f:
        f.write(eval_streams.dump_toml(cfg))
    report = out + ".json"
    cmd = [driftd, "backtest", "--config", toml, "--input", data, "--report", report,
           "--bootstrap-rows", str(BOOTSTRAP), "--estimate-window", str(window)]
    p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "RUST_LOG": "warn"})
    if p.returncode != 0:
        sys.exit(f"driftd backtest failed ({' '.join(cmd)}):\n{p.stderr}")
    with open(report) as f:
        return json.load(f)


def gap_opens(report, change):
    """Rows after `change` until the first window (ending after it) whose gap exceeds
    CHANGE_GAP; None if none does."""
    for p in report["estimation"]:
        if p["end_row"] >= change and abs(p["estimated_accuracy"] - p["realized_accuracy"]) > CHANGE_GAP:
            return p["end_row"] - change
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--driftd", required=True)
    ap.add_argument("--config", default=os.path.join(ROOT, "examples", "driftd.toml"))
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--delay-rows", type=int, default=300)
    ap.add_argument("--streams", default="cov_toward,cov_away,cov_jumps,concept,elec2")
    ap.add_argument("--calibrations", default="isotonic,platt,none")
    ap.add_argument("--out", default="/tmp/driftd-estimate")
    ap.add_argument("--json")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    with open(args.config, "rb") as f:
        base = tomllib.load(f)
    methods = args.calibrations.split(",")
    results = []
    for name in args.streams.split(","):
        seeds = [1] if name == "elec2" else args.seeds
        for seed in seeds:
            x, y, change = stream(name, seed, args.rows)
            data = os.path.join(args.out, f"{name}-{seed}.csv")
            feats = write_history(data, x, y, args.delay_rows, seed)
            row = {"stream": name, "seed": seed, "rows": len(y), "change": change}
            for m in methods:
                r = run(args.driftd, adapt(base, feats, m), data, os.path.join(args.out, f"{name}-{seed}-{m}"))
                row[m] = r["estimated_accuracy_mae"]
                row[m + "_windows"] = len(r["estimation"])
                if change is not None:
                    # The gap's timing at a finer resolution: windows of GAP_WINDOW rows.
                    fine = run(args.driftd, adapt(base, feats, m), data,
                               os.path.join(args.out, f"{name}-{seed}-{m}-fine"), GAP_WINDOW)
                    row[m + "_gap_rows"] = gap_opens(fine, change)
                row["accuracy"] = r["prequential_accuracy"]
                real = [p["realized_accuracy"] for p in r["estimation"]]
                row["realized_range"] = (min(real), max(real)) if real else None
            results.append(row)
            print(json.dumps(row), file=sys.stderr)
    fmt = lambda v: "–" if v is None else f"{v:.4f}"
    print("| stream | seed | prequential accuracy | realized accuracy per window | " +
          " | ".join(f"MAE {m}" for m in methods) + " | gap > 0.05 after (rows) |")
    print("|---|---:|---:|---|" + "---:|" * len(methods) + "---:|")
    for r in results:
        lo_hi = r["realized_range"]
        span = f"{lo_hi[0]:.2f}–{lo_hi[1]:.2f}" if lo_hi else "–"
        gap = "–" if r["change"] is None else str(r.get(methods[0] + "_gap_rows"))
        print(f"| {r['stream']} | {r['seed']} | {r['accuracy']:.4f} | {span} | " +
              " | ".join(fmt(r[m]) for m in methods) + f" | {gap} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
