"""XOR with a 2-4-1 sigmoid network and plain (full-batch) gradient descent.

No straight line separates {(0,1), (1,0)} from {(0,0), (1,1)}, so a single neuron cannot learn XOR;
one hidden layer of sigmoid units can. Loss: mean squared error of the sigmoid output, as in the lecture.

Run: python examples/xor.py [--steps 5000] [--lr 2.0] [--seed 0]
"""
import argparse

import numpy as np

import pybackprop as pb


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--lr", type=float, default=2.0)
    ap.add_argument("--hidden", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    X, y = pb.datasets.xor()
    pb.manual_seed(args.seed)
    model = pb.nn.Sequential(pb.nn.Linear(2, args.hidden), pb.nn.Sigmoid(),
                             pb.nn.Linear(args.hidden, 1), pb.nn.Sigmoid())
    loss_fn = pb.nn.MSELoss()
    opt = pb.optim.SGD(model.parameters(), lr=args.lr)      # plain gradient descent: w -= lr * dL/dw

    for step in range(args.steps + 1):
        opt.zero_grad()
        loss = loss_fn(model(X), y)
        if step % (args.steps // 10) == 0:
            print(f"step {step:>5}  loss {loss.item():.6f}")
        loss.backward()
        opt.step()

    with pb.no_grad():
        p = model(X).numpy()
    print("\n x0 x1  target  output")
    for xi, yi, pi in zip(X, y, p):
        print(f"  {xi[0]:.0f}  {xi[1]:.0f}     {yi[0]:.0f}    {pi[0]:.4f}")
    learned = bool(np.all((p > 0.5) == (y > 0.5)))
    print("learned XOR" if learned else "did not learn XOR (try another --seed or more --steps)")
    return 0 if learned else 1


if __name__ == "__main__":
    raise SystemExit(main())
