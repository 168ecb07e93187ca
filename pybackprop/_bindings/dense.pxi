# Bindings of csrc/dense: the fused dense layer, Y = act(X W + b), and its backward.
# The kernels take C-contiguous matrices; other layouts are copied once here.

cdef extern from "dense/dense.h" nogil:
    void c_dense_forward "pb::dense_forward"[T](const T* x, const T* w, const T* b, index_t m, index_t k,
                                                index_t n, Activation act, const ActParams& p, T* y,
                                                T* preact) except +
    void c_dense_backward "pb::dense_backward"[T](const T* dy, const T* saved, const T* x, const T* w,
                                                  index_t m, index_t k, index_t n, Activation act,
                                                  const ActParams& p, T* dx, bint dx_accumulate, T* dw,
                                                  bint dw_accumulate, T* db, bint db_accumulate,
                                                  T* workspace) except +


cdef tuple dense_operands(x, w, str fn):
    """x (m, k) and w (k, n) as C-contiguous arrays of one float dtype, shapes checked."""
    x = contiguous(float_array(x, "x"))
    w = contiguous(float_array(w, "w"))
    check_same_dtype(x, "x", w, "w")
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[0]:
        raise ValueError(f"{fn}: x must be (m, k) and w (k, n), got x {tuple(x.shape)} and w {tuple(w.shape)}")
    return x, w


def dense_forward(x, w, b, activation="identity", *, double alpha=0.01, double beta=1.0,
                  double threshold=20.0, bint save_preact=False):
    """(y, z | None): y = act(x @ w + b) with bias and activation fused into the GEMM write-back.

    x (m, k), w (k, n), b (n,) or None. z = x @ w + b is returned when save_preact
    (backward needs it when derivative_uses_output(activation) is False)."""
    cdef Activation act = activation_code(activation)
    cdef ActParams p = act_params(alpha, beta, threshold)
    x, w = dense_operands(x, w, "dense_forward")
    cdef index_t m = x.shape[0], k = x.shape[1], n = w.shape[1]
    cdef void* bp = NULL
    if b is not None:
        b = contiguous(float_array(b, "b"))
        check_same_dtype(x, "x", b, "b")
        if b.ndim != 1 or b.shape[0] != n:
            raise ValueError(f"dense_forward: b must have shape {(n,)} for w {tuple(w.shape)}, got {tuple(b.shape)}")
        bp = data_ptr(b)
    y = np.empty((m, n), dtype=x.dtype)
    z = np.empty((m, n), dtype=x.dtype) if save_preact else None
    cdef void* xp = data_ptr(x)
    cdef void* wp = data_ptr(w)
    cdef void* yp = data_ptr(y)
    cdef void* zp = data_ptr(z) if save_preact else NULL
    if is_f64(x):
        with nogil:
            c_dense_forward[double](<const double*>xp, <const double*>wp, <const double*>bp, m, k, n, act, p,
                                    <double*>yp, <double*>zp)
    else:
        with nogil:
            c_dense_forward[float](<const float*>xp, <const float*>wp, <const float*>bp, m, k, n, act, p,
                                   <float*>yp, <float*>zp)
    return y, z


def dense_backward(dy, saved, x, w, activation="identity", *, double alpha=0.01, double beta=1.0,
                   double threshold=20.0, bint need_dx=True, bint need_dw=True, bint need_db=True,
                   dw_out=None, db_out=None):
    """(dx | None, dw | None, db | None) of y = act(x @ w + b) given dy.

    saved is y or z as derivative_uses_output(activation) says (None allowed for
    'identity'). g = dy * act'(saved); dx = g @ w.T, dw = x.T @ g, db = g.sum(0).
    dw_out / db_out, when given, are accumulated into (and returned)."""
    cdef Activation act = activation_code(activation)
    cdef ActParams p = act_params(alpha, beta, threshold)
    x, w = dense_operands(x, w, "dense_backward")
    cdef index_t m = x.shape[0], k = x.shape[1], n = w.shape[1]
    dy = contiguous(float_array(dy, "dy"))
    check_same_dtype(x, "x", dy, "dy")
    if dy.ndim != 2 or dy.shape[0] != m or dy.shape[1] != n:
        raise ValueError(f"dense_backward: dy must have shape {(m, n)} for x {tuple(x.shape)} and w "
                         f"{tuple(w.shape)}, got {tuple(dy.shape)}")
    if saved is None:
        if act != Activation.identity:
            raise ValueError(f"dense_backward: saved may be None only for 'identity', not {activation!r}")
        saved = dy
    else:
        saved = contiguous(float_array(saved, "saved"))
        check_same_dtype(x, "x", saved, "saved")
        if tuple(saved.shape) != (m, n):
            raise ValueError(f"dense_backward: saved must have shape {(m, n)} like dy, got {tuple(saved.shape)}")
    dx = np.empty((m, k), dtype=x.dtype) if need_dx else None
    cdef bint dw_acc = dw_out is not None
    cdef bint db_acc = db_out is not None
    dw = None
    db = None
    if need_dw:
        dw = output_array(dw_out, (k, n), x.dtype, "dw_out")
    if need_db:
        db = output_array(db_out, (n,), x.dtype, "db_out")
    operands = (("dy", dy), ("saved", saved), ("x", x), ("w", w))
    if dw is not None:
        check_apart(dw, "dw_out", operands + (("db_out", db),), "dense_backward")
    if db is not None:
        check_apart(db, "db_out", operands, "dense_backward")
    cdef void* dyp = data_ptr(dy)
    cdef void* sp = data_ptr(saved)
    cdef void* xp = data_ptr(x)
    cdef void* wp = data_ptr(w)
    cdef void* dxp = data_ptr(dx) if need_dx else NULL
    cdef void* dwp = data_ptr(dw) if need_dw else NULL
    cdef void* dbp = data_ptr(db) if need_db else NULL
    if is_f64(x):
        with nogil:
            c_dense_backward[double](<const double*>dyp, <const double*>sp, <const double*>xp, <const double*>wp,
                                     m, k, n, act, p, <double*>dxp, False, <double*>dwp, dw_acc,
                                     <double*>dbp, db_acc, NULL)
    else:
        with nogil:
            c_dense_backward[float](<const float*>dyp, <const float*>sp, <const float*>xp, <const float*>wp,
                                    m, k, n, act, p, <float*>dxp, False, <float*>dwp, dw_acc,
                                    <float*>dbp, db_acc, NULL)
    return dx, dw, db
