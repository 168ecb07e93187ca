"""Data sets: IDX files (the MNIST format), Fashion-MNIST, and the small synthetic sets of the lectures.

IDX layout (big-endian throughout)::

    bytes 0-1   0x00 0x00            magic
    byte  2     dtype code           0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte  3     ndim                 number of dimensions
    4*ndim      uint32 sizes         one per dimension
    rest        the data             exactly prod(sizes) * itemsize bytes, C order

`load_idx` checks every one of these facts and says which one failed. Arrays come back in native
byte order with the stored dtype (uint8 images stay uint8); the loaders that build training sets
convert them (X float32 in [0, 1] of shape (N, features), y int64).
"""
import gzip
import math
import os
import zlib

import numpy as np

__all__ = ["load_idx", "idx_dir", "fashion_mnist", "fashion_mnist_dir", "load_dataset", "FASHION_MNIST_CLASSES",
           "xor", "spirals", "function_1d", "DEFAULT_FASHION_MNIST_DIR"]

DEFAULT_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path):
    """The file's bytes, transparently un-gzipped (detected by content, not by name)."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:   # truncated stream, bad CRC, bad header
        raise ValueError(f"{path}: corrupt or truncated gzip data ({exc})") from None


def _parse_idx(buf, name):
    if len(buf) < 4:
        raise ValueError(f"{name}: not an IDX file: {len(buf)} bytes, shorter than the 4-byte header")
    if buf[0] != 0 or buf[1] != 0:
        raise ValueError(f"{name}: not an IDX file: magic number starts with "
                         f"0x{buf[0]:02x} 0x{buf[1]:02x}, expected 0x00 0x00")
    code, ndim = buf[2], buf[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{name}: unknown IDX dtype code 0x{code:02x} "
                         f"(known: {', '.join(f'0x{c:02x}' for c in _IDX_DTYPES)})")
    if ndim == 0:
        raise ValueError(f"{name}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise ValueError(f"{name}: truncated IDX header: {ndim} dimensions need {header} bytes, "
                         f"file has {len(buf)}")
    shape = tuple(int(d) for d in np.frombuffer(buf, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[code]
    expected = header + math.prod(shape) * dtype.itemsize     # Python ints: no int64 wrap-around
    if len(buf) < expected:
        raise ValueError(f"{name}: truncated IDX file: shape {shape} of {dtype.name} needs "
                         f"{expected} bytes, file has {len(buf)}")
    if len(buf) > expected:
        raise ValueError(f"{name}: corrupt IDX file: {len(buf) - expected} unexpected bytes after the "
                         f"data of shape {shape} ({expected} bytes expected, file has {len(buf)})")
    data = np.frombuffer(buf, dtype=dtype, offset=header).reshape(shape)
    # Native byte order and a writable array the caller owns.
    return data.astype(dtype.newbyteorder("="), copy=True)


def load_idx(path):
    """Read one IDX file (plain or gzip) and return the array as stored, in native byte order.

    Raises ValueError naming the file and what is wrong if it is truncated or corrupt.
    """
    path = os.fspath(path)
    return _parse_idx(_read_bytes(path), path)


# ---------------------------------------------------------------------------------------------
# Directories of MNIST-style IDX files

# Accepted spellings of the four files: "train-images-idx3-ubyte", "train-images.idx3-ubyte"
# (the Kaggle copies), each optionally ".gz". Matching is on the prefix before the first '-'/'.'
# after "images"/"labels", so "train-images-idx3-ubyte" and "train-images.idx3-ubyte" both work.
_ROLES = {
    "train_images": ("train-images", "train_images"),
    "train_labels": ("train-labels", "train_labels"),
    "test_images": ("t10k-images", "t10k_images", "test-images", "test_images"),
    "test_labels": ("t10k-labels", "t10k_labels", "test-labels", "test_labels"),
}


def _find_idx_files(root):
    names = sorted(os.listdir(root))
    found, missing = {}, []
    for role, prefixes in _ROLES.items():
        hits = [n for n in names
                if n.startswith(prefixes) and "idx" in n and not n.endswith((".tmp", ".part"))]
        # Prefer the uncompressed file when both are present (faster to read).
        hits.sort(key=lambda n: (n.endswith(".gz"), n))
        if hits:
            found[role] = os.path.join(root, hits[0])
        else:
            missing.append(role.replace("_", "-"))
    return found, missing


# Decoded IDX files (read-only), so that loading the same data set twice in a process does not
# decompress it twice. Keyed by file identity; a changed file is read again. Small and bounded.
_cache = {}
_CACHE_FILES = 8


def _load_idx_cached(path):
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    arr = _cache.get(key)
    if arr is None:
        arr = load_idx(path)
        arr.flags.writeable = False
        while len(_cache) >= _CACHE_FILES:
            _cache.pop(next(iter(_cache)))
        _cache[key] = arr
    return arr


def _as_xy(images, labels, ipath, lpath):
    if images.ndim < 2:
        raise ValueError(f"{ipath}: images must have at least 2 dimensions, IDX file has shape {images.shape}")
    if labels.ndim != 1:
        raise ValueError(f"{lpath}: labels must be 1-D, IDX file has shape {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{ipath} has {images.shape[0]} images but {lpath} has {labels.shape[0]} labels")
    X = images.reshape(images.shape[0], -1).astype(np.float32)
    if images.dtype == np.uint8:
        X /= np.float32(255.0)
    y = labels.astype(np.int64)
    if y.size and y.min() < 0:
        raise ValueError(f"{lpath}: negative class label {int(y.min())}")
    return X, y


def idx_dir(path):
    """Load a directory holding the four MNIST-style IDX files (train/t10k images/labels, plain or .gz).

    Returns (X_train, y_train, X_test, y_test): X float32 of shape (N, features) (uint8 pixels scaled
    to [0, 1]), y int64.
    """
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path}: no such directory of IDX files")
    found, missing = _find_idx_files(path)
    if missing:
        raise FileNotFoundError(
            f"{path}: missing IDX file(s) for {', '.join(missing)}; expected names like "
            "train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], "
            "t10k-labels-idx1-ubyte[.gz]")
    arrays = {role: _load_idx_cached(p) for role, p in found.items()}
    X_train, y_train = _as_xy(arrays["train_images"], arrays["train_labels"],
                              found["train_images"], found["train_labels"])
    X_test, y_test = _as_xy(arrays["test_images"], arrays["test_labels"],
                            found["test_images"], found["test_labels"])
    if X_train.shape[1] != X_test.shape[1]:
        raise ValueError(f"{path}: training images have {X_train.shape[1]} features per example, "
                         f"test images have {X_test.shape[1]}")
    return X_train, y_train, X_test, y_test


FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def fashion_mnist_dir(root=None):
    """Where Fashion-MNIST is looked for: root, else $PYBACKPROP_DATA, else the Debian package's directory."""
    if root is not None:
        return os.fspath(root)
    env = os.environ.get("PYBACKPROP_DATA", "").strip()
    if env:
        return env
    return DEFAULT_FASHION_MNIST_DIR


def fashion_mnist(root=None):
    """The real Fashion-MNIST (60 000 training and 10 000 test images of 28x28).

    Looked for in `root`, else `$PYBACKPROP_DATA`, else /usr/share/datasets/fashion-mnist.
    Returns (X_train, y_train, X_test, y_test): X float32 in [0, 1] of shape (N, 784), y int64 in 0..9.
    """
    where = fashion_mnist_dir(root)
    found, missing = _find_idx_files(where) if os.path.isdir(where) else ({}, list(_ROLES))
    if missing:
        source = ("the root argument" if root is not None else
                  "$PYBACKPROP_DATA" if os.environ.get("PYBACKPROP_DATA", "").strip() else "the default")
        raise FileNotFoundError(
            f"Fashion-MNIST not found in {where} (from {source}). Get it with "
            "`sudo apt-get install dataset-fashion-mnist` (installs into "
            f"{DEFAULT_FASHION_MNIST_DIR}), or download train-images-idx3-ubyte.gz, "
            "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz from "
            "https://github.com/zalandoresearch/fashion-mnist into a directory and pass it as root= "
            "or set PYBACKPROP_DATA to it.")
    return idx_dir(where)


def load_dataset(spec, root=None):
    """Resolve a data set name as the command line spells it.

    "fashion-mnist" (alias "fashion_mnist") -> fashion_mnist(root); "idx:DIR" -> idx_dir(DIR).
    Returns (X_train, y_train, X_test, y_test).
    """
    if not isinstance(spec, str):
        raise TypeError(f"dataset must be a string, got {type(spec).__name__}")
    if spec.startswith("idx:"):
        d = spec[4:]
        if not d:
            raise ValueError("dataset 'idx:' needs a directory, e.g. idx:/path/to/mnist")
        return idx_dir(d)
    if spec.lower() in ("fashion-mnist", "fashion_mnist", "fashionmnist"):
        return fashion_mnist(root)
    raise ValueError(f"unknown dataset {spec!r}; use 'fashion-mnist' or 'idx:DIR' (a directory of MNIST IDX files)")


# ---------------------------------------------------------------------------------------------
# Synthetic sets of the lectures

def xor():
    """The four XOR points: X float32 (4, 2), y float32 (4, 1) with y = x0 XOR x1."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([[0], [1], [1], [0]], dtype=np.float32)
    return X, y


def spirals(n=100, classes=3, seed=0, noise=0.2):
    """Interleaved spiral arms in 2-D (the CS231n toy set): `n` points per class.

    Returns X float32 of shape (n*classes, 2) and y int64 of shape (n*classes,), ordered by class.
    Arm k has angle k*2pi/classes + 4*r*(one turn) + Gaussian noise of std `noise`, radius r in [0, 1].
    """
    for name, v in (("n", n), ("classes", classes)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"spirals: {name} must be an int, got {type(v).__name__} {v!r}")
    n, classes = int(n), int(classes)
    if n < 1 or classes < 1:
        raise ValueError(f"spirals needs n >= 1 and classes >= 1, got n={n}, classes={classes}")
    rng = np.random.default_rng(seed)
    X = np.empty((n * classes, 2), dtype=np.float64)
    y = np.empty(n * classes, dtype=np.int64)
    r = np.linspace(0.0, 1.0, n)
    for k in range(classes):
        t = np.linspace(k * 4.0, (k + 1) * 4.0, n) + rng.standard_normal(n) * noise
        rows = slice(k * n, (k + 1) * n)
        X[rows, 0] = r * np.sin(t)
        X[rows, 1] = r * np.cos(t)
        y[rows] = k
    return X.astype(np.float32), y


def function_1d(fn=np.sin, n=256, low=-np.pi, high=np.pi, noise=0.0, seed=None, grid=False):
    """Sample y = fn(x) on [low, high] for universal-approximation demos.

    x is uniform at random (seeded) or, with grid=True, evenly spaced; `noise` adds Gaussian noise
    of that std to y. Returns x, y float32 of shape (n, 1), sorted by x.
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"function_1d needs n >= 1, got {n}")
    if not high > low:
        raise ValueError(f"function_1d needs low < high, got [{low}, {high}]")
    rng = np.random.default_rng(seed)
    x = np.linspace(low, high, n) if grid else np.sort(rng.uniform(low, high, n))
    y = np.asarray(fn(x), dtype=np.float64)
    if y.shape != x.shape:
        raise ValueError(f"function_1d: fn must map an array of shape {x.shape} to the same shape, got {y.shape}")
    if noise:
        y = y + rng.standard_normal(n) * noise
    return x.astype(np.float32).reshape(n, 1), y.astype(np.float32).reshape(n, 1)
