// Whether this build has the *_avx2.cpp and *_avx512.cpp kernels (x86-64 only;
// elsewhere only the portable path exists and active_isa() is always generic),
// and the one-line dispatch used by the generic entry points of the
// elementwise modules:
//   PB_IF_AVX512(avx512::kernel(args));  // returns early on the avx512 path
//   PB_IF_AVX2(avx2::kernel(args));      // returns early on the avx2 and avx512 paths
#pragma once
#include "common/dispatch.h"

#if defined(__x86_64__) || defined(_M_X64)
#define PB_HAVE_AVX2_KERNELS 1
#define PB_IF_AVX2(...) \
    if (::pb::active_isa() >= ::pb::Isa::avx2) return __VA_ARGS__
#define PB_IF_AVX512(...) \
    if (::pb::active_isa() == ::pb::Isa::avx512) return __VA_ARGS__
#else
#define PB_HAVE_AVX2_KERNELS 0
#define PB_IF_AVX2(...) \
    do {                \
    } while (0)
#define PB_IF_AVX512(...) \
    do {                  \
    } while (0)
#endif
