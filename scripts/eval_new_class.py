#!/usr/bin/env python3
"""How soon driftd learns a class its model has never output (a benchmark, not a test).

For every stream and seed it writes a history whose last class appears at the middle and never
before, replays it with `driftd backtest` and examples/driftd.toml (only [[models]]'
name/n_features/feature_names adapted, and the task set per run), and prints one Markdown
table: the prequential accuracy, the new class's accuracy in the first and second 1 000 rows
after its first label and after that, and both that and the old classes' accuracy after it
appeared against
a replay of the same world in which every class is there from the start and the model is
configured with all of them (what the old classes' accuracy can be beside the new class).

Runs per stream and seed:
  multiclass   task = "multiclass", n_classes one fewer than the stream has (classes = "grow")
  binary       the default task on a stream of three classes: the model becomes multiclass
  from_start   the same world with every class from the first row, task = "multiclass" and
               n_classes = all of them (the reference of the old classes' accuracy)
  fixed        classes = "fixed": the replay must refuse the history, naming task/n_classes

Streams (6 features, one unit Gaussian cluster per class, centres at random directions):
`separated` (centres 4 from the origin: classes barely touch), `blobs` (3: a few per cent of
rows fall on another class's side) and `overlap` (1.5: many do).

Usage:
  scripts/eval_new_class.py --driftd target/debug/driftd [--rows 40000] [--seeds 1 2]
      [--out /tmp/driftd-new-class]
"""

import argparse
import copy
import os
import subprocess
import sys
import tomllib

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import eval_streams  # noqa: E402  (its TOML writer, CSV writer and backtest runner)

BLOCK = 1000


def stream(name, seed, n, n_classes, new_from):
    """Rows [(features, label)]: the last class only from row `new_from` on."""
    rng = np.random.default_rng(seed)
    d = 6
    radius = {"separated": 4.0, "blobs": 3.0, "overlap": 1.5}[name]
    centres = rng.normal(size=(n_classes, d))
    centres *= radius / np.linalg.norm(centres, axis=1, keepdims=True)
    rows = []
    while len(rows) < n:
        y = int(rng.integers(n_classes))
        if y == n_classes - 1 and len(rows) < new_from:
            continue
        rows.append(((centres[y] + rng.normal(size=d)).tolist(), y))
    return rows


def accuracy_after(report, which, since):
    """Accuracy of the classes `which` names on their rows from row `since` on."""
    hits = rows = 0
    for c in report["classes"]:
        if not which(c["class"]):
            continue
        for k, (acc, n) in enumerate(zip(c["accuracy_by_block"], c["rows_by_block"])):
            if c["first_row"] + k * BLOCK >= since and acc is not None:
                hits += acc * n
                rows += n
    return hits / rows


def new_blocks(report, new_class):
    c = next(c for c in report["classes"] if c["class"] == new_class)
    acc, n = c["accuracy_by_block"], c["rows_by_block"]
    later = sum(a * r for a, r in zip(acc[2:], n[2:]) if a is not None) / max(1, sum(n[2:]))
    return c["first_row"], acc[0], acc[1], later


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--driftd", required=True)
    ap.add_argument("--rows", type=int, default=40_000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--streams", default="separated,blobs,overlap")
    ap.add_argument("--out", default="/tmp/driftd-new-class")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(ROOT, "examples", "driftd.toml"), "rb") as f:
        base = tomllib.load(f)
    print("| stream | seed | task | prequential accuracy | new class, rows 0–1 000 | 1 000–2 000 | after 2 000 "
          "| same, every class from the start | old classes after it appeared | same, every class from the start "
          "| refused with `fixed` |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for name in args.streams.split(","):
        for seed in args.seeds:
            for task, k in (("multiclass", 4), ("binary", 3)):
                tag = f"{name}-{seed}-{task}"
                feats = [f"f{i}" for i in range(6)]
                paths = {}
                for variant, new_from in (("with", args.rows // 2), ("from_start", 0)):
                    paths[variant] = os.path.join(args.out, f"{tag}-{variant}.csv")
                    eval_streams.write_csv(paths[variant], stream(name, seed, args.rows, k, new_from))
                cfg = eval_streams.adapt(base, feats)
                known = copy.deepcopy(cfg)
                known["models"][0].update(task="multiclass", n_classes=k)
                m = cfg["models"][0]
                if task == "multiclass":
                    m["task"], m["n_classes"] = "multiclass", k - 1
                with_new = eval_streams.backtest(args.driftd, cfg, paths["with"], "label", 60,
                                                 os.path.join(args.out, tag))
                without = eval_streams.backtest(args.driftd, known, paths["from_start"], "label", 60,
                                                os.path.join(args.out, tag + "-from-start"))
                first, b0, b1, later = new_blocks(with_new, k - 1)
                m["classes"] = "fixed"
                toml = os.path.join(args.out, tag + "-fixed.toml")
                with open(toml, "w") as f:
                    f.write(eval_streams.dump_toml(cfg))
                p = subprocess.run([args.driftd, "backtest", "--config", toml, "--input", paths["with"],
                                    "--label-column", "label"], capture_output=True, text=True)
                refused = p.returncode != 0 and "n_classes" in p.stderr and "task" in p.stderr
                new, old = (lambda c: c == k - 1), (lambda c: c < k - 1)
                print(f"| {name} | {seed} | {task} | {with_new['prequential_accuracy']:.4f} | {b0:.3f} "
                      f"| {b1:.3f} | {later:.3f} | {accuracy_after(without, new, first + 2 * BLOCK):.3f} "
                      f"| {accuracy_after(with_new, old, first):.4f} | {accuracy_after(without, old, first):.4f} "
                      f"| {'yes' if refused else 'NO: ' + p.stderr[-200:]} |", flush=True)


if __name__ == "__main__":
    main()
