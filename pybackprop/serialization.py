"""pb.save / pb.load: nested containers of arrays and tensors in a file that cannot run code on load.

Format: an uncompressed zip of .npy members (what np.savez writes), read back with
allow_pickle=False. Member "__pybackprop__" holds a UTF-8 JSON description of the object tree;
every array or tensor is one further member "a<i>" referenced from that tree. Nodes of the tree:

    null | {"b": bool} | {"i": "123"} | {"f": "0.1"} | {"s": "text"}
    {"array": i} | {"tensor": i, "requires_grad": bool} | {"scalar": i}   (a numpy scalar)
    {"list": [...]} | {"tuple": [...]} | {"dict": [[key node, value node], ...]}

Ints are strings (no JSON precision limits), floats are repr() strings (nan/inf survive), dict keys
are nodes themselves (optimiser state dicts are keyed by int) and keep their order.

Writing is atomic: the bytes go to a temporary file in the target's directory, which is fsync'ed,
renamed over `path` with os.replace and the directory fsync'ed. A crash at any point leaves either
the old file or the new one at `path`, never a truncated one.
"""
import json
import numbers
import os
import tempfile
import zipfile

import numpy as np

__all__ = ["save", "load", "atomic_write"]

_FORMAT = "pybackprop.save"
_VERSION = 1
_HEADER = "__pybackprop__"


def _tensor_type():
    try:
        from .tensor import Tensor
    except ImportError:
        return None
    return Tensor


# ---------------------------------------------------------------------------------------------
# object tree <-> JSON + arrays

def _encode(obj, arrays, where, Tensor):
    if obj is None:
        return None
    if isinstance(obj, (bool, np.bool_)):
        return {"b": bool(obj)}
    if Tensor is not None and isinstance(obj, Tensor):
        arr = np.asarray(obj.numpy(), order="C")
        arrays.append(_check_array(arr, where))
        return {"tensor": len(arrays) - 1, "requires_grad": bool(getattr(obj, "requires_grad", False))}
    if isinstance(obj, np.ndarray):
        arrays.append(_check_array(obj, where))
        return {"array": len(arrays) - 1}
    if isinstance(obj, np.generic):
        arrays.append(_check_array(np.asarray(obj), where))
        return {"scalar": len(arrays) - 1}
    if isinstance(obj, numbers.Integral):
        return {"i": str(int(obj))}
    if isinstance(obj, float):
        return {"f": repr(float(obj))}
    if isinstance(obj, str):
        return {"s": obj}
    if isinstance(obj, list):
        return {"list": [_encode(v, arrays, f"{where}[{i}]", Tensor) for i, v in enumerate(obj)]}
    if isinstance(obj, tuple):
        return {"tuple": [_encode(v, arrays, f"{where}[{i}]", Tensor) for i, v in enumerate(obj)]}
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if not isinstance(k, (str, numbers.Integral, float, tuple, type(None))):
                raise TypeError(f"pb.save: dict key {k!r} at {where} has unsupported type {type(k).__name__}")
            items.append([_encode(k, arrays, f"{where} key", Tensor), _encode(v, arrays, f"{where}[{k!r}]", Tensor)])
        return {"dict": items}
    raise TypeError(f"pb.save: cannot store {type(obj).__name__} at {where}; supported are dicts, lists, "
                    "tuples, numpy arrays, pb.Tensors, ints, floats, strings, bools and None")


def _check_array(arr, where):
    if arr.dtype.hasobject:
        raise TypeError(f"pb.save: array at {where} has dtype object, which cannot be stored safely")
    if arr.dtype.kind == "V":
        raise TypeError(f"pb.save: structured array at {where} is not supported")
    return arr


class _Corrupt(Exception):
    pass


def _decode(node, arrays, used, Tensor):
    if node is None:
        return None
    if not isinstance(node, dict) or len(node) == 0:
        raise _Corrupt(f"bad node {node!r:.60}")
    if "b" in node:
        if not isinstance(node["b"], bool):
            raise _Corrupt("bad bool node")
        return node["b"]
    if "i" in node:
        return int(node["i"])
    if "f" in node:
        return float(node["f"])
    if "s" in node:
        if not isinstance(node["s"], str):
            raise _Corrupt("bad string node")
        return node["s"]
    for kind in ("array", "tensor", "scalar"):
        if kind in node:
            i = node[kind]
            if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < len(arrays):
                raise _Corrupt(f"reference to missing array {i!r}")
            used.add(i)
            arr = arrays[i]
            if kind == "array":
                return arr
            if kind == "scalar":
                if arr.ndim != 0:
                    raise _Corrupt("scalar node refers to an array that is not 0-d")
                return arr[()]
            if Tensor is None:
                return arr
            from .tensor import tensor as make_tensor
            return make_tensor(arr, dtype=arr.dtype, requires_grad=bool(node.get("requires_grad", False)))
    if "list" in node:
        return [_decode(v, arrays, used, Tensor) for v in _seq(node["list"])]
    if "tuple" in node:
        return tuple(_decode(v, arrays, used, Tensor) for v in _seq(node["tuple"]))
    if "dict" in node:
        out = {}
        for pair in _seq(node["dict"]):
            if not isinstance(pair, list) or len(pair) != 2:
                raise _Corrupt("bad dict entry")
            key = _decode(pair[0], arrays, used, Tensor)
            if isinstance(key, list):
                raise _Corrupt("unhashable dict key")
            out[key] = _decode(pair[1], arrays, used, Tensor)
        return out
    raise _Corrupt(f"unknown node kind {sorted(node)!r:.60}")


def _seq(x):
    if not isinstance(x, list):
        raise _Corrupt("expected a list in the structure")
    return x


# ---------------------------------------------------------------------------------------------
# atomic files

def _fsync_dir(directory):
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return                      # e.g. platforms that cannot open directories
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path, write):
    """Call write(fileobj) on a temporary file next to `path`, then move it to `path` atomically."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        try:   # mkstemp creates 0600; give the file the permissions a plain open() would
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        except OSError:
            pass
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)


# ---------------------------------------------------------------------------------------------
# public API

def save(obj, path):
    """Write `obj` (nested dicts/lists/tuples of arrays, tensors, numbers, strings, bools, None) to
    exactly `path` (no extension is added), atomically. Tensors are stored as arrays of their dtype
    and come back as tensors."""
    arrays = []
    try:
        tree = _encode(obj, arrays, "the object", _tensor_type())
    except RecursionError:
        raise ValueError("pb.save: the object nests too deeply, or contains itself") from None
    header = json.dumps({"format": _FORMAT, "version": _VERSION, "arrays": len(arrays), "tree": tree},
                        ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    members = {_HEADER: np.frombuffer(header.encode("ascii"), dtype=np.uint8)}
    for i, a in enumerate(arrays):
        members[f"a{i}"] = a
    atomic_write(path, lambda f: np.savez(f, **members))


def load(path):
    """Read what `save` wrote. Never unpickles; a corrupt, truncated or foreign file raises ValueError
    naming the file."""
    name = os.fspath(path) if not hasattr(path, "read") else getattr(path, "name", "<file>")
    if not hasattr(path, "read") and not os.path.exists(name):
        raise FileNotFoundError(f"{name}: no such file")
    try:
        z = np.load(path, allow_pickle=False)
        if not hasattr(z, "files"):
            raise _Corrupt("a single .npy array, not a pybackprop save file")
        with z:
            if _HEADER not in z.files:
                raise _Corrupt("an .npz archive without the pybackprop header (not written by pb.save)")
            raw = z[_HEADER]
            if raw.dtype != np.uint8 or raw.ndim != 1:
                raise _Corrupt("malformed header member")
            meta = json.loads(raw.tobytes().decode("ascii"))
            if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
                raise _Corrupt("unknown format tag")
            if meta.get("version") != _VERSION:
                raise _Corrupt(f"format version {meta.get('version')!r}; this pybackprop reads version {_VERSION}")
            n = meta.get("arrays")
            if not isinstance(n, int) or n < 0:
                raise _Corrupt("bad array count")
            arrays = []
            for i in range(n):
                key = f"a{i}"
                if key not in z.files:
                    raise _Corrupt(f"array member {key} is missing")
                arrays.append(z[key])
            used = set()
            obj = _decode(meta.get("tree"), arrays, used, _tensor_type())
            if len(used) != n:
                raise _Corrupt("arrays not referenced by the structure")
            return obj
    except _Corrupt as exc:
        raise ValueError(f"{name}: not a valid pybackprop save file: {exc}") from None
    except (zipfile.BadZipFile, EOFError, json.JSONDecodeError, UnicodeDecodeError,
            KeyError, IndexError, OverflowError, TypeError, ValueError, OSError, RuntimeError) as exc:
        if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError)):
            raise
        raise ValueError(f"{name}: corrupt, truncated or not a pybackprop save file "
                         f"({type(exc).__name__}: {exc})") from None
