"""Ridge regression by gradient descent, with autograd's gradient checked against the closed form.

    L(W) = 1/2 ||X W - Y||^2 + gamma/2 ||W||^2        X (N, D), Y (N, K), W (D, K)
    dL/dW = (X^T X + gamma I) W - X^T Y               minimum at W* = (X^T X + gamma I)^{-1} X^T Y

Gradient descent with step 1 / lambda_max(X^T X + gamma I) converges to W*.

Run: python examples/linear_regression_gd.py [--n 200] [--d 5] [--k 2] [--gamma 0.1] [--steps 500]
"""
import argparse

import numpy as np

import pybackprop as pb


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--d", type=int, default=5)
    ap.add_argument("--k", type=int, default=2)
    ap.add_argument("--gamma", type=float, default=0.1)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    X = rng.standard_normal((args.n, args.d))
    W_true = rng.standard_normal((args.d, args.k))
    Y = X @ W_true + 0.1 * rng.standard_normal((args.n, args.k))
    A = X.T @ X + args.gamma * np.eye(args.d)
    W_star = np.linalg.solve(A, X.T @ Y)

    W = pb.tensor(rng.standard_normal((args.d, args.k)), requires_grad=True)      # float64
    def loss_of(W):
        r = pb.tensor(X) @ W - pb.tensor(Y)
        return 0.5 * (r * r).sum() + 0.5 * args.gamma * (W * W).sum()

    loss_of(W).backward()
    closed = A @ W.numpy() - X.T @ Y
    err = np.abs(W.grad.numpy() - closed).max()
    print(f"autograd dL/dW vs (X^T X + gamma I) W - X^T Y: max abs difference {err:.2e}")
    assert err < 1e-9 * max(1.0, np.abs(closed).max()), err

    lr = 1.0 / np.linalg.eigvalsh(A).max()
    opt = pb.optim.SGD([W], lr=lr)            # W <- W - lr * dL/dW
    for step in range(args.steps + 1):
        opt.zero_grad()
        loss = loss_of(W)
        if step % (args.steps // 5 or 1) == 0:
            print(f"step {step:>4}  loss {loss.item():.6f}  |W - W*| = {np.abs(W.numpy() - W_star).max():.2e}")
        loss.backward()
        opt.step()
    gap = np.abs(W.numpy() - W_star).max()
    print(f"gradient descent reached the closed-form W* to {gap:.2e}")
    assert gap < 1e-6, gap
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
