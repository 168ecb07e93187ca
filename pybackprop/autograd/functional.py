"""Whole-function derivatives, as in ``torch.autograd.functional``: jacobian, vjp, jvp."""
import numpy as np

from .engine import grad as _grad
from .grad_mode import enable_grad
from .. import ops as _ops
from ..tensor import Tensor, _make, _to_array

__all__ = ["jacobian", "vjp", "jvp", "hvp"]


def _prep(x, create_graph=False):
    """The inputs as fresh leaves; with ``create_graph``, an input that already requires
    grad is used through an identity op instead, so results stay differentiable with
    respect to it (PyTorch's behaviour)."""
    single = not isinstance(x, (tuple, list))
    xs = (x,) if single else tuple(x)
    return single, tuple(t * 1 if create_graph and isinstance(t, Tensor) and t.requires_grad
                         else _make(_to_array(t).copy(), True) for t in xs)


def _as_tensor(v, like):
    return v if isinstance(v, Tensor) else _make(_to_array(v, like.dtype))


def _outputs(out, name):
    if isinstance(out, Tensor):
        return True, (out,)
    if isinstance(out, (tuple, list)) and out and all(isinstance(o, Tensor) for o in out):
        return False, tuple(out)
    raise TypeError(f"{name}: fn must return a Tensor or a tuple of Tensors, got {type(out).__name__}")


def _independent(name, i):
    raise RuntimeError(f"{name} (strict=True): the output is independent of input {i}")


def jacobian(fn, x, create_graph=False, strict=False):
    """d fn(x) / d x, of shape ``out.shape + x.shape``. A tuple of inputs gives a tuple over
    the inputs, a tuple of outputs a tuple over the outputs (of tuples, if both), as in
    ``torch.autograd.functional.jacobian``. ``create_graph``: the Jacobian is itself
    differentiable (with respect to inputs that require grad). ``strict``: an output
    independent of an input raises instead of giving zeros."""
    single_in, xs = _prep(x, create_graph)
    with enable_grad():
        single_out, outs = _outputs(fn(*xs), "jacobian")
        rows_all = []
        for out in outs:
            per_input = [[] for _ in xs]
            for j in range(out.data.size):
                go = np.zeros(out.data.size, out.dtype)
                go[j] = 1
                if out.requires_grad:
                    gs = _grad(out, xs, go.reshape(out.shape), retain_graph=True, create_graph=create_graph,
                               allow_unused=True)
                else:
                    gs = (None,) * len(xs)
                for k, (g, t) in enumerate(zip(gs, xs)):
                    if g is None:
                        if strict:
                            _independent("jacobian", k)
                        g = _make(np.zeros(t.shape, out.dtype))
                    per_input[k].append(g if create_graph else g.data)
            jac = []
            for rows, t in zip(per_input, xs):
                shape = out.shape + t.shape
                if not rows:                      # an empty output
                    jac.append(_make(np.zeros(shape, out.dtype)))
                elif create_graph:
                    jac.append(_ops.stack(rows).reshape(shape))
                else:
                    jac.append(_make(np.stack(rows).reshape(shape)))
            rows_all.append(jac[0] if single_in else tuple(jac))
    return rows_all[0] if single_out else tuple(rows_all)


def vjp(fn, x, v=None, create_graph=False, strict=False):
    """(fn(x), vᵀ J): one backward pass. ``create_graph`` keeps both differentiable;
    ``strict`` raises where the output does not depend on an input."""
    single, xs = _prep(x, create_graph)
    with enable_grad():
        out = fn(*xs)
        if not isinstance(out, Tensor):
            raise TypeError(f"vjp: fn must return one Tensor, got {type(out).__name__}")
        if v is None:
            if out.data.size != 1:
                raise RuntimeError("vjp: v is required for a non-scalar output")
            v = np.ones(out.shape, out.dtype)
        v = _as_tensor(v, out)
        if out.requires_grad:
            gs = _grad(out, xs, v, create_graph=create_graph, allow_unused=True)
        else:
            gs = (None,) * len(xs)
    if strict:
        for i, g in enumerate(gs):
            if g is None:
                _independent("vjp", i)
    gs = tuple(g if g is not None else _make(np.zeros(t.shape, t.dtype)) for g, t in zip(gs, xs))
    if not create_graph:
        out = out.detach()
        gs = tuple(g.detach() for g in gs)
    return out, (gs[0] if single else gs)


def jvp(fn, x, v=None, create_graph=False, strict=False):
    """(fn(x), J v), by the double-vjp trick: J v = d/du (uᵀ J)ᵀ v. ``create_graph`` keeps
    both differentiable; ``strict`` raises where the output does not depend on an input."""
    single, xs = _prep(x, create_graph)
    if v is None:
        if len(xs) != 1 or xs[0].data.size != 1:
            raise RuntimeError("jvp: v is required for a non-scalar input")
        v = np.ones(xs[0].shape, xs[0].dtype)
    vs = (v,) if single else tuple(v)
    vs = tuple(_as_tensor(t, x_) for t, x_ in zip(vs, xs))
    with enable_grad():
        out = fn(*xs)
        if not isinstance(out, Tensor):
            raise TypeError(f"jvp: fn must return one Tensor, got {type(out).__name__}")
        zero = _make(np.zeros(out.shape, out.dtype))
        if not out.requires_grad:
            if strict:
                _independent("jvp", 0)
            return out.detach(), zero
        u = _make(np.zeros(out.shape, out.dtype), True)
        gs = _grad(out, xs, u, create_graph=True, allow_unused=True)
        if strict:
            for i, g in enumerate(gs):
                if g is None:
                    _independent("jvp", i)
        pairs = [(g, t) for g, t in zip(gs, vs) if g is not None and g.requires_grad]
        if not pairs:
            return out.detach(), zero
        total = None
        for g, t in pairs:
            term = (g * t).sum()
            total = term if total is None else total + term
        (jv,) = _grad(total, [u], create_graph=create_graph, allow_unused=True)
    if jv is None:
        jv = zero
    if not create_graph:
        out, jv = out.detach(), jv.detach()
    return out, jv


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
