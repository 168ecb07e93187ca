"""Mini-batches over numpy arrays.

Shuffling convention: the order of epoch `e` is a pure function of (seed, e) -- a permutation drawn
from ``np.random.default_rng([seed, e])`` -- so any epoch can be replayed on its own (that is what
makes resuming a run from a checkpoint reproduce the uninterrupted run). Each full pass over the
loader advances `epoch` by one; `set_epoch(e)` jumps to an epoch. With seed=None the base seed is
drawn once, at construction, from pybackprop's global generator, so `pb.manual_seed(n)` before
building the loader makes the order reproducible too.

Memory: without shuffling a batch is a view (slice) of X and y, no copy at all; with shuffling it is
one gather of the batch's rows, i.e. a copy of the batch and nothing more.
"""
import numbers

import numpy as np

__all__ = ["DataLoader", "train_val_split"]


def _draw_base_seed():
    """A 63-bit seed from pybackprop's global generator (pb.manual_seed), else from OS entropy."""
    try:
        from . import random as pbrandom
    except ImportError:
        pbrandom = None
    gen = None
    if pbrandom is not None:
        for name in ("get_generator", "default_generator", "generator"):
            obj = getattr(pbrandom, name, None)
            if callable(obj) and not isinstance(obj, np.random.Generator):
                try:
                    obj = obj()
                except TypeError:
                    obj = None
            if isinstance(obj, np.random.Generator):
                gen = obj
                break
    if gen is None:
        gen = np.random.default_rng()
    return int(gen.integers(0, 2**63 - 1))


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"DataLoader: {name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"DataLoader: {name} must be >= {minimum}, got {value}")
    return int(value)


class DataLoader:
    """Iterate over (X_batch, y_batch) numpy arrays.

    DataLoader(X, y, batch_size, shuffle=False, drop_last=False, seed=None). `y` may be None, then
    batches are (X_batch, None). `len(loader)` is the number of batches per epoch.
    """

    def __init__(self, X, y, batch_size, shuffle=False, drop_last=False, seed=None):
        X = self._as_array(X, "X")
        if X.ndim == 0:
            raise ValueError("DataLoader: X must have at least one dimension (the examples)")
        if y is not None:
            y = self._as_array(y, "y")
            if y.ndim == 0 or y.shape[0] != X.shape[0]:
                raise ValueError(f"DataLoader: X has {X.shape[0]} examples (shape {X.shape}) but y has shape {y.shape}")
        self.X, self.y = X, y
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        if seed is None:
            seed = _draw_base_seed() if self.shuffle else 0
        self.seed = _check_int("seed", seed, 0)
        self.epoch = 0

    @staticmethod
    def _as_array(a, name):
        if hasattr(a, "numpy") and not isinstance(a, np.ndarray):   # a pb.Tensor
            a = a.numpy()
        a = np.asarray(a)
        if a.dtype == object:
            raise TypeError(f"DataLoader: {name} must be a numeric array, got dtype object")
        return a

    def __len__(self):
        n = self.X.shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def num_examples(self):
        return self.X.shape[0]

    def set_epoch(self, epoch):
        """Make the next pass use the order of epoch `epoch` (0-based)."""
        self.epoch = _check_int("epoch", epoch, 0)

    def order(self, epoch=None):
        """The example order of an epoch (indices into X), or None when not shuffling."""
        if not self.shuffle:
            return None
        e = self.epoch if epoch is None else _check_int("epoch", epoch, 0)
        return np.random.default_rng([self.seed, e]).permutation(self.X.shape[0])

    def iter_epoch(self, epoch=None, start_batch=0):
        """Yield the batches of one epoch, starting at batch `start_batch`; does not advance `epoch`."""
        start_batch = _check_int("start_batch", start_batch, 0)
        perm = self.order(epoch)
        n, bs = self.X.shape[0], self.batch_size
        for b in range(start_batch, len(self)):
            lo, hi = b * bs, min((b + 1) * bs, n)
            if perm is None:
                yield self.X[lo:hi], (None if self.y is None else self.y[lo:hi])
            else:
                idx = perm[lo:hi]
                yield self.X[idx], (None if self.y is None else self.y[idx])

    def __iter__(self):
        epoch = self.epoch
        self.epoch += 1
        return self.iter_epoch(epoch)

    def __repr__(self):
        return (f"DataLoader(examples={self.X.shape[0]}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, seed={self.seed}, epoch={self.epoch})")


def train_val_split(X, y, val_fraction, seed=0):
    """Split off a random `val_fraction` of the examples (seeded): (X_train, y_train, X_val, y_val)."""
    if not 0.0 <= float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    n = X.shape[0]
    n_val = int(round(n * float(val_fraction)))
    if n_val == 0:
        return X, y, X[:0], y[:0]
    perm = np.random.default_rng([int(seed), 0x5EED]).permutation(n)
    tr, va = np.sort(perm[n_val:]), np.sort(perm[:n_val])
    return X[tr], y[tr], X[va], y[va]
