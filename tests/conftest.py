"""Fixtures shared by every test: the SIMD path, thread counts, the installed package."""
import os
from pathlib import Path

import numpy as np
import pytest

import pybackprop
from pybackprop import _core

REPO = Path(__file__).resolve().parents[1]


def pytest_report_header(config):
    info = pybackprop.backend_info()
    return (f"pybackprop {pybackprop.__version__} from {Path(pybackprop.__file__).parent}; "
            f"isa={info['isa']} (supported: {', '.join(_core.supported_isas())}), threads={info['threads']}")


def pytest_sessionstart(session):
    # CI must test what `pip install .` installed, not the source tree.
    if os.environ.get("CI") == "true":
        here = Path(pybackprop.__file__).resolve().parent
        if here == REPO / "pybackprop":
            raise pytest.UsageError(f"pybackprop was imported from the source tree ({here}); "
                                    "CI must test the installed package")


@pytest.fixture(params=_core.supported_isas())
def isa(request):
    """Run the test once per SIMD path this CPU supports; restores the previous path."""
    before = _core.active_isa()
    _core._set_isa(request.param)
    yield request.param
    _core._set_isa(before)


@pytest.fixture(params=[1, 2], ids=lambda n: f"{n}thr")
def threads(request):
    """Run the test at 1 and at 2 kernel threads; restores the previous count."""
    before = _core.get_num_threads()
    _core.set_num_threads(request.param)
    yield request.param
    _core.set_num_threads(before)


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(20261123)
