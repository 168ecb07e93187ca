"""set_num_threads is capped like PYBACKPROP_NUM_THREADS (1..1024) (review finding)."""
import pytest

from pybackprop import _core


def test_set_num_threads_cap():
    before = _core.get_num_threads()
    try:
        _core.set_num_threads(1024)
        assert _core.get_num_threads() == 1024
        for n in (1025, 10**6):
            with pytest.raises(ValueError, match="1024"):
                _core.set_num_threads(n)
            assert _core.get_num_threads() == 1024
        with pytest.raises(ValueError, match=">= 1"):
            _core.set_num_threads(0)
    finally:
        _core.set_num_threads(before)
