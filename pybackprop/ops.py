"""Every differentiable operation of pybackprop: its forward next to its local gradient.

Each op is a small class:
  ``forward(ctx, *arrays, **params)``  computes the output ndarray and saves, on
                                       ``ctx``, the cheapest thing backward needs;
  ``backward(ctx, g)``                 returns one gradient per input ("upstream ×
                                       local"), ``None`` where none is needed.
``ctx.x(i)`` is input i and ``ctx.y()`` the saved output: ndarrays on the fast
path, Tensors under ``create_graph=True`` — so each formula below is written once
and is itself differentiable (it only uses ops from this table). Ops backed by a
C++ kernel (matmul, activations, dense, softmax, the losses, maxout) call their
fused kernel backward on the fast path and spell the same derivative in Tensor
ops when the backward must be recorded. ``fresh = True`` tells the engine that
every gradient the op returns is a new array nobody else holds (so it can become
a leaf's ``.grad`` without a copy).

    op            forward                      local gradient (g = upstream)
    add           a + b                        g, g                 (summed over broadcast axes)
    sub           a - b                        g, -g
    mul           a * b                        g b, g a
    div           a / b                        g / b, -g a / b²
    neg           -a                           -g
    pow           a ** p (p a number)          g p a^(p-1)
    exp           e^a          (saves output)  g y
    log           ln a                         g / a
    sqrt          √a           (saves output)  g / (2 y)
    abs           |a|                          g sign(a)
    erf           erf a                        g 2/√π e^(-a²)
    sum/mean      Σ a over axes                g broadcast back (÷ n for mean)
    max           max over axes                g at the first arg-max only (NaN propagates)
    reshape, transpose, broadcast_to, cast, getitem, stack, cat, where: move g back
    matmul        a @ b        (_core.gemm)    g bᵀ, aᵀ g
    act           f(z)   (_core.act_forward)   g f'(.) from y or z as the kernel says
    step_grad     g (z > 0 ? 1 : slope)        (relu/leaky backward when recorded) gg (..), 0 for z
    dense         f(x W + b) (_core.dense_*)   gz = g f'(.); gz Wᵀ, xᵀ gz, Σ_rows gz
    maxout        max_k (x W_k + b_k)          g to the winning piece
    softmax       (_core.softmax_*)            y (g - Σ g y)
    log_softmax                                g - e^y Σ g
    cross_entropy fused softmax + NLL          (softmax - onehot) · scale
    mse           Σ (a - b)²                   2 (a - b) · scale, and its negative
    bce_logits    Σ max(z,0) - z y + log1p(e^-|z|)   (σ(z) - y) · scale, -z · scale
"""
import builtins
import math
import warnings

import numpy as np

from . import _core as K
from .autograd.engine import apply
from .tensor import Tensor, _make, _to_array, float32, float64

_SQRT2 = math.sqrt(2.0)
_SQRT_2_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


# ------------------------------------------------------------------ helpers
def _arg(x):
    """An op argument: Tensors and float arrays as they are, Python numbers stay weak scalars."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray):
        if x.dtype == float32 or x.dtype == float64:
            return x
        return _to_array(x)
    if isinstance(x, np.generic):     # np.float64 subclasses float: check numpy scalars first
        if x.dtype.kind in "fiu":
            return float(x)               # a weak scalar, like a Python number
        return _to_array(x)
    if isinstance(x, (float, int)) and not isinstance(x, bool):
        return x
    return _to_array(x)


def _data(v):
    return v.data if isinstance(v, Tensor) else v


def _dtype(v):
    return v.data.dtype if isinstance(v, Tensor) else v.dtype


def _exp(v):
    return v.exp() if isinstance(v, Tensor) else np.exp(v)


def _expand(g, kshape, shape):
    """Broadcast g (the reduced gradient) back to ``shape`` through the keepdims shape."""
    if isinstance(g, Tensor):
        return g.reshape(kshape).broadcast_to(shape)
    return np.broadcast_to(np.reshape(g, kshape), shape)


def unbroadcast(g, shape):
    """Sum ``g`` over the axes along which a value of ``shape`` was broadcast (undoes broadcasting)."""
    gshape = g.shape
    if gshape == shape:
        return g
    lead = len(gshape) - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape)
                                      if n == 1 and gshape[lead + i] != 1)
    if lead == 1 and len(axes) == 1 and len(gshape) == 2 and type(g) is np.ndarray:
        return K.sum_rows(g)          # the bias gradient: one pass over the rows
    return g.sum(axis=axes, keepdims=True).reshape(shape)


def _check_axis(axis, ndim, what="axis"):
    """``axis`` normalised to [0, ndim); IndexError naming it and ``ndim`` when out of range."""
    if not -ndim <= axis < ndim:
        if ndim == 0:
            raise IndexError(f"{what} {axis} is out of range for a 0-d tensor (it has no dimensions)")
        raise IndexError(f"{what} {axis} is out of range for a tensor with ndim {ndim} "
                         f"(expected {-ndim} <= {what} < {ndim})")
    return axis % ndim


def _norm_axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (tuple, list)):
        return tuple(sorted(_check_axis(a, ndim) if ndim else a for a in axis))
    return (_check_axis(axis, ndim) if ndim else axis,)


def _kshape(shape, axes):
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _mT(v):
    if isinstance(v, Tensor):
        perm = list(range(v.ndim))
        perm[-1], perm[-2] = perm[-2], perm[-1]
        return v.transpose(*perm)
    return np.swapaxes(v, -1, -2)


class Op:
    name = "op"
    fresh = False


# =========================================================== elementwise maths
class Add(Op):
    name = "add"

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, g):
        n = ctx.needs_input_grad
        return (unbroadcast(g, ctx.shape(0)) if n[0] else None,
                unbroadcast(g, ctx.shape(1)) if n[1] else None)


class Sub(Op):
    name = "sub"

    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, g):
        n = ctx.needs_input_grad
        return (unbroadcast(g, ctx.shape(0)) if n[0] else None,
                unbroadcast(-g, ctx.shape(1)) if n[1] else None)


class Mul(Op):
    name = "mul"
    fresh = True

    @staticmethod
    def forward(ctx, a, b):
        return a * b

    @staticmethod
    def backward(ctx, g):
        n = ctx.needs_input_grad
        return (unbroadcast(g * ctx.x(1), ctx.shape(0)) if n[0] else None,
                unbroadcast(g * ctx.x(0), ctx.shape(1)) if n[1] else None)


class Div(Op):
    name = "div"
    fresh = True

    @staticmethod
    def forward(ctx, a, b):
        return a / b

    @staticmethod
    def backward(ctx, g):
        n = ctx.needs_input_grad
        b = ctx.x(1)
        return (unbroadcast(g / b, ctx.shape(0)) if n[0] else None,
                unbroadcast(-g * ctx.x(0) / (b * b), ctx.shape(1)) if n[1] else None)


class Neg(Op):
    name = "neg"
    fresh = True

    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, g):
        return (-g,)


class Pow(Op):
    name = "pow"
    fresh = True

    @staticmethod
    def forward(ctx, a, p):
        return a ** p

    @staticmethod
    def backward(ctx, g):
        p = ctx.inputs[1]
        if p == 0:
            return (g * 0, None)
        return (g * (ctx.x(0) ** (p - 1) * p), None)


class PowTensor(Op):
    """``a ** b`` with an array or Tensor exponent, elementwise with broadcasting; a
    negative base with an integral exponent has its real value, as in numpy and PyTorch.
    d/da = b a^(b-1); d/db = a^b log a, taken as 0 where a == 0 (PyTorch's convention: the
    limit along b >= 0), NaN for a negative base."""
    name = "pow"
    fresh = True

    @staticmethod
    def forward(ctx, a, b):
        y = np.power(a, b)
        ctx.out = y
        return y

    @staticmethod
    def backward(ctx, g):
        n = ctx.needs_input_grad
        a, b = ctx.x(0), ctx.x(1)
        ga = gb = None
        if n[0]:
            ga = unbroadcast(g * b * a ** (b - 1), ctx.shape(0))
        if n[1]:
            ad = _data(a)
            safe = a + (ad == 0).astype(ad.dtype)   # log 1 = 0 where the base is 0
            with np.errstate(invalid="ignore"):     # (a negative base: NaN, as in PyTorch)
                log_a = safe.log() if isinstance(safe, Tensor) else np.log(safe)
            gb = unbroadcast(g * ctx.y() * log_a, ctx.shape(1))
        return ga, gb


class Exp(Op):
    name = "exp"
    fresh = True

    @staticmethod
    def forward(ctx, a):
        y = np.exp(a)
        ctx.out = y                     # e^a is its own derivative: save the output
        return y

    @staticmethod
    def backward(ctx, g):
        return (g * ctx.y(),)


class Log(Op):
    name = "log"
    fresh = True

    @staticmethod
    def forward(ctx, a):
        return np.log(a)

    @staticmethod
    def backward(ctx, g):
        return (g / ctx.x(0),)


class Sqrt(Op):
    name = "sqrt"
    fresh = True

    @staticmethod
    def forward(ctx, a):
        y = np.sqrt(a)
        ctx.out = y
        return y

    @staticmethod
    def backward(ctx, g):
        return (g / (ctx.y() * 2),)


class Abs(Op):
    name = "abs"
    fresh = True

    @staticmethod
    def forward(ctx, a):
        return np.abs(a)

    @staticmethod
    def backward(ctx, g):
        a = _data(ctx.x(0))
        return (g * np.sign(a).astype(a.dtype),)


_erf_vec = np.vectorize(math.erf, otypes=[np.float64])


class Erf(Op):
    name = "erf"
    fresh = True

    @staticmethod
    def forward(ctx, a):
        return _erf_vec(a).astype(a.dtype)

    @staticmethod
    def backward(ctx, g):
        a = ctx.x(0)
        return (g * (_exp(a * a * -1.0) * _TWO_OVER_SQRT_PI),)


class Where(Op):
    name = "where"
    fresh = True

    @staticmethod
    def forward(ctx, a, b, cond):
        return np.where(cond, a, b)

    @staticmethod
    def backward(ctx, g):
        n = ctx.needs_input_grad
        cond = ctx.inputs[2]
        dt = _dtype(g)
        return (unbroadcast(g * cond.astype(dt), ctx.shape(0)) if n[0] else None,
                unbroadcast(g * (~cond).astype(dt), ctx.shape(1)) if n[1] else None, None)


# =================================================================== reductions
class Sum(Op):
    name = "sum"

    @staticmethod
    def forward(ctx, a, axis, keepdims):
        if ctx.rec:
            ctx.kshape = _kshape(a.shape, _norm_axes(axis, a.ndim))
        return np.sum(a, axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, g):
        return (_expand(g, ctx.kshape, ctx.shape(0)), None, None)


class Mean(Op):
    name = "mean"

    @staticmethod
    def forward(ctx, a, axis, keepdims):
        axes = _norm_axes(axis, a.ndim)
        if ctx.rec:
            ctx.kshape = _kshape(a.shape, axes)
        if a.ndim and math.prod(a.shape[i] for i in axes) == 0:
            # mean over nothing is NaN (as in PyTorch), without numpy's empty-slice warnings
            return np.full_like(np.asarray(np.sum(a, axis=axis, keepdims=keepdims)), np.nan)
        return np.mean(a, axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, g):
        shape = ctx.shape(0)
        if math.prod(shape) == 0:         # an empty input has an empty gradient (no 0/0)
            return (_expand(g * 0.0, ctx.kshape, shape), None, None)
        count = math.prod(shape) // builtins.max(1, math.prod(ctx.kshape))
        return (_expand(g / count, ctx.kshape, shape), None, None)


class Max(Op):
    """Max over one axis (or all): the gradient goes to the first arg-max only."""
    name = "max"
    fresh = True

    @staticmethod
    def forward(ctx, a, axis, keepdims):
        if a.size == 0:
            raise ValueError("max() of an empty tensor")
        if axis is None:
            idx = np.argmax(a)                    # first occurrence; a NaN counts as the max
            y = a.reshape(-1)[idx]
            if ctx.rec:
                mask = np.zeros(a.size, a.dtype)
                mask[idx] = 1
                ctx.mask = mask.reshape(a.shape)
                ctx.kshape = (1,) * a.ndim
            y = np.asarray(y).reshape((1,) * a.ndim) if keepdims else np.asarray(y)
            return y
        axis = _check_axis(axis, a.ndim)
        idx = np.expand_dims(np.argmax(a, axis=axis), axis)
        y = np.take_along_axis(a, idx, axis)
        if ctx.rec:
            mask = np.zeros(a.shape, a.dtype)
            np.put_along_axis(mask, idx, 1, axis)
            ctx.mask = mask
            ctx.kshape = y.shape
        return y if keepdims else np.squeeze(y, axis)

    @staticmethod
    def backward(ctx, g):
        return (g.reshape(ctx.kshape) * ctx.mask, None, None)


# ============================================================ shape and layout
class Reshape(Op):
    name = "reshape"

    @staticmethod
    def forward(ctx, a, shape):
        return a.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return (g.reshape(ctx.shape(0)), None)


class Transpose(Op):
    name = "transpose"

    @staticmethod
    def forward(ctx, a, axes):
        return np.transpose(a, axes)

    @staticmethod
    def backward(ctx, g):
        axes = ctx.inputs[1]
        if axes is None:
            return (g.transpose(), None)
        return (g.transpose(tuple(np.argsort(axes))), None)


class BroadcastTo(Op):
    name = "broadcast_to"

    @staticmethod
    def forward(ctx, a, shape):
        return np.broadcast_to(a, shape)

    @staticmethod
    def backward(ctx, g):
        return (unbroadcast(g, ctx.shape(0)), None)


class Cast(Op):
    name = "cast"
    fresh = True

    @staticmethod
    def forward(ctx, a, dtype):
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        return (g.astype(_dtype(ctx.inputs[0])), None)


class Clone(Op):
    name = "clone"

    @staticmethod
    def forward(ctx, a):
        return a.copy()

    @staticmethod
    def backward(ctx, g):
        return (g,)


def _is_basic_index(index):
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, slice, type(None), type(Ellipsis))) and not isinstance(i, bool)
               for i in items)


class Getitem(Op):
    name = "getitem"
    fresh = True

    @staticmethod
    def forward(ctx, a, index):
        return a[index]

    @staticmethod
    def backward(ctx, g):
        index = ctx.inputs[1]
        if isinstance(g, Tensor):
            return (apply(ScatterAdd, g, index, ctx.shape(0)), None)
        return (ScatterAdd.forward(None, g, index, ctx.shape(0)), None)


class ScatterAdd(Op):
    """zeros(shape) with g added at ``index`` — getitem's backward (and getitem is its own)."""
    name = "scatter_add"
    fresh = True

    @staticmethod
    def forward(ctx, g, index, shape):
        z = np.zeros(shape, g.dtype)
        if _is_basic_index(index):
            z[index] = g
        else:
            np.add.at(z, index, g)
        return z

    @staticmethod
    def backward(ctx, g):
        return (g[ctx.inputs[1]], None, None)


class Stack(Op):
    name = "stack"

    @staticmethod
    def forward(ctx, *arrays, axis):
        if ctx.rec:
            ctx.axis = axis % (arrays[0].ndim + 1)
        return np.stack(arrays, axis)

    @staticmethod
    def backward(ctx, g):
        pre = (slice(None),) * ctx.axis
        return tuple(g[pre + (i,)] for i in range(len(ctx.inputs)))


class Cat(Op):
    name = "cat"

    @staticmethod
    def forward(ctx, *arrays, axis):
        if ctx.rec:
            ctx.axis = axis % arrays[0].ndim
            ctx.bounds = np.cumsum([0] + [a.shape[ctx.axis] for a in arrays]).tolist()
        return np.concatenate(arrays, axis)

    @staticmethod
    def backward(ctx, g):
        pre = (slice(None),) * ctx.axis
        b = ctx.bounds
        return tuple(g[pre + (slice(b[i], b[i + 1]),)] for i in range(len(ctx.inputs)))


# ======================================================= linear algebra (GEMM)
class Matmul(Op):
    """2-D a @ b on the GEMM kernel."""
    name = "matmul"
    fresh = True

    @staticmethod
    def forward(ctx, a, b):
        return K.gemm(a, b)

    @staticmethod
    def backward(ctx, g):
        n = ctx.needs_input_grad
        a, b = ctx.x(0), ctx.x(1)
        if isinstance(g, Tensor):
            return (g @ b.T if n[0] else None, a.T @ g if n[1] else None)
        return (K.gemm(g, b, trans_b=True) if n[0] else None,
                K.gemm(a, g, trans_a=True) if n[1] else None)


class BatchMatmul(Op):
    """Batched (ndim > 2) matmul with numpy broadcasting over the batch axes (numpy's matmul)."""
    name = "batch_matmul"
    fresh = True

    @staticmethod
    def forward(ctx, a, b):
        return np.matmul(a, b)

    @staticmethod
    def backward(ctx, g):
        n = ctx.needs_input_grad
        a, b = ctx.x(0), ctx.x(1)
        return (unbroadcast(g @ _mT(b), ctx.shape(0)) if n[0] else None,
                unbroadcast(_mT(a) @ g, ctx.shape(1)) if n[1] else None)


# ================================================ activations (C++ kernel table)
_ACTS = K.ACTIVATIONS     # the C++ table's names (csrc/activations/activations.h)
_ACT_PARAMS = {}


def act_params(act, alpha=0.01, beta=1.0, threshold=20.0):
    """(name, alpha, beta, threshold, derivative_uses_output) — cached, validated once."""
    key = (act, alpha, beta, threshold)
    p = _ACT_PARAMS.get(key)
    if p is None:
        if act not in _ACTS:
            raise ValueError(f"unknown activation {act!r}; expected one of {_ACTS}")
        uses_out = bool(K.derivative_uses_output(act, alpha=alpha))
        p = _ACT_PARAMS[key] = (act, float(alpha), float(beta), float(threshold), uses_out)
    return p


def act_grad_graph(p, g, z):
    """g · f'(z) written with recorded Tensor ops (the create_graph twin of _core.act_backward)."""
    act, alpha, beta, threshold, _ = p
    zd = _data(z)
    dt = zd.dtype
    if act == "identity":
        return g
    if act == "relu" or act == "leaky_relu":
        # piecewise-constant derivative: a node that still depends on z (with a zero
        # derivative), so the result stays differentiable w.r.t. z as in PyTorch
        return apply(StepGrad, g, z, 0.0 if act == "relu" else alpha)
    if act == "elu":
        neg = (zd <= 0).astype(dt)
        return g * (_exp(z * neg) * (neg * alpha) + (1 - neg))
    if act == "sigmoid":
        y = sigmoid(z)
        return g * (y * (1 - y))
    if act == "tanh":
        y = tanh(z)
        return g * (1 - y * y)
    if act == "gelu":
        return g * ((erf(z * (1 / _SQRT2)) + 1) * 0.5 + z * _exp(z * z * -0.5) * _INV_SQRT_2PI)
    if act == "gelu_tanh":
        t = tanh((z + z * z * z * 0.044715) * _SQRT_2_PI)
        return g * ((t + 1) * 0.5 + z * (1 - t * t) * (1 + z * z * (3 * 0.044715)) * (0.5 * _SQRT_2_PI))
    if act == "softplus":
        over = (zd * beta > threshold).astype(dt)
        return g * (sigmoid(z * beta) * (1 - over) + over)
    raise ValueError(act)


class StepGrad(Op):
    """g · (z > 0 ? 1 : slope): the recorded backward of relu / leaky_relu (zero derivative in z)."""
    name = "step_grad"
    fresh = True

    @staticmethod
    def forward(ctx, g, z, slope):
        return g * np.where(z > 0, 1.0, slope).astype(z.dtype)

    @staticmethod
    def backward(ctx, gg):
        zd = _data(ctx.x(1))
        return (gg * np.where(zd > 0, 1.0, ctx.inputs[2]).astype(zd.dtype),
                np.zeros(zd.shape, zd.dtype) if ctx.needs_input_grad[1] else None, None)


class Act(Op):
    """y = f(z) for one of the kernel activations; saves y or z as the kernel table says."""
    name = "act"
    fresh = True

    @staticmethod
    def forward(ctx, z, p):
        y = K.act_forward(p[0], z, alpha=p[1], beta=p[2], threshold=p[3])
        if p[4]:
            ctx.out = y
        return y

    @staticmethod
    def backward(ctx, g):
        p = ctx.inputs[1]
        if isinstance(g, Tensor):
            return (act_grad_graph(p, g, ctx.x(0)), None)
        saved = ctx.out if p[4] else ctx.x(0)
        return (K.act_backward(p[0], g, saved, alpha=p[1], beta=p[2], threshold=p[3]), None)


class Dense(Op):
    """y = f(x W + b): one fused kernel call forward, one backward (dx, dW, db together)."""
    name = "dense"
    fresh = True

    @staticmethod
    def forward(ctx, x, w, b, p):
        keep_z = ctx.rec and not p[4]
        y, z = K.dense_forward(x, w, b, p[0], alpha=p[1], beta=p[2], threshold=p[3],
                               save_preact=keep_z)
        if ctx.rec:
            ctx.out = None if p[0] == "identity" else (y if p[4] else z)
        return y

    @staticmethod
    def backward(ctx, g):
        p = ctx.inputs[3]
        n = ctx.needs_input_grad
        x, w, b = ctx.x(0), ctx.x(1), ctx.x(2)
        if isinstance(g, Tensor):
            z = x @ w if b is None else x @ w + b
            gz = act_grad_graph(p, g, z)
            return (gz @ w.T if n[0] else None, x.T @ gz if n[1] else None,
                    gz.sum(0) if n[2] else None, None)
        dx, dw, db = K.dense_backward(g, ctx.out, x, w, p[0], alpha=p[1], beta=p[2], threshold=p[3],
                                      need_dx=n[0], need_dw=n[1], need_db=n[2])
        return dx, dw, db, None


class Maxout(Op):
    """y = max_k (x W[k] + b[k]); W (pieces, in, out), b (pieces, out)."""
    name = "maxout"
    fresh = True

    @staticmethod
    def forward(ctx, x, w, b):
        pieces = w.shape[0]
        z = np.empty((pieces, x.shape[0], w.shape[2]), x.dtype)
        for k in range(pieces):
            K.gemm(x, w[k], out=z[k])
        if b is not None:
            z += b[:, None, :]
        y, arg = K.maxout_forward(z)
        if ctx.rec:
            ctx.arg = arg
        return y

    @staticmethod
    def backward(ctx, g):
        n = ctx.needs_input_grad
        x, w = ctx.x(0), ctx.x(1)
        arg = ctx.arg
        pieces = w.shape[0]
        if isinstance(g, Tensor):
            dt = g.dtype
            gz = [g * (arg == k).astype(dt) for k in range(pieces)]
            dx = None
            if n[0]:
                for k in range(pieces):
                    term = gz[k] @ w[k].T
                    dx = term if dx is None else dx + term
            dw = stack([x.T @ gz[k] for k in range(pieces)]) if n[1] else None
            db = stack([gz[k].sum(0) for k in range(pieces)]) if n[2] else None
            return dx, dw, db
        gz = K.maxout_backward(g, arg, pieces)
        dx = dw = db = None
        if n[0]:
            dx = K.gemm(gz[0], w[0], trans_b=True)
            for k in range(1, pieces):
                K.gemm(gz[k], w[k], out=dx, trans_b=True, beta=1.0)
        if n[1]:
            dw = np.empty(w.shape, w.dtype)
            for k in range(pieces):
                K.gemm(x, gz[k], out=dw[k], trans_a=True)
        if n[2]:
            db = np.empty((pieces, w.shape[2]), w.dtype)
            for k in range(pieces):
                K.sum_rows(gz[k], out=db[k])
        return dx, dw, db


# ========================================================= softmax and losses
class Softmax(Op):
    name = "softmax"
    fresh = True

    @staticmethod
    def forward(ctx, x):
        y = K.softmax_forward(x)
        ctx.out = y
        return y

    @staticmethod
    def backward(ctx, g):
        if isinstance(g, Tensor):
            y = ctx.y()
            return (y * (g - (g * y).sum(-1, keepdims=True)),)
        return (K.softmax_backward(g, ctx.out),)


class LogSoftmax(Op):
    name = "log_softmax"
    fresh = True

    @staticmethod
    def forward(ctx, x):
        y = K.log_softmax_forward(x)
        ctx.out = y
        return y

    @staticmethod
    def backward(ctx, g):
        if isinstance(g, Tensor):
            return (g - ctx.y().exp() * g.sum(-1, keepdims=True),)
        return (K.log_softmax_backward(g, ctx.out),)


def _reduction_scale(reduction, n):
    if reduction == "mean":
        return 1.0 / n if n else float("nan")
    if reduction in ("sum", "none"):
        return 1.0
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


class CrossEntropy(Op):
    """Fused stable softmax + negative log-likelihood on logits (N, C), targets class indices."""
    name = "cross_entropy"
    fresh = True

    @staticmethod
    def forward(ctx, logits, targets, reduction):
        n = logits.shape[0]
        scale = _reduction_scale(reduction, n)
        need = ctx.rec and reduction != "none"
        total, rows, d = K.softmax_cross_entropy(logits, targets, need_grad=need, grad_scale=scale)
        if ctx.rec:
            ctx.d = d                     # the whole gradient, already scaled
        if reduction == "none":
            return rows
        return np.asarray(total * scale, logits.dtype)

    @staticmethod
    def backward(ctx, g):
        targets, reduction = ctx.inputs[1], ctx.inputs[2]
        logits = ctx.x(0)
        if isinstance(g, Tensor):
            n, c = logits.shape
            onehot = np.zeros((n, c), logits.dtype)
            onehot[np.arange(n), targets] = 1
            diff = softmax(logits) - onehot
            if reduction == "none":
                return (diff * g.reshape(n, 1), None, None)
            return (diff * (g * _reduction_scale(reduction, n)), None, None)
        if reduction == "none":
            return (K.softmax_cross_entropy_backward(logits, targets, g), None, None)
        return (ctx.d * g, None, None)


class MSE(Op):
    name = "mse"
    fresh = True

    @staticmethod
    def forward(ctx, a, b, reduction):
        scale = _reduction_scale(reduction, a.size)
        total, elem, d = K.squared_error(a, b, need_elem=reduction == "none", need_grad=ctx.rec,
                                         grad_scale=scale)
        if ctx.rec:
            ctx.d = d                     # 2 (a - b) · scale
        if reduction == "none":
            return elem
        return np.asarray(total * scale, a.dtype)

    @staticmethod
    def backward(ctx, g):
        n = ctx.needs_input_grad
        if isinstance(g, Tensor):
            scale = _reduction_scale(ctx.inputs[2], math.prod(ctx.shape(0)))
            ga = (ctx.x(0) - ctx.x(1)) * (g * (2 * scale))
        else:
            ga = ctx.d * g
        return (ga if n[0] else None, -ga if n[1] else None, None)


class BCEWithLogits(Op):
    name = "bce_with_logits"
    fresh = True

    @staticmethod
    def forward(ctx, z, y, reduction):
        scale = _reduction_scale(reduction, z.size)
        total, elem, d = K.bce_with_logits(z, y, need_elem=reduction == "none", need_grad=ctx.rec,
                                           grad_scale=scale)
        if ctx.rec:
            ctx.d = d                     # (sigmoid(z) - y) · scale
        if reduction == "none":
            return elem
        return np.asarray(total * scale, z.dtype)

    @staticmethod
    def backward(ctx, g):
        n = ctx.needs_input_grad
        scale = _reduction_scale(ctx.inputs[2], math.prod(ctx.shape(0)))
        z = ctx.x(0)
        if isinstance(g, Tensor):
            gs = g * scale
            gz = (sigmoid(z) - ctx.x(1)) * gs if n[0] else None
        else:
            gs = g * scale
            gz = ctx.d * g if n[0] else None
        return (gz, -z * gs if n[1] else None, None)


# ============================================================ public functions
def add(a, b):
    return apply(Add, _arg(a), _arg(b))


def sub(a, b):
    return apply(Sub, _arg(a), _arg(b))


def mul(a, b):
    return apply(Mul, _arg(a), _arg(b))


def div(a, b):
    return apply(Div, _arg(a), _arg(b))


def neg(a):
    return apply(Neg, _arg(a))


def pow(a, exponent):
    """``a ** exponent``: a number, or an array or Tensor of exponents (elementwise)."""
    if isinstance(exponent, (Tensor, np.ndarray)):
        return apply(PowTensor, _arg(a), _arg(exponent))
    if isinstance(exponent, np.generic):
        exponent = float(exponent)
    if not isinstance(exponent, (int, float)):
        raise TypeError(f"unsupported exponent type {type(exponent).__name__}")
    return apply(Pow, _arg(a), exponent)


def rpow(base, a):
    """``base ** a`` for a number, array or Tensor ``base``."""
    if isinstance(base, (Tensor, np.ndarray)) or base <= 0:
        return apply(PowTensor, _arg(base), _arg(a))
    return exp(_arg(a) * math.log(base))


def exp(a):
    return apply(Exp, _arg(a))


def log(a):
    return apply(Log, _arg(a))


def sqrt(a):
    return apply(Sqrt, _arg(a))


def abs(a):
    return apply(Abs, _arg(a))


def erf(a):
    return apply(Erf, _arg(a))


def where(cond, a, b):
    """``cond ? a : b`` elementwise (``cond`` a constant boolean array)."""
    cond = np.asarray(_data(cond)).astype(bool)
    a, b = _arg(a), _arg(b)
    return apply(Where, a, b, cond)


def sum(a, axis=None, keepdims=False):
    if isinstance(axis, list):
        axis = tuple(axis)
    return apply(Sum, _arg(a), axis, keepdims)


def mean(a, axis=None, keepdims=False):
    if isinstance(axis, list):
        axis = tuple(axis)
    return apply(Mean, _arg(a), axis, keepdims)


def max(a, axis=None, keepdims=False):
    """Maximum; the gradient goes to the first arg-max on ties, and NaN propagates."""
    a = _arg(a)
    if isinstance(axis, (tuple, list)):
        shape = _data(a).shape
        nd = len(shape)
        axes = _norm_axes(tuple(axis), nd)
        rest = [i for i in range(nd) if i not in axes]
        t = transpose(a, *(rest + list(axes))).reshape(tuple(shape[i] for i in rest) + (-1,))
        t = apply(Max, t, -1, False)
        return t.reshape(_kshape(shape, axes)) if keepdims else t
    return apply(Max, a, axis, keepdims)


def min(a, axis=None, keepdims=False):
    return neg(max(neg(a), axis, keepdims))


def reshape(a, *shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return apply(Reshape, _arg(a), shape)


def transpose(a, *axes):
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    return apply(Transpose, _arg(a), tuple(axes) if axes else None)


def broadcast_to(a, shape):
    return apply(BroadcastTo, _arg(a), tuple(shape))


def cast(a, dtype):
    a = _arg(a)
    if _dtype(a) == dtype:
        return a if isinstance(a, Tensor) else _make(a)
    return apply(Cast, a, dtype)


def clone(a):
    return apply(Clone, _arg(a))


def getitem(a, index):
    if isinstance(index, Tensor):
        index = index.data.astype(np.int64)
    elif isinstance(index, tuple):
        index = tuple(i.data.astype(np.int64) if isinstance(i, Tensor) else i for i in index)
    elif isinstance(index, list):
        index = np.asarray(index)
    return apply(Getitem, _arg(a), index)


def stack(tensors, axis=0):
    tensors = [_arg(t) for t in tensors]
    return apply(Stack, *_promote(*tensors), axis=axis)


def cat(tensors, axis=0):
    tensors = [_arg(t) for t in tensors]
    return apply(Cat, *_promote(*tensors), axis=axis)


concatenate = cat


def _promote(*xs):
    """Cast the float32 operands to float64 when the dtypes of a kernel call differ (numpy's rule)."""
    dts = {_dtype(x) for x in xs if x is not None and not isinstance(x, (int, float))}
    if len(dts) <= 1:
        return xs
    return tuple(x if x is None or isinstance(x, (int, float)) else cast(x, float64) for x in xs)


def matmul(a, b):
    """``a @ b``: 2-D on the GEMM kernel; 1-D operands as in numpy; ndim > 2 batched (numpy)."""
    a, b = _arg(a), _arg(b)
    if _dtype(a) != _dtype(b):
        a, b = _promote(a, b)
    na, nb = _data(a).ndim, _data(b).ndim
    if na == 2 and nb == 2:
        return apply(Matmul, a, b)
    if na == 0 or nb == 0:
        raise ValueError("matmul: both operands must have at least one dimension")
    if na <= 2 and nb <= 2:
        a2 = reshape(a, 1, -1) if na == 1 else a
        b2 = reshape(b, -1, 1) if nb == 1 else b
        out = apply(Matmul, a2, b2)
        if na == 1 and nb == 1:
            return reshape(out, ())
        if na == 1:
            return reshape(out, -1)
        return reshape(out, -1)
    # batched (one operand has ndim > 2): a 1-D operand becomes a (1, k) row / (k, 1) column
    # (numpy's rule), its added axis is removed from the result
    a2 = reshape(a, 1, -1) if na == 1 else a
    b2 = reshape(b, -1, 1) if nb == 1 else b
    out = apply(BatchMatmul, a2, b2)
    if na == 1:
        shp = out.shape
        return reshape(out, shp[:-2] + shp[-1:])
    if nb == 1:
        return reshape(out, out.shape[:-1])
    return out


def act(x, name, alpha=0.01, beta=1.0, threshold=20.0):
    return apply(Act, _arg(x), act_params(name, alpha, beta, threshold))


_P_RELU = _P_SIGMOID = _P_TANH = None


def relu(x):
    return apply(Act, _arg(x), _P_RELU)


def sigmoid(x):
    return apply(Act, _arg(x), _P_SIGMOID)


def tanh(x):
    return apply(Act, _arg(x), _P_TANH)


def dense(x, w, b=None, p=None):
    """f(x @ w + b) with the activation params tuple ``p`` (see act_params); x of any ndim >= 1."""
    if p is None:
        p = _P_IDENTITY
    x = _arg(x)
    w = _arg(w)
    if b is not None:
        b = _arg(b)
    xd = x.data if isinstance(x, Tensor) else x
    wd = w.data if isinstance(w, Tensor) else w
    if xd.dtype != wd.dtype or (b is not None and _dtype(b) != wd.dtype):
        x, w, b = _promote(x, w, b)
    nd = xd.ndim
    if nd == 2:
        return apply(Dense, x, w, b, p)
    if nd == 0:
        raise ValueError(f"dense/Linear needs an input with at least 1 dimension (..., in_features), "
                         f"got shape {xd.shape} (weight {wd.shape})")
    if nd == 1:
        return reshape(apply(Dense, reshape(x, 1, -1), w, b, p), -1)
    lead = xd.shape[:-1]
    y = apply(Dense, reshape(x, -1, xd.shape[-1]), w, b, p)
    return reshape(y, lead + (wd.shape[1],))


def maxout(x, w, b=None):
    x, w = _arg(x), _arg(w)
    if b is not None:
        b = _arg(b)
    x, w, b = _promote(x, w, b)
    wd, xd = _data(w), _data(x)
    if wd.ndim != 3 or xd.ndim < 1 or xd.shape[-1] != wd.shape[1]:
        raise ValueError(f"maxout: x {xd.shape} and weight {wd.shape} do not fit "
                         "(x (..., in), weight (pieces, in, out))")
    if xd.ndim == 2:
        return apply(Maxout, x, w, b)
    # Like Linear: any leading dimensions (none for a single example).
    lead = xd.shape[:-1]
    y = apply(Maxout, reshape(x, -1, xd.shape[-1]), w, b)
    return reshape(y, lead + (wd.shape[2],))


def _along_last(fn_op, x, dim):
    x = _arg(x)
    xd = _data(x)
    nd = xd.ndim
    if nd == 0:
        raise ValueError(f"{fn_op.name} needs a tensor with at least 1 dimension, got a 0-d tensor")
    dim = _check_axis(dim, nd, "dim")
    if nd == 2 and dim == 1:
        return apply(fn_op, x)
    if nd == 1:
        return reshape(apply(fn_op, reshape(x, 1, -1)), -1)
    perm = [i for i in range(nd) if i != dim] + [dim]
    xt = transpose(x, *perm)
    shp = xt.shape
    y = reshape(apply(fn_op, reshape(xt, -1, shp[-1])), shp)
    return transpose(y, *np.argsort(perm).tolist())


def softmax(x, dim=-1):
    return _along_last(Softmax, x, dim)


def log_softmax(x, dim=-1):
    return _along_last(LogSoftmax, x, dim)


def _targets(t, n):
    if isinstance(t, Tensor):
        t = t.data
        if t.dtype.kind == "f":
            if not np.all(t == np.round(t)):
                raise TypeError("class-index targets must be integers")
            big = ~(np.abs(t) < 2.0 ** 62)
            if big.any():
                raise ValueError(f"target {float(t[big].flat[0])!r} is not a class index")
            t = t.astype(np.int64)
    arr = np.asarray(t)
    if arr.size == 0 and arr.dtype.kind == "f":   # [] for an empty batch
        arr = arr.astype(np.int64)
    if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise ValueError(f"target {arr.max()} is not a class index")
    if arr.dtype.kind not in "iu":
        raise TypeError(f"targets must be integer class indices, got dtype {arr.dtype}")
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"targets must be 1-D of length {n} (one class index per row), "
                         f"got shape {arr.shape}")
    return arr if arr.dtype == np.int64 else arr.astype(np.int64)


def cross_entropy(logits, targets, reduction="mean"):
    logits = _arg(logits)
    ld = _data(logits)
    if ld.ndim == 1:
        out = cross_entropy(reshape(logits, 1, -1), np.reshape(np.asarray(_data(targets)), 1), reduction)
        return reshape(out, ()) if reduction == "none" else out
    if ld.ndim != 2:
        raise ValueError(f"cross_entropy expects logits of shape (N, C), got {ld.shape}")
    _reduction_scale(reduction, 1)
    return apply(CrossEntropy, logits, _targets(targets, ld.shape[0]), reduction)


def _same_shape(a, b):
    sa, sb = _data(a).shape, _data(b).shape
    if sa != sb:
        shape = np.broadcast_shapes(sa, sb)
        if sa != shape:
            a = broadcast_to(a, shape)
        if sb != shape:
            b = broadcast_to(b, shape)
    return a, b


def mse_loss(input, target, reduction="mean"):
    a, b = _promote(_arg(input), _arg(target))
    sa, sb = _data(a).shape, _data(b).shape
    if sa != sb:  # PyTorch's warning: (N, 1) against (N,) broadcasts to (N, N)
        warnings.warn(f"mse_loss: target of shape {sb} differs from the input's {sa}; they are "
                      f"broadcast to {np.broadcast_shapes(sa, sb)}, which is likely not what you "
                      "want", UserWarning, stacklevel=2)
    a, b = _same_shape(a, b)
    _reduction_scale(reduction, 1)
    return apply(MSE, a, b, reduction)


def binary_cross_entropy_with_logits(input, target, reduction="mean"):
    a, b = _promote(_arg(input), _arg(target))
    if _data(a).shape != _data(b).shape:  # as in PyTorch (MSE broadcasts, with a warning)
        raise ValueError(f"binary_cross_entropy_with_logits: target of shape {_data(b).shape} must have "
                         f"the input's shape {_data(a).shape}")
    _reduction_scale(reduction, 1)
    return apply(BCEWithLogits, a, b, reduction)


_P_IDENTITY = act_params("identity")
_P_RELU = act_params("relu")
_P_SIGMOID = act_params("sigmoid")
_P_TANH = act_params("tanh")
