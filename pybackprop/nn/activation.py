"""Activation modules. Each names its kernel activation (``_params()``) so that
``Sequential`` can fuse it into the preceding ``Linear``'s kernel call."""
from .. import ops as _ops
from ..ops import act_params
from ..tensor import Tensor, _make
from .module import Module

__all__ = ["ReLU", "Sigmoid", "Tanh", "LeakyReLU", "ELU", "GELU", "Softplus", "Identity",
           "Softmax", "LogSoftmax"]


class _Activation(Module):
    def _params(self):
        raise NotImplementedError

    def forward(self, x):
        return _ops.apply(_ops.Act, _ops._arg(x), self._params())


def fusable(m):
    """Whether ``m`` is one of these activations as the library defines it, so that its
    kernel activation can stand in for calling it (``Sequential``'s and ``pb.compile``'s
    fused dense layers). A subclass that overrides ``forward`` computes something else
    and is called as it is."""
    return isinstance(m, _Activation) and type(m).forward in (_Activation.forward, Identity.forward)


class ReLU(_Activation):
    def _params(self):
        return _ops._P_RELU


class Sigmoid(_Activation):
    def _params(self):
        return _ops._P_SIGMOID


class Tanh(_Activation):
    def _params(self):
        return _ops._P_TANH


class LeakyReLU(_Activation):
    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def _params(self):
        return act_params("leaky_relu", alpha=self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class ELU(_Activation):
    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = alpha

    def _params(self):
        return act_params("elu", alpha=self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}"


class GELU(_Activation):
    """GELU, exact (erf) by default; ``approximate="tanh"`` for the tanh form."""

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def _params(self):
        return act_params("gelu" if self.approximate == "none" else "gelu_tanh")

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Softplus(_Activation):
    """(1/β) log(1 + e^(βx)); x itself where βx > threshold."""

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def _params(self):
        return act_params("softplus", beta=self.beta, threshold=self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class Identity(_Activation):
    """Returns its input; accepts and ignores any constructor arguments (as PyTorch's)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def _params(self):
        return _ops._P_IDENTITY

    def forward(self, x):
        return x if isinstance(x, Tensor) else _make(_ops._arg(x))


class Softmax(Module):
    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return _ops.softmax(x, self.dim)


class LogSoftmax(Module):
    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return _ops.log_softmax(x, self.dim)
