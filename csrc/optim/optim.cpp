// Optimiser updates: one fused in-place pass per parameter, PyTorch's formulas
// (torch/optim/{sgd,adam,rmsprop}.py, `_single_tensor_*`) in PyTorch's order of
// operations, with one exception: Adam's denominator multiplies sqrt(v) by
// 1 / sqrt(1 - beta2^t) where PyTorch divides by sqrt(1 - beta2^t) (one more
// rounding, of a per-step constant: a denominator within about an ulp of
// PyTorch's, for a division less an element; see adam_t in optim_kernels_x86.h).
// Per-step scalars are computed in double here (PyTorch computes them as
// Python floats); the elementwise arithmetic runs in the parameter's type, like
// PyTorch's CPU kernels:
//   lerp(a, b, w) = |w| < 0.5 ? a + w (b - a) : b - (b - a)(1 - w)   (ATen's lerp)
//   addcmul: a + value t1 t2;  addcdiv: a + value t1 / t2.
#include "optim/optim.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "activations/avx2_guard.h"
#include "common/thread_pool.h"
#include "optim/optim_simd.h"
#include "optim/optim_coeffs.h"

namespace pb {
namespace {

constexpr index_t kChunk = 8192;

// The updates stream their buffers (SGD 12-16 bytes an element, Adam 28 plus
// a square root and two divisions) at about one element per cycle or less,
// where a GEMM does 64 flops per cycle: in the thread pool's flop units an
// element costs 64-128. So a 784 x 128 float weight (100k elements: SGD 18 us,
// Adam 47 us on one Zen 4 core; 10 and 26 us on two) splits over two threads,
// each updating about the half of the gradient its core has just written in
// the dW GEMM.
constexpr double kSgdCost = 64.0;
constexpr double kAdamCost = 128.0;
constexpr double kRmspropCost = 128.0;

template <typename T>
T lerp(T a, T b, T w) {
    return std::fabs(w) < T(0.5) ? a + w * (b - a) : b - (b - a) * (T(1) - w);
}

template <typename T>
void sgd_range(T* p, const T* grad, T* buf, index_t n, const SgdCoeffs& k) {
    PB_IF_AVX512(avx512::sgd_range(p, grad, buf, n, k));
    PB_IF_AVX2(avx2::sgd_range(p, grad, buf, n, k));
    const T lr = T(k.lr), mom = T(k.momentum), damp1 = T(k.one_minus_dampening), wd = T(k.weight_decay);
    for (index_t i = 0; i < n; ++i) {
        T g = k.maximize ? -grad[i] : grad[i];
        if (k.weight_decay != 0) g = g + wd * p[i];
        if (k.momentum != 0) {
            T b = k.first_step ? g : buf[i] * mom + damp1 * g;
            buf[i] = b;
            g = k.nesterov ? g + mom * b : b;
        }
        p[i] = p[i] + (-lr) * g;
    }
}

template <typename T>
void adam_range(T* p, const T* grad, T* m, T* v, T* vmax, index_t n, const AdamCoeffs& k) {
    PB_IF_AVX512(avx512::adam_range(p, grad, m, v, vmax, n, k));
    PB_IF_AVX2(avx2::adam_range(p, grad, m, v, vmax, n, k));
    const T keep = T(k.lr_wd_keep), wd = T(k.weight_decay), w1 = T(k.w1), b2 = T(k.beta2),
            ob2 = T(k.one_minus_beta2), neg_ss = T(-k.step_size), inv_bc2 = T(k.inv_bc2_sqrt),
            eps = T(k.eps);
    for (index_t i = 0; i < n; ++i) {
        T g = k.maximize ? -grad[i] : grad[i];
        T pi = p[i];
        if (k.decoupled) pi = pi * keep;
        else if (k.weight_decay != 0) g = g + wd * pi;
        T mi = lerp(m[i], g, w1);
        T vi = v[i] * b2 + ob2 * g * g;
        m[i] = mi;
        v[i] = vi;
        if (k.amsgrad) {
            vi = std::max(vmax[i], vi);
            vmax[i] = vi;
        }
        T denom = std::sqrt(vi) * inv_bc2 + eps;
        p[i] = pi + neg_ss * mi / denom;
    }
}

template <typename T>
void rmsprop_range(T* p, const T* grad, T* sq, T* gavg, T* buf, index_t n, const RmspropCoeffs& k) {
    PB_IF_AVX512(avx512::rmsprop_range(p, grad, sq, gavg, buf, n, k));
    PB_IF_AVX2(avx2::rmsprop_range(p, grad, sq, gavg, buf, n, k));
    const T lr = T(k.lr), a = T(k.alpha), oa = T(k.one_minus_alpha), eps = T(k.eps), wd = T(k.weight_decay),
            mom = T(k.momentum);
    for (index_t i = 0; i < n; ++i) {
        T g = k.maximize ? -grad[i] : grad[i];
        if (k.weight_decay != 0) g = g + wd * p[i];
        T s = sq[i] * a + oa * g * g;
        sq[i] = s;
        T avg;
        if (k.centered) {
            T ga = lerp(gavg[i], g, oa);
            gavg[i] = ga;
            avg = std::sqrt(s + T(-1) * ga * ga) + eps;
        } else {
            avg = std::sqrt(s) + eps;
        }
        if (k.momentum > 0) {
            T b = buf[i] * mom + g / avg;
            buf[i] = b;
            p[i] = p[i] + (-lr) * b;
        } else {
            p[i] = p[i] + (-lr) * g / avg;
        }
    }
}

template <typename F>
void over_chunks(index_t n, double cost, F&& f) {
    if (n <= 0) return;
    index_t tasks = (n + kChunk - 1) / kChunk;
    parallel_for(tasks, cost * static_cast<double>(n), [&](index_t b, index_t e) {
        index_t lo = b * kChunk, hi = std::min(e * kChunk, n);
        f(lo, hi - lo);
    });
}

template <typename T>
T* at(T* p, index_t i) { return p ? p + i : nullptr; }

}  // namespace

template <typename T>
ParamUpdate<T> ParamUpdate<T>::sgd(T* p, const T* grad, T* buf, index_t n, double lr, double momentum,
                                   double dampening, double weight_decay, bool nesterov, bool first_step,
                                   bool maximize) {
    if (n > 0 && momentum != 0 && !buf) throw std::invalid_argument("sgd_update: momentum != 0 needs a momentum buffer");
    if (nesterov && (momentum <= 0 || dampening != 0))
        throw std::invalid_argument("sgd_update: Nesterov momentum requires a momentum and zero dampening");
    ParamUpdate u(Kind::sgd, p, grad, buf, nullptr, nullptr, n);
    u.sgd_ = SgdCoeffs{lr, momentum, 1.0 - dampening, weight_decay, nesterov, first_step, maximize};
    return u;
}

template <typename T>
ParamUpdate<T> ParamUpdate<T>::adam(T* p, const T* grad, T* m, T* v, T* vmax, index_t n, double lr, double beta1,
                                    double beta2, double eps, double weight_decay, bool decoupled,
                                    std::int64_t step, bool maximize) {
    if (step < 1) throw std::invalid_argument("adam_update: step must be >= 1 (it counts this update)");
    ParamUpdate u(Kind::adam, p, grad, m, v, vmax, n);
    AdamCoeffs& k = u.adam_;
    k.lr_wd_keep = decoupled ? 1.0 - lr * weight_decay : 1.0;
    k.weight_decay = decoupled ? 0.0 : weight_decay;
    k.w1 = 1.0 - beta1;
    k.beta2 = beta2;
    k.one_minus_beta2 = 1.0 - beta2;
    double bc1 = 1.0 - std::pow(beta1, static_cast<double>(step));
    double bc2 = 1.0 - std::pow(beta2, static_cast<double>(step));
    k.step_size = lr / bc1;
    k.inv_bc2_sqrt = 1.0 / std::sqrt(bc2);
    k.eps = eps;
    k.decoupled = decoupled;
    k.amsgrad = vmax != nullptr;
    k.maximize = maximize;
    return u;
}

template <typename T>
ParamUpdate<T> ParamUpdate<T>::rmsprop(T* p, const T* grad, T* sq, T* gavg, T* buf, index_t n, double lr,
                                       double alpha, double eps, double weight_decay, double momentum,
                                       bool centered, bool maximize) {
    if (n > 0 && centered && !gavg) throw std::invalid_argument("rmsprop_update: centered needs a grad_avg buffer");
    if (n > 0 && momentum > 0 && !buf) throw std::invalid_argument("rmsprop_update: momentum > 0 needs a momentum buffer");
    ParamUpdate u(Kind::rmsprop, p, grad, sq, gavg, buf, n);
    u.rmsprop_ = RmspropCoeffs{lr, alpha, 1.0 - alpha, eps, weight_decay, momentum, centered, maximize};
    return u;
}

template <typename T>
void ParamUpdate<T>::apply(index_t o, index_t len) const {
    switch (kind_) {
        case Kind::none:
            return;
        case Kind::sgd:
            return sgd_range(p_ + o, grad_ + o, at(state_[0], o), len, sgd_);
        case Kind::adam:
            return adam_range(p_ + o, grad_ + o, state_[0] + o, state_[1] + o, at(state_[2], o), len, adam_);
        case Kind::rmsprop:
            return rmsprop_range(p_ + o, grad_ + o, state_[0] + o, at(state_[1], o), at(state_[2], o), len, rmsprop_);
    }
}

template <typename T>
void ParamUpdate<T>::apply_all() const {
    const double cost = kind_ == Kind::sgd ? kSgdCost : kind_ == Kind::adam ? kAdamCost : kRmspropCost;
    if (kind_ != Kind::none) over_chunks(n_, cost, [&](index_t o, index_t len) { apply(o, len); });
}

template <typename T>
void sgd_update(T* p, const T* grad, T* buf, index_t n, double lr, double momentum, double dampening,
                double weight_decay, bool nesterov, bool first_step, bool maximize) {
    ParamUpdate<T>::sgd(p, grad, buf, n, lr, momentum, dampening, weight_decay, nesterov, first_step, maximize)
        .apply_all();
}

template <typename T>
void adam_update(T* p, const T* grad, T* m, T* v, T* vmax, index_t n, double lr, double beta1, double beta2,
                 double eps, double weight_decay, bool decoupled, std::int64_t step, bool maximize) {
    ParamUpdate<T>::adam(p, grad, m, v, vmax, n, lr, beta1, beta2, eps, weight_decay, decoupled, step, maximize)
        .apply_all();
}

template <typename T>
void rmsprop_update(T* p, const T* grad, T* sq, T* gavg, T* buf, index_t n, double lr, double alpha,
                    double eps, double weight_decay, double momentum, bool centered, bool maximize) {
    ParamUpdate<T>::rmsprop(p, grad, sq, gavg, buf, n, lr, alpha, eps, weight_decay, momentum, centered, maximize)
        .apply_all();
}

#define PB_INSTANTIATE(T)                                                                                  \
    template void sgd_update<T>(T*, const T*, T*, index_t, double, double, double, double, bool, bool, bool); \
    template void adam_update<T>(T*, const T*, T*, T*, T*, index_t, double, double, double, double, double,  \
                                 bool, std::int64_t, bool);                                                 \
    template void rmsprop_update<T>(T*, const T*, T*, T*, T*, index_t, double, double, double, double,      \
                                    double, bool, bool);
PB_INSTANTIATE(float)
PB_INSTANTIATE(double)
template class ParamUpdate<float>;
template class ParamUpdate<double>;
#undef PB_INSTANTIATE

}  // namespace pb
