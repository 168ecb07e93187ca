// Optimiser updates, AVX-512: optim_kernels_x86.h's loops over zmm vectors,
// twice the lanes of the avx2 path and the same bits in every lane. Adam,
// bound by its square root and division, takes 0.14 ns an element where the
// ymm loop takes 0.21 (Zen 5, one core, buffers in L2).
#include "optim/optim_simd.h"
#include "activations/avx2_guard.h"

#if PB_HAVE_AVX2_KERNELS
#include <immintrin.h>

#include "optim/optim_kernels_x86.h"

namespace pb {
namespace avx512 {
namespace {

// The operations optim_kernels_x86.h asks of a vector (simd_avx2.h's F32 and
// F64 in zmm registers). neg flips the sign bit with an integer xor (the float
// xor needs AVX-512DQ). sqrt and max take the merge-masked form with every
// lane selected: the same instruction, but GCC 12's plain _mm512_sqrt_ps and
// _mm512_max_ps pass an undefined vector that -Wmaybe-uninitialized flags.
struct ZF32 {
    using T = float;
    using R = __m512;
    static constexpr int W = 16;
    static constexpr __mmask16 kAll = 0xFFFF;
    static R load(const T* p) { return _mm512_loadu_ps(p); }
    static void store(T* p, R v) { _mm512_storeu_ps(p, v); }
    static R set1(double a) { return _mm512_set1_ps(static_cast<float>(a)); }
    static R add(R a, R b) { return _mm512_add_ps(a, b); }
    static R sub(R a, R b) { return _mm512_sub_ps(a, b); }
    static R mul(R a, R b) { return _mm512_mul_ps(a, b); }
    static R div(R a, R b) { return _mm512_div_ps(a, b); }
    static R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }   // a b + c
    static R fnma(R a, R b, R c) { return _mm512_fnmadd_ps(a, b, c); } // c - a b
    static R sqrt(R a) { return _mm512_mask_sqrt_ps(a, kAll, a); }
    static R max(R a, R b) { return _mm512_mask_max_ps(a, kAll, a, b); }  // b if either is NaN
    static R neg(R a) {
        return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a), _mm512_set1_epi32(INT32_MIN)));
    }
};

struct ZF64 {
    using T = double;
    using R = __m512d;
    static constexpr int W = 8;
    static constexpr __mmask8 kAll = 0xFF;
    static R load(const T* p) { return _mm512_loadu_pd(p); }
    static void store(T* p, R v) { _mm512_storeu_pd(p, v); }
    static R set1(double a) { return _mm512_set1_pd(a); }
    static R add(R a, R b) { return _mm512_add_pd(a, b); }
    static R sub(R a, R b) { return _mm512_sub_pd(a, b); }
    static R mul(R a, R b) { return _mm512_mul_pd(a, b); }
    static R div(R a, R b) { return _mm512_div_pd(a, b); }
    static R fma(R a, R b, R c) { return _mm512_fmadd_pd(a, b, c); }
    static R fnma(R a, R b, R c) { return _mm512_fnmadd_pd(a, b, c); }
    static R sqrt(R a) { return _mm512_mask_sqrt_pd(a, kAll, a); }
    static R max(R a, R b) { return _mm512_mask_max_pd(a, kAll, a, b); }
    static R neg(R a) {
        return _mm512_castsi512_pd(_mm512_xor_si512(_mm512_castpd_si512(a), _mm512_set1_epi64(INT64_MIN)));
    }
};

}  // namespace

PB_OPTIM_SIMD_DEFS(ZF32, ZF64)

}  // namespace avx512
}  // namespace pb
#endif  // PB_HAVE_AVX2_KERNELS
