// Loops 2 and 1 of the BLIS nest (the macro-kernel) around a register-tile
// microkernel, with the edge tiles, written once and compiled by each x86
// kernel file with its own flags and its own microkernel:
//   gemm_avx2.cpp    ukr: 6 x 16 float / 6 x 8 double in 12 ymm accumulators
//   gemm_avx512.cpp  ukr: the same tiles in 6 zmm accumulators (one per row),
//                    and ukr2: two adjacent tiles (6 x 32 float / 6 x 16
//                    double) in 12 zmm accumulators, over two B micro-panels
// Short row tiles (1-5 rows, full width) and the write-back are shared code,
// 256-bit (a pair's short rows: the avx512 file's zmm vectors, the same
// operations). Every element of C gets the same operations in both: fused
// multiply-adds over k in order from zero, then the alpha/beta write-back of
// wb_f32/wb_f64 below, so the two ISAs agree bit for bit (tested).
//
// As in row_kernel_x86.h, everything is in an anonymous namespace: each
// including file gets its own copy built with its own flags, and no code is
// shared (as a COMDAT) between files compiled for different ISAs.
#pragma once
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "common/types.h"
#include "gemm/gemm_kernels.h"
#include "gemm/row_kernel_x86.h"

namespace pb {
namespace {
namespace macro_kernel {

using gemm_detail::MacroArgs;

inline index_t imin(index_t x, index_t y) { return x < y ? x : y; }

// The tiles of both x86 paths (gemm_kernels.h's AVX2 rows): 6 rows of A, whose
// offsets the microkernels take one by one (see Macro).
constexpr int kMrF = gemm_detail::kBlocksAvx2F32.mr;
constexpr int kNrF = gemm_detail::kBlocksAvx2F32.nr;
constexpr int kMrD = gemm_detail::kBlocksAvx2F64.mr;
constexpr int kNrD = gemm_detail::kBlocksAvx2F64.nr;
static_assert(kMrF == 6 && kNrF == 16, "the float microkernels are written for 6x16 (avx512: a row is one zmm)");
static_assert(kMrD == 6 && kNrD == 8, "the double microkernels are written for 6x8 (avx512: a row is one zmm)");

// beta == 0: C is not read; beta == 1: one FMA; otherwise scale C first.
enum BetaMode { kBeta0 = 0, kBeta1 = 1, kBetaAny = 2 };
inline int beta_mode(double beta) { return beta == 0.0 ? kBeta0 : (beta == 1.0 ? kBeta1 : kBetaAny); }

// The write-back of one vector of C: alpha acc (+ beta c).
__attribute__((always_inline)) inline __m256 wb_f32(float* cp, __m256 acc, __m256 va, __m256 vb, int bm) {
    if (bm == kBeta0) return _mm256_mul_ps(va, acc);
    if (bm == kBeta1) return _mm256_fmadd_ps(va, acc, _mm256_loadu_ps(cp));
    return _mm256_fmadd_ps(va, acc, _mm256_mul_ps(vb, _mm256_loadu_ps(cp)));
}

__attribute__((always_inline)) inline __m256d wb_f64(double* cp, __m256d acc, __m256d va, __m256d vb, int bm) {
    if (bm == kBeta0) return _mm256_mul_pd(va, acc);
    if (bm == kBeta1) return _mm256_fmadd_pd(va, acc, _mm256_loadu_pd(cp));
    return _mm256_fmadd_pd(va, acc, _mm256_mul_pd(vb, _mm256_loadu_pd(cp)));
}

// ------------------------------------------------------------ vector traits

// The float and double vectors of the short-row kernels below: the row
// kernel's (row_kernel_x86.h) and a broadcast and the write-back above.
struct VecF32 : row_kernel::RowF32 {
    static V broadcast(const T* p) { return _mm256_broadcast_ss(p); }
    static V wb(T* cp, V acc, V va, V vb, int bm) { return wb_f32(cp, acc, va, vb, bm); }
};
struct VecF64 : row_kernel::RowF64 {
    static V broadcast(const T* p) { return _mm256_broadcast_sd(p); }
    static V wb(T* cp, V acc, V va, V vb, int bm) { return wb_f64(cp, acc, va, vb, bm); }
};

template <typename T> struct VecOf;
template <> struct VecOf<float> { using type = VecF32; };
template <> struct VecOf<double> { using type = VecF64; };

// -------------------------------------------- short row tiles (1..5 rows, full width)

// The last row tile of C is short whenever m is not a multiple of 6 (a batch
// of 64 leaves 4 rows in every GEMM with m = 64). Rather than run the 6-row
// kernel on a stack copy, these kernels keep R x 2 accumulators: the same
// arithmetic per element (fused multiply-adds over k from zero, the same
// write-back), so results do not depend on which tile computed a row. A row
// of B is two vectors, at b and b + b2 (the two halves of a micro-panel's
// row, or, for a pair of micro-panels in zmm vectors, one row of each); C's
// are adjacent.
template <class X, int R>
void ukr_rows(index_t k, const typename X::T* a, const index_t* o, index_t a_cs, const typename X::T* b,
              index_t b_rs, index_t b2, typename X::T* c, index_t c_rs, typename X::T alpha, typename X::T beta) {
    using V = typename X::V;
    constexpr index_t W = X::W;
    index_t off[R];
    V acc[R][2];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
        off[r] = o[r];
        acc[r][0] = acc[r][1] = X::zero();
    }
    for (index_t p = 0; p < k; ++p) {
        const V b0 = X::load(b), b1 = X::load(b + b2);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
            const V ai = X::broadcast(a + off[r]);
            acc[r][0] = X::fmadd(ai, b0, acc[r][0]);
            acc[r][1] = X::fmadd(ai, b1, acc[r][1]);
        }
        a += a_cs;
        b += b_rs;
    }
    const V va = X::set1(alpha), vb = X::set1(beta);
    const int bm = beta_mode(beta);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
        typename X::T* cr = c + r * c_rs;
        const V t0 = X::wb(cr, acc[r][0], va, vb, bm), t1 = X::wb(cr + W, acc[r][1], va, vb, bm);
        X::store(cr, t0);
        X::store(cr + W, t1);
    }
}

template <class X>
void ukr_short_rows(index_t mr, index_t k, const typename X::T* a, const index_t* o, index_t a_cs,
                    const typename X::T* b, index_t b_rs, index_t b2, typename X::T* c, index_t c_rs,
                    typename X::T alpha, typename X::T beta) {
    switch (mr) {
        case 1: return ukr_rows<X, 1>(k, a, o, a_cs, b, b_rs, b2, c, c_rs, alpha, beta);
        case 2: return ukr_rows<X, 2>(k, a, o, a_cs, b, b_rs, b2, c, c_rs, alpha, beta);
        case 3: return ukr_rows<X, 3>(k, a, o, a_cs, b, b_rs, b2, c, c_rs, alpha, beta);
        case 4: return ukr_rows<X, 4>(k, a, o, a_cs, b, b_rs, b2, c, c_rs, alpha, beta);
        default: return ukr_rows<X, 5>(k, a, o, a_cs, b, b_rs, b2, c, c_rs, alpha, beta);
    }
}
// ------------------------------------------------------- macro-kernel (loops 2, 1)

template <typename T>
using Ukr = void (*)(index_t, const T*, index_t, index_t, index_t, index_t, index_t, index_t, const T*, index_t,
                     T*, index_t, T, T);
// Two adjacent full tiles, C[0:6, 0:2 nr], from the B micro-panels at b and
// b + b_ps: the arguments of Ukr and, after b_rs, b_ps.
template <typename T>
using Ukr2 = void (*)(index_t, const T*, index_t, index_t, index_t, index_t, index_t, index_t, const T*, index_t,
                      index_t, T*, index_t, T, T);

// `ukr2` (or null): where two full micro-panels of B are left, loop 2 takes
// them together, and each micro-panel of A is read once for both; their
// short row tiles then take ukr_rows with the vectors `PairRows` (one vector
// a micro-panel row: the avx512 file's zmm traits).
template <typename T, int MR, int NR, Ukr<T> ukr, Ukr2<T> ukr2 = nullptr, class PairRows = void>
struct Macro {
    static_assert(MR == 6, "the microkernels take the offsets of 6 rows of A");
    static void run(const MacroArgs<T>& g) {
        // Row offsets of a full A panel; the last panel's are clamped to its rows.
        const index_t o_full[MR] = {0, g.a_rs, 2 * g.a_rs, 3 * g.a_rs, 4 * g.a_rs, 5 * g.a_rs};
        index_t jr = 0;
        if constexpr (!std::is_void<PairRows>::value) {
            static_assert(ukr2 != nullptr, "PairRows comes with ukr2");
            static_assert(PairRows::W == NR, "a pair's short rows hold a micro-panel row per vector");
            // loop 2, two micro-panels of B at a time (L1, L2)
            for (; g.c_cs == 1 && jr + 2 * NR <= g.n; jr += 2 * NR) {
                const T* bp = g.b + (jr / NR) * g.b_ps;
                for (index_t ir = 0; ir < g.m; ir += MR) {  // loop 1: micro-panels of A (L2)
                    const index_t mr = imin(MR, g.m - ir);
                    const T* ap = g.a + (ir / MR) * g.a_ps;
                    T* cp = g.c + ir * g.c_rs + jr;
                    if (mr == MR) {
                        ukr2(g.k, ap, o_full[1], o_full[2], o_full[3], o_full[4], o_full[5], g.a_cs, bp, g.b_rs,
                             g.b_ps, cp, g.c_rs, g.alpha, g.beta);
                    } else {
                        index_t o[MR];
                        for (int i = 0; i < MR; ++i) o[i] = o_full[imin(i, mr - 1)];
                        ukr_short_rows<PairRows>(mr, g.k, ap, o, g.a_cs, bp, g.b_rs, g.b_ps, cp, g.c_rs, g.alpha,
                                                 g.beta);
                    }
                }
            }
        }
        for (; jr < g.n; jr += NR) {  // loop 2: micro-panels of B (L1)
            const index_t nr = imin(NR, g.n - jr);
            const T* bp = nr == NR ? g.b + (jr / NR) * g.b_ps : g.b_edge;
            const index_t b_rs = nr == NR ? g.b_rs : NR;
            for (index_t ir = 0; ir < g.m; ir += MR) {  // loop 1: micro-panels of A (L2)
                const index_t mr = imin(MR, g.m - ir);
                const T* ap = g.a + (ir / MR) * g.a_ps;
                index_t o[MR];
                for (int i = 0; i < MR; ++i) o[i] = o_full[imin(i, mr - 1)];
                T* cp = g.c + ir * g.c_rs + jr * g.c_cs;
                if (mr == MR && nr == NR && g.c_cs == 1) {
                    ukr(g.k, ap, o[1], o[2], o[3], o[4], o[5], g.a_cs, bp, b_rs, cp, g.c_rs, g.alpha, g.beta);
                } else if (nr == NR && g.c_cs == 1) {
                    ukr_short_rows<typename VecOf<T>::type>(mr, g.k, ap, o, g.a_cs, bp, b_rs, VecOf<T>::type::W, cp,
                                                            g.c_rs, g.alpha, g.beta);
                } else {
                    edge_tile(g, ap, o, bp, b_rs, cp, mr, nr);
                }
            }
        }
    }

    // A partial tile (or C without unit column stride): the same microkernel
    // on an aligned stack tile holding a copy of C, so every element of C gets
    // exactly the arithmetic it would get in a full tile.
    __attribute__((noinline)) static void edge_tile(const MacroArgs<T>& g, const T* ap, const index_t* o,
                                                    const T* bp, index_t b_rs, T* cp, index_t mr, index_t nr) {
        alignas(64) T t[MR * NR];
        if (g.beta != T(0)) {
            std::memset(t, 0, sizeof(t));  // the unused part is computed too: keep it defined
            for (index_t i = 0; i < mr; ++i)
                for (index_t j = 0; j < nr; ++j) t[i * NR + j] = cp[i * g.c_rs + j * g.c_cs];
        }
        ukr(g.k, ap, o[1], o[2], o[3], o[4], o[5], g.a_cs, bp, b_rs, t, NR, g.alpha, g.beta);
        for (index_t i = 0; i < mr; ++i)
            for (index_t j = 0; j < nr; ++j) cp[i * g.c_rs + j * g.c_cs] = t[i * NR + j];
    }
};

}  // namespace macro_kernel
}  // namespace
}  // namespace pb
