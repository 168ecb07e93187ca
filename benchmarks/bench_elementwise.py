"""Elementwise kernels (activations, losses, maxout, softmax backward) next to numpy equivalents.

ns per element, 1 thread (pybackprop.set_num_threads(1); numpy's ufuncs are single-threaded),
float32 and float64. All cases are interleaved round by round (every sample of every case in
round r before any of round r + 1) so that load from other processes hits them alike; the
reported figure is the median over rounds. Each sample repeats the call until it has run for
at least --sample-ms.

    python benchmarks/bench_elementwise.py [--rounds 9] [--only gelu,softplus] [--generic] [--n 1048576]

--generic adds a column for pybackprop's portable path (_core._set_isa("generic")).
numpy has no erf: the numpy column of "gelu" is the tanh-form GELU written with ufuncs.
"""
import argparse
import statistics
import time

import numpy as np

from pybackprop import _core

DTYPES = {"f32": np.float32, "f64": np.float64}


def act_fwd_case(act, dtype, n, rng):
    z = (rng.standard_normal(n) * 3).astype(dtype)
    y = np.empty_like(z)
    t = np.empty_like(z)
    c = dtype(np.sqrt(2 / np.pi))

    def ours():
        _core.act_forward(act, z, out=y)

    def np_relu():
        np.maximum(z, 0, out=y)

    def np_sigmoid():
        np.negative(z, out=t)
        np.exp(t, out=t)
        np.add(t, 1, out=t)
        np.reciprocal(t, out=y)

    def np_tanh():
        np.tanh(z, out=y)

    def np_gelu_tanh():
        np.multiply(z, z, out=t)
        np.multiply(t, dtype(0.044715), out=t)
        np.add(t, 1, out=t)
        np.multiply(t, z, out=t)
        np.multiply(t, c, out=t)
        np.tanh(t, out=t)
        np.add(t, 1, out=t)
        np.multiply(z, t, out=y)
        np.multiply(y, dtype(0.5), out=y)

    def np_softplus():
        np.logaddexp(z, 0, out=y)

    def np_elu():
        np.minimum(z, 0, out=t)
        np.expm1(t, out=t)
        np.copyto(y, z)
        np.copyto(y, t, where=z <= 0)

    npf = {"relu": np_relu, "sigmoid": np_sigmoid, "tanh": np_tanh, "gelu": np_gelu_tanh,
           "gelu_tanh": np_gelu_tanh, "softplus": np_softplus, "elu": np_elu}.get(act)
    return ours, npf, n


def act_bwd_case(act, dtype, n, rng):
    z = (rng.standard_normal(n) * 3).astype(dtype)
    up = rng.standard_normal(n).astype(dtype)
    y = _core.act_forward(act, z)
    saved = y if _core.derivative_uses_output(act) else z
    g = np.empty_like(z)
    t = np.empty_like(z)

    def ours():
        _core.act_backward(act, up, saved, out=g)

    def np_sigmoid():  # up * y (1 - y)
        np.subtract(1, y, out=t)
        np.multiply(t, y, out=t)
        np.multiply(up, t, out=g)

    def np_softplus():  # up * sigmoid(z)
        np.negative(z, out=t)
        np.exp(t, out=t)
        np.add(t, 1, out=t)
        np.divide(up, t, out=g)

    npf = {"sigmoid": np_sigmoid, "softplus": np_softplus, "gelu": np_softplus}.get(act)
    return ours, npf, n


def maxout_fwd_case(dtype, n, rng, pieces=4):
    z = rng.standard_normal((pieces, n // pieces)).astype(dtype)

    def ours():
        _core.maxout_forward(z)

    def npf():
        a = z.argmax(axis=0)
        np.take_along_axis(z, a[None], axis=0)

    return ours, npf, z.size


def maxout_bwd_case(dtype, n, rng, pieces=4):
    m = n // pieces
    up = rng.standard_normal(m).astype(dtype)
    arg = rng.integers(0, pieces, m).astype(np.int32)
    ks = np.arange(pieces, dtype=np.int32)[:, None]

    def ours():
        _core.maxout_backward(up, arg, pieces)

    def npf():
        np.where(ks == arg, up, dtype(0))

    return ours, npf, n


def squared_error_case(dtype, n, rng):
    a = rng.standard_normal(n).astype(dtype)
    b = rng.standard_normal(n).astype(dtype)

    def ours():
        _core.squared_error(a, b, need_elem=False, need_grad=True, grad_scale=0.5)

    def npf():  # sum d^2 and the gradient 2 d * 0.5 (a fresh array, like ours)
        d = a - b
        float(np.dot(d, d))
        d * dtype(1.0)

    return ours, npf, n


def softmax_bwd_case(dtype, n, rng, c, log):
    rows = max(1, n // c)
    x = rng.standard_normal((rows, c)).astype(dtype)
    y = _core.log_softmax_forward(x) if log else _core.softmax_forward(x)
    gy = rng.standard_normal((rows, c)).astype(dtype)

    def ours():
        (_core.log_softmax_backward if log else _core.softmax_backward)(gy, y)

    def np_soft():
        dot = np.einsum("ij,ij->i", gy, y)[:, None]
        y * (gy - dot)

    def np_log():
        gy - np.exp(y) * gy.sum(axis=1, keepdims=True)

    return ours, (np_log if log else np_soft), rows * c


def build_cases(n, only):
    rng = np.random.default_rng(0)
    cases = []
    for dn, dt in DTYPES.items():
        for act in ["relu", "sigmoid", "tanh", "gelu", "gelu_tanh", "softplus", "elu"]:
            cases.append((f"fwd {act}", dn) + act_fwd_case(act, dt, n, rng))
        for act in ["sigmoid", "gelu", "softplus"]:
            cases.append((f"bwd {act}", dn) + act_bwd_case(act, dt, n, rng))
        cases.append(("maxout_fwd k=4", dn) + maxout_fwd_case(dt, n, rng))
        cases.append(("maxout_bwd k=4", dn) + maxout_bwd_case(dt, n, rng))
        cases.append(("squared_error", dn) + squared_error_case(dt, n, rng))
        for c in (10, 1000):
            cases.append((f"softmax_bwd c={c}", dn) + softmax_bwd_case(dt, n, rng, c, False))
            cases.append((f"log_softmax_bwd c={c}", dn) + softmax_bwd_case(dt, n, rng, c, True))
    if only:
        keys = [k.strip() for k in only.split(",") if k.strip()]
        cases = [cs for cs in cases if any(k in cs[0] for k in keys)]
    return cases


def calibrate(fn, sample_s):
    fn()
    reps = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        dt = time.perf_counter() - t0
        if dt >= sample_s / 4 or reps >= 1 << 16:
            return max(1, int(reps * sample_s / max(dt, 1e-9)))
        reps *= 4


def sample(fn, reps, isa=None):
    if isa:
        _core._set_isa(isa)
    t0 = time.perf_counter_ns()
    for _ in range(reps):
        fn()
    return (time.perf_counter_ns() - t0) / reps


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--n", type=int, default=1 << 20)
    ap.add_argument("--sample-ms", type=float, default=20.0)
    ap.add_argument("--only", default="")
    ap.add_argument("--generic", action="store_true", help="also time the portable path")
    args = ap.parse_args()

    _core.set_num_threads(1)
    best = _core.active_isa()
    cases = build_cases(args.n, args.only)
    # columns: (label, fn, isa)
    runs = []
    for name, dn, ours, npf, n_el in cases:
        cols = [("ours", ours, best)]
        if args.generic and best != "generic":
            cols.append(("generic", ours, "generic"))
        if npf is not None:
            cols.append(("numpy", npf, None))
        for label, fn, isa in cols:
            if isa:
                _core._set_isa(isa)
            reps = calibrate(fn, args.sample_ms / 1e3)
            runs.append(dict(name=name, dtype=dn, label=label, fn=fn, isa=isa, reps=reps, n=n_el, t=[]))
    _core._set_isa(best)
    for r in range(args.rounds):
        order = runs[r % len(runs):] + runs[:r % len(runs)] if runs else []
        for run in order:
            run["t"].append(sample(run["fn"], run["reps"], run["isa"]))
    _core._set_isa(best)

    table = {}
    for run in runs:
        table.setdefault((run["name"], run["dtype"]), {})[run["label"]] = statistics.median(run["t"]) / run["n"]
    labels = ["ours"] + (["generic"] if args.generic and best != "generic" else []) + ["numpy"]
    print(f"ns/element, 1 thread, n = {args.n}, isa = {best}, median of {args.rounds} interleaved rounds")
    hdr = f"{'kernel':<22}{'dtype':<6}" + "".join(f"{lb:>10}" for lb in labels) + f"{'ours/np':>9}"
    print(hdr)
    print("-" * len(hdr))
    for (name, dn), row in table.items():
        cells = "".join(f"{row[lb]:>10.3f}" if lb in row else f"{'-':>10}" for lb in labels)
        ratio = f"{row['ours'] / row['numpy']:>9.2f}" if "numpy" in row else f"{'-':>9}"
        print(f"{name:<22}{dn:<6}{cells}{ratio}")


if __name__ == "__main__":
    main()
