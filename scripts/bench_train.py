#!/usr/bin/env python3
"""PyTorch reference for benches/train.rs: the same MLP, data, batch size and threads.

Usage: bench_train.py DIR --epochs E --threads T [--lr 0.01] [--momentum 0.9] [--batch 32]
                      [--hidden 20,10] [--seed 0]

DIR holds meta.json ({"n_features": F}) and little-endian f32 files x_train.f32, y_train.f32,
x_test.f32, y_test.f32 written by the Rust bench. Standardises with the training mean/std,
trains nn.Sequential(Linear, ReLU, ..., Linear(·, 1)) with He-normal init, BCEWithLogitsLoss
and torch.optim.SGD(momentum) on shuffled mini-batches (the idiomatic loop: randperm, index,
zero_grad, forward, backward, step), and prints one JSON line with seconds per epoch
(training loop only) and the test accuracy.
"""
import argparse
import json
import os
import time

import numpy as np
import torch
from torch import nn


def load(d, name, f):
    a = np.fromfile(os.path.join(d, name), dtype="<f4")
    return a.reshape(-1, f) if f else a


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--epochs", type=int, required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--hidden", default="20,10")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    with open(os.path.join(args.dir, "meta.json")) as fh:
        f = json.load(fh)["n_features"]
    xtr, ytr = load(args.dir, "x_train.f32", f), load(args.dir, "y_train.f32", 0)
    xte, yte = load(args.dir, "x_test.f32", f), load(args.dir, "y_test.f32", 0)
    mean = xtr.astype(np.float64).mean(0)
    std = xtr.astype(np.float64).std(0)
    std[std == 0] = 1.0
    xtr = torch.from_numpy(((xtr - mean) / std).astype(np.float32))
    xte = torch.from_numpy(((xte - mean) / std).astype(np.float32))
    ytr = torch.from_numpy(ytr).reshape(-1, 1)
    yte = torch.from_numpy(yte)

    widths = [f] + [int(h) for h in args.hidden.split(",") if h] + [1]
    layers = []
    for i in range(len(widths) - 1):
        lin = nn.Linear(widths[i], widths[i + 1])
        nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
        nn.init.zeros_(lin.bias)
        layers.append(lin)
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    loss_fn = nn.BCEWithLogitsLoss()
    n, b = xtr.shape[0], args.batch

    t0 = time.perf_counter()
    for _ in range(args.epochs):
        perm = torch.randperm(n)
        for i in range(0, n, b):
            idx = perm[i : i + b]
            xb, yb = xtr[idx], ytr[idx]
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
    elapsed = time.perf_counter() - t0

    with torch.no_grad():
        pred = (torch.sigmoid(model(xte)).reshape(-1) >= 0.5).float()
        acc = (pred == yte).float().mean().item()
    print(json.dumps({
        "seconds_per_epoch": elapsed / max(args.epochs, 1),
        "seconds": elapsed,
        "test_accuracy": acc,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
