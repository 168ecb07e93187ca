"""Adam and AdamW, PyTorch's formulation (``torch/optim/adam.py``, ``adamw.py``).

For each parameter p with gradient g, step t = 1, 2, ...:

    g ← -g                                    if maximize
    Adam:  g ← g + weight_decay · p           (L2 penalty through the gradient)
    AdamW: p ← p · (1 - lr · weight_decay)    (decoupled decay, applied before the update)
    m ← β1 m + (1 - β1) g
    v ← β2 v + (1 - β2) g²
    v̂ ← max(v̂, v) and use v̂ for v below     if amsgrad
    p ← p - (lr / (1 - β1^t)) · m / (√v / √(1 - β2^t) + eps)

i.e. eps is added *after* the bias correction of √v (PyTorch's order; the original
paper's ε̂ differs by a factor √(1 - β2^t)). The kernel multiplies √v by
1/√(1 - β2^t) where PyTorch divides by √(1 - β2^t): one more rounding, of a per-step
constant, for a division an element less (Adam's update is bound by its divider). m and v start at zero. One fused
in-place kernel pass per parameter (``_core.adam_update``).
Defaults: Adam weight_decay=0, AdamW weight_decay=1e-2.
"""
import numpy as np

from .. import _core as K
from .optimizer import Optimizer, check_hyper

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, *, maximize=False):
        check_hyper("learning rate", lr)
        check_hyper("epsilon", eps)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        check_hyper("beta1", betas[0], 0.0, 1.0, high_open=True)
        check_hyper("beta2", betas[1], 0.0, 1.0, high_open=True)
        check_hyper("weight_decay", weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize))

    def _update_group(self, group):
        lr = group["lr"]
        b1, b2 = group["betas"]
        eps = group["eps"]
        wd = group["weight_decay"]
        amsgrad = group["amsgrad"]
        maximize = group["maximize"]
        decoupled = self._decoupled
        state = self.state
        update = K.adam_update
        for p in group["params"]:
            if p.grad is None:
                continue
            g = self._grad_array(p)
            st = state.get(p)
            if st is None:
                st = state[p] = {"step": 0, "exp_avg": np.zeros_like(p.data),
                                 "exp_avg_sq": np.zeros_like(p.data)}
                if amsgrad:
                    st["max_exp_avg_sq"] = np.zeros_like(p.data)
            vmax = None
            if amsgrad:
                vmax = st.get("max_exp_avg_sq")
                if vmax is None:
                    vmax = st["max_exp_avg_sq"] = np.zeros_like(p.data)
            st["step"] += 1
            update(p.data, g, st["exp_avg"], st["exp_avg_sq"], vmax, lr=lr, beta1=b1, beta2=b2,
                   eps=eps, weight_decay=wd, decoupled=decoupled, step=st["step"],
                   maximize=maximize)
            p._version += 1


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): p ← p (1 - lr wd) first."""
    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize)
