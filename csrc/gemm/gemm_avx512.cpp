// Kernels of the avx512 path that differ from the AVX2 ones: the register-tile
// microkernels inside the shared macro-kernel (macro_kernel_x86.h) and the
// batch-1 row (row_kernel_x86.h). Packing, the tiny and narrow-row kernels and
// the block sizes are the AVX2 ones (gemm.cpp's table).
//
// Compiled with -mavx2 -mfma -mavx512f -mavx512vl (this file only).
//
// The microkernels keep the AVX2 tiles (6 x 16 float, 6 x 8 double) and the
// AVX2 arithmetic per element, but hold a row of the tile in one zmm
// register: 6 accumulators, one B load and 6 broadcasts per k step, half the
// instructions for the same multiply-adds. Zen 4 executes a 512-bit FMA as
// two 256-bit halves, so alone on a core both reach the same rate (C's GEMMs:
// 99-107 GFLOP/s either way). When the core is shared they differ: in 5 of
// 13 benchmark runs the 256-bit libraries (the AVX2 kernels, PyTorch's MKL)
// lost 10-20% on C against the 512-bit ones (OpenBLAS, XLA). C's training
// step, switching the path in one process every window
// (benchmarks/bench_isa_paths.py): 1.02-1.16x on this path at two threads
// (four runs), 1.02-1.07x on one core.
// CPUs with two 512-bit FMA units can gain more.
//
// The row kernel stays on 256-bit vectors but keeps 16 accumulators in
// AVX-512VL's 32 registers, so a strip covers 128 floats and a 784 x 128
// layer is one pass over B (Zen 4, one core, the kernel alone: 4.4 -> 3.5 us;
// 512-bit vectors measured 3.6).
// The same ODR rule as gemm_avx2.cpp: nothing shared with other ISAs' files.
#include <immintrin.h>

#include "gemm/gemm_kernels.h"
#include "gemm/macro_kernel_x86.h"
#include "gemm/row_kernel_x86.h"

namespace pb {
namespace avx512 {
namespace {

using macro_kernel::beta_mode;
using macro_kernel::kBeta0;
using macro_kernel::kBeta1;
using macro_kernel::Macro;

constexpr int kMrF = gemm_detail::kBlocksAvx2F32.mr;
constexpr int kNrF = gemm_detail::kBlocksAvx2F32.nr;
constexpr int kMrD = gemm_detail::kBlocksAvx2F64.mr;
constexpr int kNrD = gemm_detail::kBlocksAvx2F64.nr;
static_assert(kMrF == 6 && kNrF == 16, "the float microkernel is written for 6x16: a row is one zmm");
static_assert(kMrD == 6 && kNrD == 8, "the double microkernel is written for 6x8: a row is one zmm");

// The write-back of macro_kernel::wb_f32/wb_f64, a row at a time.
__attribute__((always_inline)) inline __m512 wb_f32(float* cp, __m512 acc, __m512 va, __m512 vb, int bm) {
    if (bm == kBeta0) return _mm512_mul_ps(va, acc);
    if (bm == kBeta1) return _mm512_fmadd_ps(va, acc, _mm512_loadu_ps(cp));
    return _mm512_fmadd_ps(va, acc, _mm512_mul_ps(vb, _mm512_loadu_ps(cp)));
}
__attribute__((always_inline)) inline __m512d wb_f64(double* cp, __m512d acc, __m512d va, __m512d vb, int bm) {
    if (bm == kBeta0) return _mm512_mul_pd(va, acc);
    if (bm == kBeta1) return _mm512_fmadd_pd(va, acc, _mm512_loadu_pd(cp));
    return _mm512_fmadd_pd(va, acc, _mm512_mul_pd(vb, _mm512_loadu_pd(cp)));
}

// C[0:6, 0:16] = alpha * sum_p A(:, p) B(p, :) + beta * C: the contract of
// gemm_avx2.cpp's ukr_f32, a row of C per register.
void ukr_f32(index_t k, const float* a, index_t o1, index_t o2, index_t o3, index_t o4, index_t o5,
             index_t a_cs, const float* b, index_t b_rs, float* c, index_t c_rs, float alpha, float beta) {
    __m512 c0 = _mm512_setzero_ps(), c1 = _mm512_setzero_ps(), c2 = _mm512_setzero_ps();
    __m512 c3 = _mm512_setzero_ps(), c4 = _mm512_setzero_ps(), c5 = _mm512_setzero_ps();
    for (index_t i = 0; i < kMrF; ++i) _mm_prefetch(reinterpret_cast<const char*>(c + i * c_rs), _MM_HINT_T0);
#pragma GCC unroll 4
    for (index_t p = 0; p < k; ++p) {
        const __m512 b0 = _mm512_loadu_ps(b);
        c0 = _mm512_fmadd_ps(_mm512_set1_ps(a[0]), b0, c0);
        c1 = _mm512_fmadd_ps(_mm512_set1_ps(a[o1]), b0, c1);
        c2 = _mm512_fmadd_ps(_mm512_set1_ps(a[o2]), b0, c2);
        c3 = _mm512_fmadd_ps(_mm512_set1_ps(a[o3]), b0, c3);
        c4 = _mm512_fmadd_ps(_mm512_set1_ps(a[o4]), b0, c4);
        c5 = _mm512_fmadd_ps(_mm512_set1_ps(a[o5]), b0, c5);
        a += a_cs;
        b += b_rs;
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    const int bm = beta_mode(beta);
    const __m512 acc[kMrF] = {c0, c1, c2, c3, c4, c5};
#pragma GCC unroll 6
    for (int i = 0; i < kMrF; ++i) _mm512_storeu_ps(c + i * c_rs, wb_f32(c + i * c_rs, acc[i], va, vb, bm));
}

void ukr_f64(index_t k, const double* a, index_t o1, index_t o2, index_t o3, index_t o4, index_t o5,
             index_t a_cs, const double* b, index_t b_rs, double* c, index_t c_rs, double alpha, double beta) {
    __m512d c0 = _mm512_setzero_pd(), c1 = _mm512_setzero_pd(), c2 = _mm512_setzero_pd();
    __m512d c3 = _mm512_setzero_pd(), c4 = _mm512_setzero_pd(), c5 = _mm512_setzero_pd();
    for (index_t i = 0; i < kMrD; ++i) _mm_prefetch(reinterpret_cast<const char*>(c + i * c_rs), _MM_HINT_T0);
#pragma GCC unroll 4
    for (index_t p = 0; p < k; ++p) {
        const __m512d b0 = _mm512_loadu_pd(b);
        c0 = _mm512_fmadd_pd(_mm512_set1_pd(a[0]), b0, c0);
        c1 = _mm512_fmadd_pd(_mm512_set1_pd(a[o1]), b0, c1);
        c2 = _mm512_fmadd_pd(_mm512_set1_pd(a[o2]), b0, c2);
        c3 = _mm512_fmadd_pd(_mm512_set1_pd(a[o3]), b0, c3);
        c4 = _mm512_fmadd_pd(_mm512_set1_pd(a[o4]), b0, c4);
        c5 = _mm512_fmadd_pd(_mm512_set1_pd(a[o5]), b0, c5);
        a += a_cs;
        b += b_rs;
    }
    const __m512d va = _mm512_set1_pd(alpha), vb = _mm512_set1_pd(beta);
    const int bm = beta_mode(beta);
    const __m512d acc[kMrD] = {c0, c1, c2, c3, c4, c5};
#pragma GCC unroll 6
    for (int i = 0; i < kMrD; ++i) _mm512_storeu_pd(c + i * c_rs, wb_f64(c + i * c_rs, acc[i], va, vb, bm));
}

}  // namespace

void gemm_row_f32(index_t j0, index_t j1, index_t k, float alpha, const float* a, index_t inc_a, const float* b,
                  index_t rs_b, float beta, float* c) {
    row_kernel::row_impl<row_kernel::RowF32, 16>(j0, j1, k, alpha, a, inc_a, b, rs_b, beta, c);
}
void gemm_row_f64(index_t j0, index_t j1, index_t k, double alpha, const double* a, index_t inc_a,
                  const double* b, index_t rs_b, double beta, double* c) {
    row_kernel::row_impl<row_kernel::RowF64, 16>(j0, j1, k, alpha, a, inc_a, b, rs_b, beta, c);
}

void gemm_macro_f32(const gemm_detail::MacroArgs<float>& g) { Macro<float, kMrF, kNrF, ukr_f32>::run(g); }
void gemm_macro_f64(const gemm_detail::MacroArgs<double>& g) { Macro<double, kMrD, kNrD, ukr_f64>::run(g); }

}  // namespace avx512
}  // namespace pb
