"""Compiler flags of the native core: one table, used by setup.py and by the
tests that build the native C++ test programs."""
import platform
from pathlib import Path

CSRC = Path(__file__).resolve().parent

IS_X86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")

# Release flags. No host-specific -march: the AVX2 kernels live in files named
# *_avx2.cpp, compiled with AVX2_FLAGS, the AVX-512 ones in *_avx512.cpp with
# AVX512_FLAGS, and they are chosen at run time.
BASE_FLAGS = ["-O3", "-std=c++17", "-Wall", "-Wextra", "-fvisibility=hidden", "-fno-math-errno", "-pthread"]
AVX2_FLAGS = ["-mavx2", "-mfma"]
AVX512_FLAGS = AVX2_FLAGS + ["-mavx512f", "-mavx512vl"]
SANITIZE_FLAGS = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"]


def core_sources():
    """Every kernel source (the native test programs under tests/ excluded)."""
    return sorted(p for p in CSRC.rglob("*.cpp") if "tests" not in p.relative_to(CSRC).parts)


def test_sources():
    return sorted((CSRC / "tests").glob("*.cpp"))


def flags_for(source):
    """Flags for one source file, or None if it is not built on this machine."""
    flags = list(BASE_FLAGS)
    for suffix, isa_flags in (("_avx2.cpp", AVX2_FLAGS), ("_avx512.cpp", AVX512_FLAGS)):
        if Path(source).name.endswith(suffix):
            if not IS_X86:
                return None  # only the portable path exists on other architectures
            flags += isa_flags
    return flags
