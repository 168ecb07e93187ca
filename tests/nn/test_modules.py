"""Module mechanics, Sequential fusion, init, dropout, losses vs PyTorch."""
import math

import numpy as np
import pytest

import pybackprop as pb
import pybackprop.nn.functional as F
from pybackprop import ops


def mlp(dtype=None):
    return pb.nn.Sequential(pb.nn.Linear(4, 8, dtype=dtype), pb.nn.ReLU(), pb.nn.Dropout(0.5),
                            pb.nn.Linear(8, 3, dtype=dtype))


def test_parameters_and_names():
    m = mlp()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["0.weight", "0.bias", "3.weight", "3.bias"]
    assert [p.shape for p in m.parameters()] == [(4, 8), (8,), (8, 3), (3,)]
    assert all(isinstance(p, pb.nn.Parameter) and p.requires_grad and p.is_leaf for p in m.parameters())
    assert len(list(m.children())) == 4 and len(list(m.modules())) == 5
    assert isinstance(m[0], pb.nn.Linear) and len(m) == 4
    r = repr(m)
    assert "(0): Linear(in_features=4, out_features=8, bias=True)" in r and "Dropout(p=0.5)" in r


def test_custom_module_registration_and_shared_params():
    class Net(pb.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = pb.nn.Linear(2, 2)
            self.b = self.a                     # shared: listed once
            self.scale = pb.nn.Parameter(np.ones(1, np.float32))
            self.not_a_param = np.zeros(3)

        def forward(self, x):
            return self.b(self.a(x)) * self.scale

    n = Net()
    assert [k for k, _ in n.named_parameters()] == ["scale", "a.weight", "a.bias"]
    assert n(np.ones((1, 2), np.float32)).shape == (1, 2)
    with pytest.raises(TypeError):
        n.scale = np.ones(1)


def test_state_dict_and_strict_loading():
    pb.manual_seed(0)
    a, b = mlp(), mlp()
    sd = a.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "3.weight", "3.bias"]
    res = b.load_state_dict(sd)
    assert res.missing_keys == [] and res.unexpected_keys == []
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy())
        assert not np.shares_memory(p.numpy(), q.numpy())
    bad = dict(sd)
    del bad["0.bias"]
    bad["extra.weight"] = np.zeros(1)
    with pytest.raises(RuntimeError) as e:
        b.load_state_dict(bad)
    assert '"0.bias"' in str(e.value) and '"extra.weight"' in str(e.value)
    assert "Missing key(s)" in str(e.value) and "Unexpected key(s)" in str(e.value)
    res = b.load_state_dict(bad, strict=False)
    assert res.missing_keys == ["0.bias"] and res.unexpected_keys == ["extra.weight"]
    wrong = dict(sd)
    wrong["0.weight"] = np.zeros((8, 4))
    with pytest.raises(RuntimeError, match=r"0\.weight.*\(8, 4\).*\(4, 8\)"):
        b.load_state_dict(wrong)


def test_train_eval_and_dropout():
    m = mlp()
    assert m.training and all(c.training for c in m.modules())
    m.eval()
    assert not m.training and not m[2].training
    x = np.ones((5, 4), np.float32)
    np.testing.assert_array_equal(m(x).numpy(), m(x).numpy())     # eval: deterministic
    m.train()
    pb.manual_seed(42)
    y1 = m(x).numpy()
    pb.manual_seed(42)
    y2 = m(x).numpy()
    np.testing.assert_array_equal(y1, y2)                          # reproducible under manual_seed


def test_dropout_statistics_and_scaling():
    pb.manual_seed(1)
    x = pb.ones(200, 100, requires_grad=True)
    y = pb.nn.Dropout(0.3)(x)
    vals = np.unique(y.numpy())
    np.testing.assert_allclose(vals, [0.0, 1 / 0.7], rtol=1e-6)
    assert abs((y.numpy() == 0).mean() - 0.3) < 0.02
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), y.numpy())          # same mask, same scale
    assert np.all(F.dropout(x, 1.0).numpy() == 0)
    assert F.dropout(x, 0.5, training=False) is x


def test_zero_grad():
    m = mlp()
    m(np.ones((2, 4), np.float32)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_linear_init_is_pytorch_default_and_seeded():
    pb.manual_seed(3)
    lin = pb.nn.Linear(50, 40)
    bound = 1 / math.sqrt(50)
    w = lin.weight.numpy()
    assert w.shape == (50, 40) and w.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.01
    assert np.abs(lin.bias.numpy()).max() <= bound
    pb.manual_seed(3)
    np.testing.assert_array_equal(pb.nn.Linear(50, 40).weight.numpy(), w)
    assert pb.nn.Linear(2, 3, dtype=pb.float64).weight.dtype == np.float64
    assert pb.nn.Linear(2, 3, bias=False).bias is None


@pytest.mark.parametrize("fn,expected_std", [
    ("xavier_uniform_", math.sqrt(2 / (300 + 100))), ("xavier_normal_", math.sqrt(2 / (300 + 100))),
    ("kaiming_uniform_", math.sqrt(2) / math.sqrt(300)), ("kaiming_normal_", math.sqrt(2) / math.sqrt(300))])
def test_init_functions_use_in_out_fans(fn, expected_std):
    pb.manual_seed(0)
    w = pb.nn.Parameter(np.empty((300, 100), np.float32))            # (in, out): fan_in = 300
    kw = {"nonlinearity": "relu"} if fn.startswith("kaiming") else {}
    out = getattr(pb.nn.init, fn)(w, **kw)
    assert out is w
    assert abs(w.numpy().std() / expected_std - 1) < 0.03
    pb.nn.init.zeros_(w)
    assert not w.numpy().any()
    pb.nn.init.constant_(w, 0.25)
    assert np.all(w.numpy() == 0.25)
    with pytest.raises(ValueError):
        pb.nn.init.xavier_uniform_(pb.nn.Parameter(np.zeros(3)))


def test_kaiming_fan_out_mode():
    pb.manual_seed(0)
    w = pb.nn.Parameter(np.empty((100, 400)))
    pb.nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert abs(w.numpy().std() / (math.sqrt(2) / 20) - 1) < 0.03


class _Counter:
    def __init__(self, monkeypatch, names):
        self.calls = {n: 0 for n in names}
        for n in names:
            real = getattr(ops.K, n)

            def wrapped(*a, _real=real, _n=n, **k):
                self.calls[_n] += 1
                return _real(*a, **k)
            monkeypatch.setattr(ops.K, n, wrapped)


KERNELS = ["dense_forward", "dense_backward", "act_forward", "act_backward", "gemm",
           "softmax_cross_entropy", "squared_error", "bce_with_logits", "sgd_update", "adam_update",
           "rmsprop_update"]


@pytest.mark.parametrize("act", [pb.nn.ReLU, pb.nn.Sigmoid, pb.nn.Tanh, pb.nn.GELU, pb.nn.ELU,
                                 pb.nn.LeakyReLU, pb.nn.Softplus, pb.nn.Identity])
def test_sequential_fuses_linear_and_activation(monkeypatch, act):
    c = _Counter(monkeypatch, KERNELS)
    m = pb.nn.Sequential(pb.nn.Linear(5, 7), act(), pb.nn.Linear(7, 3))
    x = np.ones((4, 5), np.float32)
    loss = pb.nn.CrossEntropyLoss()(m(x), [0, 1, 2, 0])
    assert c.calls["dense_forward"] == 2 and c.calls["act_forward"] == 0 and c.calls["gemm"] == 0
    assert c.calls["softmax_cross_entropy"] == 1
    loss.backward()
    assert c.calls["dense_backward"] == 2 and c.calls["act_backward"] == 0
    assert loss.grad_fn.name == "cross_entropy"
    assert [n.name for n in (loss.grad_fn.inputs[0].grad_fn,)] == ["dense"]
    opt = pb.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    opt.step()
    assert c.calls["sgd_update"] == 4


def test_unfused_paths_also_use_kernels(monkeypatch):
    c = _Counter(monkeypatch, KERNELS)
    x = pb.tensor(np.ones((3, 4)), requires_grad=True)
    w = pb.tensor(np.ones((4, 2)), requires_grad=True)
    y = F.sigmoid(x @ w)
    pb.nn.MSELoss()(y, np.zeros((3, 2))).backward()
    assert c.calls["gemm"] == 3 and c.calls["act_forward"] == 1 and c.calls["act_backward"] == 1
    assert c.calls["squared_error"] == 1
    F.binary_cross_entropy_with_logits(x, np.zeros((3, 4)))
    assert c.calls["bce_with_logits"] == 1
    lin = pb.nn.Linear(4, 2)
    lin(np.ones((1, 4), np.float32)).sum().backward()
    assert c.calls["dense_forward"] == 1 and c.calls["dense_backward"] == 1
    pb.optim.Adam(lin.parameters()).step()
    pb.optim.RMSprop(lin.parameters()).step()
    assert c.calls["adam_update"] == 2 and c.calls["rmsprop_update"] == 2


def test_sequential_plan_follows_edits():
    m = pb.nn.Sequential(pb.nn.Linear(2, 2), pb.nn.ReLU())
    x = np.array([[1.0, -1.0]], np.float32)
    with pb.no_grad():
        m[0].weight.copy_(np.eye(2))
        m[0].bias.zero_()
    np.testing.assert_array_equal(m(x).numpy(), [[1, 0]])
    m[1] = pb.nn.Identity()
    np.testing.assert_array_equal(m(x).numpy(), [[1, -1]])
    m.append(pb.nn.Tanh())
    np.testing.assert_allclose(m(x).numpy(), np.tanh([[1, -1]]), rtol=1e-6)


def test_maxout_module_shapes_and_value():
    pb.manual_seed(0)
    m = pb.nn.Maxout(3, 2, pieces=4)
    assert m.weight.shape == (4, 3, 2) and m.bias.shape == (4, 2)
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    ref = np.max(np.einsum("ni,kio->kno", x, m.weight.numpy()) + m.bias.numpy()[:, None, :], axis=0)
    np.testing.assert_allclose(m(x).numpy(), ref, rtol=1e-5, atol=1e-6)


torch = None
try:
    import torch
except ImportError:
    pass
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed (pip install torch==2.13.0)")


@needs_torch
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_losses_match_torch(reduction, dtype, isa):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((33, 17)).astype(dtype) * 5
    t = rng.integers(0, 17, 33)
    yv = rng.standard_normal((33, 17)).astype(dtype)
    yb = rng.random((33, 17)).astype(dtype)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    cases = [
        (pb.nn.CrossEntropyLoss(reduction), torch.nn.CrossEntropyLoss(reduction=reduction), t, torch.from_numpy(t)),
        (pb.nn.MSELoss(reduction), torch.nn.MSELoss(reduction=reduction), yv, torch.from_numpy(yv)),
        (pb.nn.BCEWithLogitsLoss(reduction), torch.nn.BCEWithLogitsLoss(reduction=reduction), yb,
         torch.from_numpy(yb)),
    ]
    for ours, theirs, target, ttarget in cases:
        x = pb.tensor(z, requires_grad=True)
        tx = torch.tensor(z, requires_grad=True)
        l, tl = ours(x, target), theirs(tx, ttarget)
        assert l.dtype == dtype and l.shape == tuple(tl.shape)
        np.testing.assert_allclose(l.numpy(), tl.detach().numpy(), **tol)
        go = rng.standard_normal(l.shape).astype(dtype)
        l.backward(go)
        tl.backward(torch.from_numpy(go))
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), **tol)


def test_cross_entropy_targets_validation():
    z = pb.tensor(np.zeros((3, 4)))
    with pytest.raises(TypeError):
        F.cross_entropy(z, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError):
        F.cross_entropy(z, [0, 1])
    with pytest.raises(ValueError):
        F.cross_entropy(z, [0, 1, 4])
    assert F.cross_entropy(z, [0, 1, 3]).item() == pytest.approx(math.log(4))
    with pytest.raises(ValueError):
        pb.nn.MSELoss(reduction="avg")


@needs_torch
@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "leaky_relu", "elu", "gelu", "gelu_tanh",
                                  "softplus", "softmax", "log_softmax"])
def test_functional_activations_match_torch(name, isa):
    rng = np.random.default_rng(1)
    z = (rng.standard_normal((7, 9)) * 4).astype(np.float64)
    pairs = {
        "relu": (F.relu, torch.relu), "sigmoid": (F.sigmoid, torch.sigmoid), "tanh": (F.tanh, torch.tanh),
        "leaky_relu": (lambda x: F.leaky_relu(x, 0.05), lambda x: torch.nn.functional.leaky_relu(x, 0.05)),
        "elu": (lambda x: F.elu(x, 1.5), lambda x: torch.nn.functional.elu(x, 1.5)),
        "gelu": (F.gelu, torch.nn.functional.gelu),
        "gelu_tanh": (lambda x: F.gelu(x, "tanh"), lambda x: torch.nn.functional.gelu(x, approximate="tanh")),
        "softplus": (lambda x: F.softplus(x, 0.5, 3), lambda x: torch.nn.functional.softplus(x, 0.5, 3)),
        "softmax": (lambda x: F.softmax(x, 0), lambda x: torch.softmax(x, 0)),
        "log_softmax": (F.log_softmax, lambda x: torch.log_softmax(x, -1)),
    }
    f, tf = pairs[name]
    x = pb.tensor(z, requires_grad=True)
    tx = torch.tensor(z, requires_grad=True)
    y, ty = f(x), tf(tx)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    go = rng.standard_normal(z.shape)
    y.backward(go)
    ty.backward(torch.from_numpy(go))
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-11, atol=1e-13)


def test_softmax_dim_out_of_range_and_0d_input():
    x = pb.tensor([[1.0, 2.0]])
    for f in (F.softmax, F.log_softmax):
        with pytest.raises(IndexError, match=r"dim 2 .*ndim 2"):
            f(x, dim=2)
        with pytest.raises(IndexError, match=r"dim -3 .*ndim 2"):
            f(x, dim=-3)
        with pytest.raises(ValueError, match="0-d"):
            f(pb.tensor(1.0))


def test_max_of_0d_with_axis_is_a_clear_error():
    with pytest.raises(IndexError, match="0-d"):
        pb.tensor(3.0).max(axis=0)
    with pytest.raises(IndexError, match="ndim 2"):
        pb.tensor([[1.0]]).max(axis=(0, 5))


def test_linear_validates_input_and_sizes():
    with pytest.raises(ValueError, match=r"shape \(\)"):
        pb.nn.Linear(3, 2)(pb.tensor(1.0))
    with pytest.raises(TypeError, match="in_features"):
        pb.nn.Linear(2.5, 2)
    with pytest.raises(TypeError, match="out_features"):
        pb.nn.Linear(2, True)
    with pytest.raises(ValueError, match=">= 0"):
        pb.nn.Linear(-1, 2)
    with pytest.raises(TypeError, match="pieces"):
        pb.nn.Maxout(2, 2, pieces=2.0)
    assert pb.nn.Linear(np.int64(3), 0).weight.shape == (3, 0)


def test_numpy_scalars_are_weak_like_python_scalars():
    x = pb.tensor([1.0])
    assert (x * np.float64(2)).dtype == pb.float32
    assert (np.float64(2) * x).dtype == pb.float32
    assert (x + np.int64(1)).dtype == pb.float32
    assert (x - np.float32(1)).dtype == pb.float32


def test_mean_of_empty_is_nan_without_warnings():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = pb.tensor(np.zeros((0, 3)), requires_grad=True)
        m = t.mean()
        m.backward()
        assert np.isnan(m.item()) and t.grad.shape == (0, 3)
        t = pb.tensor(np.zeros((0, 3)), requires_grad=True)
        m = t.mean(axis=0)
        m.sum().backward()
        assert m.shape == (3,) and np.all(np.isnan(m.numpy()))
