#!/usr/bin/env python3
"""Do the drift detectors see abrupt changes, and does a promotion come with evidence? (a
benchmark, not a test).

For River's SEA, Agrawal and STAGGER generators, one stream per generator and seed with five
abrupt changes (six segments of `--segment` rows, each with another concept, switched at
once), it replays `driftd backtest` with
  * `examples/driftd.toml` (only [[models]]' name, n_features and feature_names adapted), and
  * the built-in defaults (a model section with nothing but those three keys),
and prints, per stream and config: drift events, the changes detected within `--within` rows
of the change (and how many rows after it), drift events not within that distance of a
change (false alarms), versions promoted per 10 000 rows, the promotions whose holdout
accuracy was not above the champion's (promotions without evidence of a better model), and
prequential accuracy. With `--stationary`, it also replays one stationary stream per seed
(River's RandomRBF) and reports its versions per 10 000 rows and its false alarms.

Usage:
  scripts/eval_detection.py --driftd target/debug/driftd [--seeds 1 2 3] [--segment 3000]
      [--within 1500] [--out /tmp/driftd-detect] [--json results.json] [--stationary]
"""

import argparse
import json
import os
import sys
import tomllib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import eval_streams as es  # noqa: E402  (the stream table's config and backtest helpers)

CONCEPTS = {
    # generator: the concept of each of the six segments
    "sea": [0, 1, 2, 3, 0, 1],
    "agrawal": [0, 1, 2, 3, 4, 5],
    "stagger": [0, 1, 2, 0, 1, 2],
}


def generator(name, concept, seed):
    from river.datasets import synth

    if name == "sea":
        return synth.SEA(variant=concept, noise=0.1, seed=seed)
    if name == "agrawal":
        return synth.Agrawal(classification_function=concept, seed=seed)
    if name == "stagger":
        return synth.STAGGER(classification_function=concept, seed=seed)
    raise ValueError(name)


def abrupt_stream(name, seed, segment):
    rows = []
    for k, concept in enumerate(CONCEPTS[name]):
        g = generator(name, concept, seed * 100 + k)
        rows.extend(([float(v) for v in x.values()], int(y)) for x, y in g.take(segment))
    changes = [segment * k for k in range(1, len(CONCEPTS[name]))]
    return rows, changes


def stationary_stream(seed, n):
    from river.datasets import synth

    s = synth.RandomRBF(seed_model=seed, seed_sample=seed + 100, n_classes=2, n_features=10,
                        n_centroids=50)
    return [([float(v) for v in x.values()], int(y)) for x, y in s.take(n)]


def defaults(cfg):
    m = cfg["models"][0]
    keep = {k: m[k] for k in ("name", "n_features", "feature_names")}
    out = {k: v for k, v in cfg.items() if k != "models"}
    out["models"] = [keep]
    return out


def detection(report, changes, within):
    events = sorted(e["index"] for e in report["drift_events"])
    delays = []
    for c in changes:
        hit = [i - c for i in events if c <= i <= c + within]
        delays.append(hit[0] if hit else None)
    false = sum(1 for i in events if not any(c <= i <= c + within for c in changes))
    return events, delays, false


def promotions(report):
    promoted = [r for r in report["retrains"] if r["promoted"]]
    unproven = [r for r in promoted
                if r.get("champion_holdout_accuracy") is not None
                and r.get("holdout_accuracy") is not None
                and r["holdout_accuracy"] <= r["champion_holdout_accuracy"]]
    return len(promoted), len(unproven)


def run_one(args, cfg, tag, rows, changes, label):
    data = os.path.join(args.out, tag + ".csv")
    es.write_csv(data, rows)
    r = es.backtest(args.driftd, cfg, data, "label", 1, os.path.join(args.out, f"{tag}-{label}"))
    events, delays, false = detection(r, changes, args.within)
    n_prom, unproven = promotions(r)
    predicted = max(1, r["rows"])
    return {
        "stream": tag, "config": label, "drift_events": len(events),
        "detected": sum(d is not None for d in delays), "changes": len(changes),
        "delays": delays, "false_alarms": false,
        "versions_per_10k": n_prom * 10000 / predicted, "promotions": n_prom,
        "unproven_promotions": unproven, "accuracy": r["prequential_accuracy"],
        "wall": r["wall_seconds"],
    }


def table(results):
    lines = ["| stream | config | drift events | changes detected | rows to detection | "
             "false alarms | versions / 10k rows | promotions not above the champion | accuracy |",
             "|---|---|---:|---:|---|---:|---:|---:|---:|"]
    for r in results:
        delays = ", ".join("–" if d is None else str(d) for d in r["delays"]) or "–"
        lines.append(
            f"| {r['stream']} | {r['config']} | {r['drift_events']} | {r['detected']}/{r['changes']} "
            f"| {delays} | {r['false_alarms']} | {r['versions_per_10k']:.1f} "
            f"| {r['unproven_promotions']} of {r['promotions']} | {r['accuracy']:.3f} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--driftd", default=os.path.join(es.ROOT, "target", "debug", "driftd"))
    ap.add_argument("--config", default=os.path.join(es.ROOT, "examples", "driftd.toml"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--segment", type=int, default=3000)
    ap.add_argument("--within", type=int, default=1500)
    ap.add_argument("--streams", default="sea,agrawal,stagger")
    ap.add_argument("--configs", default="example,defaults")
    ap.add_argument("--stationary", action="store_true")
    ap.add_argument("--out", default="/tmp/driftd-detect")
    ap.add_argument("--json")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    with open(args.config, "rb") as f:
        base = tomllib.load(f)
    results = []
    for name in args.streams.split(","):
        for seed in args.seeds:
            rows, changes = abrupt_stream(name, seed, args.segment)
            feats = [f"f{i}" for i in range(len(rows[0][0]))]
            example = es.adapt(base, feats)
            for label in args.configs.split(","):
                cfg = example if label == "example" else defaults(example)
                res = run_one(args, cfg, f"{name}-s{seed}", rows, changes, label)
                print(json.dumps(res), file=sys.stderr, flush=True)
                results.append(res)
    if args.stationary:
        for seed in args.seeds:
            rows = stationary_stream(seed, args.segment * 6)
            feats = [f"f{i}" for i in range(len(rows[0][0]))]
            example = es.adapt(base, feats)
            for label in args.configs.split(","):
                cfg = example if label == "example" else defaults(example)
                res = run_one(args, cfg, f"rbf_stationary-s{seed}", rows, [], label)
                print(json.dumps(res), file=sys.stderr, flush=True)
                results.append(res)
    print(table(results))
    for label in args.configs.split(","):
        rs = [r for r in results if r["config"] == label and r["changes"]]
        if rs:
            det = sum(r["detected"] for r in rs)
            tot = sum(r["changes"] for r in rs)
            print(f"{label}: {det}/{tot} changes detected within {args.within} rows; "
                  f"{sum(r['unproven_promotions'] for r in rs)} of "
                  f"{sum(r['promotions'] for r in rs)} promotions not above the champion")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
