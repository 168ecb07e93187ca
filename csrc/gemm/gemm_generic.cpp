// Portable GEMM kernels: C++ with the GNU vector extension (GCC, Clang), compiled
// for the base ISA (SSE2 on x86-64, NEON on aarch64). Same structure as gemm_avx2.cpp: a
// register-tile microkernel (float 6x8, double 6x4: 12 accumulator registers
// of 128 bits), the macro-kernel (loops 2 and 1, edge tiles) and packing.
#include <cstddef>
#include <cstring>

#include "gemm/gemm_kernels.h"

namespace pb {
namespace generic {
namespace {

using gemm_detail::MacroArgs;

inline index_t imin(index_t x, index_t y) { return x < y ? x : y; }

// 128-bit vectors through the GNU vector extension (GCC and Clang): SSE2 on
// x86-64, NEON on aarch64. Plain arrays of scalars left the accumulators in
// memory (4-6 GFLOP/s); with vectors they stay in registers.
template <typename T>
struct Vec {
    typedef T type __attribute__((vector_size(16)));
    static constexpr int lanes = 16 / sizeof(T);
};

template <typename V, typename T>
inline V load(const T* p) {
    V v;
    std::memcpy(&v, p, sizeof(V));
    return v;
}

template <typename V, typename T>
inline void store(T* p, V v) {
    std::memcpy(p, &v, sizeof(V));
}

// C[0:MR, 0:NR] = alpha * sum_p A(:, p) B(p, :) + beta * C (unit column
// stride); A(i, p) = a[o[i] + p*a_cs], B(p, j) = b[p*b_rs + j].
template <typename T, int MR, int NR>
void ukr(index_t k, const T* a, const index_t* o, index_t a_cs, const T* b, index_t b_rs, T* c, index_t c_rs,
         T alpha, T beta) {
    using V = typename Vec<T>::type;
    constexpr int L = Vec<T>::lanes, NV = NR / L;
    static_assert(NR % L == 0, "NR must be a multiple of the vector width");
    V acc[MR][NV];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) acc[i][v] = V{};
    index_t oo[MR];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) oo[i] = o[i];
    for (index_t p = 0; p < k; ++p) {
        V bv[NV];
#pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) bv[v] = load<V>(b + v * L);
#pragma GCC unroll 16
        for (int i = 0; i < MR; ++i) {
            const V ai = V{} + a[oo[i]];
#pragma GCC unroll 16
            for (int v = 0; v < NV; ++v) acc[i][v] += ai * bv[v];
        }
        a += a_cs;
        b += b_rs;
    }
    const V va = V{} + alpha, vb = V{} + beta;
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) {
            T* cp = c + i * c_rs + v * L;
            store(cp, beta == T(0) ? va * acc[i][v] : va * acc[i][v] + vb * load<V>(cp));
        }
}

template <typename T, int MR, int NR>
void macro(const MacroArgs<T>& g) {
    for (index_t jr = 0; jr < g.n; jr += NR) {  // loop 2: micro-panels of B (L1)
        const index_t nr = imin(NR, g.n - jr);
        const T* bp = nr == NR ? g.b + (jr / NR) * g.b_ps : g.b_edge;
        const index_t b_rs = nr == NR ? g.b_rs : NR;
        for (index_t ir = 0; ir < g.m; ir += MR) {  // loop 1: micro-panels of A (L2)
            const index_t mr = imin(MR, g.m - ir);
            const T* ap = g.a + (ir / MR) * g.a_ps;
            index_t o[MR];  // row offsets; rows past mr re-read the last valid row
            for (int i = 0; i < MR; ++i) o[i] = imin(i, mr - 1) * g.a_rs;
            T* cp = g.c + ir * g.c_rs + jr * g.c_cs;
            if (mr == MR && nr == NR && g.c_cs == 1) {
                ukr<T, MR, NR>(g.k, ap, o, g.a_cs, bp, b_rs, cp, g.c_rs, g.alpha, g.beta);
                continue;
            }
            // Edge tile: same arithmetic on an aligned stack copy of C.
            alignas(64) T t[MR * NR];
            if (g.beta != T(0)) {
                std::memset(t, 0, sizeof(t));  // the unused part is computed too: keep it defined
                for (index_t i = 0; i < mr; ++i)
                    for (index_t j = 0; j < nr; ++j) t[i * NR + j] = cp[i * g.c_rs + j * g.c_cs];
            }
            ukr<T, MR, NR>(g.k, ap, o, g.a_cs, bp, b_rs, t, NR, g.alpha, g.beta);
            for (index_t i = 0; i < mr; ++i)
                for (index_t j = 0; j < nr; ++j) cp[i * g.c_rs + j * g.c_cs] = t[i * NR + j];
        }
    }
}

template <typename T, int MR>
void pack_a(index_t m, index_t k, const T* a, index_t rs, index_t cs, T* dst) {
    for (index_t ir = 0; ir < m; ir += MR, dst += MR * k) {
        const index_t mr = imin(MR, m - ir);
        const T* src = a + ir * rs;
        for (index_t p = 0; p < k; ++p) {
            for (index_t i = 0; i < mr; ++i) dst[p * MR + i] = src[i * rs + p * cs];
            for (index_t i = mr; i < MR; ++i) dst[p * MR + i] = T(0);
        }
    }
}

template <typename T, int NR>
void pack_b(index_t k, index_t n, const T* b, index_t rs, index_t cs, T* dst) {
    for (index_t jr = 0; jr < n; jr += NR, dst += NR * k) {
        const index_t nr = imin(NR, n - jr);
        const T* src = b + jr * cs;
        if (nr == NR && cs == 1) {
            for (index_t p = 0; p < k; ++p)
                for (int j = 0; j < NR; ++j) dst[p * NR + j] = src[p * rs + j];
        } else {
            for (index_t p = 0; p < k; ++p) {
                for (index_t j = 0; j < nr; ++j) dst[p * NR + j] = src[p * rs + j * cs];
                for (index_t j = nr; j < NR; ++j) dst[p * NR + j] = T(0);
            }
        }
    }
}

constexpr int kMrF = gemm_detail::kBlocksGenericF32.mr, kNrF = gemm_detail::kBlocksGenericF32.nr;
constexpr int kMrD = gemm_detail::kBlocksGenericF64.mr, kNrD = gemm_detail::kBlocksGenericF64.nr;

// One row of C, summed over k in order (the compiler vectorises the j loop);
// the bias and ReLU as the portable activation code computes them.
template <typename T>
void row_impl(index_t j0, index_t j1, index_t k, T alpha, const T* a, index_t inc_a, const T* b, index_t rs_b,
              T beta, T* c, RowEpilogue<T> epi) {
    constexpr index_t kChunk = 64;  // accumulators of one chunk stay in registers
    for (index_t jc = j0; jc < j1; jc += kChunk) {
        const index_t w = j1 - jc < kChunk ? j1 - jc : kChunk;
        T acc[kChunk] = {};
        for (index_t p = 0; p < k; ++p) {
            const T ap = a[p * inc_a];
            const T* bp = b + p * rs_b + jc;
            for (index_t j = 0; j < w; ++j) acc[j] += ap * bp[j];
        }
        for (index_t j = 0; j < w; ++j) {
            T r = beta == T(0) ? alpha * acc[j] : alpha * acc[j] + beta * c[jc + j];
            if (epi.bias != nullptr) r += epi.bias[jc + j];
            if (epi.relu) r = (r > 0 || r != r) ? r : T(0);
            c[jc + j] = r;
        }
    }
}

// The microkernel's arithmetic, one element at a time: acc += a * b from zero
// (no FMA on the base ISA), then alpha * acc (+ beta * c).
template <typename T>
void tiny_impl(index_t m, index_t n, index_t k, T alpha, const T* a, index_t rs_a, index_t cs_a, const T* b,
               index_t rs_b, index_t cs_b, T beta, T* c, index_t rs_c, index_t cs_c) {
    for (index_t i = 0; i < m; ++i)
        for (index_t j = 0; j < n; ++j) {
            T acc = 0;
            for (index_t p = 0; p < k; ++p) acc += a[i * rs_a + p * cs_a] * b[p * rs_b + j * cs_b];
            T& cij = c[i * rs_c + j * cs_c];
            cij = beta == T(0) ? alpha * acc : alpha * acc + beta * cij;
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
    row_impl<float>(j0, j1, k, alpha, a, inc_a, b, rs_b, beta, c, epi);
}
void gemm_row_f64(index_t j0, index_t j1, index_t k, double alpha, const double* a, index_t inc_a, const double* b,
                  index_t rs_b, double beta, double* c, RowEpilogue<double> epi) {
    row_impl<double>(j0, j1, k, alpha, a, inc_a, b, rs_b, beta, c, epi);
}

void gemm_macro_f32(const MacroArgs<float>& g) { macro<float, kMrF, kNrF>(g); }
void gemm_macro_f64(const MacroArgs<double>& g) { macro<double, kMrD, kNrD>(g); }
void gemm_pack_a_f32(index_t m, index_t k, const float* a, index_t rs, index_t cs, float* dst) {
    pack_a<float, kMrF>(m, k, a, rs, cs, dst);
}
void gemm_pack_a_f64(index_t m, index_t k, const double* a, index_t rs, index_t cs, double* dst) {
    pack_a<double, kMrD>(m, k, a, rs, cs, dst);
}
void gemm_pack_b_f32(index_t k, index_t n, const float* b, index_t rs, index_t cs, float* dst) {
    pack_b<float, kNrF>(k, n, b, rs, cs, dst);
}
void gemm_pack_b_f64(index_t k, index_t n, const double* b, index_t rs, index_t cs, double* dst) {
    pack_b<double, kNrD>(k, n, b, rs, cs, dst);
}

}  // namespace generic
}  // namespace pb
