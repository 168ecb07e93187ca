"""Whole-function derivatives, as in ``torch.autograd.functional``: jacobian, vjp, jvp."""
import numpy as np

from .engine import grad as _grad
from .grad_mode import enable_grad
from ..tensor import Tensor, _make, _to_array

__all__ = ["jacobian", "vjp", "jvp", "hvp"]


def _prep(x):
    single = not isinstance(x, (tuple, list))
    xs = (x,) if single else tuple(x)
    return single, tuple(_make(_to_array(t).copy(), True) for t in xs)


def _as_tensor(v, like):
    return v if isinstance(v, Tensor) else _make(_to_array(v, like.dtype))


def jacobian(fn, x, create_graph=False):
    """d fn(x) / d x with shape ``out.shape + x.shape`` (tuples of inputs give a tuple)."""
    single, xs = _prep(x)
    with enable_grad():
        out = fn(*xs)
    if not isinstance(out, Tensor):
        raise TypeError("jacobian: fn must return one Tensor")
    jac = [np.zeros(out.shape + t.shape, out.dtype) for t in xs]
    for j in range(out.data.size):
        go = np.zeros(out.data.size, out.dtype)
        go[j] = 1
        if out.requires_grad:
            gs = _grad(out, xs, go.reshape(out.shape), retain_graph=True, allow_unused=True)
        else:
            gs = (None,) * len(xs)
        idx = np.unravel_index(j, out.shape) if out.ndim else ()
        for k, g in enumerate(gs):
            if g is not None:
                jac[k][idx] = g.data
    jac = tuple(_make(J) for J in jac)
    return jac[0] if single else jac


def vjp(fn, x, v=None):
    """(fn(x), vᵀ J): one backward pass."""
    single, xs = _prep(x)
    with enable_grad():
        out = fn(*xs)
    if v is None:
        if out.data.size != 1:
            raise RuntimeError("vjp: v is required for a non-scalar output")
        v = np.ones(out.shape, out.dtype)
    v = _as_tensor(v, out)
    if out.requires_grad:
        gs = _grad(out, xs, v, allow_unused=True)
    else:
        gs = (None,) * len(xs)
    gs = tuple(g if g is not None else _make(np.zeros(t.shape, t.dtype)) for g, t in zip(gs, xs))
    out = out.detach()
    return out, (gs[0] if single else gs)


def jvp(fn, x, v=None):
    """(fn(x), J v), by the double-vjp trick: J v = d/du (uᵀ J)ᵀ v (needs create_graph)."""
    single, xs = _prep(x)
    if v is None:
        if len(xs) != 1 or xs[0].data.size != 1:
            raise RuntimeError("jvp: v is required for a non-scalar input")
        v = np.ones(xs[0].shape, xs[0].dtype)
    vs = (v,) if single else tuple(v)
    vs = tuple(_as_tensor(t, x_) for t, x_ in zip(vs, xs))
    with enable_grad():
        out = fn(*xs)
        if not out.requires_grad:
            return out.detach(), _make(np.zeros(out.shape, out.dtype))
        u = _make(np.zeros(out.shape, out.dtype), True)
        gs = _grad(out, xs, u, create_graph=True, allow_unused=True)
        pairs = [(g, t) for g, t in zip(gs, vs) if g is not None and g.requires_grad]
        if not pairs:
            return out.detach(), _make(np.zeros(out.shape, out.dtype))
        total = None
        for g, t in pairs:
            term = (g * t).sum()
            total = term if total is None else total + term
        (jv,) = _grad(total, [u], allow_unused=True)
    if jv is None:
        jv = _make(np.zeros(out.shape, out.dtype))
    return out.detach(), jv


def hvp(fn, x, v):
    """(fn(x), H v) for a scalar fn: differentiate (∇f · v) once more."""
    single, xs = _prep(x)
    vs = (v,) if single else tuple(v)
    vs = tuple(_as_tensor(t, x_) for t, x_ in zip(vs, xs))
    with enable_grad():
        out = fn(*xs)
        gs = _grad(out, xs, create_graph=True)
        total = None
        for g, t in zip(gs, vs):
            term = (g * t).sum()
            total = term if total is None else total + term
        hv = _grad(total, xs, allow_unused=True)
    hv = tuple(h if h is not None else _make(np.zeros(t.shape, t.dtype)) for h, t in zip(hv, xs))
    return out.detach(), (hv[0] if single else hv)
