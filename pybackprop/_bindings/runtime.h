// pybind11 half of pybackprop._core: registers the stateful C++ objects into
// the module that Cython created (see runtime.cpp).
#pragma once
#include <Python.h>

// Returns 0 on success, -1 with a Python exception set.
int pb_register_runtime(PyObject* module);
