"""The two computational graphs of the backpropagation lecture, node by node.

1. f(x, y, z) = (x + y) * z at x = -2, y = 5, z = -4:
       q = x + y = 3,  f = q z = -12
       df/dq = z = -4,  df/dz = q = 3,  df/dx = df/dy = df/dq * 1 = -4
2. The sigmoid neuron f(w, x) = 1 / (1 + exp(-(w0 x0 + w1 x1 + w2))) with w = (2, -3, -3), x = (-1, -2),
   built from primitive gates (*, +, *-1, exp, +1, 1/x), then checked against the sigmoid gate whose
   local gradient is f (1 - f).

Each node's value and gradient (d f / d node) is printed; the graphs are written as Graphviz DOT files
(render with `dot -Tpng graph1.dot -o graph1.png`).

Run: python examples/computational_graph.py [--out DIR]
"""
import argparse
import os

import pybackprop as pb


def show(title, nodes, output):
    """Print value and gradient of each named node: gradients of the output w.r.t. every node."""
    names, tensors = zip(*nodes)
    grads = pb.autograd.grad(output, list(tensors), retain_graph=True)
    print(title)
    print(f"  {'node':<10}{'value':>10}{'gradient':>12}")
    for name, t, g in zip(names, tensors, grads):
        print(f"  {name:<10}{t.item():>10.4f}{g.item():>12.4f}")
    return {n: g.item() for n, g in zip(names, grads)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=".", help="directory for the .dot files")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    # 1. f = (x + y) * z
    x = pb.tensor(-2.0, dtype=pb.float64, requires_grad=True)
    y = pb.tensor(5.0, dtype=pb.float64, requires_grad=True)
    z = pb.tensor(-4.0, dtype=pb.float64, requires_grad=True)
    q = x + y
    f = q * z
    g = show("f = (x + y) * z", [("x", x), ("y", y), ("z", z), ("q=x+y", q), ("f", f)], f)
    assert (g["x"], g["y"], g["z"], g["q=x+y"]) == (-4.0, -4.0, 3.0, -4.0)
    f.backward()                       # fills x.grad, y.grad, z.grad, drawn in the DOT picture
    assert (x.grad.item(), y.grad.item(), z.grad.item()) == (-4.0, -4.0, 3.0)
    path1 = os.path.join(args.out, "graph1.dot")
    with open(path1, "w") as fh:
        fh.write(pb.viz.to_dot(f))

    # 2. the sigmoid neuron from primitive gates
    w0, w1, w2 = (pb.tensor(v, dtype=pb.float64, requires_grad=True) for v in (2.0, -3.0, -3.0))
    x0, x1 = (pb.tensor(v, dtype=pb.float64, requires_grad=True) for v in (-1.0, -2.0))
    a = w0 * x0
    b = w1 * x1
    s = a + b + w2                      # the dot product plus bias: 1
    e = (s * -1.0).exp()                # exp(-1) = 0.3679
    d = e + 1.0                         # 1.3679
    out = 1.0 / d                       # 0.7311
    print()
    g = show("sigmoid neuron 1 / (1 + exp(-(w0 x0 + w1 x1 + w2)))",
             [("w0", w0), ("x0", x0), ("w1", w1), ("x1", x1), ("w2", w2), ("w0*x0", a), ("w1*x1", b),
              ("dot", s), ("exp(-dot)", e), ("1+exp", d), ("f", out)], out)
    fval = out.item()
    local = fval * (1 - fval)           # the sigmoid gate's local gradient: 0.1966
    print(f"  sigmoid gate shortcut: f (1 - f) = {local:.4f} = d f / d dot")
    for name, expected in (("dot", local), ("w0", -1 * local), ("x0", 2 * local), ("w1", -2 * local),
                           ("x1", -3 * local), ("w2", local)):
        assert abs(g[name] - expected) < 1e-12, (name, g[name], expected)
    # the same neuron through the fused sigmoid gives the same gradients
    fused = (w0 * x0 + w1 * x1 + w2).sigmoid()
    g2 = pb.autograd.grad(fused, [w0, x0, w1, x1, w2])
    assert all(abs(u.item() - g[n]) < 1e-12 for u, n in zip(g2, ("w0", "x0", "w1", "x1", "w2")))
    out.backward()
    path2 = os.path.join(args.out, "graph2.dot")
    with open(path2, "w") as fh:
        fh.write(pb.viz.to_dot(out))
    print(f"\nwrote {path1} and {path2} (render: dot -Tpng {path1} -o graph1.png)")


if __name__ == "__main__":
    main()
