"""``nn.Linear`` and ``nn.Maxout``: affine maps with weights stored (in_features, out_features)."""
import math

import numpy as np

from .. import ops as _ops
from ..tensor import as_dtype, float32
from . import init
from .module import Module
from .parameter import Parameter

__all__ = ["Linear", "Maxout"]


def _size(value, name):
    """A layer size: a non-negative int (numpy integers too), never a float or bool."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return int(value)


class Linear(Module):
    """y = x @ weight + bias, weight of shape (in_features, out_features).

    Forward is one fused kernel call (``_core.dense_forward``); inside ``Sequential`` a
    following activation module is fused into the same call. Backward is one
    ``_core.dense_backward`` call giving dx, dW and db together.
    Initialisation as PyTorch's default: weight ~ kaiming_uniform(a=√5), i.e.
    U(-1/√in, 1/√in), and bias ~ U(-1/√in, 1/√in), from ``pb.manual_seed``'s generator.
    """

    def __init__(self, in_features, out_features, bias=True, dtype=None):
        super().__init__()
        self.in_features = _size(in_features, "in_features")
        self.out_features = _size(out_features, "out_features")
        dt = as_dtype(dtype) or float32
        self.weight = Parameter(np.empty((self.in_features, self.out_features), dt))
        self.bias = Parameter(np.empty(self.out_features, dt)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        return _ops.dense(x, self.weight, self.bias, _ops._P_IDENTITY)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Maxout(Module):
    """y = max_k (x @ weight[k] + bias[k]); weight (pieces, in, out), bias (pieces, out).

    Each piece is initialised like a ``Linear(in, out)``.
    """

    def __init__(self, in_features, out_features, pieces=2, dtype=None):
        super().__init__()
        if not isinstance(pieces, bool) and isinstance(pieces, (int, np.integer)) and pieces < 1:
            raise ValueError(f"pieces must be >= 1, got {pieces}")
        self.pieces = _size(pieces, "pieces")
        if self.pieces < 1:
            raise ValueError(f"pieces must be >= 1, got {pieces}")
        self.in_features = _size(in_features, "in_features")
        self.out_features = _size(out_features, "out_features")
        dt = as_dtype(dtype) or float32
        self.weight = Parameter(np.empty((self.pieces, self.in_features, self.out_features), dt))
        self.bias = Parameter(np.empty((self.pieces, self.out_features), dt))
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0
        init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        return _ops.maxout(x, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"pieces={self.pieces}")
