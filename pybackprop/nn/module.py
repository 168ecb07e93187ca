"""``nn.Module``: the base class of layers — parameters, sub-modules, state dicts, train/eval."""
import weakref
from collections import OrderedDict, namedtuple

import numpy as np

from ..autograd import no_grad
from ..tensor import Tensor, _make, as_dtype
from .parameter import Parameter

__all__ = ["Module", "IncompatibleKeys"]

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])

# Modules that something derived from their structure watches (pb.compile's captured
# steps): module -> weak set of watchers, told through ``_module_edited()`` whenever an
# attribute of the module is set or deleted (a layer replaced, a bias removed, an
# activation's slope or a loss's reduction changed). Weak on both sides: watching keeps
# neither the module nor the watcher alive.
_WATCHERS = weakref.WeakKeyDictionary()


def watch(module, watcher):
    """Tell ``watcher._module_edited()`` about every later edit of ``module``."""
    _WATCHERS.setdefault(module, weakref.WeakSet()).add(watcher)


def _edited(module):
    if _WATCHERS:
        for w in tuple(_WATCHERS.get(module, ())):
            w._module_edited()


class Module:
    """Base class: assign Parameters and Modules as attributes and they are registered.

    Subclasses implement ``forward``; calling the module calls ``forward``.
    """

    training = True

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        params = self.__dict__.get("_parameters")
        if params is None:
            if isinstance(value, (Parameter, Module)):
                raise AttributeError("call super().__init__() before assigning parameters or modules")
            object.__setattr__(self, name, value)
            return
        modules = self._modules
        if isinstance(value, Parameter):
            modules.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            params.pop(name, None)
            modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as parameter {name!r} "
                                "(nn.Parameter or None expected)")
            params[name] = None
        elif name in modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module {name!r}")
            modules[name] = None
        object.__setattr__(self, name, value)
        _edited(self)

    def __delattr__(self, name):
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)
        _edited(self)

    def register_parameter(self, name, param):
        if param is not None and not isinstance(param, Parameter):
            raise TypeError("register_parameter expects an nn.Parameter or None")
        self._parameters[name] = param
        object.__setattr__(self, name, param)
        _edited(self)

    def add_module(self, name, module):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module")
        self._modules[name] = module
        object.__setattr__(self, name, module)
        _edited(self)

    # ------------------------------------------------------------------ call
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # -------------------------------------------------------------- traversal
    def named_modules(self, memo=None, prefix=""):
        if memo is None:
            memo = set()
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is None:
                continue
            yield from m.named_modules(memo, prefix + ("." if prefix else "") + name)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def named_parameters(self, prefix="", recurse=True):
        seen = set()
        mods = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mp, m in mods:
            for name, p in m._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (mp + "." if mp else "") + name, p

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    # ------------------------------------------------------------------ state
    def state_dict(self, prefix="", keep_vars=False):
        """Ordered ``{dotted name: Tensor}`` of every parameter (detached, sharing memory)."""
        out = OrderedDict()
        for mp, m in self.named_modules():
            for name, p in m._parameters.items():
                if p is not None:
                    key = prefix + (mp + "." if mp else "") + name
                    out[key] = p if keep_vars else _make(p.data)
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copy values into the parameters, in place. Returns (missing_keys, unexpected_keys).

        With ``strict=True`` any missing or unexpected key raises ``RuntimeError`` naming
        them all; a shape mismatch always raises, naming the key and both shapes.
        """
        if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
            raise TypeError(f"load_state_dict expects a dict of arrays, got {type(state_dict).__name__}")
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing))
            if unexpected:
                parts.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected))
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(parts))
        errors = []
        for k, p in own.items():
            if k not in state_dict:
                continue
            v = state_dict[k]
            arr = v.data if isinstance(v, Tensor) else np.asarray(v)
            if arr.dtype.kind not in "fiub":
                errors.append(f"{k}: a value of type {type(v).__name__} (dtype {arr.dtype}) is not an array "
                              "of real numbers")
            elif arr.shape != p.data.shape:
                errors.append(f"size mismatch for {k}: copying a param with shape {arr.shape} from "
                              f"checkpoint, the shape in current model is {p.data.shape}.")
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(errors))
        with no_grad():
            for k, p in own.items():
                if k in state_dict:
                    v = state_dict[k]
                    p.data[...] = v.data if isinstance(v, Tensor) else np.asarray(v)
                    p._version += 1
        return IncompatibleKeys(missing, unexpected)

    # -------------------------------------------------------------- utilities
    def train(self, mode=True):
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.data[...] = 0

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def apply(self, fn):
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def to(self, dtype):
        """Convert every parameter to ``dtype`` (pb.float32 / pb.float64), in place on the module."""
        dtype = as_dtype(dtype)
        for m in self.modules():
            for name, p in list(m._parameters.items()):
                if p is not None and p.data.dtype != dtype:
                    p.data = np.asarray(p.data.astype(dtype), order="C")
                    p.grad = None
                    p._version += 1
        if hasattr(self, "_plan"):
            object.__setattr__(self, "_plan", None)
        return self

    def double(self):
        return self.to(np.float64)

    def float(self):
        return self.to(np.float32)

    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = []
        extra = self.extra_repr()
        if extra:
            lines = extra.split("\n")
        for name, m in self._modules.items():
            mod = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {mod}")
        main = type(self).__name__ + "("
        if lines:
            if len(lines) == 1 and not self._modules:
                main += lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._modules))
