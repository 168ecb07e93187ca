"""The graph engine: one ``Node`` per recorded operation, and the backward sweep.

Forward (define-by-run): ``apply(op, *args)`` runs ``op.forward`` on the arrays
behind ``args``; if gradient recording is on and some argument requires grad,
the returned Tensor gets a ``Node`` as ``grad_fn`` holding the op, its inputs
(in order) and whatever the forward saved for backward.

Backward (``run``): order the nodes reachable from the roots topologically, once,
with an explicit stack (no recursion: a chain of 10^5 ops is fine) visiting
inputs in argument order (deterministic, no sets of parents); then walk that
order from the roots, handing each node the sum of the gradients its consumers
sent it ("copy gate adds") and calling its ``backward`` exactly once.
Each node's output gradient flows to its inputs: into ``pending`` for non-leaf
inputs, into ``.grad`` for leaves.

Two modes, chosen per call:
  * ``create_graph=False`` (the fast path): gradients are plain ndarrays, the
    sweep runs with recording off and kernel ops use their fused C++ backward.
  * ``create_graph=True``: gradients are Tensors and every backward formula is
    evaluated with recorded Tensor ops (symbol-to-symbol), so the gradients
    can be differentiated again. ``Node.x(i)`` / ``Node.y()`` hand a formula the
    op's input / saved output as an array or as a Tensor according to the mode,
    so each op writes its local gradient once.

After a sweep without ``retain_graph`` every visited node drops what it saved
and is marked freed; reaching it again raises ``RuntimeError``. The graph's
structure (inputs and their values) is kept so ``pb.viz`` can still draw it.
"""
import weakref

import numpy as np

from . import grad_mode as _gm
from ..tensor import Tensor, _make, _to_array

__all__ = ["Node", "apply", "backward", "grad", "run"]

# gradients of at most this many elements are kept on their node for pb.viz
VIZ_MAX_ELEMENTS = 64

_FREED = ("Trying to backward through the graph a second time (or directly access saved tensors "
          "after they have already been freed): saved values of '{}' were released after the "
          "previous backward. Specify retain_graph=True on the first backward (or autograd.grad) "
          "call if you need to backward through the graph again.")
_MODIFIED_OUT = ("one of the tensors needed for gradient computation has been modified by an "
                 "in-place operation: the output of '{}' (saved for its backward) is at version "
                 "{}; expected version 0 instead.")
_MODIFIED = ("one of the tensors needed for gradient computation has been modified by an in-place "
             "operation: input {} of '{}' is at version {}; expected version {} instead.")


class Node:
    """A recorded operation; also the ``ctx`` its forward and backward receive.

    Slots: ``op`` (the op class), ``inputs`` (the arguments as given: Tensors or
    constants), ``needs_input_grad``, ``versions`` (input versions at forward time),
    ``out`` (a saved output array), ``saved`` (autograd.Function saves), ``graph``
    (True while a create_graph sweep runs it), ``freed``, ``grad`` (last output
    gradient, small ones only, for viz). Ops may attach more attributes (masks,
    shapes); those are dropped when the graph is freed.
    """

    __slots__ = ("op", "inputs", "needs_input_grad", "versions", "out", "saved", "graph", "freed",
                 "grad", "rec", "topo", "retained", "out_vc", "__dict__", "__weakref__")

    @property
    def name(self):
        return self.op.name

    def x(self, i):
        """Input ``i`` for a backward formula: ndarray (fast mode) or Tensor (create_graph)."""
        t = self.inputs[i]
        if isinstance(t, Tensor):
            if t._version != self.versions[i]:
                raise RuntimeError(_MODIFIED.format(i, self.op.name, t._version, self.versions[i]))
            return t if self.graph else t.data
        return t

    def shape(self, i):
        t = self.inputs[i]
        return t.data.shape if isinstance(t, Tensor) else np.shape(t)

    def y(self):
        """The saved output: ndarray, or in create_graph mode a Tensor whose grad_fn is this node."""
        if self.graph:
            return _make(self.out, True, self)
        return self.out

    # -- autograd.Function context API ---------------------------------------
    def save_for_backward(self, *tensors):
        self.saved = tuple((t, t._version if isinstance(t, Tensor) else None) for t in tensors)

    @property
    def saved_tensors(self):
        if self.freed:
            raise RuntimeError(_FREED.format(self.op.name))
        if self.saved is None:
            return ()
        out = []
        for i, (t, v) in enumerate(self.saved):
            if v is not None and t._version != v:
                raise RuntimeError(_MODIFIED.format(f"saved tensor {i}", self.op.name, t._version, v))
            out.append(t)
        return tuple(out)

    def retain(self, t):
        self.retained = weakref.ref(t)

    def __repr__(self):
        return f"<{self.op.name} node>"


_new = object.__new__


def _ctx(op, record):
    node = _new(Node)
    node.op = op
    node.rec = record
    node.out = None
    node.out_vc = None
    return node


def apply(op, *args, **params):
    """Run ``op.forward`` on the data of ``args``; record a node if any input requires grad."""
    record = False
    arrays = []
    if _gm._enabled:
        needs = []
        versions = []
        for a in args:
            if isinstance(a, Tensor):
                arrays.append(a.data)
                r = a.requires_grad
                needs.append(r)
                versions.append(a._version)
                if r:
                    record = True
            else:
                arrays.append(a)
                needs.append(False)
                versions.append(None)
    else:
        for a in args:
            arrays.append(a.data if isinstance(a, Tensor) else a)
    ctx = _new(Node)
    ctx.op = op
    ctx.rec = record
    ctx.out = None
    out = op.forward(ctx, *arrays, **params)
    if type(out) is not np.ndarray:
        out = np.asarray(out)
    if not record:
        return _make(out)
    ctx.inputs = args
    ctx.needs_input_grad = tuple(needs)
    ctx.versions = tuple(versions)
    ctx.saved = None
    ctx.graph = False
    ctx.freed = False
    ctx.grad = None
    ctx.topo = None
    ctx.retained = None
    t = _make(out, True, ctx)
    # the op saved its output for backward: remember the output's version counter so that an
    # in-place change of the output (or of an alias such as its detach()) is caught in backward
    ctx.out_vc = t._vc if ctx.out is not None else None
    return t


def record_node(op, args, out_array, needs=None):
    """Make the recorded output of an op whose forward already ran (used by autograd.Function)."""
    ctx = _ctx(op, True)
    ctx.inputs = args
    ctx.needs_input_grad = needs if needs is not None else tuple(
        isinstance(a, Tensor) and a.requires_grad for a in args)
    ctx.versions = tuple(a._version if isinstance(a, Tensor) else None for a in args)
    ctx.saved = None
    ctx.graph = False
    ctx.freed = False
    ctx.grad = None
    ctx.topo = None
    ctx.retained = None
    return ctx


# --------------------------------------------------------------------------- sort
def _topo(roots):
    """Nodes reachable from ``roots``, each after every node that consumes it (iterative DFS)."""
    order = []
    seen = set()
    for root in roots:
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(root.inputs))]
        while stack:
            node, it = stack[-1]
            for t in it:
                if isinstance(t, Tensor):
                    fn = t.grad_fn
                    if fn is not None and fn not in seen:
                        seen.add(fn)
                        stack.append((fn, iter(fn.inputs)))
                        break
            else:
                stack.pop()
                order.append(node)
    order.reverse()
    return order


# ------------------------------------------------------------------------- sweep
def _accumulate_leaf(t, g, fresh, create_graph):
    cur = t.grad
    if create_graph:
        if cur is None:
            t.grad = g if g.grad_fn is not None else _make(g.data.copy())
        else:
            t.grad = cur + g
        return
    if cur is None:
        if not fresh or type(g) is not np.ndarray or not g.flags.c_contiguous or not g.flags.writeable:
            g = np.array(g, order="C")
        t.grad = _make(g)
        return
    cd = cur.data
    if cur.grad_fn is None and cd.flags.writeable and cd.shape == g.shape:
        np.add(cd, g, out=cd)
        cur._version += 1
    else:
        t.grad = _make(np.asarray(cd + g, order="C"))


def run(roots, root_grads, retain_graph, create_graph, capture=None):
    """Backpropagate ``root_grads`` from ``roots``.

    ``capture`` (for ``autograd.grad``): a list of input Tensors whose gradients are
    returned (as a list, None where no gradient arrived) instead of accumulated
    into ``.grad``. Otherwise leaves accumulate into ``.grad``.
    """
    prev_mode = _gm._set(create_graph)
    try:
        pending = {}
        captured = None
        leaf_slot = node_slot = None
        if capture is not None:
            captured = [None] * len(capture)
            leaf_slot, node_slot = {}, {}
            for i, t in enumerate(capture):
                if t.grad_fn is None:
                    leaf_slot.setdefault(id(t), []).append(i)
                else:
                    node_slot.setdefault(t.grad_fn, []).append(i)

        def to_leaf(t, g, fresh):
            if captured is None:
                _accumulate_leaf(t, g, fresh, create_graph)
            else:
                for i in leaf_slot.get(id(t), ()):
                    captured[i] = g if captured[i] is None else captured[i] + g

        root_nodes = []
        for t, g in zip(roots, root_grads):
            if create_graph and not isinstance(g, Tensor):
                g = _make(g)
            elif not create_graph and isinstance(g, Tensor):
                g = g.data
            fn = t.grad_fn
            if fn is None:
                to_leaf(t, g, False)
            else:
                p = pending.get(fn)
                pending[fn] = g if p is None else p + g
                root_nodes.append(fn)

        if len(root_nodes) == 1 and root_nodes[0].topo is not None:
            order = root_nodes[0].topo
        else:
            order = _topo(root_nodes)
            if retain_graph and len(root_nodes) == 1:
                root_nodes[0].topo = order

        # autograd.grad: run only the nodes that lead to a requested input; the rest of the
        # graph (below a requested non-leaf, or off to the side) is neither run nor freed.
        reach = None
        if capture is not None:
            reach = set()
            for node in reversed(order):
                for t in node.inputs:
                    if not isinstance(t, Tensor):
                        continue
                    fn = t.grad_fn
                    if (id(t) in leaf_slot) if fn is None else (fn in node_slot or fn in reach):
                        reach.add(node)
                        break
        ran = []

        for node in order:
            g = pending.pop(node, None)
            if g is None:
                continue
            if reach is not None and node not in reach:
                if node in node_slot:
                    for i in node_slot[node]:
                        captured[i] = g
                continue
            ran.append(node)
            if node.freed:
                raise RuntimeError(_FREED.format(node.op.name))
            if node.retained is not None:
                rt = node.retained()
                if rt is not None:
                    rt.grad = g if create_graph else _make(np.array(g))
            if node_slot is not None and node in node_slot:
                for i in node_slot[node]:
                    captured[i] = g
            if not create_graph and g.size <= VIZ_MAX_ELEMENTS:
                node.grad = g
            vc = node.out_vc
            if vc is not None and vc[0] != 0 and node.out is not None:
                raise RuntimeError(_MODIFIED_OUT.format(node.op.name, vc[0]))
            node.graph = create_graph
            grads = node.op.backward(node, g)
            node.graph = False
            fresh = node.op.fresh
            inputs = node.inputs
            needs = node.needs_input_grad
            for i, gi in enumerate(grads):
                if gi is None or not needs[i]:
                    continue
                t = inputs[i]
                if create_graph and not isinstance(gi, Tensor):
                    gi = _make(np.asarray(gi))
                if gi.dtype != t.data.dtype:
                    gi = gi.astype(t.data.dtype)
                fn = t.grad_fn
                if fn is None:
                    to_leaf(t, gi, fresh)
                else:
                    p = pending.get(fn)
                    pending[fn] = gi if p is None else p + gi

        if not retain_graph:
            for node in (order if reach is None else ran):
                node.freed = True
                node.out = None
                node.saved = None
                node.topo = None
                node.__dict__.clear()
        return captured
    finally:
        _gm._set(prev_mode)


def _root_grad(t, gradient):
    if gradient is None:
        if t.data.size != 1:
            raise RuntimeError(f"grad can be implicitly created only for scalar outputs; got an "
                               f"output of shape {t.data.shape}: pass gradient=")
        return np.ones(t.data.shape, t.data.dtype)
    if isinstance(gradient, Tensor) and gradient.requires_grad:
        g = gradient
    else:
        g = _to_array(gradient, t.data.dtype)
    if g.shape != t.data.shape:
        raise RuntimeError(f"gradient has shape {g.shape} but the output has shape {t.data.shape}")
    return g


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate into the leaves' ``.grad`` the gradient of ``tensors`` (one Tensor or a list)
    weighted by ``grad_tensors`` (``Tensor.backward`` calls this with one tensor)."""
    if isinstance(tensors, Tensor):
        tensors = [tensors]
        grad_tensors = [grad_tensors]
    else:
        tensors = list(tensors)
        grad_tensors = [None] * len(tensors) if grad_tensors is None else list(grad_tensors)
    if retain_graph is None:
        retain_graph = create_graph
    gs = []
    for t, g in zip(tensors, grad_tensors):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
        gs.append(_root_grad(t, g))
    if inputs is None:
        run(tensors, gs, retain_graph, create_graph)
        return
    if isinstance(inputs, Tensor):
        inputs = [inputs]
    got = run(tensors, gs, retain_graph, create_graph, capture=list(inputs))
    prev = _gm._set(create_graph)
    try:
        for x, gx in zip(inputs, got):
            if gx is not None:
                _accumulate_leaf(x, gx, False, create_graph)
    finally:
        _gm._set(prev)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False):
    """Gradients of ``outputs`` with respect to ``inputs`` (a tuple, one per input).

    Nothing is accumulated into ``.grad``. With ``create_graph=True`` the returned
    tensors are recorded functions of the inputs (for higher-order derivatives).
    An input that the outputs do not depend on raises unless ``allow_unused=True``
    (then its entry is ``None``).
    """
    single_out = isinstance(outputs, Tensor)
    outputs = [outputs] if single_out else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, (Tensor, np.ndarray)):
        grad_outputs = [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad_outputs has {len(grad_outputs)} entries for {len(outputs)} outputs")
    for x in inputs:
        if not isinstance(x, Tensor) or not x.requires_grad:
            raise RuntimeError("every input of autograd.grad must be a Tensor that requires grad")
    roots, gs = [], []
    for o, go in zip(outputs, grad_outputs):
        if not isinstance(o, Tensor) or not o.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
        roots.append(o)
        gs.append(_root_grad(o, go))
    if retain_graph is None:
        retain_graph = create_graph
    got = run(roots, gs, retain_graph, create_graph, capture=inputs)
    result = []
    for i, g in enumerate(got):
        if g is None:
            if not allow_unused:
                raise RuntimeError(f"input {i} of autograd.grad was not used in the graph of the "
                                   "outputs; pass allow_unused=True to get None for it")
            result.append(None)
        elif isinstance(g, Tensor):
            result.append(g)
        else:
            result.append(_make(np.array(g, order="C")))
    return tuple(result)
