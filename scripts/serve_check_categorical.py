#!/usr/bin/env python3
"""Checks a running driftd's Open Inference Protocol route for a model with categorical
features, with tritonclient (a client nobody here wrote).

Usage: serve_check_categorical.py HOST:PORT MODEL TOKEN ROWS.json

ROWS.json: {"numeric": [[...], ...], "categorical": [["pro", "eu", "2"], ...],
            "expected": [P(class 1), ...]} (what /v1 answered for the same rows).
1. The model's metadata declares a FP32 input `input` and a BYTES input `categorical`.
2. Inference with both inputs, as binary tensors (the client's default) and as JSON, agrees
   with the expected probabilities to 1e-6.
3. A BYTES input of the wrong width is refused with a message.
Exits non-zero on any difference.
"""
import json
import sys

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException


def main():
    if len(sys.argv) != 5:
        raise SystemExit(__doc__)
    hostport, model, token, rows_path = sys.argv[1:]
    headers = {"Authorization": f"Bearer {token}"}
    rows = json.load(open(rows_path))
    client = httpclient.InferenceServerClient(url=hostport)
    meta = client.get_model_metadata(model, headers=headers)
    kinds = {i["name"]: (i["datatype"], i["shape"]) for i in meta["inputs"]}
    ncat = len(rows["categorical"][0])
    if kinds.get("categorical") != ("BYTES", [-1, ncat]) or kinds.get("input", ("",))[0] != "FP32":
        raise SystemExit(f"metadata inputs: {meta['inputs']}")
    x = np.array(rows["numeric"], dtype=np.float32)
    c = np.array(rows["categorical"], dtype=np.object_)
    worst = 0.0
    for binary in (True, False):
        a = httpclient.InferInput("input", list(x.shape), "FP32")
        a.set_data_from_numpy(x, binary_data=binary)
        b = httpclient.InferInput("categorical", list(c.shape), "BYTES")
        b.set_data_from_numpy(c, binary_data=binary)
        out = httpclient.InferRequestedOutput("probabilities", binary_data=binary)
        # A fresh dict each time: tritonclient adds Inference-Header-Content-Length to the
        # one it is given, which would then be sent with the JSON request too.
        res = client.infer(model, [a, b], outputs=[out], headers=dict(headers))
        p = res.as_numpy("probabilities")[:, 1]
        diff = float(np.max(np.abs(p - np.array(rows["expected"]))))
        if diff > 1e-6:
            raise SystemExit(f"binary={binary}: OIP and /v1 differ by {diff}")
        worst = max(worst, diff)
    wrong = httpclient.InferInput("categorical", [len(c), ncat + 1], "BYTES")
    wrong.set_data_from_numpy(np.concatenate([c, c[:, :1]], axis=1))
    a = httpclient.InferInput("input", list(x.shape), "FP32")
    a.set_data_from_numpy(x)
    try:
        client.infer(model, [a, wrong], headers=dict(headers))
        raise SystemExit("a BYTES input of the wrong width was answered")
    except InferenceServerException as e:
        if "shape" not in str(e):
            raise SystemExit(f"unexpected refusal: {e}")
    print(json.dumps({"rows": len(x), "max_abs_diff": worst}))


if __name__ == "__main__":
    main()
