"""Activation kernels (pybackprop._core.act_forward/act_backward/maxout_*) against float64
numpy references, central finite differences and torch.nn.functional when torch is installed."""
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pybackprop import _core

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared float64 references
from activation_reference import ref_forward, ref_grad  # noqa: E402

ACTS = ["identity", "relu", "leaky_relu", "elu", "sigmoid", "tanh", "gelu", "gelu_tanh", "softplus"]
SIZES = [0, 1, 7, 8, 9, 15, 16, 17, 1000, 4099]


def tol(dtype):
    return (3e-6, 1e-6) if dtype == np.float32 else (1e-13, 1e-14)


def saved_for(act, z, y, alpha=0.01):
    return y if _core.derivative_uses_output(act, alpha=alpha) else z


def run_both(act, z, up, **kw):
    y = _core.act_forward(act, z, **kw)
    g = _core.act_backward(act, up, saved_for(act, z, y, kw.get("alpha", 0.01)), **kw)
    return y, g


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("n", SIZES)
def test_forward_backward_match_reference(isa, dtype, act, n, rng):
    z = (rng.standard_normal(n) * 4).astype(dtype)
    up = rng.standard_normal(n).astype(dtype)
    y, g = run_both(act, z, up)
    assert y.dtype == dtype and g.dtype == dtype and y.shape == (n,)
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(y, ref_forward(act, z), rtol=rtol, atol=atol)
    # The derivative from the rounded output y carries y's rounding: compare with a looser bound.
    want = up.astype(np.float64) * ref_grad(act, z)
    np.testing.assert_allclose(g, want, rtol=20 * rtol, atol=20 * atol * (1 + np.abs(z)).max(initial=1))


@pytest.mark.parametrize("act", ["leaky_relu", "elu"])
@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0, -0.5])
def test_alpha_variants(isa, dtype, act, alpha, rng):
    z = (rng.standard_normal(257) * 3).astype(dtype)
    up = np.ones_like(z)
    y, g = run_both(act, z, up, alpha=alpha)
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(y, ref_forward(act, z, alpha=alpha), rtol=rtol, atol=atol)
    np.testing.assert_allclose(g, ref_grad(act, z, alpha=alpha), rtol=20 * rtol, atol=20 * atol)


@pytest.mark.parametrize("beta,threshold", [(1.0, 20.0), (2.0, 20.0), (0.5, 5.0), (3.0, 1.0)])
def test_softplus_beta_threshold(isa, dtype, beta, threshold, rng):
    # Points next to the threshold, not on it (which side it falls depends on rounding).
    near = [threshold / beta * 0.999, threshold / beta * 1.001]
    z = np.concatenate([rng.standard_normal(300) * 8, near]).astype(dtype)
    y, g = run_both("softplus", z, np.ones_like(z), beta=beta, threshold=threshold)
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(y, ref_forward("softplus", z, beta=beta, threshold=threshold), rtol=rtol, atol=atol)
    np.testing.assert_allclose(g, ref_grad("softplus", z, beta=beta, threshold=threshold), rtol=rtol, atol=atol)


EXTREMES = [1000.0, -1000.0, 1e-30, -1e-30, 0.0, -0.0, 88.0, -88.0, 100.0, -100.0, 700.0, -700.0, 30.0, -30.0]


@pytest.mark.parametrize("act", ACTS)
def test_extreme_inputs_finite_and_accurate(isa, dtype, act):
    z = np.array(EXTREMES, dtype=dtype)
    with np.errstate(all="raise"):  # nothing on the numpy side may warn either
        y, g = run_both(act, z, np.ones_like(z))
    assert np.isfinite(y).all() and np.isfinite(g).all(), (y, g)
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(y, ref_forward(act, z), rtol=rtol, atol=1e-37)
    np.testing.assert_allclose(g, ref_grad(act, z), rtol=20 * rtol, atol=20 * atol)


def test_tiny_inputs_keep_relative_accuracy(isa, dtype):
    z = np.array([1e-30, -1e-30, 1e-8, -1e-8], dtype=dtype)
    for act, alpha in [("elu", 1.0), ("tanh", 0.01), ("gelu", 0.01), ("leaky_relu", 0.1)]:
        y = _core.act_forward(act, z, alpha=alpha)
        np.testing.assert_allclose(y, ref_forward(act, z, alpha=alpha), rtol=tol(dtype)[0], atol=0)


def test_relu_derivative_is_zero_at_zero(isa, dtype):
    z = np.array([0.0, -0.0, 1e-45 if dtype == np.float32 else 5e-324, -1.0], dtype=dtype)
    y, g = run_both("relu", z, np.full_like(z, 3.0))
    assert list(g) == [0.0, 0.0, 3.0, 0.0]
    assert list(y[:2]) == [0.0, 0.0]


@pytest.mark.parametrize("act", ACTS)
def test_nan_propagates_through_forward(isa, dtype, act):
    z = np.array([np.nan, 1.0, np.nan, -1.0, 0.5, np.nan, 2.0, -3.0, np.nan], dtype=dtype)
    y = _core.act_forward(act, z)
    assert np.isnan(y[[0, 2, 5, 8]]).all()
    assert np.isfinite(y[[1, 3, 4, 6, 7]]).all()


@pytest.mark.parametrize("act", ACTS)
def test_derivative_matches_central_differences(isa, act, rng):
    z = rng.standard_normal(200) * 3
    z = z[np.abs(z) > 1e-2]  # away from the kinks of relu / leaky_relu / elu
    h = 1e-6
    kw = dict(alpha=0.7) if act == "elu" else {}
    fd = (_core.act_forward(act, z + h, **kw) - _core.act_forward(act, z - h, **kw)) / (2 * h)
    y = _core.act_forward(act, z, **kw)
    g = _core.act_backward(act, np.ones_like(z), saved_for(act, z, y, kw.get("alpha", 0.01)), **kw)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("act", ["relu", "gelu", "sigmoid", "softplus"])
def test_bit_identical_for_any_thread_count(isa, dtype, act, rng):
    z = (rng.standard_normal(600_001) * 5).astype(dtype)
    before = _core.get_num_threads()
    try:
        outs = []
        for t in (1, 2):
            _core.set_num_threads(t)
            outs.append(run_both(act, z, z))
    finally:
        _core.set_num_threads(before)
    for a, b in zip(outs[0], outs[1]):
        assert np.array_equal(a, b, equal_nan=True)


def test_threads_fixture_large(isa, threads, dtype, rng):
    z = (rng.standard_normal(300_007) * 5).astype(dtype)
    y, g = run_both("tanh", z, np.ones_like(z))
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(y, np.tanh(z.astype(np.float64)), rtol=rtol, atol=atol)


def test_noncontiguous_and_fortran_and_in_place(isa, dtype, rng):
    base = rng.standard_normal((6, 10)).astype(dtype)
    for z in (base[:, ::2], np.asfortranarray(base), base.T, base[::-1]):
        y = _core.act_forward("sigmoid", z)
        np.testing.assert_allclose(y, ref_forward("sigmoid", z), rtol=tol(dtype)[0])
        assert y.shape == z.shape and y.flags.c_contiguous
        g = _core.act_backward("sigmoid", z, y)
        np.testing.assert_allclose(g, z * y * (1 - y), rtol=10 * tol(dtype)[0], atol=1e-7)
    z = base.copy()
    want = ref_forward("tanh", z)
    out = _core.act_forward("tanh", z, out=z)
    assert out is z
    np.testing.assert_allclose(z, want, rtol=tol(dtype)[0])


def test_multidimensional_shapes(isa, dtype, rng):
    z = rng.standard_normal((3, 0, 5)).astype(dtype)
    assert _core.act_forward("gelu", z).shape == (3, 0, 5)
    z = rng.standard_normal((2, 3, 5)).astype(dtype)
    np.testing.assert_allclose(_core.act_forward("elu", z, alpha=1.0), ref_forward("elu", z, alpha=1.0),
                               rtol=tol(dtype)[0], atol=tol(dtype)[1])


def test_derivative_uses_output_table():
    uses_y = {"identity", "relu", "leaky_relu", "elu", "sigmoid", "tanh"}
    for act in ACTS:
        assert _core.derivative_uses_output(act, alpha=0.5) == (act in uses_y)
    assert not _core.derivative_uses_output("leaky_relu", alpha=-0.1)
    assert not _core.derivative_uses_output("elu", alpha=0.0)
    assert _core.derivative_uses_output("leaky_relu", alpha=0.0)


def test_errors():
    z = np.zeros(4)
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        _core.act_forward("swish", z)
    with pytest.raises(TypeError, match="int64"):
        _core.act_forward("relu", np.zeros(4, dtype=np.int64))
    with pytest.raises(TypeError, match="bool"):
        _core.act_forward("relu", np.zeros(4, dtype=bool))
    with pytest.raises(ValueError, match=r"\(4,\).*\(5,\)"):
        _core.act_backward("tanh", z, np.zeros(5))
    with pytest.raises(TypeError, match="float64 and float32"):
        _core.act_backward("tanh", z, np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="shape"):
        _core.act_forward("relu", z, out=np.zeros(5))
    with pytest.raises(TypeError, match="dtype"):
        _core.act_forward("relu", z, out=np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="None"):
        _core.act_backward("relu", z, None)
    np.testing.assert_array_equal(_core.act_backward("identity", z + 2, None), z + 2)


@settings(max_examples=60, deadline=None)
@given(act=st.sampled_from(ACTS),
       f64=st.booleans(),
       z=hnp.arrays(np.float64, st.integers(0, 40),
                    elements=st.floats(-1000, 1000, allow_nan=False, allow_subnormal=False)))
def test_property_forward_backward(act, f64, z):
    dtype = np.float64 if f64 else np.float32
    zz = z.astype(dtype)
    y, g = run_both(act, zz, np.ones_like(zz))
    assert np.isfinite(y).all() and np.isfinite(g).all()
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(y, ref_forward(act, zz), rtol=rtol, atol=atol)
    np.testing.assert_allclose(g, ref_grad(act, zz), rtol=20 * rtol, atol=20 * atol * (1 + np.abs(zz)).max(initial=1))


# ------------------------------------------------------------------ maxout

def ref_maxout(z):
    z = np.asarray(z)
    arg = np.zeros(z.shape[1:], dtype=np.int64)
    best = z[0].copy()
    for k in range(1, z.shape[0]):
        take = (z[k] > best) | (np.isnan(z[k]) & ~np.isnan(best))
        best = np.where(take, z[k], best)
        arg = np.where(take, k, arg)
    return best, arg


@pytest.mark.parametrize("shape", [(1, 5), (3, 0), (2, 7), (4, 3, 9), (5, 20000)])
def test_maxout_forward_backward(dtype, shape, rng, threads):
    z = rng.integers(-3, 4, size=shape).astype(dtype)  # many ties: the first maximum must win
    y, arg = _core.maxout_forward(z)
    wy, warg = ref_maxout(z)
    assert arg.dtype == np.int32 and y.dtype == dtype
    np.testing.assert_array_equal(y, wy)
    np.testing.assert_array_equal(arg, warg)
    up = rng.standard_normal(shape[1:]).astype(dtype)
    gz = _core.maxout_backward(up, arg, shape[0])
    want = np.zeros(shape, dtype)
    for k in range(shape[0]):
        want[k] = np.where(warg == k, up, 0)
    np.testing.assert_array_equal(gz, want)


def test_maxout_nan_and_errors():
    z = np.array([[1.0, np.nan], [np.nan, 2.0], [3.0, 5.0]])
    y, arg = _core.maxout_forward(z)
    assert np.isnan(y).all() and list(arg) == [1, 0]
    with pytest.raises(ValueError, match=r"pieces.*\(0, 3\)"):
        _core.maxout_forward(np.zeros((0, 3)))
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        _core.maxout_backward(np.zeros(2), np.array([0, 2]), 2)
    with pytest.raises(ValueError, match="same shape"):
        _core.maxout_backward(np.zeros(2), np.array([0, 1, 1]), 2)
    with pytest.raises(TypeError, match="integer"):
        _core.maxout_backward(np.zeros(2), np.array([0.0, 1.0]), 2)


# ------------------------------------------------------------------ torch

TORCH_FN = {
    "relu": lambda F, x: F.relu(x),
    "leaky_relu": lambda F, x: F.leaky_relu(x, 0.01),
    "elu": lambda F, x: F.elu(x, 1.0),
    "sigmoid": lambda F, x: x.sigmoid(),
    "tanh": lambda F, x: x.tanh(),
    "gelu": lambda F, x: F.gelu(x),
    "gelu_tanh": lambda F, x: F.gelu(x, approximate="tanh"),
    "softplus": lambda F, x: F.softplus(x, beta=1.0, threshold=20.0),
}


@pytest.mark.parametrize("act", sorted(TORCH_FN))
def test_against_torch(isa, dtype, act, rng):
    torch = pytest.importorskip("torch", reason="torch is not installed")
    F = torch.nn.functional
    z = np.concatenate([rng.standard_normal(500) * 5, EXTREMES]).astype(dtype)
    alpha = 1.0 if act == "elu" else 0.01
    x = torch.tensor(z, dtype=torch.float64, requires_grad=True)  # float64 torch as the reference
    ty = TORCH_FN[act](F, x)
    ty.backward(torch.ones_like(ty))
    y, g = run_both(act, z, np.ones_like(z), alpha=alpha)
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(g, x.grad.numpy(), rtol=20 * rtol, atol=20 * atol)


# ---- huge and infinite inputs: no NaN, saturated values (review finding) ----

_HUGE = {np.float32: [1e20, 1e30, 3e38, np.inf], np.float64: [1e20, 1e30, 1e155, 1e200, 1e300, np.inf]}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", ["gelu", "gelu_tanh"])
def test_gelu_saturates_for_huge_and_infinite_inputs(isa, dtype, act):
    big = np.array(_HUGE[dtype] + [41.0, 50.0, 1e5], dtype)
    z = np.concatenate([big, -big, big, -big])  # > one vector of each sign, plus a tail
    m = big.size
    y = _core.act_forward(act, z)
    g = _core.act_backward(act, np.ones_like(z), z)
    pos, neg = np.r_[0:m, 2 * m:3 * m], np.r_[m:2 * m, 3 * m:4 * m]
    assert not np.isnan(y).any() and not np.isnan(g).any(), (y, g)
    np.testing.assert_array_equal(y[pos], z[pos])
    np.testing.assert_array_equal(y[neg], 0.0)
    assert np.signbit(y[neg]).all()  # -0.0 like z Phi(z) for finite z (torch: -0.0 / 0)
    np.testing.assert_array_equal(g[pos], 1.0)
    np.testing.assert_array_equal(g[neg], 0.0)
    # act_backward with a scaled upstream
    g2 = _core.act_backward(act, np.full_like(z, 3.0), z)
    np.testing.assert_array_equal(g2[pos], 3.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", ["gelu", "gelu_tanh"])
def test_gelu_saturation_is_bit_identical_near_the_cutoff(isa, dtype, act):
    # Just inside and outside |z| = 40 the saturated values are what the formula gives anyway.
    z = np.array([-40.5, -40.0, -39.0, -30.0, -10.0, 10.0, 30.0, 39.0, 40.0, 40.5] * 2, dtype)
    y = _core.act_forward(act, z)
    g = _core.act_backward(act, np.ones_like(z), z)
    assert np.isfinite(y).all() and np.isfinite(g).all()
    np.testing.assert_array_equal(y[z > 0], z[z > 0])
    np.testing.assert_array_equal(g[z >= 30], 1.0)
    np.testing.assert_array_equal(g[np.abs(z) >= 40], (z[np.abs(z) >= 40] > 0).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", ACTS)
def test_all_activations_finite_limits_at_huge_and_infinite_inputs(isa, dtype, act):
    big = np.array(_HUGE[dtype], dtype)
    z = np.concatenate([big, -big, big, -big])
    y = _core.act_forward(act, z, alpha=1.0 if act == "elu" else 0.01)
    kw = {"alpha": 1.0} if act == "elu" else {}
    saved = y if _core.derivative_uses_output(act, **kw) else z
    g = _core.act_backward(act, np.ones_like(z), saved, **kw)
    assert not np.isnan(y).any(), (act, y)
    assert not np.isnan(g).any(), (act, g)
    pos = z > 0
    want_y = {"identity": z, "relu": np.where(pos, z, 0), "leaky_relu": np.where(pos, z, 0.01 * z),
              "elu": np.where(pos, z, -1.0), "sigmoid": np.where(pos, 1.0, 0.0),
              "tanh": np.where(pos, 1.0, -1.0), "gelu": np.where(pos, z, 0),
              "gelu_tanh": np.where(pos, z, 0), "softplus": np.where(pos, z, 0)}[act]
    want_g = {"identity": 1.0, "relu": np.where(pos, 1, 0), "leaky_relu": np.where(pos, 1, 0.01),
              "elu": np.where(pos, 1, 0), "sigmoid": 0.0, "tanh": 0.0, "gelu": np.where(pos, 1, 0),
              "gelu_tanh": np.where(pos, 1, 0), "softplus": np.where(pos, 1, 0)}[act]
    np.testing.assert_array_equal(y, np.asarray(want_y, dtype) + np.zeros_like(z))
    np.testing.assert_allclose(g, np.asarray(want_g, dtype) + np.zeros_like(z), rtol=0, atol=1e-6)


@pytest.mark.parametrize("pieces", [2.5, 2.0, "2", None, True])
def test_maxout_backward_pieces_must_be_an_integer(pieces):
    up = np.ones(3, np.float32)
    am = np.zeros(3, np.int32)
    with pytest.raises(TypeError, match="pieces"):
        _core.maxout_backward(up, am, pieces)


def test_maxout_backward_pieces_numpy_integer_ok_and_lower_bound():
    up = np.ones(3, np.float32)
    am = np.zeros(3, np.int32)
    assert _core.maxout_backward(up, am, np.int64(2)).shape == (2, 3)
    with pytest.raises(ValueError, match="pieces"):
        _core.maxout_backward(up, am, 0)
