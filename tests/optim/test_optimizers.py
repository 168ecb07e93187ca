"""Optimisers and schedulers: 20 steps against PyTorch for every option, state dicts, groups."""
import copy

import numpy as np
import pytest

import pybackprop as pb

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")

CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.8, nesterov=True, weight_decay=0.02)),
    ("SGD", dict(lr=0.1, momentum=0.5, maximize=True)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True, maximize=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.3, amsgrad=True)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.05)),
    ("RMSprop", dict(lr=0.01, momentum=0.7, centered=True)),
    ("RMSprop", dict(lr=0.001, centered=True, maximize=True)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name,kw", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_20_steps_match_torch(name, kw, dtype, isa):
    rng = np.random.default_rng(4)
    shapes = [(17, 3), (3,), (1,), (65, 1)]
    inits = [rng.standard_normal(s).astype(dtype) for s in shapes]
    ps = [pb.nn.Parameter(a.copy()) for a in inits]
    ts = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in inits]
    opt = getattr(pb.optim, name)(ps, **kw)
    topt = getattr(torch.optim, name)(ts, **kw)
    for step in range(20):
        for p, t in zip(ps, ts):
            g = rng.standard_normal(p.shape).astype(dtype)
            p.grad = pb.tensor(g)
            t.grad = torch.from_numpy(g.copy())
        if step == 7:
            ps[1].grad = None            # a parameter without a gradient is skipped
            ts[1].grad = None
        opt.step()
        topt.step()
    rtol, atol = (1e-5, 1e-6) if dtype == np.float32 else (1e-12, 1e-13)
    for k, (p, t) in enumerate(zip(ps, ts)):
        np.testing.assert_allclose(p.numpy(), t.detach().numpy(), rtol=rtol, atol=atol, err_msg=f"param {k}")
        assert p.dtype == dtype


def test_state_dict_roundtrip_continues_identically():
    rng = np.random.default_rng(0)
    init = rng.standard_normal((4, 3))
    grads = [rng.standard_normal((4, 3)) for _ in range(10)]

    def run(split):
        p = pb.nn.Parameter(init.copy())
        opt = pb.optim.Adam([p], lr=0.05, amsgrad=True)
        for i, g in enumerate(grads):
            if i == split:
                sd = copy.deepcopy(opt.state_dict())
                p2 = pb.nn.Parameter(p.numpy().copy())
                opt = pb.optim.Adam([p2], lr=0.5)
                opt.load_state_dict(sd)
                assert opt.param_groups[0]["lr"] == 0.05
                p = p2
            p.grad = pb.tensor(g)
            opt.step()
        return p.numpy()
    np.testing.assert_array_equal(run(None), run(5))


def test_state_dict_layout_matches_torch_convention():
    p = pb.nn.Parameter(np.ones(3))
    q = pb.nn.Parameter(np.ones(2))
    opt = pb.optim.SGD([{"params": [p]}, {"params": [q], "lr": 0.5}], lr=0.1, momentum=0.9)
    p.grad = pb.tensor(np.ones(3))
    opt.step()
    sd = opt.state_dict()
    assert sd["param_groups"][0]["params"] == [0] and sd["param_groups"][1]["params"] == [1]
    assert sd["param_groups"][1]["lr"] == 0.5 and sd["param_groups"][0]["lr"] == 0.1
    assert list(sd["state"]) == [0]
    np.testing.assert_allclose(sd["state"][0]["momentum_buffer"], np.ones(3))


def test_param_groups_use_their_own_lr():
    p = pb.nn.Parameter(np.zeros(2))
    q = pb.nn.Parameter(np.zeros(2))
    opt = pb.optim.SGD([{"params": [p]}, {"params": [q], "lr": 1.0}], lr=0.1)
    for t in (p, q):
        t.grad = pb.tensor(np.ones(2))
    opt.step()
    np.testing.assert_allclose(p.numpy(), [-0.1, -0.1])
    np.testing.assert_allclose(q.numpy(), [-1.0, -1.0])


def test_zero_grad_sets_none_by_default():
    p = pb.nn.Parameter(np.zeros(2))
    opt = pb.optim.SGD([p], lr=0.1)
    p.grad = pb.tensor(np.ones(2))
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad.numpy(), [0, 0])
    opt.zero_grad()
    assert p.grad is None


def test_step_bumps_version_so_stale_graphs_are_caught():
    w = pb.nn.Parameter(np.ones((2, 2)))
    x = pb.tensor(np.ones((1, 2)), requires_grad=True)
    y = (x @ w).sum()
    w.grad = pb.tensor(np.ones((2, 2)))
    pb.optim.SGD([w], lr=0.1).step()
    with pytest.raises(RuntimeError, match="in-place"):
        y.backward()


def test_invalid_arguments():
    p = pb.nn.Parameter(np.zeros(2))
    with pytest.raises(ValueError):
        pb.optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError):
        pb.optim.SGD([], lr=0.1)
    with pytest.raises(ValueError):
        pb.optim.Adam([p], betas=(1.0, 0.9))
    with pytest.raises(ValueError):
        pb.optim.SGD([p, p * 2], lr=0.1)


def test_closure():
    p = pb.nn.Parameter(np.array([3.0]))
    opt = pb.optim.SGD([p], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss
    loss = opt.step(closure)
    assert loss.item() == 9.0 and p.item() == pytest.approx(1.5)


@pytest.mark.parametrize("sched", ["step", "cosine"])
def test_schedulers_match_torch(sched):
    p = pb.nn.Parameter(np.zeros(1))
    t = torch.nn.Parameter(torch.zeros(1))
    opt = pb.optim.SGD([p], lr=0.3, momentum=0.9)
    topt = torch.optim.SGD([t], lr=0.3, momentum=0.9)
    if sched == "step":
        s = pb.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
        ts = torch.optim.lr_scheduler.StepLR(topt, step_size=3, gamma=0.5)
    else:
        s = pb.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=7, eta_min=0.01)
        ts = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=7, eta_min=0.01)
    for epoch in range(25):
        assert s.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-12), epoch
        assert opt.param_groups[0]["lr"] == pytest.approx(topt.param_groups[0]["lr"], rel=1e-12)
        p.grad = pb.tensor(np.ones(1, np.float32))
        t.grad = torch.ones(1)
        opt.step()
        topt.step()
        s.step()
        ts.step()
    np.testing.assert_allclose(p.numpy(), t.detach().numpy(), rtol=1e-5)
    sd = s.state_dict()
    assert sd["last_epoch"] == 25 and "optimizer" not in sd
