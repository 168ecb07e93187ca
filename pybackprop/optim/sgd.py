"""Stochastic gradient descent, PyTorch's formulation (``torch/optim/sgd.py``).

For each parameter p with gradient g, on every step:

    g ← -g                           if maximize
    g ← g + weight_decay · p         (L2 penalty added to the gradient, not decoupled)
    if momentum ≠ 0:
        b ← g                        on the first step (no dampening applied then)
        b ← momentum · b + (1 - dampening) · g     afterwards
        g ← g + momentum · b         if nesterov, else g ← b
    p ← p - lr · g

Note the momentum convention: the learning rate multiplies the *buffer*
(p -= lr · b), as in PyTorch; Sutskever et al. and scikit-learn fold lr into the
velocity instead (v = μ v - lr g; p += v). Both agree for a constant lr but differ
when lr changes mid-training (e.g. under a scheduler).
One fused in-place kernel pass per parameter (``_core.sgd_update``).
"""
from .. import _core as K
from .optimizer import Optimizer, check_hyper

__all__ = ["SGD"]


class SGD(Optimizer):
    # After momentum, keywords only: the API contract lists (params, lr, momentum, nesterov,
    # weight_decay) and PyTorch (params, lr, momentum, dampening, weight_decay, nesterov), so
    # a fourth positional argument would mean nesterov to one reader and dampening to the other.
    def __init__(self, params, lr=1e-3, momentum=0.0, *, dampening=0.0, weight_decay=0.0,
                 nesterov=False, maximize=False):
        check_hyper("learning rate", lr)
        check_hyper("momentum", momentum)
        check_hyper("dampening", dampening)
        check_hyper("weight_decay", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))

    def _update_group(self, group):
        lr = group["lr"]
        momentum = group["momentum"]
        dampening = group["dampening"]
        wd = group["weight_decay"]
        nesterov = group["nesterov"]
        maximize = group["maximize"]
        state = self.state
        update = K.sgd_update
        for p in group["params"]:
            if p.grad is None:
                continue
            g = self._grad_array(p)
            buf = None
            first = False
            if momentum != 0:
                st = state.get(p)
                if st is None:
                    st = state[p] = {}
                buf = st.get("momentum_buffer")
                if buf is None:
                    buf = st["momentum_buffer"] = g.copy()
                    first = True
            update(p.data, g, buf, lr=lr, momentum=momentum, dampening=dampening,
                   weight_decay=wd, nesterov=nesterov, first_step=first, maximize=maximize)
            p._version += 1
