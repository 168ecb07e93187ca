"""pb.save / pb.load: round trips, exact path, no code execution, corrupt files, atomic writes."""
import json
import math
import os
import pickle
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import pybackprop as pb
from pybackprop import serialization
from pybackprop.serialization import load, save


def assert_same(a, b):
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, np.generic):
        assert a.dtype == b.dtype and (a == b or (a != a and b != b))
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b


def nested_state(dtype):
    rng = np.random.default_rng(0)
    return {
        "model": {"0.weight": rng.standard_normal((5, 3)).astype(dtype), "0.bias": np.zeros(3, dtype),
                  "empty": np.zeros((0, 4), dtype)},
        "optimizer": {"state": {0: {"step": 3, "exp_avg": rng.standard_normal(4).astype(dtype)},
                                1: {"step": 3, "momentum_buffer": None}},
                      "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "params": [0, 1],
                                        "nesterov": False, "name": "grüße"}]},
        "epoch": 4, "big": 2**70, "neg": -7, "floats": [0.1, -0.0, float("inf"), float("nan"), 1e-310],
        "np_scalars": (np.float32(1.5), np.int64(-3), np.float64("nan")),
        "ints": np.arange(6, dtype=np.int64).reshape(2, 3), "bools": np.array([True, False]),
        "empty_dict": {}, "empty_list": [], "unit": (), "none": None, "flag": True,
    }


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_nested_state(tmp_path, dtype):
    state = nested_state(dtype)
    p = tmp_path / "state.pb"
    save(state, p)
    assert os.listdir(tmp_path) == ["state.pb"]       # exactly the path, no .npz added, no debris
    assert_same(state, load(p))
    save(state, str(tmp_path / "s2"))                  # str paths too, no extension at all
    assert_same(state, load(str(tmp_path / "s2")))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tensors_come_back_as_tensors(tmp_path, dtype):
    w = pb.tensor(np.arange(6, dtype=dtype).reshape(2, 3), requires_grad=True)
    b = pb.tensor(np.ones(3, dtype=dtype))
    save({"w": w, "nested": [b, (w,)]}, tmp_path / "t")
    out = load(tmp_path / "t")
    for t, ref in ((out["w"], w), (out["nested"][0], b), (out["nested"][1][0], w)):
        assert isinstance(t, pb.Tensor)
        assert np.dtype(t.numpy().dtype) == np.dtype(dtype)
        np.testing.assert_array_equal(t.numpy(), ref.numpy())
    assert out["w"].requires_grad and not out["nested"][0].requires_grad


def test_model_and_optimizer_state_dicts_round_trip(tmp_path):
    pb.manual_seed(0)
    model = pb.nn.Sequential(pb.nn.Linear(4, 8), pb.nn.ReLU(), pb.nn.Linear(8, 3))
    opt = pb.optim.Adam(model.parameters(), lr=1e-2)
    X = np.random.default_rng(0).standard_normal((16, 4)).astype(np.float32)
    y = np.arange(16) % 3
    loss_fn = pb.nn.CrossEntropyLoss()
    for _ in range(3):
        opt.zero_grad()
        loss_fn(model(X), y).backward()
        opt.step()
    save({"model": model.state_dict(), "optimizer": opt.state_dict()}, tmp_path / "ckpt")
    ck = load(tmp_path / "ckpt")
    pb.manual_seed(1)
    model2 = pb.nn.Sequential(pb.nn.Linear(4, 8), pb.nn.ReLU(), pb.nn.Linear(8, 3))
    opt2 = pb.optim.Adam(model2.parameters(), lr=1e-2)
    model2.load_state_dict(ck["model"])
    opt2.load_state_dict(ck["optimizer"])
    for m, o in ((model, opt), (model2, opt2)):    # one more identical step on both
        o.zero_grad()
        loss_fn(m(X), y).backward()
        o.step()
    for (n1, p1), (n2, p2) in zip(model.named_parameters(), model2.named_parameters()):
        assert n1 == n2
        np.testing.assert_array_equal(p1.numpy(), p2.numpy())


def test_unsupported_objects_are_refused(tmp_path):
    with pytest.raises(TypeError, match="set"):
        save({"a": {1, 2}}, tmp_path / "x")
    with pytest.raises(TypeError, match="object"):
        save({"a": np.array([None, 1], dtype=object)}, tmp_path / "x")
    with pytest.raises(TypeError, match="lambda|function"):
        save([lambda: 0], tmp_path / "x")
    assert not os.path.exists(tmp_path / "x") and os.listdir(tmp_path) == []


def load_error(path):
    with pytest.raises(ValueError) as info:
        load(path)
    assert str(path) in str(info.value)
    return str(info.value)


def test_corrupt_truncated_and_foreign_files(tmp_path):
    p = tmp_path / "good"
    save(nested_state(np.float32), p)
    data = p.read_bytes()
    for cut in (0, 10, len(data) // 2, len(data) - 1):
        (tmp_path / "cut").write_bytes(data[:cut])
        load_error(tmp_path / "cut")
    # flip one byte inside an array's data: the zip CRC catches it
    weights = nested_state(np.float32)["model"]["0.weight"].tobytes()
    at = data.find(weights)
    assert at > 0
    damaged = bytearray(data)
    damaged[at + 7] ^= 0x55
    (tmp_path / "flip").write_bytes(bytes(damaged))
    load_error(tmp_path / "flip")
    # foreign files
    np.save(tmp_path / "arr.npy", np.ones(3))
    assert ".npy" in load_error(tmp_path / "arr.npy")
    np.savez(tmp_path / "plain.npz", a=np.ones(3))
    assert "header" in load_error(tmp_path / "plain.npz")
    (tmp_path / "text").write_text("hello")
    load_error(tmp_path / "text")
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing")


def forge(path, header, arrays=()):
    members = {"__pybackprop__": np.frombuffer(json.dumps(header).encode(), np.uint8)}
    members.update({f"a{i}": a for i, a in enumerate(arrays)})
    with open(path, "wb") as f:
        np.savez(f, **members)


def test_forged_structures_are_rejected(tmp_path):
    base = {"format": "pybackprop.save", "version": 1}
    cases = {
        "version": dict(base, version=99, arrays=0, tree=None),
        "format": dict(base, format="other", arrays=0, tree=None),
        "missing array": dict(base, arrays=1, tree={"array": 0}),
        "bad ref": dict(base, arrays=0, tree={"array": 3}),
        "unknown node": dict(base, arrays=0, tree={"code": "import os"}),
        "bad dict": dict(base, arrays=0, tree={"dict": [[{"s": "a"}]]}),
        "list key": dict(base, arrays=0, tree={"dict": [[{"list": []}, None]]}),
        "bad int": dict(base, arrays=0, tree={"i": "12x"}),
    }
    for name, header in cases.items():
        forge(tmp_path / name.replace(" ", "_"), header)
        load_error(tmp_path / name.replace(" ", "_"))
    forge(tmp_path / "unused", dict(base, arrays=1, tree=None), [np.ones(2)])
    assert "not referenced" in load_error(tmp_path / "unused")


def test_pickled_member_is_never_unpickled(tmp_path):
    class Boom:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))
    p = tmp_path / "evil"
    with zipfile.ZipFile(p, "w") as zf:
        header = {"format": "pybackprop.save", "version": 1, "arrays": 1, "tree": {"array": 0}}
        with zf.open("__pybackprop__.npy", "w") as f:
            np.save(f, np.frombuffer(json.dumps(header).encode(), np.uint8))
        with zf.open("a0.npy", "w") as f:
            np.save(f, np.array([Boom()], dtype=object), allow_pickle=True)
    load_error(p)
    assert not os.path.exists(tmp_path / "pwned")
    # and a raw pickle file is refused too
    (tmp_path / "raw").write_bytes(pickle.dumps(Boom()))
    load_error(tmp_path / "raw")
    assert not os.path.exists(tmp_path / "pwned")


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    p = tmp_path / "model"
    old = {"version": "old", "w": np.arange(1000, dtype=np.float32)}
    save(old, p)
    before = p.read_bytes()
    real_savez = np.savez

    def half_then_fail(f, **members):      # write some bytes, then die like a full disk would
        real_savez(f, **members)
        f.truncate(f.tell() // 2)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(serialization.np, "savez", half_then_fail)
    with pytest.raises(OSError, match="space"):
        save({"version": "new", "w": np.zeros(5000)}, p)
    assert p.read_bytes() == before and os.listdir(tmp_path) == ["model"]   # temp file removed
    monkeypatch.setattr(serialization.np, "savez", real_savez)

    def no_rename(src, dst):
        raise KeyboardInterrupt
    monkeypatch.setattr(serialization.os, "replace", no_rename)
    with pytest.raises(KeyboardInterrupt):
        save({"version": "new"}, p)
    assert_same(load(p), old)
    assert p.read_bytes() == before and os.listdir(tmp_path) == ["model"]


def test_crash_mid_write_leaves_old_file_intact(tmp_path):
    """A process killed (os._exit, no cleanup) after writing part of the new file but before the rename."""
    p = tmp_path / "model"
    save({"version": "old", "w": np.arange(10, dtype=np.float64)}, p)
    before = p.read_bytes()
    script = textwrap.dedent(f"""
        import os, numpy as np
        from pybackprop import serialization
        def crash(fd):             # the data has been written to the temp file; die before fsync/rename
            os._exit(3)
        serialization.os.fsync = crash
        serialization.save({{"version": "new", "w": np.zeros(200000)}}, {str(p)!r})
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                       cwd=tmp_path)          # not the repo root, whose source tree would shadow the install
    assert r.returncode == 3, r.stderr
    assert p.read_bytes() == before
    out = load(p)
    assert out["version"] == "old"
    debris = [n for n in os.listdir(tmp_path) if n != "model"]
    assert all(n.startswith(".model.") and n.endswith(".tmp") for n in debris)


def test_overwrite_and_permissions(tmp_path):
    p = tmp_path / "m"
    save({"a": 1}, p)
    save({"a": 2}, p)
    assert load(p) == {"a": 2}
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(p).st_mode & 0o777 == 0o666 & ~umask
