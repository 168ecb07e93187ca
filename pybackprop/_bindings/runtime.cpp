// The pybind11 half of pybackprop._core.
//
// Cython binds the kernels (one thin, low-overhead function per kernel, see
// ../_core.pyx). pybind11 is used here for what it does best: C++ state
// exposed as Python objects and dicts — the runtime settings, the thread pool
// and the CPU probe. It registers into the module object that Cython's module
// init created, so the whole native core is one shared library with one copy
// of its global state.
#include "runtime.h"

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "common/core_distance.h"
#include "common/dispatch.h"
#include "common/thread_pool.h"

namespace py = pybind11;

void pb_register_plan(py::module_ m);  // plan.cpp

namespace {

py::dict cpu_dict() {
    const pb::CpuFeatures& f = pb::cpu_features();
    py::dict d;
    d["avx2"] = f.avx2;
    d["fma"] = f.fma;
    d["os_saves_ymm"] = f.os_saves_ymm;
    d["avx512f"] = f.avx512f;
    d["avx512vl"] = f.avx512vl;
    d["os_saves_zmm"] = f.os_saves_zmm;
    return d;
}

void register_all(py::module_ m) {
    m.def("get_num_threads", &pb::get_num_threads, "Threads the kernels may use.");
    m.def(
        "set_num_threads",
        [](int n) { pb::set_num_threads(n); },
        py::arg("n"), "Set the threads the kernels may use (>= 1).");
    m.def("active_isa", [] { return std::string(pb::isa_name(pb::active_isa())); });
    m.def(
        "_set_isa", [](const std::string& name) { pb::set_active_isa(pb::parse_isa(name.c_str())); },
        py::arg("name"), "Force the SIMD path ('generic', 'avx2' or 'avx512'). For tests.");
    m.def("supported_isas", [] {
        std::vector<std::string> out;
        for (int i = 0; i <= static_cast<int>(pb::best_supported_isa()); ++i)
            out.emplace_back(pb::isa_name(static_cast<pb::Isa>(i)));
        return out;
    });
    m.def("cpu_features", &cpu_dict);
    m.def(
        "_handoff_ns",
        [](double timeout_ms) {
            if (!(timeout_ms >= 0.0 && timeout_ms <= 60e3))
                throw py::value_error("timeout_ms must be in [0, 60000], got " + std::to_string(timeout_ms));
            py::gil_scoped_release nogil;
            return pb::measure_handoff_ns(static_cast<long long>(timeout_ms * 1e6));
        },
        py::arg("timeout_ms") = 10.0,
        "The pool's one-way caller-to-worker handoff in ns, measured now (a diagnostic the benchmark records); "
        "-1 on one thread, with the pool busy, or if the worker did not start within timeout_ms.");
    m.def("backend_info", [] {
        py::dict d;
        d["isa"] = pb::isa_name(pb::active_isa());
        d["best_isa"] = pb::isa_name(pb::best_supported_isa());
        d["threads"] = pb::get_num_threads();
        d["compiler"] = pb::compiler_name();
        d["cpu"] = cpu_dict();
        d["denormals"] = "IEEE gradual underflow (MXCSR untouched)";
        return d;
    });
}

}  // namespace

int pb_register_runtime(PyObject* module) {
    try {
        py::module_ m = py::reinterpret_borrow<py::module_>(module);
        register_all(m);
        pb_register_plan(m);
        return 0;
    } catch (py::error_already_set& e) {
        e.restore();
    } catch (const std::exception& e) {
        PyErr_SetString(PyExc_RuntimeError, e.what());
    }
    return -1;
}
