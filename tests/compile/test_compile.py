"""pb.compile: a captured training step must equal the eager step bit for bit."""
import time
import warnings

import numpy as np
import pytest

import pybackprop as pb
from pybackprop import _core

nn = pb.nn

OPTIMIZERS = {
    "sgd": lambda ps: pb.optim.SGD(ps, lr=0.1),
    "sgd_nesterov_wd": lambda ps: pb.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "sgd_dampening": lambda ps: pb.optim.SGD(ps, lr=0.05, momentum=0.5, dampening=0.3),
    "adam": lambda ps: pb.optim.Adam(ps, lr=1e-2, weight_decay=1e-4),
    "adam_amsgrad": lambda ps: pb.optim.Adam(ps, lr=1e-2, amsgrad=True),
    "adamw": lambda ps: pb.optim.AdamW(ps, lr=1e-2),
    "rmsprop": lambda ps: pb.optim.RMSprop(ps, lr=1e-2),
    "rmsprop_centered_momentum": lambda ps: pb.optim.RMSprop(ps, lr=1e-2, momentum=0.5, centered=True,
                                                             weight_decay=1e-3),
}

ACTIVATIONS = [nn.ReLU, nn.Tanh, nn.Sigmoid, lambda: nn.LeakyReLU(0.1), lambda: nn.ELU(0.7), nn.GELU,
               lambda: nn.GELU(approximate="tanh"), lambda: nn.Softplus(beta=2.0, threshold=5.0)]


def make_mlp(seed, dtype, act=nn.ReLU, sizes=(13, 17, 9, 5), bias=True):
    pb.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(a, b, bias=bias, dtype=dtype))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def data(dtype, batch=33, n_in=13, n_out=5, kind="cross_entropy", seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, n_in)).astype(dtype)
    if kind == "cross_entropy":
        y = rng.integers(0, n_out, batch)
    else:
        y = rng.random((batch, n_out)).astype(dtype)
        if kind == "bce_with_logits":
            y = (y > 0.5).astype(dtype)
    return x, y


def eager_step(model, loss_fn, opt, x, y):
    opt.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    opt.step()
    return loss.item()


def assert_same_models(m1, m2):
    for (n1, p1), (n2, p2) in zip(m1.named_parameters(), m2.named_parameters()):
        assert n1 == n2
        np.testing.assert_array_equal(p1.data, p2.data, err_msg=n1)
        np.testing.assert_array_equal(p1.grad.data, p2.grad.data, err_msg=n1)


@pytest.mark.parametrize("opt_name", sorted(OPTIMIZERS))
def test_compiled_training_equals_eager_bit_for_bit(opt_name, dtype, isa):
    m1, m2 = make_mlp(1, dtype), make_mlp(1, dtype)
    o1, o2 = OPTIMIZERS[opt_name](m1.parameters()), OPTIMIZERS[opt_name](m2.parameters())
    loss_fn = nn.CrossEntropyLoss()
    step = pb.compile(m2, loss_fn, o2)
    x, y = data(dtype)
    for _ in range(6):
        assert eager_step(m1, loss_fn, o1, x, y) == step(x, y)
    assert_same_models(m1, m2)
    s1, s2 = o1.state_dict(), o2.state_dict()
    for k in s1["state"]:
        for key, v in s1["state"][k].items():
            np.testing.assert_array_equal(np.asarray(v), np.asarray(s2["state"][k][key]), err_msg=key)


@pytest.mark.parametrize("opt_name", ["sgd_nesterov_wd", "adam_amsgrad", "adamw", "rmsprop_centered_momentum"])
def test_block_by_block_update_equals_eager_on_blocked_threaded_gemms(opt_name, dtype, isa, threads):
    # The compiled step updates each weight block by block in the dW GEMM's
    # write-back. With these sizes the dW GEMMs run blocked on the thread
    # pool: 784 x 96 and 700 x 10 split their rows (blocks of whole rows),
    # 96 x 700 its columns (blocks of row segments), and k = 300 rows of the
    # batch makes two k-blocks, so a block must be updated only once complete.
    sizes = (784, 96, 700, 10)
    m1, m2 = make_mlp(2, dtype, sizes=sizes), make_mlp(2, dtype, sizes=sizes)
    o1, o2 = OPTIMIZERS[opt_name](m1.parameters()), OPTIMIZERS[opt_name](m2.parameters())
    loss_fn = nn.CrossEntropyLoss()
    step = pb.compile(m2, loss_fn, o2)
    x, y = data(dtype, batch=300, n_in=784, n_out=10, seed=3)
    for _ in range(3):
        assert eager_step(m1, loss_fn, o1, x, y) == step(x, y)
    assert_same_models(m1, m2)


@pytest.mark.parametrize("act", ACTIVATIONS, ids=lambda a: getattr(a, "__name__", "param"))
@pytest.mark.parametrize("loss", ["cross_entropy", "mse", "bce_with_logits", "sum"])
def test_every_activation_and_loss(act, loss, dtype):
    loss_fn = {"cross_entropy": nn.CrossEntropyLoss(), "mse": nn.MSELoss(), "bce_with_logits": nn.BCEWithLogitsLoss(),
               "sum": nn.CrossEntropyLoss(reduction="sum")}[loss]
    m1, m2 = make_mlp(3, dtype, act), make_mlp(3, dtype, act)
    o1 = pb.optim.SGD(m1.parameters(), lr=0.01, momentum=0.9)
    o2 = pb.optim.SGD(m2.parameters(), lr=0.01, momentum=0.9)
    step = pb.compile(m2, loss_fn, o2)
    x, y = data(dtype, kind="cross_entropy" if loss == "sum" else loss)
    for _ in range(3):
        assert eager_step(m1, loss_fn, o1, x, y) == step(x, y)
    assert_same_models(m1, m2)


def test_bit_identical_on_one_and_two_threads():
    # On two threads, both layouts of the GEMM's row split: B blocks of at
    # most 2 MiB packed by each thread (dW of the first layer, 784 x 1024 x
    # 300) and larger ones packed once and shared (the forward of the second
    # layer, 300 x 2048 x 1024: 512 x 2048 floats a block).
    results = []
    before = pb.get_num_threads()
    try:
        for threads in (1, 2):
            pb.set_num_threads(threads)
            m = make_mlp(5, np.float32, sizes=(784, 1024, 2048, 10))
            opt = pb.optim.Adam(m.parameters(), lr=1e-3)
            step = pb.compile(m, nn.CrossEntropyLoss(), opt)
            x, y = data(np.float32, batch=300, n_in=784, n_out=10)
            losses = [step(x, y) for _ in range(3)]
            results.append((losses, [p.data.copy() for p in m.parameters()]))
    finally:
        pb.set_num_threads(before)
    assert results[0][0] == results[1][0]
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_array_equal(a, b)


def _gets_two_cores():
    """Whether two-thread GEMMs here use more than 1.5 cores (not with the other core busy)."""
    a = pb.randn(1024, 1024)
    wall, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - wall < 0.3:
        a @ a
    return (time.process_time() - cpu) / (time.perf_counter() - wall) > 1.5


def test_core_distance_probe_measures_a_handoff():
    before = pb.get_num_threads()
    try:
        pb.set_num_threads(2)
        ns, give_up = -1, time.monotonic() + 10   # -1: the worker did not run alongside the caller
        while ns < 0 and time.monotonic() < give_up:
            ns = _core._handoff_ns(1000.0)
            time.sleep(0.005)
        if ns < 0 and not _gets_two_cores():
            pytest.skip("the other core is busy: the two threads never ran at once, so nothing to measure")
        assert 0 < ns < 1e6
        pb.set_num_threads(1)
        assert _core._handoff_ns() == -1
        with pytest.raises(ValueError, match="timeout_ms"):
            _core._handoff_ns(-1.0)
    finally:
        pb.set_num_threads(before)


@pytest.mark.parametrize("sizes,batch,bias", [
    ((784, 128, 10), 64, True),     # A's net: two parts of 32 rows
    ((13, 40, 10), 97, True),       # three parts of 32, 32 and 33 rows
    ((20, 30, 16), 70, False),      # 16 classes (the most split), no biases
    ((50, 7), 70, True),            # the output layer is the only one: no dx
    ((20, 30, 17), 64, True),       # 17 classes: not split
], ids=["A", "odd-batch", "16-classes-no-bias", "one-layer", "17-classes"])
def test_split_output_layer_equals_eager_and_one_thread(sizes, batch, bias, dtype, isa, opt_name="adam"):
    # At two threads a classifier's small output layer (forward, loss, dx) runs
    # split by rows over both threads (MlpPlan::split_head_step). Same bits as
    # the eager step and as the compiled step on one thread.
    x, y = data(dtype, batch=batch, n_in=sizes[0], n_out=sizes[-1], seed=4)
    loss_fn = nn.CrossEntropyLoss()
    runs = []
    before = pb.get_num_threads()
    try:
        for threads, compiled in ((2, False), (2, True), (1, True)):
            pb.set_num_threads(threads)
            m = make_mlp(6, dtype, sizes=sizes, bias=bias)
            opt = OPTIMIZERS[opt_name](m.parameters())
            step = pb.compile(m, loss_fn, opt) if compiled else None
            losses = [step(x, y) if compiled else eager_step(m, loss_fn, opt, x, y) for _ in range(3)]
            runs.append((losses, m))
    finally:
        pb.set_num_threads(before)
    (eager_losses, eager), (two_losses, two), (one_losses, one) = runs
    assert eager_losses == two_losses == one_losses
    assert_same_models(eager, two)
    assert_same_models(one, two)


def test_new_batch_size_recaptures_and_no_bias_layers_work():
    m1, m2 = make_mlp(2, np.float64, bias=False), make_mlp(2, np.float64, bias=False)
    o1, o2 = pb.optim.SGD(m1.parameters(), lr=0.1), pb.optim.SGD(m2.parameters(), lr=0.1)
    loss_fn = nn.CrossEntropyLoss()
    step = pb.compile(m2, loss_fn, o2)
    for batch in (33, 1, 64, 33):
        x, y = data(np.float64, batch=batch, seed=batch)
        assert eager_step(m1, loss_fn, o1, x, y) == step(x, y)
    assert_same_models(m1, m2)


def test_python_changes_between_steps_are_seen():
    m1, m2 = make_mlp(4, np.float32), make_mlp(4, np.float32)
    o1, o2 = pb.optim.Adam(m1.parameters(), lr=1e-2), pb.optim.Adam(m2.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss()
    step = pb.compile(m2, loss_fn, o2)
    x, y = data(np.float32)
    assert eager_step(m1, loss_fn, o1, x, y) == step(x, y)
    # in-place edit, a learning-rate change, and an eager step in between
    for m in (m1, m2):
        m[0].weight.data[0, :] = 0.5
    for o in (o1, o2):
        o.param_groups[0]["lr"] = 3e-3
    assert eager_step(m1, loss_fn, o1, x, y) == step(x, y)
    assert eager_step(m1, loss_fn, o1, x, y) == eager_step(m2, loss_fn, o2, x, y)
    assert eager_step(m1, loss_fn, o1, x, y) == step(x, y)
    # replacing the arrays (as loading a checkpoint may) is seen too
    state = {k: v.data.copy() * 0.9 for k, v in m1.state_dict().items()}
    m1.load_state_dict(state)
    m2.load_state_dict(state)
    for p in m2.parameters():
        p.data = p.data.copy()
    assert eager_step(m1, loss_fn, o1, x, y) == step(x, y)
    assert_same_models(m1, m2)


def test_scheduler_drives_the_compiled_learning_rate():
    m1, m2 = make_mlp(6, np.float32), make_mlp(6, np.float32)
    o1, o2 = pb.optim.SGD(m1.parameters(), lr=0.1), pb.optim.SGD(m2.parameters(), lr=0.1)
    s1 = pb.optim.lr_scheduler.StepLR(o1, step_size=2, gamma=0.5)
    s2 = pb.optim.lr_scheduler.StepLR(o2, step_size=2, gamma=0.5)
    loss_fn = nn.CrossEntropyLoss()
    step = pb.compile(m2, loss_fn, o2)
    x, y = data(np.float32)
    for _ in range(5):
        assert eager_step(m1, loss_fn, o1, x, y) == step(x, y)
        s1.step()
        s2.step()
    assert_same_models(m1, m2)


def test_uncompilable_model_falls_back_with_one_warning():
    pb.manual_seed(0)
    model = nn.Sequential(nn.Linear(13, 8), nn.Dropout(0.5), nn.Linear(8, 5))
    opt = pb.optim.SGD(model.parameters(), lr=0.1)
    with pytest.warns(RuntimeWarning, match="Dropout in training mode"):
        step = pb.compile(model, nn.CrossEntropyLoss(), opt)
    x, y = data(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = step(x, y)
    assert np.isfinite(loss)
    model.eval()
    assert pb.compile(model, nn.CrossEntropyLoss(), opt).fallback_reason is None


def test_inference_matches_eager_forward(dtype, isa):
    model = make_mlp(7, dtype, nn.GELU)
    predict = pb.compile(model)
    x, _ = data(dtype, batch=17)
    with pb.no_grad():
        want = model(x).data
    np.testing.assert_array_equal(predict(x), want)
    np.testing.assert_array_equal(predict(x[:1]), want[:1])


def test_bad_input_raises_clear_errors():
    model = make_mlp(8, np.float32)
    step = pb.compile(model, nn.CrossEntropyLoss(), pb.optim.SGD(model.parameters(), lr=0.1))
    x, y = data(np.float32)
    with pytest.raises(ValueError, match="features"):
        step(x[:, :5], y)
    with pytest.raises(ValueError, match="targets"):
        step(x, y[:4])
    with pytest.raises(ValueError, match="target"):
        step(x, np.full(33, 7))
    with pytest.raises(TypeError, match="integer class indices"):
        step(x, y.astype(np.float32))
    with pytest.raises(TypeError, match="needs both"):
        pb.compile(model, nn.CrossEntropyLoss())
    # non-contiguous float64 input is converted, not refused
    assert np.isfinite(step(np.asfortranarray(x.astype(np.float64)), y))


def test_changes_that_alter_the_capture_are_followed():
    """amsgrad / momentum switched on later, and train/eval with Dropout, re-capture."""
    loss_fn = nn.CrossEntropyLoss()
    x, y = data(np.float32)
    m1, m2 = make_mlp(9, np.float32), make_mlp(9, np.float32)
    o1, o2 = pb.optim.Adam(m1.parameters(), lr=1e-2), pb.optim.Adam(m2.parameters(), lr=1e-2)
    step = pb.compile(m2, loss_fn, o2)
    assert eager_step(m1, loss_fn, o1, x, y) == step(x, y)
    for o in (o1, o2):
        o.param_groups[0]["amsgrad"] = True
    for _ in range(2):
        assert eager_step(m1, loss_fn, o1, x, y) == step(x, y)
    assert_same_models(m1, m2)

    m1, m2 = make_mlp(10, np.float32), make_mlp(10, np.float32)
    o1, o2 = pb.optim.SGD(m1.parameters(), lr=0.1), pb.optim.SGD(m2.parameters(), lr=0.1)
    step = pb.compile(m2, loss_fn, o2)
    assert eager_step(m1, loss_fn, o1, x, y) == step(x, y)
    for o in (o1, o2):
        o.param_groups[0]["momentum"] = 0.9
    for _ in range(3):
        assert eager_step(m1, loss_fn, o1, x, y) == step(x, y)
    assert_same_models(m1, m2)

    pb.manual_seed(0)
    model = nn.Sequential(nn.Linear(13, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 5))
    model.eval()
    step = pb.compile(model, loss_fn, pb.optim.SGD(model.parameters(), lr=0.1))
    assert step.fallback_reason is None
    model.train()
    with pytest.warns(RuntimeWarning, match="Dropout in training mode"):
        step(x, y)
    assert step.fallback_reason is not None
    model.eval()
    step(x, y)
    assert step.fallback_reason is None


def test_a_refused_step_changes_nothing():
    model = make_mlp(11, np.float64)
    opt = pb.optim.Adam(model.parameters(), lr=1e-2)
    step = pb.compile(model, nn.CrossEntropyLoss(), opt)
    x, y = data(np.float64)
    step(x, y)
    before = [p.data.copy() for p in model.parameters()]
    with pytest.raises(ValueError, match="target"):
        step(x, np.full(33, 99))
    for b, p in zip(before, model.parameters()):
        np.testing.assert_array_equal(b, p.data)
    assert all(opt.state[p]["step"] == 1 for p in model.parameters())


def test_inference_accepts_what_the_eager_model_accepts(dtype):
    model = make_mlp(13, dtype)
    predict = pb.compile(model)
    x, _ = data(dtype, batch=6)
    with pb.no_grad():
        want = model(x).data
    other = np.float64 if dtype == np.float32 else np.float32
    for given in (x, np.asfortranarray(x), x.tolist(), pb.tensor(x), np.repeat(x, 2, axis=0)[::2]):
        np.testing.assert_array_equal(predict(given), want)
    # Converted to the model's dtype (pb.compile's docstring). Eager numpy-promotes
    # instead, so a float32 model given float64 returns float64 there: the two then
    # agree to float32 rounding only.
    got = predict(x.astype(other))
    assert got.dtype == dtype
    with pb.no_grad():
        eager = model(x.astype(other)).data
    assert eager.dtype == np.result_type(dtype, other)
    np.testing.assert_allclose(got, eager, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="features"):
        predict(x[:, :5])
    with pytest.raises(ValueError, match="features"):
        predict(x[None])


@pytest.mark.parametrize("batch", [1, 2, 64])
def test_batch1_inference_on_mnist_shapes_equals_eager_on_any_thread_count(dtype, isa, threads, batch):
    """784-128-10 (benchmark F): the batch-1 row kernel splits columns over threads, never k."""
    model = make_mlp(14, dtype, sizes=(784, 128, 10))
    x = np.random.default_rng(1).standard_normal((batch, 784)).astype(dtype)
    with pb.no_grad():
        want = model(x).data
    got = pb.compile(model)(x)
    np.testing.assert_array_equal(got, want)
    pb.set_num_threads(1)
    np.testing.assert_array_equal(pb.compile(model)(x), want)


def test_inference_never_writes_into_a_result_still_referenced(dtype):
    """The inference path writes a call's result into one of its two previous result arrays
    only when nothing else refers to it: a kept result, a view of it, a weak reference to it
    or a changed shape or flag keeps it from being reused."""
    import weakref
    model = make_mlp(5, dtype)
    predict = pb.compile(model)
    x1, _ = data(dtype, batch=1, seed=1)
    x2, _ = data(dtype, batch=1, seed=2)
    with pb.no_grad():
        want1, want2 = model(x1).data, model(x2).data

    kept = [predict(x1 if i % 2 == 0 else x2) for i in range(6)]  # all held: six arrays
    assert len({id(a) for a in kept}) == 6
    for i, a in enumerate(kept):
        np.testing.assert_array_equal(a, want1 if i % 2 == 0 else want2)
    del kept

    ids = set()
    for i in range(8):  # `y = predict(x)` holds the previous result during the call
        y = predict(x1 if i % 2 == 0 else x2)
        np.testing.assert_array_equal(y, want1 if i % 2 == 0 else want2)
        ids.add(id(y))
    assert len(ids) <= 3  # arrays were reused (the point of it), yet every result was right

    a = predict(x1)
    row = a[0]        # a view
    del a
    b = predict(x2)
    c = predict(x2)
    np.testing.assert_array_equal(row, want1[0])
    np.testing.assert_array_equal(b, want2)
    np.testing.assert_array_equal(c, want2)
    del row, b, c

    a = predict(x1)
    watch = weakref.ref(a)
    del a                       # alive only in the cache, watched
    b = predict(x2)
    c = predict(x2)
    assert watch() is not b and watch() is not c
    if watch() is not None:
        np.testing.assert_array_equal(watch(), want1)
    del b, c

    a = predict(x1)
    a.shape = (a.shape[1], 1)   # reshaped in place, then dropped
    del a
    b = predict(x2)
    assert b.shape == want2.shape
    b.flags.writeable = False
    del b
    c, d = predict(x2), predict(x1)
    assert c.flags.writeable and d.flags.writeable
    np.testing.assert_array_equal(c, want2)
    np.testing.assert_array_equal(d, want1)

    x4, _ = data(dtype, batch=4, seed=3)  # a new batch size: arrays of its own shape
    with pb.no_grad():
        np.testing.assert_array_equal(predict(x4), model(x4).data)

    big, _ = data(dtype, batch=20000, seed=4)  # a large result is not kept once dropped
    watch = weakref.ref(predict(big))
    assert watch() is None


def test_inference_of_one_example_gives_one_row():
    model = make_mlp(12, np.float32)
    x, _ = data(np.float32, batch=1)
    with pb.no_grad():
        want = model(x[0]).data
    got = pb.compile(model)(x[0])
    assert got.shape == want.shape == (5,)
    np.testing.assert_array_equal(got, want)


def test_steady_state_steps_take_the_c_fast_path_and_match_eager(monkeypatch, dtype):
    """After the first step, array inputs of the right dtype never reach the Python slow path
    (CompiledStep._call); anything unusual (a list, a Tensor, a changed lr, a replaced parameter)
    does, and every step still equals the eager one."""
    from pybackprop.compile import CompiledStep
    slow = []
    original = CompiledStep._call
    monkeypatch.setattr(CompiledStep, "_call", lambda self, x, y: slow.append(1) or original(self, x, y))
    m_c, m_e = make_mlp(21, dtype), make_mlp(21, dtype)
    opt_c, opt_e = pb.optim.Adam(m_c.parameters(), lr=1e-2), pb.optim.Adam(m_e.parameters(), lr=1e-2)
    step = pb.compile(m_c, nn.CrossEntropyLoss(), opt_c)
    loss_fn = nn.CrossEntropyLoss()
    x, y = data(dtype)
    for i in range(4):
        assert step(x, y) == eager_step(m_e, loss_fn, opt_e, x, y)
    assert len(slow) == 1                      # the first step publishes the optimiser state
    for unusual in (lambda: step(x.tolist(), y), lambda: step(pb.tensor(x), y)):
        n = len(slow)
        assert unusual() == eager_step(m_e, loss_fn, opt_e, x, y)
        assert len(slow) == n + 1
    for group in (opt_c.param_groups[0], opt_e.param_groups[0]):
        group["lr"] = 3e-3
    n = len(slow)
    assert step(x, y) == eager_step(m_e, loss_fn, opt_e, x, y)
    assert len(slow) == n + 1                  # the new lr is read on the slow path ...
    assert step(x, y) == eager_step(m_e, loss_fn, opt_e, x, y)
    assert len(slow) == n + 1                  # ... once
    w = m_c[0].weight
    w.data = w.data.copy()                     # replaced from Python: capture again, new native plan
    assert step(x, y) == eager_step(m_e, loss_fn, opt_e, x, y)
    assert step(x, y) == eager_step(m_e, loss_fn, opt_e, x, y)
    assert_same_models(m_c, m_e)


class CountedParameter(nn.Parameter):
    """A Parameter whose class redefines ``data`` and ``grad``: the fast path must go
    through these properties, not read Tensor's slots behind their back."""
    __slots__ = ("reads",)

    def __init__(self, data):
        self.reads = 0
        super().__init__(data)

    @property
    def data(self):
        self.reads += 1
        return pb.Tensor.data.__get__(self)

    @data.setter
    def data(self, value):
        pb.Tensor.data.__set__(self, value)

    @property
    def grad(self):
        self.reads += 1
        return pb.Tensor.grad.__get__(self)

    @grad.setter
    def grad(self, value):
        pb.Tensor.grad.__set__(self, value)


@pytest.mark.parametrize("parameter_class", ["Parameter", "subclass redefining data and grad"])
def test_fast_path_leaves_grads_and_versions_as_an_eager_step_does(parameter_class, dtype):
    """What the C fast path publishes after each step -- p.grad, p._version -- equals the
    eager step's, for plain Parameters (read at their slots) and for a subclass whose
    properties must be used; replacing p.data or p.grad from Python is seen either way."""
    models = [make_mlp(23, dtype), make_mlp(23, dtype)]
    if parameter_class != "Parameter":
        for m in models:
            for layer in (m[0], m[2]):
                layer.weight = CountedParameter(layer.weight.data)
    m_c, m_e = models
    opt_c, opt_e = pb.optim.SGD(m_c.parameters(), lr=0.1), pb.optim.SGD(m_e.parameters(), lr=0.1)
    loss_fn = nn.CrossEntropyLoss()
    step = pb.compile(m_c, loss_fn, opt_c)
    x, y = data(dtype)
    for i in range(3):
        assert step(x, y) == eager_step(m_e, loss_fn, opt_e, x, y)
    versions = [p._version for p in m_c.parameters()]
    reads = m_c[0].weight.reads if parameter_class != "Parameter" else None
    assert step(x, y) == eager_step(m_e, loss_fn, opt_e, x, y)
    assert [p._version for p in m_c.parameters()] == [v + 1 for v in versions]
    if reads is not None:
        assert m_c[0].weight.reads > reads          # the properties were used
    assert_same_models(m_c, m_e)
    for p in m_c.parameters():                       # p.grad dropped from Python comes back
        p.grad = None
    assert step(x, y) == eager_step(m_e, loss_fn, opt_e, x, y)
    assert_same_models(m_c, m_e)
    for m in (m_c, m_e):                             # replaced arrays are what the next step uses
        m[2].weight.data = m[2].weight.data * 0.5
    assert step(x, y) == eager_step(m_e, loss_fn, opt_e, x, y)
    assert_same_models(m_c, m_e)


def test_inference_fast_path_is_taken_for_plain_arrays(monkeypatch, dtype):
    from pybackprop.compile import CompiledModel
    slow = []
    original = CompiledModel._call
    monkeypatch.setattr(CompiledModel, "_call", lambda self, x: slow.append(1) or original(self, x))
    model = make_mlp(22, dtype)
    predict = pb.compile(model)
    x, _ = data(dtype, batch=5)
    with pb.no_grad():
        want = model(x).data
    np.testing.assert_array_equal(predict(x), want)
    assert slow == []
    np.testing.assert_array_equal(predict(np.asfortranarray(x)), want)
    assert slow == [1]
