"""Builds the native C++ kernel test program (csrc/tests) and runs it: once as
released (-O3) and once under AddressSanitizer + UndefinedBehaviorSanitizer."""
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CSRC = REPO / "csrc"
sys.path.insert(0, str(CSRC))
from build_flags import SANITIZE_FLAGS, core_sources, flags_for  # noqa: E402
from build_flags import test_sources as native_test_sources  # noqa: E402  (not a pytest test)

CXX = os.environ.get("CXX", "g++")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which(CXX) is None, reason=f"no C++ compiler ({CXX}) to build the native tests"),
]


def build(out_dir, extra_flags=(), opt=None):
    """Compile every core and test source with its own flags, link, return the program."""
    out_dir.mkdir(parents=True, exist_ok=True)

    def compile_one(src):
        flags = flags_for(src)
        if flags is None:
            return None
        if opt:
            flags = [f for f in flags if not f.startswith("-O")] + [opt]
        obj = out_dir / (src.relative_to(CSRC).as_posix().replace("/", "__") + ".o")
        cmd = [CXX, *flags, *extra_flags, "-Werror", f"-I{CSRC}", "-c", str(src), "-o", str(obj)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        assert res.returncode == 0, f"compiling {src.name} failed:\n{' '.join(cmd)}\n{res.stderr}"
        return str(obj)

    with ThreadPoolExecutor(max_workers=2) as pool:
        objects = [o for o in pool.map(compile_one, core_sources() + native_test_sources()) if o]
    exe = out_dir / "pb_native_tests"
    res = subprocess.run([CXX, *extra_flags, "-pthread", *objects, "-o", str(exe)], capture_output=True, text=True)
    assert res.returncode == 0, f"linking failed:\n{res.stderr}"
    return exe


def run(exe, env=None):
    res = subprocess.run([str(exe)], capture_output=True, text=True, timeout=900, env=env)
    assert res.returncode == 0, f"native tests failed (exit {res.returncode}):\n{res.stdout[-4000:]}\n{res.stderr[-8000:]}"
    assert "0 failures" in res.stdout
    return res.stdout


def sanitizer_available(tmp_path):
    src = tmp_path / "probe.cpp"
    src.write_text("int main() { return 0; }\n")
    res = subprocess.run([CXX, *SANITIZE_FLAGS, str(src), "-o", str(tmp_path / "probe")],
                         capture_output=True, text=True)
    return res.returncode == 0 and subprocess.run([str(tmp_path / "probe")]).returncode == 0


def test_native_kernels_release(tmp_path):
    out = run(build(tmp_path / "release"))
    assert "suite runs" in out


def test_native_kernels_under_sanitizers(tmp_path):
    if not sanitizer_available(tmp_path):
        pytest.skip("the ASan/UBSan runtime (libasan, libubsan) is not installed for this compiler")
    exe = build(tmp_path / "asan", extra_flags=SANITIZE_FLAGS, opt="-O1")
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    run(exe, env=env)
