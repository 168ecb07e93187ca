// Losses, AVX2+FMA: the row kernels of losses.cpp in vector form. Partial
// tails use masked loads/stores; exp sums are widened to double.
#include "losses/losses_avx2.h"
#include "activations/avx2_guard.h"

#if PB_HAVE_AVX2_KERNELS
#include <cmath>

#include "activations/simd_avx2.h"

namespace pb {
namespace avx2 {
namespace {

// Lane masks for the first k lanes (0 <= k <= W).
static inline __m256i lanes_ps(index_t k) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(k)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline __m256i lanes_pd(index_t k) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(k), _mm256_setr_epi64x(0, 1, 2, 3));
}
static inline __m256 mload(const float* p, index_t k) { return _mm256_maskload_ps(p, lanes_ps(k)); }
static inline __m256d mload(const double* p, index_t k) { return _mm256_maskload_pd(p, lanes_pd(k)); }
static inline void mstore(float* p, __m256 v, index_t k) { _mm256_maskstore_ps(p, lanes_ps(k), v); }
static inline void mstore(double* p, __m256d v, index_t k) { _mm256_maskstore_pd(p, lanes_pd(k), v); }
static inline __m256 mask_of(const float*, index_t k) { return _mm256_castsi256_ps(lanes_ps(k)); }
static inline __m256d mask_of(const double*, index_t k) { return _mm256_castsi256_pd(lanes_pd(k)); }

static inline float hmax(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}
static inline double hmax(__m256d v) {
    __m128d m = _mm_max_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    m = _mm_max_sd(m, _mm_unpackhi_pd(m, m));
    return _mm_cvtsd_f64(m);
}

// Row maximum (a NaN may be dropped here; it then makes exp(x - max) NaN).
template <class V>
typename V::T row_max(const typename V::T* x, index_t c) {
    using R = typename V::R;
    R m = V::set1(-__builtin_inf());
    index_t j = 0;
    for (; j + V::W <= c; j += V::W) m = V::max(m, V::load(x + j));
    if (j < c) m = V::max(m, V::select(mask_of(x, c - j), mload(x + j, c - j), V::set1(-__builtin_inf())));
    return hmax(m);
}

// sum_j exp(x_j - mx) in double; e_j stored to e when e != null.
template <class V>
double row_expsum(const typename V::T* x, index_t c, typename V::T mx, typename V::T* e) {
    using R = typename V::R;
    R m = V::set1(mx);
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    index_t j = 0;
    for (; j + V::W <= c; j += V::W) {
        R v = V::exp(V::sub(V::load(x + j), m));
        if (e) V::store(e + j, v);
        V::acc_add(a0, a1, v);
    }
    if (j < c) {
        index_t k = c - j;
        R v = V::select(mask_of(x, k), V::exp(V::sub(mload(x + j, k), m)), V::zero());
        if (e) mstore(e + j, v, k);
        V::acc_add(a0, a1, v);
    }
    return hsum_pd(a0, a1);
}

template <class V>
void scale_row(typename V::T* y, index_t c, typename V::T s) {
    typename V::R f = V::set1(s);
    index_t j = 0;
    for (; j + V::W <= c; j += V::W) V::store(y + j, V::mul(V::load(y + j), f));
    if (j < c) mstore(y + j, V::mul(mload(y + j, c - j), f), c - j);
}

template <class V>
void ce_rows_t(const typename V::T* x, index_t r0, index_t r1, index_t c, const std::int64_t* t, double* loss,
               typename V::T* d, typename V::T scale, const typename V::T* row_scale) {
    using T = typename V::T;
    for (index_t i = r0; i < r1; ++i) {
        const T* xi = x + i * c;
        T* di = d ? d + i * c : nullptr;
        T mx = row_max<V>(xi, c);
        double s = row_expsum<V>(xi, c, mx, di);
        if (loss) loss[i] = std::log(s) + static_cast<double>(mx) - static_cast<double>(xi[t[i]]);
        if (di) {
            T sc = row_scale ? row_scale[i] : scale;
            scale_row<V>(di, c, static_cast<T>(static_cast<double>(sc) / s));
            di[t[i]] -= sc;
        }
    }
}

template <class V>
void softmax_rows_t(const typename V::T* x, index_t r0, index_t r1, index_t c, typename V::T* y, bool log) {
    using T = typename V::T;
    using R = typename V::R;
    for (index_t i = r0; i < r1; ++i) {
        const T* xi = x + i * c;
        T* yi = y + i * c;
        T mx = row_max<V>(xi, c);
        double s = row_expsum<V>(xi, c, mx, log ? nullptr : yi);
        if (!log) {
            scale_row<V>(yi, c, static_cast<T>(1.0 / s));
            continue;
        }
        R m = V::set1(mx), ls = V::set1(std::log(s));
        index_t j = 0;
        for (; j + V::W <= c; j += V::W) V::store(yi + j, V::sub(V::sub(V::load(xi + j), m), ls));
        if (j < c) mstore(yi + j, V::sub(V::sub(mload(xi + j, c - j), m), ls), c - j);
    }
}

// l = max(z, 0) - z y + log1p(e^-|z|);  grad = (sigmoid(z) - y) scale.
template <class V>
typename V::R bce_vec(typename V::R z, typename V::R y, typename V::R* grad, typename V::R scale) {
    using R = typename V::R;
    R e = V::exp(V::neg(V::abs(z)));
    R l = V::add(V::fnma(z, y, V::max(V::zero(), z)), V::log1p_unit(e));
    if (grad) {
        R r = V::div(V::set1(1.0), V::add(V::set1(1.0), e));
        R sig = V::select(V::ge(z, V::zero()), r, V::mul(e, r));
        *grad = V::mul(V::sub(sig, y), scale);
    }
    return l;
}

template <class V>
double bce_range_t(const typename V::T* z, const typename V::T* y, index_t n, typename V::T* elem,
                   typename V::T* grad, typename V::T scale) {
    using R = typename V::R;
    R sc = V::set1(scale);
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    index_t i = 0;
    R g;
    for (; i + V::W <= n; i += V::W) {
        R l = bce_vec<V>(V::load(z + i), V::load(y + i), grad ? &g : nullptr, sc);
        if (elem) V::store(elem + i, l);
        if (grad) V::store(grad + i, g);
        V::acc_add(a0, a1, l);
    }
    if (i < n) {
        index_t k = n - i;
        R l = bce_vec<V>(mload(z + i, k), mload(y + i, k), grad ? &g : nullptr, sc);
        l = V::select(mask_of(z, k), l, V::zero());
        if (elem) mstore(elem + i, l, k);
        if (grad) mstore(grad + i, g, k);
        V::acc_add(a0, a1, l);
    }
    return hsum_pd(a0, a1);
}

// acc += a b in double, lane-wise (a b of floats is exact in double).
static inline void acc_dot(__m256d& a0, __m256d&, __m256d a, __m256d b) { a0 = _mm256_fmadd_pd(a, b, a0); }
static inline void acc_dot(__m256d& a0, __m256d& a1, __m256 a, __m256 b) {
    a0 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(a)), _mm256_cvtps_pd(_mm256_castps256_ps128(b)), a0);
    a1 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)), _mm256_cvtps_pd(_mm256_extractf128_ps(b, 1)), a1);
}

template <class V>
void softmax_backward_rows_t(const typename V::T* gy, const typename V::T* y, index_t r0, index_t r1, index_t c,
                             typename V::T* gx, bool log) {
    using T = typename V::T;
    using R = typename V::R;
    for (index_t i = r0; i < r1; ++i) {
        const T *g = gy + i * c, *yi = y + i * c;
        T* o = gx + i * c;
        __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
        index_t j = 0;
        if (log) {
            for (; j + V::W <= c; j += V::W) V::acc_add(a0, a1, V::load(g + j));
            if (j < c) V::acc_add(a0, a1, mload(g + j, c - j));  // masked lanes load 0
            R st = V::set1(hsum_pd(a0, a1));
            for (j = 0; j + V::W <= c; j += V::W)
                V::store(o + j, V::fnma(V::exp(V::load(yi + j)), st, V::load(g + j)));
            if (j < c) mstore(o + j, V::fnma(V::exp(mload(yi + j, c - j)), st, mload(g + j, c - j)), c - j);
        } else {
            for (; j + V::W <= c; j += V::W) acc_dot(a0, a1, V::load(g + j), V::load(yi + j));
            if (j < c) acc_dot(a0, a1, mload(g + j, c - j), mload(yi + j, c - j));
            R dt = V::set1(hsum_pd(a0, a1));
            for (j = 0; j + V::W <= c; j += V::W)
                V::store(o + j, V::mul(V::load(yi + j), V::sub(V::load(g + j), dt)));
            if (j < c) mstore(o + j, V::mul(mload(yi + j, c - j), V::sub(mload(g + j, c - j), dt)), c - j);
        }
    }
}

template <class V>
double squared_error_range_t(const typename V::T* a, const typename V::T* b, index_t n, typename V::T* elem,
                             typename V::T* grad, typename V::T scale) {
    using R = typename V::R;
    R s2 = V::set1(2.0 * static_cast<double>(scale));
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    index_t i = 0;
    for (; i + V::W <= n; i += V::W) {
        R d = V::sub(V::load(a + i), V::load(b + i));
        if (elem) V::store(elem + i, V::mul(d, d));
        if (grad) V::store(grad + i, V::mul(s2, d));
        acc_dot(a0, a1, d, d);
    }
    if (i < n) {
        index_t k = n - i;
        R d = V::sub(mload(a + i, k), mload(b + i, k));  // 0 in masked lanes
        if (elem) mstore(elem + i, V::mul(d, d), k);
        if (grad) mstore(grad + i, V::mul(s2, d), k);
        acc_dot(a0, a1, d, d);
    }
    return hsum_pd(a0, a1);
}

}  // namespace

void softmax_backward_rows(const float* gy, const float* y, index_t r0, index_t r1, index_t c, float* gx,
                           bool log) {
    softmax_backward_rows_t<F32>(gy, y, r0, r1, c, gx, log);
}
void softmax_backward_rows(const double* gy, const double* y, index_t r0, index_t r1, index_t c, double* gx,
                           bool log) {
    softmax_backward_rows_t<F64>(gy, y, r0, r1, c, gx, log);
}
double squared_error_range(const float* a, const float* b, index_t n, float* elem, float* grad, float scale) {
    return squared_error_range_t<F32>(a, b, n, elem, grad, scale);
}
double squared_error_range(const double* a, const double* b, index_t n, double* elem, double* grad,
                           double scale) {
    return squared_error_range_t<F64>(a, b, n, elem, grad, scale);
}

void ce_rows(const float* x, index_t r0, index_t r1, index_t c, const std::int64_t* t, double* loss, float* d,
             float scale, const float* row_scale) {
    ce_rows_t<F32>(x, r0, r1, c, t, loss, d, scale, row_scale);
}
void ce_rows(const double* x, index_t r0, index_t r1, index_t c, const std::int64_t* t, double* loss, double* d,
             double scale, const double* row_scale) {
    ce_rows_t<F64>(x, r0, r1, c, t, loss, d, scale, row_scale);
}
void softmax_rows(const float* x, index_t r0, index_t r1, index_t c, float* y, bool log) {
    softmax_rows_t<F32>(x, r0, r1, c, y, log);
}
void softmax_rows(const double* x, index_t r0, index_t r1, index_t c, double* y, bool log) {
    softmax_rows_t<F64>(x, r0, r1, c, y, log);
}
double bce_range(const float* z, const float* y, index_t n, float* elem, float* grad, float scale) {
    return bce_range_t<F32>(z, y, n, elem, grad, scale);
}
double bce_range(const double* z, const double* y, index_t n, double* elem, double* grad, double scale) {
    return bce_range_t<F64>(z, y, n, elem, grad, scale);
}

}  // namespace avx2
}  // namespace pb
#endif  // PB_HAVE_AVX2_KERNELS
