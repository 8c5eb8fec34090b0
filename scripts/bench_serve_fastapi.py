#!/usr/bin/env python3
"""The benchmark's reference server: the same exported MLP in PyTorch behind FastAPI + uvicorn.

Usage: bench_serve_fastapi.py EXPORT.safetensors SIDECAR.json PORT

Serves POST /v1/models/{model}/predict with driftd's request and response bodies
({"rows": [[...], ...]} -> {"model", "version", "predictions"}), computing under
torch.inference_mode() with the model built as nn.Sequential per ensemble member.
"""
import json
import sys

import torch
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from safetensors.torch import load_file


def build(st_path, sidecar_path):
    t = load_file(st_path)
    side = json.load(open(sidecar_path))
    n_layers = len(side["arch"]["layers"]) + 1
    members = []
    for m, weight in enumerate(side["ensemble"]["weights"]):
        layers = []
        for l in range(n_layers):
            w = t[f"members.{m}.layers.{l}.weight"]
            lin = torch.nn.Linear(w.shape[1], w.shape[0])
            lin.weight.data.copy_(w)
            lin.bias.data.copy_(t[f"members.{m}.layers.{l}.bias"])
            layers.append(lin)
            if l < n_layers - 1:
                layers.append(torch.nn.ReLU())
        net = torch.nn.Sequential(*layers).eval()
        members.append((t[f"members.{m}.scaler.mean"], t[f"members.{m}.scaler.std"], net, weight))
    sigmoid = side["arch"]["output"] == "sigmoid"

    def predict(x):
        p = 0
        for mean, std, net, weight in members:
            a = net((x - mean) / std)
            p = p + weight * (torch.sigmoid(a[:, 0]) if sigmoid else torch.softmax(a, 1))
        return p

    return predict


class Body(BaseModel):
    rows: list[list[float]]


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    predict = build(sys.argv[1], sys.argv[2])
    app = FastAPI()

    @app.post("/v1/models/{model}/predict")
    def serve(model: str, body: Body):
        with torch.inference_mode():
            p = predict(torch.tensor(body.rows, dtype=torch.float32))
        return {"model": model, "version": 1, "predictions": p.tolist()}

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[3]), log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
