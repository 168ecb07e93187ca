# distutils: language = c++
# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""pybackprop._core: the native kernels.

One function per kernel, written in Cython because the autograd graph calls
these once or more per layer and op, so call overhead matters: a Cython def
function costs well under a microsecond. Each function validates shapes,
dtypes and memory layout, raising ValueError/TypeError that name the
offending shapes, then releases the GIL around the C++ call. C++ exceptions
become Python exceptions (``except +``), never a crash.

The stateful runtime (thread count, SIMD path, CPU probe) and the compiled
plans are registered into this same module by pybind11 (_bindings/runtime.cpp,
plan.cpp); _bindings/step.pxi is the per-call path of pb.compile's step and
inference, which calls those plans' C++ directly.
"""
import sys
import types

import numpy as np
cimport numpy as cnp

cnp.import_array()

include "_bindings/common.pxi"
include "_bindings/gemm.pxi"
include "_bindings/dense.pxi"
include "_bindings/activations.pxi"
include "_bindings/losses.pxi"
include "_bindings/optim.pxi"
include "_bindings/reduce.pxi"
include "_bindings/step.pxi"

cdef extern from "_bindings/runtime.h":
    int pb_register_runtime(object module) except -1

pb_register_runtime(sys.modules[__name__])
