#!/usr/bin/env python3
"""Multi-stream evaluation of driftd's recommended configuration (a benchmark, not a test).

For every stream (River's synthetic generators with our seeds, `driftd generate`, and the
real elec2), it runs in the same session:
  * `driftd backtest` with examples/driftd.toml, only [[models]]' name/n_features/
    feature_names adapted to the stream (policy and training sections unchanged);
  * the references on the same MLP (same [models.train] hyper-parameters):
      never update; periodic refit (refit on the newest 2 000 rows every 5 000 rows);
      drift-triggered fine-tune (ADWIN -> finetune_combined); drift-triggered refit
      (ADWIN -> refit_new on the rows since the drift, with driftd's drift defaults);
  * River's Adaptive Random Forest, forest.ARFClassifier(seed=7), learning the same
    bootstrap rows first and then prequentially (predict, then learn) row by row;
and prints one Markdown table: accuracy, Cohen's kappa, kappa-temporal, updates (drift-
triggered ones in brackets), versions promoted per 10 000 predicted rows, drift events,
seconds per update, the references, ARF and the no-change and
majority baselines. Every figure is prequential accuracy after the same bootstrap.

Usage:
  scripts/eval_streams.py --driftd target/debug/driftd [--rows 20000] [--seeds 1 2]
      [--streams sea_abrupt,...] [--no-arf] [--out /tmp/driftd-eval] [--json results.json]
"""

import argparse
import copy
import csv
import json
import math
import os
import subprocess
import sys
import time
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOOTSTRAP = 2000
ELEC2 = os.path.join(ROOT, "..", "shared", "data", "elec2.csv")


# ---------------------------------------------------------------- streams
def river_stream(name, seed, n):
    from river.datasets import synth

    # River's ConceptDriftStream overflows math.exp for width 1 far from the position: an
    # "abrupt" change here switches over position/50 rows (200 rows at 10 000).
    def abrupt(pos):
        return max(1, pos // 50)

    if name == "sea_abrupt":
        s = synth.ConceptDriftStream(
            synth.SEA(variant=1, noise=0.1, seed=seed),
            synth.SEA(variant=2, noise=0.1, seed=seed + 100),
            position=n // 2, width=abrupt(n // 2), seed=seed)
    elif name == "agrawal_gradual":
        s = synth.ConceptDriftStream(
            synth.Agrawal(classification_function=0, seed=seed),
            synth.Agrawal(classification_function=2, seed=seed + 100),
            position=n // 2, width=n // 5, seed=seed)
    elif name == "hyperplane_incremental":
        s = synth.Hyperplane(seed=seed, n_features=10, n_drift_features=5,
                             mag_change=0.001, noise_percentage=0.05, sigma=0.1)
    elif name == "rbf_incremental":
        s = synth.RandomRBFDrift(seed_model=seed, seed_sample=seed + 100, n_classes=2,
                                 n_features=10, n_centroids=50, change_speed=0.001,
                                 n_drift_centroids=25)
    elif name == "stagger_recurring":
        q = n // 4
        a = lambda k: synth.STAGGER(classification_function=0, seed=seed + k)
        b = lambda k: synth.STAGGER(classification_function=2, seed=seed + k)
        w = abrupt(q)
        inner = synth.ConceptDriftStream(a(3), b(4), position=q, width=w, seed=seed + 2)
        mid = synth.ConceptDriftStream(b(2), inner, position=q, width=w, seed=seed + 1)
        s = synth.ConceptDriftStream(a(1), mid, position=q, width=w, seed=seed)
    elif name == "rbf_stationary":
        s = synth.RandomRBF(seed_model=seed, seed_sample=seed + 100, n_classes=2,
                            n_features=10, n_centroids=50)
    else:
        raise ValueError(name)
    rows = []
    for x, y in s.take(n):
        rows.append(([float(v) for v in x.values()], int(y)))
    return rows


def write_csv(path, rows):
    k = len(rows[0][0])
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"f{i}" for i in range(k)] + ["label"])
        for x, y in rows:
            w.writerow([repr(v) for v in x] + [y])


def read_csv(path, label):
    with open(path) as f:
        r = csv.reader(f)
        header = next(r)
        li = header.index(label)
        feats = [h for i, h in enumerate(header) if i != li and h != "ts"]
        fi = [header.index(h) for h in feats]
        rows = [([float(row[i]) for i in fi], int(float(row[li]))) for row in r]
    return feats, rows


# ---------------------------------------------------------------- configs
def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)


def toml_table(prefix, d, out, array=False):
    scalars = {k: v for k, v in d.items()
               if not isinstance(v, dict) and not (isinstance(v, list) and v and isinstance(v[0], dict))}
    out.append(f"[[{prefix}]]" if array else f"[{prefix}]")
    for k, v in scalars.items():
        out.append(f"{k} = {toml_value(v)}")
    for k, v in d.items():
        if isinstance(v, dict):
            toml_table(f"{prefix}.{k}", v, out)
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            for item in v:
                toml_table(f"{prefix}.{k}", item, out, array=True)


def dump_toml(cfg):
    out = []
    for k, v in cfg.items():
        if isinstance(v, list) and v and isinstance(v[0], dict):
            for item in v:
                toml_table(k, item, out, array=True)
        else:
            toml_table(k, v, out)
    return "\n".join(out) + "\n"


def adapt(cfg, feats):
    cfg = copy.deepcopy(cfg)
    # A backtest needs no database: the password file of a deployment is not there.
    cfg.get("database", {}).pop("password_file", None)
    m = cfg["models"][0]
    m["name"] = "eval"
    m["n_features"] = len(feats)
    m["feature_names"] = feats
    return cfg


def reference(cfg, strategy, window_rows=None):
    """The recommended file's MLP and training hyper-parameters, a plain ADWIN drift trigger
    with `strategy`, nothing else."""
    cfg = copy.deepcopy(cfg)
    m = cfg["models"][0]
    train = m.setdefault("train", {})
    for k in ("window_candidates", "incremental_rows", "incremental_epochs", "candidates"):
        train.pop(k, None)
    train["strategy"] = strategy
    if window_rows:
        train["window"] = {"max_rows": window_rows}
    m.pop("detectors", None)  # the default: one ADWIN on the error stream
    m["triggers"] = {"timezone": "UTC", "drift": {"enabled": True, "strategy": strategy}}
    return cfg


# ---------------------------------------------------------------- runs
def backtest(driftd, cfg, data, label, spr, out, compare=False):
    toml = out + ".toml"
    with open(toml, "w") as f:
        f.write(dump_toml(cfg))
    report = out + ".json"
    cmd = [driftd, "backtest", "--config", toml, "--input", data, "--report", report,
           "--bootstrap-rows", str(BOOTSTRAP), "--label-column", label,
           "--seconds-per-row", str(spr)]
    if compare:
        cmd += ["--compare", "--every-rows", "5000"]
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True,
                       env={**os.environ, "RUST_LOG": "warn"})
    if p.returncode != 0:
        sys.exit(f"driftd backtest failed ({' '.join(cmd)}):\n{p.stderr}")
    with open(report) as f:
        r = json.load(f)
    r["_wall"] = time.time() - t0
    return r


def summary(r):
    u = r["update_cost"]
    return {
        "accuracy": r["prequential_accuracy"],
        "kappa": r["metrics"]["kappa"],
        "kappa_temporal": r["metrics"]["kappa_temporal"],
        "no_change": r["metrics"]["no_change_accuracy"],
        "majority": r["metrics"]["majority_accuracy"],
        "updates": len(r["retrains"]),
        "drift_updates": sum(1 for x in r["retrains"] if x["trigger"] == "drift"),
        "promoted": r["promotions"],
        "versions_per_10k": r["promotions"] * 10000 / max(1, r["rows"]),
        "drift_events": len(r["drift_events"]),
        "s_per_update": u["mean_seconds"],
        "wall": r["wall_seconds"],
    }


def kappas(y, p, first):
    ev, pr = y[first:], p
    n = len(ev)
    p0 = sum(a == b for a, b in zip(ev, pr)) / n
    classes = sorted(set(y))
    pc = sum((ev.count(c) / n) * (pr.count(c) / n) for c in classes)
    nc = [y[j - 1] for j in range(first, len(y))]
    pnc = sum(a == b for a, b in zip(ev, nc)) / n
    k = 0.0 if abs(1 - pc) < 1e-12 else (p0 - pc) / (1 - pc)
    kt = 0.0 if abs(1 - pnc) < 1e-12 else (p0 - pnc) / (1 - pnc)
    return p0, k, kt


def arf(rows):
    from river import forest

    model = forest.ARFClassifier(seed=7)
    t0 = time.time()
    ys, preds = [r[1] for r in rows], []
    for i, (x, y) in enumerate(rows):
        xd = {f"f{j}": v for j, v in enumerate(x)}
        if i >= BOOTSTRAP:
            p = model.predict_one(xd)
            preds.append(p if p is not None else 0)
        model.learn_one(xd, y)
    acc, k, kt = kappas(ys, preds, BOOTSTRAP)
    return {"accuracy": acc, "kappa": k, "kappa_temporal": kt, "wall": time.time() - t0}


def evaluate(args, base, name, data, label, spr, rows, tag):
    out = os.path.join(args.out, tag)
    feats, _ = read_csv(data, label)
    cfg = adapt(base, feats)
    res = {"stream": tag}
    res["driftd"] = summary(backtest(args.driftd, cfg, data, label, spr, out + "-driftd"))
    cmp_ = backtest(args.driftd, reference(cfg, "refit_new", window_rows=2000), data, label,
                    spr, out + "-refit", compare=True)
    res["never"] = summary(cmp_["never"])
    res["periodic_refit"] = summary(cmp_["periodic"])
    res["drift_refit"] = summary(cmp_["policy"])
    res["drift_finetune"] = summary(
        backtest(args.driftd, reference(cfg, "finetune_combined"), data, label, spr,
                 out + "-finetune"))
    if not args.no_arf:
        res["arf"] = arf(rows)
    print(json.dumps(res), file=sys.stderr, flush=True)
    return res


def table(results):
    refs = ["never", "periodic_refit", "drift_finetune", "drift_refit"]
    head = ("| stream | driftd | κ | κ-temporal | updates (drift) | versions / 10k rows | "
            "drift events | s/update | never | periodic refit | drift fine-tune | drift refit | "
            "ARF | ARF κ-t | no-change | majority |")
    lines = [head, "|" + "---|" + "---:|" * 15]
    for r in results:
        d = r["driftd"]
        a = r.get("arf")
        lines.append(
            f"| {r['stream']} | **{d['accuracy']:.3f}** | {d['kappa']:.3f} | {d['kappa_temporal']:.3f} "
            f"| {d['updates']} ({d['drift_updates']}) | {d['versions_per_10k']:.1f} "
            f"| {d['drift_events']} | {d['s_per_update']:.2f} | "
            + " | ".join(f"{r[k]['accuracy']:.3f}" for k in refs)
            + (f" | {a['accuracy']:.3f} | {a['kappa_temporal']:.3f}" if a else " | – | –")
            + f" | {d['no_change']:.3f} | {d['majority']:.3f} |")
    return "\n".join(lines)


def goals(results):
    out = []
    for r in results:
        d = r["driftd"]["accuracy"]
        best_ref = max(r[k]["accuracy"] for k in ("never", "periodic_refit", "drift_finetune", "drift_refit"))
        arf_acc = r["arf"]["accuracy"] if "arf" in r else None
        ok_ref = d >= best_ref
        ok_arf = arf_acc is None or d >= arf_acc - 0.02
        out.append(f"{r['stream']}: vs best MLP reference {d - best_ref:+.3f} ({'ok' if ok_ref else 'MISSED'})"
                   + ("" if arf_acc is None else f", vs ARF {d - arf_acc:+.3f} ({'ok' if ok_arf else 'MISSED'})")
                   + f", driftd replay {r['driftd']['wall']:.1f} s")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--driftd", default=os.path.join(ROOT, "target", "debug", "driftd"))
    ap.add_argument("--config", default=os.path.join(ROOT, "examples", "driftd.toml"))
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--streams", default="sea_abrupt,agrawal_gradual,hyperplane_incremental,"
                    "rbf_incremental,stagger_recurring,rbf_stationary,driftd_generate,elec2")
    ap.add_argument("--no-arf", action="store_true")
    ap.add_argument("--out", default="/tmp/driftd-eval")
    ap.add_argument("--json", help="also write every figure here")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    with open(args.config, "rb") as f:
        base = tomllib.load(f)
    results = []
    for name in args.streams.split(","):
        if name == "elec2":
            _, rows = read_csv(ELEC2, "class")
            results.append(evaluate(args, base, name, ELEC2, "class", 1800, rows, "elec2"))
            continue
        for seed in args.seeds:
            tag = f"{name}-s{seed}"
            data = os.path.join(args.out, tag + ".csv")
            if name == "driftd_generate":
                subprocess.run([args.driftd, "generate", "--out", data, "--rows", str(args.rows),
                                "--seed", str(seed)], check=True, capture_output=True)
                _, rows = read_csv(data, "label")
            else:
                rows = river_stream(name, seed, args.rows)
                write_csv(data, rows)
            results.append(evaluate(args, base, name, data, "label", 1, rows, tag))
    print(table(results))
    print()
    print(goals(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
