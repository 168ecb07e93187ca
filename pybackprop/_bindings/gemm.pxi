# Bindings of csrc/gemm: C = alpha op(A) op(B) + beta C on numpy strides.
#
# numpy's byte strides are passed to the kernel as element strides, so
# transposed views, Fortran-ordered and sliced arrays are used in place; an
# array is copied only when a byte stride is not a multiple of the item size.

cdef extern from "gemm/gemm.h" nogil:
    void c_gemm "pb::gemm"[T](index_t m, index_t n, index_t k, T alpha,
                              const T* a, index_t rs_a, index_t cs_a,
                              const T* b, index_t rs_b, index_t cs_b,
                              T beta, T* c, index_t rs_c, index_t cs_c) except +


cdef object element_strided(a):
    """a itself if its byte strides are whole elements, else a C-contiguous copy."""
    cdef cnp.npy_intp* st = cnp.PyArray_STRIDES(<cnp.ndarray>a)
    cdef cnp.npy_intp item = cnp.PyArray_ITEMSIZE(<cnp.ndarray>a)
    cdef int d
    for d in range(cnp.PyArray_NDIM(<cnp.ndarray>a)):
        if st[d] % item != 0:
            return np.ascontiguousarray(a)
    return a


cdef void byte_extent(a, char** lo, char** hi):
    """The first and one-past-last byte an array (any number of dimensions) can touch."""
    cdef char* p = <char*>cnp.PyArray_DATA(<cnp.ndarray>a)
    cdef cnp.npy_intp* st = cnp.PyArray_STRIDES(<cnp.ndarray>a)
    cdef cnp.npy_intp* dm = cnp.PyArray_DIMS(<cnp.ndarray>a)
    cdef char* first = p
    cdef char* last = p
    cdef int d
    for d in range(cnp.PyArray_NDIM(<cnp.ndarray>a)):
        if dm[d] == 0:
            lo[0] = p
            hi[0] = p
            return
        if st[d] < 0:
            first += (dm[d] - 1) * st[d]
        else:
            last += (dm[d] - 1) * st[d]
    lo[0] = first
    hi[0] = last + cnp.PyArray_ITEMSIZE(<cnp.ndarray>a)


cdef bint self_overlapping(a):
    """True if two elements of the 2-D array a share memory (e.g. a zero stride
    on a dimension of length > 1, as np.lib.stride_tricks.as_strided can make writable)."""
    cdef cnp.npy_intp* st = cnp.PyArray_STRIDES(<cnp.ndarray>a)
    cdef cnp.npy_intp* dm = cnp.PyArray_DIMS(<cnp.ndarray>a)
    cdef cnp.npy_intp item = cnp.PyArray_ITEMSIZE(<cnp.ndarray>a)
    cdef cnp.npy_intp s0 = st[0] if st[0] >= 0 else -st[0]
    cdef cnp.npy_intp s1 = st[1] if st[1] >= 0 else -st[1]
    cdef cnp.npy_intp d0 = dm[0]
    cdef cnp.npy_intp d1 = dm[1]
    cdef cnp.npy_intp t
    if d0 == 0 or d1 == 0:
        return False
    if d0 == 1:
        return d1 > 1 and s1 < item
    if d1 == 1:
        return s0 < item
    if s0 < s1:  # order so that s1 is the smaller stride
        t = s0; s0 = s1; s1 = t
        t = d0; d0 = d1; d1 = t
    if s1 >= item and s0 >= d1 * s1:
        return False  # the usual case: rows (or columns) each in their own stretch
    if s1 < item:
        return True
    # Interleaved layouts: exact test on the elements' byte offsets (rare, O(m n log(m n))).
    offs = np.sort((np.arange(d0, dtype=np.int64)[:, None] * s0
                    + np.arange(d1, dtype=np.int64)[None, :] * s1).ravel())
    return bool((np.diff(offs) < item).any())


cdef bint may_overlap(x, y):
    cdef char* xl
    cdef char* xh
    cdef char* yl
    cdef char* yh
    byte_extent(x, &xl, &xh)
    byte_extent(y, &yl, &yh)
    return xl < yh and yl < xh and xl != xh and yl != yh


cdef check_in_place(out, str out_name, x, str x_name, str fn):
    """An elementwise kernel may write over its input exactly (in place), never over part of it."""
    if may_overlap(out, x) and (data_ptr(out) != data_ptr(x) or out.strides != x.strides):
        raise ValueError(f"{fn}: {out_name} partly overlaps {x_name}; pass a separate array, or {x_name} "
                         "itself to work in place")


cdef check_apart(out, str out_name, inputs, str fn):
    """An output that must share no memory with any of `inputs` ((name, array) pairs)."""
    for name, x in inputs:
        if x is not None and may_overlap(out, x):
            raise ValueError(f"{fn}: {out_name} shares memory with {name}; pass a separate array")


def gemm(a, b, out=None, *, bint trans_a=False, bint trans_b=False, double alpha=1.0, double beta=0.0):
    """out = alpha * op(a) @ op(b) + beta * out, op = transpose when trans_*.

    2-D float32/float64 arrays of one dtype. Any strides are used in place (no
    transpose copy). beta != 0 requires `out`; with beta == 0 `out` is not read.
    `out` may have any layout but must be writable, without internal overlap (no two elements in
    the same memory, e.g. no zero stride on a dimension > 1) and distinct from a and b."""
    a = element_strided(float_array(a, "a"))
    b = element_strided(float_array(b, "b"))
    check_same_dtype(a, "a", b, "b")
    check_ndim(a, 2, "gemm: a")
    check_ndim(b, 2, "gemm: b")
    cdef cnp.npy_intp item = cnp.PyArray_ITEMSIZE(<cnp.ndarray>a)
    cdef cnp.npy_intp* da = cnp.PyArray_DIMS(<cnp.ndarray>a)
    cdef cnp.npy_intp* sa = cnp.PyArray_STRIDES(<cnp.ndarray>a)
    cdef cnp.npy_intp* db = cnp.PyArray_DIMS(<cnp.ndarray>b)
    cdef cnp.npy_intp* sb = cnp.PyArray_STRIDES(<cnp.ndarray>b)
    # op(a) is m x k with element (i, p) at a + i*rs_a + p*cs_a; likewise op(b).
    cdef index_t m, k, k2, n, rs_a, cs_a, rs_b, cs_b, rs_c, cs_c
    if trans_a:
        m, k, rs_a, cs_a = da[1], da[0], sa[1] // item, sa[0] // item
    else:
        m, k, rs_a, cs_a = da[0], da[1], sa[0] // item, sa[1] // item
    if trans_b:
        k2, n, rs_b, cs_b = db[1], db[0], sb[1] // item, sb[0] // item
    else:
        k2, n, rs_b, cs_b = db[0], db[1], sb[0] // item, sb[1] // item
    if k != k2:
        raise ValueError(f"gemm: inner dimensions differ: op(a) has shape {(m, k)} and op(b) has shape {(k2, n)} "
                         f"(a {tuple(a.shape)}{'.T' if trans_a else ''}, b {tuple(b.shape)}{'.T' if trans_b else ''})")
    target = None
    if out is None:
        if beta != 0.0:
            raise ValueError("gemm: beta != 0 requires out")
        out = np.empty((m, n), dtype=a.dtype)
    else:
        if not isinstance(out, np.ndarray):
            raise TypeError(f"gemm: out must be a numpy array, got {type(out).__name__}")
        if out.dtype != a.dtype:
            raise TypeError(f"gemm: out has dtype {out.dtype}, expected {a.dtype}")
        if out.ndim != 2 or out.shape[0] != m or out.shape[1] != n:
            raise ValueError(f"gemm: out has shape {tuple(out.shape)}, expected {(m, n)}")
        if not out.flags.writeable:
            raise ValueError("gemm: out is read-only")
        if self_overlapping(out):
            raise ValueError(f"gemm: out has internal overlap (strides {out.strides} for shape "
                             f"{tuple(out.shape)}: some elements share memory)")
        c = element_strided(out)
        if c is not out or may_overlap(out, a) or may_overlap(out, b):
            target = out            # compute into a fresh array, then copy
            out = np.array(out, order="C") if beta != 0.0 else np.empty((m, n), dtype=a.dtype)
    cdef cnp.npy_intp* sc = cnp.PyArray_STRIDES(<cnp.ndarray>out)
    rs_c = sc[0] // item
    cs_c = sc[1] // item
    cdef void* ap = data_ptr(a)
    cdef void* bp = data_ptr(b)
    cdef void* cp = data_ptr(out)
    if item == 8:
        with nogil:
            c_gemm[double](m, n, k, alpha, <const double*>ap, rs_a, cs_a, <const double*>bp, rs_b, cs_b,
                           beta, <double*>cp, rs_c, cs_c)
    else:
        with nogil:
            c_gemm[float](m, n, k, <float>alpha, <const float*>ap, rs_a, cs_a, <const float*>bp, rs_b, cs_b,
                          <float>beta, <float*>cp, rs_c, cs_c)
    if target is not None:
        target[...] = out
        return target
    return out
