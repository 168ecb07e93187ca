"""Universal approximation: one hidden layer fits sin(x) on [-pi, pi].

A 1-H-1 network with tanh hidden units, trained with Adam on full batches of samples of sin.
Prints the mean squared error as it falls and, with matplotlib, writes universal_approximation.png
(the fit against the target, and what the hidden units compute).

Run: python examples/universal_approximation.py [--hidden 16] [--steps 2000] [--out DIR]
"""
import argparse
import os

import numpy as np

import pybackprop as pb


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hidden", type=int, default=16)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--activation", choices=("tanh", "relu", "sigmoid"), default="tanh")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=".", help="directory for the plot")
    args = ap.parse_args()

    x, y = pb.datasets.function_1d(np.sin, n=256, low=-np.pi, high=np.pi, seed=args.seed)
    act = {"tanh": pb.nn.Tanh, "relu": pb.nn.ReLU, "sigmoid": pb.nn.Sigmoid}[args.activation]
    pb.manual_seed(args.seed)
    model = pb.nn.Sequential(pb.nn.Linear(1, args.hidden), act(), pb.nn.Linear(args.hidden, 1))
    opt = pb.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = pb.nn.MSELoss()
    for step in range(args.steps + 1):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        if step % (args.steps // 10 or 1) == 0:
            print(f"step {step:>5}  mse {loss.item():.6f}")
        loss.backward()
        opt.step()

    xt, yt = pb.datasets.function_1d(np.sin, n=500, grid=True)
    with pb.no_grad():
        fit = model(xt).numpy()
        hidden = model[1](model[0](xt)).numpy() if hasattr(model, "__getitem__") else None
    mse = float(np.mean((fit - yt) ** 2))
    print(f"{args.hidden} {args.activation} units: test mse on a grid of 500 points {mse:.2e}, "
          f"max error {np.abs(fit - yt).max():.3f}")

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install pybackprop[train])")
        return 0
    fig, axes = plt.subplots(1, 2 if hidden is not None else 1, figsize=(10, 4), squeeze=False)
    ax = axes[0, 0]
    ax.plot(xt[:, 0], yt[:, 0], "k-", lw=3, alpha=0.3, label="sin(x)")
    ax.plot(xt[:, 0], fit[:, 0], "r-", label=f"network, {args.hidden} {args.activation} units")
    ax.scatter(x[:, 0], y[:, 0], s=4, c="k", label="training samples")
    ax.set_title(f"fit (test mse {mse:.1e})")
    ax.legend()
    if hidden is not None:
        w2 = model[2].weight.numpy()[:, 0]
        axes[0, 1].plot(xt[:, 0], hidden * w2)
        axes[0, 1].set_title("hidden units, scaled by their output weight")
    fig.tight_layout()
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "universal_approximation.png")
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
