"""float64 references of the activation table in csrc/activations/activations.h:
f(z) and f'(z), shared by the activation and dense-layer kernel tests."""
import math

import numpy as np

_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def _sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def ref_forward(act, z, alpha=0.01, beta=1.0, threshold=20.0):
    """float64 reference of the table in csrc/activations/activations.h."""
    z = np.asarray(z, np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        if act == "identity":
            return z.copy()
        if act == "relu":
            return np.where(z > 0, z, 0.0)
        if act == "leaky_relu":
            return np.where(z > 0, z, alpha * z)
        if act == "elu":
            return np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0)))
        if act == "sigmoid":
            return _sigmoid(z)
        if act == "tanh":
            return np.tanh(z)
        if act == "gelu":
            return 0.5 * z * _erfc(-z / math.sqrt(2))
        if act == "gelu_tanh":
            return 0.5 * z * (1 + np.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z ** 3)))
        if act == "softplus":
            bz = beta * z
            soft = (np.maximum(bz, 0) + np.log1p(np.exp(-np.abs(bz)))) / beta
            return np.where(bz > threshold, z, soft)
    raise AssertionError(act)


def ref_grad(act, z, alpha=0.01, beta=1.0, threshold=20.0):
    """f'(z) in float64 from the input z."""
    z = np.asarray(z, np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        if act == "identity":
            return np.ones_like(z)
        if act == "relu":
            return (z > 0).astype(np.float64)
        if act == "leaky_relu":
            return np.where(z > 0, 1.0, alpha)
        if act == "elu":
            return np.where(z > 0, 1.0, alpha * np.exp(np.minimum(z, 0)))
        if act == "sigmoid":
            s = _sigmoid(z)
            return s * (1 - s)
        if act == "tanh":
            return 1 - np.tanh(z) ** 2
        if act == "gelu":
            return 0.5 * _erfc(-z / math.sqrt(2)) + z * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
        if act == "gelu_tanh":
            c = math.sqrt(2 / math.pi)
            t = np.tanh(c * (z + 0.044715 * z ** 3))
            return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * c * (1 + 3 * 0.044715 * z * z)
        if act == "softplus":
            return np.where(beta * z > threshold, 1.0, _sigmoid(beta * z))
    raise AssertionError(act)
