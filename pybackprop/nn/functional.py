"""``pb.nn.functional`` (``F``): the layers and losses as functions.

Weights use our layout: ``F.linear(x, weight, bias)`` computes ``x @ weight + bias`` with
``weight`` of shape (in_features, out_features).
"""
import numpy as np

from .. import ops as _ops
from .. import random as _random
from ..ops import act_params, _arg, _data, softmax, log_softmax, cross_entropy, mse_loss, \
    binary_cross_entropy_with_logits
from ..tensor import Tensor, _make

__all__ = ["linear", "relu", "sigmoid", "tanh", "leaky_relu", "elu", "gelu", "softplus", "softmax",
           "log_softmax", "cross_entropy", "mse_loss", "binary_cross_entropy_with_logits",
           "dropout", "maxout", "identity"]


def linear(input, weight, bias=None, activation="identity", **act_kw):
    """``act(input @ weight + bias)`` as one fused kernel call (weight (in, out))."""
    return _ops.dense(input, weight, bias, act_params(activation, **act_kw))


def relu(input):
    return _ops.relu(input)


def sigmoid(input):
    return _ops.sigmoid(input)


def tanh(input):
    return _ops.tanh(input)


def identity(input):
    return input


def leaky_relu(input, negative_slope=0.01):
    return _ops.act(input, "leaky_relu", alpha=negative_slope)


def elu(input, alpha=1.0):
    return _ops.act(input, "elu", alpha=alpha)


def gelu(input, approximate="none"):
    """GELU: exact erf form ("none") or the tanh approximation ("tanh")."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
    return _ops.act(input, "gelu" if approximate == "none" else "gelu_tanh")


def softplus(input, beta=1.0, threshold=20.0):
    """(1/β) log(1 + e^(βx)), and x itself where βx > threshold (PyTorch's convention)."""
    return _ops.act(input, "softplus", beta=beta, threshold=threshold)


def maxout(input, weight, bias=None):
    """max over pieces k of ``input @ weight[k] + bias[k]``; weight (pieces, in, out)."""
    return _ops.maxout(input, weight, bias)


def dropout(input, p=0.5, training=True):
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p) (training only).

    The mask is drawn from ``pb.random``'s generator, so ``pb.manual_seed`` reproduces it.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, got {p}")
    x = _arg(input)
    if not training or p == 0.0:
        return x if isinstance(x, Tensor) else _make(x)
    xd = _data(x)
    if p == 1.0:
        mask = np.zeros_like(xd)
    else:
        keep = _random.get_generator().random(xd.shape) >= p
        mask = keep.astype(xd.dtype) * xd.dtype.type(1.0 / (1.0 - p))
    return _ops.mul(x, mask)
