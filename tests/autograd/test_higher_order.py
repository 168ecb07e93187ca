"""Second-order derivatives (create_graph=True) against torch.autograd.grad(create_graph=True)."""
import numpy as np
import pytest

import pybackprop as pb
import pybackprop.nn.functional as F

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
TF = torch.nn.functional

PAIRS = {
    "relu": (F.relu, torch.relu),
    "sigmoid": (F.sigmoid, torch.sigmoid),
    "tanh": (F.tanh, torch.tanh),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.1), lambda x: TF.leaky_relu(x, 0.1)),
    "elu": (lambda x: F.elu(x, 0.8), lambda x: TF.elu(x, 0.8)),
    "gelu": (F.gelu, TF.gelu),
    "gelu_tanh": (lambda x: F.gelu(x, "tanh"), lambda x: TF.gelu(x, approximate="tanh")),
    "softplus": (lambda x: F.softplus(x, 1.5, 2.0), lambda x: TF.softplus(x, 1.5, 2.0)),
    "exp": (pb.exp, torch.exp),
    "log": (lambda x: (x * x + 1).log(), lambda x: torch.log(x * x + 1)),
    "sqrt": (lambda x: (x * x + 1).sqrt(), lambda x: torch.sqrt(x * x + 1)),
    "pow3": (lambda x: x ** 3, lambda x: x ** 3),
    "div": (lambda x: 1 / (x * x + 2), lambda x: 1 / (x * x + 2)),
    "abs": (lambda x: x.abs() * x, lambda x: x.abs() * x),
    "softmax": (lambda x: F.softmax(x, -1) * x, lambda x: torch.softmax(x, -1) * x),
    "log_softmax": (lambda x: F.log_softmax(x, -1) ** 2, lambda x: torch.log_softmax(x, -1) ** 2),
    "max": (lambda x: x.max(axis=1) ** 2, lambda x: x.max(dim=1).values ** 2),
    "mean_sum": (lambda x: x.mean(axis=0) * x.sum(), lambda x: x.mean(dim=0) * x.sum()),
    "index_reshape": (lambda x: x[1:, ::2].reshape(-1) ** 2, lambda x: x[1:, ::2].reshape(-1) ** 2),
    "matmul": (lambda x: (x @ x.T) ** 2, lambda x: (x @ x.T) ** 2),
}


def second_order(f, x, v):
    """(grad of sum f, Hessian-vector product H v) via create_graph."""
    (g,) = pb.autograd.grad(f(x).sum(), [x], create_graph=True)
    (hv,) = pb.autograd.grad((g * v).sum(), [x])
    return g, hv


@pytest.mark.parametrize("name", list(PAIRS))
def test_hvp_matches_torch(name):
    rng = np.random.default_rng(3)
    xa = rng.standard_normal((3, 4))
    xa = np.where(np.abs(xa) < 0.05, 0.4, xa)
    v = rng.standard_normal((3, 4))
    f, tf = PAIRS[name]
    x = pb.tensor(xa, requires_grad=True)
    g, hv = second_order(f, x, v)
    tx = torch.tensor(xa, requires_grad=True)
    (tg,) = torch.autograd.grad(tf(tx).sum(), [tx], create_graph=True)
    (thv,) = torch.autograd.grad((tg * torch.tensor(v)).sum(), [tx])
    np.testing.assert_allclose(g.numpy(), tg.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(hv.numpy(), thv.numpy(), rtol=1e-9, atol=1e-11)


def test_d2_dx2_scalar():
    x = pb.tensor(0.7, dtype=pb.float64, requires_grad=True)
    y = x.tanh() * x.exp()
    (d1,) = pb.autograd.grad(y, [x], create_graph=True)
    (d2,) = pb.autograd.grad(d1, [x], create_graph=True)
    (d3,) = pb.autograd.grad(d2, [x])
    tx = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    ty = torch.tanh(tx) * torch.exp(tx)
    (t1,) = torch.autograd.grad(ty, [tx], create_graph=True)
    (t2,) = torch.autograd.grad(t1, [tx], create_graph=True)
    (t3,) = torch.autograd.grad(t2, [tx])
    for a, b in [(d1, t1), (d2, t2), (d3, t3)]:
        assert a.item() == pytest.approx(b.item(), rel=1e-12)


@pytest.mark.parametrize("act", ["identity", "relu", "sigmoid", "tanh", "elu", "gelu", "softplus"])
def test_linear_layer_second_order(act):
    """Fused dense: gradient-norm penalty (double backward through x, W and b)."""
    rng = np.random.default_rng(5)
    xa, wa, ba = rng.standard_normal((4, 3)), rng.standard_normal((3, 2)), rng.standard_normal(2)
    tacts = {"identity": lambda z: z, "relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
             "elu": TF.elu, "gelu": TF.gelu, "softplus": TF.softplus}
    kw = {"alpha": 1.0} if act == "elu" else {}
    x, w, b = (pb.tensor(a, requires_grad=True) for a in (xa, wa, ba))
    y = F.linear(x, w, b, act, **kw).sum() * 0.5 + (F.linear(x, w, b, act, **kw) ** 2).sum()
    gs = pb.autograd.grad(y, [x, w, b], create_graph=True)
    pen = sum((g * g).sum() for g in gs)
    hs = pb.autograd.grad(pen, [x, w, b])
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (xa, wa, ba))
    ty = tacts[act](tx @ tw + tb).sum() * 0.5 + (tacts[act](tx @ tw + tb) ** 2).sum()
    tgs = torch.autograd.grad(ty, [tx, tw, tb], create_graph=True)
    tpen = sum((g * g).sum() for g in tgs)
    ths = torch.autograd.grad(tpen, [tx, tw, tb])
    for a, b_ in zip(hs, ths):
        np.testing.assert_allclose(a.numpy(), b_.numpy(), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("loss", ["ce", "mse", "bce"])
def test_losses_second_order(loss):
    rng = np.random.default_rng(9)
    za = rng.standard_normal((5, 3))
    if loss == "ce":
        t = rng.integers(0, 3, 5)
        f = lambda z: F.cross_entropy(z, t)
        tf = lambda z: TF.cross_entropy(z, torch.from_numpy(t))
    elif loss == "mse":
        t = rng.standard_normal((5, 3))
        f = lambda z: F.mse_loss(z ** 2, t)
        tf = lambda z: TF.mse_loss(z ** 2, torch.from_numpy(t))
    else:
        t = rng.random((5, 3))
        f = lambda z: F.binary_cross_entropy_with_logits(z, t, "sum")
        tf = lambda z: TF.binary_cross_entropy_with_logits(z, torch.from_numpy(t), reduction="sum")
    v = rng.standard_normal((5, 3))
    z = pb.tensor(za, requires_grad=True)
    (g,) = pb.autograd.grad(f(z), [z], create_graph=True)
    (hv,) = pb.autograd.grad((g * v).sum(), [z])
    tz = torch.tensor(za, requires_grad=True)
    (tg,) = torch.autograd.grad(tf(tz), [tz], create_graph=True)
    (thv,) = torch.autograd.grad((tg * torch.tensor(v)).sum(), [tz])
    np.testing.assert_allclose(hv.numpy(), thv.numpy(), rtol=1e-9, atol=1e-11)


def test_mlp_hessian_vector_product():
    rng = np.random.default_rng(11)
    pb.manual_seed(0)
    model = pb.nn.Sequential(pb.nn.Linear(3, 5, dtype=pb.float64), pb.nn.Tanh(),
                             pb.nn.Linear(5, 2, dtype=pb.float64))
    x = rng.standard_normal((4, 3))
    y = rng.integers(0, 2, 4)
    params = list(model.parameters())
    vs = [rng.standard_normal(p.shape) for p in params]
    loss = pb.nn.CrossEntropyLoss()(model(x), y)
    gs = pb.autograd.grad(loss, params, create_graph=True)
    hv = pb.autograd.grad(sum((g * v).sum() for g, v in zip(gs, vs)), params)

    tm = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2)).double()
    with torch.no_grad():
        tm[0].weight.copy_(torch.from_numpy(params[0].numpy().T))
        tm[0].bias.copy_(torch.from_numpy(params[1].numpy()))
        tm[2].weight.copy_(torch.from_numpy(params[2].numpy().T))
        tm[2].bias.copy_(torch.from_numpy(params[3].numpy()))
    tparams = [tm[0].weight, tm[0].bias, tm[2].weight, tm[2].bias]
    tl = torch.nn.CrossEntropyLoss()(tm(torch.from_numpy(x)), torch.from_numpy(y))
    tgs = torch.autograd.grad(tl, tparams, create_graph=True)
    tvs = [torch.from_numpy(vs[0].T.copy()), torch.from_numpy(vs[1]), torch.from_numpy(vs[2].T.copy()),
           torch.from_numpy(vs[3])]
    thv = torch.autograd.grad(sum((g * v).sum() for g, v in zip(tgs, tvs)), tparams)
    for k, (a, b) in enumerate(zip(hv, thv)):
        bn = b.numpy().T if k in (0, 2) else b.numpy()
        np.testing.assert_allclose(a.numpy(), bn, rtol=1e-9, atol=1e-11)


def test_functional_jacobian_vjp_jvp_hvp():
    from torch.autograd import functional as TAF
    rng = np.random.default_rng(2)
    xa = rng.standard_normal(4)
    v_out = rng.standard_normal(3)
    v_in = rng.standard_normal(4)
    W = rng.standard_normal((4, 3))

    def f(x):
        return F.tanh(x @ W) * 2

    def tf(x):
        return torch.tanh(x @ torch.from_numpy(W)) * 2

    J = pb.autograd.functional.jacobian(f, xa)
    np.testing.assert_allclose(J.numpy(), TAF.jacobian(tf, torch.tensor(xa)).numpy(), rtol=1e-12)
    out, vj = pb.autograd.functional.vjp(f, xa, v_out)
    tout, tvj = TAF.vjp(tf, torch.tensor(xa), torch.tensor(v_out))
    np.testing.assert_allclose(out.numpy(), tout.numpy(), rtol=1e-12)
    np.testing.assert_allclose(vj.numpy(), tvj.numpy(), rtol=1e-12)
    out, jv = pb.autograd.functional.jvp(f, xa, v_in)
    tout, tjv = TAF.jvp(tf, torch.tensor(xa), torch.tensor(v_in))
    np.testing.assert_allclose(jv.numpy(), tjv.numpy(), rtol=1e-12)
    out, hv = pb.autograd.functional.hvp(lambda x: (f(x) ** 2).sum(), xa, v_in)
    tout, thv = TAF.hvp(lambda x: (tf(x) ** 2).sum(), torch.tensor(xa), torch.tensor(v_in))
    np.testing.assert_allclose(hv.numpy(), thv.numpy(), rtol=1e-10)
