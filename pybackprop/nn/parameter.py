"""``nn.Parameter``: a leaf Tensor that a Module registers as trainable."""
import numpy as np

from ..tensor import Tensor, _to_array

__all__ = ["Parameter"]


class Parameter(Tensor):
    """A Tensor that requires grad by default and is found by ``Module.parameters()``.

    Shares memory with ``data`` when it already is a C-contiguous float array (or a Tensor
    over one); the optimiser kernels update ``.data`` in place.
    """
    __slots__ = ()

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            data = np.empty(0, np.float32)
        arr = _to_array(data)
        self.data = np.asarray(arr, order="C")  # (ascontiguousarray would make a 0-d array 1-d)
        self.grad = None
        self.grad_fn = None
        self._vc = [0]
        self.name = None
        self.requires_grad = bool(requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, proto):
        return (Parameter, (self.data, self.requires_grad))
