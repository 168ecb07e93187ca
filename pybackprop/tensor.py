"""``pb.Tensor``: a numpy array plus what autograd needs, and the creation functions.

A Tensor holds
  ``data``           a numpy ndarray (float32 or float64), always,
  ``requires_grad``  whether operations on it are recorded,
  ``grad_fn``        the graph node that produced it (``None`` for leaves),
  ``grad``           the accumulated gradient of a leaf (a Tensor) after ``backward``.

Every operation lives in ``pybackprop/ops.py`` (forward next to its local
gradient); the methods here only forward to it.

Dtypes
------
Only float32 (the default) and float64 tensors exist.
  * Python numbers, lists and tuples give float32 (as ``torch.tensor`` does);
    integer and bool numpy arrays are converted to float32.
  * A float32 or float64 numpy array keeps its dtype (float16 becomes float32).
  * Complex, object and string input raises ``TypeError``.
  * Mixing dtypes in one operation promotes like numpy: float32 with float64
    gives float64; a Python number never changes the dtype of a tensor
    (``x32 * 2.0`` stays float32). Gradients always come back in the dtype of
    the tensor they belong to.
Every function that takes a tensor also takes a numpy array (treated as a
constant that does not require grad).
"""
import weakref as _weakref

import numpy as np

__all__ = ["Tensor", "tensor", "zeros", "ones", "zeros_like", "ones_like", "full", "randn", "rand",
           "arange", "eye", "from_numpy", "float32", "float64", "as_dtype"]

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)

_DTYPES = {"float32": float32, "float64": float64}


def as_dtype(dtype):
    """Normalise ``pb.float32``/``pb.float64``, numpy dtypes/types or their names; ``None`` stays ``None``."""
    if dtype is None:
        return None
    if isinstance(dtype, str):
        d = _DTYPES.get(dtype)
        if d is None:
            raise TypeError(f"unsupported dtype {dtype!r}: use 'float32' or 'float64'")
        return d
    try:
        d = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"unsupported dtype {dtype!r}: use pb.float32 or pb.float64") from None
    if d != float32 and d != float64:
        raise TypeError(f"unsupported dtype {d}: use pb.float32 or pb.float64")
    return d


def _to_array(data, dtype=None, copy=False):
    """Convert ``data`` to a float32/float64 ndarray following the module's dtype rules."""
    dtype = as_dtype(dtype)
    if isinstance(data, Tensor):
        arr = data.data
    elif isinstance(data, np.ndarray):
        arr = data
    elif isinstance(data, np.generic):
        arr = np.asarray(data)
    else:
        arr = np.asarray(_unwrap_nested(data))
        if dtype is None and arr.dtype.kind in "fiub":
            dtype = float32          # Python numbers and lists give float32
    kind = arr.dtype.kind
    if kind not in "fiub":
        raise TypeError(f"cannot make a tensor from {arr.dtype} data: only real numbers "
                        "(float32/float64) are supported")
    if dtype is None:
        if arr.dtype == float32 or arr.dtype == float64:
            dtype = arr.dtype
        elif kind == "f" and arr.dtype.itemsize > 8:
            dtype = float64
        else:
            dtype = float32
    if copy:
        return np.array(arr, dtype=dtype, copy=True, order="C")
    return arr if arr.dtype == dtype else arr.astype(dtype)


def _unwrap_nested(data):
    # lists of Tensors -> lists of arrays (so np.asarray sees numbers, not objects)
    if isinstance(data, (list, tuple)) and data and any(isinstance(d, Tensor) for d in data):
        return [d.data if isinstance(d, Tensor) else _unwrap_nested(d) for d in data]
    return data


class Tensor:
    """An n-dimensional float array that can record the operations applied to it.

    ``Tensor(data, dtype=None, requires_grad=False)`` copies ``data`` (see the module
    docstring for the dtype rules). ``pb.from_numpy`` shares memory instead.
    """

    __slots__ = ("data", "grad", "requires_grad", "grad_fn", "_vc", "name", "__weakref__")
    __array_ufunc__ = None          # ndarray <op> Tensor -> Tensor's reflected operator
    __array_priority__ = 1000

    def __init__(self, data, dtype=None, requires_grad=False):
        self.data = _to_array(data, dtype, copy=True)
        self.grad = None
        self.grad_fn = None
        self._vc = [0]
        self.name = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    # --------------------------------------------------------------- version
    # The version counter lives in a one-element list (``_vc``) so that aliases of the same
    # memory -- ``detach()`` and ``pb.from_numpy(t.numpy())`` -- share it: an in-place change
    # through any alias invalidates the saved tensors of every graph that uses the data.
    @property
    def _version(self):
        return self._vc[0]

    @_version.setter
    def _version(self, value):
        try:
            self._vc[0] = value
        except AttributeError:          # set before any counter exists (subclass __init__)
            self._vc = [value]

    # ----------------------------------------------------------------- basics
    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    def size(self, dim=None):
        """The shape (as PyTorch's ``size()``), or its entry ``dim``; ``numel()`` counts elements."""
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self):
        return self.data.size

    def dim(self):
        return self.data.ndim

    @property
    def is_leaf(self):
        return self.grad_fn is None

    @property
    def T(self):
        return _ops.transpose(self)

    def numpy(self):
        """The underlying array (shared, not copied), like ``torch.Tensor.numpy``."""
        _register_alias(self.data, self._vc)
        return self.data

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.data.shape}")
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def __array__(self, dtype=None, copy=None):
        if dtype is not None and np.dtype(dtype) != self.data.dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self.data.size != 1:
            raise RuntimeError("the truth value of a tensor with more than one element is ambiguous")
        return bool(self.data.item())

    __hash__ = object.__hash__

    def __repr__(self):
        body = np.array2string(self.data, precision=4, separator=", ", prefix="tensor(")
        extra = ""
        if self.data.dtype != float32:
            extra += f", dtype={self.data.dtype}"
        if self.grad_fn is not None:
            extra += f", grad_fn=<{self.grad_fn.name}>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    # --------------------------------------------------------------- autograd
    def requires_grad_(self, requires_grad=True):
        if self.grad_fn is not None and not requires_grad:
            raise RuntimeError("you can only change requires_grad of leaf tensors; use detach() "
                               "for a non-leaf")
        self.requires_grad = bool(requires_grad)
        return self

    def detach(self):
        """A new leaf sharing this tensor's data (and its version counter), cut from the graph."""
        t = _make(self.data)
        t._vc = self._vc
        return t

    def detach_(self):
        self.grad_fn = None
        self.requires_grad = False
        return self

    def retain_grad(self):
        """Keep ``.grad`` of this non-leaf tensor after ``backward`` (leaves keep it anyway)."""
        if self.grad_fn is not None:
            self.grad_fn.retain(self)
        elif not self.requires_grad:
            raise RuntimeError("can't retain_grad on a tensor that does not require grad")
        return self

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate d(self)/d(leaf) into the ``.grad`` of every leaf of the graph.

        ``gradient`` is the upstream gradient (needed unless ``self`` has one element).
        Saved values are freed afterwards unless ``retain_graph`` (default: ``create_graph``).
        With ``create_graph=True`` the backward pass is itself recorded, so the
        resulting ``.grad`` tensors can be differentiated again.
        """
        _engine.backward(self, gradient, retain_graph, create_graph, inputs)

    # ------------------------------------------------------------- in place
    def _check_inplace(self):
        if self.requires_grad and self.grad_fn is None and _gm._enabled:
            raise RuntimeError("a leaf tensor that requires grad is being used in an in-place "
                               "operation; wrap it in pb.no_grad()")

    def _bump(self):
        self._version += 1
        return self

    def zero_(self):
        self._check_inplace()
        self.data[...] = 0
        return self._bump()

    def __setitem__(self, index, value):
        """In-place assignment into the data (not recorded; refused while it would corrupt a graph)."""
        if self.requires_grad and _gm._enabled:
            raise RuntimeError("in-place assignment into a tensor that requires grad is not "
                               "differentiable; do it under pb.no_grad() or on a detached tensor")
        self.data[index] = value.data if isinstance(value, Tensor) else value
        self._bump()

    def fill_(self, value):
        self._check_inplace()
        self.data[...] = value
        return self._bump()

    def copy_(self, src):
        self._check_inplace()
        self.data[...] = _to_array(src)
        return self._bump()

    def add_(self, other, alpha=1.0):
        self._check_inplace()
        o = other.data if isinstance(other, Tensor) else other
        if alpha != 1.0:
            o = o * alpha
        self.data += o
        return self._bump()

    def sub_(self, other, alpha=1.0):
        return self.add_(other, -alpha)

    def mul_(self, other):
        self._check_inplace()
        self.data *= other.data if isinstance(other, Tensor) else other
        return self._bump()

    def div_(self, other):
        self._check_inplace()
        self.data /= other.data if isinstance(other, Tensor) else other
        return self._bump()

    def uniform_(self, a=0.0, b=1.0):
        from . import random
        self._check_inplace()
        self.data[...] = random.get_generator().uniform(a, b, self.data.shape)
        return self._bump()

    def normal_(self, mean=0.0, std=1.0):
        from . import random
        self._check_inplace()
        self.data[...] = random.get_generator().normal(mean, std, self.data.shape)
        return self._bump()

    # ------------------------------------------------------------ operators
    def __add__(self, other):
        return _ops.add(self, other)

    def __radd__(self, other):
        return _ops.add(other, self)

    def __sub__(self, other):
        return _ops.sub(self, other)

    def __rsub__(self, other):
        return _ops.sub(other, self)

    def __mul__(self, other):
        return _ops.mul(self, other)

    def __rmul__(self, other):
        return _ops.mul(other, self)

    def __truediv__(self, other):
        return _ops.div(self, other)

    def __rtruediv__(self, other):
        return _ops.div(other, self)

    def __neg__(self):
        return _ops.neg(self)

    def __pos__(self):
        return self

    def __pow__(self, exponent):
        return _ops.pow(self, exponent)

    def __rpow__(self, base):
        return _ops.rpow(base, self)

    def __matmul__(self, other):
        return _ops.matmul(self, other)

    def __rmatmul__(self, other):
        return _ops.matmul(other, self)

    def __getitem__(self, index):
        return _ops.getitem(self, index)

    def __abs__(self):
        return _ops.abs(self)

    # comparisons give constant float tensors of 0/1 (no gradient); == stays identity
    def __lt__(self, other):
        return _make((self.data < _raw(other)).astype(self.data.dtype))

    def __le__(self, other):
        return _make((self.data <= _raw(other)).astype(self.data.dtype))

    def __gt__(self, other):
        return _make((self.data > _raw(other)).astype(self.data.dtype))

    def __ge__(self, other):
        return _make((self.data >= _raw(other)).astype(self.data.dtype))

    # -------------------------------------------------------------- methods
    def exp(self):
        return _ops.exp(self)

    def log(self):
        return _ops.log(self)

    def sqrt(self):
        return _ops.sqrt(self)

    def abs(self):
        return _ops.abs(self)

    def erf(self):
        return _ops.erf(self)

    def relu(self):
        return _ops.relu(self)

    def sigmoid(self):
        return _ops.sigmoid(self)

    def tanh(self):
        return _ops.tanh(self)

    def softmax(self, dim=-1):
        return _ops.softmax(self, dim)

    def log_softmax(self, dim=-1):
        return _ops.log_softmax(self, dim)

    def sum(self, axis=None, keepdims=False, dim=None, keepdim=None):
        return _ops.sum(self, axis if dim is None else dim, keepdims if keepdim is None else keepdim)

    def mean(self, axis=None, keepdims=False, dim=None, keepdim=None):
        return _ops.mean(self, axis if dim is None else dim, keepdims if keepdim is None else keepdim)

    def max(self, axis=None, keepdims=False, dim=None, keepdim=None):
        return _ops.max(self, axis if dim is None else dim, keepdims if keepdim is None else keepdim)

    def min(self, axis=None, keepdims=False, dim=None, keepdim=None):
        return _ops.min(self, axis if dim is None else dim, keepdims if keepdim is None else keepdim)

    def reshape(self, *shape):
        return _ops.reshape(self, *shape)

    view = reshape

    def flatten(self, start_dim=0):
        return _ops.reshape(self, self.shape[:start_dim] + (-1,))

    def transpose(self, *axes):
        return _ops.transpose(self, *axes)

    def permute(self, *axes):
        return _ops.transpose(self, *axes)

    def broadcast_to(self, shape):
        return _ops.broadcast_to(self, shape)

    def astype(self, dtype):
        return _ops.cast(self, as_dtype(dtype))

    def float(self):
        return _ops.cast(self, float32)

    def double(self):
        return _ops.cast(self, float64)

    def clone(self):
        return _ops.clone(self)

    def matmul(self, other):
        return _ops.matmul(self, other)


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def _make(data, requires_grad=False, grad_fn=None):
    """Wrap an ndarray known to be float32/float64 (no checks, no copy): the hot-path constructor."""
    t = _new(Tensor)
    t.data = data
    t.grad = None
    t.requires_grad = requires_grad
    t.grad_fn = grad_fn
    t._vc = [0]
    t.name = None
    return t


_new = object.__new__

# id(ndarray) -> (weakref to it, version cell) for arrays handed out by Tensor.numpy(), so that
# pb.from_numpy() of that array (or of a view of it) shares the tensor's version counter.
_ALIASES = {}


def _register_alias(arr, cell):
    key = id(arr)
    ent = _ALIASES.get(key)
    if ent is not None and ent[0]() is arr:
        return                          # already known: the first tensor's cell stays
    try:
        ref = _weakref.ref(arr, lambda r, key=key: _drop_alias(key, r))
    except TypeError:                   # not weak-referenceable: no sharing
        return
    _ALIASES[key] = (ref, cell)


def _drop_alias(key, ref):
    ent = _ALIASES.get(key)
    if ent is not None and ent[0] is ref:
        del _ALIASES[key]


def _alias_cell(arr):
    """The version cell of the tensor whose ``numpy()`` gave ``arr`` or an array ``arr`` views."""
    a = arr
    while isinstance(a, np.ndarray):
        ent = _ALIASES.get(id(a))
        if ent is not None and ent[0]() is a:
            return ent[1]
        a = a.base
    return None


# ------------------------------------------------------------------ creation
def tensor(data, dtype=None, requires_grad=False):
    """A new tensor holding a copy of ``data`` (see the dtype rules in the module docstring)."""
    return Tensor(data, dtype=dtype, requires_grad=requires_grad)


def from_numpy(a):
    """A tensor sharing memory with the float32/float64 array ``a`` (other real dtypes are converted)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy array, got {type(a).__name__}")
    arr = _to_array(a)
    t = _make(arr)
    if arr is a:                        # shares memory: share the version counter of its tensor
        cell = _alias_cell(a)
        if cell is not None:
            t._vc = cell
        else:
            _register_alias(a, t._vc)
    return t


def _shape(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def _shape_and_options(args, kw, dtype, requires_grad, name):
    """Arguments of ``zeros``/``ones``: ``(2, 3)``, ``((2, 3),)``, ``shape=(2, 3)``, and the
    positional form of the API contract, ``(shape, dtype=None, requires_grad=False)``:
    ``zeros((2, 3), pb.float64)`` or ``zeros(3, "float64", True)``. The dimensions are the
    leading integers (or one tuple/list); what follows is dtype, then requires_grad."""
    args = list(args)
    if args and isinstance(args[0], (tuple, list)):
        shape, rest = tuple(args[0]), args[1:]
    else:
        n = 0
        while n < len(args) and isinstance(args[n], (int, np.integer)) and not isinstance(args[n], bool):
            n += 1
        shape, rest = tuple(args[:n]), args[n:]
    if "shape" in kw:
        if shape:
            raise TypeError(f"{name}() got the shape both positionally and as shape=")
        shape = kw.pop("shape")
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if kw:
        raise TypeError(f"{name}() got unexpected keyword arguments {sorted(kw)}")
    if rest and isinstance(rest[0], (float, np.floating)):
        raise TypeError(f"{name}(): dimensions must be non-negative integers, got {rest[0]!r}")
    if len(rest) > 2:
        raise TypeError(f"{name}(shape, dtype=None, requires_grad=False): too many positional arguments "
                        f"after the shape: {rest!r}")
    if rest:
        if dtype is not None:
            raise TypeError(f"{name}() got dtype both positionally and as a keyword")
        dtype = rest[0]
    if len(rest) == 2:
        if requires_grad:
            raise TypeError(f"{name}() got requires_grad both positionally and as a keyword")
        requires_grad = rest[1]
    for d in shape:
        if not isinstance(d, (int, np.integer)) or isinstance(d, bool) or d < 0:
            raise TypeError(f"{name}(): dimensions must be non-negative integers, got shape {shape!r}")
    return shape, as_dtype(dtype) or float32, bool(requires_grad)


def zeros(*shape, dtype=None, requires_grad=False, **kw):
    """``zeros(2, 3)``, ``zeros((2, 3))``, ``zeros((2, 3), pb.float64)`` or ``zeros(shape=(2, 3))``."""
    shape, dtype, requires_grad = _shape_and_options(shape, kw, dtype, requires_grad, "zeros")
    return _make(np.zeros(shape, dtype), requires_grad)


def ones(*shape, dtype=None, requires_grad=False, **kw):
    """``ones(2, 3)``, ``ones((2, 3))``, ``ones((2, 3), pb.float64)`` or ``ones(shape=(2, 3))``."""
    shape, dtype, requires_grad = _shape_and_options(shape, kw, dtype, requires_grad, "ones")
    return _make(np.ones(shape, dtype), requires_grad)


def full(shape, fill_value, dtype=None, requires_grad=False):
    return _make(np.full(_shape((shape,)), fill_value, as_dtype(dtype) or float32), requires_grad)


def zeros_like(t, dtype=None, requires_grad=False):
    a = _to_array(t)
    return _make(np.zeros(a.shape, as_dtype(dtype) or a.dtype), requires_grad)


def ones_like(t, dtype=None, requires_grad=False):
    a = _to_array(t)
    return _make(np.ones(a.shape, as_dtype(dtype) or a.dtype), requires_grad)


def eye(n, m=None, dtype=None, requires_grad=False):
    return _make(np.eye(n, m, dtype=as_dtype(dtype) or float32), requires_grad)


def arange(*args, dtype=None, requires_grad=False):
    return _make(np.arange(*args).astype(as_dtype(dtype) or float32), requires_grad)


def randn(*shape, dtype=None, requires_grad=False, seed=None):
    """Standard normal samples from ``pb.random``'s generator (or a fresh one seeded by ``seed``)."""
    from . import random
    gen = random.get_generator() if seed is None else np.random.default_rng(seed)
    return _make(gen.standard_normal(_shape(shape), dtype=as_dtype(dtype) or float32), requires_grad)


def rand(*shape, dtype=None, requires_grad=False, seed=None):
    """Uniform samples in [0, 1)."""
    from . import random
    gen = random.get_generator() if seed is None else np.random.default_rng(seed)
    return _make(gen.random(_shape(shape), dtype=as_dtype(dtype) or float32), requires_grad)


# Imported last: both import this module (Tensor must exist first).
from .autograd import grad_mode as _gm  # noqa: E402
from .autograd import engine as _engine  # noqa: E402
from . import ops as _ops  # noqa: E402
