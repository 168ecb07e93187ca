"""Graph semantics: accumulation, freeing, no_grad, detach, leaves, Functions, dtypes."""
import numpy as np
import pytest

import pybackprop as pb
from pybackprop.autograd import Function, GradcheckError, gradcheck


def test_grad_accumulates_across_backward_calls():
    x = pb.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3 + 2, 3 + 4])


def test_fan_out_adds_and_each_node_runs_once():
    calls = []

    class Count(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        def backward(ctx, g):
            calls.append(1)
            return g

    x = pb.tensor([2.0], requires_grad=True)
    h = Count.apply(x)              # used by three paths
    y = h * h + h
    y.sum().backward()
    assert len(calls) == 1
    np.testing.assert_allclose(x.grad.numpy(), [2 * 2.0 + 1])


def test_deep_chain_is_iterative():
    x = pb.tensor([1.0], dtype=pb.float64, requires_grad=True)
    y = x
    for _ in range(10000):
        y = y * 1.0001 + 0.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0001 ** 10000], rtol=1e-9)


def test_second_backward_through_freed_graph_raises():
    x = pb.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * 2).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_retain_graph_allows_second_backward():
    x = pb.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp()).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.exp([1.0, 2.0]), rtol=1e-6)
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_no_grad_records_nothing():
    x = pb.tensor([1.0], requires_grad=True)
    with pb.no_grad():
        y = x * 2
        assert not pb.is_grad_enabled()
    assert pb.is_grad_enabled()
    assert y.grad_fn is None and not y.requires_grad and y.is_leaf

    @pb.no_grad()
    def f(t):
        return t * 3
    assert f(x).grad_fn is None
    with pb.no_grad():
        with pb.enable_grad():
            assert (x * 2).requires_grad


def test_detach_cuts_the_graph_and_shares_data():
    x = pb.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    d = h.detach()
    assert d.is_leaf and not d.requires_grad and d.grad_fn is None
    assert np.shares_memory(d.numpy(), h.numpy())
    y = (h * d).sum()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * d.numpy())   # d is a constant


def test_leaves_and_non_leaves():
    x = pb.tensor([1.0, 2.0], requires_grad=True)
    c = pb.tensor([3.0, 4.0])
    h = x * c
    assert x.is_leaf and c.is_leaf and not h.is_leaf
    assert h.grad_fn is not None and h.grad_fn.name == "mul"
    h.retain_grad()
    y = h.sum() * 2
    y.backward()
    assert c.grad is None                     # does not require grad
    np.testing.assert_allclose(x.grad.numpy(), [6, 8])
    np.testing.assert_allclose(h.grad.numpy(), [2, 2])   # kept because of retain_grad
    z = (x * 2).sum()
    assert z.grad is None
    with pytest.raises(RuntimeError):
        h.requires_grad_(False)


def test_backward_needs_scalar_or_gradient():
    x = pb.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="scalar"):
        y.backward()
    y.backward(np.array([1.0, 0.5], np.float32))
    np.testing.assert_allclose(x.grad.numpy(), [2, 1])
    with pytest.raises(RuntimeError, match="does not require grad"):
        pb.tensor([1.0]).sum().backward()


def test_autograd_grad_does_not_touch_dot_grad_and_reports_unused():
    x = pb.tensor([1.0, 2.0], requires_grad=True)
    u = pb.tensor([1.0], requires_grad=True)
    y = (x * x).sum()
    (g,) = pb.autograd.grad(y, [x], retain_graph=True)
    np.testing.assert_allclose(g.numpy(), [2, 4])
    assert x.grad is None
    with pytest.raises(RuntimeError, match="not used"):
        pb.autograd.grad(y, [x, u], retain_graph=True)
    g2 = pb.autograd.grad(y, [x, u], allow_unused=True)
    assert g2[1] is None


def test_grad_wrt_non_leaf():
    x = pb.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    y = (h * h).sum()
    (gh,) = pb.autograd.grad(y, [h])
    np.testing.assert_allclose(gh.numpy(), 2 * h.numpy())


def test_in_place_on_leaf_requiring_grad_raises():
    x = pb.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="in-place"):
        x.add_(1.0)
    with pb.no_grad():
        x.add_(1.0)
    assert x.item() == 2.0


def test_saved_tensor_modified_in_place_is_detected():
    x = pb.tensor([1.0, 2.0], requires_grad=True)
    c = pb.tensor([3.0, 4.0])
    y = (x * c).sum()
    c.mul_(2.0)                             # mul saved c (to differentiate w.r.t. x)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.backward()


class Square(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x * g


class WrongSquare(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * x * g                 # deliberately wrong


def test_custom_function():
    x = pb.tensor([1.0, -2.0, 3.0], dtype=pb.float64, requires_grad=True)
    y = Square.apply(x)
    assert y.grad_fn is not None and y.grad_fn.name == "Square"
    assert y.grad_fn.needs_input_grad == (True,)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2, -4, 6])
    assert gradcheck(Square.apply, (pb.tensor(np.arange(3.0), requires_grad=True),))


def test_custom_function_second_order():
    x = pb.tensor([1.5, -2.0], dtype=pb.float64, requires_grad=True)
    (g,) = pb.autograd.grad(Square.apply(x).sum(), [x], create_graph=True)
    (h,) = pb.autograd.grad(g.sum(), [x])
    np.testing.assert_allclose(h.numpy(), [2, 2])


def test_wrong_custom_backward_is_caught_by_gradcheck():
    x = pb.tensor([[0.5, -1.0], [2.0, 3.0]], dtype=pb.float64, requires_grad=True)
    with pytest.raises(GradcheckError) as err:
        gradcheck(WrongSquare.apply, (x,))
    e = err.value
    assert e.input_index == 0 and e.index == (0, 0)
    assert e.numerical == pytest.approx(1.0, rel=1e-6) and e.analytical == pytest.approx(1.5)
    msg = str(e)
    assert "input 0" in msg and "(0, 0)" in msg and "numerical 0.99999" in msg and "analytical 1.5" in msg
    assert gradcheck(WrongSquare.apply, (x,), raise_exception=False) is False


def test_custom_function_version_check():
    x = pb.tensor([1.0, 2.0], requires_grad=True)
    y = Square.apply(x)
    with pb.no_grad():
        x.mul_(2.0)
    with pytest.raises(RuntimeError, match="in-place"):
        y.sum().backward()


def test_custom_function_wrong_gradient_shape():
    class Bad(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g.sum()
    x = pb.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="invalid gradient at index 0"):
        Bad.apply(x).sum().backward()


# ------------------------------------------------------------------- dtypes
def test_dtype_rules():
    assert pb.tensor([1, 2]).dtype == pb.float32
    assert pb.tensor(3.0).dtype == pb.float32
    assert pb.tensor([1.0, 2.0]).dtype == np.float32
    assert pb.tensor(np.zeros(3)).dtype == pb.float64
    assert pb.tensor(np.zeros(3, np.float32)).dtype == pb.float32
    assert pb.tensor(np.arange(3)).dtype == pb.float32
    assert pb.tensor([1.0], dtype="float64").dtype == pb.float64
    assert pb.zeros(2, 3, dtype=np.float64).dtype == pb.float64
    assert pb.ones((2, 3)).shape == (2, 3)
    with pytest.raises(TypeError):
        pb.tensor(np.zeros(2, np.complex64))
    with pytest.raises(TypeError):
        pb.tensor([1 + 2j])
    with pytest.raises(TypeError):
        pb.tensor(np.array([object()]))
    with pytest.raises(TypeError):
        pb.tensor([1.0], dtype="int32")


def test_mixed_dtype_promotes_like_numpy_and_grads_keep_their_dtype():
    a = pb.tensor([1.0, 2.0], requires_grad=True)                     # float32
    b = pb.tensor(np.array([3.0, 4.0]), requires_grad=True)            # float64
    y = a * b
    assert y.dtype == pb.float64
    assert (a * 2.0).dtype == pb.float32                               # numbers are weak
    y.sum().backward()
    assert a.grad.dtype == pb.float32 and b.grad.dtype == pb.float64
    w = pb.tensor(np.ones((2, 3)), requires_grad=True)
    z = a.reshape(1, 2) @ w
    assert z.dtype == pb.float64
    z.sum().backward()
    assert a.grad.dtype == pb.float32


def test_numpy_arrays_accepted_everywhere():
    a = np.array([[1.0, -2.0]])
    assert isinstance(pb.exp(a), pb.Tensor)
    assert pb.relu(a).numpy().tolist() == [[1.0, 0.0]]
    w = pb.tensor(np.ones((2, 2)), requires_grad=True)
    (a @ w).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [[1, 1], [-2, -2]])
    assert float(pb.nn.functional.mse_loss(a, np.zeros((1, 2)))) == pytest.approx(2.5)


def test_from_numpy_shares_memory_and_item():
    a = np.arange(4.0)
    t = pb.from_numpy(a)
    a[0] = 7
    assert t.numpy()[0] == 7 and t.dtype == pb.float64
    assert pb.tensor([[2.5]]).item() == 2.5
    assert pb.randn(2, 3, seed=1).shape == (2, 3)
    np.testing.assert_array_equal(pb.randn(3, seed=5).numpy(), pb.randn(3, seed=5).numpy())


def test_attributes():
    t = pb.tensor(np.ones((2, 3)), requires_grad=True)
    assert t.shape == (2, 3) and t.ndim == 2 and t.T.shape == (3, 2)
    assert t.is_leaf and t.requires_grad and t.grad is None and t.grad_fn is None
    assert "requires_grad=True" in repr(t)


def test_autograd_backward_several_roots():
    x = pb.tensor([1.0, 2.0], requires_grad=True)
    a, b = (x * 2).sum(), (x * x).sum()
    pb.autograd.backward([a, b])
    np.testing.assert_allclose(x.grad.numpy(), [2 + 2, 2 + 4])
    y = x * 3
    pb.autograd.backward([y], [np.array([1.0, -1.0], np.float32)])
    np.testing.assert_allclose(x.grad.numpy(), [4 + 3, 6 - 3])


def test_backward_inputs_restricts_accumulation():
    x = pb.tensor([1.0], requires_grad=True)
    w = pb.tensor([2.0], requires_grad=True)
    (x * w).sum().backward(inputs=[w])
    assert x.grad is None and w.grad.item() == 1.0


def test_setitem_and_size():
    t = pb.zeros(2, 3)
    t[0, 1] = 5.0
    assert t.numpy()[0, 1] == 5.0 and t.size() == (2, 3) and t.size(1) == 3 and t.numel() == 6
    r = pb.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError):
        r[0] = 2.0


def test_in_place_through_detach_of_saved_output_is_detected():
    x = pb.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()                                   # exp saves its output for backward
    y.detach().add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.sum().backward()
    x = pb.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    z = y * y                                     # mul saves its inputs
    y.detach().mul_(3.0)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        z.sum().backward()


def test_in_place_through_from_numpy_alias_is_detected():
    x = pb.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()
    pb.from_numpy(y.numpy()[:1]).add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.sum().backward()


def test_detach_shares_the_version_counter_but_unmodified_graphs_still_work():
    x = pb.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()
    d = y.detach()
    assert d._version == y._version == 0
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.exp([1.0, 2.0]), rtol=1e-6)
    d.add_(1.0)
    assert y._version == 1
