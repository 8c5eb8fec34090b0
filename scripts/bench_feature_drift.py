#!/usr/bin/env python3
"""Time NumPy/SciPy on the per-feature drift check that `benches/feature_drift.rs` times.

The bench writes a reference and a recent window (little-endian float32, row-major) and runs
this script on the same files. Per feature, the same work as driftd's `feature_drift::check`:
the reference's quantile bins (np.quantile, 'linear'), both histograms, the PSI, ks_2samp
(two-sided, method='auto'), jensenshannon(base=2) on the histograms and wasserstein_distance.
The columns are converted to float64 (as driftd computes in f64) inside the timed region, as
driftd's transposition is inside its own.

Prints one JSON object: {"seconds": best wall-clock time of --repeat runs, "scipy", "numpy",
"features": [{"psi", "ks", "ks_pvalue", "js", "wasserstein"}, ...]}.

Usage:
    python scripts/bench_feature_drift.py --reference ref.f32 --recent recent.f32 \
        --n-features 20 [--bins 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings

import numpy as np
import scipy
from scipy import stats
from scipy.spatial.distance import jensenshannon

PSI_EPSILON = 1e-4


def feature(a: np.ndarray, b: np.ndarray, bins: int) -> dict:
    e = np.unique(np.quantile(a, np.arange(bins + 1) / bins))

    def counts(x: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(e, x, side="left") + 1
        idx[x < e[0]] = 0
        return np.bincount(idx, minlength=len(e) + 2)

    rc, qc = counts(a), counts(b)
    p = np.where(rc == 0, PSI_EPSILON, rc / rc.sum())
    q = np.where(qc == 0, PSI_EPSILON, qc / qc.sum())
    psi = float(np.sum((q - p) * np.log(q / p)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ks = stats.ks_2samp(a, b)
    return {
        "psi": psi,
        "ks": float(ks.statistic),
        "ks_pvalue": float(ks.pvalue),
        "js": float(jensenshannon(rc, qc, base=2)),
        "wasserstein": float(stats.wasserstein_distance(a, b)),
    }


def check(ref: np.ndarray, rec: np.ndarray, bins: int) -> list[dict]:
    out = []
    for j in range(ref.shape[1]):
        a = ref[:, j].astype(np.float64)
        b = rec[:, j].astype(np.float64)
        out.append(feature(a, b, bins))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", required=True)
    ap.add_argument("--recent", required=True)
    ap.add_argument("--n-features", type=int, required=True)
    ap.add_argument("--bins", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    nf = args.n_features
    ref = np.fromfile(args.reference, dtype="<f4").reshape(-1, nf)
    rec = np.fromfile(args.recent, dtype="<f4").reshape(-1, nf)
    best = float("inf")
    result = None
    for _ in range(max(1, args.repeat)):
        t = time.perf_counter()
        result = check(ref, rec, args.bins)
        best = min(best, time.perf_counter() - t)
    json.dump(
        {"seconds": best, "scipy": scipy.__version__, "numpy": np.__version__, "features": result},
        sys.stdout,
    )


if __name__ == "__main__":
    main()
