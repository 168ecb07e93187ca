"""The runtime: SIMD dispatch, thread settings and backend facts."""
import os
import subprocess
import sys

import numpy as np
import pytest

import pybackprop as pb
from pybackprop import _core


def run_python(code, **env):
    full_env = dict(os.environ, **env)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env, cwd="/")
    return res


def test_backend_info_reports_isa_threads_compiler():
    info = pb.backend_info()
    assert info["isa"] in _core.supported_isas()
    assert isinstance(info["threads"], int) and info["threads"] >= 1
    assert isinstance(info["compiler"], str) and info["compiler"]
    assert isinstance(pb.__version__, str)


def test_environment_forces_generic_path():
    res = run_python("import pybackprop as pb; print(pb.backend_info()['isa'])", PYBACKPROP_ISA="generic")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "generic"


def test_environment_caps_the_path_at_each_name():
    for name in _core.supported_isas():
        res = run_python("import pybackprop as pb; print(pb.backend_info()['isa'])", PYBACKPROP_ISA=name)
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip() == name


def test_thread_pool_works_in_a_forked_child():
    """The child of a fork has none of the parent's worker threads: its first parallel
    kernel must make new ones, not wait for the parent's (an alarm ends a hung child)."""
    code = ("import os, signal, numpy as np, pybackprop._core as c\n"
            "c.set_num_threads(2)\n"
            "rng = np.random.default_rng(0); a = rng.standard_normal((300, 300)); b = rng.standard_normal((300, 300))\n"
            "want = a @ b\n"
            "assert np.allclose(c.gemm(a, b), want, rtol=1e-10, atol=1e-10)  # the workers exist now\n"
            "for _ in range(2):\n"
            "    pid = os.fork()\n"
            "    if pid == 0:\n"
            "        signal.alarm(30)\n"
            "        ok = all(np.allclose(c.gemm(a, b), want, rtol=1e-10, atol=1e-10) for _ in range(3))\n"
            "        os._exit(0 if ok else 3)\n"
            "    print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\n"
            "    assert np.allclose(c.gemm(a, b), want, rtol=1e-10, atol=1e-10)  # and the parent's still serve\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd="/")
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["0", "0"], (res.stdout, res.stderr)


def test_default_path_is_the_best_supported():
    env = {k: v for k, v in os.environ.items() if k != "PYBACKPROP_ISA"}
    res = subprocess.run([sys.executable, "-c", "import pybackprop as pb; print(pb.backend_info()['isa'])"],
                         capture_output=True, text=True, env=env, cwd="/")
    assert res.stdout.strip() == _core.supported_isas()[-1]


def test_missing_compiled_core_is_a_clear_import_error(tmp_path):
    """An unbuilt checkout shadowing the installed package (`python -m pybackprop` run in the
    repository root) has no _core: the error must say so, not report a 'circular import'.
    The subprocess hides _core from the import system, whatever finders this environment has."""
    code = ("import sys\n"
            "class Hide:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'pybackprop._core':\n"
            "            raise ModuleNotFoundError(\"No module named 'pybackprop._core'\", name=name)\n"
            "sys.meta_path.insert(0, Hide())\n"
            "import pybackprop\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode != 0
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError") and "compiled core" in last and "pip install -e ." in last, res.stderr
    assert os.path.dirname(pb.__file__) in last, res.stderr


def test_unknown_isa_name_is_a_clear_error():
    res = run_python("import pybackprop", PYBACKPROP_ISA="sse9")
    assert res.returncode != 0
    assert "PYBACKPROP_ISA='sse9'" in res.stderr
    with pytest.raises(ValueError, match="unknown ISA"):
        _core._set_isa("sse9")


def test_thread_count_from_environment():
    res = run_python("import pybackprop as pb; print(pb.get_num_threads())", PYBACKPROP_NUM_THREADS="1")
    assert res.stdout.strip() == "1"


def test_set_num_threads_validates_and_round_trips():
    before = pb.get_num_threads()
    try:
        pb.set_num_threads(1)
        assert pb.get_num_threads() == 1
        pb.set_num_threads(2)
        assert pb.get_num_threads() == 2
        assert pb.backend_info()["threads"] == 2
        with pytest.raises(ValueError, match="1 <= n <= 1024, got 0"):
            pb.set_num_threads(0)
        with pytest.raises(ValueError, match="1 <= n <= 1024, got 1099511627776"):
            pb.set_num_threads(2 ** 40)          # not pybind11's "incompatible function arguments"
        pb.set_num_threads(np.int64(1))
        assert pb.get_num_threads() == 1
        with pytest.raises(TypeError):
            pb.set_num_threads(1.5)
    finally:
        pb.set_num_threads(before)


def test_kernels_agree_across_isa_in_fresh_processes(tmp_path):
    """The same GEMM computed by two processes, one forced to the generic path."""
    code = ("import numpy as np, pybackprop._core as c; rng = np.random.default_rng(0); "
            "a = rng.standard_normal((37, 53)); b = rng.standard_normal((53, 29)); "
            f"np.save(r'{tmp_path}/' + c.active_isa() + '.npy', c.gemm(a, b))")
    for env in ({"PYBACKPROP_ISA": "generic"}, {"PYBACKPROP_ISA": _core.supported_isas()[-1]}):
        res = run_python(code, **env)
        assert res.returncode == 0, res.stderr
    rng = np.random.default_rng(0)
    a = rng.standard_normal((37, 53))
    b = rng.standard_normal((53, 29))
    for path in tmp_path.glob("*.npy"):
        np.testing.assert_allclose(np.load(path), a @ b, rtol=1e-12, atol=1e-12)
