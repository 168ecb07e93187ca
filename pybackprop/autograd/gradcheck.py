"""Gradient checking: analytical (backward) against central differences, in float64."""
import warnings

import numpy as np

from .engine import grad as _grad
from ..tensor import Tensor, float64

__all__ = ["gradcheck", "GradcheckError"]


class GradcheckError(RuntimeError):
    """Analytical and numerical gradients disagree; names the input, the index and both values."""

    def __init__(self, message, input_index=None, index=None, output_index=None,
                 numerical=None, analytical=None):
        super().__init__(message)
        self.input_index = input_index
        self.index = index
        self.output_index = output_index
        self.numerical = numerical
        self.analytical = analytical


def _outputs(fn, inputs):
    out = fn(*inputs)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    return [o if isinstance(o, Tensor) else Tensor(o, dtype=float64) for o in outs]


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True):
    """Check ``fn``'s gradients with respect to every input that requires grad.

    ``fn(*inputs)`` returns a Tensor (or a tuple of them). For every output element
    the analytical gradient row (one backward pass with a one-hot upstream
    gradient) is compared with the central difference (f(x+eps) - f(x-eps)) / (2 eps)
    for every element of every input, as |a - n| <= atol + rtol |n|.
    Returns True, or raises ``GradcheckError`` at the first mismatch naming the
    input, its index, the output index and both values (or returns False when
    ``raise_exception=False``). Inputs should be float64 (a warning otherwise).
    """
    if isinstance(inputs, Tensor) or isinstance(inputs, np.ndarray):
        inputs = (inputs,)
    # numpy arrays are checked too: as float64 tensors that require grad
    inputs = tuple(Tensor(x, dtype=x.dtype, requires_grad=True) if isinstance(x, np.ndarray) else x
                   for x in inputs)
    diff = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not diff:
        raise ValueError("gradcheck: no input requires grad")
    for i in diff:
        if inputs[i].dtype != float64:
            warnings.warn(f"gradcheck: input {i} is {inputs[i].dtype}; use float64 for reliable "
                          "finite differences", UserWarning, stacklevel=2)

    outs = _outputs(fn, inputs)
    # analytical Jacobian rows, one backward per output element
    analytical = []     # [output][input] -> array (out.size, in.size)
    for o in outs:
        per_in = [np.zeros((o.data.size, inputs[i].data.size)) for i in diff]
        if o.requires_grad:
            for j in range(o.data.size):
                go = np.zeros(o.data.size, o.dtype)
                go[j] = 1
                gs = _grad(o, [inputs[i] for i in diff], go.reshape(o.shape), retain_graph=True,
                           allow_unused=True)
                for k, gk in enumerate(gs):
                    if gk is not None:
                        per_in[k][j] = gk.data.reshape(-1)
        analytical.append(per_in)

    for k, i in enumerate(diff):
        x = inputs[i]
        flat = x.data.reshape(-1)   # a view: perturb in place
        if not np.shares_memory(flat, x.data):
            raise ValueError(f"gradcheck: input {i} is not contiguous")
        for e in range(flat.size):
            orig = flat[e]
            flat[e] = orig + eps
            plus = [o.data.astype(np.float64).reshape(-1).copy() for o in _outputs(fn, inputs)]
            flat[e] = orig - eps
            minus = [o.data.astype(np.float64).reshape(-1).copy() for o in _outputs(fn, inputs)]
            flat[e] = orig
            for oi in range(len(outs)):
                num = (plus[oi] - minus[oi]) / (2 * eps)
                ana = analytical[oi][k][:, e]
                bad = ~(np.abs(ana - num) <= atol + rtol * np.abs(num))
                if np.any(bad):
                    j = int(np.argmax(bad))
                    idx = np.unravel_index(e, x.shape) if x.ndim else ()
                    msg = (f"Jacobian mismatch for input {i} at index {tuple(int(v) for v in idx)} "
                           f"(output {oi}, element {j}): numerical {float(num[j])!r} vs analytical "
                           f"{float(ana[j])!r} (atol={atol}, rtol={rtol})")
                    if not raise_exception:
                        return False
                    raise GradcheckError(msg, i, tuple(int(v) for v in idx), (oi, j),
                                         float(num[j]), float(ana[j]))
    return True
