#!/usr/bin/env python3
"""Trains a small model in PyTorch and saves it in driftd's state_dict import layout.

Usage: torch_model.py OUT_DIR N_FEATURES N_CLASSES SEED pt|safetensors [HIDDEN ...]

Writes the parameters of an nn.Sequential of Linear and ReLU layers to OUT_DIR/state_dict.pt
(torch.save of the state_dict as a plain dict) or OUT_DIR/state_dict.safetensors,
OUT_DIR/scaler.json ({"mean", "scale"} of the training rows, as StandardScaler would) and
OUT_DIR/expected.json: {"x": rows, "p": PyTorch's output for them} where p is P(label = 1)
per row for one output unit (binary) and the softmax row otherwise.
"""
import json
import os
import sys

import torch


def main():
    if len(sys.argv) < 6 or sys.argv[5] not in ("pt", "safetensors"):
        raise SystemExit(__doc__)
    out, n_features, n_classes, seed = sys.argv[1], *map(int, sys.argv[2:5])
    fmt = sys.argv[5]
    hidden = [int(h) for h in sys.argv[6:]] or [16, 8]
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    n = 1000
    x = torch.randn(n, n_features) * 3.0 + 1.5
    w_true = torch.randn(n_features, n_classes)
    y = (x @ w_true).argmax(dim=1)
    mean = x.mean(dim=0)
    scale = x.std(dim=0, unbiased=False)
    widths = [n_features, *hidden, 1 if n_classes == 2 else n_classes]
    layers = []
    for i in range(len(widths) - 1):
        layers.append(torch.nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    z = (x - mean) / scale
    for _ in range(100):
        opt.zero_grad()
        logits = net(z)
        if n_classes == 2:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 0], y.float())
        else:
            loss = torch.nn.functional.cross_entropy(logits, y)
        loss.backward()
        opt.step()
    os.makedirs(out, exist_ok=True)
    if fmt == "pt":
        torch.save(dict(net.state_dict()), os.path.join(out, "state_dict.pt"))
    else:
        from safetensors.torch import save_file

        save_file(net.state_dict(), os.path.join(out, "state_dict.safetensors"))
    with open(os.path.join(out, "scaler.json"), "w") as fh:
        json.dump({"mean": mean.tolist(), "scale": scale.tolist()}, fh)
    x_eval = torch.randn(40, n_features) * 3.0 + 1.5
    mean32 = torch.tensor(mean.tolist(), dtype=torch.float32)
    scale32 = torch.tensor(scale.tolist(), dtype=torch.float32)
    with torch.no_grad():
        logits = net((x_eval - mean32) / scale32)
        p = torch.sigmoid(logits[:, 0]) if n_classes == 2 else torch.softmax(logits, dim=1)
    with open(os.path.join(out, "expected.json"), "w") as fh:
        json.dump({"x": x_eval.tolist(), "p": p.tolist()}, fh)


if __name__ == "__main__":
    main()
