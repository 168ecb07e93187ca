"""Loss kernels (pybackprop._core.softmax_cross_entropy & co.) against float64 numpy references
and torch.nn.functional when torch is installed."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pybackprop import _core


def tol(dtype):
    return (2e-5, 2e-6) if dtype == np.float32 else (1e-12, 1e-13)


def ref_ce(x, t, scale=1.0):
    x = np.asarray(x, np.float64)
    mx = x.max(axis=1, keepdims=True) if x.shape[1] else np.zeros((x.shape[0], 1))
    lse = mx[:, 0] + np.log(np.exp(x - mx).sum(axis=1))
    rows = lse - x[np.arange(len(t)), t]
    sm = np.exp(x - lse[:, None])
    d = sm.copy()
    d[np.arange(len(t)), t] -= 1
    return rows.sum(), rows, d * scale


def logits(rng, n, c, dtype, spread=4.0):
    return (rng.standard_normal((n, c)) * spread).astype(dtype)


@pytest.mark.parametrize("n", [0, 1, 7, 64, 129])
@pytest.mark.parametrize("c", [1, 2, 7, 8, 9, 17, 100])
def test_softmax_cross_entropy(isa, dtype, n, c, rng):
    x = logits(rng, n, c, dtype)
    t = rng.integers(0, c, size=n)
    total, rows, d = _core.softmax_cross_entropy(x, t, grad_scale=0.5)
    wt, wrows, wd = ref_ce(x, t, 0.5)
    rtol, atol = tol(dtype)
    assert isinstance(total, float) and rows.dtype == dtype and d.dtype == dtype and d.shape == (n, c)
    np.testing.assert_allclose(total, wt, rtol=rtol, atol=atol * max(n, 1))
    np.testing.assert_allclose(rows, wrows, rtol=rtol, atol=atol)
    np.testing.assert_allclose(d, wd, rtol=rtol, atol=atol)
    total2, rows2, none = _core.softmax_cross_entropy(x, t, need_grad=False)
    assert none is None and total2 == total and np.array_equal(rows2, rows)


def test_softmax_cross_entropy_extreme_logits(isa, dtype):
    x = np.array([[1000, -1000, 0], [-1000, -1000, -1000], [1e-30, 0, -1e-30], [88, 89, 90]], dtype=dtype)
    t = np.array([1, 0, 2, 2])
    with np.errstate(all="raise"):
        total, rows, d = _core.softmax_cross_entropy(x, t)
    assert np.isfinite(rows).all() and np.isfinite(d).all()
    wt, wrows, wd = ref_ce(x, t)
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(rows, wrows, rtol=rtol, atol=atol)
    np.testing.assert_allclose(d, wd, rtol=rtol, atol=atol)


def test_softmax_cross_entropy_nan_propagates(isa, dtype):
    x = np.array([[0.0, np.nan, 1.0], [0.0, 1.0, 2.0]], dtype=dtype)
    _, rows, d = _core.softmax_cross_entropy(x, [0, 1])
    assert np.isnan(rows[0]) and np.isnan(d[0]).all() and np.isfinite(rows[1]) and np.isfinite(d[1]).all()


@pytest.mark.parametrize("targets", [[2, 0, 1], (2, 0, 1), np.array([2, 0, 1], np.int8), np.array([2, 0, 1], np.uint8),
                                     np.array([2, 0, 1], np.int32), np.array([2, 0, 1], np.uint64)])
def test_target_integer_types(targets):
    x = np.arange(9.0).reshape(3, 3)
    np.testing.assert_allclose(_core.softmax_cross_entropy(x, targets)[1], ref_ce(x, np.array([2, 0, 1]))[1])


def test_target_errors(isa):
    x = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"target 3 in row 2 is out of range \[0, 3\)"):
        _core.softmax_cross_entropy(x, [0, 1, 3, 0])
    with pytest.raises(ValueError, match=r"target -1 in row 1"):
        _core.softmax_cross_entropy(x, np.array([0, -1, 0, 7]))
    with pytest.raises(ValueError, match=r"row 0"):
        _core.softmax_cross_entropy(x, np.array([2 ** 64 - 1, 0, 0, 0], np.uint64))
    with pytest.raises(ValueError, match=r"row 3"):
        _core.softmax_cross_entropy_backward(x, [0, 0, 0, 5], np.ones(4))
    with pytest.raises(TypeError, match="integers"):
        _core.softmax_cross_entropy(x, [0.0, 1.0, 2.0, 0.0])
    with pytest.raises(TypeError, match="integers"):
        _core.softmax_cross_entropy(x, np.array([True, False, True, False]))
    with pytest.raises(ValueError, match=r"\(4,\).*\(3,\)"):
        _core.softmax_cross_entropy(x, [0, 1, 2])
    with pytest.raises(ValueError, match="2-D"):
        _core.softmax_cross_entropy(np.zeros(3), [0, 1, 2])
    with pytest.raises(TypeError, match="int64"):
        _core.softmax_cross_entropy(np.zeros((2, 2), np.int64), [0, 1])
    with pytest.raises(ValueError, match="out of range"):
        _core.softmax_cross_entropy(np.zeros((2, 0)), [0, 0])
    assert _core.softmax_cross_entropy(np.zeros((0, 3)), [])[0] == 0.0


def test_cross_entropy_backward_row_scale(isa, dtype, rng):
    x = logits(rng, 33, 10, dtype)
    t = rng.integers(0, 10, size=33)
    s = rng.random(33).astype(dtype)
    d = _core.softmax_cross_entropy_backward(x, t, s)
    np.testing.assert_allclose(d, ref_ce(x, t)[2] * s[:, None].astype(np.float64), rtol=tol(dtype)[0], atol=tol(dtype)[1])
    with pytest.raises(TypeError, match="dtype"):
        _core.softmax_cross_entropy_backward(x, t, s.astype(np.float32 if dtype == np.float64 else np.float64))
    with pytest.raises(ValueError, match="row_scale"):
        _core.softmax_cross_entropy_backward(x, t, s[:5])


def test_cross_entropy_bit_identical_threads(isa, dtype, rng):
    x = logits(rng, 4000, 300, dtype)
    t = rng.integers(0, 300, size=4000)
    before = _core.get_num_threads()
    try:
        outs = []
        for n in (1, 2):
            _core.set_num_threads(n)
            outs.append(_core.softmax_cross_entropy(x, t))
    finally:
        _core.set_num_threads(before)
    assert outs[0][0] == outs[1][0]
    assert np.array_equal(outs[0][1], outs[1][1]) and np.array_equal(outs[0][2], outs[1][2])


@pytest.mark.parametrize("shape", [(0, 4), (1, 1), (5, 7), (16, 17), (3, 1000)])
def test_softmax_and_log_softmax(isa, dtype, shape, rng):
    x = logits(rng, *shape, dtype)
    x64 = x.astype(np.float64)
    lse = np.log(np.exp(x64 - x64.max(axis=1, keepdims=True)).sum(axis=1, keepdims=True)) + x64.max(axis=1, keepdims=True) \
        if shape[0] else np.zeros((0, 1))
    rtol, atol = tol(dtype)
    y = _core.softmax_forward(x)
    ly = _core.log_softmax_forward(x)
    np.testing.assert_allclose(y, np.exp(x64 - lse), rtol=rtol, atol=atol)
    np.testing.assert_allclose(ly, x64 - lse, rtol=rtol, atol=atol * 10)
    gy = rng.standard_normal(shape).astype(dtype)
    y64, g64 = y.astype(np.float64), gy.astype(np.float64)
    np.testing.assert_allclose(_core.softmax_backward(gy, y), y64 * (g64 - (g64 * y64).sum(1, keepdims=True)),
                               rtol=10 * rtol, atol=10 * atol)
    np.testing.assert_allclose(_core.log_softmax_backward(gy, ly),
                               g64 - np.exp(ly.astype(np.float64)) * g64.sum(1, keepdims=True), rtol=10 * rtol, atol=10 * atol)


def test_softmax_backward_finite_differences(isa, rng):
    x = rng.standard_normal((3, 5))
    gy = rng.standard_normal((3, 5))
    h = 1e-6
    for fwd, bwd in [(_core.softmax_forward, _core.softmax_backward),
                     (_core.log_softmax_forward, _core.log_softmax_backward)]:
        gx = bwd(gy, fwd(x))
        fd = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            e = np.zeros_like(x)
            e[idx] = h
            fd[idx] = ((fwd(x + e) - fwd(x - e)) * gy).sum() / (2 * h)
        np.testing.assert_allclose(gx, fd, rtol=1e-6, atol=1e-8)


def test_softmax_extremes_and_errors(isa, dtype):
    x = np.array([[1000, -1000, 0, 1000], [-1000] * 4], dtype=dtype)
    y = _core.softmax_forward(x)
    ly = _core.log_softmax_forward(x)
    assert np.isfinite(y).all() and np.isfinite(ly).all()
    np.testing.assert_allclose(y, [[0.5, 0, 0, 0.5], [0.25] * 4], atol=1e-7)
    with pytest.raises(ValueError, match=r"\(2, 4\).*\(2, 3\)"):
        _core.softmax_backward(y, y[:, :3])
    with pytest.raises(ValueError, match="2-D"):
        _core.softmax_forward(np.zeros((2, 2, 2)))


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 16, 17, 5000, 20001])
def test_squared_error_and_bce(isa, dtype, n, rng, threads):
    a = (rng.standard_normal(n) * 3).astype(dtype)
    b = rng.random(n).astype(dtype)
    rtol, atol = tol(dtype)
    s, elem, grad = _core.squared_error(a, b, need_elem=True, grad_scale=0.25)
    d = a.astype(np.float64) - b
    np.testing.assert_allclose(s, (d * d).sum(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(elem, d * d, rtol=rtol, atol=atol)
    np.testing.assert_allclose(grad, 2 * d * 0.25, rtol=rtol, atol=atol)
    s, elem, grad = _core.bce_with_logits(a, b, need_elem=True, grad_scale=0.25)
    z, y = a.astype(np.float64), b.astype(np.float64)
    l = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
    np.testing.assert_allclose(s, l.sum(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(elem, l, rtol=rtol, atol=atol)
    np.testing.assert_allclose(grad, (1 / (1 + np.exp(-z)) - y) * 0.25, rtol=rtol, atol=atol)
    s2, e2, g2 = _core.bce_with_logits(a.reshape(-1, 1), b.reshape(-1, 1), need_grad=False)
    assert e2 is None and g2 is None and s2 == s


def test_bce_extremes(isa, dtype):
    z = np.array([1000, -1000, 1e-30, -1e-30, 0, 88, -88, 40, -40], dtype=dtype)
    y = np.array([0, 1, 0.5, 1, 0, 1, 0, 0, 1], dtype=dtype)
    s, elem, grad = _core.bce_with_logits(z, y, need_elem=True)
    assert np.isfinite(elem).all() and np.isfinite(grad).all()
    z64 = z.astype(np.float64)
    np.testing.assert_allclose(elem, np.maximum(z64, 0) - z64 * y + np.log1p(np.exp(-np.abs(z64))), rtol=tol(dtype)[0])
    assert elem[0] == 1000 and elem[1] == 1000


def test_pointwise_loss_errors():
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
        _core.squared_error(np.zeros(3), np.zeros(4))
    with pytest.raises(TypeError, match="float64 and float32"):
        _core.bce_with_logits(np.zeros(3), np.zeros(3, np.float32))


def test_sums_bit_identical_threads(isa, dtype, rng):
    a = rng.standard_normal(3_000_001).astype(dtype)
    b = rng.standard_normal(3_000_001).astype(dtype)
    before = _core.get_num_threads()
    try:
        res = []
        for n in (1, 2):
            _core.set_num_threads(n)
            res.append((_core.squared_error(a, b)[0], _core.bce_with_logits(a, b)[0]))
    finally:
        _core.set_num_threads(before)
    assert res[0] == res[1]


@settings(max_examples=50, deadline=None)
@given(x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12),
                    elements=st.floats(-1000, 1000, allow_nan=False)),
       f64=st.booleans(), seed=st.integers(0, 2 ** 32 - 1))
def test_property_cross_entropy(x, f64, seed):
    dtype = np.float64 if f64 else np.float32
    x = x.astype(dtype)
    t = np.random.default_rng(seed).integers(0, x.shape[1], size=x.shape[0])
    total, rows, d = _core.softmax_cross_entropy(x, t)
    wt, wrows, wd = ref_ce(x, t)
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(rows, wrows, rtol=rtol, atol=atol * (1 + np.abs(wrows).max(initial=0)))
    np.testing.assert_allclose(d, wd, rtol=rtol, atol=atol)
    assert (rows >= -atol).all() and np.isfinite(d).all()


def test_against_torch(isa, dtype, rng):
    torch = pytest.importorskip("torch", reason="torch is not installed")
    F = torch.nn.functional
    x = logits(rng, 37, 11, dtype, spread=10)
    t = rng.integers(0, 11, size=37)
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    loss = F.cross_entropy(xt, torch.tensor(t), reduction="mean")
    loss.backward()
    total, rows, d = _core.softmax_cross_entropy(x, t, grad_scale=1 / 37)
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(total / 37, loss.item(), rtol=rtol)
    np.testing.assert_allclose(d, xt.grad.numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(_core.log_softmax_forward(x), F.log_softmax(xt, dim=1).detach().numpy(),
                               rtol=rtol, atol=10 * atol)
    np.testing.assert_allclose(_core.softmax_forward(x), F.softmax(xt, dim=1).detach().numpy(), rtol=rtol, atol=atol)
    z = (rng.standard_normal(50) * 20).astype(dtype)
    y = rng.random(50).astype(dtype)
    zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    bl = F.binary_cross_entropy_with_logits(zt, torch.tensor(y, dtype=torch.float64), reduction="sum")
    bl.backward()
    s, _, g = _core.bce_with_logits(z, y)
    np.testing.assert_allclose(s, bl.item(), rtol=rtol)
    np.testing.assert_allclose(g, zt.grad.numpy(), rtol=rtol, atol=atol)
    ml = F.mse_loss(torch.tensor(z, dtype=torch.float64), torch.tensor(y, dtype=torch.float64), reduction="sum")
    np.testing.assert_allclose(_core.squared_error(z, y)[0], ml.item(), rtol=rtol)
