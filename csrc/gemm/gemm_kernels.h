// Internal interface between the GEMM driver (gemm.cpp, compiled for any
// x86-64) and the per-ISA kernels (gemm_generic.cpp, gemm_avx2.cpp,
// gemm_avx512.cpp; the x86 files share macro_kernel_x86.h and
// row_kernel_x86.h).
//
// The driver owns loops 5, 4 and 3 of the BLIS loop nest (column blocks of B,
// k-blocks, row blocks of A) and the packing decisions; each ISA file owns
// loops 2 and 1 (the macro-kernel: micro-panels of B, micro-panels of A)
// around its register-tile microkernel, the edge tiles, and the packing
// routines. Nothing here is inline code, so the AVX2 file shares no COMDAT
// with generic files.
#pragma once
#include "common/types.h"

namespace pb {
namespace gemm_detail {

// ---------------------------------------------------------------------------
// THE block-size table (one row per ISA and dtype).
//
// Sized for AMD Zen 4 (per core: L1d 32 KiB, L2 1 MiB; L3 32 MiB shared), and
// sane for any recent x86-64 (32-48 KiB L1d, 512 KiB-2 MiB L2):
//   mr x nr  register tile of the microkernel (accumulators fill the registers)
//   kc       depth of a k-block; a kc x nr micro-panel of B is read from L1
//            (generic: half of it). The x86 rows take 512, a micro-panel as
//            large as L1, which L2 keeps fed: every k-block beyond the first
//            costs a pass over C and, in a row split, a shared pack of B and
//            two handoffs (Zen 4, two threads, against 256: the GEMMs of
//            workload C 2-4% faster alone, E's 2%; C's native step 2-3% in
//            each of three runs of 9 alternations; B's unchanged)
//   mc       an mc x kc block of A stays in L2 (about a third of it)
//   nc       a kc x nc block of B stays in L3 (a few MiB)
// kc is the *maximum*: the driver splits k into equal k-blocks of at most kc
// (a function of k and the ISA only, so results never depend on threads).
// ---------------------------------------------------------------------------
struct BlockSizes {
    int mr, nr;
    index_t mc, kc, nc;
};
//                                              mr  nr   mc   kc    nc
constexpr BlockSizes kBlocksAvx2F32{            6, 16, 144, 512, 3072};
constexpr BlockSizes kBlocksAvx2F64{            6,  8,  96, 512, 3072};
constexpr BlockSizes kBlocksGenericF32{         6,  8, 144, 256, 2048};
constexpr BlockSizes kBlocksGenericF64{         6,  4, 144, 256, 2048};

// One call of the macro-kernel: C[0:m, 0:n] = alpha * A B + beta * C with
// A m x k and B k x n, where
//   A(i, p) of row panel r = a[r*a_ps + i*a_rs + p*a_cs]    (any strides: the
//           microkernel broadcasts single elements; a packed panel has
//           a_rs = 1, a_cs = mr, a_ps = mr*k). Rows past m in the last panel
//           are never read (the microkernel clamps them).
//   B(p, j) of column panel s = b[s*b_ps + p*b_rs + j]      (unit stride in j:
//           a packed panel has b_rs = nr, b_ps = nr*k; an unpacked row-major
//           B has b_rs = its row stride, b_ps = nr).
//   the last, partial column panel (n % nr != 0) is b_edge with row stride
//           nr, zero padded to nr columns (the driver packs it).
//   C(i, j) = c[i*c_rs + j*c_cs]. Tiles that are partial or have c_cs != 1 are
//           computed into an aligned stack tile and copied out.
template <typename T>
struct MacroArgs {
    index_t m, n, k;
    const T* a;
    index_t a_rs, a_cs, a_ps;
    const T* b;
    index_t b_rs, b_ps;
    const T* b_edge;
    T* c;
    index_t c_rs, c_cs;
    T alpha, beta;
};

// Packs rows [0, m) x cols [0, k) of A (element (i,p) at a[i*rs + p*cs]) into
// micro-panels of mr rows: dst[r*mr*k + p*mr + i]; the last panel is zero padded.
// Packs rows [0, k) x cols [0, n) of B (element (p,j) at b[p*rs + j*cs]) into
// micro-panels of nr columns: dst[s*nr*k + p*nr + j]; the last panel is zero padded.
struct KernelsF32 {
    BlockSizes bs;
    void (*macro)(const MacroArgs<float>&);
    void (*pack_a)(index_t m, index_t k, const float* a, index_t rs, index_t cs, float* dst);
    void (*pack_b)(index_t k, index_t n, const float* b, index_t rs, index_t cs, float* dst);
};
struct KernelsF64 {
    BlockSizes bs;
    void (*macro)(const MacroArgs<double>&);
    void (*pack_a)(index_t m, index_t k, const double* a, index_t rs, index_t cs, double* dst);
    void (*pack_b)(index_t k, index_t n, const double* b, index_t rs, index_t cs, double* dst);
};

}  // namespace gemm_detail

// Rows of C at most this wide take the ISA's narrow row kernel when it has one
// (gemm_row_narrow_*: row_kernel_x86.h).
constexpr index_t kNarrowRowCols = 32;

// What a row kernel's write-back does after alpha sum + beta c: add the bias
// (column j's at bias[j]; null: none), then apply ReLU if relu. These are the
// GEMM epilogues of a batch-1 dense forward, fused into the one pass over the
// row; each ISA uses its own activation code's arithmetic, so the bits are
// those of the separate epilogue (activations/).
template <typename T>
struct RowEpilogue {
    const T* bias = nullptr;
    bool relu = false;
};

// One row of C (m == 1, the batch-1 forward): c[j] = alpha * sum_p a[p*inc_a] b[p*rs_b + j]
// (+ beta c[j]; beta == 0 does not read c), then `epi`, for j in [j0, j1), B
// with unit column stride, summed over p in order. Streams B once instead of
// filling 1 of the microkernel's mr rows.
// Tiny products (m n k of a few hundred): C = alpha A B + beta C with any
// strides, straight loops, with exactly the arithmetic of this ISA's
// microkernel (accumulate over k in order from zero; the same write-back), so
// a row of C does not depend on which path computed it. k must fit one k-block.
#define PB_GEMM_TINY_DECL(T, name)                                                                            \
    void name(index_t m, index_t n, index_t k, T alpha, const T* a, index_t rs_a, index_t cs_a, const T* b, \
              index_t rs_b, index_t cs_b, T beta, T* c, index_t rs_c, index_t cs_c)

namespace generic {
PB_GEMM_TINY_DECL(float, gemm_tiny_f32);
PB_GEMM_TINY_DECL(double, gemm_tiny_f64);
void gemm_row_f32(index_t j0, index_t j1, index_t k, float alpha, const float* a, index_t inc_a, const float* b,
                  index_t rs_b, float beta, float* c, RowEpilogue<float> epi);
void gemm_row_f64(index_t j0, index_t j1, index_t k, double alpha, const double* a, index_t inc_a, const double* b,
                  index_t rs_b, double beta, double* c, RowEpilogue<double> epi);
void gemm_macro_f32(const gemm_detail::MacroArgs<float>& g);
void gemm_macro_f64(const gemm_detail::MacroArgs<double>& g);
void gemm_pack_a_f32(index_t m, index_t k, const float* a, index_t rs, index_t cs, float* dst);
void gemm_pack_a_f64(index_t m, index_t k, const double* a, index_t rs, index_t cs, double* dst);
void gemm_pack_b_f32(index_t k, index_t n, const float* b, index_t rs, index_t cs, float* dst);
void gemm_pack_b_f64(index_t k, index_t n, const double* b, index_t rs, index_t cs, double* dst);
}  // namespace generic

namespace avx2 {
PB_GEMM_TINY_DECL(float, gemm_tiny_f32);
PB_GEMM_TINY_DECL(double, gemm_tiny_f64);
void gemm_row_f32(index_t j0, index_t j1, index_t k, float alpha, const float* a, index_t inc_a, const float* b,
                  index_t rs_b, float beta, float* c, RowEpilogue<float> epi);
void gemm_row_f64(index_t j0, index_t j1, index_t k, double alpha, const double* a, index_t inc_a, const double* b,
                  index_t rs_b, double beta, double* c, RowEpilogue<double> epi);
// A whole row of at most kNarrowRowCols columns (row_kernel_x86.h): its sum
// over k dealt to independent chains, added pairwise at the end; the avx512
// path uses these too.
void gemm_row_narrow_f32(index_t n, index_t k, float alpha, const float* a, index_t inc_a, const float* b,
                         index_t rs_b, float beta, float* c, RowEpilogue<float> epi);
void gemm_row_narrow_f64(index_t n, index_t k, double alpha, const double* a, index_t inc_a, const double* b,
                         index_t rs_b, double beta, double* c, RowEpilogue<double> epi);
void gemm_macro_f32(const gemm_detail::MacroArgs<float>& g);
void gemm_macro_f64(const gemm_detail::MacroArgs<double>& g);
void gemm_pack_a_f32(index_t m, index_t k, const float* a, index_t rs, index_t cs, float* dst);
void gemm_pack_a_f64(index_t m, index_t k, const double* a, index_t rs, index_t cs, double* dst);
void gemm_pack_b_f32(index_t k, index_t n, const float* b, index_t rs, index_t cs, float* dst);
void gemm_pack_b_f64(index_t k, index_t n, const double* b, index_t rs, index_t cs, double* dst);
}  // namespace avx2

// The avx512 path: the AVX2 kernels but for the microkernels (the AVX2 tiles
// in zmm registers, the same arithmetic), the row and the narrow dW
// (gemm_avx512.cpp).
namespace avx512 {
// C (m x n, row stride rs_c) = alpha A B + beta C for 0 < n < 16 floats (8
// doubles), A stored transposed (A(i, p) = a[i + p cs_a]), B row-major, k
// within one k-block: a vector runs down each column of C (dW of a layer with
// few outputs). The blocked path's arithmetic per element; beta == 0 does not
// read C.
void gemm_narrow_tn_f32(index_t m, index_t n, index_t k, float alpha, const float* a, index_t cs_a, const float* b,
                        index_t rs_b, float beta, float* c, index_t rs_c);
void gemm_narrow_tn_f64(index_t m, index_t n, index_t k, double alpha, const double* a, index_t cs_a,
                        const double* b, index_t rs_b, double beta, double* c, index_t rs_c);
void gemm_macro_f32(const gemm_detail::MacroArgs<float>& g);
void gemm_macro_f64(const gemm_detail::MacroArgs<double>& g);
void gemm_row_f32(index_t j0, index_t j1, index_t k, float alpha, const float* a, index_t inc_a, const float* b,
                  index_t rs_b, float beta, float* c, RowEpilogue<float> epi);
void gemm_row_f64(index_t j0, index_t j1, index_t k, double alpha, const double* a, index_t inc_a, const double* b,
                  index_t rs_b, double beta, double* c, RowEpilogue<double> epi);
}  // namespace avx512

}  // namespace pb
