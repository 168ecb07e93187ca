"""The `pybackprop` command on a tiny synthetic IDX data set (fast): outputs, evaluate/predict checked
against a numpy forward pass, Ctrl-C + --resume giving bit-identical weights, one-line errors."""
import gzip
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

from pybackprop import cli, datasets
from pybackprop.serialization import load

try:
    import matplotlib  # noqa: F401
    HAVE_MATPLOTLIB = True
except ImportError:
    HAVE_MATPLOTLIB = False


def idx_bytes(arr):
    code = {np.uint8: 0x08}[arr.dtype.type]
    return struct.pack(">BBBB", 0, 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def make_blobs_idx(root, n_train=400, n_test=120, side=6, classes=3, seed=0):
    """Learnable images: class k lights up band k of the image, plus noise."""
    rng = np.random.default_rng(seed)
    os.makedirs(root, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        y = rng.integers(0, classes, n).astype(np.uint8)
        img = rng.integers(0, 90, (n, side, side)).astype(np.int32)
        for k in range(classes):
            img[y == k, 2 * k:2 * k + 2, :] += 150
        img = np.clip(img, 0, 255).astype(np.uint8)
        with open(os.path.join(root, f"{prefix}-images-idx3-ubyte.gz"), "wb") as f:
            f.write(gzip.compress(idx_bytes(img)))
        with open(os.path.join(root, f"{prefix}-labels-idx1-ubyte"), "wb") as f:
            f.write(idx_bytes(y))
    return root


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_blobs_idx(str(tmp_path_factory.mktemp("idx") / "blobs"))


def train_args(data_dir, out, *extra):
    return ["train", "--dataset", f"idx:{data_dir}", "--hidden", "16,8", "--epochs", "3", "--batch-size", "32",
            "--val-split", "0.2", "--lr", "0.01", "--no-progress", "--output", str(out), *extra]


def numpy_forward(state, X, n_layers):
    """Reference forward pass of the saved ReLU MLP (Y = X W + b), float64."""
    h = X.astype(np.float64)
    keys = sorted({k.split(".")[0] for k in state}, key=int)
    assert len(keys) == n_layers
    for i, k in enumerate(keys):
        W, b = state[f"{k}.weight"], state[f"{k}.bias"]
        W = W.numpy() if hasattr(W, "numpy") else W
        b = b.numpy() if hasattr(b, "numpy") else b
        h = h @ W.astype(np.float64) + b.astype(np.float64)
        if i + 1 < len(keys):
            h = np.maximum(h, 0)
    return h


def weights(path):
    blob = load(path)
    sd = blob["state_dict"] if "state_dict" in blob else blob["model"]
    return {k: (v.numpy() if hasattr(v, "numpy") else v) for k, v in sd.items()}


def test_train_writes_a_complete_run(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(train_args(data_dir, out)) == 0
    text = capsys.readouterr().out
    lines = [l for l in text.splitlines() if l.startswith("epoch ")]
    assert len(lines) == 3 and "train loss" in lines[0] and "val loss" in lines[0] and "samples/s" in lines[0]
    assert "test accuracy" in text
    for name in ("model.pb", "checkpoint.pb", "config.json", "metrics.csv", "metrics.json"):
        assert (out / name).is_file(), name
    if HAVE_MATPLOTLIB:
        assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert "pip install pybackprop[train]" in text
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["train"]["hidden"] == [16, 8] and cfg["model"]["in_features"] == 36 and cfg["model"]["classes"] == 3
    assert cfg["examples"] == {"train": 320, "val": 80, "test": 120}
    m = json.loads((out / "metrics.json").read_text())
    assert [r["epoch"] for r in m["epochs"]] == [1, 2, 3]
    csv_rows = (out / "metrics.csv").read_text().splitlines()
    assert csv_rows[0].startswith("epoch,train_loss,train_acc,val_loss,val_acc") and len(csv_rows) == 4
    # the reported test accuracy is the one of the saved weights (numpy reference forward pass)
    _, _, Xte, yte = datasets.idx_dir(data_dir)
    logits = numpy_forward(weights(out / "model.pb"), Xte, 3)
    ref_acc = float((logits.argmax(1) == yte).mean())
    assert abs(m["test"]["accuracy"] - ref_acc) < 1e-9
    assert ref_acc > 0.9                  # the blobs are easy: the net really learned
    assert m["epochs"][-1]["train_loss"] < m["epochs"][0]["train_loss"]


def test_evaluate_and_predict_match_numpy(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(train_args(data_dir, out)) == 0
    capsys.readouterr()
    _, _, Xte, yte = datasets.idx_dir(data_dir)
    logits = numpy_forward(weights(out / "model.pb"), Xte, 3)
    pred = logits.argmax(1)

    assert cli.main(["evaluate", "--model", str(out)]) == 0
    text = capsys.readouterr().out
    acc = float(text.split("test accuracy ")[1].split()[0])
    assert abs(acc - (pred == yte).mean()) < 1e-4
    z = logits - logits.max(1, keepdims=True)
    ce = float(np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(len(yte)), yte]))
    assert abs(float(text.split("test loss ")[1].split()[0]) - ce) < 1e-3
    rows = text.split("predicted class)\n")[1].splitlines()[1:4]
    cm = np.array([[int(v) for v in r.split()[2:]] for r in rows])
    np.testing.assert_array_equal(cm, np.bincount(yte * 3 + pred, minlength=9).reshape(3, 3))
    if HAVE_MATPLOTLIB:
        assert (out / "confusion.png").read_bytes()[:4] == b"\x89PNG"

    # predict: uint8 images (N, 6, 6) are scaled like training; float rows are used as they are
    raw = np.round(Xte[:5] * 255).astype(np.uint8).reshape(5, 6, 6)
    np.save(tmp_path / "x.npy", raw)
    assert cli.main(["predict", "--model", str(out), str(tmp_path / "x.npy")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()[1:]
    assert len(lines) == 5
    p = np.exp(z[:5]) / np.exp(z[:5]).sum(1, keepdims=True)
    for line, pi in zip(lines, p):
        fields = line.split()
        assert int(fields[1]) == pi.argmax()
        np.testing.assert_allclose([float(v) for v in fields[-3:]], pi, atol=2e-4)
    np.save(tmp_path / "f.npy", Xte[:2].astype(np.float64))
    assert cli.main(["predict", "--model", str(out / "model.pb"), str(tmp_path / "f.npy")]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3


def test_stop_and_resume_is_bit_identical(data_dir, tmp_path, capsys):
    ref = tmp_path / "ref"
    assert cli.main(train_args(data_dir, ref)) == 0
    w_ref = weights(ref / "model.pb")
    batches_per_epoch = 10                 # 320 / 32
    for stop in (4, batches_per_epoch, 2 * batches_per_epoch + 7):   # mid-epoch, at an epoch end, late
        run = tmp_path / f"stop{stop}"
        assert cli.main(train_args(data_dir, run, "--stop-after-batches", str(stop))) == 130
        assert (run / "checkpoint.pb").is_file() and not (run / "model.pb").exists()
        assert "--resume" in capsys.readouterr().out
        assert cli.main(["train", "--resume", str(run), "--no-progress"]) == 0
        w = weights(run / "model.pb")
        assert w.keys() == w_ref.keys()
        for k in w:
            assert np.array_equal(w[k], w_ref[k]), (stop, k)
        m_ref = json.loads((ref / "metrics.json").read_text())
        m = json.loads((run / "metrics.json").read_text())
        for a, b in zip(m["epochs"], m_ref["epochs"]):
            assert (a["train_loss"], a["train_acc"], a["val_loss"]) == (b["train_loss"], b["train_acc"], b["val_loss"])
        assert m["test"] == m_ref["test"]


def test_resume_with_dropout_and_sgd_momentum(data_dir, tmp_path, capsys):
    extra = ("--dropout", "0.3", "--optimizer", "sgd", "--lr", "0.1", "--momentum", "0.9")
    assert cli.main(train_args(data_dir, tmp_path / "ref", *extra)) == 0
    assert cli.main(train_args(data_dir, tmp_path / "int", *extra, "--stop-after-batches", "13")) == 130
    assert cli.main(["train", "--resume", str(tmp_path / "int"), "--no-progress"]) == 0
    w_ref, w = weights(tmp_path / "ref" / "model.pb"), weights(tmp_path / "int" / "model.pb")
    for k in w:
        assert np.array_equal(w[k], w_ref[k]), k


def test_resume_can_extend_epochs(data_dir, tmp_path, capsys):
    assert cli.main(train_args(data_dir, tmp_path / "a")) == 0
    assert cli.main(["train", "--resume", str(tmp_path / "a"), "--epochs", "5", "--no-progress"]) == 0
    assert len(json.loads((tmp_path / "a" / "metrics.json").read_text())["epochs"]) == 5
    assert cli.main(train_args(data_dir, tmp_path / "b", "--epochs", "5")) == 0
    wa, wb = weights(tmp_path / "a" / "model.pb"), weights(tmp_path / "b" / "model.pb")
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)
    assert cli.main(["train", "--resume", str(tmp_path / "a"), "--no-progress"]) == 0
    assert "already trained 5 epochs" in capsys.readouterr().out


def test_same_seed_same_weights_other_seed_differs(data_dir, tmp_path):
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        assert cli.main(train_args(data_dir, tmp_path / name, "--seed", seed, "--epochs", "1")) == 0
    wa, wb, wc = (weights(tmp_path / n / "model.pb") for n in "abc")
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)
    assert not all(np.array_equal(wa[k], wc[k]) for k in wa)


def test_flags_shape_the_run(data_dir, tmp_path, capsys):
    out = tmp_path / "r"
    assert cli.main(train_args(data_dir, out, "--hidden", "none", "--limit", "100", "--val-split", "0",
                               "--dtype", "float64", "--activation", "tanh", "--optimizer", "adamw",
                               "--weight-decay", "0.01", "--threads", "1")) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["examples"]["train"] == 100 and cfg["examples"]["val"] == 0
    w = weights(out / "model.pb")
    assert list(w) == ["0.weight", "0.bias"] and w["0.weight"].dtype == np.float64
    assert w["0.weight"].shape == (36, 3)
    assert "val loss" not in capsys.readouterr().out.split("epoch 1/3")[1].splitlines()[0]


def test_without_matplotlib_or_tqdm(data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "_matplotlib", lambda: None)
    monkeypatch.setitem(sys.modules, "tqdm", None)           # import tqdm -> ImportError
    assert cli.main(train_args(data_dir, tmp_path / "r", "--epochs", "1")) == 0
    text = capsys.readouterr().out
    assert "pip install pybackprop[train]" in text and not (tmp_path / "r" / "curves.png").exists()
    assert (tmp_path / "r" / "model.pb").is_file()


def test_progress_bar_with_tqdm(data_dir, tmp_path, capsys):
    pytest.importorskip("tqdm")
    args = [a for a in train_args(data_dir, tmp_path / "r", "--epochs", "1") if a != "--no-progress"]
    assert cli.main(args) == 0
    err = capsys.readouterr().err
    assert "samples/s" in err and "loss" in err


def run_cli(*args, timeout=120, cwd=None, **kw):
    # Never from the repository root: `python -m` puts the working directory first on sys.path,
    # and there the unbuilt source tree would shadow the installed package.
    return subprocess.run([sys.executable, "-m", "pybackprop", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd or tempfile.gettempdir(), **kw)


def one_line_error(r, *fragments):
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


def test_one_line_errors(data_dir, tmp_path):
    one_line_error(run_cli("train", "--epochs", "0"), "--epochs", "positive")
    one_line_error(run_cli("train", "--lr", "abc"), "--lr")
    one_line_error(run_cli("train", "--activation", "swish"), "--activation")
    one_line_error(run_cli("train", "--bogus"), "--bogus")
    one_line_error(run_cli("train", "--dropout", "1.5"), "--dropout")
    one_line_error(run_cli("frobnicate"), "frobnicate")
    one_line_error(run_cli(), "COMMAND")
    one_line_error(run_cli("train", "--dataset", f"idx:{tmp_path / 'nowhere'}"), "nowhere")
    one_line_error(run_cli("train", "--dataset", "cifar10"), "unknown dataset")
    one_line_error(run_cli("train", "--data-root", str(tmp_path / "nofm")), "apt-get install dataset-fashion-mnist")
    one_line_error(run_cli("train", "--optimizer", "adam", "--momentum", "0.9"), "--momentum")
    one_line_error(run_cli("evaluate", "--model", str(tmp_path / "none")), "no trained model")
    one_line_error(run_cli("evaluate"), "--model")
    one_line_error(run_cli("train", "--resume", str(tmp_path / "none")), "checkpoint")
    # a corrupt model file and bad predict inputs
    out = tmp_path / "run"
    assert cli.main(train_args(data_dir, out, "--epochs", "1")) == 0
    one_line_error(run_cli("train", "--resume", str(out), "--lr", "0.5"), "--lr")
    one_line_error(run_cli("train", "--dataset", f"idx:{data_dir}", "--output", str(out)), "already holds a run")
    np.save(tmp_path / "bad.npy", np.zeros((2, 5)))
    one_line_error(run_cli("predict", "--model", str(out), str(tmp_path / "bad.npy")), "36 features")
    one_line_error(run_cli("predict", "--model", str(out), str(tmp_path / "missing.npy")), "missing.npy")
    (tmp_path / "junk.npy").write_bytes(b"junk")
    one_line_error(run_cli("predict", "--model", str(out), str(tmp_path / "junk.npy")), "junk.npy")
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    (broken / "checkpoint.pb").write_bytes((broken / "checkpoint.pb").read_bytes()[:-10])
    one_line_error(run_cli("train", "--resume", str(broken), "--epochs", "2"), "checkpoint.pb")
    # NaN or infinite inputs are refused, naming the rows; an empty input prints just the header
    x = np.random.default_rng(0).random((3, 36)).astype(np.float32)
    x[1, 4] = np.nan
    np.save(tmp_path / "nan.npy", x)
    one_line_error(run_cli("predict", "--model", str(out), str(tmp_path / "nan.npy")), "1 row(s)", "row 1")
    np.save(tmp_path / "empty.npy", np.zeros((0, 36), np.float32))
    r = run_cli("predict", "--model", str(out), str(tmp_path / "empty.npy"))
    assert r.returncode == 0 and len(r.stdout.strip().splitlines()) == 1, (r.stdout, r.stderr)
    one_line_error(run_cli("train", "--threads", "99999"), "--threads", "1 to 1024")
    one_line_error(run_cli("train", "--hidden", "99999999999"), "--hidden", "not supported")
    # a model file whose weights hold NaN
    blob = load(str(out / "model.pb"))
    key = next(iter(blob["state_dict"]))
    blob["state_dict"][key] = np.full_like(blob["state_dict"][key], np.nan)
    from pybackprop.serialization import save
    save(blob, str(tmp_path / "nan_model.pb"))
    one_line_error(run_cli("predict", "--model", str(tmp_path / "nan_model.pb"), str(tmp_path / "bad.npy")),
                   "NaN or infinite", key)
    (out / "model.pb").write_bytes((out / "model.pb").read_bytes()[:100])
    one_line_error(run_cli("evaluate", "--model", str(out)), "model.pb")


def test_help_texts():
    r = run_cli("--help")
    assert r.returncode == 0 and all(c in r.stdout for c in ("train", "evaluate", "predict"))
    r = run_cli("train", "--help")
    assert r.returncode == 0
    for flag in ("--dataset", "--hidden", "--activation", "--epochs", "--batch-size", "--optimizer", "--lr",
                 "--momentum", "--weight-decay", "--dropout", "--seed", "--val-split", "--threads", "--limit",
                 "--output", "--resume"):
        assert flag in r.stdout, flag
    assert run_cli("evaluate", "--help").returncode == 0 and run_cli("predict", "--help").returncode == 0


def test_console_script_is_declared():
    import tomllib
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "pyproject.toml"), "rb") as f:
        assert tomllib.load(f)["project"]["scripts"]["pybackprop"] == "pybackprop.cli:main"


def test_real_ctrl_c_then_resume_is_bit_identical(tmp_path):
    """SIGINT to a real process: it finishes its batch, checkpoints, exits 130; --resume matches."""
    data = make_blobs_idx(str(tmp_path / "data"), n_train=2000, n_test=100)
    base = ["train", "--dataset", f"idx:{data}", "--hidden", "32", "--batch-size", "16", "--val-split", "0",
            "--no-progress", "--seed", "3"]
    proc = subprocess.Popen([sys.executable, "-m", "pybackprop", *base, "--epochs", "1000",
                             "--output", str(tmp_path / "int")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        first = proc.stdout.readline()          # the banner: training has started
        assert first.startswith("training"), first + proc.stderr.read()
        line = proc.stdout.readline()           # epoch 1 done: the handler is certainly installed
        assert line.split()[:2] == ["epoch", "1/1000"], line
        time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "checkpoint written" in out
    ck = load(tmp_path / "int" / "checkpoint.pb")
    total = ck["epoch"] + 2
    r = run_cli("train", "--resume", str(tmp_path / "int"), "--epochs", str(total))
    assert r.returncode == 0, r.stderr
    r = run_cli(*base, "--epochs", str(total), "--output", str(tmp_path / "ref"))
    assert r.returncode == 0, r.stderr
    w, w_ref = weights(tmp_path / "int" / "model.pb"), weights(tmp_path / "ref" / "model.pb")
    for k in w_ref:
        assert np.array_equal(w[k], w_ref[k]), k
