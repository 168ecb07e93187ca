# Bindings of csrc/activations: elementwise activations, their local gradients
# (the table in activations.h) and Maxout's arg-max routing.

cdef extern from "activations/activations.h" nogil:
    void c_act_forward "pb::act_forward"[T](Activation act, const ActParams& p, const T* z, T* y,
                                            index_t n) except +
    void c_act_backward "pb::act_backward"[T](Activation act, const ActParams& p, const T* upstream,
                                              const T* saved, T* g, index_t n) except +
    void c_maxout_forward "pb::maxout_forward"[T](const T* z, index_t pieces, index_t n, T* y,
                                                  int32_t* argmax) except +
    void c_maxout_backward "pb::maxout_backward"[T](const T* upstream, const int32_t* argmax,
                                                    index_t pieces, index_t n, T* gz) except +


def derivative_uses_output(activation, *, double alpha=0.01):
    """True if the activation's derivative is computed from its output y, False if from its input z."""
    return c_derivative_uses_output(activation_code(activation), act_params(alpha, 1.0, 20.0))


def act_forward(activation, z, *, double alpha=0.01, double beta=1.0, double threshold=20.0, out=None):
    """y = f(z) elementwise (any shape). `out` may be z itself (in place)."""
    cdef Activation act = activation_code(activation)
    cdef ActParams p = act_params(alpha, beta, threshold)
    z = contiguous(float_array(z, "z"))
    out = output_array(out, tuple(z.shape), z.dtype, "out")
    check_in_place(out, "out", z, "z", "act_forward")
    cdef index_t n = z.size
    cdef void* zp = data_ptr(z)
    cdef void* yp = data_ptr(out)
    if is_f64(z):
        with nogil:
            c_act_forward[double](act, p, <const double*>zp, <double*>yp, n)
    else:
        with nogil:
            c_act_forward[float](act, p, <const float*>zp, <float*>yp, n)
    return out


def act_backward(activation, upstream, saved, *, double alpha=0.01, double beta=1.0, double threshold=20.0,
                 out=None):
    """g = upstream * f'(.), with `saved` = y or z as derivative_uses_output says (None allowed for identity)."""
    cdef Activation act = activation_code(activation)
    cdef ActParams p = act_params(alpha, beta, threshold)
    upstream = contiguous(float_array(upstream, "upstream"))
    if saved is None:
        if act != Activation.identity:
            raise ValueError(f"act_backward: saved may be None only for 'identity', not {activation!r}")
        saved = upstream
    saved = contiguous(float_array(saved, "saved"))
    check_same_dtype(upstream, "upstream", saved, "saved")
    check_same_shape(upstream, "upstream", saved, "saved")
    out = output_array(out, tuple(upstream.shape), upstream.dtype, "out")
    check_in_place(out, "out", upstream, "upstream", "act_backward")
    check_in_place(out, "out", saved, "saved", "act_backward")
    cdef index_t n = upstream.size
    cdef void* up = data_ptr(upstream)
    cdef void* sp = data_ptr(saved)
    cdef void* gp = data_ptr(out)
    if is_f64(upstream):
        with nogil:
            c_act_backward[double](act, p, <const double*>up, <const double*>sp, <double*>gp, n)
    else:
        with nogil:
            c_act_backward[float](act, p, <const float*>up, <const float*>sp, <float*>gp, n)
    return out


def maxout_forward(z):
    """Maxout over the leading axis: z (pieces, *rest) -> (y rest, argmax int32 rest); first maximum wins."""
    z = contiguous(float_array(z, "z"))
    if z.ndim < 1 or z.shape[0] < 1:
        raise ValueError(f"maxout_forward: z must have a leading axis of pieces >= 1, got shape {tuple(z.shape)}")
    cdef index_t pieces = z.shape[0]
    rest = tuple(z.shape[1:])
    y = np.empty(rest, dtype=z.dtype)
    argmax = np.empty(rest, dtype=np.int32)
    cdef index_t n = y.size
    cdef void* zp = data_ptr(z)
    cdef void* yp = data_ptr(y)
    cdef int32_t* ap = <int32_t*>data_ptr(argmax)
    if is_f64(z):
        with nogil:
            c_maxout_forward[double](<const double*>zp, pieces, n, <double*>yp, ap)
    else:
        with nogil:
            c_maxout_forward[float](<const float*>zp, pieces, n, <float*>yp, ap)
    return y, argmax


def maxout_backward(upstream, argmax, pieces):
    """gz (pieces, *upstream.shape): upstream routed to the arg-max piece, 0 elsewhere."""
    if isinstance(pieces, (bool, np.bool_)) or not isinstance(pieces, (int, np.integer)):
        raise TypeError(f"maxout_backward: pieces must be an integer, got {type(pieces).__name__}")
    if pieces < 1:
        raise ValueError(f"maxout_backward: pieces must be >= 1, got {pieces}")
    upstream = contiguous(float_array(upstream, "upstream"))
    cdef index_t k = pieces
    if k < 1:
        raise ValueError(f"maxout_backward: pieces must be >= 1, got {pieces}")
    a = np.asarray(argmax)
    if a.dtype.kind not in "iu":
        raise TypeError(f"argmax must be an integer array, got dtype {a.dtype}")
    if tuple(a.shape) != tuple(upstream.shape):
        raise ValueError(f"upstream and argmax must have the same shape, got {tuple(upstream.shape)} "
                         f"and {tuple(a.shape)}")
    if a.size and (a.min() < 0 or a.max() >= k):
        raise ValueError(f"argmax values must be in [0, {k}), got range [{a.min()}, {a.max()}]")
    a = np.ascontiguousarray(a, dtype=np.int32)
    gz = np.empty((k,) + tuple(upstream.shape), dtype=upstream.dtype)
    cdef index_t n = upstream.size
    cdef void* up = data_ptr(upstream)
    cdef const int32_t* ap = <const int32_t*>data_ptr(a)
    cdef void* gp = data_ptr(gz)
    if is_f64(upstream):
        with nogil:
            c_maxout_backward[double](<const double*>up, ap, k, n, <double*>gp)
    else:
        with nogil:
            c_maxout_backward[float](<const float*>up, ap, k, n, <float*>gp)
    return gz
