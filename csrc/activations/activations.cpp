// Activations: the portable (scalar) kernels, the dispatch to the AVX2 ones and
// the threading. The table of local gradients is in activations.h; `forward`
// and `local_grad` below follow it line by line (activations_avx2.cpp mirrors
// them with vector code).
#include "activations/activations.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "activations/activations_avx2.h"
#include "activations/avx2_guard.h"
#include "common/dispatch.h"
#include "common/thread_pool.h"

namespace pb {

const char* activation_name(Activation act) {
    switch (act) {
        case Activation::identity: return "identity";
        case Activation::relu: return "relu";
        case Activation::leaky_relu: return "leaky_relu";
        case Activation::elu: return "elu";
        case Activation::sigmoid: return "sigmoid";
        case Activation::tanh: return "tanh";
        case Activation::gelu: return "gelu";
        case Activation::gelu_tanh: return "gelu_tanh";
        case Activation::softplus: return "softplus";
    }
    return "unknown";
}

bool derivative_uses_output(Activation act, const ActParams& p) {
    switch (act) {
        case Activation::identity:
        case Activation::relu:
        case Activation::sigmoid:
        case Activation::tanh:
            return true;
        case Activation::leaky_relu:
            return p.alpha >= 0;  // y > 0 <=> z > 0 only for a non-negative slope
        case Activation::elu:
            return p.alpha > 0;   // y + alpha = alpha e^z recovers e^z only for alpha > 0
        case Activation::gelu:
        case Activation::gelu_tanh:
        case Activation::softplus:
            return false;
    }
    throw std::invalid_argument("unknown activation " + std::to_string(static_cast<int>(act)));
}

namespace {

template <Activation A> struct ActTag { static constexpr Activation value = A; };

template <typename F>
void visit_act(Activation act, F&& f) {
    switch (act) {
        case Activation::identity: f(ActTag<Activation::identity>{}); return;
        case Activation::relu: f(ActTag<Activation::relu>{}); return;
        case Activation::leaky_relu: f(ActTag<Activation::leaky_relu>{}); return;
        case Activation::elu: f(ActTag<Activation::elu>{}); return;
        case Activation::sigmoid: f(ActTag<Activation::sigmoid>{}); return;
        case Activation::tanh: f(ActTag<Activation::tanh>{}); return;
        case Activation::gelu: f(ActTag<Activation::gelu>{}); return;
        case Activation::gelu_tanh: f(ActTag<Activation::gelu_tanh>{}); return;
        case Activation::softplus: f(ActTag<Activation::softplus>{}); return;
    }
    throw std::invalid_argument("unknown activation " + std::to_string(static_cast<int>(act)));
}

// Parameters converted once to the working type.
template <typename T>
struct Prm {
    T alpha, beta, threshold;
    bool elu_from_output;
    explicit Prm(const ActParams& p)
        : alpha(static_cast<T>(p.alpha)), beta(static_cast<T>(p.beta)),
          threshold(static_cast<T>(p.threshold)), elu_from_output(p.alpha > 0) {}
};

template <typename T> T sigmoid(T z) {  // never evaluates e^{+large}
    T e = std::exp(-std::fabs(z));
    T r = T(1) / (T(1) + e);
    return z >= 0 ? r : e * r;
}
constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kGeluTanhC = 0.044715;
// GELU saturation: for |z| > kGeluSat both GELUs already evaluate to exactly z / -0 and
// their derivatives to exactly 1 / +0 in float and double (e^{-z^2/2} and the sigmoid's
// e^{-2u} underflow to 0). Returning those values directly there keeps every finite result
// bit for bit and avoids inf * 0 = NaN for huge or infinite z (z^2, z^3 overflow).
constexpr double kGeluSat = 40.0;

// y = f(z)
template <Activation A, typename T>
T forward(T z, const Prm<T>& p) {
    if constexpr (A == Activation::identity) return z;
    if constexpr (A == Activation::relu) return (z > 0 || z != z) ? z : T(0);
    if constexpr (A == Activation::leaky_relu) return z > 0 ? z : p.alpha * z;
    if constexpr (A == Activation::elu) return z > 0 ? z : p.alpha * std::expm1(z);
    if constexpr (A == Activation::sigmoid) return sigmoid(z);
    if constexpr (A == Activation::tanh) return std::tanh(z);
    if constexpr (A == Activation::gelu) {  // z Phi(z), Phi(z) = erfc(-z/sqrt2)/2
        if (z < T(-kGeluSat)) return T(-0.0);  // (-inf * 0 would be NaN)
        return z * static_cast<T>(0.5 * std::erfc(-static_cast<double>(z) * 0.70710678118654752440));
    }
    if constexpr (A == Activation::gelu_tanh) {  // 0.5 z (1 + tanh u) = z sigmoid(2u)
        if (z < T(-kGeluSat)) return T(-0.0);
        T u = T(kSqrt2OverPi) * (z + T(kGeluTanhC) * z * z * z);
        return z * sigmoid(u + u);
    }
    if constexpr (A == Activation::softplus) {  // (1/beta) log(1 + e^{beta z}), stable form
        T bz = p.beta * z;
        if (bz > p.threshold) return z;
        return (std::max(bz, T(0)) + std::log1p(std::exp(-std::fabs(bz)))) / p.beta;
    }
}

// f'(.) from `s`, the saved value: y or z as derivative_uses_output says.
template <Activation A, typename T>
T local_grad(T s, const Prm<T>& p) {
    if constexpr (A == Activation::identity) return T(1);
    if constexpr (A == Activation::relu) return s > 0 ? T(1) : T(0);
    if constexpr (A == Activation::leaky_relu) return s > 0 ? T(1) : p.alpha;  // same from y or z
    if constexpr (A == Activation::elu) {
        if (p.elu_from_output) return s > 0 ? T(1) : s + p.alpha;
        return s > 0 ? T(1) : p.alpha * std::exp(s);
    }
    if constexpr (A == Activation::sigmoid) return s * (T(1) - s);
    if constexpr (A == Activation::tanh) return T(1) - s * s;
    if constexpr (A == Activation::gelu) {  // Phi(z) + z phi(z)
        double z = s;
        if (z > kGeluSat) return T(1);
        if (z < -kGeluSat) return T(0);
        double phi = 0.39894228040143267794 * std::exp(-0.5 * z * z);
        return static_cast<T>(0.5 * std::erfc(-z * 0.70710678118654752440) + z * phi);
    }
    if constexpr (A == Activation::gelu_tanh) {  // S + 2 z S (1 - S) u',  S = sigmoid(2u)
        if (s > T(kGeluSat)) return T(1);
        if (s < T(-kGeluSat)) return T(0);
        T u = T(kSqrt2OverPi) * (s + T(kGeluTanhC) * s * s * s);
        T du = T(kSqrt2OverPi) * (T(1) + T(3 * kGeluTanhC) * s * s);
        T sg = sigmoid(u + u);
        return sg + T(2) * s * sg * (T(1) - sg) * du;
    }
    if constexpr (A == Activation::softplus) {
        T bz = p.beta * s;
        return bz > p.threshold ? T(1) : sigmoid(bz);
    }
}

// Cost of one element, in the thread pool's units (kMinWorkPerThread: about
// 20 us of GEMM on one core, so a unit is about 0.01 ns), measured on Zen 4
// with AVX2 over 64k-1M floats: relu 0.08-0.11 ns forward, 0.11-0.16
// backward; sigmoid, tanh, elu forward 0.6-0.9; the GELUs and softplus about
// 1.1-1.6 both ways (softplus backward 0.8). A pass then splits over two
// threads once each gets about 20 us of it, as a GEMM does.
double act_cost_forward(Activation act) {
    switch (act) {
        case Activation::identity:
        case Activation::relu:
        case Activation::leaky_relu:
            return 10.0;
        case Activation::sigmoid:
        case Activation::tanh:
        case Activation::elu:
            return 80.0;
        default:  // the GELUs, softplus
            return 125.0;
    }
}

double act_cost_backward(Activation act) {
    switch (act) {
        case Activation::gelu:
        case Activation::gelu_tanh:
            return 150.0;
        case Activation::softplus:
            return 80.0;
        default:  // a compare, or a product with the saved output
            return 15.0;
    }
}

// act_backward_bias adds each column's sum in double: relu over 512 x 1024
// floats takes 0.28 ns an element on one core.
constexpr double kColumnSumCost = 15.0;

constexpr index_t kChunk = 8192;  // elements per task (multiple of every vector width)

template <typename T>
void forward_range(Activation act, const ActParams& p, const T* z, T* y, index_t n) {
    PB_IF_AVX2(avx2::act_forward(act, p, z, y, n));
    Prm<T> q(p);
    visit_act(act, [&](auto tag) {
        constexpr Activation A = decltype(tag)::value;
        for (index_t i = 0; i < n; ++i) y[i] = forward<A>(z[i], q);
    });
}

template <typename T>
void backward_range(Activation act, const ActParams& p, const T* up, const T* s, T* g, index_t n) {
    PB_IF_AVX2(avx2::act_backward(act, p, up, s, g, n));
    Prm<T> q(p);
    visit_act(act, [&](auto tag) {
        constexpr Activation A = decltype(tag)::value;
        for (index_t i = 0; i < n; ++i) g[i] = up[i] * local_grad<A>(s[i], q);
    });
}

template <typename T>
void backward_cols(Activation act, const ActParams& p, const T* up, const T* s, T* g, index_t m,
                   index_t n, index_t j0, index_t j1, double* acc) {
    PB_IF_AVX2(avx2::act_backward_cols(act, p, up, s, g, m, n, j0, j1, acc));
    Prm<T> q(p);
    visit_act(act, [&](auto tag) {
        constexpr Activation A = decltype(tag)::value;
        for (index_t i = 0; i < m; ++i) {
            const index_t o = i * n;
            for (index_t j = j0; j < j1; ++j) {
                T v = up[o + j] * local_grad<A>(s[o + j], q);
                g[o + j] = v;
                if (acc) acc[j - j0] += static_cast<double>(v);
            }
        }
    });
}

}  // namespace

template <typename T>
void act_forward(Activation act, const ActParams& p, const T* z, T* y, index_t n) {
    if (n <= 0) return;
    index_t tasks = (n + kChunk - 1) / kChunk;
    parallel_for(tasks, static_cast<double>(n) * act_cost_forward(act), [&](index_t b, index_t e) {
        index_t lo = b * kChunk, hi = std::min(e * kChunk, n);
        forward_range(act, p, z + lo, y + lo, hi - lo);
    });
}

template <typename T>
void act_backward(Activation act, const ActParams& p, const T* upstream, const T* saved, T* g,
                  index_t n) {
    if (n <= 0) return;
    index_t tasks = (n + kChunk - 1) / kChunk;
    parallel_for(tasks, static_cast<double>(n) * act_cost_backward(act), [&](index_t b, index_t e) {
        index_t lo = b * kChunk, hi = std::min(e * kChunk, n);
        backward_range(act, p, upstream + lo, saved + lo, g + lo, hi - lo);
    });
}

template <typename T>
void bias_act_forward(Activation act, const ActParams& p, T* c, index_t rows, index_t cols,
                      index_t ldc, const T* bias, T* preact, index_t ldp) {
    if (rows <= 0 || cols <= 0) return;
    PB_IF_AVX2(avx2::bias_act_forward(act, p, c, rows, cols, ldc, bias, preact, ldp));
    Prm<T> q(p);
    visit_act(act, [&](auto tag) {
        constexpr Activation A = decltype(tag)::value;
        for (index_t i = 0; i < rows; ++i) {
            T* ci = c + i * ldc;
            T* pi = preact ? preact + i * ldp : nullptr;
            for (index_t j = 0; j < cols; ++j) {
                T z = bias ? ci[j] + bias[j] : ci[j];
                if (pi) pi[j] = z;
                ci[j] = forward<A>(z, q);
            }
        }
    });
}

template <typename T>
void act_backward_bias(Activation act, const ActParams& p, const T* upstream, const T* saved, T* g,
                       index_t m, index_t n, T* db, bool db_accumulate) {
    if (n <= 0) return;
    if (!db) return act_backward(act, p, upstream, saved, g, m * n);
    // db needs every row of a column on one thread: tasks are blocks of columns,
    // each summed over rows in order in double (fixed order for any thread count).
    constexpr index_t kCols = 256;
    index_t tasks = (n + kCols - 1) / kCols;
    parallel_for(tasks, static_cast<double>(m) * static_cast<double>(n) * (act_cost_backward(act) + kColumnSumCost),
                 [&](index_t b, index_t e) {
                     for (index_t t = b; t < e; ++t) {
                         index_t j0 = t * kCols, j1 = std::min(j0 + kCols, n);
                         double acc[kCols];
                         std::fill(acc, acc + (j1 - j0), 0.0);  // not all 2 KiB: tiny layers are common
                         backward_cols(act, p, upstream, saved, g, m, n, j0, j1, acc);
                         for (index_t j = j0; j < j1; ++j) {
                             double s = acc[j - j0];
                             db[j] = static_cast<T>(db_accumulate ? static_cast<double>(db[j]) + s : s);
                         }
                     }
                 });
}

template <typename T>
void act_backward_block(Activation act, const ActParams& p, const T* upstream, const T* saved, T* g,
                        index_t rows, index_t ld, index_t j0, index_t j1) {
    if (rows > 0 && j1 > j0) backward_cols(act, p, upstream, saved, g, rows, ld, j0, j1, nullptr);
}

template <typename T>
void maxout_forward(const T* z, index_t pieces, index_t n, T* y, std::int32_t* argmax) {
    if (n <= 0) return;
    if (pieces <= 0) throw std::invalid_argument("maxout_forward: pieces must be >= 1");
    index_t tasks = (n + kChunk - 1) / kChunk;
    parallel_for(tasks, static_cast<double>(n) * static_cast<double>(pieces), [&](index_t b, index_t e) {
        index_t lo = b * kChunk, hi = std::min(e * kChunk, n);
        PB_IF_AVX2(avx2::maxout_forward(z, pieces, n, lo, hi, y, argmax));
        for (index_t i = lo; i < hi; ++i) {
            T best = z[i];
            std::int32_t arg = 0;
            for (index_t k = 1; k < pieces; ++k) {
                T v = z[k * n + i];
                // Strictly greater keeps the first maximum; a NaN piece wins once.
                if (v > best || (v != v && best == best)) {
                    best = v;
                    arg = static_cast<std::int32_t>(k);
                }
            }
            y[i] = best;
            argmax[i] = arg;
        }
    });
}

template <typename T>
void maxout_backward(const T* upstream, const std::int32_t* argmax, index_t pieces, index_t n, T* gz) {
    if (n <= 0) return;
    for (index_t i = 0; i < n; ++i)  // validate before writing anything
        if (argmax[i] < 0 || argmax[i] >= pieces)
            throw std::invalid_argument("maxout_backward: argmax[" + std::to_string(i) + "] = " +
                                        std::to_string(argmax[i]) + " is out of range for " +
                                        std::to_string(pieces) + " pieces");
    index_t tasks = (n + kChunk - 1) / kChunk;
    parallel_for(tasks, static_cast<double>(n) * static_cast<double>(pieces), [&](index_t b, index_t e) {
        index_t lo = b * kChunk, hi = std::min(e * kChunk, n);
        for (index_t k = 0; k < pieces; ++k) {
            T* gk = gz + k * n;
            for (index_t i = lo; i < hi; ++i) gk[i] = argmax[i] == k ? upstream[i] : T(0);
        }
    });
}

#define PB_INSTANTIATE(T)                                                                         \
    template void act_forward<T>(Activation, const ActParams&, const T*, T*, index_t);            \
    template void act_backward<T>(Activation, const ActParams&, const T*, const T*, T*, index_t); \
    template void bias_act_forward<T>(Activation, const ActParams&, T*, index_t, index_t, index_t, \
                                      const T*, T*, index_t);                                     \
    template void act_backward_bias<T>(Activation, const ActParams&, const T*, const T*, T*,      \
                                       index_t, index_t, T*, bool);                               \
    template void act_backward_block<T>(Activation, const ActParams&, const T*, const T*, T*,     \
                                        index_t, index_t, index_t, index_t);                      \
    template void maxout_forward<T>(const T*, index_t, index_t, T*, std::int32_t*);               \
    template void maxout_backward<T>(const T*, const std::int32_t*, index_t, index_t, T*);
PB_INSTANTIATE(float)
PB_INSTANTIATE(double)
#undef PB_INSTANTIATE

}  // namespace pb
