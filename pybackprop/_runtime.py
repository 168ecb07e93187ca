"""Runtime settings of the native core: SIMD path, threads, build facts."""
import os
import warnings

import numpy as np

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
    raw = os.environ.get("PYBACKPROP_NUM_THREADS", "").strip()
    if raw:
        if raw.isdigit() and 1 <= int(raw) <= 1024:
            _core.set_num_threads(int(raw))   # (as written, "2 " would not parse natively)
        else:
            warnings.warn(f"PYBACKPROP_NUM_THREADS={raw!r} is not a thread count from 1 to 1024; "
                          f"using {_core.get_num_threads()}", RuntimeWarning, stacklevel=3)
    requested = os.environ.get("PYBACKPROP_ISA", "").strip().lower()
    if not requested:
        return
    if requested not in ("generic", "avx2", "avx512"):
        raise ValueError(f"PYBACKPROP_ISA={requested!r} is not a SIMD path; use 'generic', 'avx2' or 'avx512'")
    if requested not in _core.supported_isas():
        warnings.warn(f"PYBACKPROP_ISA={requested!r}: this CPU cannot run it; using {_core.active_isa()!r}",
                      RuntimeWarning, stacklevel=3)
    else:
        # The native core reads the variable as written; " Generic" or "AVX2" count here too.
        _core._set_isa(requested)


def backend_info():
    """Facts about the native core: {'isa', 'threads', 'compiler', 'cpu', ...}."""
    return dict(_core.backend_info())


def set_num_threads(n):
    """Set how many threads the kernels may use (the default is the number of cores,
    or PYBACKPROP_NUM_THREADS). Small kernels stay on one thread whatever this is."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"set_num_threads expects an int, got {type(n).__name__}")
    if not 1 <= n <= 1024:
        raise ValueError(f"set_num_threads expects 1 <= n <= 1024, got {n}")
    _core.set_num_threads(int(n))


def get_num_threads():
    """How many threads the kernels may use."""
    return _core.get_num_threads()
