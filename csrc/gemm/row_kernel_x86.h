// The batch-1 row kernel (m == 1: c = alpha a B + beta c, B with unit column
// stride), written once over a vector type R and compiled by each x86 kernel
// file with its own flags, vectors and register budget:
//   gemm_avx2.cpp    16 ymm registers: strips of up to 8 accumulators
//                    (64 floats / 32 doubles of C)
//   gemm_avx512.cpp  32 zmm registers: strips of up to 16 accumulators
//                    (256 floats / 128 doubles), so a layer up to 256 wide
//                    is one pass over B
// Each column's sum is the same in both (fused multiply-adds over k in order
// from zero, then the same write-back), so the ISAs agree bit for bit here.
//
// Everything below is in an anonymous namespace: each including file gets its
// own copy, built with its own flags, and no code is shared (as a COMDAT)
// between files compiled for different ISAs.
#pragma once
#include <immintrin.h>

#include <utility>

#include "common/types.h"
#include "gemm/gemm_kernels.h"

namespace pb {
namespace {
namespace row_kernel {

// The vector operations the row kernel uses.
struct RowF32 {
    using T = float;
    using V = __m256;
    using Mask = __m256i;
    static constexpr index_t W = 8;
    static V zero() { return _mm256_setzero_ps(); }
    static V set1(T x) { return _mm256_set1_ps(x); }
    static V load(const T* p) { return _mm256_loadu_ps(p); }
    static void store(T* p, V v) { _mm256_storeu_ps(p, v); }
    static V maskload(const T* p, __m256i m) { return _mm256_maskload_ps(p, m); }
    static void maskstore(T* p, __m256i m, V v) { _mm256_maskstore_ps(p, m, v); }
    static V add(V a, V b) { return _mm256_add_ps(a, b); }
    static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
    static V max(V a, V b) { return _mm256_max_ps(a, b); }
    static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
    static __m256i all() { return _mm256_set1_epi32(-1); }
    static __m256i tail(index_t r) {  // the first r lanes
        return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(r)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    }
};
struct RowF64 {
    using T = double;
    using V = __m256d;
    using Mask = __m256i;
    static constexpr index_t W = 4;
    static V zero() { return _mm256_setzero_pd(); }
    static V set1(T x) { return _mm256_set1_pd(x); }
    static V load(const T* p) { return _mm256_loadu_pd(p); }
    static void store(T* p, V v) { _mm256_storeu_pd(p, v); }
    static V maskload(const T* p, __m256i m) { return _mm256_maskload_pd(p, m); }
    static void maskstore(T* p, __m256i m, V v) { _mm256_maskstore_pd(p, m, v); }
    static V add(V a, V b) { return _mm256_add_pd(a, b); }
    static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
    static V max(V a, V b) { return _mm256_max_pd(a, b); }
    static V fmadd(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
    static __m256i all() { return _mm256_set1_epi64x(-1); }
    static __m256i tail(index_t r) {
        return _mm256_cmpgt_epi64(_mm256_set1_epi64x(static_cast<long long>(r)), _mm256_setr_epi64x(0, 1, 2, 3));
    }
};

// B streams from L2 once, so the kernel is bound by how fast its lines reach
// L1. A strip of C lives in NV vector accumulators (NV and the masked column
// tail fixed at compile time so nothing spills). The strips of a chunk of up
// to four take turns every kRowBlock rows of B, carrying their accumulators
// in a small stack buffer (exact: the sum over k still runs in order from
// zero): the rows are then read nearly whole while they are fresh in L1,
// instead of streaming every row once per strip (784 x 128 float on Zen 4,
// one core, AVX2: 4.6 -> 4.1 us for the kernel alone). A chunk of one strip
// runs its whole k in one turn.
constexpr index_t kRowBlock = 32;
constexpr int kRowStrips = 4;

// c[0 : NV W) = alpha acc + beta c (beta == 0: c is not read), then + bias
// and ReLU as `epi` says (epi.bias offset like c), the last vector under
// `tail` if MASKED. The bias and ReLU are those of bias_act_forward
// (activations_avx2.cpp): z = r + bias, max(0, z).
// (Masked moves only for the partial vector: on Zen 4 a vmaskmovps store
// costs far more than a plain one.)
template <class R, int NV, bool MASKED>
inline void write_back(const typename R::V* acc, typename R::Mask tail, typename R::T alpha, typename R::T beta,
                       typename R::T* c, RowEpilogue<typename R::T> epi) {
    using V = typename R::V;
    const V va = R::set1(alpha), vb = R::set1(beta);
#pragma GCC unroll 16
    for (int v = 0; v < NV; ++v) {
        const bool part = MASKED && v == NV - 1;
        typename R::T* cv = c + v * R::W;
        V r = R::mul(va, acc[v]);
        if (beta != 0) r = R::fmadd(vb, part ? R::maskload(cv, tail) : R::load(cv), r);
        if (epi.bias != nullptr) {
            const typename R::T* bv = epi.bias + v * R::W;
            r = R::add(r, part ? R::maskload(bv, tail) : R::load(bv));
        }
        if (epi.relu) r = R::max(R::zero(), r);
        if (part)
            R::maskstore(cv, tail, r);
        else
            R::store(cv, r);
    }
}

// Rows [0, k) of one strip of width w in ((NV-1)W, NV W]: acc = carry (or 0
// if first) + sum_p a[p] B(p, 0:w); then save it in carry, or, if last, write
// back alpha acc + beta c and the epilogue. MASKED: the strip's last vector is
// partial.
template <class R, int NV, bool MASKED>
void row_pass(index_t w, index_t k, typename R::T alpha, const typename R::T* a, index_t inc_a,
              const typename R::T* b, index_t rs_b, typename R::T beta, typename R::T* c, typename R::T* carry,
              bool first, bool last, RowEpilogue<typename R::T> epi) {
    using V = typename R::V;
    constexpr index_t W = R::W;
    const typename R::Mask tail = MASKED ? R::tail(w - (NV - 1) * W) : R::all();
    V acc[NV];
    if (first)
#pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) acc[v] = R::zero();
    else
#pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) acc[v] = R::load(carry + v * W);
    for (index_t p = 0; p < k; ++p) {
        const V ap = R::set1(a[p * inc_a]);
        const typename R::T* bp = b + p * rs_b;
#pragma GCC unroll 16
        for (int v = 0; v < NV; ++v)
            acc[v] = R::fmadd(ap, MASKED && v == NV - 1 ? R::maskload(bp + v * W, tail) : R::load(bp + v * W), acc[v]);
    }
    if (!last) {
#pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) R::store(carry + v * W, acc[v]);
        return;
    }
    write_back<R, NV, MASKED>(acc, tail, alpha, beta, c, epi);
}

template <class R>
using RowPass = void (*)(index_t, index_t, typename R::T, const typename R::T*, index_t, const typename R::T*,
                         index_t, typename R::T, typename R::T*, typename R::T*, bool, bool,
                         RowEpilogue<typename R::T>);

// row_pass<R, 1..MAX_NV, MASKED>, indexed by NV - 1.
template <class R, bool MASKED, class Seq>
struct RowPasses;
template <class R, bool MASKED, int... I>
struct RowPasses<R, MASKED, std::integer_sequence<int, I...>> {
    static constexpr RowPass<R> table[sizeof...(I)] = {row_pass<R, I + 1, MASKED>...};
};

// Columns [j0, j1) of c, in strips of at most MAX_NV vectors.
template <class R, int MAX_NV>
void row_impl(index_t j0, index_t j1, index_t k, typename R::T alpha, const typename R::T* a, index_t inc_a,
              const typename R::T* b, index_t rs_b, typename R::T beta, typename R::T* c,
              RowEpilogue<typename R::T> epi) {
    using T = typename R::T;
    using Seq = std::make_integer_sequence<int, MAX_NV>;
    constexpr const RowPass<R>* kFull = RowPasses<R, false, Seq>::table;
    constexpr const RowPass<R>* kMasked = RowPasses<R, true, Seq>::table;
    constexpr index_t kCols = MAX_NV * R::W;
    alignas(32) T carry[kRowStrips * kCols];
    for (index_t jc = j0; jc < j1; jc += kRowStrips * kCols) {
        const index_t chunk_end = jc + kRowStrips * kCols < j1 ? jc + kRowStrips * kCols : j1;
        const index_t turn = chunk_end - jc > kCols ? kRowBlock : k;
        for (index_t p0 = 0; p0 < k; p0 += turn) {
            const index_t rows = turn < k - p0 ? turn : k - p0;
            T* strip_carry = carry;
            for (index_t js = jc; js < chunk_end; js += kCols, strip_carry += kCols) {
                const index_t w = kCols < chunk_end - js ? kCols : chunk_end - js;
                const index_t nv = (w + R::W - 1) / R::W;
                const RowEpilogue<T> strip_epi{epi.bias != nullptr ? epi.bias + js : nullptr, epi.relu};
                (w % R::W ? kMasked : kFull)[nv - 1](w, rows, alpha, a + p0 * inc_a, inc_a, b + p0 * rs_b + js, rs_b,
                                                     beta, c + js, strip_carry, p0 == 0, p0 + rows == k, strip_epi);
            }
        }
    }
}

// ---- Narrow rows: a whole row of C at most kNarrowRowCols (32) wide (a
// 10-class output layer). Its NV < 8 accumulators would each wait out the FMA
// latency (4 cycles on Zen 4) at every row of B. The rows of B are instead
// dealt round-robin (row p to chain p % CH) to CH independent sets of
// accumulators, added pairwise at the end, so NV x CH <= 8 FMAs are in
// flight. The order of the sum is fixed by n and k alone (gemm.cpp calls this
// only for whole rows of n <= 32, which neither a thread split nor the ISA's
// strip width divides). 128 x 10 float through gemm, one core: 166 -> 112 ns.
template <class R, int NV, bool MASKED>
void narrow_pass(index_t w, index_t k, typename R::T alpha, const typename R::T* a, index_t inc_a,
                 const typename R::T* b, index_t rs_b, typename R::T beta, typename R::T* c,
                 RowEpilogue<typename R::T> epi) {
    using V = typename R::V;
    constexpr index_t W = R::W;
    constexpr int CH = NV == 1 ? 8 : NV == 2 ? 4 : NV <= 4 ? 2 : 1;
    const typename R::Mask tail = MASKED ? R::tail(w - (NV - 1) * W) : R::all();
    V acc[CH][NV];
#pragma GCC unroll 8
    for (int ch = 0; ch < CH; ++ch)
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) acc[ch][v] = R::zero();
    auto step = [&](V* chain, index_t p) {
        const V ap = R::set1(a[p * inc_a]);
        const typename R::T* bp = b + p * rs_b;
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v)
            chain[v] =
                R::fmadd(ap, MASKED && v == NV - 1 ? R::maskload(bp + v * W, tail) : R::load(bp + v * W), chain[v]);
    };
    index_t p = 0;
    for (; p + CH <= k; p += CH)
#pragma GCC unroll 8
        for (int ch = 0; ch < CH; ++ch) step(acc[ch], p + ch);
    for (int ch = 0; p < k; ++p, ++ch) step(acc[ch], p);
#pragma GCC unroll 8
    for (int s = 1; s < CH; s *= 2)  // ((c0 + c1) + (c2 + c3)) + ...
#pragma GCC unroll 8
        for (int ch = 0; ch + s < CH; ch += 2 * s)
#pragma GCC unroll 8
            for (int v = 0; v < NV; ++v) acc[ch][v] = R::add(acc[ch][v], acc[ch + s][v]);
    write_back<R, NV, MASKED>(acc[0], tail, alpha, beta, c, epi);
}

template <class R, bool MASKED, class Seq>
struct NarrowPasses;
template <class R, bool MASKED, int... I>
struct NarrowPasses<R, MASKED, std::integer_sequence<int, I...>> {
    using Fn = void (*)(index_t, index_t, typename R::T, const typename R::T*, index_t, const typename R::T*,
                        index_t, typename R::T, typename R::T*, RowEpilogue<typename R::T>);
    static constexpr Fn table[sizeof...(I)] = {narrow_pass<R, I + 1, MASKED>...};
};

// c[0:n) = alpha a B + beta c, then the epilogue, for 0 < n <= kNarrowRowCols.
template <class R>
void narrow_impl(index_t n, index_t k, typename R::T alpha, const typename R::T* a, index_t inc_a,
                 const typename R::T* b, index_t rs_b, typename R::T beta, typename R::T* c,
                 RowEpilogue<typename R::T> epi) {
    using Seq = std::make_integer_sequence<int, static_cast<int>(kNarrowRowCols / R::W)>;
    const index_t nv = (n + R::W - 1) / R::W;
    (n % R::W ? NarrowPasses<R, true, Seq>::table : NarrowPasses<R, false, Seq>::table)[nv - 1](
        n, k, alpha, a, inc_a, b, rs_b, beta, c, epi);
}

}  // namespace row_kernel
}  // namespace
}  // namespace pb
