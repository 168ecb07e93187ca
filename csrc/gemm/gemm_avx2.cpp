// AVX2+FMA GEMM kernels: register-tile microkernels (float 6x16, double 6x8)
// inside the shared macro-kernel (macro_kernel_x86.h: loops 2 and 1 of the
// BLIS nest, edge tiles), the packing routines, the tiny-product kernel and
// the batch-1 row kernel (row_kernel_x86.h, with strips of 8 vectors).
//
// Compiled with -mavx2 -mfma (this file only). ODR rule: no STL code, no
// inline or template code shared with files built for another ISA; everything
// here is in pb::avx2 with internal helpers in anonymous namespaces.
//
// The microkernel reads A by broadcasting single elements, so A may have any
// strides (packed or straight from the caller's matrix), and B by vector
// loads along j, so B needs unit stride along j (packed, or a row-major
// caller matrix). The 6x16 float tile keeps 12 ymm accumulators, 2 B vectors
// and 1 broadcast in the 16 ymm registers: 12 FMAs per 8 loads per k step.
#include <immintrin.h>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "gemm/gemm_kernels.h"
#include "gemm/macro_kernel_x86.h"
#include "gemm/row_kernel_x86.h"

namespace pb {
namespace avx2 {
namespace {

using gemm_detail::MacroArgs;
using macro_kernel::beta_mode;
using macro_kernel::imin;
using macro_kernel::kBeta0;
using macro_kernel::kBeta1;
using macro_kernel::kMrD;
using macro_kernel::kMrF;
using macro_kernel::kNrD;
using macro_kernel::kNrF;
using macro_kernel::Macro;
using macro_kernel::wb_f32;
using macro_kernel::wb_f64;

// ----------------------------------------------------------------- float 6x16

// C[0:6, 0:16] = alpha * sum_p A(:, p) B(p, :) + beta * C, C with unit
// column stride. A(i, p) = a[o_i + p*a_cs] with o_0 = 0 (rows past the valid
// ones point at a valid row: their results are discarded by the caller).
void ukr_f32(index_t k, const float* a, index_t o1, index_t o2, index_t o3, index_t o4, index_t o5,
             index_t a_cs, const float* b, index_t b_rs, float* c, index_t c_rs, float alpha, float beta) {
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    for (index_t i = 0; i < kMrF; ++i) _mm_prefetch(reinterpret_cast<const char*>(c + i * c_rs), _MM_HINT_T0);
#pragma GCC unroll 4
    for (index_t p = 0; p < k; ++p) {
        const __m256 b0 = _mm256_loadu_ps(b);
        const __m256 b1 = _mm256_loadu_ps(b + 8);
        __m256 ai = _mm256_broadcast_ss(a);
        c00 = _mm256_fmadd_ps(ai, b0, c00);
        c01 = _mm256_fmadd_ps(ai, b1, c01);
        ai = _mm256_broadcast_ss(a + o1);
        c10 = _mm256_fmadd_ps(ai, b0, c10);
        c11 = _mm256_fmadd_ps(ai, b1, c11);
        ai = _mm256_broadcast_ss(a + o2);
        c20 = _mm256_fmadd_ps(ai, b0, c20);
        c21 = _mm256_fmadd_ps(ai, b1, c21);
        ai = _mm256_broadcast_ss(a + o3);
        c30 = _mm256_fmadd_ps(ai, b0, c30);
        c31 = _mm256_fmadd_ps(ai, b1, c31);
        ai = _mm256_broadcast_ss(a + o4);
        c40 = _mm256_fmadd_ps(ai, b0, c40);
        c41 = _mm256_fmadd_ps(ai, b1, c41);
        ai = _mm256_broadcast_ss(a + o5);
        c50 = _mm256_fmadd_ps(ai, b0, c50);
        c51 = _mm256_fmadd_ps(ai, b1, c51);
        a += a_cs;
        b += b_rs;
    }
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    const int bm = beta_mode(beta);
    float* r = c;
    __m256 t0 = wb_f32(r, c00, va, vb, bm), t1 = wb_f32(r + 8, c01, va, vb, bm);
    _mm256_storeu_ps(r, t0); _mm256_storeu_ps(r + 8, t1); r += c_rs;
    t0 = wb_f32(r, c10, va, vb, bm); t1 = wb_f32(r + 8, c11, va, vb, bm);
    _mm256_storeu_ps(r, t0); _mm256_storeu_ps(r + 8, t1); r += c_rs;
    t0 = wb_f32(r, c20, va, vb, bm); t1 = wb_f32(r + 8, c21, va, vb, bm);
    _mm256_storeu_ps(r, t0); _mm256_storeu_ps(r + 8, t1); r += c_rs;
    t0 = wb_f32(r, c30, va, vb, bm); t1 = wb_f32(r + 8, c31, va, vb, bm);
    _mm256_storeu_ps(r, t0); _mm256_storeu_ps(r + 8, t1); r += c_rs;
    t0 = wb_f32(r, c40, va, vb, bm); t1 = wb_f32(r + 8, c41, va, vb, bm);
    _mm256_storeu_ps(r, t0); _mm256_storeu_ps(r + 8, t1); r += c_rs;
    t0 = wb_f32(r, c50, va, vb, bm); t1 = wb_f32(r + 8, c51, va, vb, bm);
    _mm256_storeu_ps(r, t0); _mm256_storeu_ps(r + 8, t1);
}

// ------------------------------------------------------------------ double 6x8

void ukr_f64(index_t k, const double* a, index_t o1, index_t o2, index_t o3, index_t o4, index_t o5,
             index_t a_cs, const double* b, index_t b_rs, double* c, index_t c_rs, double alpha,
             double beta) {
    __m256d c00 = _mm256_setzero_pd(), c01 = _mm256_setzero_pd();
    __m256d c10 = _mm256_setzero_pd(), c11 = _mm256_setzero_pd();
    __m256d c20 = _mm256_setzero_pd(), c21 = _mm256_setzero_pd();
    __m256d c30 = _mm256_setzero_pd(), c31 = _mm256_setzero_pd();
    __m256d c40 = _mm256_setzero_pd(), c41 = _mm256_setzero_pd();
    __m256d c50 = _mm256_setzero_pd(), c51 = _mm256_setzero_pd();
    for (index_t i = 0; i < kMrD; ++i) _mm_prefetch(reinterpret_cast<const char*>(c + i * c_rs), _MM_HINT_T0);
#pragma GCC unroll 4
    for (index_t p = 0; p < k; ++p) {
        const __m256d b0 = _mm256_loadu_pd(b);
        const __m256d b1 = _mm256_loadu_pd(b + 4);
        __m256d ai = _mm256_broadcast_sd(a);
        c00 = _mm256_fmadd_pd(ai, b0, c00);
        c01 = _mm256_fmadd_pd(ai, b1, c01);
        ai = _mm256_broadcast_sd(a + o1);
        c10 = _mm256_fmadd_pd(ai, b0, c10);
        c11 = _mm256_fmadd_pd(ai, b1, c11);
        ai = _mm256_broadcast_sd(a + o2);
        c20 = _mm256_fmadd_pd(ai, b0, c20);
        c21 = _mm256_fmadd_pd(ai, b1, c21);
        ai = _mm256_broadcast_sd(a + o3);
        c30 = _mm256_fmadd_pd(ai, b0, c30);
        c31 = _mm256_fmadd_pd(ai, b1, c31);
        ai = _mm256_broadcast_sd(a + o4);
        c40 = _mm256_fmadd_pd(ai, b0, c40);
        c41 = _mm256_fmadd_pd(ai, b1, c41);
        ai = _mm256_broadcast_sd(a + o5);
        c50 = _mm256_fmadd_pd(ai, b0, c50);
        c51 = _mm256_fmadd_pd(ai, b1, c51);
        a += a_cs;
        b += b_rs;
    }
    const __m256d va = _mm256_set1_pd(alpha), vb = _mm256_set1_pd(beta);
    const int bm = beta_mode(beta);
    double* r = c;
    __m256d t0 = wb_f64(r, c00, va, vb, bm), t1 = wb_f64(r + 4, c01, va, vb, bm);
    _mm256_storeu_pd(r, t0); _mm256_storeu_pd(r + 4, t1); r += c_rs;
    t0 = wb_f64(r, c10, va, vb, bm); t1 = wb_f64(r + 4, c11, va, vb, bm);
    _mm256_storeu_pd(r, t0); _mm256_storeu_pd(r + 4, t1); r += c_rs;
    t0 = wb_f64(r, c20, va, vb, bm); t1 = wb_f64(r + 4, c21, va, vb, bm);
    _mm256_storeu_pd(r, t0); _mm256_storeu_pd(r + 4, t1); r += c_rs;
    t0 = wb_f64(r, c30, va, vb, bm); t1 = wb_f64(r + 4, c31, va, vb, bm);
    _mm256_storeu_pd(r, t0); _mm256_storeu_pd(r + 4, t1); r += c_rs;
    t0 = wb_f64(r, c40, va, vb, bm); t1 = wb_f64(r + 4, c41, va, vb, bm);
    _mm256_storeu_pd(r, t0); _mm256_storeu_pd(r + 4, t1); r += c_rs;
    t0 = wb_f64(r, c50, va, vb, bm); t1 = wb_f64(r + 4, c51, va, vb, bm);
    _mm256_storeu_pd(r, t0); _mm256_storeu_pd(r + 4, t1);
}

// ------------------------------------------------------------------ packing

// 8x8 float transpose of rows r[0..8) (each 8 floats) into out rows.
inline void transpose8_ps(__m256& r0, __m256& r1, __m256& r2, __m256& r3, __m256& r4, __m256& r5, __m256& r6,
                          __m256& r7) {
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r0 = _mm256_permute2f128_ps(s0, s4, 0x20);
    r1 = _mm256_permute2f128_ps(s1, s5, 0x20);
    r2 = _mm256_permute2f128_ps(s2, s6, 0x20);
    r3 = _mm256_permute2f128_ps(s3, s7, 0x20);
    r4 = _mm256_permute2f128_ps(s0, s4, 0x31);
    r5 = _mm256_permute2f128_ps(s1, s5, 0x31);
    r6 = _mm256_permute2f128_ps(s2, s6, 0x31);
    r7 = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// 4x4 double transpose.
inline void transpose4_pd(__m256d& r0, __m256d& r1, __m256d& r2, __m256d& r3) {
    __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
    __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
    r0 = _mm256_permute2f128_pd(t0, t2, 0x20);
    r1 = _mm256_permute2f128_pd(t1, t3, 0x20);
    r2 = _mm256_permute2f128_pd(t0, t2, 0x31);
    r3 = _mm256_permute2f128_pd(t1, t3, 0x31);
}

// Copies `panels` micro-panels of W elements that lie contiguous in each row
// of the source (panel s, row p at src[p*ld + s*W]) into dst[s*W*k + p*W]: a
// packed B whose rows are contiguous (W = nr), or a packed A stored
// transposed (X^T in dW = X^T G; W = mr). It copies kRowGroup rows at a time
// across all the panels, so each row of the source is read whole, a group of
// rows at a time, rather than one panel's piece of every row before the next
// panel's: in a 1024-wide layer every row is a page of its own, and a piece
// per page left the prefetchers nothing to follow. Zen 5, one thread, a
// 512 x 1024 float block of a 1024-wide B: 50 -> 37 us from L3, 165 -> 110 us
// from memory (groups of 4, 16 or 32 rows, and software prefetch in the
// panel loop, were no better). Two threads, workload C's GEMMs (m x n x k),
// medians of 12 alternating runs against the panel-at-a-time copies:
// 512 x 1024 x 784 1.080, 512 x 1024 x 1024 1.081, the dW 1024 x 1024 x 512
// 1.071 and 784 x 1024 x 512 1.061 (its dX, whose B is transposed, 0.998);
// C's compiled step 1.019 [1.003-1.053]. E's 1024 x 4096 x 4096 (6 MiB B
// blocks, larger than L2), switching order in one process: 1.001 on two
// threads, 1.010 on one.
template <typename T, int W>
void copy_panels_by_row_groups(index_t k, index_t panels, const T* src, index_t ld, T* dst) {
    constexpr index_t kRowGroup = 8;
    for (index_t p0 = 0; p0 < k; p0 += kRowGroup) {
        const index_t rows = imin(kRowGroup, k - p0);
        for (index_t s = 0; s < panels; ++s) {
            const T* from = src + p0 * ld + s * W;
            T* to = dst + s * W * k + p0 * W;
            for (index_t r = 0; r < rows; ++r) std::memcpy(to + r * W, from + r * ld, W * sizeof(T));
        }
    }
}

template <typename T, int MR>
void pack_a_impl(index_t m, index_t k, const T* a, index_t rs, index_t cs, T* dst) {
    if (rs == 1) {  // A stored transposed: its whole panels by row groups, the edge below
        const index_t panels = m / MR;
        copy_panels_by_row_groups<T, MR>(k, panels, a, cs, dst);
        a += panels * MR;
        dst += panels * MR * k;
        m -= panels * MR;
    }
    for (index_t ir = 0; ir < m; ir += MR, dst += MR * k) {
        const index_t mr = imin(MR, m - ir);
        const T* src = a + ir * rs;
        for (index_t p = 0; p < k; ++p) {
            for (index_t i = 0; i < mr; ++i) dst[p * MR + i] = src[i * rs + p * cs];
            for (index_t i = mr; i < MR; ++i) dst[p * MR + i] = T(0);
        }
    }
}

// B panel of NR columns; the transposed case (rs == 1: columns of B are
// contiguous, as in G W^T) goes through register transposes.
void pack_b_f32_impl(index_t k, index_t n, const float* b, index_t rs, index_t cs, float* dst) {
    if (cs == 1) {  // rows contiguous: whole panels by row groups, the edge below
        const index_t panels = n / kNrF;
        copy_panels_by_row_groups<float, kNrF>(k, panels, b, rs, dst);
        b += panels * kNrF;
        dst += panels * kNrF * k;
        n -= panels * kNrF;
    }
    for (index_t jr = 0; jr < n; jr += kNrF, dst += kNrF * k) {
        const index_t nr = imin(kNrF, n - jr);
        const float* src = b + jr * cs;
        if (nr == kNrF && rs == 1) {
            index_t p = 0;
            for (; p + 8 <= k; p += 8) {
                for (int h = 0; h < 2; ++h) {  // columns jr + 8h .. jr + 8h + 7
                    const float* s = src + 8 * h * cs + p;
                    __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + cs);
                    __m256 r2 = _mm256_loadu_ps(s + 2 * cs), r3 = _mm256_loadu_ps(s + 3 * cs);
                    __m256 r4 = _mm256_loadu_ps(s + 4 * cs), r5 = _mm256_loadu_ps(s + 5 * cs);
                    __m256 r6 = _mm256_loadu_ps(s + 6 * cs), r7 = _mm256_loadu_ps(s + 7 * cs);
                    transpose8_ps(r0, r1, r2, r3, r4, r5, r6, r7);
                    float* d = dst + p * kNrF + 8 * h;
                    _mm256_storeu_ps(d, r0);
                    _mm256_storeu_ps(d + kNrF, r1);
                    _mm256_storeu_ps(d + 2 * kNrF, r2);
                    _mm256_storeu_ps(d + 3 * kNrF, r3);
                    _mm256_storeu_ps(d + 4 * kNrF, r4);
                    _mm256_storeu_ps(d + 5 * kNrF, r5);
                    _mm256_storeu_ps(d + 6 * kNrF, r6);
                    _mm256_storeu_ps(d + 7 * kNrF, r7);
                }
            }
            for (; p < k; ++p)
                for (int j = 0; j < kNrF; ++j) dst[p * kNrF + j] = src[j * cs + p];
        } else {
            for (index_t p = 0; p < k; ++p) {
                for (index_t j = 0; j < nr; ++j) dst[p * kNrF + j] = src[p * rs + j * cs];
                for (index_t j = nr; j < kNrF; ++j) dst[p * kNrF + j] = 0.0f;
            }
        }
    }
}

void pack_b_f64_impl(index_t k, index_t n, const double* b, index_t rs, index_t cs, double* dst) {
    if (cs == 1) {
        const index_t panels = n / kNrD;
        copy_panels_by_row_groups<double, kNrD>(k, panels, b, rs, dst);
        b += panels * kNrD;
        dst += panels * kNrD * k;
        n -= panels * kNrD;
    }
    for (index_t jr = 0; jr < n; jr += kNrD, dst += kNrD * k) {
        const index_t nr = imin(kNrD, n - jr);
        const double* src = b + jr * cs;
        if (nr == kNrD && rs == 1) {
            index_t p = 0;
            for (; p + 4 <= k; p += 4) {
                for (int h = 0; h < 2; ++h) {
                    const double* s = src + 4 * h * cs + p;
                    __m256d r0 = _mm256_loadu_pd(s), r1 = _mm256_loadu_pd(s + cs);
                    __m256d r2 = _mm256_loadu_pd(s + 2 * cs), r3 = _mm256_loadu_pd(s + 3 * cs);
                    transpose4_pd(r0, r1, r2, r3);
                    double* d = dst + p * kNrD + 4 * h;
                    _mm256_storeu_pd(d, r0);
                    _mm256_storeu_pd(d + kNrD, r1);
                    _mm256_storeu_pd(d + 2 * kNrD, r2);
                    _mm256_storeu_pd(d + 3 * kNrD, r3);
                }
            }
            for (; p < k; ++p)
                for (int j = 0; j < kNrD; ++j) dst[p * kNrD + j] = src[j * cs + p];
        } else {
            for (index_t p = 0; p < k; ++p) {
                for (index_t j = 0; j < nr; ++j) dst[p * kNrD + j] = src[p * rs + j * cs];
                for (index_t j = nr; j < kNrD; ++j) dst[p * kNrD + j] = 0.0;
            }
        }
    }
}

// The microkernel's arithmetic, one element at a time: fused multiply-adds
// over k from zero, then wb_f32/wb_f64's write-back.
inline float fma1(float x, float y, float z) { return __builtin_fmaf(x, y, z); }
inline double fma1(double x, double y, double z) { return __builtin_fma(x, y, z); }

template <typename T>
void tiny_impl(index_t m, index_t n, index_t k, T alpha, const T* a, index_t rs_a, index_t cs_a, const T* b,
               index_t rs_b, index_t cs_b, T beta, T* c, index_t rs_c, index_t cs_c) {
    const int bm = beta_mode(beta);
    for (index_t i = 0; i < m; ++i)
        for (index_t j = 0; j < n; ++j) {
            T acc = 0;
            for (index_t p = 0; p < k; ++p) acc = fma1(a[i * rs_a + p * cs_a], b[p * rs_b + j * cs_b], acc);
            T& cij = c[i * rs_c + j * cs_c];
            cij = bm == kBeta0 ? alpha * acc : fma1(alpha, acc, bm == kBeta1 ? cij : beta * cij);
        }
}

}  // namespace

PB_GEMM_TINY_DECL(float, gemm_tiny_f32) {
    tiny_impl(m, n, k, alpha, a, rs_a, cs_a, b, rs_b, cs_b, beta, c, rs_c, cs_c);
}
PB_GEMM_TINY_DECL(double, gemm_tiny_f64) {
    tiny_impl(m, n, k, alpha, a, rs_a, cs_a, b, rs_b, cs_b, beta, c, rs_c, cs_c);
}

void gemm_row_f32(index_t j0, index_t j1, index_t k, float alpha, const float* a, index_t inc_a, const float* b,
                  index_t rs_b, float beta, float* c, RowEpilogue<float> epi) {
    row_kernel::row_impl<row_kernel::RowF32, 8>(j0, j1, k, alpha, a, inc_a, b, rs_b, beta, c, epi);
}
void gemm_row_f64(index_t j0, index_t j1, index_t k, double alpha, const double* a, index_t inc_a,
                  const double* b, index_t rs_b, double beta, double* c, RowEpilogue<double> epi) {
    row_kernel::row_impl<row_kernel::RowF64, 8>(j0, j1, k, alpha, a, inc_a, b, rs_b, beta, c, epi);
}

void gemm_row_narrow_f32(index_t n, index_t k, float alpha, const float* a, index_t inc_a, const float* b,
                         index_t rs_b, float beta, float* c, RowEpilogue<float> epi) {
    row_kernel::narrow_impl<row_kernel::RowF32>(n, k, alpha, a, inc_a, b, rs_b, beta, c, epi);
}
void gemm_row_narrow_f64(index_t n, index_t k, double alpha, const double* a, index_t inc_a, const double* b,
                         index_t rs_b, double beta, double* c, RowEpilogue<double> epi) {
    row_kernel::narrow_impl<row_kernel::RowF64>(n, k, alpha, a, inc_a, b, rs_b, beta, c, epi);
}

void gemm_macro_f32(const gemm_detail::MacroArgs<float>& g) { Macro<float, kMrF, kNrF, ukr_f32>::run(g); }
void gemm_macro_f64(const gemm_detail::MacroArgs<double>& g) { Macro<double, kMrD, kNrD, ukr_f64>::run(g); }

void gemm_pack_a_f32(index_t m, index_t k, const float* a, index_t rs, index_t cs, float* dst) {
    pack_a_impl<float, kMrF>(m, k, a, rs, cs, dst);
}
void gemm_pack_a_f64(index_t m, index_t k, const double* a, index_t rs, index_t cs, double* dst) {
    pack_a_impl<double, kMrD>(m, k, a, rs, cs, dst);
}
void gemm_pack_b_f32(index_t k, index_t n, const float* b, index_t rs, index_t cs, float* dst) {
    pack_b_f32_impl(k, n, b, rs, cs, dst);
}
void gemm_pack_b_f64(index_t k, index_t n, const double* b, index_t rs, index_t cs, double* dst) {
    pack_b_f64_impl(k, n, b, rs, cs, dst);
}

}  // namespace avx2
}  // namespace pb
