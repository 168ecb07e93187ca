"""Runtime settings of the native core: SIMD path, threads, build facts."""
import os
import warnings

try:
    from . import _core
except ImportError as exc:                      # the source tree, not an installed (or built) package
    import pathlib
    _here = pathlib.Path(__file__).resolve().parent
    raise ImportError(
        f"pybackprop's compiled core (_core) is missing from {_here}. This looks like the source "
        "tree of an unbuilt checkout shadowing the installed package: run Python from another "
        "directory, or build in place with `pip install -e .`") from exc

__all__ = ["backend_info", "set_num_threads", "get_num_threads"]


def _apply_environment():
    requested = os.environ.get("PYBACKPROP_ISA", "").strip().lower()
    if not requested:
        return
    if requested not in ("generic", "avx2", "avx512"):
        raise ValueError(f"PYBACKPROP_ISA={requested!r} is not a SIMD path; use 'generic', 'avx2' or 'avx512'")
    if requested not in _core.supported_isas():
        warnings.warn(f"PYBACKPROP_ISA={requested!r}: this CPU cannot run it; using {_core.active_isa()!r}",
                      RuntimeWarning, stacklevel=3)


def backend_info():
    """Facts about the native core: {'isa', 'threads', 'compiler', 'cpu', ...}."""
    return dict(_core.backend_info())


def set_num_threads(n):
    """Set how many threads the kernels may use (the default is the number of cores,
    or PYBACKPROP_NUM_THREADS). Small kernels stay on one thread whatever this is."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads expects an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"set_num_threads expects n >= 1, got {n}")
    _core.set_num_threads(n)


def get_num_threads():
    """How many threads the kernels may use."""
    return _core.get_num_threads()
