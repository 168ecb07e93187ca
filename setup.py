"""Build of pybackprop's native core.

One extension module, ``pybackprop._core``:
  * ``pybackprop/_core.pyx`` (Cython) binds every kernel, one thin function per
    kernel, because a Cython call costs a few hundred nanoseconds less than the
    alternatives and the autograd graph makes several per layer;
  * ``pybackprop/_bindings/runtime.cpp`` (pybind11) registers the stateful C++
    objects (runtime settings, thread pool) into the same module;
  * every ``csrc/**/*.cpp`` is compiled here by our own step so that files named
    ``*_avx2.cpp`` (and only those) get ``-mavx2 -mfma``, and ``*_avx512.cpp``
    those and ``-mavx512f -mavx512vl``: the wheel runs on any x86-64 CPU and
    picks the best kernels at run time. The step is incremental
    per object file and compiles files in parallel.
"""
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy
import pybind11
from Cython.Build import cythonize
from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).parent.resolve()
CSRC = ROOT / "csrc"

sys.path.insert(0, str(CSRC))
from build_flags import BASE_FLAGS, core_sources, flags_for  # noqa: E402

# Cython's generated C++ trips a few -Wextra checks in code we do not write.
GENERATED_FLAGS = ["-Wno-unused-function", "-Wno-unused-parameter", "-Wno-missing-field-initializers"]


class BuildCore(build_ext):
    """build_ext that first compiles csrc/ with per-file ISA flags."""

    def build_extension(self, ext):
        if ext.name == "pybackprop._core":
            ext.extra_objects = self._compile_core()
        super().build_extension(ext)

    def _compile_core(self):
        obj_dir = Path(self.build_temp) / "csrc"
        headers = list(CSRC.rglob("*.h"))
        newest_header = max((h.stat().st_mtime for h in headers), default=0.0)
        jobs = []
        objects = []
        for src in core_sources():
            flags = flags_for(src)
            if flags is None:
                continue
            obj = obj_dir / src.relative_to(CSRC).with_suffix(".o")
            objects.append(str(obj))
            if obj.exists() and obj.stat().st_mtime >= max(src.stat().st_mtime, newest_header):
                continue
            jobs.append((src, obj, flags))

        def compile_one(job):
            src, obj, flags = job
            obj.parent.mkdir(parents=True, exist_ok=True)
            # (setuptools >= 80 renamed Compiler.spawn to call and warns on the old name)
            run = getattr(self.compiler, "call", None) or self.compiler.spawn
            run(
                self.compiler.compiler_so
                + [f"-I{CSRC}", "-fPIC", "-DNDEBUG"]
                + flags
                + ["-c", str(src), "-o", str(obj)]
            )

        if jobs:
            print(f"compiling {len(jobs)} of {len(objects)} core sources", file=sys.stderr)
            with ThreadPoolExecutor(max_workers=int(os.environ.get("PYBACKPROP_BUILD_JOBS", "2"))) as pool:
                list(pool.map(compile_one, jobs))
        return objects


def compiler_args():
    # distutils puts its own -O2/-g and -Wall into compiler_so; ours come later and win.
    return BASE_FLAGS + GENERATED_FLAGS


core = Extension(
    "pybackprop._core",
    sources=["pybackprop/_core.pyx", "pybackprop/_bindings/runtime.cpp", "pybackprop/_bindings/plan.cpp"],
    include_dirs=[str(CSRC), numpy.get_include(), pybind11.get_include()],
    language="c++",
    extra_compile_args=compiler_args(),
    extra_link_args=["-pthread"],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"), ("NDEBUG", None)],
    depends=[os.path.relpath(p, ROOT) for p in
             [*CSRC.rglob("*.h"), *core_sources(), *(ROOT / "pybackprop" / "_bindings").glob("*")]],
)

setup(
    packages=find_packages(include=["pybackprop", "pybackprop.*"]),
    ext_modules=cythonize(
        [core],
        compiler_directives={"language_level": "3", "boundscheck": False, "wraparound": False},
        include_path=[str(ROOT / "pybackprop")],
    ),
    cmdclass={"build_ext": BuildCore},
)
