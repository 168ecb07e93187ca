# Bindings of csrc/optim: in-place optimiser updates with PyTorch's formulas.
# Parameters and state are updated IN PLACE, so they must be writable,
# C-contiguous, of one shape and one dtype (anything else raises: a silent copy
# would lose the update). The gradient is only read: any layout is accepted.
# No two of them may share memory (ValueError naming the two): the kernels
# read and write each element once and would compute garbage from aliases.

cdef extern from "optim/optim.h" nogil:
    void c_sgd_update "pb::sgd_update"[T](T* p, const T* grad, T* buf, index_t n, double lr, double momentum,
                                          double dampening, double weight_decay, bint nesterov,
                                          bint first_step, bint maximize) except +
    void c_adam_update "pb::adam_update"[T](T* p, const T* grad, T* m, T* v, T* vmax, index_t n, double lr,
                                            double beta1, double beta2, double eps, double weight_decay,
                                            bint decoupled, int64_t step, bint maximize) except +
    void c_rmsprop_update "pb::rmsprop_update"[T](T* p, const T* grad, T* sq, T* gavg, T* buf, index_t n,
                                                  double lr, double alpha, double eps, double weight_decay,
                                                  double momentum, bint centered, bint maximize) except +


cdef object inplace_param(p, str name):
    if not isinstance(p, np.ndarray):
        raise TypeError(f"{name} must be a numpy array (it is updated in place), got {type(p).__name__}")
    float_array(p, name)
    if not cnp.PyArray_IS_C_CONTIGUOUS(p):
        raise ValueError(f"{name} must be C-contiguous (it is updated in place), got strides {p.strides} "
                         f"for shape {tuple(p.shape)}")
    if not p.flags.writeable:
        raise ValueError(f"{name} is read-only but is updated in place")
    return p


cdef object inplace_state(s, p, str name, bint needed, str why):
    """Optimiser state `s` (or None when not `needed`) checked against parameter p."""
    if s is None:
        if needed:
            raise ValueError(f"{name} is required when {why}")
        return None
    inplace_param(s, name)
    check_same_dtype(p, "p", s, name)
    if tuple(s.shape) != tuple(p.shape):
        raise ValueError(f"p and {name} must have the same shape, got {tuple(p.shape)} and {tuple(s.shape)}")
    if s is p:
        raise ValueError(f"p and {name} must not share memory ({name} is the parameter array itself)")
    return s


cdef object read_grad(grad, p):
    grad = contiguous(float_array(grad, "grad"))
    check_same_dtype(p, "p", grad, "grad")
    if tuple(grad.shape) != tuple(p.shape):
        raise ValueError(f"p and grad must have the same shape, got {tuple(p.shape)} and {tuple(grad.shape)}")
    return grad


cdef void check_disjoint(a, str name_a, b, str name_b) except *:
    """ValueError if the byte ranges of C-contiguous arrays a and b overlap (None: nothing to check).
    A pointer-range test: much cheaper per call than np.shares_memory, exact for contiguous arrays."""
    if a is None or b is None:
        return
    cdef char* pa = <char*>cnp.PyArray_DATA(<cnp.ndarray>a)
    cdef char* pb = <char*>cnp.PyArray_DATA(<cnp.ndarray>b)
    cdef cnp.npy_intp na = cnp.PyArray_NBYTES(<cnp.ndarray>a)
    cdef cnp.npy_intp nb = cnp.PyArray_NBYTES(<cnp.ndarray>b)
    if na > 0 and nb > 0 and pa < pb + nb and pb < pa + na:
        raise ValueError(f"{name_a} and {name_b} must not share memory (they overlap; the update would "
                         f"read values it has already overwritten)")


cdef inline void* opt_ptr(a):
    return NULL if a is None else data_ptr(a)


def sgd_update(p, grad, buf, *, double lr, double momentum=0.0, double dampening=0.0, double weight_decay=0.0,
               bint nesterov=False, bint first_step=False, bint maximize=False):
    """In-place SGD step, PyTorch convention (torch/optim/sgd.py):
    g = grad (+ wd p); buf = g on the first step else momentum buf + (1 - dampening) g;
    g = g + momentum buf (Nesterov) or buf; p -= lr g. buf may be None when momentum == 0."""
    p = inplace_param(p, "p")
    grad = read_grad(grad, p)
    buf = inplace_state(buf, p, "buf", momentum != 0, "momentum != 0")
    check_disjoint(p, "p", buf, "buf")
    check_disjoint(grad, "grad", p, "p")
    check_disjoint(grad, "grad", buf, "buf")
    cdef index_t n = p.size
    cdef void* pp = data_ptr(p)
    cdef void* gp = data_ptr(grad)
    cdef void* bp = opt_ptr(buf)
    if is_f64(p):
        with nogil:
            c_sgd_update[double](<double*>pp, <const double*>gp, <double*>bp, n, lr, momentum, dampening,
                                 weight_decay, nesterov, first_step, maximize)
    else:
        with nogil:
            c_sgd_update[float](<float*>pp, <const float*>gp, <float*>bp, n, lr, momentum, dampening,
                                weight_decay, nesterov, first_step, maximize)


def adam_update(p, grad, m, v, vmax, *, double lr, double beta1, double beta2, double eps, double weight_decay,
                bint decoupled, step, bint maximize=False):
    """In-place Adam (decoupled=False) / AdamW (decoupled=True) step, torch/optim/adam.py's formulas.
    `step` counts this update (1 on the first call); vmax is None unless amsgrad."""
    p = inplace_param(p, "p")
    grad = read_grad(grad, p)
    m = inplace_state(m, p, "m", True, "always")
    v = inplace_state(v, p, "v", True, "always")
    vmax = inplace_state(vmax, p, "vmax", False, "")
    if isinstance(step, (bool, np.bool_)) or not isinstance(step, (int, np.integer)):
        raise TypeError(f"step must be an integer, got {type(step).__name__}")
    check_disjoint(p, "p", m, "m")
    check_disjoint(p, "p", v, "v")
    check_disjoint(p, "p", vmax, "vmax")
    check_disjoint(m, "m", v, "v")
    check_disjoint(m, "m", vmax, "vmax")
    check_disjoint(v, "v", vmax, "vmax")
    check_disjoint(grad, "grad", p, "p")
    check_disjoint(grad, "grad", m, "m")
    check_disjoint(grad, "grad", v, "v")
    check_disjoint(grad, "grad", vmax, "vmax")
    cdef int64_t st = step
    cdef index_t n = p.size
    cdef void* pp = data_ptr(p)
    cdef void* gp = data_ptr(grad)
    cdef void* mp = data_ptr(m)
    cdef void* vp = data_ptr(v)
    cdef void* xp = opt_ptr(vmax)
    if is_f64(p):
        with nogil:
            c_adam_update[double](<double*>pp, <const double*>gp, <double*>mp, <double*>vp, <double*>xp, n, lr,
                                  beta1, beta2, eps, weight_decay, decoupled, st, maximize)
    else:
        with nogil:
            c_adam_update[float](<float*>pp, <const float*>gp, <float*>mp, <float*>vp, <float*>xp, n, lr,
                                 beta1, beta2, eps, weight_decay, decoupled, st, maximize)


def rmsprop_update(p, grad, sq, gavg, buf, *, double lr, double alpha, double eps, double weight_decay=0.0,
                   double momentum=0.0, bint centered=False, bint maximize=False):
    """In-place RMSprop step, torch/optim/rmsprop.py's formulas. gavg is needed when centered,
    buf when momentum > 0 (None otherwise)."""
    p = inplace_param(p, "p")
    grad = read_grad(grad, p)
    sq = inplace_state(sq, p, "sq", True, "always")
    gavg = inplace_state(gavg, p, "gavg", centered, "centered=True")
    buf = inplace_state(buf, p, "buf", momentum > 0, "momentum > 0")
    check_disjoint(p, "p", sq, "sq")
    check_disjoint(p, "p", gavg, "gavg")
    check_disjoint(p, "p", buf, "buf")
    check_disjoint(sq, "sq", gavg, "gavg")
    check_disjoint(sq, "sq", buf, "buf")
    check_disjoint(gavg, "gavg", buf, "buf")
    check_disjoint(grad, "grad", p, "p")
    check_disjoint(grad, "grad", sq, "sq")
    check_disjoint(grad, "grad", gavg, "gavg")
    check_disjoint(grad, "grad", buf, "buf")
    cdef index_t n = p.size
    cdef void* pp = data_ptr(p)
    cdef void* gp = data_ptr(grad)
    cdef void* sp = data_ptr(sq)
    cdef void* ap = opt_ptr(gavg)
    cdef void* bp = opt_ptr(buf)
    if is_f64(p):
        with nogil:
            c_rmsprop_update[double](<double*>pp, <const double*>gp, <double*>sp, <double*>ap, <double*>bp, n,
                                     lr, alpha, eps, weight_decay, momentum, centered, maximize)
    else:
        with nogil:
            c_rmsprop_update[float](<float*>pp, <const float*>gp, <float*>sp, <float*>ap, <float*>bp, n,
                                    lr, alpha, eps, weight_decay, momentum, centered, maximize)
