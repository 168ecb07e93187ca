"""A linear softmax classifier with L2 regularisation on the spiral data (the CS231n lecture set).

    scores = X W + b,   L = mean_i -log softmax(scores_i)[y_i] + (reg / 2) * sum(W^2)

trained by full-batch gradient descent. The spirals are not linearly separable, so a linear classifier
tops out near 50% here -- the motivation for hidden layers (try `--hidden 100` for a 2-layer ReLU net).
The gradient of the data loss is checked once against the closed form  dL/dscores = (softmax - onehot) / N.

Run: python examples/softmax_classifier.py [--steps 200] [--lr 1.0] [--reg 1e-3] [--hidden 0]
"""
import argparse

import numpy as np

import pybackprop as pb


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--lr", type=float, default=1.0)
    ap.add_argument("--reg", type=float, default=1e-3)
    ap.add_argument("--hidden", type=int, default=0, help="0: linear softmax; >0: one ReLU hidden layer")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    X, y = pb.datasets.spirals(100, 3, seed=args.seed)
    pb.manual_seed(args.seed)
    if args.hidden:
        model = pb.nn.Sequential(pb.nn.Linear(2, args.hidden), pb.nn.ReLU(), pb.nn.Linear(args.hidden, 3))
    else:
        model = pb.nn.Sequential(pb.nn.Linear(2, 3))
    weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
    loss_fn = pb.nn.CrossEntropyLoss()

    # the data-loss gradient w.r.t. the scores, by autograd and by the closed form
    scores = pb.tensor(model(X).numpy(), requires_grad=True)
    loss_fn(scores, y).backward()
    z = scores.numpy().astype(np.float64)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    np.testing.assert_allclose(scores.grad.numpy(), p / len(y), atol=1e-6)
    print("autograd dL/dscores matches (softmax - onehot) / N")

    opt = pb.optim.SGD(model.parameters(), lr=args.lr)
    for step in range(args.steps + 1):
        opt.zero_grad()
        data_loss = loss_fn(model(X), y)
        reg_loss = sum(((w * w).sum() for w in weights), pb.tensor(0.0)) * (0.5 * args.reg)
        loss = data_loss + reg_loss
        if step % (args.steps // 10 or 1) == 0:
            print(f"step {step:>4}  loss {loss.item():.4f} (data {data_loss.item():.4f}, L2 {reg_loss.item():.4f})")
        loss.backward()
        opt.step()

    with pb.no_grad():
        acc = float((model(X).numpy().argmax(1) == y).mean())
    print(f"training accuracy {acc:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
