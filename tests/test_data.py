"""DataLoader: batching, shuffling per epoch from a seed, drop_last, no copies, argument checks."""
import numpy as np
import pytest

import pybackprop as pb
from pybackprop.data import DataLoader, train_val_split


def make(n=10, d=3):
    X = np.arange(n * d, dtype=np.float32).reshape(n, d)
    y = np.arange(n, dtype=np.int64)
    return X, y


@pytest.mark.parametrize("n,bs,drop,expected", [(10, 3, False, [3, 3, 3, 1]), (10, 3, True, [3, 3, 3]),
                                                (9, 3, True, [3, 3, 3]), (2, 5, False, [2]), (2, 5, True, []),
                                                (0, 4, False, [])])
def test_batches_in_order(n, bs, drop, expected):
    X, y = make(n)
    dl = DataLoader(X, y, bs, drop_last=drop)
    sizes = [len(xb) for xb, _ in dl]
    assert sizes == expected and len(dl) == len(expected)
    if n and expected:
        got = np.concatenate([yb for _, yb in dl])
        np.testing.assert_array_equal(got, y[:sum(expected)])


def test_unshuffled_batches_are_views():
    X, y = make(10)
    for xb, yb in DataLoader(X, y, 4):
        assert np.shares_memory(xb, X) and np.shares_memory(yb, y)


def test_shuffled_batches_are_one_gather_each():
    X, y = make(10)
    for xb, yb in DataLoader(X, y, 4, shuffle=True, seed=0):
        assert not np.shares_memory(xb, X)
        assert xb.base is None or xb.base.nbytes == xb.nbytes   # the batch and nothing bigger
        np.testing.assert_array_equal(xb, X[yb])                # rows stay paired with labels


def test_shuffle_is_a_permutation_per_epoch_and_reproducible():
    X, y = make(100)
    dl = DataLoader(X, y, 7, shuffle=True, seed=42)
    e0 = np.concatenate([yb for _, yb in dl])
    e1 = np.concatenate([yb for _, yb in dl])
    assert sorted(e0) == list(range(100)) and sorted(e1) == list(range(100))
    assert not np.array_equal(e0, e1)            # a new order each epoch
    assert dl.epoch == 2
    again = DataLoader(X, y, 7, shuffle=True, seed=42)
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in again]), e0)
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in again]), e1)
    # any epoch can be replayed on its own (resume), from any batch
    fresh = DataLoader(X, y, 7, shuffle=True, seed=42)
    fresh.set_epoch(1)
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in fresh]), e1)
    tail = np.concatenate([yb for _, yb in fresh.iter_epoch(1, start_batch=3)])
    np.testing.assert_array_equal(tail, e1[21:])
    other = DataLoader(X, y, 7, shuffle=True, seed=43)
    assert not np.array_equal(np.concatenate([yb for _, yb in other]), e0)


def test_drop_last_with_shuffle_drops_the_tail_of_the_permutation():
    X, y = make(10)
    dl = DataLoader(X, y, 4, shuffle=True, drop_last=True, seed=3)
    got = np.concatenate([yb for _, yb in dl])
    np.testing.assert_array_equal(got, dl.order(0)[:8])


def test_seed_none_follows_manual_seed():
    X, y = make(50)
    pb.manual_seed(5)
    a = np.concatenate([yb for _, yb in DataLoader(X, y, 8, shuffle=True)])
    pb.manual_seed(5)
    b = np.concatenate([yb for _, yb in DataLoader(X, y, 8, shuffle=True)])
    np.testing.assert_array_equal(a, b)


def test_y_none_and_tensors():
    X, _ = make(5)
    batches = list(DataLoader(X, None, 2))
    assert [b[1] for b in batches] == [None, None, None]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), X)


def test_argument_validation():
    X, y = make(10)
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(X, y, 0)
    with pytest.raises(TypeError, match="batch_size"):
        DataLoader(X, y, 2.5)
    with pytest.raises(TypeError, match="batch_size"):
        DataLoader(X, y, True)
    with pytest.raises(ValueError, match="10 examples"):
        DataLoader(X, y[:9], 2)
    with pytest.raises(ValueError, match="seed"):
        DataLoader(X, y, 2, shuffle=True, seed=-1)
    with pytest.raises(ValueError):
        DataLoader(np.float32(1), None, 2)
    with pytest.raises(TypeError):
        DataLoader(np.array([object()] * 3), None, 2)


def test_train_val_split():
    X, y = make(100)
    Xt, yt, Xv, yv = train_val_split(X, y, 0.2, seed=1)
    assert len(yt) == 80 and len(yv) == 20
    assert sorted(np.concatenate([yt, yv])) == list(range(100))
    np.testing.assert_array_equal(Xt, X[yt])
    np.testing.assert_array_equal(train_val_split(X, y, 0.2, seed=1)[3], yv)
    assert len(train_val_split(X, y, 0.0)[3]) == 0
    with pytest.raises(ValueError):
        train_val_split(X, y, 1.0)
