"""Gradient recording switch: ``no_grad``, ``enable_grad``, ``set_grad_enabled``.

One module-level flag, read on every operation (a plain global is the cheapest
thing to read). Not thread-local: like the rest of the graph layer, recording is
meant to be driven from one thread.
"""
import functools

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled"]

_enabled = True


def is_grad_enabled():
    return _enabled


def _set(flag):
    global _enabled
    prev = _enabled
    _enabled = bool(flag)
    return prev


class _GradMode:
    _flag = True

    def __enter__(self):
        self._prev = _set(self._flag)
        return self

    def __exit__(self, *exc):
        _set(self._prev)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):
    """Context manager / decorator: operations inside record nothing."""
    _flag = False


class enable_grad(_GradMode):
    """Context manager / decorator: turn recording back on inside ``no_grad``."""
    _flag = True


class set_grad_enabled(_GradMode):
    """``set_grad_enabled(flag)``: usable as a function or a context manager."""

    def __init__(self, mode):
        self._prev = _set(mode)
        self._mode = bool(mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _set(self._prev)
        return False
