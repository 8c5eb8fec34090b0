"""The reference for `cargo bench --bench shadow`: the per-row work of one challenger in
shadow, in PyTorch (one thread, torch.nn).

Per labelled row: the champion's and the challenger's forward pass on that row (the
challenger predicts before it learns); per `--batch-rows` rows, one SGD step of the
challenger on the mean log-loss of that mini-batch. Prints µs per row (the loop alone).
"""
import argparse
import time

import torch


def mlp(nf, hidden):
    layers, inp = [], nf
    for h in hidden:
        layers += [torch.nn.Linear(inp, h), torch.nn.ReLU()]
        inp = h
    layers.append(torch.nn.Linear(inp, 1))
    return torch.nn.Sequential(*layers)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--features", type=int, default=8)
    ap.add_argument("--hidden", default="20,10")
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--batch-rows", type=int, default=16)
    ap.add_argument("--lr", type=float, default=0.2)
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    hidden = [int(h) for h in a.hidden.split(",") if h]
    champion, challenger = mlp(a.features, hidden), mlp(a.features, hidden)
    challenger.load_state_dict(champion.state_dict())
    opt = torch.optim.SGD(challenger.parameters(), lr=a.lr)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    x = torch.randn(a.rows, a.features)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).float()
    batch_x, batch_y = [], []
    start = time.perf_counter()
    for i in range(a.rows):
        row = x[i : i + 1]
        with torch.no_grad():
            champion(row)
            challenger(row)
        batch_x.append(row)
        batch_y.append(y[i : i + 1])
        if len(batch_x) == a.batch_rows:
            opt.zero_grad()
            loss = loss_fn(challenger(torch.cat(batch_x)).squeeze(1), torch.cat(batch_y))
            loss.backward()
            opt.step()
            batch_x, batch_y = [], []
    elapsed = time.perf_counter() - start
    print(f"{elapsed * 1e6 / a.rows:.3f}")


if __name__ == "__main__":
    main()
