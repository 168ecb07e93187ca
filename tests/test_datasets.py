"""IDX reading (checked against bytes written by hand here), Fashion-MNIST discovery, synthetic sets."""
import gzip
import os
import struct

import numpy as np
import pytest

from pybackprop import datasets


def idx_bytes(arr, code=None):
    """Serialise `arr` as IDX, independently of the reader: header by struct, data big-endian."""
    codes = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}
    code = codes[arr.dtype.type] if code is None else code
    head = struct.pack(">BBBB", 0, 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write(path, data, gz=False):
    if gz:
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("gz", [False, True])
def test_load_idx_round_trip_every_dtype(tmp_path, dtype, gz):
    rng = np.random.default_rng(0)
    arr = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    p = write(tmp_path / ("a.idx" + (".gz" if gz else "")), idx_bytes(arr), gz)
    out = datasets.load_idx(p)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    assert out.shape == (3, 4, 5)
    np.testing.assert_array_equal(out, arr)
    out[0, 0, 0] = 1   # the caller owns a writable array


def test_load_idx_known_bytes(tmp_path):
    # 2 labels, uint8: magic 00 00 08 01, count 00 00 00 02, data 07 09
    p = write(tmp_path / "l", bytes([0, 0, 8, 1, 0, 0, 0, 2, 7, 9]))
    np.testing.assert_array_equal(datasets.load_idx(p), [7, 9])
    # 1x2 int16 big-endian: 0x0102 = 258 and 0xFFFF = -1
    p = write(tmp_path / "s", bytes([0, 0, 0x0B, 2, 0, 0, 0, 1, 0, 0, 0, 2, 1, 2, 0xFF, 0xFF]))
    np.testing.assert_array_equal(datasets.load_idx(p), [[258, -1]])


def _err(path):
    with pytest.raises(ValueError) as info:
        datasets.load_idx(path)
    assert str(path) in str(info.value)
    return str(info.value)


@pytest.mark.parametrize("gz", [False, True])
def test_load_idx_rejects_corrupt_files(tmp_path, gz):
    good = idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    suffix = ".gz" if gz else ""
    assert "truncated" in _err(write(tmp_path / f"trunc{suffix}", good[:-1], gz))
    assert "truncated" in _err(write(tmp_path / f"header{suffix}", good[:9], gz))
    assert "4-byte header" in _err(write(tmp_path / f"tiny{suffix}", good[:3], gz))
    assert "unexpected bytes" in _err(write(tmp_path / f"long{suffix}", good + b"\0", gz))
    assert "magic" in _err(write(tmp_path / f"magic{suffix}", b"\x01" + good[1:], gz))
    assert "dtype code 0x07" in _err(write(tmp_path / f"code{suffix}", good[:2] + b"\x07" + good[3:], gz))
    assert "0 dimensions" in _err(write(tmp_path / f"ndim{suffix}", good[:3] + b"\x00", gz))
    # a dimension that disagrees with the data length
    bad_dim = good[:4] + struct.pack(">I", 3) + good[8:]
    assert "truncated" in _err(write(tmp_path / f"dim{suffix}", bad_dim, gz))
    assert "0 bytes" in _err(write(tmp_path / f"zero{suffix}", b"", gz))


def test_load_idx_truncated_or_corrupt_gzip(tmp_path):
    good = gzip.compress(idx_bytes(np.arange(1000, dtype=np.uint8)))
    assert "gzip" in _err(write(tmp_path / "t.gz", good[:len(good) // 2]))
    damaged = bytearray(good)
    damaged[-6] ^= 0xFF            # inside the CRC/length trailer
    assert "gzip" in _err(write(tmp_path / "c.gz", bytes(damaged)))


def test_load_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        datasets.load_idx(tmp_path / "nope")


def make_idx_dir(root, n_train=60, n_test=20, classes=10, side=4, gz=True, kaggle_names=False, seed=0):
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    sep = "." if kaggle_names else "-"
    sets = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        imgs = rng.integers(0, 256, (n, side, side), dtype=np.uint8)
        labels = rng.integers(0, classes, n).astype(np.uint8)
        ext = ".gz" if gz else ""
        write(root / f"{prefix}-images{sep}idx3-ubyte{ext}", idx_bytes(imgs), gz)
        write(root / f"{prefix}-labels{sep}idx1-ubyte{ext}", idx_bytes(labels), gz)
        sets[prefix] = (imgs, labels)
    return sets


@pytest.mark.parametrize("gz,kaggle", [(True, False), (False, False), (False, True)])
def test_idx_dir(tmp_path, gz, kaggle):
    sets = make_idx_dir(tmp_path / "d", gz=gz, kaggle_names=kaggle)
    Xtr, ytr, Xte, yte = datasets.idx_dir(tmp_path / "d")
    assert Xtr.dtype == np.float32 and Xtr.shape == (60, 16) and Xte.shape == (20, 16)
    assert ytr.dtype == np.int64 and yte.dtype == np.int64
    np.testing.assert_array_equal(Xtr, sets["train"][0].reshape(60, 16) / np.float32(255))
    np.testing.assert_array_equal(yte, sets["t10k"][1])
    assert Xtr.min() >= 0 and Xtr.max() <= 1
    # load_dataset spells it as the command line does
    Xtr2, *_ = datasets.load_dataset(f"idx:{tmp_path / 'd'}")
    np.testing.assert_array_equal(Xtr, Xtr2)
    Xtr2[0, 0] = 5     # the returned arrays are the caller's (the cache is not shared)
    assert datasets.idx_dir(tmp_path / "d")[0][0, 0] != 5


def test_idx_dir_errors(tmp_path):
    make_idx_dir(tmp_path / "d")
    os.remove(tmp_path / "d" / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(FileNotFoundError, match="t10k-labels"):
        datasets.idx_dir(tmp_path / "d")
    # counts that disagree
    write(tmp_path / "d" / "t10k-labels-idx1-ubyte.gz", idx_bytes(np.zeros(3, np.uint8)), gz=True)
    with pytest.raises(ValueError, match="20 images but .* 3 labels"):
        datasets.idx_dir(tmp_path / "d")
    with pytest.raises(FileNotFoundError):
        datasets.idx_dir(tmp_path / "missing")
    with pytest.raises(ValueError, match="unknown dataset"):
        datasets.load_dataset("cifar")


def test_fashion_mnist_lookup_order(tmp_path, monkeypatch):
    make_idx_dir(tmp_path / "env", n_train=7)
    make_idx_dir(tmp_path / "root", n_train=9)
    monkeypatch.setenv("PYBACKPROP_DATA", str(tmp_path / "env"))
    assert datasets.fashion_mnist()[0].shape[0] == 7
    assert datasets.fashion_mnist(root=tmp_path / "root")[0].shape[0] == 9
    monkeypatch.setenv("PYBACKPROP_DATA", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError) as info:
        datasets.fashion_mnist()
    msg = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in msg and "PYBACKPROP_DATA" in msg
    assert str(tmp_path / "empty") in msg


def test_real_fashion_mnist():
    d = datasets.fashion_mnist_dir()
    if not os.path.isdir(d):
        pytest.skip(f"Fashion-MNIST is not installed in {d} (apt-get install dataset-fashion-mnist)")
    Xtr, ytr, Xte, yte = datasets.fashion_mnist()
    assert Xtr.shape == (60000, 784) and Xte.shape == (10000, 784)
    assert Xtr.dtype == np.float32 and ytr.dtype == np.int64
    assert 0.0 == Xtr.min() and Xtr.max() == 1.0
    np.testing.assert_array_equal(np.bincount(ytr), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(yte), [1000] * 10)
    # the first training label of Fashion-MNIST is 9 (ankle boot)
    assert ytr[0] == 9


def test_xor():
    X, y = datasets.xor()
    assert X.shape == (4, 2) and y.shape == (4, 1) and X.dtype == y.dtype == np.float32
    np.testing.assert_array_equal(y[:, 0], np.logical_xor(X[:, 0], X[:, 1]))


def test_spirals():
    X, y = datasets.spirals(50, 3, seed=1)
    assert X.shape == (150, 2) and X.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), [50, 50, 50])
    np.testing.assert_array_equal(X, datasets.spirals(50, 3, seed=1)[0])
    assert not np.array_equal(X, datasets.spirals(50, 3, seed=2)[0])
    # radius grows linearly along each arm from 0 to 1
    np.testing.assert_allclose(np.hypot(X[:50, 0], X[:50, 1]), np.linspace(0, 1, 50), atol=1e-6)
    with pytest.raises(ValueError):
        datasets.spirals(0, 3, 0)


def test_function_1d():
    x, y = datasets.function_1d(np.sin, n=100, seed=0)
    assert x.shape == y.shape == (100, 1) and x.dtype == np.float32
    assert np.all(np.diff(x[:, 0]) >= 0) and x.min() >= -np.pi and x.max() <= np.pi
    np.testing.assert_allclose(y, np.sin(x), atol=1e-6)
    xg, _ = datasets.function_1d(np.cos, n=5, low=0, high=1, grid=True)
    np.testing.assert_allclose(xg[:, 0], [0, 0.25, 0.5, 0.75, 1])
    xn, yn = datasets.function_1d(np.sin, n=2000, noise=0.1, seed=0)
    assert 0.09 < np.std(yn - np.sin(xn)) < 0.11
    with pytest.raises(ValueError):
        datasets.function_1d(np.sin, low=1, high=0)


def test_load_idx_huge_header_dims_name_the_file(tmp_path):
    # 2**31 cubed wraps to 0 in int64: the size must be computed exactly
    p = write(tmp_path / "huge-idx3-ubyte", struct.pack(">BBBB", 0, 0, 0x08, 3) + struct.pack(">3I", *[2**31] * 3))
    with pytest.raises(ValueError, match=r"huge-idx3-ubyte.*truncated"):
        datasets.load_idx(p)
