"""``nn.Sequential``: modules applied in order, with Linear + activation fused into one kernel call."""
from collections import OrderedDict

from .. import ops as _ops
from .activation import fusable
from .linear import Linear
from .module import Module

__all__ = ["Sequential"]


class Sequential(Module):
    """``Sequential(*modules)`` or ``Sequential(OrderedDict(name=module))``.

    Forward runs a plan built once (and rebuilt whenever the list of modules changes):
    a ``Linear`` directly followed by a kernel activation module (ReLU, Sigmoid, Tanh,
    LeakyReLU, ELU, GELU, Softplus, Identity) becomes ONE ``_core.dense_forward`` call
    computing act(x W + b), and one ``_core.dense_backward`` call in backward. Only exact
    ``Linear`` instances are fused (a subclass overriding ``forward`` runs as written).
    """

    def __init__(self, *modules):
        super().__init__()
        object.__setattr__(self, "_plan", None)
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def __setattr__(self, name, value):
        object.__setattr__(self, "_plan", None)
        super().__setattr__(name, value)

    def add_module(self, name, module):
        object.__setattr__(self, "_plan", None)
        super().add_module(name, module)

    def __delattr__(self, name):
        object.__setattr__(self, "_plan", None)
        super().__delattr__(name)

    def _build_plan(self):
        mods = [m for m in self._modules.values() if m is not None]
        plan = []
        i = 0
        while i < len(mods):
            m = mods[i]
            nxt = mods[i + 1] if i + 1 < len(mods) else None
            if type(m) is Linear and fusable(nxt):
                plan.append((m, nxt))
                i += 2
            elif type(m) is Linear:
                plan.append((m, None))
                i += 1
            else:
                plan.append((None, m))
                i += 1
        object.__setattr__(self, "_plan", plan)
        return plan

    def forward(self, x):
        plan = self._plan
        if plan is None:
            plan = self._build_plan()
        dense = _ops.dense
        for lin, act in plan:
            if lin is None:
                x = act(x)
            else:
                x = dense(x, lin.weight, lin.bias,
                          _ops._P_IDENTITY if act is None else act._params())
        return x

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        mods = list(self._modules.items())
        if isinstance(idx, slice):
            return Sequential(OrderedDict(mods[idx]))
        return mods[idx][1]

    def __setitem__(self, idx, module):
        name = list(self._modules)[idx]
        setattr(self, name, module)

    def __delitem__(self, idx):
        name = list(self._modules)[idx]
        delattr(self, name)

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self
