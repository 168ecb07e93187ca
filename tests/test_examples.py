"""Each lecture example runs (in well under a minute) and prints what the lecture says it should."""
import gzip
import os
import re
import struct
import subprocess
import sys

import numpy as np
import pytest

from pybackprop import datasets

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def run_example(name, *args, cwd):
    r = subprocess.run([sys.executable, os.path.join(EXAMPLES, name), *args], capture_output=True, text=True,
                       timeout=60, cwd=cwd)
    assert r.returncode == 0, f"{name} failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout


def values(text, title):
    """{node: (value, gradient)} from the table printed under `title`."""
    block = text.split(title, 1)[1].split("\n\n")[0]
    out = {}
    for line in block.splitlines()[2:]:
        parts = line.split()
        if len(parts) == 3:
            out[parts[0]] = (float(parts[1]), float(parts[2]))
    return out


def test_computational_graph(tmp_path):
    text = run_example("computational_graph.py", "--out", str(tmp_path), cwd=tmp_path)
    g = values(text, "f = (x + y) * z")
    assert g == {"x": (-2, -4), "y": (5, -4), "z": (-4, 3), "q=x+y": (3, -4), "f": (-12, 1)}
    s = values(text, "sigmoid neuron")
    f = 1 / (1 + np.exp(-1.0))
    d = f * (1 - f)                                    # 0.1966
    expected = {"w0": (2, -d), "x0": (-1, 2 * d), "w1": (-3, -2 * d), "x1": (-2, -3 * d), "w2": (-3, d),
                "w0*x0": (-2, d), "w1*x1": (6, d),
                "dot": (1, d), "exp(-dot)": (np.exp(-1), -1 / (1 + np.exp(-1)) ** 2),   # = d f / d (1+e)
                "1+exp": (1 + np.exp(-1), -1 / (1 + np.exp(-1)) ** 2), "f": (f, 1)}
    assert s.keys() == expected.keys()
    for k, (v, gr) in expected.items():
        assert abs(s[k][0] - v) < 1e-4 and abs(s[k][1] - gr) < 1e-4, (k, s[k], (v, gr))
    for name in ("graph1.dot", "graph2.dot"):
        dot = (tmp_path / name).read_text()
        assert dot.lstrip().startswith("digraph") and dot.rstrip().endswith("}")
    assert "-4" in (tmp_path / "graph1.dot").read_text()


def test_xor(tmp_path):
    text = run_example("xor.py", cwd=tmp_path)
    losses = [float(m) for m in re.findall(r"loss ([0-9.]+)", text)]
    assert len(losses) >= 5 and losses[-1] < 0.05 < losses[0] and losses[-1] < losses[0] / 5
    assert "learned XOR" in text and "did not" not in text


def test_softmax_classifier(tmp_path):
    text = run_example("softmax_classifier.py", cwd=tmp_path)
    assert "matches (softmax - onehot) / N" in text
    acc = float(re.search(r"training accuracy ([0-9.]+)", text).group(1))
    assert 0.45 < acc < 0.65          # a linear model on 3 spirals: about half right, far better than 1/3
    two_layer = run_example("softmax_classifier.py", "--hidden", "100", "--steps", "1000", cwd=tmp_path)
    assert float(re.search(r"training accuracy ([0-9.]+)", two_layer).group(1)) > 0.9


def test_linear_regression_gd(tmp_path):
    text = run_example("linear_regression_gd.py", cwd=tmp_path)
    diff = float(re.search(r"max abs difference ([0-9.e+-]+)", text).group(1))
    assert diff < 1e-9
    assert float(re.search(r"closed-form W\* to ([0-9.e+-]+)", text).group(1)) < 1e-6


def test_universal_approximation(tmp_path):
    text = run_example("universal_approximation.py", "--out", str(tmp_path), cwd=tmp_path)
    mse = float(re.search(r"test mse on a grid of 500 points ([0-9.e+-]+)", text).group(1))
    assert mse < 1e-3
    pytest.importorskip("matplotlib")
    assert (tmp_path / "universal_approximation.png").read_bytes()[:4] == b"\x89PNG"


def _idx(arr):
    return struct.pack(">BBBB", 0, 0, 8, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def test_mnist_mlp_any_idx_dir(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "digits"
    d.mkdir()
    for prefix, n in (("train", 600), ("t10k", 200)):
        y = rng.integers(0, 10, n).astype(np.uint8)
        img = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for k in range(10):
            img[y == k, 2 * k:2 * k + 3, :] = 255
        (d / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(img)))
        (d / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(y)))
    text = run_example("mnist_mlp.py", "--data", str(d), "--epochs", "2", cwd=tmp_path)
    assert float(re.findall(r"test accuracy ([0-9.]+)", text)[-1]) > 0.95


def test_mnist_mlp_fashion(tmp_path):
    where = datasets.fashion_mnist_dir()
    if not os.path.isdir(where):
        pytest.skip(f"Fashion-MNIST is not installed in {where} (apt-get install dataset-fashion-mnist)")
    text = run_example("mnist_mlp.py", "--limit", "12000", "--epochs", "1", cwd=tmp_path)
    assert float(re.findall(r"test accuracy ([0-9.]+)", text)[-1]) > 0.75
