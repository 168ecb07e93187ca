"""The package's random source: one numpy Generator, reset by ``pb.manual_seed``.

Initialisation (``nn.Linear``, ``nn.init``), ``Dropout``, ``pb.randn``/``rand`` without a
``seed`` and shuffling all draw from it, so ``pb.manual_seed(n)`` followed by the
same sequence of calls reproduces every number.
"""
import numpy as np

__all__ = ["manual_seed", "get_generator", "seed", "initial_seed"]

_seed = None
_generator = np.random.default_rng()


def manual_seed(seed):
    """Reset the package generator to ``np.random.default_rng(seed)``; returns the generator."""
    global _generator, _seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"manual_seed expects an int, got {type(seed).__name__}")
    _seed = int(seed)
    _generator = np.random.default_rng(_seed)
    return _generator


def seed():
    """Reseed from fresh OS entropy."""
    global _generator, _seed
    _seed = None
    _generator = np.random.default_rng()
    return _generator


def initial_seed():
    return _seed


def get_generator():
    """The current package generator (changes identity on every ``manual_seed``)."""
    return _generator
