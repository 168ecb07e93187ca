"""The lecture's MNIST network written with the API: 784-256-128-10 ReLU, softmax cross-entropy, Adam.

Fashion-MNIST by default (apt-get install dataset-fashion-mnist); any directory of MNIST IDX files
with --data DIR (e.g. the original MNIST digits).

Run: python examples/mnist_mlp.py [--data DIR] [--epochs 2] [--limit N]
"""
import argparse
import time

import pybackprop as pb


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=None, help="directory of MNIST IDX files [default: Fashion-MNIST]")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--limit", type=int, default=None, help="train on the first N examples only")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    X_train, y_train, X_test, y_test = (pb.datasets.idx_dir(args.data) if args.data
                                        else pb.datasets.fashion_mnist())
    if args.limit:
        X_train, y_train = X_train[:args.limit], y_train[:args.limit]
    classes = int(max(y_train.max(), y_test.max())) + 1

    pb.manual_seed(args.seed)
    model = pb.nn.Sequential(
        pb.nn.Linear(X_train.shape[1], 256), pb.nn.ReLU(),
        pb.nn.Linear(256, 128), pb.nn.ReLU(),
        pb.nn.Linear(128, classes),
    )
    loss_fn = pb.nn.CrossEntropyLoss()
    opt = pb.optim.Adam(model.parameters(), lr=args.lr)
    loader = pb.data.DataLoader(X_train, y_train, args.batch_size, shuffle=True, seed=args.seed)

    for epoch in range(args.epochs):
        t0, total = time.perf_counter(), 0.0
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(yb)
        with pb.no_grad():
            acc = float((model(X_test).numpy().argmax(1) == y_test).mean())
        print(f"epoch {epoch + 1}: train loss {total / len(y_train):.4f}, test accuracy {acc:.4f} "
              f"({time.perf_counter() - t0:.1f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
