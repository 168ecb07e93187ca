"""pybackprop._core.gemm against float64 numpy: shapes around every tile and
block edge, all transpose/layout variants, alpha/beta, every ISA path, 1 and 2
threads, bit-identical results across thread counts, and argument errors."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from pybackprop import _core

EPS = {np.float32: np.finfo(np.float32).eps, np.float64: np.finfo(np.float64).eps}


def reference(a, b, trans_a, trans_b, alpha, beta, c0):
    a64 = a.astype(np.float64).T if trans_a else a.astype(np.float64)
    b64 = b.astype(np.float64).T if trans_b else b.astype(np.float64)
    want = alpha * (a64 @ b64)
    scale = abs(alpha) * (np.abs(a64) @ np.abs(b64))
    if beta != 0:
        want += beta * c0.astype(np.float64)
        scale += abs(beta) * np.abs(c0.astype(np.float64))
    return want, scale


def assert_gemm_close(got, want, scale, k, dtype):
    tol = 2.0 * (k + 4) * EPS[dtype] * scale + 1e-300
    err = np.abs(got.astype(np.float64) - want)
    bad = ~(err <= tol)
    assert not bad.any(), (f"{bad.sum()} of {bad.size} elements off; worst err {err.max():.3g} "
                           f"at {np.unravel_index(np.argmax(err - tol), err.shape)}")


def layout(x, kind):
    """x with the same values in another memory layout."""
    if kind == "C":
        return np.ascontiguousarray(x)
    if kind == "F":
        return np.asfortranarray(x)
    # strided both ways: every other row and column of a bigger array
    big = np.zeros((2 * x.shape[0] + 1, 2 * x.shape[1] + 3), dtype=x.dtype)
    big[1::2, 1:-2:2] = x
    v = big[1::2, 1:-2:2]
    assert v.shape == x.shape
    return v


def run_case(rng, dtype, m, n, k, trans_a=False, trans_b=False, alpha=1.0, beta=0.0,
             la="C", lb="C", lc="C"):
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    a, b = layout(a, la), layout(b, lb)
    c0 = rng.standard_normal((m, n)).astype(dtype)
    out = layout(c0.copy(), lc) if (beta != 0 or lc != "C") else None
    if out is not None and beta == 0:
        out[...] = np.nan  # beta == 0 must not read out
    got = _core.gemm(a, b, out, trans_a=trans_a, trans_b=trans_b, alpha=alpha, beta=beta)
    if out is not None:
        assert got is out
    assert got.shape == (m, n) and got.dtype == dtype
    want, scale = reference(a, b, trans_a, trans_b, alpha, beta, c0)
    assert_gemm_close(got, want, scale, k, dtype)


# Around the tiles (4, 6, 8, 16) and the blocks (mc 96-144).
DIMS = [0, 1, 2, 5, 6, 7, 8, 13, 16, 17, 31, 97, 130]


@pytest.mark.parametrize("m", DIMS)
@pytest.mark.parametrize("n", DIMS)
def test_small_shapes(isa, dtype, rng, m, n):
    for k in (0, 1, 3, 17, 64):
        run_case(rng, dtype, m, n, k)


# Tiny products (a few hundred multiply-adds) take straight loops with the
# microkernel's arithmetic: a row of C must not depend on which path made it.
@pytest.mark.parametrize("beta", [0.0, 1.0, -0.5])
@pytest.mark.parametrize("shape", [(2, 4, 4), (4, 1, 4), (3, 5, 9), (5, 7, 13)])
def test_tiny_path_rows_equal_blocked_rows(isa, dtype, rng, beta, shape):
    m, n, k = shape
    a = rng.standard_normal((64, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    c0 = rng.standard_normal((64, n)).astype(dtype)
    big = _core.gemm(a, b, c0.copy(), beta=beta)                  # 64 rows: the blocked path
    small = _core.gemm(a[:m], b, c0[:m].copy(), beta=beta)        # m rows: the tiny path
    np.testing.assert_array_equal(small, big[:m])
    want, scale = reference(a[:m], b, False, False, 1.0, beta, c0[:m])
    assert_gemm_close(small, want, scale, k, dtype)


# m == 1 (batch-1 inference) has a kernel of its own: strips of up to 8 vectors
# on avx2 (64 floats, 32 doubles) and 16 on avx512 (128, 64), full or with a
# masked last vector, up to four strips taking turns every 32 rows; k past 256
# is summed in k-blocks fixed by k (gemm.cpp, row_k_blocks) whose partial rows
# are then added.
# Rows of at most 32 columns (10: a classifier's output) take the narrow
# kernel, which deals the rows of B to independent chains of sums.
ROW_NS = [1, 3, 8, 10, 31, 32, 33, 63, 64, 65, 90, 96, 127, 128, 129, 192, 200, 256, 257, 511, 512, 513, 600, 1100]


@pytest.mark.parametrize("n", ROW_NS)
def test_row_vector_path(isa, threads, dtype, rng, n):
    for k in (1, 7, 33, 256, 257, 784, 1500):
        run_case(rng, dtype, 1, n, k)
        run_case(rng, dtype, 1, n, k, alpha=-0.5, beta=1.5)
        run_case(rng, dtype, 1, n, k, la="S", lc="S")


# A thread split of the row (64-column tasks, or k-blocks) never changes a sum:
# 90 columns split as 64 + 26 must not send the 26 to the narrow kernel.
@pytest.mark.parametrize("n", ROW_NS)
def test_row_vector_path_threads_bit_identical(isa, dtype, rng, n):
    before = _core.get_num_threads()
    try:
        for k in (7, 130, 257, 784, 5000):
            a = rng.standard_normal((1, k)).astype(dtype)
            b = rng.standard_normal((k, n)).astype(dtype)
            got = []
            for threads in (1, 2):
                _core.set_num_threads(threads)
                got.append(_core.gemm(a, b))
            np.testing.assert_array_equal(got[0], got[1])
    finally:
        _core.set_num_threads(before)


def on_avx2_and_avx512(compute):
    """{isa: compute()} with the avx2 and then the avx512 path active; restores the path."""
    before = _core.active_isa()
    try:
        got = {}
        for isa in ("avx2", "avx512"):
            _core._set_isa(isa)
            got[isa] = compute()
        return got
    finally:
        _core._set_isa(before)


# The avx2 and avx512 row kernels differ only in how many columns a strip
# holds: every element gets the same operations in the same order.
@pytest.mark.skipif("avx512" not in _core.supported_isas(), reason="this CPU has no AVX-512F/VL")
@pytest.mark.parametrize("n", ROW_NS)
def test_row_vector_path_avx2_equals_avx512(dtype, rng, n):
    for k in (7, 257, 784):
        a = rng.standard_normal((1, k)).astype(dtype)
        b = rng.standard_normal((k, n)).astype(dtype)
        c0 = rng.standard_normal((1, n)).astype(dtype)
        got = on_avx2_and_avx512(lambda: _core.gemm(a, b, c0.copy(), alpha=0.75, beta=-1.5))
        np.testing.assert_array_equal(got["avx2"], got["avx512"])


@pytest.mark.parametrize("trans_a", [False, True], ids=["N", "T"])
@pytest.mark.parametrize("trans_b", [False, True], ids=["N", "T"])
@pytest.mark.parametrize("beta", [0.0, 1.0, -0.5])
@pytest.mark.parametrize("shape", [(7, 19, 13), (61, 47, 53), (64, 128, 100)])
def test_transposes_and_beta(isa, threads, dtype, rng, trans_a, trans_b, beta, shape):
    m, n, k = shape
    run_case(rng, dtype, m, n, k, trans_a, trans_b, alpha=0.75 if beta == 1.0 else 1.0, beta=beta)


@pytest.mark.parametrize("la", ["C", "F", "S"])
@pytest.mark.parametrize("lb", ["C", "F", "S"])
@pytest.mark.parametrize("lc", ["C", "F", "S"])
def test_layouts(isa, dtype, rng, la, lb, lc):
    for beta in (0.0, 2.0):
        run_case(rng, dtype, 29, 37, 41, la=la, lb=lb, lc=lc, beta=beta, alpha=-1.25)


@pytest.mark.parametrize("shape", [
    (301, 517, 799),   # past mc, kc: packed path
    (97, 130, 1100),   # three k-blocks
    (403, 389, 401),
    (3, 3301, 5),      # past nc
    (3301, 3, 5),
    (64, 128, 784),    # MNIST MLP: X W
    (64, 784, 128),    # G W^T (trans_b)
    (784, 128, 64),    # X^T G (trans_a)
    (301, 803, 517),   # A packed (n >= 768), stored transposed: X^T G of a wide layer
])
def test_large(isa, threads, dtype, rng, shape):
    m, n, k = shape
    run_case(rng, dtype, m, n, k, trans_a=(m in (784, 301)), trans_b=(n == 784))
    run_case(rng, dtype, m, n, k, beta=1.0)


def gemm_at_1_and_2_threads(a, b, **kw):
    """The same product on one thread and on two."""
    before = _core.get_num_threads()
    try:
        _core.set_num_threads(1)
        c1 = _core.gemm(a, b, **kw)
        _core.set_num_threads(2)
        c2 = _core.gemm(a, b, **kw)
    finally:
        _core.set_num_threads(before)
    return c1, c2


@pytest.mark.parametrize("shape", [(200, 390, 300), (700, 40, 300), (64, 784, 128), (512, 1024, 784),
                                   (130, 100, 1100)])
def test_threads_bit_identical(isa, dtype, rng, shape):
    m, n, k = shape
    a = rng.standard_normal((m, k)).astype(dtype)
    bt = rng.standard_normal((n, k)).astype(dtype)
    c1, c2 = gemm_at_1_and_2_threads(a, bt, trans_b=True)
    assert np.array_equal(c1, c2)


# The avx512 microkernels hold the AVX2 tiles in zmm registers with the same
# arithmetic per element, so the blocked path gives the same bits on both:
# full and short row tiles, edge columns, every beta mode, C with any strides,
# packed and in-place operands, one k-block and several.
@pytest.mark.skipif("avx512" not in _core.supported_isas(), reason="this CPU has no AVX-512F/VL")
@pytest.mark.parametrize("shape", [(6, 16, 9), (13, 37, 300), (64, 128, 784), (784, 128, 64),
                                   (200, 390, 300), (301, 517, 799)])
@pytest.mark.parametrize("beta", [0.0, 1.0, -1.5])
def test_blocked_path_avx2_equals_avx512(threads, dtype, rng, shape, beta):
    m, n, k = shape
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    bt = np.ascontiguousarray(b.T)
    c0 = rng.standard_normal((m, n)).astype(dtype)
    got = on_avx2_and_avx512(lambda: [
        _core.gemm(a, b, c0.copy(), alpha=0.75, beta=beta),
        _core.gemm(a, bt, c0.copy(), alpha=-1.0, beta=beta, trans_b=True),
        _core.gemm(np.asfortranarray(a), b, np.asfortranarray(c0), beta=beta)])
    for x, y in zip(got["avx2"], got["avx512"]):
        np.testing.assert_array_equal(x, y)
    want, scale = reference(a, b, False, False, 0.75, beta, c0)
    assert_gemm_close(got["avx512"][0], want, scale, k, dtype)


# A narrow C whose A is stored transposed (dW = X^T G of a layer with few
# outputs: n below a micro-panel, 16 floats or 8 doubles) takes the avx512
# narrow_tn kernel, which runs its vectors down the columns of C; the avx2
# path computes it in the blocked path. Same bits: every element gets the same
# multiply-adds in the same order and the same write-back. Row tails (m not a
# multiple of the vector), one and several k-blocks (kc 512), every beta mode,
# A as a transposed view or in Fortran order, a strided C.
NARROW_TN = [(1, 1, 1), (7, 3, 5), (16, 10, 64), (17, 1, 9), (63, 15, 128), (64, 10, 130),
             (130, 7, 600), (784, 10, 64), (1024, 10, 512), (97, 2, 1100)]


@pytest.mark.skipif("avx512" not in _core.supported_isas(), reason="this CPU has no AVX-512F/VL")
@pytest.mark.parametrize("shape", NARROW_TN, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("beta", [0.0, 1.0, -1.5])
def test_narrow_tn_path_equals_blocked_path(threads, dtype, rng, shape, beta):
    m, n, k = shape
    n = min(n, 15 if dtype == np.float32 else 7)          # narrower than a zmm
    at = rng.standard_normal((k, m)).astype(dtype)      # A = at^T: columns of A contiguous
    b = rng.standard_normal((k, n)).astype(dtype)
    c0 = rng.standard_normal((m, n)).astype(dtype)

    def products():
        out = np.zeros((m, 2 * n + 1), dtype)[:, 1::2]   # a strided C
        out[...] = c0 if beta != 0 else np.nan            # beta 0 must not read C
        return [_core.gemm(at, b, c0.copy(), alpha=0.75, beta=beta, trans_a=True),
                _core.gemm(np.asfortranarray(at.T), b, c0.copy(), alpha=-1.0, beta=beta),
                _core.gemm(at, b, out, alpha=1.0, beta=beta, trans_a=True)]
    got = on_avx2_and_avx512(products)
    for x, y in zip(got["avx2"], got["avx512"]):
        np.testing.assert_array_equal(x, y)
    want, scale = reference(at, b, True, False, 0.75, beta, c0)
    assert_gemm_close(got["avx512"][0], want, scale, k, dtype)


def check_xt_g_at_1_and_2_threads(rng, dtype, shape):
    """X^T G (A given transposed, as dense backward's dW): bit-identical on one and
    two threads, and close to float64 numpy."""
    m, n, k = shape
    at = rng.standard_normal((k, m)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    c1, c2 = gemm_at_1_and_2_threads(at, b, trans_a=True)
    assert np.array_equal(c1, c2)
    want, scale = reference(at, b, True, False, 1.0, 0.0, None)
    assert_gemm_close(c2, want, scale, k, dtype)


@pytest.mark.parametrize("shape", [(1024, 10, 512), (784, 10, 128), (130, 3, 600)])
def test_narrow_tn_threads_bit_identical(isa, dtype, rng, shape):
    check_xt_g_at_1_and_2_threads(rng, dtype, shape)


# dW = X^T G of layers in workloads A and B, and a narrow C with an edge
# panel: a row split whose B is one small block (k within one k-block on every
# ISA), which each thread packs once per call on its first claim (gemm.cpp,
# rows_own_b).
@pytest.mark.parametrize("shape", [(784, 256, 128), (256, 128, 128), (784, 128, 64), (700, 40, 200)])
def test_rows_own_b_path(isa, dtype, rng, shape):
    check_xt_g_at_1_and_2_threads(rng, dtype, shape)


def test_rows_own_b_repacks_a_new_b_of_the_same_size(isa, dtype, rng):
    # A thread's packed B lives in a buffer reused across calls: each call must
    # pack its own B, even when the previous one had the same shape (and the
    # same address, as numpy often hands back a freed block).
    m, n, k = 784, 128, 64
    at = rng.standard_normal((k, m)).astype(dtype)
    before = _core.get_num_threads()
    try:
        _core.set_num_threads(2)
        for call in range(6):
            if call % 2 == 0:
                b = rng.standard_normal((k, n)).astype(dtype)
            else:
                b[...] = rng.standard_normal((k, n))  # same array, new values
            got = _core.gemm(at, b, trans_a=True)
            want, scale = reference(at, b, True, False, 1.0, 0.0, None)
            assert_gemm_close(got, want, scale, k, dtype)
    finally:
        _core.set_num_threads(before)


def test_zero_size_and_alpha_zero(isa, dtype, rng):
    assert _core.gemm(np.zeros((0, 5), dtype), np.zeros((5, 3), dtype)).shape == (0, 3)
    assert _core.gemm(np.zeros((4, 5), dtype), np.zeros((5, 0), dtype)).shape == (4, 0)
    c = _core.gemm(np.zeros((4, 0), dtype), np.zeros((0, 3), dtype))
    assert np.array_equal(c, np.zeros((4, 3)))
    out = np.full((4, 3), np.nan, dtype)
    _core.gemm(np.ones((4, 0), dtype), np.ones((0, 3), dtype), out)  # beta 0: NaN overwritten
    assert np.array_equal(out, np.zeros((4, 3)))
    out = np.full((4, 3), 2.0, dtype)
    a = np.full((4, 5), np.nan, dtype)
    _core.gemm(a, np.ones((5, 3), dtype), out, alpha=0.0, beta=3.0)  # alpha 0: a not read
    assert np.array_equal(out, np.full((4, 3), 6.0))


def test_out_aliasing_input(dtype, rng):
    a = rng.standard_normal((20, 20)).astype(dtype)
    b = rng.standard_normal((20, 20)).astype(dtype)
    want = a.astype(np.float64) @ b + a
    got = _core.gemm(a, b, out=a, beta=1.0)
    assert got is a
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_negative_and_odd_strides(dtype, rng):
    a = rng.standard_normal((30, 40)).astype(dtype)[::-1, ::-2]
    b = rng.standard_normal((20, 25)).astype(dtype)[:, ::-1]
    np.testing.assert_allclose(_core.gemm(a, b), a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)
    # a byte stride that is not a multiple of the item size: copied, still correct
    item = np.dtype(dtype).itemsize
    raw = np.zeros(30 * (41 * item + 1) + 1, np.uint8)
    odd = np.ndarray((30, 40), dtype=dtype, buffer=raw[1:], strides=(41 * item + 1, item))
    odd[...] = rng.standard_normal((30, 40))
    b2 = rng.standard_normal((40, 7)).astype(dtype)
    np.testing.assert_allclose(_core.gemm(odd, b2), odd.astype(np.float64) @ b2, rtol=1e-4, atol=1e-4)


def test_errors():
    f32, f64 = np.float32, np.float64
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(5, 2\)"):
        _core.gemm(np.ones((3, 4), f32), np.ones((5, 2), f32))
    with pytest.raises(ValueError, match="2-D"):
        _core.gemm(np.ones(3, f32), np.ones((3, 2), f32))
    with pytest.raises(TypeError, match="float32 and float64"):
        _core.gemm(np.ones((3, 4), f32), np.ones((4, 2), f64))
    with pytest.raises(TypeError, match="int64"):
        _core.gemm(np.ones((3, 4), np.int64), np.ones((4, 2), np.int64))
    with pytest.raises(ValueError, match="beta"):
        _core.gemm(np.ones((3, 4), f32), np.ones((4, 2), f32), beta=1.0)
    with pytest.raises(ValueError, match=r"\(3, 3\).*\(3, 2\)"):
        _core.gemm(np.ones((3, 4), f32), np.ones((4, 2), f32), out=np.ones((3, 3), f32))
    with pytest.raises(TypeError, match="dtype"):
        _core.gemm(np.ones((3, 4), f32), np.ones((4, 2), f32), out=np.ones((3, 2), f64))
    ro = np.ones((3, 2), f32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _core.gemm(np.ones((3, 4), f32), np.ones((4, 2), f32), out=ro)


@settings(max_examples=60, deadline=None)
@given(m=st.integers(0, 40), n=st.integers(0, 40), k=st.integers(0, 70),
       trans_a=st.booleans(), trans_b=st.booleans(),
       alpha=st.sampled_from([1.0, -2.0, 0.5]), beta=st.sampled_from([0.0, 1.0, 0.3]),
       f64=st.booleans(), lc=st.sampled_from(["C", "F", "S"]), seed=st.integers(0, 2**31))
def test_property_random(m, n, k, trans_a, trans_b, alpha, beta, f64, lc, seed):
    run_case(np.random.default_rng(seed), np.float64 if f64 else np.float32, m, n, k,
             trans_a, trans_b, alpha, beta, lc=lc)


# ---- `out` with internal overlap is rejected (review finding) ----

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_out_with_internal_overlap_rejected(dtype):
    a = np.arange(6, dtype=dtype).reshape(2, 3)
    b = np.ones((3, 4), dtype)
    base = np.zeros(16, dtype)
    it = base.itemsize
    bad = [np.lib.stride_tricks.as_strided(base, (2, 4), (0, it)),        # rows alias
           np.lib.stride_tricks.as_strided(base, (2, 4), (it, 0)),        # columns alias
           np.lib.stride_tricks.as_strided(base, (2, 4), (2 * it, it)),   # rows overlap partly
           np.lib.stride_tricks.as_strided(base, (2, 4), (it, it))]
    for out in bad:
        assert out.flags.writeable
        with pytest.raises(ValueError, match="overlap"):
            _core.gemm(a, b, out)
        with pytest.raises(ValueError, match="overlap"):
            _core.gemm(a, b, out, beta=1.0)
    np.testing.assert_array_equal(base, 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_out_zero_stride_on_unit_dims_and_interleaved_strides_ok(dtype):
    a = np.arange(6, dtype=dtype).reshape(2, 3)
    b = np.arange(12, dtype=dtype).reshape(3, 4)
    want = a.astype(np.float64) @ b
    base = np.zeros(64, dtype)
    it = base.itemsize
    # (1, 4) with a zero row stride, (2, 1) with a zero column stride: no element repeats
    o1 = np.lib.stride_tricks.as_strided(base, (1, 4), (0, it))
    np.testing.assert_allclose(_core.gemm(a[:1], b, o1), want[:1])
    o2 = np.lib.stride_tricks.as_strided(base, (2, 1), (it, 0))
    np.testing.assert_allclose(_core.gemm(a, b[:, :1], o2), want[:, :1])
    # interleaved but disjoint: rows at 0, 3; columns at 0, 2, 4, 6 ... no; use (3, 2) x (2,)
    o3 = np.lib.stride_tricks.as_strided(base, (2, 4), (it, 2 * it))  # offsets 0,2,4,6 / 1,3,5,7
    np.testing.assert_allclose(_core.gemm(a, b, o3), want)
    o4 = np.lib.stride_tricks.as_strided(base, (2, 2), (3 * it, 2 * it))  # offsets 0,2 / 3,5
    np.testing.assert_allclose(_core.gemm(a, b[:, :2], o4), want[:, :2])
