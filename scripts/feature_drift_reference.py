#!/usr/bin/env python3
"""SciPy's values for driftd's per-feature drift statistics (src/feature_drift).

Reads one JSON file (argv[1]):
    {"cases": [{"name": str, "n_features": int, "bins": int,
                "reference": [row-major floats], "recent": [row-major floats]}, ...],
     "kstwo": [[n, x], ...],
     "categorical": [{"reference": [codes], "recent": [codes]}, ...]}
and prints one JSON object:
    {"scipy": version, "numpy": version,
     "cases": [{"name": str, "features": [{"lower": e0, "upper": [...],
                 "ref_counts": [...], "rec_counts": [...], "psi": .., "ks": ..,
                 "ks_pvalue": .., "js": .., "wasserstein": ..}, ...]}, ...],
     "kstwo": [scipy.stats.kstwo.sf(x, n), ...],
     "categorical": [{"chi2": .., "chi2_pvalue": .., "psi": .., "js": .., "unseen_share": ..}, ...]}

Per feature (reference column a, recent column b, both float64):
- bins: e = unique(np.quantile(a, arange(bins + 1) / bins)) (NumPy's default 'linear');
  bins (-inf, e0), [e0, e0], (e0, e1], ..., (e_{m-1}, e_m], (e_m, +inf);
- psi: sum((q - p) * log(q / p)) over the bin proportions, a zero proportion replaced by 1e-4;
- ks, ks_pvalue: scipy.stats.ks_2samp(a, b) (two-sided, method='auto');
- js: scipy.spatial.distance.jensenshannon(ref_counts, rec_counts, base=2);
- wasserstein: scipy.stats.wasserstein_distance(a, b).

Per categorical feature (codes): the 2 x K table of counts over the K codes seen on either side
(in code order); chi2, chi2_pvalue: scipy.stats.chi2_contingency(table, correction=False)
(statistic 0 and p-value 1 with a single category); psi and js as above on the two rows;
unseen_share: the share of recent values whose code the reference does not have.
"""

from __future__ import annotations

import json
import sys
import warnings

import numpy as np
import scipy
from scipy import stats
from scipy.spatial.distance import jensenshannon

PSI_EPSILON = 1e-4


def bins_of(a: np.ndarray, bins: int):
    e = np.unique(np.quantile(a, np.arange(bins + 1) / bins))
    return e[0], e


def counts_of(x: np.ndarray, lower: float, upper: np.ndarray) -> np.ndarray:
    idx = np.searchsorted(upper, x, side="left") + 1
    idx[x < lower] = 0
    return np.bincount(idx, minlength=len(upper) + 2)


def psi_of(ref_counts: np.ndarray, rec_counts: np.ndarray) -> float:
    p = ref_counts / ref_counts.sum()
    q = rec_counts / rec_counts.sum()
    p = np.where(ref_counts == 0, PSI_EPSILON, p)
    q = np.where(rec_counts == 0, PSI_EPSILON, q)
    return float(np.sum((q - p) * np.log(q / p)))


def feature(a: np.ndarray, b: np.ndarray, bins: int) -> dict:
    lower, upper = bins_of(a, bins)
    ref_counts = counts_of(a, lower, upper)
    rec_counts = counts_of(b, lower, upper)
    with warnings.catch_warnings():
        # ks_2samp warns when it falls back from the exact to the asymptotic p-value.
        warnings.simplefilter("ignore", RuntimeWarning)
        ks = stats.ks_2samp(a, b)
    return {
        "lower": float(lower),
        "upper": [float(u) for u in upper],
        "ref_counts": [int(c) for c in ref_counts],
        "rec_counts": [int(c) for c in rec_counts],
        "psi": psi_of(ref_counts, rec_counts),
        "ks": float(ks.statistic),
        "ks_pvalue": float(ks.pvalue),
        "js": float(jensenshannon(ref_counts, rec_counts, base=2)),
        "wasserstein": float(stats.wasserstein_distance(a, b)),
    }


def categorical(a: np.ndarray, b: np.ndarray) -> dict:
    codes = np.unique(np.concatenate([a, b]))
    table = np.array([[np.sum(a == c) for c in codes], [np.sum(b == c) for c in codes]])
    if len(codes) > 1:
        res = stats.chi2_contingency(table, correction=False)
        chi2, p = float(res.statistic), float(res.pvalue)
    else:
        chi2, p = 0.0, 1.0
    return {
        "chi2": chi2,
        "chi2_pvalue": p,
        "psi": psi_of(table[0], table[1]),
        "js": float(jensenshannon(table[0], table[1], base=2)),
        "unseen_share": float(np.mean(~np.isin(b, a))),
    }


def main() -> None:
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    cases = []
    for case in spec.get("cases", []):
        nf = case["n_features"]
        ref = np.asarray(case["reference"], dtype=np.float64).reshape(-1, nf)
        rec = np.asarray(case["recent"], dtype=np.float64).reshape(-1, nf)
        cases.append(
            {
                "name": case["name"],
                "features": [feature(ref[:, j], rec[:, j], case["bins"]) for j in range(nf)],
            }
        )
    kstwo = [float(stats.kstwo.sf(x, n)) for n, x in spec.get("kstwo", [])]
    cats = [
        categorical(np.asarray(c["reference"], dtype=np.float64), np.asarray(c["recent"], dtype=np.float64))
        for c in spec.get("categorical", [])
    ]
    json.dump(
        {"scipy": scipy.__version__, "numpy": np.__version__, "cases": cases, "kstwo": kstwo,
         "categorical": cats},
        sys.stdout,
    )


if __name__ == "__main__":
    main()
