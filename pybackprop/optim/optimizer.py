"""``Optimizer``: parameter groups, per-parameter state, ``zero_grad``, state dicts.

Subclasses implement ``_update_group(group)``, which calls one fused C++ update kernel
per parameter, in place on the parameter's array (and bumps its version counter).
"""
import numpy as np

from ..autograd import enable_grad
from ..tensor import Tensor

__all__ = ["Optimizer"]


def check_hyper(name, value, low=0.0, high=None, high_open=False):
    """A hyper-parameter that must be a real number in [low, high] (or [low, high)): NaN and
    non-numbers are refused too (PyTorch's ``not 0.0 <= lr`` idiom), with the name."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    ok = low <= value and (high is None or (value < high if high_open else value <= high))
    if not ok:
        rng = f"[{low}, {'inf' if high is None else high}{')' if high_open or high is None else ']'}"
        raise ValueError(f"Invalid {name} value: {value} (must be in {rng})")


class Optimizer:
    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = {}
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError("params must be an iterable of Tensors or of dicts, not a Tensor")
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(params[0], dict):
            params = [{"params": params}]
        for group in params:
            self.add_param_group(group)

    def add_param_group(self, group):
        group = dict(group)
        if "params" not in group:
            raise ValueError(f"a parameter group needs a 'params' entry; got keys {sorted(group)}")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, got {type(p).__name__}")
            if p.grad_fn is not None:
                raise ValueError("can't optimize a non-leaf Tensor")
            if not p.data.flags.c_contiguous:
                p.data = np.asarray(p.data, order="C")
        if len({id(p) for p in params}) != len(params):
            # PyTorch warns and then updates such a parameter once per appearance.
            raise ValueError("a parameter group lists the same parameter more than once; each would "
                             "be updated as many times per step")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        group["params"] = params
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        """Reset gradients: ``.grad = None`` (default, as PyTorch) or zero them in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.data[...] = 0

    def step(self, closure=None):
        """One update of every parameter that has a gradient; ``closure`` re-evaluates the loss."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            self._update_group(group)
        return loss

    def _update_group(self, group):
        raise NotImplementedError

    @staticmethod
    def _grad_array(p):
        if not isinstance(p.grad, Tensor):   # (a user may assign .grad by hand)
            raise TypeError(f"a parameter's .grad must be a pb.Tensor or None, got {type(p.grad).__name__}")
        if not isinstance(p.data, np.ndarray):
            raise TypeError(f"a parameter's .data must be a numpy array, got {type(p.data).__name__}")
        g = p.grad.data
        pd = p.data
        if g.dtype != pd.dtype or not g.flags.c_contiguous:
            g = np.asarray(g, dtype=pd.dtype, order="C")
        return g

    # ----------------------------------------------------------------- state
    def state_dict(self):
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}`` as PyTorch;
        parameters are numbered in group order. Arrays are shared, not copied."""
        index = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            ids = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            packed["params"] = ids
            groups.append(packed)
        state = {index[id(p)]: dict(s) for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        if not isinstance(state_dict, dict):
            raise TypeError(f"load_state_dict expects the dict of an optimizer's state_dict(), got "
                            f"{type(state_dict).__name__}")
        missing = [k for k in ("state", "param_groups") if k not in state_dict]
        if missing:
            raise ValueError(f"not an optimizer state dict: no {' or '.join(repr(k) for k in missing)} entry")
        groups = state_dict["param_groups"]
        for i, sg in enumerate(groups):
            lacks = sorted(set(self.defaults) - set(sg))
            if "params" not in sg or lacks:
                raise ValueError(f"loaded state dict group {i} lacks {['params'] if 'params' not in sg else lacks}: "
                                 f"it was not saved by {type(self).__name__}")
        if len(groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(groups)} parameter groups, the optimizer "
                             f"has {len(self.param_groups)}")
        for i, (g, sg) in enumerate(zip(self.param_groups, groups)):
            if len(g["params"]) != len(sg["params"]):
                raise ValueError(f"loaded state dict group {i} has {len(sg['params'])} parameters, "
                                 f"the optimizer's has {len(g['params'])}")
        id_map = {}
        for g, sg in zip(self.param_groups, groups):
            for p, idx in zip(g["params"], sg["params"]):
                id_map[int(idx)] = p
        state = {}  # (assigned once it is all checked: a refused dict changes nothing)
        for idx, s in state_dict["state"].items():
            p = id_map.get(int(idx))
            if p is None:
                continue
            new = {}
            for k, v in s.items():
                if isinstance(v, Tensor):
                    v = v.data
                if isinstance(v, np.ndarray) and v.shape == p.data.shape and v.ndim > 0:
                    if v.dtype.kind not in "fiu":
                        raise ValueError(f"state {k!r} of parameter {idx} has dtype {v.dtype}")
                    v = np.array(v, dtype=p.data.dtype, order="C")
                elif isinstance(v, np.ndarray) and v.ndim == 0:
                    v = v.item()
                elif isinstance(v, np.ndarray):
                    raise ValueError(f"state {k!r} of parameter {idx} has shape {v.shape}, the parameter "
                                     f"{p.data.shape}")
                if k == "step" and (isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating))):
                    raise ValueError(f"state 'step' of parameter {idx} must be a number, got {v!r}")
                new[k] = v
            state[p] = new
        self.state = state
        for g, sg in zip(self.param_groups, groups):
            for k, v in sg.items():
                if k != "params":
                    g[k] = tuple(v) if k == "betas" else v

    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(g):
                if k != "params":
                    lines.append(f"    {k}: {g[k]}")
        lines.append(")")
        return "\n".join(lines)
