// The optimiser updates in vector form, over a vector type V (the float or
// double vector of one ISA: simd_avx2.h's F32 / F64, optim_avx512.cpp's zmm
// ones): optim.cpp's loops with the same operations in the same order, so
// every lane of every width gets the same bits (FMA contractions make the last
// bit differ from the portable path). Included only by optim_avx2.cpp and
// optim_avx512.cpp: everything is in an anonymous namespace, so each object
// file keeps its own copy, compiled for its ISA (nothing is shared with
// generic-compiled code).
//
// V provides T (element), R (register), W (lanes) and load, store, set1, add,
// sub, mul, div, fma (a b + c), fnma (c - a b), sqrt, max, neg.
#pragma once
#include <cstring>

#include "common/types.h"
#include "optim/optim_coeffs.h"

namespace pb {
namespace {

// ATen's lerp with a scalar weight: a + w (b - a) if |w| < 0.5 else b - (b - a)(1 - w).
template <class V>
struct Lerp {
    bool small;
    typename V::R w, one_minus_w;
    explicit Lerp(double weight)
        : small(weight < 0.5 && weight > -0.5), w(V::set1(weight)),
          one_minus_w(V::sub(V::set1(1.0), V::set1(weight))) {}
    typename V::R operator()(typename V::R a, typename V::R b) const {
        typename V::R d = V::sub(b, a);
        return small ? V::fma(w, d, a) : V::fnma(d, one_minus_w, b);
    }
};

// Runs body over full vectors, then once over the tail through zero-padded
// copies; `body` reads and writes via the Ref views it is given (a null array
// gives a null view). arrs[1] is the read-only gradient: never copied back.
template <class V>
struct Ref {
    typename V::T* p;
    typename V::R load() const { return V::load(p); }
    void store(typename V::R v) const { V::store(p, v); }
};

template <class V, int N, class F>
void for_vectors(index_t n, typename V::T* const (&arrs)[N], F&& body) {
    using T = typename V::T;
    index_t i = 0;
    for (; i + V::W <= n; i += V::W) {
        Ref<V> r[N];
        for (int a = 0; a < N; ++a) r[a].p = arrs[a] ? arrs[a] + i : nullptr;
        body(r);
    }
    if (i < n) {
        index_t k = n - i;
        T tmp[N][V::W] = {};
        Ref<V> r[N];
        for (int a = 0; a < N; ++a) {
            r[a].p = arrs[a] ? tmp[a] : nullptr;
            if (arrs[a]) std::memcpy(tmp[a], arrs[a] + i, static_cast<size_t>(k) * sizeof(T));
        }
        body(r);
        for (int a = 0; a < N; ++a)
            if (arrs[a] && a != 1) std::memcpy(arrs[a] + i, tmp[a], static_cast<size_t>(k) * sizeof(T));
    }
}

template <class V>
void sgd_t(typename V::T* p, const typename V::T* grad, typename V::T* buf, index_t n, const SgdCoeffs& k) {
    using R = typename V::R;
    using T = typename V::T;
    const R neg_lr = V::set1(-k.lr), mom = V::set1(k.momentum), damp1 = V::set1(k.one_minus_dampening),
            wd = V::set1(k.weight_decay);
    T* const arrs[3] = {p, const_cast<T*>(grad), k.momentum != 0 ? buf : nullptr};
    for_vectors<V, 3>(n, arrs, [&](Ref<V>* r) {
        R pv = r[0].load();
        R g = r[1].load();
        if (k.maximize) g = V::neg(g);
        if (k.weight_decay != 0) g = V::fma(wd, pv, g);
        if (k.momentum != 0) {
            R b = k.first_step ? g : V::fma(damp1, g, V::mul(r[2].load(), mom));
            r[2].store(b);
            g = k.nesterov ? V::fma(mom, b, g) : b;
        }
        r[0].store(V::fma(neg_lr, g, pv));
    });
}

// Bound by the divider, not by memory. PyTorch's formula takes a square root
// and two divisions an element (a ymm of vsqrtps 1.37 ns, of vdivps 1.09 ns on
// Zen 4, measured alone): 0.41 ns an element on one core, with the buffers in
// L2 as in L3. Multiplying by 1 / sqrt(1 - beta2^t), rounded once to T and
// fused with + eps, drops one division: 0.31 ns. Without the square root and
// the remaining division the loop would take 0.25 ns (L2 bandwidth), so
// approximating those would gain little and cost the quotient's exactness.
// Dividing by the constant exactly, through its reciprocal and two Markstein
// corrections with a range check per vector, measured 0.52 ns.
template <class V>
void adam_t(typename V::T* p, const typename V::T* grad, typename V::T* m, typename V::T* v, typename V::T* vmax,
            index_t n, const AdamCoeffs& k) {
    using R = typename V::R;
    using T = typename V::T;
    const R keep = V::set1(k.lr_wd_keep), wd = V::set1(k.weight_decay), b2 = V::set1(k.beta2),
            ob2 = V::set1(k.one_minus_beta2), neg_ss = V::set1(-k.step_size), inv_bc2 = V::set1(k.inv_bc2_sqrt),
            eps = V::set1(k.eps);
    const Lerp<V> lerp(k.w1);
    T* const arrs[5] = {p, const_cast<T*>(grad), m, v, k.amsgrad ? vmax : nullptr};
    for_vectors<V, 5>(n, arrs, [&](Ref<V>* r) {
        R pv = r[0].load();
        R g = r[1].load();
        if (k.maximize) g = V::neg(g);
        if (k.decoupled) pv = V::mul(pv, keep);
        else if (k.weight_decay != 0) g = V::fma(wd, pv, g);
        R mv = lerp(r[2].load(), g);
        R vv = V::fma(V::mul(ob2, g), g, V::mul(r[3].load(), b2));
        r[2].store(mv);
        r[3].store(vv);
        if (k.amsgrad) {
            vv = V::max(r[4].load(), vv);
            r[4].store(vv);
        }
        R denom = V::fma(V::sqrt(vv), inv_bc2, eps);
        r[0].store(V::add(pv, V::div(V::mul(neg_ss, mv), denom)));
    });
}

template <class V>
void rmsprop_t(typename V::T* p, const typename V::T* grad, typename V::T* sq, typename V::T* gavg,
               typename V::T* buf, index_t n, const RmspropCoeffs& k) {
    using R = typename V::R;
    using T = typename V::T;
    const R neg_lr = V::set1(-k.lr), a = V::set1(k.alpha), oa = V::set1(k.one_minus_alpha), eps = V::set1(k.eps),
            wd = V::set1(k.weight_decay), mom = V::set1(k.momentum);
    const Lerp<V> lerp(k.one_minus_alpha);
    T* const arrs[5] = {p, const_cast<T*>(grad), sq, k.centered ? gavg : nullptr, k.momentum > 0 ? buf : nullptr};
    for_vectors<V, 5>(n, arrs, [&](Ref<V>* r) {
        R pv = r[0].load();
        R g = r[1].load();
        if (k.maximize) g = V::neg(g);
        if (k.weight_decay != 0) g = V::fma(wd, pv, g);
        R s = V::fma(V::mul(oa, g), g, V::mul(r[2].load(), a));
        r[2].store(s);
        R avg;
        if (k.centered) {
            R ga = lerp(r[3].load(), g);
            r[3].store(ga);
            avg = V::add(V::sqrt(V::fnma(ga, ga, s)), eps);
        } else {
            avg = V::add(V::sqrt(s), eps);
        }
        if (k.momentum > 0) {
            R b = V::fma(r[4].load(), mom, V::div(g, avg));
            r[4].store(b);
            r[0].store(V::fma(neg_lr, b, pv));
        } else {
            r[0].store(V::add(pv, V::div(V::mul(neg_lr, g), avg)));
        }
    });
}

}  // namespace
}  // namespace pb

// optim_simd.h's six entry points, defined over the float and double vectors
// VF and VD (inside the ISA's namespace).
#define PB_OPTIM_SIMD_DEFS(VF, VD)                                                                             \
    void sgd_range(float* p, const float* g, float* buf, index_t n, const SgdCoeffs& k) {                      \
        sgd_t<VF>(p, g, buf, n, k);                                                                            \
    }                                                                                                          \
    void sgd_range(double* p, const double* g, double* buf, index_t n, const SgdCoeffs& k) {                   \
        sgd_t<VD>(p, g, buf, n, k);                                                                            \
    }                                                                                                          \
    void adam_range(float* p, const float* g, float* m, float* v, float* vmax, index_t n, const AdamCoeffs& k) { \
        adam_t<VF>(p, g, m, v, vmax, n, k);                                                                    \
    }                                                                                                          \
    void adam_range(double* p, const double* g, double* m, double* v, double* vmax, index_t n,                \
                    const AdamCoeffs& k) {                                                                     \
        adam_t<VD>(p, g, m, v, vmax, n, k);                                                                    \
    }                                                                                                          \
    void rmsprop_range(float* p, const float* g, float* sq, float* gavg, float* buf, index_t n,                \
                       const RmspropCoeffs& k) {                                                               \
        rmsprop_t<VF>(p, g, sq, gavg, buf, n, k);                                                              \
    }                                                                                                          \
    void rmsprop_range(double* p, const double* g, double* sq, double* gavg, double* buf, index_t n,          \
                       const RmspropCoeffs& k) {                                                               \
        rmsprop_t<VD>(p, g, sq, gavg, buf, n, k);                                                              \
    }
