"""Kernels release the GIL and may be called from several Python threads at once:
results must equal the same calls made one at a time, bit for bit."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from pybackprop import _core


def work(seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((300, 257)).astype(np.float32)
    b = rng.standard_normal((257, 190)).astype(np.float32)
    bias = rng.standard_normal(190).astype(np.float32)
    c = _core.gemm(a, b)
    y, z = _core.dense_forward(a, b, bias, "gelu", save_preact=True)
    dx, dw, db = _core.dense_backward(np.ones_like(y), z, a, b, "gelu")
    loss, _, dlogits = _core.softmax_cross_entropy(y, rng.integers(0, 190, 300))
    return [c, y, dx, dw, db, dlogits, np.array(loss)]


def test_concurrent_calls_equal_serial_calls(threads, isa):
    seeds = list(range(12))
    serial = [work(s) for s in seeds]
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(work, seeds))
    for got, want in zip(concurrent, serial):
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)


def test_pool_survives_errors_raised_inside_parallel_work():
    logits = np.zeros((5000, 10), np.float32)
    targets = np.zeros(5000, np.int64)
    targets[4321] = 10
    before = _core.get_num_threads()
    _core.set_num_threads(2)
    try:
        for _ in range(3):
            try:
                _core.softmax_cross_entropy(logits, targets)
            except ValueError as e:
                assert "4321" in str(e)
            else:
                raise AssertionError("an out-of-range target was accepted")
        np.testing.assert_allclose(_core.gemm(np.eye(400, dtype=np.float32), np.eye(400, dtype=np.float32)),
                                   np.eye(400))
    finally:
        _core.set_num_threads(before)
