# Bindings of csrc/reduce: the sums of broadcasting gradients, in a fixed order
# (bit-identical for any thread count).

cdef extern from "reduce/reduce.h" nogil:
    void c_sum_rows "pb::sum_rows"[T](const T* x, index_t rows, index_t cols, index_t ldx, T* out,
                                      bint accumulate) except +
    void c_sum_cols "pb::sum_cols"[T](const T* x, index_t rows, index_t cols, index_t ldx, T* out,
                                      bint accumulate) except +


cdef tuple rows_view(x):
    """x (2-D) and its row stride in elements; copies unless columns are unit-stride and rows positive."""
    x = float_array(x, "x")
    check_ndim(x, 2, "x")
    cdef Py_ssize_t item = x.itemsize
    if x.shape[0] > 1 and x.shape[1] > 0:
        if x.strides[1] != item or x.strides[0] <= 0 or x.strides[0] % item:
            x = np.ascontiguousarray(x)
        return x, x.strides[0] // item
    x = contiguous(x)
    return x, x.shape[1]


cdef object _sum(x, out, bint accumulate, bint over_rows):
    x, ld = rows_view(x)
    cdef index_t rows = x.shape[0]
    cdef index_t cols = x.shape[1]
    cdef index_t ldx = ld
    shape = (cols,) if over_rows else (rows,)
    if accumulate and out is None:
        raise ValueError("accumulate=True requires out")
    out = output_array(out, shape, x.dtype, "out")
    cdef void* xp = data_ptr(x)
    cdef void* op = data_ptr(out)
    if is_f64(x):
        with nogil:
            if over_rows:
                c_sum_rows[double](<const double*>xp, rows, cols, ldx, <double*>op, accumulate)
            else:
                c_sum_cols[double](<const double*>xp, rows, cols, ldx, <double*>op, accumulate)
    else:
        with nogil:
            if over_rows:
                c_sum_rows[float](<const float*>xp, rows, cols, ldx, <float*>op, accumulate)
            else:
                c_sum_cols[float](<const float*>xp, rows, cols, ldx, <float*>op, accumulate)
    return out


def sum_rows(x2d, out=None, accumulate=False):
    """out (cols,) (+)= x2d.sum(axis=0), each column summed over rows in order in double."""
    return _sum(x2d, out, accumulate, True)


def sum_cols(x2d, out=None, accumulate=False):
    """out (rows,) (+)= x2d.sum(axis=1), in a fixed 8-lane order in double."""
    return _sum(x2d, out, accumulate, False)
