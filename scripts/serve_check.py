#!/usr/bin/env python3
"""Checks a running driftd's serving routes with clients nobody here wrote.

Usage: serve_check.py HOST:PORT MODEL TOKEN EXPECTED_VERSION

1. Runs the README's "load the champion in PyTorch" example (the python block after the
   `<!-- tested by scripts/serve_check.py -->` marker) to download the champion and build
   it in PyTorch.
2. Asks driftd for predictions of random rows with tritonclient[http] (Open Inference
   Protocol: JSON tensors, binary tensors, and the client's default) and with plain JSON on
   /v1/models/MODEL/predict, and compares every answer with PyTorch's (1e-5).
3. Checks that bad requests made through tritonclient come back as errors with a message.
Exits non-zero on any difference.
"""
import json
import os
import re
import sys
import urllib.request

import numpy as np
import torch
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

TOL = 1e-5
README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "README.md")


def readme_example():
    text = open(README).read()
    m = re.search(r"<!-- tested by scripts/serve_check.py -->\s*```python\n(.*?)```", text, re.S)
    if not m:
        raise SystemExit("README has no tested python example")
    scope = {}
    exec(m.group(1), scope)
    return scope["load_champion"]


def close(a, b, what):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise SystemExit(f"{what}: shape {a.shape} vs {b.shape}")
    worst = float(np.max(np.abs(a - b))) if a.size else 0.0
    if worst > TOL:
        raise SystemExit(f"{what}: differs from PyTorch by {worst}")
    return worst


def main():
    if len(sys.argv) != 5:
        raise SystemExit(__doc__)
    hostport, model, token, expected_version = sys.argv[1:]
    auth = {"Authorization": f"Bearer {token}"}

    predict, version = readme_example()(f"http://{hostport}", model, token)
    if version != expected_version:
        raise SystemExit(f"the champion download is version {version}, expected {expected_version}")

    client = httpclient.InferenceServerClient(url=hostport)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(model, headers=auth)
    meta = client.get_model_metadata(model, headers=auth)
    assert meta["versions"] == [expected_version], meta
    n_features = meta["inputs"][0]["shape"][1]
    n_classes = meta["outputs"][0]["shape"][1]

    rng = np.random.default_rng(5)
    x = (rng.standard_normal((25, n_features)) * 3.0 + 1.0).astype(np.float32)
    ref = predict(torch.from_numpy(x)).numpy()
    ref_classes = np.stack([1 - ref, ref], axis=1) if n_classes == 2 else ref
    worst = 0.0
    for mode in ("json", "binary", "default"):
        inp = httpclient.InferInput("input", list(x.shape), "FP32")
        inp.set_data_from_numpy(x, binary_data=(mode != "json"))
        outputs = None
        if mode != "default":
            outputs = [
                httpclient.InferRequestedOutput("probabilities", binary_data=(mode == "binary")),
                httpclient.InferRequestedOutput("label", binary_data=(mode == "binary")),
            ]
        res = client.infer(model, [inp], outputs=outputs, headers=auth)
        if res.get_response()["model_version"] != expected_version:
            raise SystemExit(f"{mode}: answered by version {res.get_response()['model_version']}")
        worst = max(worst, close(res.as_numpy("probabilities"), ref_classes, f"tritonclient {mode}"))
        labels = res.as_numpy("label")
        if not np.array_equal(labels, ref_classes.argmax(axis=1)):
            raise SystemExit(f"{mode}: labels {labels} differ from the arg-max")

    body = json.dumps({"rows": x.tolist()}).encode()
    req = urllib.request.Request(f"http://{hostport}/v1/models/{model}/predict", data=body,
                                 headers={**auth, "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        answer = json.load(r)
    if str(answer["version"]) != expected_version:
        raise SystemExit(f"/v1 answered by version {answer['version']}")
    got = answer["predictions"]
    if n_classes > 2:
        got = [p["probabilities"] for p in answer["predictions"]]
    worst = max(worst, close(got, ref, "/v1 predict"))

    # Bad requests through the client: each must fail with the server's message.
    def expect_error(says, call):
        try:
            call()
        except InferenceServerException as e:
            if says not in str(e):
                raise SystemExit(f"expected an error saying {says!r}, got {e}")
            return
        raise SystemExit(f"expected an error saying {says!r}, the call succeeded")

    wrong = httpclient.InferInput("input", [2, n_features + 1], "FP32")
    wrong.set_data_from_numpy(np.zeros((2, n_features + 1), dtype=np.float32))
    expect_error("shape", lambda: client.infer(model, [wrong], headers=auth))
    fp64 = httpclient.InferInput("input", list(x.shape), "FP64")
    fp64.set_data_from_numpy(x.astype(np.float64))
    expect_error("datatype FP64", lambda: client.infer(model, [fp64], headers=auth))
    expect_error("no model named", lambda: client.infer("nope", [inp], headers=auth))
    expect_error("needs the read token", lambda: client.infer(model, [inp]))
    print(json.dumps({"ok": True, "max_abs_diff": worst, "rows": len(x)}))


if __name__ == "__main__":
    main()
