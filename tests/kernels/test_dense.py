"""pybackprop._core.dense_forward / dense_backward against a float64 numpy
composition of the same steps, and the backward against finite differences."""
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from pybackprop import _core

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared float64 references
from activation_reference import ref_forward, ref_grad  # noqa: E402

ACTS = ["identity", "relu", "leaky_relu", "elu", "sigmoid", "tanh", "gelu", "gelu_tanh", "softplus"]
EPS = {np.float32: np.finfo(np.float32).eps, np.float64: np.finfo(np.float64).eps}


def params(act):
    return dict(alpha=1.0 if act == "elu" else 0.01, beta=1.0, threshold=20.0)


def make(rng, dtype, m, k, n, with_bias):
    x = rng.standard_normal((m, k)).astype(dtype)
    w = (rng.standard_normal((k, n)) / math.sqrt(max(k, 1))).astype(dtype)
    b = rng.standard_normal(n).astype(dtype) if with_bias else None
    return x, w, b


SHAPES = [(1, 1, 1), (0, 5, 3), (4, 0, 3), (5, 7, 0), (7, 13, 17), (64, 100, 10), (33, 70, 129)]


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("with_bias", [False, True], ids=["nobias", "bias"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_forward(isa, dtype, rng, act, with_bias, shape):
    m, k, n = shape
    p = params(act)
    x, w, b = make(rng, dtype, m, k, n, with_bias)
    y, z = _core.dense_forward(x, w, b, act, save_preact=True, **p)
    y2, none = _core.dense_forward(x, w, b, act, **p)
    assert none is None
    assert y.shape == z.shape == (m, n) and y.dtype == z.dtype == dtype
    np.testing.assert_array_equal(y, y2)
    assert_forward_close(x, w, b, act, p, z, y, dtype)


def assert_forward_close(x, w, b, act, p, z, y, dtype):
    """z = x w + b and y = act(z) against float64, within the rounding a sum over k allows."""
    k = x.shape[1]
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    zr = x64 @ w64 + (b.astype(np.float64) if b is not None else 0.0)
    scale = np.abs(x64) @ np.abs(w64) + (np.abs(b.astype(np.float64)) if b is not None else 0.0)
    tol_z = 2 * (k + 4) * EPS[dtype] * scale + 1e-300
    assert np.all(np.abs(z - zr) <= tol_z)
    yr = ref_forward(act, zr, **p)
    tol_y = 8 * tol_z + 64 * EPS[dtype] * (np.abs(yr) + 1e-3)
    assert np.all(np.abs(y - yr) <= tol_y)


# A batch of one takes the row kernels (gemm.cpp, row_product): k past 256 is
# summed in k-blocks (784 in two) whose partial rows are added at the end, and
# a row of at most 32 columns takes the narrow kernel. Their write-back adds
# the bias and applies ReLU itself; any other activation, or a saved
# pre-activation, is applied after the row. Both must give the bits of the
# separate epilogue: y computed with z saved equals y computed without, on one
# thread or two. Widths with a partial last vector (129, 70, 33, 31) check the
# masked tail.
ROW_SHAPES = [(1, 784, 128), (1, 300, 129), (1, 1500, 70), (1, 200, 33), (1, 784, 10), (1, 100, 31)]


@pytest.mark.parametrize("act", ["identity", "relu", "leaky_relu", "tanh"])
@pytest.mark.parametrize("with_bias", [False, True], ids=["nobias", "bias"])
@pytest.mark.parametrize("shape", ROW_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_forward_batch_of_one_fuses_the_epilogue_into_the_row(isa, dtype, rng, act, with_bias, shape):
    m, k, n = shape
    p = params(act)
    x, w, b = make(rng, dtype, m, k, n, with_bias)
    b_before = None if b is None else b.copy()
    before = _core.get_num_threads()
    got = []
    try:
        for t in (1, 2):
            _core.set_num_threads(t)
            got.append(_core.dense_forward(x, w, b, act, save_preact=True, **p) + _core.dense_forward(x, w, b, act, **p))
    finally:
        _core.set_num_threads(before)
    (y, z, y_fused, none), (y2, z2, y2_fused, _) = got
    assert none is None
    for a, c in ((y, y_fused), (y, y2), (z, z2), (y, y2_fused)):
        np.testing.assert_array_equal(a, c)
    if b is not None:
        np.testing.assert_array_equal(b, b_before)  # the bias is read, never written
    assert_forward_close(x, w, b, act, p, z, y_fused, dtype)


# The avx2 and avx512 row kernels (strips of 8 and 16 vectors) give the same
# bits with the epilogue fused too.
@pytest.mark.skipif("avx512" not in _core.supported_isas(), reason="this CPU has no AVX-512F/VL")
@pytest.mark.parametrize("act", ["identity", "relu"])
@pytest.mark.parametrize("shape", ROW_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_forward_batch_of_one_avx2_equals_avx512(dtype, rng, act, shape):
    x, w, b = make(rng, dtype, *shape, True)
    before = _core.active_isa()
    got = {}
    try:
        for isa in ("avx2", "avx512"):
            _core._set_isa(isa)
            got[isa] = _core.dense_forward(x, w, b, act)[0]
    finally:
        _core._set_isa(before)
    np.testing.assert_array_equal(got["avx2"], got["avx512"])


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("accumulate", [False, True], ids=["set", "acc"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_backward(isa, threads, dtype, rng, act, accumulate, shape):
    m, k, n = shape
    p = params(act)
    x, w, b = make(rng, dtype, m, k, n, True)
    y, z = _core.dense_forward(x, w, b, act, save_preact=True, **p)
    saved = y if _core.derivative_uses_output(act, alpha=p["alpha"]) else z
    dy = rng.standard_normal((m, n)).astype(dtype)
    dw0 = rng.standard_normal((k, n)).astype(dtype)
    db0 = rng.standard_normal(n).astype(dtype)
    dw_out = dw0.copy() if accumulate else None
    db_out = db0.copy() if accumulate else None
    dx, dw, db = _core.dense_backward(dy, saved, x, w, act, dw_out=dw_out, db_out=db_out, **p)
    if accumulate:
        assert dw is dw_out and db is db_out
    g = dy.astype(np.float64) * ref_grad(act, z.astype(np.float64), **p)
    x64, w64, dy64 = x.astype(np.float64), w.astype(np.float64), np.abs(dy.astype(np.float64))
    e = EPS[dtype]
    # f'(.) from a rounded saved value (1 - y^2 near saturation): a few eps of |dy| per term
    want_dx, tol_dx = g @ w64.T, 2 * (n + 4) * e * (np.abs(g) @ np.abs(w64.T)) + 16 * e * (dy64 @ np.abs(w64.T))
    want_dw = x64.T @ g + (dw0 if accumulate else 0.0)
    tol_dw = 2 * (m + 4) * e * (np.abs(x64.T) @ np.abs(g) + (np.abs(dw0) if accumulate else 0)) \
        + 16 * e * (np.abs(x64.T) @ dy64)
    want_db = g.sum(0) + (db0 if accumulate else 0.0)
    tol_db = 2 * (m + 4) * e * (np.abs(g).sum(0) + (np.abs(db0) if accumulate else 0)) + 16 * e * dy64.sum(0)
    assert dx.shape == (m, k) and dw.shape == (k, n) and db.shape == (n,)
    assert np.all(np.abs(dx - want_dx) <= tol_dx + 1e-300)
    assert np.all(np.abs(dw - want_dw) <= tol_dw + 1e-300)
    assert np.all(np.abs(db - want_db) <= tol_db + 1e-300)


@pytest.mark.parametrize("act", ACTS)
def test_backward_finite_differences(isa, act, rng):
    """The gradient of L = sum(dy * dense(x, w, b)) in float64 by central differences."""
    m, k, n = 3, 4, 5
    p = params(act)
    x, w, b = make(rng, np.float64, m, k, n, True)
    x = x + np.sign(x) * 0.05  # stay off relu's kink
    dy = rng.standard_normal((m, n))
    y, z = _core.dense_forward(x, w, b, act, save_preact=True, **p)
    saved = y if _core.derivative_uses_output(act, alpha=p["alpha"]) else z
    dx, dw, db = _core.dense_backward(dy, saved, x, w, act, **p)

    def loss(x_, w_, b_):
        return float(np.sum(dy * _core.dense_forward(x_, w_, b_, act, **p)[0]))

    h = 1e-6
    for arr, grad in ((x, dx), (w, dw), (b, db)):
        num = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + h
            lp = loss(x, w, b)
            arr[idx] = old - h
            lm = loss(x, w, b)
            arr[idx] = old
            num[idx] = (lp - lm) / (2 * h)
        np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-6)


def test_need_flags_and_identity_without_saved(dtype, rng):
    x, w, _ = make(rng, dtype, 6, 5, 4, False)
    dy = rng.standard_normal((6, 4)).astype(dtype)
    dx, dw, db = _core.dense_backward(dy, None, x, w, "identity", need_dx=False, need_db=False)
    assert dx is None and db is None
    np.testing.assert_allclose(dw, x.astype(np.float64).T @ dy, rtol=1e-5, atol=1e-5)
    dx, dw, db = _core.dense_backward(dy, None, x, w, need_dw=False)
    assert dw is None
    np.testing.assert_allclose(dx, dy.astype(np.float64) @ w.T, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(db, dy.astype(np.float64).sum(0), rtol=1e-5, atol=1e-5)


def test_noncontiguous_inputs(dtype, rng):
    x = np.asfortranarray(rng.standard_normal((9, 7)).astype(dtype))
    w = rng.standard_normal((4, 7)).astype(dtype).T  # (7, 4) transposed view
    b = rng.standard_normal(8).astype(dtype)[::2]
    y, _ = _core.dense_forward(x, w, b, "tanh")
    np.testing.assert_allclose(y, np.tanh(x.astype(np.float64) @ w + b), rtol=1e-5, atol=1e-5)
    dy = rng.standard_normal((4, 9)).astype(dtype).T
    dx, dw, db = _core.dense_backward(dy, y, x, w, "tanh")
    g = dy * (1 - y.astype(np.float64) ** 2)
    np.testing.assert_allclose(dx, g @ w.T, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dw, x.T @ g, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(db, g.sum(0), rtol=1e-4, atol=1e-5)


def test_threads_bit_identical(dtype, rng):
    x, w, b = make(rng, dtype, 130, 300, 200, True)
    dy = rng.standard_normal((130, 200)).astype(dtype)
    before = _core.get_num_threads()
    out = []
    try:
        for t in (1, 2):
            _core.set_num_threads(t)
            y, z = _core.dense_forward(x, w, b, "gelu", save_preact=True)
            out.append((y, z) + _core.dense_backward(dy, z, x, w, "gelu"))
    finally:
        _core.set_num_threads(before)
    for r1, r2 in zip(*out):
        assert np.array_equal(r1, r2)


def test_errors():
    f32 = np.float32
    x, w = np.ones((3, 4), f32), np.ones((4, 2), f32)
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(5, 2\)"):
        _core.dense_forward(x, np.ones((5, 2), f32), None)
    with pytest.raises(ValueError, match=r"\(2,\).*\(3,\)"):
        _core.dense_forward(x, w, np.ones(3, f32))
    with pytest.raises(TypeError, match="float32 and float64"):
        _core.dense_forward(x, w.astype(np.float64), None)
    with pytest.raises(TypeError, match="float32 and float64"):
        _core.dense_forward(x, w, np.ones(2))
    with pytest.raises(ValueError, match="unknown activation"):
        _core.dense_forward(x, w, None, "swish")
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(2, 3\)"):
        _core.dense_backward(np.ones((2, 3), f32), None, x, w)
    with pytest.raises(ValueError, match="saved"):
        _core.dense_backward(np.ones((3, 2), f32), None, x, w, "relu")
    with pytest.raises(ValueError, match="dw_out"):
        _core.dense_backward(np.ones((3, 2), f32), None, x, w, dw_out=np.ones((2, 4), f32))


@settings(max_examples=40, deadline=None)
@given(m=st.integers(0, 20), k=st.integers(0, 20), n=st.integers(0, 20), act=st.sampled_from(ACTS),
       f64=st.booleans(), seed=st.integers(0, 2**31))
def test_property_forward_backward(m, k, n, act, f64, seed):
    dtype = np.float64 if f64 else np.float32
    rng = np.random.default_rng(seed)
    p = params(act)
    x, w, b = make(rng, dtype, m, k, n, True)
    y, z = _core.dense_forward(x, w, b, act, save_preact=True, **p)
    zr = x.astype(np.float64) @ w + b
    np.testing.assert_allclose(z, zr, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(y, ref_forward(act, zr, **p), rtol=1e-4, atol=1e-4)
    dy = rng.standard_normal((m, n)).astype(dtype)
    saved = y if _core.derivative_uses_output(act, alpha=p["alpha"]) else z
    dx, dw, db = _core.dense_backward(dy, saved, x, w, act, **p)
    g = dy * ref_grad(act, z.astype(np.float64), **p)
    np.testing.assert_allclose(dx, g @ w.T.astype(np.float64), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dw, x.T.astype(np.float64) @ g, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(db, g.sum(0), rtol=1e-4, atol=1e-4)
