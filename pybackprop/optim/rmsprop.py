"""RMSprop, PyTorch's formulation (``torch/optim/rmsprop.py``).

For each parameter p with gradient g:

    g ← -g                                     if maximize
    g ← g + weight_decay · p
    s ← α s + (1 - α) g²                       (s starts at 0)
    centered:  ḡ ← α ḡ + (1 - α) g;  d ← √(s - ḡ²) + eps
    otherwise: d ← √s + eps
    momentum > 0:  b ← momentum · b + g / d;  p ← p - lr · b
    otherwise:     p ← p - lr · g / d

eps is added outside the square root (as PyTorch; Keras/TF put it inside). Defaults
lr=1e-2, α=0.99, eps=1e-8. One fused kernel pass per parameter (``_core.rmsprop_update``).
"""
import numpy as np

from .. import _core as K
from .optimizer import Optimizer, check_hyper

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False, *, maximize=False):
        check_hyper("learning rate", lr)
        check_hyper("epsilon", eps)
        check_hyper("momentum", momentum)
        check_hyper("weight_decay", weight_decay)
        # (PyTorch takes any alpha >= 0; above 1 the average of squares goes negative: NaN)
        check_hyper("alpha", alpha, 0.0, 1.0)
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    def _update_group(self, group):
        lr = group["lr"]
        alpha = group["alpha"]
        eps = group["eps"]
        wd = group["weight_decay"]
        momentum = group["momentum"]
        centered = group["centered"]
        maximize = group["maximize"]
        state = self.state
        for p in group["params"]:
            if p.grad is None:
                continue
            g = self._grad_array(p)
            st = state.get(p)
            if st is None:
                st = state[p] = {"step": 0, "square_avg": np.zeros_like(p.data)}
            if momentum > 0 and "momentum_buffer" not in st:
                st["momentum_buffer"] = np.zeros_like(p.data)
            if centered and "grad_avg" not in st:
                st["grad_avg"] = np.zeros_like(p.data)
            st["step"] += 1
            K.rmsprop_update(p.data, g, st["square_avg"], st.get("grad_avg") if centered else None,
                             st.get("momentum_buffer") if momentum > 0 else None, lr=lr,
                             alpha=alpha, eps=eps, weight_decay=wd, momentum=momentum,
                             centered=centered, maximize=maximize)
            p._version += 1
