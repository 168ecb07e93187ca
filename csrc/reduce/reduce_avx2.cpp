// Reductions, AVX2: reduce.cpp's summation order, several lanes at a time.
#include "reduce/reduce_avx2.h"
#include "activations/avx2_guard.h"

#if PB_HAVE_AVX2_KERNELS
#include "activations/simd_avx2.h"

namespace pb {
namespace avx2 {
namespace {

static inline __m256i lanes_epi64(index_t k) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(k), _mm256_setr_epi64x(0, 1, 2, 3));
}
// Up to 4 values widened to double, zero in the lanes past k.
static inline __m256d load4(const double* p, index_t k) {
    return k >= 4 ? _mm256_loadu_pd(p) : _mm256_maskload_pd(p, lanes_epi64(k));
}
static inline __m256d load4(const float* p, index_t k) {
    if (k >= 4) return _mm256_cvtps_pd(_mm_loadu_ps(p));
    __m128i m = _mm_cmpgt_epi32(_mm_set1_epi32(static_cast<int>(k)), _mm_setr_epi32(0, 1, 2, 3));
    return _mm256_cvtps_pd(_mm_maskload_ps(p, m));
}

template <typename T>
void block(const T* x, index_t rows, index_t ldx, index_t j0, index_t j1, double* acc) {
    for (index_t i = 0; i < rows; ++i) {
        const T* xi = x + i * ldx;
        index_t j = j0;
        for (; j + 4 <= j1; j += 4)
            _mm256_storeu_pd(acc + (j - j0), _mm256_add_pd(_mm256_loadu_pd(acc + (j - j0)), load4(xi + j, 4)));
        for (; j < j1; ++j) acc[j - j0] += static_cast<double>(xi[j]);
    }
}

template <typename T>
double rsum(const T* x, index_t n) {
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();  // lanes 0-3 and 4-7
    for (index_t j = 0; j < n; j += 8) {
        index_t k = n - j;
        a0 = _mm256_add_pd(a0, load4(x + j, k));
        if (k > 4) a1 = _mm256_add_pd(a1, load4(x + j + 4, k - 4));
    }
    return hsum_pd(a0, a1);
}

}  // namespace

void sum_rows_block(const float* x, index_t rows, index_t ldx, index_t j0, index_t j1, double* acc) {
    block(x, rows, ldx, j0, j1, acc);
}
void sum_rows_block(const double* x, index_t rows, index_t ldx, index_t j0, index_t j1, double* acc) {
    block(x, rows, ldx, j0, j1, acc);
}
double row_sum(const float* x, index_t n) { return rsum(x, n); }
double row_sum(const double* x, index_t n) { return rsum(x, n); }

}  // namespace avx2
}  // namespace pb
#endif  // PB_HAVE_AVX2_KERNELS
