"""Bad input found by an audit to give silent garbage or an unclear error, each now refused
with an exception that names what was wrong (or, for pb.compile, noticed and handled):
edits of a compiled model, wrong weight shapes, broadcast BCE targets, the environment,
optimiser and scheduler settings, partly overlapping kernel outputs, complex inputs,
class indices that do not fit, and objects pb.save cannot write."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import pybackprop as pb
from pybackprop import _core
from pybackprop.nn import functional as F


def mlp(seed=0):
    pb.manual_seed(seed)
    return pb.nn.Sequential(pb.nn.Linear(4, 8, dtype="float64"), pb.nn.LeakyReLU(0.01),
                            pb.nn.Linear(8, 3, dtype="float64"))


X = np.random.default_rng(5).standard_normal((6, 4))
Y = np.array([0, 1, 2, 0, 1, 2])


# ---------------------------------------------------------------- pb.compile sees edits

@pytest.mark.parametrize("edit", ["slope", "activation", "bias", "reduction"])
def test_compiled_step_follows_edits_of_the_model_and_loss(edit):
    model, twin = mlp(), mlp()
    loss_fn, twin_loss = pb.nn.CrossEntropyLoss(), pb.nn.CrossEntropyLoss()
    step = pb.compile(model, loss_fn, pb.optim.SGD(model.parameters(), lr=0.1))
    opt = pb.optim.SGD(twin.parameters(), lr=0.1)
    step(X, Y)
    opt.zero_grad(); twin_loss(twin(X), Y).backward(); opt.step()
    for m, lf in ((model, loss_fn), (twin, twin_loss)):
        if edit == "slope":
            m[1].negative_slope = 0.5
        elif edit == "activation":
            m[1] = pb.nn.Tanh()
        elif edit == "bias":
            m[2].bias = None
        else:
            lf.reduction = "sum"
    if edit == "bias":          # the optimiser still holds the removed bias: eager, with a warning
        with pytest.warns(RuntimeWarning, match="runs eagerly"):
            got = step(X, Y)
    else:
        got = step(X, Y)
    want = twin_loss(twin(X), Y)
    opt.zero_grad(); want.backward(); opt.step()
    assert got == pytest.approx(want.item(), rel=1e-12)
    for p, q in zip(model.parameters(), twin.parameters()):
        np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=1e-12)


def test_compiled_inference_follows_edits():
    model = mlp()
    f = pb.compile(model)
    x = -np.ones((1, 4))
    np.testing.assert_allclose(f(x), model(x).numpy())
    model[1].negative_slope = 0.5
    np.testing.assert_allclose(f(x), model(x).numpy())
    model[1] = pb.nn.Sigmoid()
    np.testing.assert_allclose(f(x), model(x).numpy())
    model[0] = pb.nn.Linear(4, 8, dtype="float64")
    np.testing.assert_allclose(f(x), model(x).numpy())


def test_compiled_model_refuses_a_weight_of_the_wrong_shape():
    model = pb.nn.Sequential(pb.nn.Linear(4, 2))
    f = pb.compile(model)
    model[0].weight.data = np.ones((2, 4), np.float32)     # 8 elements, like (4, 2)
    with pytest.raises(ValueError, match=r"weight of shape \(2, 4\).*expected \(4, 2\)"):
        f(np.ones((3, 4), np.float32))


def test_hand_assigned_data_and_grad_that_are_not_arrays_are_named():
    model = pb.nn.Sequential(pb.nn.Linear(4, 2))
    f = pb.compile(model)
    model[0].weight.data = [[0.0] * 2] * 4
    with pytest.raises(TypeError, match=r"Linear\(4, 2\)\.weight\.data must be a numpy array, got list"):
        f(np.ones((3, 4), np.float32))
    lin = pb.nn.Linear(4, 2)
    opt = pb.optim.SGD(lin.parameters(), lr=0.1)
    lin.weight.grad = np.zeros((4, 2), np.float32)          # an array, not a Tensor
    with pytest.raises(TypeError, match=r"\.grad must be a pb\.Tensor or None, got ndarray"):
        opt.step()
    lin.weight.grad, lin.weight.data = pb.zeros(4, 2), [[0.0] * 2] * 4
    with pytest.raises(TypeError, match=r"\.data must be a numpy array, got list"):
        opt.step()


@pytest.mark.parametrize("x, words", [(np.ones((2, 4), complex), "complex128"), (None, "object"),
                                      (np.array(["a"]), "<U1")])
def test_compiled_paths_refuse_non_real_input(x, words):
    model = pb.nn.Sequential(pb.nn.Linear(4, 3))
    f = pb.compile(model)
    step = pb.compile(model, pb.nn.CrossEntropyLoss(), pb.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(TypeError, match=words):
        f(x)
    with pytest.raises(TypeError, match=words):
        step(x, np.array([0, 1]))


def test_compiled_step_checks_a_setting_changed_between_steps():
    model = pb.nn.Sequential(pb.nn.Linear(4, 3, dtype="float64"))
    opt = pb.optim.Adam(model.parameters())
    step = pb.compile(model, pb.nn.CrossEntropyLoss(), opt)
    step(X, Y[:6] % 3)
    before = [p.numpy().copy() for p in model.parameters()]
    for key, bad, err in (("lr", float("nan"), ValueError), ("lr", "abc", TypeError), ("betas", (0.9,), ValueError)):
        good = opt.param_groups[0][key]
        opt.param_groups[0][key] = bad
        with pytest.raises(err):
            step(X, Y)
        opt.param_groups[0][key] = good
    for p, b in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.numpy(), b)          # refused steps change nothing
    assert np.isfinite(step(X, Y))


# ---------------------------------------------------------------- losses and targets

def test_bce_with_logits_refuses_a_target_of_another_shape():
    with pytest.raises(ValueError, match=r"target of shape \(3,\) must have the input's shape \(3, 1\)"):
        pb.nn.BCEWithLogitsLoss()(pb.zeros((3, 1)), pb.tensor([1.0, 0.0, 1.0]))


@pytest.mark.parametrize("targets, shown", [(np.array([0, 1, 2 ** 64 - 1], np.uint64), "18446744073709551615"),
                                            (pb.tensor([1e30, 1.0, 2.0], dtype="float64"), "1e+30")])
def test_class_indices_that_do_not_fit_are_reported_as_given(targets, shown):
    with pytest.raises(ValueError, match=re.escape(f"target {shown} is not a class index")):
        F.cross_entropy(pb.zeros((3, 4)), targets)


def test_an_empty_batch_takes_an_empty_list_of_targets():
    loss = pb.nn.CrossEntropyLoss(reduction="sum")(pb.zeros((0, 4)), [])
    assert loss.item() == 0.0


# ---------------------------------------------------------------- optimisers and schedulers

def params():
    return [pb.nn.Parameter(pb.zeros(3))]


@pytest.mark.parametrize("make, err, words", [
    (lambda: pb.optim.SGD(params(), lr=float("nan")), ValueError, "learning rate value: nan"),
    (lambda: pb.optim.Adam(params(), lr=float("nan")), ValueError, "learning rate value: nan"),
    (lambda: pb.optim.SGD(params(), lr="a"), TypeError, "learning rate must be a number"),
    (lambda: pb.optim.Adam(params(), betas=(0.9,)), ValueError, "betas must be a pair"),
    (lambda: pb.optim.Adam(params(), betas=(0.9, 1.0)), ValueError, "beta2"),
    (lambda: pb.optim.RMSprop(params(), alpha=1.5), ValueError, "alpha value: 1.5"),
    (lambda: pb.optim.SGD([{"lr": 0.1}], lr=0.1), ValueError, "'params' entry"),
    (lambda: pb.optim.lr_scheduler.StepLR(pb.optim.SGD(params(), lr=0.1), step_size=0), ValueError, "step_size"),
    (lambda: pb.optim.lr_scheduler.CosineAnnealingLR(pb.optim.SGD(params(), lr=0.1), T_max=-3), ValueError,
     "T_max"),
    (lambda: pb.nn.Dropout("a"), TypeError, "dropout probability must be a number"),
    (lambda: pb.nn.Maxout(3, 2, pieces=-1), ValueError, "pieces must be >= 1"),
    (lambda: pb.datasets.spirals(2.5, 3, 0), TypeError, "n must be an int"),
])
def test_settings_are_checked_when_given(make, err, words):
    with pytest.raises(err, match=words):
        make()


def test_a_parameter_listed_twice_is_refused():
    p = pb.nn.Parameter(pb.zeros(3))
    with pytest.raises(ValueError, match="same parameter more than once"):
        pb.optim.SGD([p, p], lr=0.1)


def test_optimizer_load_state_dict_checks_before_changing_anything():
    w = pb.nn.Parameter(pb.zeros(3))
    adam = pb.optim.Adam([w])
    w.grad = pb.ones(3)
    adam.step()
    sgd = pb.optim.SGD([pb.nn.Parameter(pb.zeros(3))], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match=r"lacks \['amsgrad', 'betas', 'eps'\]: it was not saved by Adam"):
        adam.load_state_dict(sgd.state_dict())
    with pytest.raises(ValueError, match="no 'state' or 'param_groups'"):
        adam.load_state_dict({"foo": 1})
    with pytest.raises(TypeError, match="NoneType"):
        adam.load_state_dict(None)
    sd = adam.state_dict()
    sd["state"][0]["step"] = "x"
    with pytest.raises(ValueError, match="'step' of parameter 0 must be a number"):
        adam.load_state_dict(sd)
    sd = adam.state_dict()
    sd["state"][0]["exp_avg"] = np.zeros(4)
    with pytest.raises(ValueError, match=r"shape \(4,\), the parameter \(3,\)"):
        adam.load_state_dict(sd)
    assert adam.state[w]["step"] == 1                      # untouched by the refused loads


def test_module_load_state_dict_names_bad_values():
    lin = pb.nn.Linear(2, 2)
    with pytest.raises(TypeError, match="expects a dict"):
        lin.load_state_dict(None)
    with pytest.raises(RuntimeError, match="weight: a value of type str"):
        lin.load_state_dict({"weight": "abc", "bias": np.zeros(2)})
    with pytest.raises(RuntimeError, match="complex128"):
        lin.load_state_dict({"weight": np.ones((2, 2), complex), "bias": np.zeros(2)})


# ---------------------------------------------------------------- kernels: overlapping outputs

def test_elementwise_kernels_refuse_a_partly_overlapping_out():
    buf = np.random.default_rng(0).standard_normal(20)
    z, out = buf[:10], buf[5:15]
    with pytest.raises(ValueError, match="out partly overlaps z"):
        _core.act_forward("relu", z, out=out)
    with pytest.raises(ValueError, match="out partly overlaps upstream"):
        _core.act_backward("relu", z, z, out=out)
    y = z.copy()
    assert _core.act_forward("relu", y, out=y) is y                # exactly in place is fine
    np.testing.assert_array_equal(y, np.maximum(z, 0))


def test_dense_backward_refuses_outputs_sharing_memory_with_operands():
    rng = np.random.default_rng(0)
    dy, x, w = rng.standard_normal((4, 3)), rng.standard_normal((4, 5)), rng.standard_normal((5, 3))
    with pytest.raises(ValueError, match="dw_out shares memory with w"):
        _core.dense_backward(dy, None, x, w, dw_out=w)
    with pytest.raises(ValueError, match="db_out shares memory with w"):
        _core.dense_backward(dy, None, x, w, db_out=w[0])


# ---------------------------------------------------------------- environment, threads, save

def run_python(code, **env):
    return subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, **env), cwd="/")


@pytest.mark.parametrize("value", ["Generic", " generic", "GENERIC\n"])
def test_isa_variable_is_read_as_python_reads_it(value):
    r = run_python("import pybackprop as pb; print(pb.backend_info()['isa'])", PYBACKPROP_ISA=value)
    assert r.returncode == 0 and r.stdout.strip() == "generic", r.stderr


@pytest.mark.parametrize("value", ["abc", "0", "5000"])
def test_bad_thread_variable_warns(value):
    r = run_python("import pybackprop as pb; print(pb.get_num_threads())", PYBACKPROP_NUM_THREADS=value)
    assert r.returncode == 0 and f"PYBACKPROP_NUM_THREADS={value!r}" in r.stderr


def test_save_refuses_an_object_that_contains_itself(tmp_path):
    loop = []
    loop.append(loop)
    path = tmp_path / "loop.pb"
    with pytest.raises(ValueError, match="contains itself"):
        pb.save(loop, str(path))
    assert not path.exists()


def test_compiled_step_takes_float_class_targets_like_eager():
    model, twin = mlp(), mlp()
    step = pb.compile(model, pb.nn.CrossEntropyLoss(), pb.optim.SGD(model.parameters(), lr=0.1))
    opt = pb.optim.SGD(twin.parameters(), lr=0.1)
    y = pb.tensor(Y.astype(np.float64), dtype="float64")
    got = step(X, y)
    want = pb.nn.CrossEntropyLoss()(twin(X), y)
    opt.zero_grad(); want.backward(); opt.step()
    assert got == pytest.approx(want.item(), rel=1e-12)
    with pytest.raises(TypeError, match="integers"):
        step(X, pb.tensor([0.5, 1, 2, 0, 1, 2], dtype="float64"))
