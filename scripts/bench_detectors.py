#!/usr/bin/env python3
"""Time River's drift detectors on the inputs that `cargo bench --bench detectors` writes.

The bench (benches/detectors.rs) generates one long binary error stream and one long
real-valued stream, saves them as .npy files, runs driftd's detectors on them, then runs this
script on the same files and compares speed and detection indices.

River is slow (a Python call per update), so each detector runs for a time budget
(--budget seconds, default 4) on a prefix of the stream; its rate is that prefix's
updates per second, i.e. extrapolated to the full stream. The output says how many updates
each detector actually processed.

Timed loop: `det.update(x)` then `det.drift_detected` (the usual usage), in CPU time of the
process (`time.process_time()`), as the Rust side measures its thread's CPU time. Warning
indices are collected in a second, untimed pass over the same prefix.

Usage:
    python scripts/bench_detectors.py --binary binary.npy --real real.npy [--json-out out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
from river import __version__ as river_version
from river import drift

# (name, stream, factory, has_warning): River's default parameters throughout.
DETECTORS = [
    ("ddm", "binary", lambda: drift.binary.DDM(), True),
    ("eddm", "binary", lambda: drift.binary.EDDM(), True),
    ("hddm_a", "binary", lambda: drift.binary.HDDMA(), True),
    ("hddm_w", "binary", lambda: drift.binary.HDDMW(), True),
    ("fhddm", "binary", lambda: drift.binary.FHDDM(), False),
    ("adwin", "binary", lambda: drift.ADWIN(), False),
    ("page_hinkley", "binary", lambda: drift.PageHinkley(), False),
    ("adwin", "real", lambda: drift.ADWIN(), False),
    ("page_hinkley", "real", lambda: drift.PageHinkley(), False),
    ("kswin", "real", lambda: drift.KSWIN(seed=42), False),
]


def runs(indices: list[int]) -> list[list[int]]:
    """Compress sorted indices into [start, end] runs (inclusive)."""
    out: list[list[int]] = []
    for i in indices:
        if out and out[-1][1] == i - 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return out


def time_detector(factory, xs: list, budget: float, chunk: int):
    det = factory()
    drifts: list[int] = []
    n = 0
    total = len(xs)
    start = time.process_time()
    elapsed = 0.0
    while n < total and elapsed < budget:
        end = min(n + chunk, total)
        for i in range(n, end):
            det.update(xs[i])
            if det.drift_detected:
                drifts.append(i)
        n = end
        elapsed = time.process_time() - start
    return n, elapsed, drifts


def warnings_of(factory, xs: list, n: int) -> list[int]:
    det = factory()
    out: list[int] = []
    for i in range(n):
        det.update(xs[i])
        if det.warning_detected:
            out.append(i)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", required=True, help=".npy (uint8) binary error stream")
    ap.add_argument("--real", required=True, help=".npy (float64) real-valued stream")
    ap.add_argument("--budget", type=float, default=4.0, help="CPU seconds per detector (default 4)")
    ap.add_argument("--max-updates", type=int, default=0, help="cap on updates per detector (0: none)")
    ap.add_argument("--only", default="", help="comma-separated detector names to run")
    ap.add_argument("--json-out", default="", help="write the results as JSON to this file")
    args = ap.parse_args()

    binary = np.load(args.binary, mmap_mode="r")
    real = np.load(args.real, mmap_mode="r")
    cap = args.max_updates or max(len(binary), len(real))
    # River takes plain Python numbers (ints for the binary stream, as in its examples).
    # Converting the whole 10M-long streams would take seconds and gigabytes: convert a prefix
    # long enough for any detector within the budget (the fastest do ~1.5M updates/s).
    prefix = min(cap, int(2_000_000 * max(args.budget, 1.0)))
    streams = {
        "binary": binary[:prefix].tolist(),  # Python ints
        "real": real[:prefix].tolist(),  # Python floats
    }
    only = {s for s in args.only.split(",") if s}

    results = []
    print(f"River {river_version}, Python {sys.version.split()[0]}; budget {args.budget:g} s per detector",
          file=sys.stderr)
    print(f"{'detector':<14}{'stream':<8}{'updates':>12}{'of':>12}{'seconds':>9}{'updates/s':>13}  note",
          file=sys.stderr)
    for name, stream, factory, has_warning in DETECTORS:
        if only and name not in only:
            continue
        xs = streams[stream]
        full = len(binary) if stream == "binary" else len(real)
        chunk = 256 if name == "kswin" else 8192
        n, elapsed, drifts = time_detector(factory, xs, args.budget, chunk)
        warnings = warnings_of(factory, xs, n) if has_warning else []
        rate = n / elapsed if elapsed > 0 else float("inf")
        note = "full stream" if n >= full else f"prefix of {n}: rate extrapolated"
        print(f"{name:<14}{stream:<8}{n:>12}{full:>12}{elapsed:>9.2f}{rate:>13,.0f}  {note}", file=sys.stderr)
        results.append({
            "detector": name,
            "stream": stream,
            "updates": n,
            "stream_length": full,
            "seconds": elapsed,
            "updates_per_second": rate,
            "extrapolated": n < full,
            "drifts": drifts,
            "warning_runs": runs(warnings),
        })

    doc = {
        "river_version": river_version,
        "python": sys.version.split()[0],
        "budget_seconds": args.budget,
        "timed_loop": "det.update(x); det.drift_detected  (CPU time; warnings: separate untimed pass)",
        "results": results,
    }
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(doc, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
