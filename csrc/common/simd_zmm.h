// The zmm vector types of the *_avx512.cpp files: 16 floats or 8 doubles.
//
// Include ONLY from *_avx512.cpp files (compiled with -mavx512f -mavx512vl):
// everything is in an anonymous namespace inside pb::avx512, so each object
// file keeps its own copy and nothing is shared with code compiled for
// another ISA.
//
// They answer to two interfaces, each with the names of its ymm twin:
//   V, fmadd, first, maskz_load: the GEMM's microkernels and row kernel
//     (gemm_avx512.cpp; row_kernel_x86.h's RowF32 / RowF64);
//   R, fma, fnma, div, sqrt, neg: the elementwise loops of the optimiser
//     updates (optim_kernels_x86.h; simd_avx2.h's F32 / F64).
// sqrt and max take the zero-masked form with every lane selected: the same
// instruction, but GCC 12's plain _mm512_sqrt_ps / _mm512_max_ps pass an
// undefined vector that -Wmaybe-uninitialized flags. neg flips the sign bit
// with an integer xor (the float xor needs AVX-512DQ).
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "common/types.h"

namespace pb {
namespace avx512 {
namespace {

struct ZmmF32 {
    using T = float;
    using V = __m512;
    using R = V;
    using Mask = __mmask16;
    static constexpr index_t W = 16;
    static Mask first(index_t n) { return static_cast<Mask>((1u << n) - 1u); }
    static Mask all() { return first(W); }
    static V maskz_load(Mask k, const T* p) { return _mm512_maskz_loadu_ps(k, p); }
    static V zero() { return _mm512_setzero_ps(); }
    static V set1(T x) { return _mm512_set1_ps(x); }
    static V load(const T* p) { return _mm512_loadu_ps(p); }
    static void store(T* p, V v) { _mm512_storeu_ps(p, v); }
    static V add(V a, V b) { return _mm512_add_ps(a, b); }
    static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
    static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
    static V div(V a, V b) { return _mm512_div_ps(a, b); }
    static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }  // a b + c
    static V fma(V a, V b, V c) { return fmadd(a, b, c); }
    static V fnma(V a, V b, V c) { return _mm512_fnmadd_ps(a, b, c); }  // c - a b
    static V sqrt(V a) { return _mm512_maskz_sqrt_ps(all(), a); }
    static V max(V a, V b) { return _mm512_maskz_max_ps(all(), a, b); }  // b if either is NaN
    static V neg(V a) {
        return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a), _mm512_set1_epi32(INT32_MIN)));
    }
};

struct ZmmF64 {
    using T = double;
    using V = __m512d;
    using R = V;
    using Mask = __mmask8;
    static constexpr index_t W = 8;
    static Mask first(index_t n) { return static_cast<Mask>((1u << n) - 1u); }
    static Mask all() { return first(W); }
    static V maskz_load(Mask k, const T* p) { return _mm512_maskz_loadu_pd(k, p); }
    static V zero() { return _mm512_setzero_pd(); }
    static V set1(T x) { return _mm512_set1_pd(x); }
    static V load(const T* p) { return _mm512_loadu_pd(p); }
    static void store(T* p, V v) { _mm512_storeu_pd(p, v); }
    static V add(V a, V b) { return _mm512_add_pd(a, b); }
    static V sub(V a, V b) { return _mm512_sub_pd(a, b); }
    static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
    static V div(V a, V b) { return _mm512_div_pd(a, b); }
    static V fmadd(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
    static V fma(V a, V b, V c) { return fmadd(a, b, c); }
    static V fnma(V a, V b, V c) { return _mm512_fnmadd_pd(a, b, c); }
    static V sqrt(V a) { return _mm512_maskz_sqrt_pd(all(), a); }
    static V max(V a, V b) { return _mm512_maskz_max_pd(all(), a, b); }
    static V neg(V a) {
        return _mm512_castsi512_pd(_mm512_xor_si512(_mm512_castpd_si512(a), _mm512_set1_epi64(INT64_MIN)));
    }
};

}  // namespace
}  // namespace avx512
}  // namespace pb
