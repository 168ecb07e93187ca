#include "common/dispatch.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)
#define PB_X86 1
#include <cpuid.h>
#endif

namespace pb {
namespace {

#if PB_X86
// XGETBV without requiring -mxsave on this (generic) translation unit.
unsigned long long read_xcr0() {
    unsigned eax = 0, edx = 0;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return (static_cast<unsigned long long>(edx) << 32) | eax;
}
#endif

CpuFeatures probe() {
    CpuFeatures f;
#if PB_X86
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    const bool has_fma = (c >> 12) & 1;
    const bool has_osxsave = (c >> 27) & 1;
    const bool has_avx = (c >> 28) & 1;
    if (has_osxsave && has_avx) {
        // The OS must save XMM (bit 1) and YMM (bit 2) state on context
        // switches; for AVX-512 also opmask (5), ZMM upper halves (6) and
        // ZMM16-31 (7).
        const unsigned long long xcr0 = read_xcr0();
        f.os_saves_ymm = (xcr0 & 0x6) == 0x6;
        f.os_saves_zmm = (xcr0 & 0xe6) == 0xe6;
    }
    if (__get_cpuid_max(0, nullptr) >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        f.avx2 = (b >> 5) & 1;
        f.avx512f = (b >> 16) & 1;
        f.avx512vl = (b >> 31) & 1;
    }
    f.fma = has_fma;
#endif
    return f;
}

Isa initial_isa() {
    const char* env = std::getenv("PYBACKPROP_ISA");
    Isa best = best_supported_isa();
    if (env == nullptr || *env == '\0') return best;
    Isa wanted;
    try {
        wanted = parse_isa(env);
    } catch (const std::invalid_argument&) {
        return best;  // an unknown name is reported by the Python layer at import
    }
    return static_cast<int>(wanted) <= static_cast<int>(best) ? wanted : best;
}

std::atomic<int>& isa_slot() {
    static std::atomic<int> slot{static_cast<int>(initial_isa())};
    return slot;
}

}  // namespace

const CpuFeatures& cpu_features() {
    static const CpuFeatures features = probe();
    return features;
}

Isa best_supported_isa() {
    const CpuFeatures& f = cpu_features();
    if (!(f.avx2 && f.fma && f.os_saves_ymm)) return Isa::generic;
    return (f.avx512f && f.avx512vl && f.os_saves_zmm) ? Isa::avx512 : Isa::avx2;
}

Isa active_isa() { return static_cast<Isa>(isa_slot().load(std::memory_order_relaxed)); }

void set_active_isa(Isa isa) {
    if (static_cast<int>(isa) > static_cast<int>(best_supported_isa())) {
        throw std::invalid_argument(std::string("this CPU cannot run the ") + isa_name(isa) +
                                    " kernels (best available: " + isa_name(best_supported_isa()) + ")");
    }
    isa_slot().store(static_cast<int>(isa), std::memory_order_relaxed);
}

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::generic: return "generic";
        case Isa::avx2: return "avx2";
        case Isa::avx512: return "avx512";
    }
    return "unknown";
}

Isa parse_isa(const char* name) {
    if (std::strcmp(name, "generic") == 0) return Isa::generic;
    if (std::strcmp(name, "avx2") == 0) return Isa::avx2;
    if (std::strcmp(name, "avx512") == 0) return Isa::avx512;
    throw std::invalid_argument(std::string("unknown ISA '") + name + "' (expected 'generic', 'avx2' or 'avx512')");
}

const char* compiler_name() {
#if defined(__clang__)
    return "clang " __clang_version__;
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#else
    return "unknown";
#endif
}

}  // namespace pb
