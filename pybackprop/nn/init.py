"""Weight initialisers, in place, drawing from ``pb.random``'s generator (``pb.manual_seed``).

Fans with our layout: a weight is stored ``(..., in_features, out_features)`` (the transpose
of PyTorch's ``(out, in)``), so ``fan_in = shape[-2]`` and ``fan_out = shape[-1]``. Leading
axes (Maxout's pieces) index independent maps and do not enter the fans. 1-D tensors
have no fans (ValueError), as in PyTorch. Each takes a Tensor or a float numpy array.
"""
import math

import numpy as np

from .. import random as _random

__all__ = ["calculate_gain", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
           "kaiming_normal_", "zeros_", "ones_", "constant_", "uniform_", "normal_"]


def _calculate_fan_in_and_fan_out(t):
    shape = t.shape
    if len(shape) < 2:
        raise ValueError("fan in and fan out can not be computed for a tensor with fewer than 2 "
                         f"dimensions (shape {shape})")
    return shape[-2], shape[-1]


def calculate_gain(nonlinearity, param=None):
    """PyTorch's recommended gains: linear/sigmoid 1, tanh 5/3, relu √2, leaky_relu √(2/(1+a²)), selu 3/4."""
    if nonlinearity in ("linear", "identity", "sigmoid", "conv1d", "conv2d", "conv3d"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"unsupported nonlinearity {nonlinearity!r}")


def _fill(t, values):
    """Write ``values`` into ``t``: a Tensor (its version counter moves, as for any in-place
    change) or a float numpy array, filled in place like one."""
    if isinstance(t, np.ndarray):
        if t.dtype.kind != "f":
            raise TypeError(f"an initialiser needs a floating-point array, got dtype {t.dtype}")
        t[...] = values
        return t
    t.data[...] = values
    t._version += 1
    return t


def _fan(t, mode):
    fan_in, fan_out = _calculate_fan_in_and_fan_out(t)
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")


def uniform_(t, a=0.0, b=1.0):
    return _fill(t, _random.get_generator().uniform(a, b, t.shape))


def normal_(t, mean=0.0, std=1.0):
    return _fill(t, _random.get_generator().normal(mean, std, t.shape))


def zeros_(t):
    return _fill(t, 0)


def ones_(t):
    return _fill(t, 1)


def constant_(t, val):
    return _fill(t, val)


def xavier_uniform_(t, gain=1.0):
    """U(-a, a) with a = gain · √(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(t)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -a, a)


def xavier_normal_(t, gain=1.0):
    """N(0, std²) with std = gain · √(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(t)
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def kaiming_uniform_(t, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    """U(-bound, bound) with bound = gain · √(3 / fan), gain = calculate_gain(nonlinearity, a)."""
    fan = _fan(t, mode)
    if fan == 0:
        return t
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(t, -bound, bound)


def kaiming_normal_(t, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    """N(0, std²) with std = gain / √fan."""
    fan = _fan(t, mode)
    if fan == 0:
        return t
    return normal_(t, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan))
