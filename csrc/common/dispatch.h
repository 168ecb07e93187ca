// Run-time choice of the SIMD path.
//
// CPU features are probed once (CPUID for AVX2/FMA/AVX-512F/VL, XGETBV for the
// OS saving YMM and ZMM state) and never by CPU family or model. The
// environment variable PYBACKPROP_ISA (generic, avx2, avx512) caps the path:
// PYBACKPROP_ISA=generic forces the portable kernels. Each kernel module keeps
// a small table of implementations indexed by `active_isa()`, so switching the
// ISA (tests do it through the private binding `_set_isa`) switches all of them
// together.
#pragma once
#include "common/types.h"

namespace pb {

struct CpuFeatures {
    bool avx2 = false;
    bool fma = false;
    bool os_saves_ymm = false;  // XCR0 bits 1 and 2 (SSE and AVX state)
    bool avx512f = false;
    bool avx512vl = false;
    bool os_saves_zmm = false;  // and XCR0 bits 5-7 (opmask, upper ZMM, ZMM16-31)
};

const CpuFeatures& cpu_features();

// The best ISA this CPU and OS support.
Isa best_supported_isa();

// The ISA kernels dispatch to. Initialised from best_supported_isa() and the
// PYBACKPROP_ISA environment variable on first use.
Isa active_isa();

// Force an ISA. Throws std::invalid_argument if the CPU cannot run it.
void set_active_isa(Isa isa);

const char* isa_name(Isa isa);

// Parse "generic" / "avx2" / "avx512"; throws std::invalid_argument otherwise.
Isa parse_isa(const char* name);

// Name and version of the compiler that built the core, e.g. "gcc 12.2.0".
const char* compiler_name();

}  // namespace pb
