"""Every differentiable op passes gradcheck (central differences, float64)."""
import numpy as np
import pytest

import pybackprop as pb
import pybackprop.nn.functional as F
from pybackprop.autograd import gradcheck


def T(a, grad=True):
    return pb.tensor(np.asarray(a, dtype=np.float64), dtype=pb.float64, requires_grad=grad)


@pytest.fixture
def r():
    return np.random.default_rng(7)


BINARY_SHAPES = [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4)), ((2, 3, 4), (3, 1)),
                 ((4,), ()), ((), (2, 2))]


@pytest.mark.parametrize("sa,sb", BINARY_SHAPES)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_binary_broadcasting(op, sa, sb, r):
    a = T(r.standard_normal(sa))
    b = T(r.uniform(0.5, 2.0, sb) * r.choice([-1, 1], sb))
    fn = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y,
          "mul": lambda x, y: x * y, "div": lambda x, y: x / y}[op]
    assert gradcheck(fn, (a, b))


@pytest.mark.parametrize("op", ["radd", "rsub", "rmul", "rdiv", "neg", "pow2", "pow_half", "pow_neg",
                                "pow0", "exp", "log", "sqrt", "abs", "erf", "rpow"])
def test_unary(op, r):
    pos = T(r.uniform(0.5, 2.0, (3, 4)))
    fns = {
        "radd": lambda x: 2.0 + x, "rsub": lambda x: 2.0 - x, "rmul": lambda x: 3.0 * x,
        "rdiv": lambda x: 2.0 / x, "neg": lambda x: -x, "pow2": lambda x: x ** 2,
        "pow_half": lambda x: x ** 0.5, "pow_neg": lambda x: x ** -1.5, "pow0": lambda x: x ** 0,
        "exp": pb.exp, "log": lambda x: x.log(), "sqrt": pb.sqrt, "abs": lambda x: (x - 1.2).abs(),
        "erf": pb.erf, "rpow": lambda x: 2.0 ** x,
    }
    assert gradcheck(fns[op], (pos,))


def test_tensor_exponent(r):
    a = T(r.uniform(0.5, 2.0, (3,)))
    b = T(r.standard_normal((3,)))
    assert gradcheck(lambda x, y: x ** y, (a, b))


@pytest.mark.parametrize("axis,keepdims", [(None, False), (0, False), (1, True), (-1, False),
                                           ((0, 2), False), ((0, 2), True)])
@pytest.mark.parametrize("op", ["sum", "mean", "max", "min"])
def test_reductions(op, axis, keepdims, r):
    x = T(r.standard_normal((3, 4, 2)))
    assert gradcheck(lambda t: getattr(t, op)(axis=axis, keepdims=keepdims), (x,))


def test_max_ties_route_to_first_argmax():
    x = T([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]])
    x.max(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 1, 0], [1, 0, 0]])
    y = T([5.0, 5.0, 1.0])
    y.max().backward()
    np.testing.assert_array_equal(y.grad.numpy(), [1, 0, 0])
    # gradcheck away from the tie (finite differences at an exact tie are one-sided)
    z = T([[1.0, 3.0, 2.0], [2.0, 2.5, 0.0]])
    assert gradcheck(lambda t: t.max(axis=1), (z,))


def test_max_nan_propagates():
    x = T([1.0, np.nan, 3.0])
    m = x.max()
    assert np.isnan(m.item())
    m.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 1, 0])


@pytest.mark.parametrize("index", [0, -1, slice(1, 3), (slice(None), 2), (1, slice(0, 2)),
                                   (Ellipsis, 1), np.array([0, 2, 0]), (np.array([0, 1]), np.array([2, 2]))])
def test_indexing(index, r):
    x = T(r.standard_normal((3, 4)))
    assert gradcheck(lambda t: t[index], (x,))


def test_reshape_transpose_broadcast(r):
    x = T(r.standard_normal((2, 3, 4)))
    assert gradcheck(lambda t: t.reshape(6, 4), (x,))
    assert gradcheck(lambda t: t.reshape(-1), (x,))
    assert gradcheck(lambda t: t.transpose(2, 0, 1), (x,))
    assert gradcheck(lambda t: t.T, (x,))
    y = T(r.standard_normal((3, 1)))
    assert gradcheck(lambda t: t.broadcast_to((2, 3, 4)), (y,))


def test_stack_cat_where_clone_cast(r):
    a, b = T(r.standard_normal((2, 3))), T(r.standard_normal((2, 3)))
    assert gradcheck(lambda x, y: pb.stack([x, y], axis=1), (a, b))
    assert gradcheck(lambda x, y: pb.cat([x, y], axis=0), (a, b))
    cond = r.random((2, 3)) > 0.5
    assert gradcheck(lambda x, y: pb.where(cond, x, y), (a, b))
    assert gradcheck(lambda x: x.clone() * 2, (a,))
    assert gradcheck(lambda x: x.astype(pb.float32).astype(pb.float64) * 1.0, (a,), eps=1e-2, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 5)), ((1, 1), (1, 1)), ((4,), (4, 2)), ((3, 4), (4,)),
                                   ((4,), (4,)), ((2, 3, 4), (4, 5)), ((2, 3, 4), (2, 4, 2))])
def test_matmul(sa, sb, r):
    a, b = T(r.standard_normal(sa)), T(r.standard_normal(sb))
    assert gradcheck(lambda x, y: x @ y, (a, b))


ACTS = {
    "relu": F.relu, "sigmoid": F.sigmoid, "tanh": F.tanh, "leaky_relu": lambda x: F.leaky_relu(x, 0.1),
    "elu": lambda x: F.elu(x, 1.3), "gelu": F.gelu, "gelu_tanh": lambda x: F.gelu(x, "tanh"),
    "softplus": lambda x: F.softplus(x, beta=2.0, threshold=3.0),
}


def _away_from_kinks(r, shape):
    x = r.standard_normal(shape)
    return np.where(np.abs(x) < 0.05, 0.3, x)


@pytest.mark.parametrize("act", list(ACTS))
def test_activations(act, r):
    x = T(_away_from_kinks(r, (4, 5)))
    assert gradcheck(ACTS[act], (x,))


@pytest.mark.parametrize("act", ["identity", "relu", "sigmoid", "tanh", "leaky_relu", "elu", "gelu",
                                 "gelu_tanh", "softplus"])
@pytest.mark.parametrize("bias", [True, False])
def test_fused_dense(act, bias, r):
    x = T(r.standard_normal((5, 3)))
    w = T(r.standard_normal((3, 4)))
    b = T(r.standard_normal(4)) if bias else None
    kw = {"alpha": 1.0} if act == "elu" else {}
    inputs = (x, w, b) if bias else (x, w)
    fn = (lambda x, w, b: F.linear(x, w, b, act, **kw)) if bias else (lambda x, w: F.linear(x, w, None, act, **kw))
    assert gradcheck(fn, inputs)


def test_linear_nd_input(r):
    x = T(r.standard_normal((2, 3, 4)))
    w = T(r.standard_normal((4, 2)))
    assert gradcheck(lambda x, w: F.linear(x, w), (x, w))
    v = T(r.standard_normal(4))
    assert gradcheck(lambda v, w: F.linear(v, w), (v, w))


def test_maxout(r):
    x = T(r.standard_normal((5, 3)))
    w = T(r.standard_normal((3, 3, 4)))
    b = T(r.standard_normal((3, 4)))
    assert gradcheck(F.maxout, (x, w, b))


@pytest.mark.parametrize("dim", [-1, 0])
def test_softmax_log_softmax(dim, r):
    x = T(r.standard_normal((3, 5)))
    wts = r.standard_normal((3, 5))
    assert gradcheck(lambda t: F.softmax(t, dim) * wts, (x,))
    assert gradcheck(lambda t: F.log_softmax(t, dim), (x,))
    y = T(r.standard_normal((2, 3, 4)))
    assert gradcheck(lambda t: F.softmax(t, 1), (y,))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_losses(reduction, r):
    logits = T(r.standard_normal((6, 4)))
    targets = r.integers(0, 4, 6)
    assert gradcheck(lambda z: F.cross_entropy(z, targets, reduction), (logits,))
    a, b = T(r.standard_normal((5, 2))), T(r.standard_normal((5, 2)))
    assert gradcheck(lambda x, y: F.mse_loss(x, y, reduction), (a, b))
    yb = T(r.random((5, 2)))
    assert gradcheck(lambda z, y: F.binary_cross_entropy_with_logits(z, y, reduction), (a, yb))


def test_mse_broadcast_target(r):
    a, b = T(r.standard_normal((5, 2))), T(r.standard_normal((2,)))
    with pytest.warns(UserWarning, match=r"target of shape \(2,\) differs from the input's \(5, 2\)"):
        assert gradcheck(lambda x, y: F.mse_loss(x, y), (a, b))


def test_dropout_is_a_fixed_mask(r):
    x = T(r.standard_normal((4, 6)))
    pb.manual_seed(3)
    ref = F.dropout(x, 0.4).numpy().copy()

    def fn(t):
        pb.manual_seed(3)
        return F.dropout(t, 0.4)
    assert gradcheck(fn, (x,))
    np.testing.assert_array_equal(fn(x).numpy(), ref)


@pytest.mark.parametrize("layer", ["linear", "maxout", "seq"])
def test_layers(layer, r):
    pb.manual_seed(0)
    m = {"linear": lambda: pb.nn.Linear(3, 2, dtype=pb.float64),
         "maxout": lambda: pb.nn.Maxout(3, 2, pieces=3, dtype=pb.float64),
         "seq": lambda: pb.nn.Sequential(pb.nn.Linear(3, 4, dtype=pb.float64), pb.nn.Tanh(),
                                         pb.nn.Linear(4, 2, dtype=pb.float64), pb.nn.Softplus())}[layer]()
    params = list(m.parameters())
    x = T(r.standard_normal((4, 3)))

    def fn(x, *ps):
        for p, v in zip(params, ps):
            p.data = v.data
        return m(x)
    saved = [p.data for p in params]
    assert gradcheck(lambda x, *ps: m(x), (x, *params))
    for p, s in zip(params, saved):
        assert p.data is s


@pytest.mark.parametrize("sa,sb", [((3,), (2, 3, 4)), ((2, 3, 4), (4,)), ((3,), (2, 1, 3, 4)),
                                   ((5, 2, 3), (3,))])
def test_matmul_1d_with_batched_operand(sa, sb):
    rng = np.random.default_rng(0)
    a = pb.tensor(rng.standard_normal(sa), dtype=pb.float64, requires_grad=True)
    b = pb.tensor(rng.standard_normal(sb), dtype=pb.float64, requires_grad=True)
    out = a @ b
    np.testing.assert_allclose(out.numpy(), np.matmul(a.numpy(), b.numpy()), rtol=1e-12)
    out.sum().backward()
    assert a.grad.shape == sa and b.grad.shape == sb
    assert gradcheck(lambda u, v: u @ v, (a, b))
