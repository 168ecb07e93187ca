"""Points of the API contract (../shared/API.md) and of PyTorch's behaviour where the
contract is silent, each found broken by an audit and worked out here by hand: the
positional ``zeros(shape, dtype)``, 0-d tensors that stay 0-d, initialisers on numpy
arrays, tensor exponents, activation subclasses that override forward, SGD's
keyword-only options, ``autograd.grad`` at a non-leaf, Maxout on any leading
dimensions, ``autograd.functional``'s ``create_graph``/``strict``/tuple outputs, and
loss targets that broadcast."""
import os
import warnings

import numpy as np
import pytest

import pybackprop as pb
from pybackprop.autograd import functional as AF


def f64(x, requires_grad=False):
    return pb.tensor(np.asarray(x, dtype=np.float64), requires_grad=requires_grad)


# ---------------------------------------------------------------- zeros / ones

@pytest.mark.parametrize("make, fill", [(pb.zeros, 0.0), (pb.ones, 1.0)])
def test_zeros_ones_take_the_contracts_positional_form(make, fill):
    t = make((2, 3), pb.float64)
    assert t.shape == (2, 3) and t.dtype == np.float64 and np.all(t.numpy() == fill)
    assert make((2,), "float64", True).requires_grad
    assert make(3, np.float64).shape == (3,)
    assert make(2, 3).shape == (2, 3) and make(2, 3).dtype == np.float32
    assert make([2, 3]).shape == (2, 3)
    assert make(shape=(4,)).shape == (4,)
    assert make(()).shape == ()


@pytest.mark.parametrize("call, words", [
    (lambda: pb.zeros((2, 3), pb.float64, dtype=pb.float32), "dtype both"),
    (lambda: pb.zeros(2.5), "non-negative integers"),
    (lambda: pb.zeros(-1), "non-negative integers"),
    (lambda: pb.zeros((2,), "int32"), "unsupported dtype"),
    (lambda: pb.ones((2,), pb.float32, True, 7), "too many positional"),
    (lambda: pb.ones((2,), shape=(3,)), "both positionally and as shape="),
])
def test_zeros_ones_errors_name_the_problem(call, words):
    with pytest.raises(TypeError, match=words):
        call()


# ---------------------------------------------------------------- 0-d tensors

def test_zero_dimensional_tensors_stay_zero_dimensional(tmp_path):
    assert pb.nn.Parameter(pb.tensor(1.5)).shape == ()
    path = os.fspath(tmp_path / "scalars.pb")
    pb.save({"s": pb.tensor(3.0), "nested": [pb.tensor(2.0, dtype="float64")]}, path)
    back = pb.load(path)
    assert back["s"].shape == () and back["nested"][0].shape == ()
    # gradient accumulation into an existing .grad: d(x^3)/dx + d(x^2)/dx at 2 = 12 + 4
    x = f64(2.0, requires_grad=True)
    (x ** 3).backward(create_graph=True)
    (x ** 2).backward()
    assert x.grad.shape == () and x.grad.item() == 16.0
    # optimisers step a 0-d parameter in place: w = 1, g = 2w = 2, SGD lr 0.1 -> 0.8
    w = pb.nn.Parameter(pb.tensor(1.0, dtype="float64"))
    opt = pb.optim.SGD([w], lr=0.1, momentum=0.9)
    (w * w).backward()
    opt.step()
    assert w.shape == () and w.item() == pytest.approx(0.8)


# ---------------------------------------------------------------- init on numpy arrays

@pytest.mark.parametrize("init", [pb.nn.init.xavier_uniform_, pb.nn.init.xavier_normal_,
                                  pb.nn.init.kaiming_uniform_, pb.nn.init.kaiming_normal_,
                                  pb.nn.init.zeros_, lambda a: pb.nn.init.constant_(a, 0.25)])
def test_initialisers_fill_numpy_arrays_in_place(init):
    a = np.full((300, 200), 7.0, np.float32)
    assert init(a) is a and a.dtype == np.float32
    assert not np.any(a == 7.0)


def test_initialiser_bounds_on_numpy_match_the_formula():
    pb.manual_seed(0)
    a = np.zeros((300, 200))
    pb.nn.init.xavier_uniform_(a)                 # U(-sqrt(6/(300+200)), +...)
    bound = np.sqrt(6.0 / 500)
    assert np.abs(a).max() <= bound and np.abs(a).max() > 0.95 * bound


def test_initialiser_refuses_integer_arrays():
    with pytest.raises(TypeError, match="floating-point array"):
        pb.nn.init.zeros_(np.ones((2, 2), np.int64))


# ---------------------------------------------------------------- tensor exponents

def test_tensor_exponent_values_and_gradients_by_hand():
    x = f64([-2.0, 3.0, 0.0, 4.0], requires_grad=True)
    e = f64([2.0, 0.5, 2.0, -1.0], requires_grad=True)
    y = x ** e
    np.testing.assert_allclose(y.numpy(), [4.0, np.sqrt(3.0), 0.0, 0.25])
    y.sum().backward()
    # d/dx = e x^(e-1); d/de = x^e log x, 0 where x == 0, NaN for a negative base
    np.testing.assert_allclose(x.grad.numpy(), [-4.0, 0.5 / np.sqrt(3.0), 0.0, -1.0 / 16])
    eg = e.grad.numpy()
    assert np.isnan(eg[0])
    np.testing.assert_allclose(eg[1:], [np.sqrt(3.0) * np.log(3.0), 0.0, 0.25 * np.log(4.0)])


def test_zero_dimensional_exponents_give_real_powers_of_negative_bases():
    x = pb.tensor([-2.0, 3.0])
    np.testing.assert_array_equal((x ** pb.tensor(2.0)).numpy(), [4.0, 9.0])
    np.testing.assert_array_equal((x ** np.array(2.0)).numpy(), [4.0, 9.0])
    np.testing.assert_array_equal(((-2.0) ** pb.tensor([2.0, 3.0])).numpy(), [4.0, -8.0])
    np.testing.assert_array_equal((2.0 ** pb.tensor([2.0, 3.0])).numpy(), [4.0, 8.0])


def test_tensor_exponent_gradcheck_and_second_order():
    a = f64([1.5, 2.0, 0.7], requires_grad=True)
    b = f64([2.5, -1.0, 0.3], requires_grad=True)
    assert pb.autograd.gradcheck(lambda u, v: u ** v, (a, b))
    # d2/dx de of x^e at (2, 3) = x^(e-1) (1 + e log x) = 4 (1 + 3 log 2)
    x, e = f64([2.0], True), f64([3.0], True)
    (gx,) = pb.autograd.grad((x ** e).sum(), x, create_graph=True)
    (gxe,) = pb.autograd.grad(gx.sum(), e)
    assert gxe.item() == pytest.approx(4.0 * (1.0 + 3.0 * np.log(2.0)))
    x, e = f64([2.0], True), f64([3.0], True)
    (ge,) = pb.autograd.grad((x ** e).sum(), e, create_graph=True)
    (gex,) = pb.autograd.grad(ge.sum(), x)
    assert gex.item() == pytest.approx(4.0 * (1.0 + 3.0 * np.log(2.0)))


# ---------------------------------------------------------------- activation subclasses

class Doubled(pb.nn.ReLU):
    def forward(self, x):
        return x * 2


class PlusOne(pb.nn.Identity):
    def forward(self, x):
        return x + 1


class QuietReLU(pb.nn.ReLU):
    """A subclass that keeps ReLU's forward: still fused."""


@pytest.mark.parametrize("act, fn", [(Doubled(), lambda z: 2 * z), (PlusOne(), lambda z: z + 1),
                                     (QuietReLU(), lambda z: np.maximum(z, 0))])
def test_sequential_and_compile_call_an_overridden_forward(act, fn):
    pb.manual_seed(1)
    model = pb.nn.Sequential(pb.nn.Linear(3, 4, dtype="float64"), act)
    x = np.linspace(-1, 1, 6).reshape(2, 3)
    want = fn(x @ model[0].weight.numpy() + model[0].bias.numpy())
    np.testing.assert_allclose(model(x).numpy(), want, rtol=1e-12)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = pb.compile(model)(x)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    fell_back = any("runs eagerly" in str(w.message) for w in caught)
    assert fell_back == (type(act) is not QuietReLU)


# ---------------------------------------------------------------- SGD

def test_sgd_options_after_momentum_are_keyword_only():
    w = pb.nn.Parameter(pb.zeros(2))
    with pytest.raises(TypeError, match="positional"):
        pb.optim.SGD([w], 0.1, 0.9, True)         # nesterov to the contract, dampening to PyTorch
    group = pb.optim.SGD([w], 0.1, 0.9, nesterov=True, weight_decay=1e-4).param_groups[0]
    assert group["nesterov"] is True and group["dampening"] == 0 and group["weight_decay"] == 1e-4


# ---------------------------------------------------------------- autograd.grad at a non-leaf

def test_grad_at_a_non_leaf_leaves_the_graph_below_it_usable():
    x = f64([1.0, 2.0], requires_grad=True)
    h = x.exp()
    y = (h * h).sum()
    (gh,) = pb.autograd.grad(y, h)
    np.testing.assert_allclose(gh.numpy(), 2 * np.exp([1.0, 2.0]))
    h.sum().backward()                              # exp's node was not run, so not freed
    np.testing.assert_allclose(x.grad.numpy(), np.exp([1.0, 2.0]))
    with pytest.raises(RuntimeError, match="second time"):
        pb.autograd.grad(y, h)                      # the part that ran was freed


def test_grad_at_a_non_leaf_and_below_it_together():
    x = f64([1.0, 2.0], requires_grad=True)
    h = x.exp()
    gh, gx = pb.autograd.grad((h * h).sum(), [h, x])
    np.testing.assert_allclose(gh.numpy(), 2 * np.exp([1.0, 2.0]))
    np.testing.assert_allclose(gx.numpy(), 2 * np.exp([2.0, 4.0]))


# ---------------------------------------------------------------- Maxout

@pytest.mark.parametrize("shape", [(4,), (3, 4), (2, 5, 4)])
def test_maxout_takes_any_leading_dimensions(shape):
    pb.manual_seed(2)
    m = pb.nn.Maxout(4, 3, pieces=2, dtype="float64")
    x = np.random.default_rng(0).standard_normal(shape)
    w, b = m.weight.numpy(), m.bias.numpy()
    want = np.maximum(x @ w[0] + b[0], x @ w[1] + b[1])
    y = m(x)
    assert y.shape == shape[:-1] + (3,)
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-12)
    assert pb.autograd.gradcheck(lambda t: m(t), (f64(x, True),))


def test_maxout_names_a_feature_mismatch():
    with pytest.raises(ValueError, match=r"x \(2, 5\) and weight \(2, 4, 3\)"):
        pb.nn.Maxout(4, 3)(np.zeros((2, 5)))


# ---------------------------------------------------------------- autograd.functional

def test_jacobian_create_graph_is_differentiable():
    # f(x) = s x with s = sum x^3: J = s I + 3 x (x^2)^T, at (1, 2) [[12, 12], [6, 33]]
    x = f64([1.0, 2.0], requires_grad=True)
    J = AF.jacobian(lambda t: (t ** 3).sum() * t, x, create_graph=True)
    np.testing.assert_allclose(J.numpy(), [[9 + 3, 12], [6, 9 + 24]])
    assert J.requires_grad
    J.sum().backward()
    # sum_ij J_ij = 2 s + 3 (sum x)(sum x^2), s = sum x^3; its derivative in x_k is
    # 6 x_k^2 + 3 (sum x^2) + 6 x_k (sum x): at (1, 2), 6 + 15 + 18 and 24 + 15 + 36
    np.testing.assert_allclose(x.grad.numpy(), [39.0, 75.0])
    assert not AF.jacobian(lambda t: t * 2, x).requires_grad


def test_jacobian_of_tuple_outputs_and_inputs():
    a, b = f64([1.0, 2.0]), f64([3.0, 4.0])
    (Jaa, Jab), (Jba, Jbb) = AF.jacobian(lambda u, v: (u * v, u.sum() + v), (a, b))
    np.testing.assert_allclose(Jaa.numpy(), np.diag([3.0, 4.0]))
    np.testing.assert_allclose(Jab.numpy(), np.diag([1.0, 2.0]))
    np.testing.assert_allclose(Jba.numpy(), np.ones((2, 2)))
    np.testing.assert_allclose(Jbb.numpy(), np.eye(2))


def test_strict_refuses_an_independent_input():
    a, b = f64([1.0]), f64([2.0])
    with pytest.raises(RuntimeError, match="independent of input 1"):
        AF.jacobian(lambda u, v: u * 2, (a, b), strict=True)
    with pytest.raises(RuntimeError, match="independent of input 1"):
        AF.vjp(lambda u, v: u * 2, (a, b), np.ones(1), strict=True)
    with pytest.raises(RuntimeError, match="independent of input 1"):
        AF.jvp(lambda u, v: u * 2, (a, b), (np.ones(1), np.ones(1)), strict=True)
    np.testing.assert_array_equal(AF.jacobian(lambda u, v: u * 2, (a, b))[1].numpy(), [[0.0]])


@pytest.mark.parametrize("fn", [AF.vjp, AF.jvp])
def test_vjp_jvp_create_graph(fn):
    # x^3 with v = 1: both products are 3 x^2, whose derivative is 6 x
    x = f64([1.0, 2.0], requires_grad=True)
    out, prod = fn(lambda t: t ** 3, x, np.ones(2), create_graph=True)
    np.testing.assert_allclose(prod.numpy(), [3.0, 12.0])
    prod.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 12.0])
    out, prod = fn(lambda t: t ** 3, x, np.ones(2))
    assert not prod.requires_grad and not out.requires_grad


# ---------------------------------------------------------------- broadcast loss targets

def test_mse_warns_when_the_target_broadcasts():
    with pytest.warns(UserWarning, match=r"broadcast to \(4, 4\)"):
        loss = pb.nn.MSELoss()(pb.zeros(4, 1), np.arange(4.0, dtype=np.float32))
    assert loss.item() == pytest.approx(np.mean(np.arange(4.0) ** 2))   # (N, N): as in PyTorch


def test_compiled_step_runs_broadcast_targets_eagerly_with_one_warning():
    pb.manual_seed(3)
    x = np.random.default_rng(1).standard_normal((16, 4)).astype(np.float32)
    y = np.ones(16, np.float32)
    model = pb.nn.Sequential(pb.nn.Linear(4, 1))
    twin = pb.nn.Sequential(pb.nn.Linear(4, 1))
    twin.load_state_dict(model.state_dict())
    step = pb.compile(model, pb.nn.MSELoss(), pb.optim.Adam(model.parameters()))
    opt = pb.optim.Adam(twin.parameters())
    for _ in range(3):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = step(x, y)
            opt.zero_grad()
            want = pb.nn.MSELoss()(twin(x), y)
            want.backward()
            opt.step()
        assert sum("runs eagerly" in str(w.message) for w in caught) == 1
        assert got == want.item()
    # the right shape goes native again, from the same state
    yy = y.reshape(16, 1)
    got = step(x, yy)
    opt.zero_grad()
    want = pb.nn.MSELoss()(twin(x), yy)
    want.backward()
    opt.step()
    assert got == pytest.approx(want.item(), rel=1e-6)
    with pytest.raises(ValueError):
        step(x, np.ones((3, 5), np.float32))
