#!/usr/bin/env python3
"""Checks a driftd model export against PyTorch.

Usage: export_check.py MODEL.safetensors SIDECAR.json INPUT.json EXPECTED.json

Loads the safetensors weights with PyTorch, rebuilds the network from the sidecar
(architecture, per-member scaler, ensemble weights, categorical vocabularies), predicts the
rows of INPUT.json ({"x": [[...], ...]}; a categorical feature's value is its text, or a
number or boolean taken as its text) and compares with EXPECTED.json ({"proba": [...]} with P(class 1)
per row for binary models, or one probability row per input row for softmax models).
Exits non-zero if any probability differs by more than 1e-5 (or on a malformed export).
"""
import hashlib
import json
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

TOL = 1e-5


def code(v):
    """A categorical value's code: the first 24 bits of the MD5 of its text (driftd's); a
    number or a boolean is taken as its text, as `/v1` takes it (`3`, `true`)."""
    if isinstance(v, bool):
        v = "true" if v else "false"
    elif isinstance(v, (int, float)):
        v = str(int(v)) if float(v).is_integer() else repr(float(v))
    return float(int(hashlib.md5(v.encode()).hexdigest()[:6], 16))


def encode(rows, encoding):
    """Raw rows into the network's inputs: the numeric features, then one one-hot block per
    categorical feature over its vocabulary, its last input "other"."""
    if encoding is None:
        return torch.tensor(rows, dtype=torch.float32)
    cat = {v["feature"]: v["codes"] for v in encoding["vocabularies"]}
    out = []
    for row in rows:
        if len(row) != encoding["n_raw"]:
            raise SystemExit(f"a row has {len(row)} values, the model takes {encoding['n_raw']}")
        enc = [float(v) for i, v in enumerate(row) if i not in cat]
        for v in encoding["vocabularies"]:
            c = code(row[v["feature"]])
            block = [0.0] * (len(v["codes"]) + 1)
            block[v["codes"].index(c) if c in v["codes"] else len(v["codes"])] = 1.0
            enc.extend(block)
        out.append(enc)
    return torch.tensor(out, dtype=torch.float32)


def member_proba(tensors, sidecar, m, x):
    arch = sidecar["arch"]
    scaler = sidecar["members"][m]["scaler"]
    mean = torch.tensor(scaler["mean"], dtype=torch.float32)
    std = torch.tensor(scaler["std"], dtype=torch.float32)
    # The safetensors copy of the scaler must agree with the sidecar.
    for name, ref in (("mean", mean), ("std", std)):
        key = f"members.{m}.scaler.{name}"
        if key in tensors and not torch.equal(tensors[key], ref):
            raise SystemExit(f"{key} differs between safetensors and sidecar")
    a = (x - mean) / std
    n_layers = len(arch["layers"]) + 1
    for layer in range(n_layers):
        w = tensors[f"members.{m}.layers.{layer}.weight"]
        b = tensors[f"members.{m}.layers.{layer}.bias"]
        a = F.linear(a, w, b)
        if layer < n_layers - 1:
            if arch["activation"] != "relu":
                raise SystemExit(f"unsupported activation {arch['activation']}")
            a = torch.relu(a)
    if arch["output"] == "sigmoid":
        return torch.sigmoid(a).reshape(-1)
    if arch["output"] == "softmax":
        return torch.softmax(a, dim=-1)
    raise SystemExit(f"unsupported output {arch['output']}")


def main():
    if len(sys.argv) != 5:
        raise SystemExit(__doc__)
    st_path, sidecar_path, input_path, expected_path = sys.argv[1:]
    tensors = load_file(st_path)
    with open(sidecar_path) as fh:
        sidecar = json.load(fh)
    with open(input_path) as fh:
        x = encode(json.load(fh)["x"], sidecar.get("encoding"))
    with open(expected_path) as fh:
        expected = torch.tensor(json.load(fh)["proba"], dtype=torch.float64)
    if sidecar.get("format") != "driftd-mlp":
        raise SystemExit("not a driftd-mlp sidecar")
    if x.ndim != 2 or x.shape[1] != sidecar["arch"]["n_features"]:
        raise SystemExit(f"input shape {tuple(x.shape)} does not match n_features")
    weights = sidecar["ensemble"]["weights"]
    if sidecar["ensemble"]["method"] != "weighted_mean_proba" or len(weights) != len(sidecar["members"]):
        raise SystemExit("bad ensemble layout")
    with torch.no_grad():
        proba = None
        for m, w in enumerate(weights):
            p = torch.tensor(w, dtype=torch.float32) * member_proba(tensors, sidecar, m, x)
            proba = p if proba is None else proba + p
    if proba.shape != expected.shape:
        raise SystemExit(f"prediction shape {tuple(proba.shape)} != expected {tuple(expected.shape)}")
    diff = (proba.double() - expected).abs().max().item() if proba.numel() else 0.0
    print(json.dumps({"rows": x.shape[0], "members": len(weights), "max_abs_diff": diff}))
    if not diff <= TOL:
        print(f"FAIL: max |diff| {diff:.3g} > {TOL}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
