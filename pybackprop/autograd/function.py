"""User-defined differentiable operations: ``class MyFn(pb.autograd.Function)``.

    class Square(pb.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x
        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * x * g

    y = Square.apply(x)

``forward`` runs with recording off and receives the arguments as given
(Tensors stay Tensors); it returns one Tensor (or ndarray). ``backward`` gets
the upstream gradient as a Tensor and returns one gradient per ``forward``
argument (``None`` for non-differentiable ones). ``ctx`` is the graph node:
``ctx.save_for_backward(*tensors)``, ``ctx.saved_tensors`` (raises if a saved
tensor was modified in place since: its version counter moved, as in
PyTorch), ``ctx.needs_input_grad``, and any attribute you set.
Under ``create_graph=True`` backward runs with recording on, so a backward
written with Tensor operations is differentiable again.
Only single-output functions are supported.
"""
import numpy as np

from . import grad_mode as _gm
from .engine import record_node
from ..tensor import Tensor, _make, _to_array

__all__ = ["Function"]


class _FunctionOp:
    """Adapter presenting a Function subclass to the engine as an op."""
    fresh = False

    def __init__(self, cls):
        self.cls = cls
        self.name = cls.__name__

    def backward(self, node, g):
        graph = isinstance(g, Tensor)
        res = self.cls.backward(node, g if graph else _make(g))
        if not isinstance(res, tuple):
            res = (res,)
        inputs = node.inputs
        if len(res) != len(inputs):
            raise RuntimeError(f"function {self.name}.backward returned {len(res)} gradients, "
                               f"expected {len(inputs)} (one per forward argument)")
        out = []
        for i, (r, x) in enumerate(zip(res, inputs)):
            if r is None or not node.needs_input_grad[i]:
                out.append(None)
                continue
            if graph:
                r = r if isinstance(r, Tensor) else _make(_to_array(r, x.data.dtype))
                shape = r.shape
            else:
                r = r.data if isinstance(r, Tensor) else _to_array(r, x.data.dtype)
                shape = r.shape
            if shape != x.data.shape:
                raise RuntimeError(f"function {self.name}.backward returned an invalid gradient at "
                                   f"index {i}: got shape {shape} but expected shape {x.data.shape}")
            out.append(r)
        return tuple(out)


class Function:
    """Base class of user-defined ops; subclass with static ``forward`` and ``backward``."""

    @staticmethod
    def forward(ctx, *args):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args):
        op = cls.__dict__.get("_pb_op")
        if op is None:
            op = _FunctionOp(cls)
            cls._pb_op = op
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        record = _gm._enabled and any(needs)
        node = record_node(op, args, None, needs)
        prev = _gm._set(False)
        try:
            out = cls.forward(node, *args)
        finally:
            _gm._set(prev)
        if isinstance(out, tuple):
            raise TypeError(f"{cls.__name__}.forward returned a tuple: only single-output "
                            "Functions are supported")
        data = out.data if isinstance(out, Tensor) else _to_array(out)
        if type(data) is not np.ndarray:
            data = np.asarray(data)
        if not record:
            return _make(data)
        # versions of the inputs after forward (forward may have saved them)
        node.versions = tuple(a._version if isinstance(a, Tensor) else None for a in args)
        return _make(data, True, node)
