// Activations, AVX2+FMA: the table of activations.h in vector form. `fwd` and
// `grad` mirror `forward` and `local_grad` of activations.cpp one activation
// per line; simd_avx2.h supplies exp/expm1/log1p/tanh/sigmoid/GELU.
#include "activations/activations_avx2.h"
#include "activations/avx2_guard.h"

#if PB_HAVE_AVX2_KERNELS

#include "activations/simd_avx2.h"

namespace pb {
namespace avx2 {
namespace {

template <Activation A> struct Tag { static constexpr Activation value = A; };

template <typename F>
void visit_act(Activation act, F&& f) {
    switch (act) {
        case Activation::identity: f(Tag<Activation::identity>{}); return;
        case Activation::relu: f(Tag<Activation::relu>{}); return;
        case Activation::leaky_relu: f(Tag<Activation::leaky_relu>{}); return;
        case Activation::elu: f(Tag<Activation::elu>{}); return;
        case Activation::sigmoid: f(Tag<Activation::sigmoid>{}); return;
        case Activation::tanh: f(Tag<Activation::tanh>{}); return;
        case Activation::gelu: f(Tag<Activation::gelu>{}); return;
        case Activation::gelu_tanh: f(Tag<Activation::gelu_tanh>{}); return;
        case Activation::softplus: f(Tag<Activation::softplus>{}); return;
    }
    // Unknown values were rejected by the generic entry points.
}

template <class V>
struct VPrm {
    typename V::R alpha, beta, threshold, one, zero;
    bool elu_from_output, beta_is_one;
    explicit VPrm(const ActParams& p)
        : alpha(V::set1(p.alpha)), beta(V::set1(p.beta)), threshold(V::set1(p.threshold)),
          one(V::set1(1.0)), zero(V::zero()), elu_from_output(p.alpha > 0),
          beta_is_one(static_cast<typename V::T>(p.beta) == 1) {}
};

constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kGeluTanhC = 0.044715;
constexpr double kGeluSat = 40.0;  // see activations.cpp: outside +-40 the GELUs are exactly saturated

// GELU forward / derivative with the saturated values outside [-kGeluSat, kGeluSat]
// (bit-identical to the unsaturated formula there for finite z; no NaN for huge or infinite z).
template <class V>
typename V::R gelu_sat_fwd(typename V::R z, typename V::R y) {
    return V::select(V::lt(z, V::set1(-kGeluSat)), V::neg(V::zero()), y);
}
template <class V>
typename V::R gelu_sat_grad(typename V::R s, typename V::R g, const VPrm<V>& p) {
    g = V::select(V::gt(s, V::set1(kGeluSat)), p.one, g);
    return V::select(V::lt(s, V::set1(-kGeluSat)), p.zero, g);
}

// y = f(z)
template <Activation A, class V>
typename V::R fwd(typename V::R z, const VPrm<V>& p) {
    using R = typename V::R;
    if constexpr (A == Activation::identity) return z;
    if constexpr (A == Activation::relu) return V::max(p.zero, z);  // NaN propagates
    if constexpr (A == Activation::leaky_relu) return V::select(V::gt(z, p.zero), z, V::mul(p.alpha, z));
    if constexpr (A == Activation::elu)
        return V::select(V::gt(z, p.zero), z, V::mul(p.alpha, V::expm1(V::min(p.zero, z))));
    if constexpr (A == Activation::sigmoid) return V::sigmoid(z);
    if constexpr (A == Activation::tanh) return V::tanh(z);
    if constexpr (A == Activation::gelu) return gelu_sat_fwd<V>(z, V::gelu(z));
    if constexpr (A == Activation::gelu_tanh) {
        R u = V::mul(V::set1(kSqrt2OverPi), V::fma(V::mul(V::set1(kGeluTanhC), z), V::mul(z, z), z));
        return gelu_sat_fwd<V>(z, V::mul(z, V::sigmoid(V::add(u, u))));
    }
    if constexpr (A == Activation::softplus) {
        R bz = p.beta_is_one ? z : V::mul(p.beta, z);
        R r = V::add(V::max(p.zero, bz), V::log1p_unit(V::exp(V::neg(V::abs(bz)))));
        if (!p.beta_is_one) r = V::div(r, p.beta);  // (the same value for beta = 1)
        return V::select(V::gt(bz, p.threshold), z, r);
    }
}

// f'(.) from the saved value s (y or z as derivative_uses_output says).
template <Activation A, class V>
typename V::R grad(typename V::R s, const VPrm<V>& p) {
    using R = typename V::R;
    if constexpr (A == Activation::identity) return p.one;
    if constexpr (A == Activation::relu) return V::select(V::gt(s, p.zero), p.one, p.zero);
    if constexpr (A == Activation::leaky_relu) return V::select(V::gt(s, p.zero), p.one, p.alpha);
    if constexpr (A == Activation::elu) {
        R neg = p.elu_from_output ? V::add(s, p.alpha) : V::mul(p.alpha, V::exp(V::min(p.zero, s)));
        return V::select(V::gt(s, p.zero), p.one, neg);
    }
    if constexpr (A == Activation::sigmoid) return V::mul(s, V::sub(p.one, s));
    if constexpr (A == Activation::tanh) return V::fnma(s, s, p.one);
    if constexpr (A == Activation::gelu) return gelu_sat_grad<V>(s, V::gelu_grad(s), p);
    if constexpr (A == Activation::gelu_tanh) {
        R s2 = V::mul(s, s);
        R u = V::mul(V::set1(kSqrt2OverPi), V::fma(V::mul(V::set1(kGeluTanhC), s), s2, s));
        R du = V::mul(V::set1(kSqrt2OverPi), V::fma(V::set1(3 * kGeluTanhC), s2, p.one));
        R sg = V::sigmoid(V::add(u, u));
        R t = V::mul(V::mul(V::add(s, s), sg), V::mul(V::sub(p.one, sg), du));
        return gelu_sat_grad<V>(s, V::add(sg, t), p);
    }
    if constexpr (A == Activation::softplus) {
        R bz = V::mul(p.beta, s);
        return V::select(V::gt(bz, p.threshold), p.one, V::sigmoid(bz));
    }
}

// Tails (fewer than W elements): masked loads (the other lanes read as zero)
// and masked stores.
template <class V>
typename V::R load_part(const typename V::T* p, index_t k) {
    return V::load_n(p, k);
}
template <class V>
void store_part(typename V::T* p, typename V::R v, index_t k) {
    V::store_n(p, v, k);
}

template <class V>
void forward_n(Activation act, const ActParams& prm, const typename V::T* z, typename V::T* y, index_t n) {
    VPrm<V> p(prm);
    visit_act(act, [&](auto tag) {
        constexpr Activation A = decltype(tag)::value;
        index_t i = 0;
        for (; i + V::W <= n; i += V::W) V::store(y + i, fwd<A, V>(V::load(z + i), p));
        if (i < n) store_part<V>(y + i, fwd<A, V>(load_part<V>(z + i, n - i), p), n - i);
    });
}

template <class V>
void backward_n(Activation act, const ActParams& prm, const typename V::T* up, const typename V::T* s,
                typename V::T* g, index_t n) {
    VPrm<V> p(prm);
    visit_act(act, [&](auto tag) {
        constexpr Activation A = decltype(tag)::value;
        index_t i = 0;
        for (; i + V::W <= n; i += V::W) V::store(g + i, V::mul(V::load(up + i), grad<A, V>(V::load(s + i), p)));
        if (i < n) {
            index_t k = n - i;
            store_part<V>(g + i, V::mul(load_part<V>(up + i, k), grad<A, V>(load_part<V>(s + i, k), p)), k);
        }
    });
}

template <class V>
void bias_forward(Activation act, const ActParams& prm, typename V::T* c, index_t rows, index_t cols,
                  index_t ldc, const typename V::T* bias, typename V::T* preact, index_t ldp) {
    using R = typename V::R;
    VPrm<V> p(prm);
    // Narrow contiguous blocks (fewer columns than a vector, as in a tiny
    // layer): add the bias row by row, then run the activation over the block
    // as one stream instead of one mostly empty vector per row. Lanes are
    // independent, so the values are the same as row by row.
    if (rows > 1 && cols < V::W && ldc == cols && (preact == nullptr || ldp == cols)) {
        const index_t total = rows * cols;
        if (bias != nullptr || preact != nullptr) {
            for (index_t i = 0; i < rows; ++i)
                for (index_t j = 0; j < cols; ++j) {
                    typename V::T z = bias ? c[i * cols + j] + bias[j] : c[i * cols + j];
                    c[i * cols + j] = z;
                    if (preact) preact[i * cols + j] = z;
                }
        }
        bias_forward<V>(act, prm, c, 1, total, total, nullptr, nullptr, 0);
        return;
    }
    visit_act(act, [&](auto tag) {
        constexpr Activation A = decltype(tag)::value;
        for (index_t i = 0; i < rows; ++i) {
            typename V::T* ci = c + i * ldc;
            typename V::T* pi = preact ? preact + i * ldp : nullptr;
            index_t j = 0;
            for (; j + V::W <= cols; j += V::W) {
                R z = bias ? V::add(V::load(ci + j), V::load(bias + j)) : V::load(ci + j);
                if (pi) V::store(pi + j, z);
                V::store(ci + j, fwd<A, V>(z, p));
            }
            if (j < cols) {
                index_t k = cols - j;
                R z = load_part<V>(ci + j, k);
                if (bias) z = V::add(z, load_part<V>(bias + j, k));
                if (pi) store_part<V>(pi + j, z, k);
                store_part<V>(ci + j, fwd<A, V>(z, p), k);
            }
        }
    });
}

// Column sums in double, continued from (and stored back to) acc: a float
// vector's lanes widened into two double vectors, a double vector's into one.
struct ColSum32 {
    __m256d lo, hi;
    explicit ColSum32(const double* acc) : lo(_mm256_loadu_pd(acc)), hi(_mm256_loadu_pd(acc + 4)) {}
    void add(__m256 v) {
        lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
        hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    }
    void store(double* acc) const {
        _mm256_storeu_pd(acc, lo);
        _mm256_storeu_pd(acc + 4, hi);
    }
};
struct ColSum64 {
    __m256d s;
    explicit ColSum64(const double* acc) : s(_mm256_loadu_pd(acc)) {}
    void add(__m256d v) { s = _mm256_add_pd(s, v); }
    void store(double* acc) const { _mm256_storeu_pd(acc, s); }
};
template <class T> struct ColSumOf;
template <> struct ColSumOf<float> { using type = ColSum32; };
template <> struct ColSumOf<double> { using type = ColSum64; };

// g = up * act'(s) over columns [j0, j1) of an m x n block; acc (if given,
// j1 - j0 doubles) gets each column's sum over rows added, in row order, in
// double.
//
// The rows are walked in order, two at a time across the whole range of
// columns, each column's sum passing through acc (in L1) between pairs: the
// three arrays stream forward. Walking a block of columns down every row with
// the sums in registers instead touches a new page at each row and, when a
// row is a multiple of 4 KiB, puts every row of the block in the same L1 set.
// Two rows keep 6 lines a set in flight (L1 is 8-way). act_backward_bias,
// relu over 512 x 1024 floats, one Zen 4 core: 304 -> 147 us (this loop
// alone: 0.61 -> 0.20 ns an element in cache, 0.75-0.90 -> 0.25-0.39 from
// memory; 128 x 256: 0.19 -> 0.17). Either way each column's sum is one chain
// over the rows in order from zero, as in the portable kernel (tested).
template <class V, Activation A>
void backward_rows(const typename V::T* up, const typename V::T* s, typename V::T* g, index_t m, index_t n,
                   index_t j0, index_t j1, const VPrm<V>& p, double* acc) {
    using R = typename V::R;
    using Sum = typename ColSumOf<typename V::T>::type;
    constexpr index_t W = V::W;
    const index_t k = (j1 - j0) % W, full_end = j1 - k;  // k columns at the end in a partial vector
    for (index_t i = 0; i < m; i += 2) {
        const index_t rows = m - i < 2 ? m - i : 2;
        for (index_t j = j0; j < full_end; j += W) {
            if (acc) {
                Sum sum(acc + (j - j0));
                for (index_t r = 0; r < rows; ++r) {
                    const index_t o = (i + r) * n + j;
                    const R v = V::mul(V::load(up + o), grad<A, V>(V::load(s + o), p));
                    V::store(g + o, v);
                    sum.add(v);
                }
                sum.store(acc + (j - j0));
            } else {
                for (index_t r = 0; r < rows; ++r) {
                    const index_t o = (i + r) * n + j;
                    V::store(g + o, V::mul(V::load(up + o), grad<A, V>(V::load(s + o), p)));
                }
            }
        }
    }
    if (k > 0) {  // the last k columns: one masked vector down the rows, its lanes summed like a full vector's
        double t[W] = {};
        if (acc)
            for (index_t c = 0; c < k; ++c) t[c] = acc[full_end - j0 + c];
        Sum sum(t);
        for (index_t i = 0; i < m; ++i) {
            const index_t o = i * n + full_end;
            const R v = V::mul(load_part<V>(up + o, k), grad<A, V>(load_part<V>(s + o, k), p));
            store_part<V>(g + o, v, k);
            sum.add(v);
        }
        if (acc) {
            sum.store(t);
            for (index_t c = 0; c < k; ++c) acc[full_end - j0 + c] = t[c];
        }
    }
}

template <class V>
void backward_cols(Activation act, const ActParams& prm, const typename V::T* up, const typename V::T* s,
                   typename V::T* g, index_t m, index_t n, index_t j0, index_t j1, double* acc) {
    VPrm<V> p(prm);
    visit_act(act, [&](auto tag) {
        constexpr Activation A = decltype(tag)::value;
        backward_rows<V, A>(up, s, g, m, n, j0, j1, p, acc);
    });
}

// Maxout: the running maximum and its piece index (as a float/double lane) per lane.
static inline __m128i to_i32(__m256d k) { return _mm256_cvttpd_epi32(k); }
static inline __m256i to_i32(__m256 k) { return _mm256_cvttps_epi32(k); }
static inline void store_i32(std::int32_t* p, __m128i v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v); }
static inline void store_i32(std::int32_t* p, __m256i v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }

template <class V>
void maxout_fwd_t(const typename V::T* z, index_t pieces, index_t n, index_t lo, index_t hi, typename V::T* y,
                  std::int32_t* argmax) {
    using R = typename V::R;
    using T = typename V::T;
    index_t i = lo;
    for (; i + V::W <= hi; i += V::W) {
        R best = V::load(z + i), arg = V::zero();
        R best_ord = V::ord(best, best);
        for (index_t k = 1; k < pieces; ++k) {
            R v = V::load(z + k * n + i);
            // Strictly greater keeps the first maximum; a NaN piece wins once.
            R take = V::bor(V::gt(v, best), V::band(V::unord(v, v), best_ord));
            best = V::select(take, v, best);
            arg = V::select(take, V::set1(static_cast<double>(k)), arg);
            best_ord = V::ord(best, best);
        }
        V::store(y + i, best);
        store_i32(argmax + i, to_i32(arg));
    }
    for (; i < hi; ++i) {
        T best = z[i];
        std::int32_t a = 0;
        for (index_t k = 1; k < pieces; ++k) {
            T v = z[k * n + i];
            if (v > best || (v != v && best == best)) {
                best = v;
                a = static_cast<std::int32_t>(k);
            }
        }
        y[i] = best;
        argmax[i] = a;
    }
}

}  // namespace

void maxout_forward(const float* z, index_t pieces, index_t n, index_t lo, index_t hi, float* y,
                    std::int32_t* argmax) {
    maxout_fwd_t<F32>(z, pieces, n, lo, hi, y, argmax);
}
void maxout_forward(const double* z, index_t pieces, index_t n, index_t lo, index_t hi, double* y,
                    std::int32_t* argmax) {
    maxout_fwd_t<F64>(z, pieces, n, lo, hi, y, argmax);
}

void act_forward(Activation act, const ActParams& p, const float* z, float* y, index_t n) {
    forward_n<F32>(act, p, z, y, n);
}
void act_forward(Activation act, const ActParams& p, const double* z, double* y, index_t n) {
    forward_n<F64>(act, p, z, y, n);
}
void act_backward(Activation act, const ActParams& p, const float* up, const float* s, float* g, index_t n) {
    backward_n<F32>(act, p, up, s, g, n);
}
void act_backward(Activation act, const ActParams& p, const double* up, const double* s, double* g,
                  index_t n) {
    backward_n<F64>(act, p, up, s, g, n);
}
void bias_act_forward(Activation act, const ActParams& p, float* c, index_t rows, index_t cols,
                      index_t ldc, const float* bias, float* preact, index_t ldp) {
    bias_forward<F32>(act, p, c, rows, cols, ldc, bias, preact, ldp);
}
void bias_act_forward(Activation act, const ActParams& p, double* c, index_t rows, index_t cols,
                      index_t ldc, const double* bias, double* preact, index_t ldp) {
    bias_forward<F64>(act, p, c, rows, cols, ldc, bias, preact, ldp);
}
void act_backward_cols(Activation act, const ActParams& p, const float* up, const float* s, float* g,
                       index_t m, index_t n, index_t j0, index_t j1, double* acc) {
    backward_cols<F32>(act, p, up, s, g, m, n, j0, j1, acc);
}
void act_backward_cols(Activation act, const ActParams& p, const double* up, const double* s, double* g,
                       index_t m, index_t n, index_t j0, index_t j1, double* acc) {
    backward_cols<F64>(act, p, up, s, g, m, n, j0, j1, acc);
}

}  // namespace avx2
}  // namespace pb
#endif  // PB_HAVE_AVX2_KERNELS
