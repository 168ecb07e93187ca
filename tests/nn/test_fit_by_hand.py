"""A 3-2-1 network worked out by hand (the scikit-learn ``test_mlp.py::test_fit`` habit).

    x = [0.6, 0.8, 0.7], target y = 0
    W1 (in, out) = [[0.1, 0.2],      b1 = [0.1, 0.1]      hidden: sigmoid
                    [0.3, 0.1],
                    [0.5, 0.0]]
    W2 = [[0.4], [0.6]]              b2 = [0.1]           output: identity, loss (o - y)^2

Forward
    z1 = x W1 + b1 = [0.06 + 0.24 + 0.35 + 0.1, 0.12 + 0.08 + 0 + 0.1] = [0.75, 0.30]
    a1 = sigmoid(z1) = [0.67917870, 0.57444252]
    o  = a1 W2 + b2  = 0.4 · 0.67917870 + 0.6 · 0.57444252 + 0.1 = 0.71633699
    L  = (o - 0)^2   = 0.51313868
Backward (deltas)
    dL/do  = 2 (o - y)          = 1.43267398
    dW2    = a1ᵀ · dL/do        = [0.97304165, 0.82298885]ᵀ,   db2 = 1.43267398
    dL/da1 = dL/do · W2ᵀ        = [0.57306959, 0.85960439]
    dL/dz1 = dL/da1 · a1 (1 - a1) = [0.57306959 · 0.67917870 · 0.32082130,
                                     0.85960439 · 0.57444252 · 0.42555748] = [0.12486900, 0.21013744]
    dW1    = xᵀ dL/dz1          = [[0.0749214, 0.12608246], [0.0998952, 0.16810995], [0.0874083, 0.14709621]]
    db1    = dL/dz1
SGD, lr = 0.1: w ← w - 0.1 dw
    W1 = [[0.09250786, 0.18739175], [0.29001048, 0.08318901], [0.49125917, -0.01470962]]
    b1 = [0.0875131, 0.07898626];  W2 = [[0.30269584], [0.51770112]];  b2 = [-0.0432674]
"""
import numpy as np
import pytest

import pybackprop as pb


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_fit_by_hand(dtype, isa):
    tol = dict(atol=1e-6 if dtype == np.float32 else 1e-8, rtol=0)
    model = pb.nn.Sequential(pb.nn.Linear(3, 2, dtype=dtype), pb.nn.Sigmoid(), pb.nn.Linear(2, 1, dtype=dtype))
    model.load_state_dict({
        "0.weight": np.array([[0.1, 0.2], [0.3, 0.1], [0.5, 0.0]]), "0.bias": np.array([0.1, 0.1]),
        "2.weight": np.array([[0.4], [0.6]]), "2.bias": np.array([0.1])})
    x = np.array([[0.6, 0.8, 0.7]], dtype)
    y = np.zeros((1, 1), dtype)

    hidden = pb.nn.Sequential(model[0], model[1])(x)
    np.testing.assert_allclose(hidden.numpy(), [[0.67917870, 0.57444252]], **tol)
    out = model(x)
    np.testing.assert_allclose(out.numpy(), [[0.71633699]], **tol)
    loss = pb.nn.MSELoss()(out, y)
    assert loss.item() == pytest.approx(0.51313868, abs=tol["atol"])

    opt = pb.optim.SGD(model.parameters(), lr=0.1)
    opt.zero_grad()
    loss.backward()
    w1, b1, w2, b2 = model.parameters()
    np.testing.assert_allclose(w2.grad.numpy(), [[0.97304165], [0.82298885]], **tol)
    np.testing.assert_allclose(b2.grad.numpy(), [1.43267398], **tol)
    np.testing.assert_allclose(b1.grad.numpy(), [0.12486900, 0.21013744], **tol)
    np.testing.assert_allclose(w1.grad.numpy(), [[0.0749214, 0.12608246], [0.0998952, 0.16810995],
                                                 [0.0874083, 0.14709621]], **tol)
    opt.step()
    np.testing.assert_allclose(w1.numpy(), [[0.09250786, 0.18739175], [0.29001048, 0.08318901],
                                            [0.49125917, -0.01470962]], **tol)
    np.testing.assert_allclose(b1.numpy(), [0.0875131, 0.07898626], **tol)
    np.testing.assert_allclose(w2.numpy(), [[0.30269584], [0.51770112]], **tol)
    np.testing.assert_allclose(b2.numpy(), [-0.0432674], **tol)
