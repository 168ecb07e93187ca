"""What every backend shares: the workloads, the initial weights and the data.

Every worker process builds the same arrays from the same seed (numpy's PCG64 stream is
reproducible across processes and platforms), so all backends start from one set of weights
and see the same batches; the coordinator also checks a fingerprint of them.

Weights are stored the pybackprop way, ``W`` of shape (in_features, out_features) with
``y = x @ W + b``; a backend whose layer stores the transpose (torch's nn.Linear keeps
(out, in)) transposes on load.
"""
import hashlib

import numpy as np

SEED = 20240607

# id -> description. "hidden"/"out" are activations; "loss" is "ce" (softmax cross-entropy on
# logits) or "mse"; "opt" is (name, hyper-parameters) with PyTorch's conventions; "kind" is
# "train" (samples/s of whole training steps) or "forward" (latency of one inference call).
WORKLOADS = {
    "A": dict(sizes=[784, 128, 10], batch=64, hidden="relu", out=None, loss="ce",
              opt=("sgd", dict(lr=0.1)), kind="train", n_batches=8),
    "B": dict(sizes=[784, 256, 128, 10], batch=128, hidden="relu", out=None, loss="ce",
              opt=("adam", dict(lr=1e-3)), kind="train", n_batches=8),
    "C": dict(sizes=[784, 1024, 1024, 10], batch=512, hidden="relu", out=None, loss="ce",
              opt=("sgd", dict(lr=0.01, momentum=0.9)), kind="train", n_batches=4),
    "D": dict(sizes=[2, 4, 1], batch=4, hidden="sigmoid", out="sigmoid", loss="mse",
              opt=("sgd", dict(lr=0.5)), kind="train", n_batches=1),
    "E": dict(sizes=[4096, 4096, 4096, 10], batch=1024, hidden="relu", out=None, loss="ce",
              opt=("sgd", dict(lr=0.01)), kind="train", n_batches=2),
    "F": dict(sizes=[784, 128, 10], batch=1, hidden="relu", out=None, loss=None,
              opt=None, kind="forward", n_batches=16),
}
# --quick shrinks E so that a smoke run takes seconds, not minutes.
QUICK_E = dict(sizes=[1024, 1024, 1024, 10], batch=256)


def workload(wid, quick=False):
    spec = dict(WORKLOADS[wid])
    spec["id"] = wid
    if quick and wid == "E":
        spec.update(QUICK_E)
    return spec


def describe(spec):
    net = "-".join(str(s) for s in spec["sizes"])
    if spec["kind"] == "forward":
        return f"{net} forward, batch {spec['batch']} (latency)"
    name, hp = spec["opt"]
    opt = {"sgd": "SGD", "adam": "Adam"}[name] + f" lr {hp['lr']:g}"
    if hp.get("momentum"):
        opt += f" mom {hp['momentum']:g}"
    act = spec["hidden"] + (f"/{spec['out']}" if spec["out"] else "")
    loss = {"ce": "CE", "mse": "MSE"}[spec["loss"]]
    return f"{net} {act} {loss}, batch {spec['batch']}, {opt}"


def initial_weights(spec):
    """[(W (in, out), b (out,)), ...] float32, PyTorch's default nn.Linear init
    (uniform in ±1/sqrt(fan_in) for weight and bias), from a fixed seed."""
    rng = np.random.default_rng([SEED, ord(spec["id"][0]), 1])
    layers = []
    for fan_in, fan_out in zip(spec["sizes"][:-1], spec["sizes"][1:]):
        bound = 1.0 / np.sqrt(fan_in)
        W = rng.uniform(-bound, bound, size=(fan_in, fan_out)).astype(np.float32)
        b = rng.uniform(-bound, bound, size=(fan_out,)).astype(np.float32)
        layers.append((W, b))
    return layers


def batches(spec):
    """A fixed pool of (x, y) batches cycled through by every backend.

    x float32 (batch, in) standard normal; y int64 class indices for cross-entropy,
    float32 (batch, 1) targets for MSE (XOR truth table for D), None for forward-only."""
    rng = np.random.default_rng([SEED, ord(spec["id"][0]), 2])
    n_in, n_out, bs = spec["sizes"][0], spec["sizes"][-1], spec["batch"]
    if spec["loss"] == "mse" and spec["sizes"][0] == 2 and bs == 4:
        x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
        y = np.array([[0], [1], [1], [0]], np.float32)
        return [(x, y)] * spec["n_batches"]
    out = []
    for _ in range(spec["n_batches"]):
        x = rng.standard_normal((bs, n_in), dtype=np.float32)
        if spec["loss"] == "ce":
            y = rng.integers(0, n_out, size=bs, dtype=np.int64)
        elif spec["loss"] == "mse":
            y = rng.uniform(0, 1, size=(bs, n_out)).astype(np.float32)
        else:
            y = None
        out.append((x, y))
    return out


def fingerprint(layers, data):
    """Short hash of the initial weights and data, so the coordinator can prove that
    every worker started from the same numbers."""
    h = hashlib.sha1()
    for W, b in layers:
        h.update(np.ascontiguousarray(W).tobytes())
        h.update(np.ascontiguousarray(b).tobytes())
    for x, y in data:
        h.update(x.tobytes())
        if y is not None:
            h.update(y.tobytes())
    return h.hexdigest()[:12]
