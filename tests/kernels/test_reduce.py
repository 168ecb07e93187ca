"""sum_rows / sum_cols against float64 numpy sums; fixed order => bit-identical for any thread
count (and, by design, for either ISA)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pybackprop import _core

SHAPES = [(0, 0), (0, 5), (5, 0), (1, 1), (7, 8), (8, 9), (9, 7), (15, 16), (16, 17), (17, 513), (1, 1000),
          (1000, 3), (300, 1100)]


def tol(dtype):
    return (1e-6, 1e-5) if dtype == np.float32 else (1e-14, 1e-12)


@pytest.mark.parametrize("shape", SHAPES)
def test_sums_match_numpy(isa, dtype, shape, rng, threads):
    x = rng.standard_normal(shape).astype(dtype)
    x64 = x.astype(np.float64)
    rtol, atol = tol(dtype)
    r = _core.sum_rows(x)
    c = _core.sum_cols(x)
    assert r.shape == (shape[1],) and c.shape == (shape[0],) and r.dtype == dtype
    np.testing.assert_allclose(r, x64.sum(axis=0), rtol=rtol, atol=atol)
    np.testing.assert_allclose(c, x64.sum(axis=1), rtol=rtol, atol=atol)
    out = np.ones(shape[1], dtype)
    assert _core.sum_rows(x, out, accumulate=True) is out
    np.testing.assert_allclose(out, 1 + x64.sum(axis=0), rtol=rtol, atol=atol)
    out = np.full(shape[0], 2, dtype)
    _core.sum_cols(x, out=out, accumulate=True)
    np.testing.assert_allclose(out, 2 + x64.sum(axis=1), rtol=rtol, atol=atol)
    out = np.full(shape[0], 2, dtype)
    _core.sum_cols(x, out=out)  # accumulate=False overwrites
    np.testing.assert_allclose(out, x64.sum(axis=1), rtol=rtol, atol=atol)


def test_strided_fortran_negative(isa, dtype, rng):
    base = rng.standard_normal((20, 30)).astype(dtype)
    rtol, atol = tol(dtype)
    for x in (base[:, ::3], base[::2], base[::-1, ::-1], np.asfortranarray(base), base.T, base[3:9, 4:21]):
        np.testing.assert_allclose(_core.sum_rows(x), x.astype(np.float64).sum(0), rtol=rtol, atol=atol)
        np.testing.assert_allclose(_core.sum_cols(x), x.astype(np.float64).sum(1), rtol=rtol, atol=atol)


def test_exactness_of_double_accumulation(isa):
    # In float32 a naive running sum would lose the small terms entirely.
    x = np.array([[1e8], [1.0], [1.0], [1.0], [1.0], [-1e8]], np.float32)
    assert _core.sum_rows(x)[0] == 4.0
    assert _core.sum_cols(x.T.copy())[0] == 4.0


def test_bit_identical_threads_and_isas(dtype, rng):
    x = rng.standard_normal((3000, 2500)).astype(dtype)
    before_t, before_i = _core.get_num_threads(), _core.active_isa()
    res = []
    try:
        for isa in _core.supported_isas():
            _core._set_isa(isa)
            for t in (1, 2):
                _core.set_num_threads(t)
                res.append((_core.sum_rows(x), _core.sum_cols(x)))
    finally:
        _core.set_num_threads(before_t)
        _core._set_isa(before_i)
    for r in res[1:]:
        assert np.array_equal(r[0], res[0][0]) and np.array_equal(r[1], res[0][1])


def test_nan_inf():
    x = np.array([[1.0, np.inf], [np.nan, 2.0]])
    r = _core.sum_rows(x)
    assert np.isnan(r[0]) and r[1] == np.inf


def test_errors():
    with pytest.raises(ValueError, match="2-D"):
        _core.sum_rows(np.zeros(3))
    with pytest.raises(ValueError, match="accumulate"):
        _core.sum_rows(np.zeros((2, 3)), accumulate=True)
    with pytest.raises(ValueError, match=r"\(4,\).*\(3,\)"):
        _core.sum_rows(np.zeros((2, 3)), out=np.zeros(4))
    with pytest.raises(TypeError, match="dtype"):
        _core.sum_cols(np.zeros((2, 3)), out=np.zeros(2, np.float32))
    with pytest.raises(TypeError, match="int64"):
        _core.sum_cols(np.zeros((2, 3), np.int64))


@settings(max_examples=60, deadline=None)
@given(x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=40),
                    elements=st.floats(-1e6, 1e6, allow_nan=False)), f64=st.booleans())
def test_property_sums(x, f64):
    dtype = np.float64 if f64 else np.float32
    x = x.astype(dtype)
    x64 = x.astype(np.float64)
    scale = np.abs(x64).sum() + 1
    np.testing.assert_allclose(_core.sum_rows(x), x64.sum(0), rtol=tol(dtype)[0], atol=tol(dtype)[0] * scale)
    np.testing.assert_allclose(_core.sum_cols(x), x64.sum(1), rtol=tol(dtype)[0], atol=tol(dtype)[0] * scale)
