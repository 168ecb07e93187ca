"""In-place optimiser updates against a float64 numpy transcription of PyTorch's
`_single_tensor_{sgd,adam,rmsprop}` and against torch.optim when torch is installed."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pybackprop import _core

SIZES = [0, 1, 7, 8, 9, 15, 16, 17, 1000, 33333, 100_352]  # the last splits over two threads


def tol(dtype):
    return (2e-5, 1e-6) if dtype == np.float32 else (1e-12, 1e-14)


# ---- numpy transcriptions of torch/optim (float64) ----

def np_sgd(p, g, st_, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False):
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * p
    if momentum:
        st_["buf"] = g.copy() if "buf" not in st_ else momentum * st_["buf"] + (1 - dampening) * g
        g = g + momentum * st_["buf"] if nesterov else st_["buf"]
    return p - lr * g


def np_adam(p, g, st_, lr, beta1, beta2, eps, weight_decay, decoupled, amsgrad=False, maximize=False):
    g = -g if maximize else g
    st_["step"] = st_.get("step", 0) + 1
    step = st_["step"]
    if decoupled:
        p = p * (1 - lr * weight_decay)
    elif weight_decay:
        g = g + weight_decay * p
    st_["m"] = st_.get("m", 0) + (1 - beta1) * (g - st_.get("m", 0))
    st_["v"] = st_.get("v", 0) * beta2 + (1 - beta2) * g * g
    v = st_["v"]
    if amsgrad:
        st_["vmax"] = np.maximum(st_.get("vmax", 0), v)
        v = st_["vmax"]
    denom = np.sqrt(v) / np.sqrt(1 - beta2 ** step) + eps
    return p - lr / (1 - beta1 ** step) * st_["m"] / denom


def np_rmsprop(p, g, st_, lr, alpha, eps, weight_decay=0.0, momentum=0.0, centered=False, maximize=False):
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * p
    st_["sq"] = st_.get("sq", 0) * alpha + (1 - alpha) * g * g
    if centered:
        st_["gavg"] = st_.get("gavg", 0) + (1 - alpha) * (g - st_.get("gavg", 0))
        avg = np.sqrt(st_["sq"] - st_["gavg"] ** 2) + eps
    else:
        avg = np.sqrt(st_["sq"]) + eps
    if momentum > 0:
        st_["buf"] = st_.get("buf", 0) * momentum + g / avg
        return p - lr * st_["buf"]
    return p - lr * g / avg


SGD_CASES = [dict(lr=0.1), dict(lr=0.1, momentum=0.9), dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01),
             dict(lr=0.1, momentum=0.8, nesterov=True, weight_decay=0.1), dict(lr=0.1, momentum=0.5, maximize=True)]
ADAM_CASES = [dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled=False),
              dict(lr=1e-2, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.1, decoupled=False, amsgrad=True),
              dict(lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01, decoupled=True),
              dict(lr=1e-2, beta1=0.3, beta2=0.9, eps=1e-8, weight_decay=0.05, decoupled=True, amsgrad=True,
                   maximize=True)]
RMS_CASES = [dict(lr=1e-2, alpha=0.99, eps=1e-8), dict(lr=1e-2, alpha=0.9, eps=1e-6, weight_decay=0.1, momentum=0.9),
             dict(lr=1e-3, alpha=0.99, eps=1e-8, centered=True), dict(lr=1e-2, alpha=0.95, eps=1e-8, centered=True,
                                                                     momentum=0.5, maximize=True)]


def run_ours(kind, p, grads, cfg):
    """Apply len(grads) steps of our kernel in place; returns p (float array of p's dtype)."""
    z = lambda: np.zeros_like(p)  # noqa: E731
    if kind == "sgd":
        buf = z() if cfg.get("momentum", 0) else None
        for i, g in enumerate(grads):
            _core.sgd_update(p, g, buf, first_step=(i == 0), **cfg)
    elif kind == "adam":
        cfg = dict(cfg)
        ams = cfg.pop("amsgrad", False)
        m, v, vmax = z(), z(), (z() if ams else None)
        for i, g in enumerate(grads):
            _core.adam_update(p, g, m, v, vmax, step=i + 1, **cfg)
    else:
        sq = z()
        gavg = z() if cfg.get("centered") else None
        buf = z() if cfg.get("momentum", 0) > 0 else None
        for g in grads:
            _core.rmsprop_update(p, g, sq, gavg, buf, **cfg)
    return p


def run_ref(kind, p, grads, cfg):
    p = p.astype(np.float64)
    st_ = {}
    fn = {"sgd": np_sgd, "adam": np_adam, "rmsprop": np_rmsprop}[kind]
    for g in grads:
        p = fn(p, g.astype(np.float64), st_, **cfg)
    return p


CASES = [("sgd", c) for c in SGD_CASES] + [("adam", c) for c in ADAM_CASES] + [("rmsprop", c) for c in RMS_CASES]
IDS = [f"{k}{i}" for i, (k, _) in enumerate(CASES)]


@pytest.mark.parametrize("kind,cfg", CASES, ids=IDS)
@pytest.mark.parametrize("n", SIZES)
def test_matches_numpy_transcription(isa, dtype, kind, cfg, n, rng):
    p0 = rng.standard_normal(n).astype(dtype)
    grads = [rng.standard_normal(n).astype(dtype) for _ in range(4)]
    got = run_ours(kind, p0.copy(), grads, cfg)
    want = run_ref(kind, p0, grads, cfg)
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


@pytest.mark.parametrize("kind,cfg", CASES, ids=IDS)
def test_against_torch_optim(isa, dtype, kind, cfg, rng):
    torch = pytest.importorskip("torch", reason="torch is not installed")
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    p0 = rng.standard_normal((13, 7)).astype(dtype)
    grads = [rng.standard_normal((13, 7)).astype(dtype) for _ in range(5)]
    tp = torch.nn.Parameter(torch.tensor(p0, dtype=tdtype))
    c = dict(cfg)
    if kind == "sgd":
        opt = torch.optim.SGD([tp], foreach=False, **c)
    elif kind == "adam":
        cls = torch.optim.AdamW if c.pop("decoupled") else torch.optim.Adam
        betas = (c.pop("beta1"), c.pop("beta2"))
        opt = cls([tp], betas=betas, foreach=False, **c)
    else:
        opt = torch.optim.RMSprop([tp], foreach=False, **c)
    for g in grads:
        tp.grad = torch.tensor(g, dtype=tdtype)
        opt.step()
    got = run_ours(kind, p0.copy(), grads, cfg)
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(got, tp.detach().numpy(), rtol=rtol, atol=atol)


# The avx512 path runs the avx2 path's loops in zmm registers (optim_kernels_x86.h):
# every lane, the vector body and the tail, gets the same bits on both.
@pytest.mark.skipif("avx512" not in _core.supported_isas(), reason="this CPU has no AVX-512F/VL")
@pytest.mark.parametrize("kind,cfg", CASES, ids=IDS)
@pytest.mark.parametrize("n", [1, 15, 17, 1003])
def test_avx512_path_equals_avx2_path(dtype, kind, cfg, n, rng):
    p0 = rng.standard_normal(n).astype(dtype)
    grads = [rng.standard_normal(n).astype(dtype) for _ in range(4)]
    before = _core.active_isa()
    outs = []
    try:
        for isa in ("avx2", "avx512"):
            _core._set_isa(isa)
            outs.append(run_ours(kind, p0.copy(), grads, cfg))
    finally:
        _core._set_isa(before)
    assert not np.array_equal(outs[0], p0)  # (the steps did something)
    uint = np.uint32 if dtype == np.float32 else np.uint64
    assert np.array_equal(outs[0].view(uint), outs[1].view(uint))


def test_bit_identical_threads_and_state(isa, dtype, rng):
    n = 1_000_003
    p0 = rng.standard_normal(n).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    before = _core.get_num_threads()
    outs = []
    try:
        for t in (1, 2):
            _core.set_num_threads(t)
            p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
            for s in (1, 2):
                _core.adam_update(p, g, m, v, None, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
                                  decoupled=False, step=s)
            outs.append((p, m, v))
    finally:
        _core.set_num_threads(before)
    for a, b in zip(*outs):
        assert np.array_equal(a, b)


def test_errors():
    p = np.zeros((4, 3))
    g = np.zeros((4, 3))
    adam = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled=False, step=1)
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.sgd_update(np.zeros((4, 6))[:, ::2], g, None, lr=0.1)
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.adam_update(p, g, np.zeros((3, 4)).T, np.zeros_like(p), None, **adam)
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(3, 4\)"):
        _core.sgd_update(p, np.zeros((3, 4)), None, lr=0.1)
    with pytest.raises(ValueError, match=r"\(4, 3\).*\(12,\)"):
        _core.adam_update(p, g, np.zeros(12), np.zeros_like(p), None, **adam)
    with pytest.raises(TypeError, match="float64 and float32"):
        _core.adam_update(p, g, np.zeros((4, 3), np.float32), np.zeros_like(p), None, **adam)
    with pytest.raises(TypeError, match="float64 and float32"):
        _core.sgd_update(p, g.astype(np.float32), None, lr=0.1)
    with pytest.raises(TypeError, match="numpy array"):
        _core.sgd_update([0.0, 1.0], [0.0, 1.0], None, lr=0.1)
    with pytest.raises(TypeError, match="int64"):
        _core.sgd_update(np.zeros(3, np.int64), np.zeros(3, np.int64), None, lr=0.1)
    with pytest.raises(ValueError, match="buf is required"):
        _core.sgd_update(p, g, None, lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="gavg is required"):
        _core.rmsprop_update(p, g, np.zeros_like(p), None, None, lr=0.1, alpha=0.99, eps=1e-8, centered=True)
    with pytest.raises(ValueError, match="Nesterov"):
        _core.sgd_update(p, g, np.zeros_like(p), lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)
    with pytest.raises(ValueError, match="step"):
        _core.adam_update(p, g, np.zeros_like(p), np.zeros_like(p), None, **dict(adam, step=0))
    with pytest.raises(TypeError, match="step"):
        _core.adam_update(p, g, np.zeros_like(p), np.zeros_like(p), None, **dict(adam, step=1.5))
    ro = np.zeros(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _core.sgd_update(ro, np.zeros(3), None, lr=0.1)


def test_gradient_may_be_noncontiguous_and_readonly(isa, dtype, rng):
    p0 = rng.standard_normal((5, 4)).astype(dtype)
    gbase = rng.standard_normal((4, 5)).astype(dtype)
    g = gbase.T  # Fortran-ordered view
    g.flags.writeable = False
    p = p0.copy()
    _core.sgd_update(p, g, None, lr=0.5)
    np.testing.assert_allclose(p, p0 - 0.5 * g.astype(np.float64), rtol=tol(dtype)[0], atol=tol(dtype)[1])


@settings(max_examples=40, deadline=None)
@given(case=st.integers(0, len(CASES) - 1), n=st.integers(0, 40), seed=st.integers(0, 2 ** 32 - 1),
       steps=st.integers(1, 4), f64=st.booleans())
def test_property_updates(case, n, seed, steps, f64):
    dtype = np.float64 if f64 else np.float32
    kind, cfg = CASES[case]
    rng = np.random.default_rng(seed)
    p0 = (rng.standard_normal(n) * 10).astype(dtype)
    grads = [(rng.standard_normal(n) * 10).astype(dtype) for _ in range(steps)]
    got = run_ours(kind, p0.copy(), grads, cfg)
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(got, run_ref(kind, p0, grads, cfg), rtol=rtol, atol=10 * atol)


# ---- aliased parameter / state / gradient buffers are rejected (review finding) ----

def _adam_kw():
    return dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled=False, step=1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_aliased_buffers_rejected(dtype):
    p = np.ones(8, dtype)
    g = np.full(8, 0.5, dtype)
    big = np.zeros(16, dtype)
    m, v = np.zeros(8, dtype), np.zeros(8, dtype)
    with pytest.raises(ValueError, match=r"\bp\b.*\bbuf\b|\bbuf\b.*\bp\b"):
        _core.sgd_update(p, g, p[:], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match=r"buf"):
        _core.sgd_update(big[:8], g, big[4:12], lr=0.1, momentum=0.9)  # partial overlap
    with pytest.raises(ValueError, match=r"grad.*p|p.*grad"):
        _core.sgd_update(p, p, None, lr=0.1)
    with pytest.raises(ValueError, match=r"grad.*buf|buf.*grad"):
        _core.sgd_update(p, big[2:10], big[:8], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match=r"\bm\b.*\bv\b"):
        _core.adam_update(p, g, m, m, None, **_adam_kw())
    with pytest.raises(ValueError, match=r"\bv\b.*vmax"):
        _core.adam_update(p, g, m, v, v[:], **_adam_kw())
    with pytest.raises(ValueError, match=r"\bp\b.*\bm\b"):
        _core.adam_update(p, g, p.view(), v, None, **_adam_kw())
    with pytest.raises(ValueError, match=r"grad.*\bv\b|\bv\b.*grad"):
        _core.adam_update(p, v, m, v, None, **_adam_kw())
    with pytest.raises(ValueError, match=r"sq.*gavg"):
        _core.rmsprop_update(p, g, m, m, None, lr=0.1, alpha=0.99, eps=1e-8, centered=True)
    with pytest.raises(ValueError, match=r"\bp\b.*\bbuf\b"):
        _core.rmsprop_update(p, g, m, None, p, lr=0.1, alpha=0.99, eps=1e-8, momentum=0.9)
    # nothing was modified by the rejected calls
    np.testing.assert_array_equal(p, 1.0)
    np.testing.assert_array_equal(m, 0.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adjacent_buffers_and_noncontiguous_grad_view_accepted(dtype):
    big = np.zeros(24, dtype)
    p, buf, g = big[:8], big[8:16], big[16:24]
    p[:] = 1
    g[:] = 0.5
    _core.sgd_update(p, g, buf, lr=0.1, momentum=0.9, first_step=True)
    np.testing.assert_allclose(p, 0.95)
    # a non-contiguous gradient that views p is copied before the update: fine
    q = np.ones(16, dtype)
    _core.sgd_update(q[:8], q[::2].copy(), None, lr=0.1)
    np.testing.assert_allclose(q[:8], 0.9)
    # empty arrays never overlap
    e = np.zeros(0, dtype)
    _core.adam_update(e, e.copy(), e.copy(), e.copy(), None, **_adam_kw())
