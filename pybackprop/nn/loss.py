"""Loss modules; each is one fused kernel call forward and backward.

All take ``reduction`` in {"mean", "sum", "none"} as PyTorch does.
"""
from .. import ops as _ops
from .module import Module

__all__ = ["CrossEntropyLoss", "MSELoss", "BCEWithLogitsLoss"]


class _Loss(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction

    def extra_repr(self):
        return f"reduction={self.reduction!r}" if self.reduction != "mean" else ""


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy on logits (N, C) with integer class-index targets (N,).

    Fused and stable (``_core.softmax_cross_entropy``: log-sum-exp with the row max
    subtracted); the forward pass also produces the gradient (softmax - onehot) · scale,
    which backward only multiplies by the upstream gradient. "mean" divides by N.
    """

    def forward(self, input, target):
        return _ops.cross_entropy(input, target, self.reduction)


class MSELoss(_Loss):
    """Mean (or sum) of (input - target)²; target broadcast to input's shape if needed."""

    def forward(self, input, target):
        return _ops.mse_loss(input, target, self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits z, stable: max(z, 0) - z y + log(1 + e^-|z|)."""

    def forward(self, input, target):
        return _ops.binary_cross_entropy_with_logits(input, target, self.reduction)
