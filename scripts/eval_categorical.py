#!/usr/bin/env python3
"""Categorical features as text against the same features as integer codes (a benchmark, not
a test).

For every seed, `driftd generate --categorical K` writes a stream of N numeric and K
categorical features (values `v0`…`v5`, each category with its own effect on the label; the
abrupt change is in `c0`: its effects rotate and its frequencies reverse). The same rows are
then written with each category as its integer index. Each is replayed with `driftd backtest`
and examples/driftd.toml (only [[models]]' name/n_features/feature_names adapted):

  text, categorical      the text columns, declared in `categorical_features` (one-hot)
  codes, categorical     the integer columns, declared too (read as their text: the same model)
  codes, numeric         the integer columns as plain numbers (what a user gets without
                         `categorical_features`: an order and distances that mean nothing)

Usage:
  scripts/eval_categorical.py --driftd target/debug/driftd [--rows 30000] [--seeds 1 2]
      [--numeric 4] [--categorical 3] [--out /tmp/driftd-categorical]
"""

import argparse
import csv
import os
import subprocess
import sys
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import eval_streams  # noqa: E402  (its TOML writer, adaptation and backtest runner)


def as_codes(src, dst, categorical):
    with open(src) as f, open(dst, "w", newline="") as g:
        r, w = csv.reader(f), csv.writer(g)
        header = next(r)
        w.writerow(header)
        at = [header.index(c) for c in categorical]
        for row in r:
            for i in at:
                row[i] = row[i][1:]  # "v3" -> "3"
            w.writerow(row)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--driftd", required=True)
    ap.add_argument("--rows", type=int, default=30_000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--numeric", type=int, default=4)
    ap.add_argument("--categorical", type=int, default=3)
    ap.add_argument("--out", default="/tmp/driftd-categorical")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(ROOT, "examples", "driftd.toml"), "rb") as f:
        base = tomllib.load(f)
    names = [f"f{i}" for i in range(args.numeric)] + [f"c{i}" for i in range(args.categorical)]
    cats = names[args.numeric:]
    print("| seed | text, categorical | codes, categorical | codes, numeric | drift updates (text) |")
    print("|---:|---:|---:|---:|---:|")
    for seed in args.seeds:
        text = os.path.join(args.out, f"s{seed}-text.csv")
        codes = os.path.join(args.out, f"s{seed}-codes.csv")
        subprocess.run([args.driftd, "generate", "--out", text, "--rows", str(args.rows),
                        "--n-features", str(args.numeric), "--categorical", str(args.categorical),
                        "--seed", str(seed)], check=True, capture_output=True)
        as_codes(text, codes, cats)
        cfg = eval_streams.adapt(base, names)
        declared = eval_streams.adapt(base, names)
        declared["models"][0]["categorical_features"] = cats
        acc = {}
        for tag, c, data in (("text", declared, text), ("codes_cat", declared, codes),
                             ("codes_num", cfg, codes)):
            acc[tag] = eval_streams.backtest(args.driftd, c, data, "label", 60,
                                             os.path.join(args.out, f"s{seed}-{tag}"))
        drift = sum(1 for u in acc["text"]["retrains"] if u["trigger"] == "drift")
        print(f"| {seed} | {acc['text']['prequential_accuracy']:.4f} | "
              f"{acc['codes_cat']['prequential_accuracy']:.4f} | "
              f"{acc['codes_num']['prequential_accuracy']:.4f} | {drift} |", flush=True)


if __name__ == "__main__":
    main()
