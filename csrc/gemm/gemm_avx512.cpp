// Kernels of the avx512 path that differ from the AVX2 ones: the register-tile
// microkernels inside the shared macro-kernel (macro_kernel_x86.h), the
// batch-1 row (row_kernel_x86.h) and the narrow dW (narrow_tn, below).
// Packing, the tiny and narrow-row kernels and the block sizes are the AVX2
// ones (gemm.cpp's table).
//
// Compiled with -mavx2 -mfma -mavx512f -mavx512vl (this file only).
//
// The microkernels keep the AVX2 tiles (6 x 16 float, 6 x 8 double), their
// packed micro-panels and their arithmetic per element, but hold a row of
// the tile in one zmm register. ukr computes one tile (6 accumulators);
// ukr2, which the macro-kernel takes wherever two full micro-panels of B are
// left, two side by side (12 accumulators: see its comment for why and by
// how much). Zen 4 executes a 512-bit FMA as two 256-bit halves: there ukr
// alone matched the AVX2 kernel on a quiet core (C's GEMMs: 99-107 GFLOP/s
// either way) and won 2-16% on C's training step in phases where the VM's
// core was shared (benchmarks/bench_isa_paths.py switches the path in one
// process every window).
//
// The row kernel keeps up to 16 zmm accumulators, so a strip covers 256
// floats. On Zen 4 it ran on 256-bit vectors in AVX-512VL's 32 registers
// (the kernel alone, 784 x 128, one core: 4.4 -> 3.5 us against AVX2's 8
// accumulators; 512-bit vectors measured 3.6 there); Zen 5 executes a 512-bit
// FMA in one pass: there the compiled batch-1 forward of 784-128-10 (the
// benchmark's F), old build against new in alternating processes, 3 rounds,
// took 2.63-2.69 -> 1.95-2.00 us on one thread and 1.70-1.76 -> 1.49-1.56 on
// two.
// The same ODR rule as gemm_avx2.cpp: nothing shared with other ISAs' files.
#include <immintrin.h>

#include <array>
#include <cmath>
#include <cstddef>
#include <utility>

#include "common/simd_zmm.h"
#include "gemm/gemm_kernels.h"
#include "gemm/macro_kernel_x86.h"
#include "gemm/row_kernel_x86.h"

namespace pb {
namespace avx512 {
namespace {

using macro_kernel::beta_mode;
using macro_kernel::kBeta0;
using macro_kernel::kBeta1;
using macro_kernel::kMrD;
using macro_kernel::kMrF;
using macro_kernel::kNrD;
using macro_kernel::kNrF;
using macro_kernel::Macro;

// A row of a microkernel tile is one zmm register: ZmmF32 / ZmmF64
// (common/simd_zmm.h).

// The row kernel's vectors (row_kernel_x86.h's RowF32/RowF64 in zmm registers;
// the partial vector under a lane mask).
struct RowZ32 : ZmmF32 {
    static V maskload(const T* p, Mask m) { return maskz_load(m, p); }
    static void maskstore(T* p, Mask m, V v) { _mm512_mask_storeu_ps(p, m, v); }
    static Mask tail(index_t r) { return first(r); }
};
struct RowZ64 : ZmmF64 {
    static V maskload(const T* p, Mask m) { return maskz_load(m, p); }
    static void maskstore(T* p, Mask m, V v) { _mm512_mask_storeu_pd(p, m, v); }
    static Mask tail(index_t r) { return first(r); }
};

// One vector of C's write-back, alpha acc (+ beta c): macro_kernel::wb_f32 /
// wb_f64's operations on a zmm (beta == 0: C is not read).
template <class Z>
inline typename Z::V write_back(const typename Z::T* cp, typename Z::V acc, typename Z::V va, typename Z::V vb,
                                int bm) {
    if (bm == kBeta0) return Z::mul(va, acc);
    if (bm == kBeta1) return Z::fmadd(va, acc, Z::load(cp));
    return Z::fmadd(va, acc, Z::mul(vb, Z::load(cp)));
}

// The short row tiles (1-5 rows) of a pair of micro-panels (ukr2), one zmm a
// micro-panel row: macro_kernel::ukr_rows with these vectors (so the same
// bits as the AVX2 short rows).
template <class Z>
struct PairRows : Z {
    using T = typename Z::T;
    using V = typename Z::V;
    static V broadcast(const T* p) { return Z::set1(*p); }
    static V wb(T* cp, V acc, V va, V vb, int bm) { return write_back<Z>(cp, acc, va, vb, bm); }
};

// C[0:6, 0:W] = alpha * sum_p A(:, p) B(p, :) + beta * C, a row of C per
// register: the contract of gemm_avx2.cpp's ukr_f32/ukr_f64, and their
// arithmetic (macro_kernel::wb_f32/wb_f64's write-back).
template <class Z>
void ukr(index_t k, const typename Z::T* a, index_t o1, index_t o2, index_t o3, index_t o4, index_t o5,
         index_t a_cs, const typename Z::T* b, index_t b_rs, typename Z::T* c, index_t c_rs, typename Z::T alpha,
         typename Z::T beta) {
    using V = typename Z::V;
    V c0 = Z::zero(), c1 = Z::zero(), c2 = Z::zero(), c3 = Z::zero(), c4 = Z::zero(), c5 = Z::zero();
    for (index_t i = 0; i < 6; ++i) _mm_prefetch(reinterpret_cast<const char*>(c + i * c_rs), _MM_HINT_T0);
#pragma GCC unroll 4
    for (index_t p = 0; p < k; ++p) {
        const V b0 = Z::load(b);
        c0 = Z::fmadd(Z::set1(a[0]), b0, c0);
        c1 = Z::fmadd(Z::set1(a[o1]), b0, c1);
        c2 = Z::fmadd(Z::set1(a[o2]), b0, c2);
        c3 = Z::fmadd(Z::set1(a[o3]), b0, c3);
        c4 = Z::fmadd(Z::set1(a[o4]), b0, c4);
        c5 = Z::fmadd(Z::set1(a[o5]), b0, c5);
        a += a_cs;
        b += b_rs;
    }
    const V va = Z::set1(alpha), vb = Z::set1(beta);
    const int bm = beta_mode(beta);
    const V acc[6] = {c0, c1, c2, c3, c4, c5};
#pragma GCC unroll 6
    for (int i = 0; i < 6; ++i) Z::store(c + i * c_rs, write_back<Z>(c + i * c_rs, acc[i], va, vb, bm));
}

// Two adjacent tiles, C[0:6, 0:2W] = alpha * sum_p A(:, p) [B0(p, :) B1(p, :)]
// + beta * C, with B0 and B1 the micro-panels at b and b + b_ps: 12
// accumulators, two B loads and 6 broadcasts per k step. Each element gets
// ukr's arithmetic (the same FMAs in the same order, the same write-back),
// so a column of C does not depend on which kernel computed it.
//
// Why: with two 512-bit FMA pipes of 4 cycles' latency (Zen 5; Intel since
// Skylake-SP) a core needs at least 8 independent accumulators in flight, and
// ukr's 6 leave a quarter of it idle. Zen 5, one core, the kernels alone over
// a 144 x 768 block of C, kc = 512 (three runs): ukr 190-197 GFLOP/s, this
// one 260-270 (a 12 x 16 tile over two A micro-panels: 216-239). Whole
// GEMMs, old build against new in alternating processes (4 rounds, one
// thread): 512 x 1024 x 784 181 -> 233 GFLOP/s, 1024 x 4096 x 4096 177 -> 221.
template <class Z>
void ukr2(index_t k, const typename Z::T* a, index_t o1, index_t o2, index_t o3, index_t o4, index_t o5,
          index_t a_cs, const typename Z::T* b, index_t b_rs, index_t b_ps, typename Z::T* c, index_t c_rs,
          typename Z::T alpha, typename Z::T beta) {
    using V = typename Z::V;
    constexpr index_t W = Z::W;
    // (Accumulators spelled out, as in ukr: written as loops over a 6 x 2
    // array, GEMMs measured 0.96-0.97x, old build against new, 3 rounds.)
    V c00 = Z::zero(), c10 = Z::zero(), c20 = Z::zero(), c30 = Z::zero(), c40 = Z::zero(), c50 = Z::zero();
    V c01 = Z::zero(), c11 = Z::zero(), c21 = Z::zero(), c31 = Z::zero(), c41 = Z::zero(), c51 = Z::zero();
    // C's lines into L2 (not L1, through which B's two micro-panels stream
    // meanwhile). Against L1, old build against new in alternating processes
    // (Zen 5): E's compiled step 1.032 [1.020-1.035] at two threads (3
    // rounds); 1024 x 4096 x 4096 1.019 at one; B and C unchanged.
    for (index_t i = 0; i < 6; ++i) {
        _mm_prefetch(reinterpret_cast<const char*>(c + i * c_rs), _MM_HINT_T1);
        _mm_prefetch(reinterpret_cast<const char*>(c + i * c_rs + W), _MM_HINT_T1);
    }
    const typename Z::T* b1 = b + b_ps;
#pragma GCC unroll 4
    for (index_t p = 0; p < k; ++p) {
        const V b0 = Z::load(b), bb1 = Z::load(b1);
        V ai = Z::set1(a[0]);
        c00 = Z::fmadd(ai, b0, c00);
        c01 = Z::fmadd(ai, bb1, c01);
        ai = Z::set1(a[o1]);
        c10 = Z::fmadd(ai, b0, c10);
        c11 = Z::fmadd(ai, bb1, c11);
        ai = Z::set1(a[o2]);
        c20 = Z::fmadd(ai, b0, c20);
        c21 = Z::fmadd(ai, bb1, c21);
        ai = Z::set1(a[o3]);
        c30 = Z::fmadd(ai, b0, c30);
        c31 = Z::fmadd(ai, bb1, c31);
        ai = Z::set1(a[o4]);
        c40 = Z::fmadd(ai, b0, c40);
        c41 = Z::fmadd(ai, bb1, c41);
        ai = Z::set1(a[o5]);
        c50 = Z::fmadd(ai, b0, c50);
        c51 = Z::fmadd(ai, bb1, c51);
        a += a_cs;
        b += b_rs;
        b1 += b_rs;
    }
    const V va = Z::set1(alpha), vb = Z::set1(beta);
    const int bm = beta_mode(beta);
    const V acc[6][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
#pragma GCC unroll 6
    for (int i = 0; i < 6; ++i)
#pragma GCC unroll 2
        for (int h = 0; h < 2; ++h) {
            typename Z::T* r = c + i * c_rs + h * W;
            Z::store(r, write_back<Z>(r, acc[i][h], va, vb, bm));
        }
}

// ---- Narrow C, A stored transposed: dW of a layer with few outputs
//
// dW = X^T G of a 10-class output layer is m x 10 with A = X^T, whose columns
// are X's rows. Down a column of C, 16 rows are one contiguous zmm of A, so
// here a vector runs down the columns of C: W rows by N columns in N
// accumulators, one load of A and N broadcasts of B per k step. The microkernel
// would instead fill 10 of its 16 lanes and, every tile being an edge tile,
// go through a stack copy of C. Every element still gets the microkernel's
// arithmetic (fused multiply-adds over the k-block in order from zero, then
// the scalar form of its write-back), so results are those of the blocked
// path, bit for bit.
template <class Z, int N>
void narrow_tn(index_t m, index_t k, typename Z::T alpha, const typename Z::T* a, index_t cs_a,
               const typename Z::T* b, index_t rs_b, typename Z::T beta, typename Z::T* c, index_t rs_c) {
    using T = typename Z::T;
    using V = typename Z::V;
    constexpr index_t W = Z::W;
    const int bm = beta_mode(beta);
    for (index_t i0 = 0; i0 < m; i0 += W) {
        const index_t rows = m - i0 < W ? m - i0 : W;
        const typename Z::Mask mask = Z::first(rows);
        V acc[N];
#pragma GCC unroll 16
        for (int j = 0; j < N; ++j) acc[j] = Z::zero();
        const T* ap = a + i0;
        const T* bp = b;
        for (index_t p = 0; p < k; ++p) {
            const V av = rows == W ? Z::load(ap) : Z::maskz_load(mask, ap);
#pragma GCC unroll 16
            for (int j = 0; j < N; ++j) acc[j] = Z::fmadd(Z::set1(bp[j]), av, acc[j]);
            ap += cs_a;
            bp += rs_b;
        }
        alignas(64) T t[N][W];
#pragma GCC unroll 16
        for (int j = 0; j < N; ++j) Z::store(t[j], acc[j]);
        for (index_t i = 0; i < rows; ++i) {
            T* ci = c + (i0 + i) * rs_c;
            for (int j = 0; j < N; ++j)
                ci[j] = bm == kBeta0   ? alpha * t[j][i]
                        : bm == kBeta1 ? std::fma(alpha, t[j][i], ci[j])
                                       : std::fma(alpha, t[j][i], beta * ci[j]);
        }
    }
}

template <class Z, int... I>
constexpr auto narrow_tn_table(std::integer_sequence<int, I...>) {
    using Fn = void (*)(index_t, index_t, typename Z::T, const typename Z::T*, index_t, const typename Z::T*, index_t,
                        typename Z::T, typename Z::T*, index_t);
    return std::array<Fn, sizeof...(I)>{narrow_tn<Z, I + 1>...};
}

template <class Z>
void narrow_tn_dispatch(index_t m, index_t n, index_t k, typename Z::T alpha, const typename Z::T* a, index_t cs_a,
                        const typename Z::T* b, index_t rs_b, typename Z::T beta, typename Z::T* c, index_t rs_c) {
    static constexpr auto table = narrow_tn_table<Z>(std::make_integer_sequence<int, static_cast<int>(Z::W) - 1>());
    table[static_cast<std::size_t>(n - 1)](m, k, alpha, a, cs_a, b, rs_b, beta, c, rs_c);
}

}  // namespace

void gemm_narrow_tn_f32(index_t m, index_t n, index_t k, float alpha, const float* a, index_t cs_a, const float* b,
                        index_t rs_b, float beta, float* c, index_t rs_c) {
    narrow_tn_dispatch<ZmmF32>(m, n, k, alpha, a, cs_a, b, rs_b, beta, c, rs_c);
}
void gemm_narrow_tn_f64(index_t m, index_t n, index_t k, double alpha, const double* a, index_t cs_a,
                        const double* b, index_t rs_b, double beta, double* c, index_t rs_c) {
    narrow_tn_dispatch<ZmmF64>(m, n, k, alpha, a, cs_a, b, rs_b, beta, c, rs_c);
}

void gemm_row_f32(index_t j0, index_t j1, index_t k, float alpha, const float* a, index_t inc_a, const float* b,
                  index_t rs_b, float beta, float* c, RowEpilogue<float> epi) {
    row_kernel::row_impl<RowZ32, 16>(j0, j1, k, alpha, a, inc_a, b, rs_b, beta, c, epi);
}
void gemm_row_f64(index_t j0, index_t j1, index_t k, double alpha, const double* a, index_t inc_a,
                  const double* b, index_t rs_b, double beta, double* c, RowEpilogue<double> epi) {
    row_kernel::row_impl<RowZ64, 16>(j0, j1, k, alpha, a, inc_a, b, rs_b, beta, c, epi);
}

void gemm_macro_f32(const gemm_detail::MacroArgs<float>& g) {
    Macro<float, kMrF, kNrF, ukr<ZmmF32>, ukr2<ZmmF32>, PairRows<ZmmF32>>::run(g);
}
void gemm_macro_f64(const gemm_detail::MacroArgs<double>& g) {
    Macro<double, kMrD, kNrD, ukr<ZmmF64>, ukr2<ZmmF64>, PairRows<ZmmF64>>::run(g);
}

}  // namespace avx512
}  // namespace pb
