"""Property test: broadcasting is undone in backward for any compatible pair of shapes."""
import numpy as np
from hypothesis import given, settings, strategies as st

import pybackprop as pb


@st.composite
def broadcast_pair(draw):
    out = draw(st.lists(st.integers(1, 4), min_size=0, max_size=4))
    def sub(shape):
        k = draw(st.integers(0, len(shape)))
        tail = shape[len(shape) - k:]
        return tuple(1 if draw(st.booleans()) else n for n in tail)
    return sub(out), sub(out)


@settings(max_examples=60, deadline=None)
@given(broadcast_pair(), st.sampled_from(["add", "sub", "mul", "div"]))
def test_broadcast_gradients_sum_over_broadcast_axes(shapes, op):
    sa, sb = shapes
    rng = np.random.default_rng(0)
    a = rng.uniform(0.5, 2, sa)
    b = rng.uniform(0.5, 2, sb)
    ta, tb = pb.tensor(a, requires_grad=True), pb.tensor(b, requires_grad=True)
    f = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
         "div": lambda x, y: x / y}[op]
    out = f(ta, tb)
    g = rng.standard_normal(out.shape)
    out.backward(g)
    # reference: the local derivative broadcast to the output, then summed back to each shape
    A, B = np.broadcast_arrays(a, b)
    da = {"add": np.ones_like(A), "sub": np.ones_like(A), "mul": B, "div": 1 / B}[op] * g
    db = {"add": np.ones_like(B), "sub": -np.ones_like(B), "mul": A, "div": -A / B ** 2}[op] * g

    def reduce_to(x, shape):
        lead = x.ndim - len(shape)
        x = x.sum(axis=tuple(range(lead))) if lead else x
        axes = tuple(i for i, n in enumerate(shape) if n == 1 and x.shape[i] != 1)
        return x.sum(axis=axes, keepdims=True).reshape(shape)
    assert ta.grad.shape == sa and tb.grad.shape == sb
    np.testing.assert_allclose(ta.grad.numpy(), reduce_to(da, sa), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(tb.grad.numpy(), reduce_to(db, sb), rtol=1e-12, atol=1e-12)
