"""``pb.compile``: a whole training step (or inference) as one native call.

``step = pb.compile(model, loss_fn, optimizer)`` captures the step

    optimizer.zero_grad(); loss = loss_fn(model(x), y); loss.backward(); optimizer.step()

for a ``Sequential`` of ``Linear`` layers, each optionally followed by one
activation module, with a ``CrossEntropyLoss``, ``MSELoss`` or
``BCEWithLogitsLoss`` (reduction "mean" or "sum") and an ``SGD``, ``Adam``,
``AdamW`` or ``RMSprop`` optimiser with one parameter group. ``step(x, y)``
then runs forward, loss, backward and the update in C++ with the GIL released
(``csrc/plan/mlp_plan.h``) and returns the loss as a Python float.
``pb.compile(model)`` returns ``predict(x) -> ndarray`` running the forward pass
natively (eval semantics: dropout is off).

Capture takes microseconds to milliseconds: it moves every parameter, its
gradient and its optimiser state into one flat, 64-byte aligned buffer and
makes the ``Parameter``s, their ``.grad`` and the optimiser's state views of it,
so the model, the optimiser and the compiled step share memory:

* changes to parameters made from Python (in place, or by assigning
  ``p.data``, or by ``load_state_dict``) are seen by the next step;
* ``optimizer.state_dict()`` and ``p.grad`` after a compiled step are what the
  eager step would have left; eager and compiled steps can be mixed freely;
* learning-rate schedulers work: hyper-parameters are re-read at every step
  (and checked as the optimiser's constructor checks them when they change);
* an edit of the model or the loss (a layer replaced, a bias removed, an
  activation's slope or the loss's reduction changed) captures again at the
  next call: every module under them is watched (``nn.module.watch``);
* a new batch size re-sizes the workspaces (re-captures) on the fly.

The kernels are the ones the eager path calls, in the same order per
parameter, so compiled and eager training give bit-identical weights (tested),
on any thread count. The one difference: the compiled step updates each layer
as soon as its gradients are complete instead of after the whole backward pass,
which changes nothing numerically because each update only reads its own
parameter's gradient.

Inputs are converted to the model's dtype, and compiled inference returns
that dtype. Eager numpy promotes instead: a float64 array given to a float32
model is computed and returned in float64. So for such an input the compiled
step and inference agree with eager only to float32 rounding, not bit for bit;
give inputs in the model's dtype (or build the model with ``dtype=pb.float64``)
where that matters. The conversion is also a copy per call.

Anything else (other modules, Dropout in training mode, several parameter
groups, parameters the optimiser does not own) cannot be compiled: the step
then runs eagerly and says so once with a ``RuntimeWarning``.
"""
import operator
import warnings

import numpy as np

from . import _core
from . import ops as _ops
from .nn.activation import Identity, fusable
from .nn.container import Sequential
from .nn.dropout import Dropout
from .nn.linear import Linear
from .nn.module import Module, watch as _watch_module
from .nn.loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from .optim.adam import Adam, AdamW
from .optim.optimizer import check_hyper
from .optim.rmsprop import RMSprop
from .optim.sgd import SGD
from .tensor import Tensor, from_numpy

__all__ = ["compile", "CompiledStep", "CompiledModel"]

_ALIGN = 64  # bytes: every parameter starts on a cache line


class _Unsupported(Exception):
    """Why a model, loss or optimiser cannot be compiled."""


def compile(model, loss_fn=None, optimizer=None):
    """Compile a training step ``step(x, y) -> float``, or with ``model`` alone an
    inference callable ``predict(x) -> ndarray``. See the module docstring."""
    if loss_fn is None and optimizer is None:
        return CompiledModel(model)
    if loss_fn is None or optimizer is None:
        raise TypeError("pb.compile(model, loss_fn, optimizer) needs both a loss and an optimiser "
                        "for a training step, or neither for inference")
    return CompiledStep(model, loss_fn, optimizer)


# --------------------------------------------------------------------------- capture

def _dense_layers(model, training):
    """[(Linear, activation params tuple or None)] for a compilable model."""
    modules = list(model) if isinstance(model, Sequential) else [model]
    if isinstance(model, Sequential) and type(model).forward is not Sequential.forward:
        raise _Unsupported(f"{type(model).__name__} overrides forward")
    layers = []
    for m in modules:
        if m is None or type(m) is Identity:
            continue
        if type(m) is Linear:
            layers.append([m, None])
        elif fusable(m):
            if not layers or layers[-1][1] is not None:
                raise _Unsupported(f"{type(m).__name__} does not follow a Linear layer")
            layers[-1][1] = m._params()
        elif type(m) is Dropout:
            if training and m.p > 0:
                raise _Unsupported("Dropout in training mode (its random masks are drawn in Python)")
        else:
            raise _Unsupported(f"{type(m).__name__} is not a compilable module "
                               "(Linear, its activations, Identity, Dropout in eval mode)")
    if not layers:
        raise _Unsupported("the model has no Linear layer")
    for lin, _ in layers:  # the native plan reads the arrays by these shapes
        w, b = lin.weight.data, None if lin.bias is None else lin.bias.data
        for name, a in (("weight", w), ("bias", b)):
            if a is not None and not isinstance(a, np.ndarray):  # (.data assigned by hand)
                raise TypeError(f"Linear({lin.in_features}, {lin.out_features}).{name}.data must be a numpy "
                                f"array, got {type(a).__name__}")
        if w.shape != (lin.in_features, lin.out_features) or (b is not None and b.shape != (lin.out_features,)):
            raise ValueError(f"Linear({lin.in_features}, {lin.out_features}) has a weight of shape {w.shape}"
                             + ("" if b is None else f" and a bias of shape {b.shape}")
                             + f": expected ({lin.in_features}, {lin.out_features})"
                             + ("" if b is None else f" and ({lin.out_features},)"))
    dtypes = {lin.weight.data.dtype for lin, _ in layers}
    if len(dtypes) != 1:
        raise _Unsupported(f"the layers mix dtypes {sorted(map(str, dtypes))}")
    for (a, _), (b, _) in zip(layers, layers[1:]):
        if a.out_features != b.in_features:
            raise ValueError(f"Linear({a.in_features}, {a.out_features}) is followed by "
                             f"Linear({b.in_features}, {b.out_features})")
    return layers


def _layer_specs(layers):
    specs = []
    for lin, act in layers:
        name, alpha, beta, threshold = act[:4] if act is not None else ("identity", 0.01, 1.0, 20.0)
        specs.append(dict(**{"in": lin.in_features, "out": lin.out_features}, act=name, alpha=alpha,
                          beta=beta, threshold=threshold, bias=lin.bias is not None))
    return specs


def _aligned_empty(n_elements, dtype):
    """A 1-D array of n_elements whose data starts on a 64-byte boundary."""
    itemsize = np.dtype(dtype).itemsize
    raw = np.empty(n_elements * itemsize + _ALIGN, dtype=np.uint8)
    offset = (-raw.ctypes.data) % _ALIGN
    return raw[offset:offset + n_elements * itemsize].view(dtype)


# Optimiser state keys in the order the plan's ParamBuffers.state expects.
_STATE_KEYS = {
    "sgd": ("momentum_buffer",),
    "adam": ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
    "adamw": ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
    "rmsprop": ("square_avg", "grad_avg", "momentum_buffer"),
}


def _optimizer_kind(optimizer):
    kind = {SGD: "sgd", Adam: "adam", AdamW: "adamw", RMSprop: "rmsprop"}.get(type(optimizer))
    if kind is None:
        raise _Unsupported(f"{type(optimizer).__name__} has no compiled update")
    if len(optimizer.param_groups) != 1:
        raise _Unsupported("the optimiser has several parameter groups")
    return kind


def _used_state_keys(kind, group):
    """The state buffers this optimiser configuration actually keeps."""
    if kind == "sgd":
        return {"momentum_buffer"} if group["momentum"] != 0 else set()
    if kind in ("adam", "adamw"):
        return {"exp_avg", "exp_avg_sq"} | ({"max_exp_avg_sq"} if group["amsgrad"] else set())
    return ({"square_avg"} | ({"grad_avg"} if group["centered"] else set())
            | ({"momentum_buffer"} if group["momentum"] > 0 else set()))


# Hyper-parameters are re-read at every step (schedulers change lr between
# steps): one C-level itemgetter call per step, compared with the last tuple.
_HP_KEYS = {
    "sgd": ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize"),
    "adam": ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize"),
    "rmsprop": ("lr", "alpha", "eps", "weight_decay", "momentum", "centered", "maximize"),
}
_HP_KEYS["adamw"] = _HP_KEYS["adam"]


def _write_hyper_parameters(spec, kind, hp):
    # A setting changed from Python between steps is checked as the optimiser's
    # constructor checks it (a NaN learning rate would turn every weight into NaN).
    if kind == "sgd":
        lr, mom, damp, wd = hp[:4]
        for name, v in (("learning rate", lr), ("momentum", mom), ("dampening", damp), ("weight_decay", wd)):
            check_hyper(name, v)
    elif kind in ("adam", "adamw"):
        lr, betas, eps, wd = hp[:4]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        check_hyper("beta1", betas[0], 0.0, 1.0, high_open=True)
        check_hyper("beta2", betas[1], 0.0, 1.0, high_open=True)
        for name, v in (("learning rate", lr), ("epsilon", eps), ("weight_decay", wd)):
            check_hyper(name, v)
    else:
        lr, alpha, eps, wd, mom = hp[:5]
        check_hyper("alpha", alpha, 0.0, 1.0)
        for name, v in (("learning rate", lr), ("epsilon", eps), ("weight_decay", wd), ("momentum", mom)):
            check_hyper(name, v)
    if kind == "sgd":
        spec.lr, spec.momentum, spec.dampening, spec.weight_decay, spec.nesterov, spec.maximize = hp
    elif kind in ("adam", "adamw"):
        spec.lr, (spec.beta1, spec.beta2), spec.eps, spec.weight_decay, spec.amsgrad, spec.maximize = hp
    else:
        spec.lr, spec.alpha, spec.eps, spec.weight_decay, spec.momentum, spec.centered, spec.maximize = hp


def _loss_kind(loss_fn):
    kind = {CrossEntropyLoss: "cross_entropy", MSELoss: "mse", BCEWithLogitsLoss: "bce_with_logits"}.get(
        type(loss_fn))
    if kind is None:
        raise _Unsupported(f"{type(loss_fn).__name__} has no compiled form")
    if loss_fn.reduction not in ("mean", "sum"):
        raise _Unsupported(f"reduction={loss_fn.reduction!r} (a compiled step returns one number)")
    return kind


def _watch(compiled, *roots):
    """Have ``compiled._module_edited()`` called when any module under ``roots`` changes
    (nn.module.watch): what was captured from them is then out of date."""
    for root in roots:
        if isinstance(root, Module):
            for m in root.modules():
                _watch_module(m, compiled)


def _as_input(x, dtype):
    """An input converted as the eager model converts it: real numbers only (a complex,
    object or string array is a TypeError, not a cast with a warning), any shape kept."""
    a = np.asarray(x)
    if a.dtype.kind not in "fiub":
        raise TypeError(f"input of dtype {a.dtype}: a model takes real numbers")
    return np.asarray(a, dtype=dtype, order="C")


def _warn_eager(reason):
    warnings.warn(f"pb.compile: {reason}; this step runs eagerly instead", RuntimeWarning, stacklevel=3)


# --------------------------------------------------------------------------- training step

class CompiledStep(_core.CompiledStepBase):
    """``step(x, y) -> float``: one training step as one native call (see module docstring).

    ``step(x, y)`` runs the base class's ``__call__`` (``_bindings/step.pxi``): the
    per-step checks compiled to C, falling back to ``_call`` below, the same
    logic in Python, whenever anything needs attention."""

    def __init__(self, model, loss_fn, optimizer):
        self.model = model
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self._plan = None
        self._recapture()

    def _recapture(self):
        """Capture (again); on failure run eagerly, saying why once."""
        self._plan = None
        self._edited = False
        self.fallback_reason = None
        self._training = self.model.training
        _watch(self, self.model, self.loss_fn)
        try:
            self._capture()
        except _Unsupported as why:
            self.fallback_reason = str(why)
            _warn_eager(why)

    def _module_edited(self):
        """A module of the model or the loss was edited (a layer replaced, a bias removed, an
        activation's or the loss's settings changed): the next step captures again."""
        self._plan = None     # (so the fast path hands the next call to _call)
        self._edited = True

    # The eager step, used when the model cannot be compiled.
    def _eager_step(self, x, y):
        opt = self.optimizer
        opt.zero_grad()
        loss = self.loss_fn(self.model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    def _capture(self):
        model, opt = self.model, self.optimizer
        layers = _dense_layers(model, model.training)
        self._loss = _loss_kind(self.loss_fn)
        self._kind = _optimizer_kind(opt)
        group = opt.param_groups[0]
        params = [lin.weight for lin, _ in layers] + [lin.bias for lin, _ in layers if lin.bias is not None]
        if {id(p) for p in params} != {id(p) for p in group["params"]} or len(params) != len(group["params"]):
            raise _Unsupported("the optimiser's parameters are not exactly the model's")
        dtype = params[0].data.dtype
        self.dtype = dtype
        self._state_keys = _used_state_keys(self._kind, group)
        keys = [k for k in _STATE_KEYS[self._kind] if k in self._state_keys]

        # One flat buffer: values, then gradients, then each state buffer, per parameter.
        align = _ALIGN // dtype.itemsize
        offsets, total = [], 0
        for p in params:
            offsets.append(total)
            total += -(-p.data.size // align) * align
        planes = 2 + len(keys)
        flat = _aligned_empty(total * planes, dtype)
        flat[:] = 0
        self._flat = flat

        def view(plane, i):
            p = params[i]
            start = plane * total + offsets[i]
            return flat[start:start + p.data.size].reshape(p.data.shape)

        self._params = tuple(params)
        values, grad_tensors = [], []
        self._pending_state = []     # state entries published after the first compiled step
        steps = []
        buffers = {}
        for i, p in enumerate(params):
            value = view(0, i)
            value[...] = p.data
            p.data = value
            grad = view(1, i)
            if p.grad is not None:
                grad[...] = p.grad.data
            grad_tensor = from_numpy(grad)
            values.append(value)
            grad_tensors.append(grad_tensor)
            st = opt.state.get(p)
            state_views = []
            for j, key in enumerate(keys):
                buf = view(2 + j, i)
                if st is not None and st.get(key) is not None:
                    buf[...] = st[key]
                    st[key] = buf
                else:
                    self._pending_state.append((p, key, buf))
                state_views.append(buf)
            state_views += [None] * (3 - len(state_views))
            # SGD keeps no step count: its first step is the one without a buffer yet.
            if self._kind == "sgd":
                steps.append(1 if st is not None and st.get("momentum_buffer") is not None else 0)
            else:
                steps.append(int(st["step"]) if st is not None and "step" in st else 0)
            buffers[id(p)] = dict(value=value, grad=grad, state=state_views, step=steps[-1])

        weights = [buffers[id(lin.weight)] for lin, _ in layers]
        biases = [buffers[id(lin.bias)] if lin.bias is not None else None for lin, _ in layers]
        self._plan = _core.MlpPlan(dtype.name, _layer_specs(layers), self._loss, self.loss_fn.reduction,
                                   weights, biases)
        # The plan reports steps as weights then biases; remember that order.
        self._step_order = [lin.weight for lin, _ in layers] + [lin.bias for lin, _ in layers]
        self._steps_seen = self._python_steps()
        self._spec = _core.OptimSpec(self._kind)
        self._hp = None
        self._group = group
        self._hp_keys = _HP_KEYS[self._kind]
        self._read_hp = operator.itemgetter(*self._hp_keys)
        self._counts_steps = self._kind != "sgd"
        self._values, self._grad_tensors = tuple(values), tuple(grad_tensors)
        self._n_out = layers[-1][0].out_features
        self._n_in = layers[0][0].in_features

    def _python_steps(self):
        if self._kind == "sgd":
            return None
        st = self.optimizer.state.get(self._params[0])
        return None if st is None else st.get("step")

    def _resync_steps(self):
        """The optimiser stepped eagerly since the last compiled step: take its counts."""
        state = self.optimizer.state
        steps = []
        for p in self._step_order:
            st = state.get(p) if p is not None else None
            steps.append(int(st["step"]) if st is not None and "step" in st else 0)
        self._plan.set_steps(steps)

    def _call(self, x, y):
        # What the capture depends on: the modules (edited: _module_edited), train/eval
        # mode (Dropout), and which state buffers the optimiser's settings need
        # (momentum, amsgrad, centered).
        if self._edited or self.model.training != self._training:
            self._recapture()
        plan = self._plan
        if plan is None:
            return self._eager_step(x, y)
        # Parameters replaced from Python (p.data = ..., load_state_dict): capture again.
        for p, v in zip(self._params, self._values):
            if p.data is not v:
                self._recapture()
                return self(x, y)
        hp = self._read_hp(self._group)
        if hp != self._hp:
            if self._hp is not None and _used_state_keys(self._kind, self._group) != self._state_keys:
                self._recapture()
                return self(x, y)
            _write_hyper_parameters(self._spec, self._kind, hp)
            self._hp = hp
        if self._counts_steps and self._python_steps() != self._steps_seen:
            self._resync_steps()

        # Fast path: the plan checks dtype, layout and shapes itself; anything it
        # refuses is converted here and tried once more (or reported).
        xd = x.data if type(x) is not np.ndarray and isinstance(x, Tensor) else x
        yd = y.data if type(y) is not np.ndarray and isinstance(y, Tensor) else y
        try:
            loss = plan.train_step(xd, yd, self._spec)
        except TypeError:  # dtype or layout: convert, then try once more
            xd = self._input(xd)
            if self._broadcast_targets(yd, xd.shape[0]):
                return self._broadcast_step(x, y, yd)
            loss = plan.train_step(xd, self._targets(y, xd.shape[0]), self._spec)
        except ValueError:
            if not self._broadcast_targets(yd, np.shape(xd)[0] if np.ndim(xd) == 2 else -1):
                raise
            return self._broadcast_step(x, y, yd)

        # What an eager step leaves behind: the optimiser state it creates on its
        # first step, then gradients, parameter versions and step counts.
        if self._pending_state:
            state = self.optimizer.state
            for p, key, buf in self._pending_state:
                state.setdefault(p, {})[key] = buf
            self._pending_state = []
        self._publish_step()
        return loss

    def _broadcast_targets(self, y, batch):
        """Targets of another shape than the output that the eager loss broadcasts against it
        (MSE, BCE: (N,) against (N, 1) gives (N, N), as in PyTorch)."""
        if self._loss == "cross_entropy" or batch < 0:
            return False
        shape = np.shape(y.data if isinstance(y, Tensor) else y)
        if shape == (batch, self._n_out):
            return False
        try:
            np.broadcast_shapes(shape, (batch, self._n_out))
        except ValueError:
            return False
        return True

    def _broadcast_step(self, x, y, yd):
        _warn_eager(f"targets of shape {np.shape(yd)} are broadcast against the output's "
                    f"({np.shape(x)[0]}, {self._n_out}) by the eager loss, which the native step does not do")
        return self._eager_step(x, y)

    def _input(self, xd):
        xd = _as_input(xd, self.dtype)
        if xd.ndim != 2 or xd.shape[1] != self._n_in:
            raise ValueError(f"input of shape {xd.shape}: the model takes (batch, {self._n_in}) features")
        return xd

    def _targets(self, y, batch):
        if self._loss == "cross_entropy":
            # the graph layer's conversion, so eager and compiled accept the same targets
            return np.ascontiguousarray(_ops._targets(y, batch))
        yd = y.data if isinstance(y, Tensor) else y
        yd = np.asarray(yd)
        if yd.shape != (batch, self._n_out):
            raise ValueError(f"targets of shape {yd.shape}, expected ({batch}, {self._n_out}) like the output")
        if yd.dtype != self.dtype or not yd.flags.c_contiguous:
            yd = np.ascontiguousarray(yd, dtype=self.dtype)
        return yd

    def __repr__(self):
        mode = f"eager fallback: {self.fallback_reason}" if self._plan is None else "native"
        return f"CompiledStep({type(self.model).__name__}, {type(self.loss_fn).__name__}, " \
               f"{type(self.optimizer).__name__}; {mode})"


# --------------------------------------------------------------------------- inference

class CompiledModel(_core.CompiledModelBase):
    """``predict(x) -> ndarray``: the model's forward pass as one native call (eval semantics).

    ``predict(x)`` runs the base class's ``__call__`` (``_bindings/step.pxi``), which
    hands a 2-D C-contiguous array of the model's dtype straight to the C++ plan;
    anything else goes to ``_call`` below."""

    def __init__(self, model):
        self.model = model
        self._recapture()

    def _recapture(self):
        self._plan = None
        self._edited = False
        self.fallback_reason = None
        _watch(self, self.model)
        try:
            self._capture()
        except _Unsupported as why:
            self.fallback_reason = str(why)
            _warn_eager(why)

    def _module_edited(self):
        """A module of the model was edited: the next call captures again."""
        self._plan = None
        self._edited = True

    def _capture(self):
        layers = _dense_layers(self.model, training=False)
        params, values = [], []
        weights, biases = [], []
        for lin, _ in layers:
            for p in (lin.weight, lin.bias):
                if p is not None and not (p.data.flags.c_contiguous and p.data.flags.writeable):
                    raise _Unsupported("a parameter is not a writable C-contiguous array")
            w = lin.weight.data
            params.append(lin.weight)
            values.append(w)
            weights.append(dict(value=w, grad=None, state=[]))
            if lin.bias is not None:
                params.append(lin.bias)
                values.append(lin.bias.data)
                biases.append(dict(value=lin.bias.data, grad=None, state=[]))
            else:
                biases.append(None)
        self._params, self._values = tuple(params), tuple(values)
        self.dtype = layers[0][0].weight.data.dtype
        self._n_in = layers[0][0].in_features
        self._n_out = layers[-1][0].out_features
        self._plan = _core.MlpPlan(self.dtype.name, _layer_specs(layers), "none", "mean", weights, biases)

    def _call(self, x):
        if self._edited:
            self._recapture()
        if self._plan is None:
            from .autograd import no_grad
            was_training = self.model.training
            self.model.eval()
            try:
                with no_grad():
                    out = self.model(x)
            finally:
                self.model.train(was_training)
            return out.data if isinstance(out, Tensor) else out
        for p, a in zip(self._params, self._values):
            if p.data is not a:
                try:
                    self._capture()
                except _Unsupported as why:
                    self._plan, self.fallback_reason = None, str(why)
                    _warn_eager(why)
                    return self(x)
                break
        xd = x.data if isinstance(x, Tensor) else x
        if type(xd) is not np.ndarray or xd.dtype != self.dtype or not xd.flags.c_contiguous:
            xd = _as_input(xd, self.dtype)
        if xd.ndim == 1:  # one example in, one row out, as the eager model gives
            return self(xd.reshape(1, -1))[0]
        if xd.ndim != 2 or xd.shape[1] != self._n_in:
            raise ValueError(f"input of shape {xd.shape}: the model takes (batch, {self._n_in}) features")
        return self._plan.forward(xd)
