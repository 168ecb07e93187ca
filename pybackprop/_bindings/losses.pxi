# Bindings of csrc/losses: losses on raw logits, each returning value and
# gradient from one pass. Sums come back as Python floats (accumulated in double).

cdef extern from "losses/losses.h" nogil:
    double c_softmax_cross_entropy "pb::softmax_cross_entropy"[T](
        const T* logits, index_t n, index_t c, const int64_t* targets, T* loss_rows, T* dlogits,
        T grad_scale) except +
    void c_softmax_cross_entropy_backward "pb::softmax_cross_entropy_backward"[T](
        const T* logits, index_t n, index_t c, const int64_t* targets, const T* row_scale,
        T* dlogits) except +
    void c_softmax_forward "pb::softmax_forward"[T](const T* x, index_t n, index_t c, T* y) except +
    void c_softmax_backward "pb::softmax_backward"[T](const T* gy, const T* y, index_t n, index_t c,
                                                      T* gx) except +
    void c_log_softmax_forward "pb::log_softmax_forward"[T](const T* x, index_t n, index_t c, T* y) except +
    void c_log_softmax_backward "pb::log_softmax_backward"[T](const T* gy, const T* y, index_t n, index_t c,
                                                              T* gx) except +
    double c_squared_error "pb::squared_error"[T](const T* a, const T* b, index_t n, T* elem, T* grad,
                                                  T grad_scale) except +
    double c_bce_with_logits "pb::bce_with_logits"[T](const T* z, const T* y, index_t n, T* elem, T* grad,
                                                      T grad_scale) except +

_INT64_MAX = np.iinfo(np.int64).max


cdef object target_array(targets, index_t n, index_t c):
    """Targets as a C-contiguous int64 array of length n. Integers only (any int
    dtype, lists too); float or bool -> TypeError. The range is checked by the
    kernel before any read (ValueError naming the row and value)."""
    t = targets if isinstance(targets, np.ndarray) else np.asarray(targets)
    if t.dtype.kind not in "iu":
        if not (t.size == 0 and not isinstance(targets, np.ndarray) and t.dtype.kind == "f"):  # [] is float64
            raise TypeError(f"targets must be integers, got dtype {t.dtype}")
    if t.ndim != 1 or t.shape[0] != n:
        raise ValueError(f"targets must have shape ({n},) to match logits with {n} rows, got shape {tuple(t.shape)}")
    if t.dtype.kind == "u" and t.dtype.itemsize == 8 and t.size:
        big = np.flatnonzero(t > _INT64_MAX)
        if big.size:
            i = int(big[0])
            raise ValueError(f"target {int(t[i])} in row {i} is out of range [0, {c})")
    return np.ascontiguousarray(t, dtype=np.int64)


cdef object logits_2d(x, str name):
    x = contiguous(float_array(x, name))
    check_ndim(x, 2, name)
    return x


def softmax_cross_entropy(logits, targets, *, bint need_grad=True, double grad_scale=1.0):
    """Fused stable softmax + cross-entropy over logits (n, c).

    Returns (loss_sum, loss_rows, dlogits | None): loss_rows[i] = logsumexp(logits[i]) - logits[i, t_i];
    dlogits = (softmax(logits) - onehot(targets)) * grad_scale."""
    logits = logits_2d(logits, "logits")
    cdef index_t n = logits.shape[0]
    cdef index_t c = logits.shape[1]
    t = target_array(targets, n, c)
    rows = np.empty((n,), dtype=logits.dtype)
    d = np.empty((n, c), dtype=logits.dtype) if need_grad else None
    cdef void* xp = data_ptr(logits)
    cdef const int64_t* tp = <const int64_t*>data_ptr(t)
    cdef void* rp = data_ptr(rows)
    cdef void* dp = data_ptr(d) if need_grad else NULL
    cdef double total
    if is_f64(logits):
        with nogil:
            total = c_softmax_cross_entropy[double](<const double*>xp, n, c, tp, <double*>rp, <double*>dp,
                                                    grad_scale)
    else:
        with nogil:
            total = c_softmax_cross_entropy[float](<const float*>xp, n, c, tp, <float*>rp, <float*>dp,
                                                   <float>grad_scale)
    return total, rows, d


def softmax_cross_entropy_backward(logits, targets, row_scale):
    """dlogits[i] = (softmax(logits[i]) - onehot(t_i)) * row_scale[i]  (reduction 'none')."""
    logits = logits_2d(logits, "logits")
    cdef index_t n = logits.shape[0]
    cdef index_t c = logits.shape[1]
    t = target_array(targets, n, c)
    row_scale = contiguous(float_array(row_scale, "row_scale"))
    check_same_dtype(logits, "logits", row_scale, "row_scale")
    if tuple(row_scale.shape) != (n,):
        raise ValueError(f"row_scale must have shape ({n},) to match logits {tuple(logits.shape)}, "
                         f"got {tuple(row_scale.shape)}")
    d = np.empty((n, c), dtype=logits.dtype)
    cdef void* xp = data_ptr(logits)
    cdef const int64_t* tp = <const int64_t*>data_ptr(t)
    cdef void* sp = data_ptr(row_scale)
    cdef void* dp = data_ptr(d)
    if is_f64(logits):
        with nogil:
            c_softmax_cross_entropy_backward[double](<const double*>xp, n, c, tp, <const double*>sp, <double*>dp)
    else:
        with nogil:
            c_softmax_cross_entropy_backward[float](<const float*>xp, n, c, tp, <const float*>sp, <float*>dp)
    return d


cdef object _softmax_fwd(x, bint log):
    x = logits_2d(x, "x")
    y = np.empty(x.shape, dtype=x.dtype)
    cdef index_t n = x.shape[0]
    cdef index_t c = x.shape[1]
    cdef void* xp = data_ptr(x)
    cdef void* yp = data_ptr(y)
    if is_f64(x):
        with nogil:
            if log:
                c_log_softmax_forward[double](<const double*>xp, n, c, <double*>yp)
            else:
                c_softmax_forward[double](<const double*>xp, n, c, <double*>yp)
    else:
        with nogil:
            if log:
                c_log_softmax_forward[float](<const float*>xp, n, c, <float*>yp)
            else:
                c_softmax_forward[float](<const float*>xp, n, c, <float*>yp)
    return y


cdef object _softmax_bwd(gy, y, bint log):
    gy = logits_2d(gy, "gy")
    y = logits_2d(y, "y")
    check_same_dtype(gy, "gy", y, "y")
    check_same_shape(gy, "gy", y, "y")
    gx = np.empty(gy.shape, dtype=gy.dtype)
    cdef index_t n = gy.shape[0]
    cdef index_t c = gy.shape[1]
    cdef void* gp = data_ptr(gy)
    cdef void* yp = data_ptr(y)
    cdef void* xp = data_ptr(gx)
    if is_f64(gy):
        with nogil:
            if log:
                c_log_softmax_backward[double](<const double*>gp, <const double*>yp, n, c, <double*>xp)
            else:
                c_softmax_backward[double](<const double*>gp, <const double*>yp, n, c, <double*>xp)
    else:
        with nogil:
            if log:
                c_log_softmax_backward[float](<const float*>gp, <const float*>yp, n, c, <float*>xp)
            else:
                c_softmax_backward[float](<const float*>gp, <const float*>yp, n, c, <float*>xp)
    return gx


def softmax_forward(x):
    """Row-wise softmax of a 2-D array (along the last axis)."""
    return _softmax_fwd(x, False)


def log_softmax_forward(x):
    """Row-wise log-softmax of a 2-D array (along the last axis)."""
    return _softmax_fwd(x, True)


def softmax_backward(gy, y):
    """gx = y * (gy - sum_j gy_j y_j), y = softmax output."""
    return _softmax_bwd(gy, y, False)


def log_softmax_backward(gy, y):
    """gx = gy - exp(y) * sum_j gy_j, y = log_softmax output."""
    return _softmax_bwd(gy, y, True)


cdef tuple _pointwise_loss(a, b, str name_a, str name_b, bint need_elem, bint need_grad, double grad_scale,
                           bint bce):
    a = contiguous(float_array(a, name_a))
    b = contiguous(float_array(b, name_b))
    check_same_dtype(a, name_a, b, name_b)
    check_same_shape(a, name_a, b, name_b)
    elem = np.empty(a.shape, dtype=a.dtype) if need_elem else None
    grad = np.empty(a.shape, dtype=a.dtype) if need_grad else None
    cdef index_t n = a.size
    cdef void* ap = data_ptr(a)
    cdef void* bp = data_ptr(b)
    cdef void* ep = data_ptr(elem) if need_elem else NULL
    cdef void* gp = data_ptr(grad) if need_grad else NULL
    cdef double total
    if is_f64(a):
        with nogil:
            if bce:
                total = c_bce_with_logits[double](<const double*>ap, <const double*>bp, n, <double*>ep,
                                                  <double*>gp, grad_scale)
            else:
                total = c_squared_error[double](<const double*>ap, <const double*>bp, n, <double*>ep,
                                                <double*>gp, grad_scale)
    else:
        with nogil:
            if bce:
                total = c_bce_with_logits[float](<const float*>ap, <const float*>bp, n, <float*>ep,
                                                 <float*>gp, <float>grad_scale)
            else:
                total = c_squared_error[float](<const float*>ap, <const float*>bp, n, <float*>ep,
                                               <float*>gp, <float>grad_scale)
    return total, elem, grad


def squared_error(a, b, *, bint need_elem=False, bint need_grad=True, double grad_scale=1.0):
    """(sum (a-b)^2, elem (a-b)^2 | None, grad 2(a-b)*grad_scale | None); a, b of one shape."""
    return _pointwise_loss(a, b, "a", "b", need_elem, need_grad, grad_scale, False)


def bce_with_logits(z, y, *, bint need_elem=False, bint need_grad=True, double grad_scale=1.0):
    """Stable binary cross-entropy on logits z and targets y:
    (sum l, l | None, (sigmoid(z) - y)*grad_scale | None), l = max(z,0) - z y + log1p(exp(-|z|))."""
    return _pointwise_loss(z, y, "z", "y", need_elem, need_grad, grad_scale, True)
