"""Training-step throughput: pybackprop vs PyTorch eager, same loops, same run, interleaved.

Two workloads, each written exactly as a user would write them:
  * mlp: 784-128-10 ReLU MLP, batch 64, CrossEntropyLoss, SGD(lr=0.01, momentum=0.9)
  * xor: 2-4-1 sigmoid net, batch 4, MSELoss, SGD(lr=0.5)
A "step" is zero_grad + forward + loss + backward + optimizer.step. Each repeat times a
block of steps for pybackprop then for PyTorch (alternating which goes first), so both see
the same machine load; we report the median samples/s over repeats with min-max ranges.

    python benchmarks/bench_train_step.py [--repeats 15] [--threads 1,2] [--write]

--write replaces the "## Training step (bench_train_step.py)" section of
benchmarks/RESULTS.md (other sections are kept).
"""
import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np

import pybackprop as pb

try:
    import torch
except ImportError:          # the benchmark still runs, without the comparison
    torch = None

HEADING = "## Training step (bench_train_step.py)"


# ----------------------------------------------------------------- pybackprop
def pb_mlp(x, y):
    pb.manual_seed(0)
    model = pb.nn.Sequential(pb.nn.Linear(784, 128), pb.nn.ReLU(), pb.nn.Linear(128, 10))
    loss_fn = pb.nn.CrossEntropyLoss()
    opt = pb.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


def pb_xor(x, y):
    pb.manual_seed(0)
    model = pb.nn.Sequential(pb.nn.Linear(2, 4), pb.nn.Sigmoid(), pb.nn.Linear(4, 1), pb.nn.Sigmoid())
    loss_fn = pb.nn.MSELoss()
    opt = pb.optim.SGD(model.parameters(), lr=0.5)

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


# -------------------------------------------------------------------- PyTorch
def torch_mlp(x, y):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    loss_fn = torch.nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


def torch_xor(x, y):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Sigmoid(), torch.nn.Linear(4, 1),
                                torch.nn.Sigmoid())
    loss_fn = torch.nn.MSELoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    x, y = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


def data(name):
    rng = np.random.default_rng(0)
    if name == "mlp":
        return rng.random((64, 784), dtype=np.float32), rng.integers(0, 10, 64).astype(np.int64)
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    return x, np.array([[0], [1], [1], [0]], np.float32)


WORKLOADS = {"mlp": (pb_mlp, torch_mlp, 64, "784-128-10 ReLU MLP, batch 64, CE, SGD(momentum)"),
             "xor": (pb_xor, torch_xor, 4, "2-4-1 sigmoid XOR, batch 4, MSE, SGD")}


def time_block(step, n):
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return time.perf_counter() - t0


def calibrate(step, target=0.05):
    n = 1
    while True:
        if time_block(step, n) >= target or n >= 1 << 16:
            return n
        n *= 2


def run(name, repeats):
    make_pb, make_torch, batch, desc = WORKLOADS[name]
    x, y = data(name)
    steps = {"pybackprop": make_pb(x, y)}
    if torch is not None:
        steps["torch"] = make_torch(x, y)
    for s in steps.values():      # warm up
        for _ in range(20):
            s()
    n = calibrate(steps["pybackprop"])
    rates = {k: [] for k in steps}
    order = list(steps)
    for r in range(repeats):
        for k in (order if r % 2 == 0 else order[::-1]):
            dt = time_block(steps[k], n)
            rates[k].append(n * batch / dt)
    return desc, rates


def fmt(v):
    return f"{v:,.0f}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", default=None,
                    help="comma-separated thread counts, applied to both libraries (default: as configured)")
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = ap.parse_args(argv)
    counts = [int(c) for c in args.threads.split(",")] if args.threads else [None]
    info = pb.backend_info()
    env = (f"pybackprop {pb.__version__} (isa={info['isa']}); "
           + (f"torch {torch.__version__}" if torch else "torch not installed")
           + f"; Python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}, "
           f"{os.cpu_count()} logical CPUs; load average at start {os.getloadavg()[0]:.1f} "
           "(other jobs share the machine: compare columns, not runs)")
    lines = [HEADING, "", env, "", f"Median samples/s over {args.repeats} interleaved repeats "
             "(min-max in brackets); step = zero_grad + forward + loss + backward + SGD step; "
             "both libraries run with the same thread count.", "",
             "| workload | threads | pybackprop samples/s | PyTorch eager samples/s | ratio |",
             "|---|---|---|---|---|"]
    for count in counts:
        if count:
            pb.set_num_threads(count)
            if torch is not None:
                torch.set_num_threads(count)
        threads = pb.get_num_threads()
        if torch is not None and torch.get_num_threads() != threads:
            threads = f"{threads} (torch {torch.get_num_threads()})"
        for name in WORKLOADS:
            desc, rates = run(name, args.repeats)
            med = {k: statistics.median(v) for k, v in rates.items()}
            ratio = med["pybackprop"] / med["torch"] if "torch" in med else float("nan")
            p = rates["pybackprop"]
            t = rates.get("torch")
            tcell = f"{fmt(med['torch'])} [{fmt(min(t))}-{fmt(max(t))}]" if t else "n/a"
            lines.append(f"| {desc} | {threads} | {fmt(med['pybackprop'])} [{fmt(min(p))}-{fmt(max(p))}] | "
                         f"{tcell} | {ratio:.2f}x |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")
        write_section(path, text)
        print(f"wrote {path}")
    return 0


def write_section(path, section):
    """Replace (or append) our section of RESULTS.md, keeping every other section."""
    old = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
    lines = old.splitlines(keepends=True)
    out, skipping, done = [], False, False
    for line in lines:
        if line.strip() == HEADING:
            skipping = True
            if not done:
                out.append(section)
                done = True
            continue
        if skipping and line.startswith("## "):
            skipping = False
            out.append("\n")
        if not skipping:
            out.append(line)
    if not done:
        if out and not out[-1].endswith("\n"):
            out.append("\n")
        out.append("\n" + section)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("".join(out))
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
