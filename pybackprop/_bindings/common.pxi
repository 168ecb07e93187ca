# Shared by every binding: the C++ types they name and the argument checks.
from libc.stdint cimport int64_t, int32_t

ctypedef int64_t index_t

cdef extern from "activations/activations.h" namespace "pb":
    cpdef enum class Activation(int):
        identity, relu, leaky_relu, elu, sigmoid, tanh, gelu, gelu_tanh, softplus
    cdef cppclass ActParams:
        double alpha
        double beta
        double threshold
    bint c_derivative_uses_output "pb::derivative_uses_output"(Activation act, const ActParams& p) except +
    const char* c_activation_name "pb::activation_name"(Activation act)
    const int kNumActivations

cdef extern from "common/types.h" namespace "pb":
    cpdef enum class Reduction(int):
        none, mean, sum

# Names come from the C++ table (activations.h), the one list of them.
_ACTIVATIONS = {}
for _i in range(kNumActivations):
    _ACTIVATIONS[c_activation_name(<Activation>_i).decode()] = Activation(_i)

ACTIVATIONS = tuple(_ACTIVATIONS)

cdef Activation activation_code(name) except *:
    try:
        return _ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}") from None

cdef ActParams act_params(double alpha, double beta, double threshold):
    cdef ActParams p
    p.alpha = alpha
    p.beta = beta
    p.threshold = threshold
    return p

_FLOAT32 = np.dtype(np.float32)
_FLOAT64 = np.dtype(np.float64)

cdef object float_array(x, str name):
    """x as a float32/float64 ndarray (no copy when it already is one).

    Integer and bool input is refused rather than silently converted: the
    kernels' callers decide the dtype. Complex and object input raise TypeError."""
    cdef object a = x if isinstance(x, np.ndarray) else np.asarray(x)
    dt = a.dtype
    if dt is _FLOAT32 or dt is _FLOAT64 or dt == _FLOAT32 or dt == _FLOAT64:
        return a
    raise TypeError(f"{name} must be float32 or float64, got dtype {dt}")

cdef int is_f64(a):
    return (<cnp.ndarray>a).descr.type_num == cnp.NPY_DOUBLE

cdef void check_same_dtype(a, str name_a, b, str name_b) except *:
    if (<cnp.ndarray>a).descr.type_num != (<cnp.ndarray>b).descr.type_num:
        raise TypeError(f"{name_a} and {name_b} must have the same dtype, got {a.dtype} and {b.dtype}")

cdef object contiguous(a):
    """A C-contiguous view of a, copying only if it is not one already."""
    if cnp.PyArray_IS_C_CONTIGUOUS(a):
        return a
    return np.ascontiguousarray(a)

cdef void check_same_shape(a, str name_a, b, str name_b) except *:
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")


cdef void check_ndim(a, int ndim, str name) except *:
    if (<cnp.ndarray>a).ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {tuple(a.shape)}")

cdef object output_array(out, tuple shape, dtype, str name):
    """`out` checked to be a writable C-contiguous array of shape and dtype, or a new one."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(out).__name__}")
    if tuple(out.shape) != shape:
        raise ValueError(f"{name} has shape {tuple(out.shape)}, expected {shape}")
    if out.dtype != dtype:
        raise TypeError(f"{name} has dtype {out.dtype}, expected {np.dtype(dtype)}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(out) or not out.flags.writeable:
        raise ValueError(f"{name} must be a writable C-contiguous array")
    return out

cdef inline void* data_ptr(a):
    return cnp.PyArray_DATA(<cnp.ndarray>a)
