// Losses on raw logits: portable kernels, dispatch to losses_avx2.cpp, threading.
//
// Design: every loss returns its value and gradient from one pass over the
// logits. Softmax-type losses subtract the row maximum before exp (stable
// log-sum-exp) and sum exp in double. Row results go to a double array first
// and are summed in row order afterwards, and elementwise losses are summed in
// fixed chunks of kSumChunk elements whose partial sums are added in chunk
// order: the total never depends on the thread count.
#include "losses/losses.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "activations/avx2_guard.h"
#include "common/thread_pool.h"
#include "losses/losses_avx2.h"

namespace pb {
namespace {

constexpr index_t kSumChunk = 4096;

double row_work(index_t n, index_t c) { return 20.0 * static_cast<double>(n) * static_cast<double>(c); }

template <typename T>
void ce_rows(const T* x, index_t r0, index_t r1, index_t c, const std::int64_t* t, double* loss, T* d,
             T scale, const T* row_scale) {
    PB_IF_AVX2(avx2::ce_rows(x, r0, r1, c, t, loss, d, scale, row_scale));
    for (index_t i = r0; i < r1; ++i) {
        const T* xi = x + i * c;
        T mx = xi[0];
        for (index_t j = 1; j < c; ++j) mx = xi[j] > mx ? xi[j] : mx;
        double s = 0.0;
        T* di = d ? d + i * c : nullptr;
        for (index_t j = 0; j < c; ++j) {
            T e = std::exp(xi[j] - mx);
            if (di) di[j] = e;
            s += static_cast<double>(e);
        }
        if (loss) loss[i] = std::log(s) + static_cast<double>(mx) - static_cast<double>(xi[t[i]]);
        if (di) {
            T sc = row_scale ? row_scale[i] : scale;
            T inv = static_cast<T>(static_cast<double>(sc) / s);
            for (index_t j = 0; j < c; ++j) di[j] *= inv;
            di[t[i]] -= sc;
        }
    }
}

template <typename T>
void softmax_rows(const T* x, index_t r0, index_t r1, index_t c, T* y, bool log) {
    PB_IF_AVX2(avx2::softmax_rows(x, r0, r1, c, y, log));
    for (index_t i = r0; i < r1; ++i) {
        const T* xi = x + i * c;
        T* yi = y + i * c;
        T mx = xi[0];
        for (index_t j = 1; j < c; ++j) mx = xi[j] > mx ? xi[j] : mx;
        double s = 0.0;
        for (index_t j = 0; j < c; ++j) {
            T e = std::exp(xi[j] - mx);
            if (!log) yi[j] = e;
            s += static_cast<double>(e);
        }
        if (log) {
            T ls = static_cast<T>(std::log(s));
            for (index_t j = 0; j < c; ++j) yi[j] = (xi[j] - mx) - ls;
        } else {
            T inv = static_cast<T>(1.0 / s);
            for (index_t j = 0; j < c; ++j) yi[j] *= inv;
        }
    }
}

template <typename T>
double bce_range(const T* z, const T* y, index_t n, T* elem, T* grad, T scale) {
    PB_IF_AVX2(avx2::bce_range(z, y, n, elem, grad, scale));
    double s = 0.0;
    for (index_t i = 0; i < n; ++i) {
        T e = std::exp(-std::fabs(z[i]));
        T l = std::max(z[i], T(0)) - z[i] * y[i] + std::log1p(e);
        if (elem) elem[i] = l;
        if (grad) {
            T r = T(1) / (T(1) + e);
            T sig = z[i] >= 0 ? r : e * r;
            grad[i] = (sig - y[i]) * scale;
        }
        s += static_cast<double>(l);
    }
    return s;
}

template <typename T>
double squared_error_range(const T* a, const T* b, index_t n, T* elem, T* grad, T scale) {
    PB_IF_AVX2(avx2::squared_error_range(a, b, n, elem, grad, scale));
    double s = 0.0;
    for (index_t i = 0; i < n; ++i) {
        T d = a[i] - b[i];
        if (elem) elem[i] = d * d;
        if (grad) grad[i] = T(2) * d * scale;
        s += static_cast<double>(d) * static_cast<double>(d);
    }
    return s;
}

// Sum of f(begin, end) over fixed chunks, added in chunk order.
template <typename F>
double chunked_sum(index_t n, double cost, F&& f) {
    if (n <= 0) return 0.0;
    index_t chunks = (n + kSumChunk - 1) / kSumChunk;
    std::vector<double> part(static_cast<size_t>(chunks), 0.0);
    parallel_for(chunks, cost * static_cast<double>(n), [&](index_t b, index_t e) {
        for (index_t k = b; k < e; ++k) {
            index_t lo = k * kSumChunk, hi = std::min(lo + kSumChunk, n);
            part[static_cast<size_t>(k)] = f(lo, hi);
        }
    });
    double s = 0.0;
    for (double v : part) s += v;
    return s;
}

}  // namespace

void check_class_targets(const char* fn, const std::int64_t* t, index_t n, index_t c) {
    for (index_t i = 0; i < n; ++i)
        if (t[i] < 0 || t[i] >= c)
            throw std::invalid_argument(std::string(fn) + ": target " + std::to_string(t[i]) + " in row " +
                                        std::to_string(i) + " is out of range [0, " + std::to_string(c) + ")");
}

template <typename T>
void softmax_cross_entropy_rows(const T* logits, index_t r0, index_t r1, index_t c, const std::int64_t* targets,
                                double* loss, T* dlogits, T grad_scale) {
    ce_rows(logits, r0, r1, c, targets, loss, dlogits, grad_scale, static_cast<const T*>(nullptr));
}

template <typename T>
double softmax_cross_entropy(const T* logits, index_t n, index_t c, const std::int64_t* targets,
                             T* loss_rows, T* dlogits, T grad_scale) {
    check_class_targets("softmax_cross_entropy", targets, n, c);
    if (n <= 0) return 0.0;
    std::vector<double> loss(static_cast<size_t>(n));
    parallel_for(n, row_work(n, c), [&](index_t b, index_t e) {
        softmax_cross_entropy_rows(logits, b, e, c, targets, loss.data(), dlogits, grad_scale);
    });
    double total = 0.0;
    for (index_t i = 0; i < n; ++i) {
        if (loss_rows) loss_rows[i] = static_cast<T>(loss[static_cast<size_t>(i)]);
        total += loss[static_cast<size_t>(i)];
    }
    return total;
}

template <typename T>
void softmax_cross_entropy_backward(const T* logits, index_t n, index_t c, const std::int64_t* targets,
                                    const T* row_scale, T* dlogits) {
    check_class_targets("softmax_cross_entropy_backward", targets, n, c);
    if (n <= 0) return;
    parallel_for(n, row_work(n, c), [&](index_t b, index_t e) {
        ce_rows(logits, b, e, c, targets, static_cast<double*>(nullptr), dlogits, T(0), row_scale);
    });
}

template <typename T>
void softmax_forward(const T* x, index_t n, index_t c, T* y) {
    if (n <= 0 || c <= 0) return;
    parallel_for(n, row_work(n, c), [&](index_t b, index_t e) { softmax_rows(x, b, e, c, y, false); });
}

template <typename T>
void log_softmax_forward(const T* x, index_t n, index_t c, T* y) {
    if (n <= 0 || c <= 0) return;
    parallel_for(n, row_work(n, c), [&](index_t b, index_t e) { softmax_rows(x, b, e, c, y, true); });
}

template <typename T>
void softmax_backward(const T* gy, const T* y, index_t n, index_t c, T* gx) {
    if (n <= 0 || c <= 0) return;
    parallel_for(n, 3.0 * static_cast<double>(n) * static_cast<double>(c), [&](index_t b, index_t e) {
        PB_IF_AVX2(avx2::softmax_backward_rows(gy, y, b, e, c, gx, false));
        for (index_t i = b; i < e; ++i) {
            const T *g = gy + i * c, *yi = y + i * c;
            double dot = 0.0;
            for (index_t j = 0; j < c; ++j) dot += static_cast<double>(g[j]) * static_cast<double>(yi[j]);
            T dt = static_cast<T>(dot);
            for (index_t j = 0; j < c; ++j) gx[i * c + j] = yi[j] * (g[j] - dt);
        }
    });
}

template <typename T>
void log_softmax_backward(const T* gy, const T* y, index_t n, index_t c, T* gx) {
    if (n <= 0 || c <= 0) return;
    parallel_for(n, row_work(n, c), [&](index_t b, index_t e) {
        PB_IF_AVX2(avx2::softmax_backward_rows(gy, y, b, e, c, gx, true));
        for (index_t i = b; i < e; ++i) {
            const T *g = gy + i * c, *yi = y + i * c;
            double s = 0.0;
            for (index_t j = 0; j < c; ++j) s += static_cast<double>(g[j]);
            T st = static_cast<T>(s);
            for (index_t j = 0; j < c; ++j) gx[i * c + j] = g[j] - std::exp(yi[j]) * st;
        }
    });
}

template <typename T>
double squared_error(const T* a, const T* b, index_t n, T* elem, T* grad, T grad_scale) {
    return chunked_sum(n, 3.0, [&](index_t lo, index_t hi) {
        return squared_error_range(a + lo, b + lo, hi - lo, elem ? elem + lo : nullptr,
                                   grad ? grad + lo : nullptr, grad_scale);
    });
}

template <typename T>
double bce_with_logits(const T* z, const T* y, index_t n, T* elem, T* grad, T grad_scale) {
    return chunked_sum(n, 20.0, [&](index_t lo, index_t hi) {
        return bce_range(z + lo, y + lo, hi - lo, elem ? elem + lo : nullptr, grad ? grad + lo : nullptr,
                         grad_scale);
    });
}

#define PB_INSTANTIATE(T)                                                                                \
    template double softmax_cross_entropy<T>(const T*, index_t, index_t, const std::int64_t*, T*, T*, T); \
    template void softmax_cross_entropy_rows<T>(const T*, index_t, index_t, index_t, const std::int64_t*,  \
                                                double*, T*, T);                                        \
    template void softmax_cross_entropy_backward<T>(const T*, index_t, index_t, const std::int64_t*,     \
                                                    const T*, T*);                                      \
    template void softmax_forward<T>(const T*, index_t, index_t, T*);                                    \
    template void softmax_backward<T>(const T*, const T*, index_t, index_t, T*);                         \
    template void log_softmax_forward<T>(const T*, index_t, index_t, T*);                                \
    template void log_softmax_backward<T>(const T*, const T*, index_t, index_t, T*);                     \
    template double squared_error<T>(const T*, const T*, index_t, T*, T*, T);                            \
    template double bce_with_logits<T>(const T*, const T*, index_t, T*, T*, T);
PB_INSTANTIATE(float)
PB_INSTANTIATE(double)
#undef PB_INSTANTIATE

}  // namespace pb
