// Native tests of the elementwise modules (activations, losses, optimiser
// updates, reductions) against double-precision scalar references. Run by
// test_main.cpp on every ISA and at 1 and 2 threads.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <stdexcept>
#include <utility>
#include <vector>

#include "activations/activations.h"
#include "common/dispatch.h"
#include "losses/losses.h"
#include "optim/optim.h"
#include "reduce/reduce.h"
#include "tests/check.h"
#include "tests/tests.h"

using pb::Activation;
using pb::index_t;
using pbtest::close;

namespace {

const char* kActNames[] = {"identity", "relu", "leaky_relu", "elu", "sigmoid",
                           "tanh", "gelu", "gelu_tanh", "softplus"};

double ref_sigmoid(double z) { return z >= 0 ? 1 / (1 + std::exp(-z)) : std::exp(z) / (1 + std::exp(z)); }

// Reference f(z) and f'(z) in double, straight from the table in activations.h.
double ref_f(Activation a, const pb::ActParams& p, double z) {
    switch (a) {
        case Activation::identity: return z;
        case Activation::relu: return z > 0 ? z : 0.0;
        case Activation::leaky_relu: return z > 0 ? z : p.alpha * z;
        case Activation::elu: return z > 0 ? z : p.alpha * std::expm1(z);
        case Activation::sigmoid: return ref_sigmoid(z);
        case Activation::tanh: return std::tanh(z);
        case Activation::gelu: return 0.5 * z * std::erfc(-z / std::sqrt(2.0));
        case Activation::gelu_tanh: {
            double u = std::sqrt(2 / M_PI) * (z + 0.044715 * z * z * z);
            return 0.5 * z * (1 + std::tanh(u));
        }
        case Activation::softplus:
            return p.beta * z > p.threshold ? z : std::log1p(std::exp(-std::fabs(p.beta * z))) / p.beta +
                                                      std::fmax(z, 0.0);
    }
    return 0;
}

double ref_df(Activation a, const pb::ActParams& p, double z) {
    switch (a) {
        case Activation::identity: return 1;
        case Activation::relu: return z > 0 ? 1 : 0;
        case Activation::leaky_relu: return z > 0 ? 1 : p.alpha;
        case Activation::elu: return z > 0 ? 1 : p.alpha * std::exp(z);
        case Activation::sigmoid: { double s = ref_sigmoid(z); return s * (1 - s); }
        case Activation::tanh: { double t = std::tanh(z); return 1 - t * t; }
        case Activation::gelu: return 0.5 * std::erfc(-z / std::sqrt(2.0)) + z * std::exp(-0.5 * z * z) / std::sqrt(2 * M_PI);
        case Activation::gelu_tanh: {
            double c = std::sqrt(2 / M_PI), u = c * (z + 0.044715 * z * z * z), t = std::tanh(u);
            return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * c * (1 + 3 * 0.044715 * z * z);
        }
        case Activation::softplus: return p.beta * z > p.threshold ? 1 : ref_sigmoid(p.beta * z);
    }
    return 0;
}

template <typename T>
std::vector<T> test_inputs(std::size_t n_random) {
    std::vector<T> z = {T(0), T(-0.0), T(1e-30), T(-1e-30), T(1), T(-1), T(0.5), T(-0.5), T(0.6),
                        T(-0.7), T(2), T(-3), T(5.5), T(-8), T(15), T(-20), T(30), T(-40), T(88), T(-88),
                        T(100), T(-100), T(700), T(-700), T(1000), T(-1000)};
    std::mt19937 gen(7);
    std::normal_distribution<double> nd(0.0, 3.0);
    for (std::size_t i = 0; i < n_random; ++i) z.push_back(static_cast<T>(nd(gen)));
    return z;
}

template <typename T>
int activation_tests_t() {
    int fails = 0;
    const double rtol = std::is_same<T, float>::value ? 3e-6 : 4e-14;
    const double atol = std::is_same<T, float>::value ? 1e-30 : 1e-300;
    std::vector<T> z = test_inputs<T>(1000);
    const index_t n = static_cast<index_t>(z.size());
    for (int ai = 0; ai < pb::kNumActivations; ++ai) {
        Activation a = static_cast<Activation>(ai);
        for (double alpha : {0.01, 1.0, -0.2}) {
            if (alpha < 0 && a != Activation::leaky_relu && a != Activation::elu) continue;
            pb::ActParams p;
            p.alpha = alpha;
            std::vector<T> y(z.size()), g(z.size()), up(z.size(), T(1));
            pb::act_forward(a, p, z.data(), y.data(), n);
            const bool from_y = pb::derivative_uses_output(a, p);
            pb::act_backward(a, p, up.data(), from_y ? y.data() : z.data(), g.data(), n);
            for (index_t i = 0; i < n; ++i) {
                double zi = z[i];
                double want = ref_f(a, p, zi);
                // A float result is compared with the double value rounded through f(float z).
                bool ok = close(y[i], want, rtol, atol) || std::fabs(y[i] - want) < rtol * std::fabs(zi) * 4;
                PB_CHECK(fails, ok && std::isfinite(static_cast<double>(y[i])), "%s(%.9g) alpha=%g = %.17g, want %.17g",
                         kActNames[ai], zi, alpha, static_cast<double>(y[i]), want);
                double dwant = ref_df(a, p, zi);
                // Derivatives from y carry the rounding of y: scale the tolerance by the size of f.
                double dtol = from_y ? 8 * rtol * (1 + std::fabs(want)) : 8 * rtol;
                bool dok = std::fabs(g[i] - dwant) <= dtol * (1 + std::fabs(dwant) * (1 + std::fabs(zi)));
                PB_CHECK(fails, dok && std::isfinite(static_cast<double>(g[i])), "%s'(%.9g) alpha=%g = %.17g, want %.17g",
                         kActNames[ai], zi, alpha, static_cast<double>(g[i]), dwant);
            }
        }
    }
    // GELU keeps its relative accuracy in the left tail, down to where z Phi(z) leaves the
    // normal range (reference in long double, so the rounding of z/sqrt2 does not matter).
    {
        const bool f32 = std::is_same<T, float>::value;
        // The portable float64 path takes erfc of the rounded z/sqrt2: error up to ~z^2 ulp.
        const bool exact_sq = f32 || pb::active_isa() >= pb::Isa::avx2;
        const double trel0 = f32 ? 1e-6 : 2e-15;
        const double zmin = f32 ? -12.5 : -37.0;
        std::vector<T> zt, yt, gt;
        for (double v = zmin; v <= 6.0; v += 0.01234) zt.push_back(static_cast<T>(v));
        yt.resize(zt.size());
        gt.resize(zt.size());
        std::vector<T> ones(zt.size(), T(1));
        pb::ActParams p;
        const index_t nt = static_cast<index_t>(zt.size());
        pb::act_forward(Activation::gelu, p, zt.data(), yt.data(), nt);
        pb::act_backward(Activation::gelu, p, ones.data(), zt.data(), gt.data(), nt);
        for (index_t i = 0; i < nt; ++i) {
            long double zl = zt[static_cast<std::size_t>(i)];
            long double cdf = 0.5L * std::erfc(-zl / std::sqrt(2.0L));
            long double pdf = std::exp(-0.5L * zl * zl) / std::sqrt(2.0L * 3.14159265358979323846264338327950288L);
            double want = static_cast<double>(zl * cdf);
            const double trel = exact_sq ? trel0 : trel0 + 4e-16 * static_cast<double>(zl * zl);
            double got = yt[static_cast<std::size_t>(i)];
            PB_CHECK(fails, close(got, want, trel, 0), "gelu tail (%s) z=%.17g: %.17g want %.17g (rel %.3g)",
                     f32 ? "f32" : "f64", static_cast<double>(zl), got, want, std::fabs(got / want - 1));
            // f' = Phi + z phi cancels near z = -0.75: relative to the larger term.
            double dwant = static_cast<double>(cdf + zl * pdf);
            double dscale = static_cast<double>(cdf > std::fabs(zl * pdf) ? cdf : std::fabs(zl * pdf));
            double dgot = gt[static_cast<std::size_t>(i)];
            PB_CHECK(fails, std::fabs(dgot - dwant) <= 2 * trel * dscale, "gelu' tail z=%.17g: %.17g want %.17g",
                     static_cast<double>(zl), dgot, dwant);
        }
    }
    // Huge and infinite z: no NaN anywhere; GELUs saturate to z / -0 and f' to 1 / 0
    // (z^2, z^3 overflow used to give inf * 0 = NaN in the derivatives, -inf * 0 in gelu(-inf)).
    {
        const T inf = std::numeric_limits<T>::infinity();
        const T big = std::numeric_limits<T>::max();
        std::vector<T> zh = {T(1e20), T(1e30), big, inf, T(41), T(1e5)};
        const std::size_t nh = zh.size();
        for (std::size_t i = 0; i < nh; ++i) zh.push_back(-zh[i]);
        if (!std::is_same<T, float>::value)
            for (double v : {1e155, -1e155, 1e300, -1e300}) zh.push_back(static_cast<T>(v));
        for (int rep = 0; rep < 2; ++rep) zh.insert(zh.end(), zh.begin(), zh.begin() + 8);  // vectors + tail
        const index_t n = static_cast<index_t>(zh.size());
        std::vector<T> y(zh.size()), g(zh.size()), ones(zh.size(), T(1));
        pb::ActParams p;
        p.alpha = 1.0;
        for (int ai = 0; ai < pb::kNumActivations; ++ai) {
            const auto act = static_cast<Activation>(ai);
            pb::act_forward(act, p, zh.data(), y.data(), n);
            const T* saved = pb::derivative_uses_output(act, p) ? y.data() : zh.data();
            pb::act_backward(act, p, ones.data(), saved, g.data(), n);
            for (std::size_t i = 0; i < zh.size(); ++i) {
                PB_CHECK(fails, !std::isnan(y[i]) && !std::isnan(g[i]), "%s at z=%g: y=%g f'=%g",
                         kActNames[ai], static_cast<double>(zh[i]), static_cast<double>(y[i]),
                         static_cast<double>(g[i]));
                if (act == Activation::gelu || act == Activation::gelu_tanh) {
                    const bool pos = zh[i] > 0;
                    PB_CHECK(fails, pos ? y[i] == zh[i] : (y[i] == 0 && std::signbit(y[i])),
                             "%s(%g) = %g", kActNames[ai], static_cast<double>(zh[i]), static_cast<double>(y[i]));
                    PB_CHECK(fails, g[i] == (pos ? T(1) : T(0)), "%s'(%g) = %g", kActNames[ai],
                             static_cast<double>(zh[i]), static_cast<double>(g[i]));
                }
            }
        }
    }
    // ReLU: derivative 0 at 0; NaN propagates through the forward pass.
    {
        pb::ActParams p;
        T zz[3] = {T(0), std::numeric_limits<T>::quiet_NaN(), T(-1)}, yy[3], gg[3], uu[3] = {1, 1, 1};
        pb::act_forward(Activation::relu, p, zz, yy, 3);
        pb::act_backward(Activation::relu, p, uu, yy, gg, 3);
        PB_CHECK(fails, gg[0] == 0 && std::isnan(yy[1]) && yy[2] == 0, "relu at 0 / NaN");
        for (int ai = 0; ai < pb::kNumActivations; ++ai) {
            T nan = std::numeric_limits<T>::quiet_NaN(), out;
            pb::act_forward(static_cast<Activation>(ai), p, &nan, &out, 1);
            PB_CHECK(fails, std::isnan(out), "%s(NaN) is not NaN", kActNames[ai]);
        }
    }
    // bias_act_forward on a strided block and act_backward_bias's fused db, all sizes.
    for (index_t rows : {0, 1, 3, 17, 300}) {
        for (index_t cols : {0, 1, 7, 8, 9, 16, 17, 300, 1024}) {
            pb::ActParams p;
            const index_t ldc = cols + 3, ldp = cols + 1;
            std::vector<T> c(static_cast<std::size_t>(rows * ldc + 1)), pre(static_cast<std::size_t>(rows * ldp + 1), T(-7));
            std::vector<T> bias(static_cast<std::size_t>(cols) + 1);
            std::mt19937 gen(static_cast<unsigned>(rows * 1000 + cols));
            std::normal_distribution<double> nd(0.0, 2.0);
            for (auto& v : c) v = static_cast<T>(nd(gen));
            for (auto& v : bias) v = static_cast<T>(nd(gen));
            std::vector<T> c0 = c;
            pb::bias_act_forward(Activation::tanh, p, c.data(), rows, cols, ldc, bias.data(), pre.data(), ldp);
            for (index_t i = 0; i < rows; ++i)
                for (index_t j = 0; j < ldc; ++j) {
                    double orig = c0[static_cast<std::size_t>(i * ldc + j)];
                    double got = c[static_cast<std::size_t>(i * ldc + j)];
                    if (j >= cols) {
                        PB_CHECK(fails, got == orig, "bias_act_forward wrote outside the block");
                        continue;
                    }
                    T zt = static_cast<T>(orig) + bias[static_cast<std::size_t>(j)];
                    PB_CHECK(fails, pre[static_cast<std::size_t>(i * ldp + j)] == zt, "preact mismatch");
                    PB_CHECK(fails, close(got, std::tanh(static_cast<double>(zt)), 4 * rtol, 4 * rtol), "bias_act tanh");
                }
            // fused backward + db
            std::vector<T> up(static_cast<std::size_t>(rows * cols)), y(up.size()), g(up.size());
            for (auto& v : up) v = static_cast<T>(nd(gen));
            for (auto& v : y) v = static_cast<T>(std::tanh(nd(gen)));
            std::vector<T> db(static_cast<std::size_t>(cols), T(0.5));
            pb::act_backward_bias(Activation::tanh, p, up.data(), y.data(), g.data(), rows, cols, db.data(), true);
            for (index_t j = 0; j < cols; ++j) {
                double s = 0.5;
                for (index_t i = 0; i < rows; ++i) {
                    std::size_t k = static_cast<std::size_t>(i * cols + j);
                    double gw = static_cast<double>(up[k]) * (1 - static_cast<double>(y[k]) * y[k]);
                    PB_CHECK(fails, close(g[k], gw, 4 * rtol, 4 * rtol), "act_backward_bias g");
                    s += gw;
                }
                PB_CHECK(fails, close(db[static_cast<std::size_t>(j)], s, 8 * rtol, 8 * rtol * rows),
                         "act_backward_bias db[%lld] = %g want %g", static_cast<long long>(j),
                         static_cast<double>(db[static_cast<std::size_t>(j)]), s);
            }
            // The order of db's sums is part of the contract (the same bits for
            // any thread count and either ISA): each column's g summed over rows
            // in order, in double, from zero.
            std::vector<T> db2(static_cast<std::size_t>(cols), T(0.5));
            pb::act_backward_bias(Activation::tanh, p, up.data(), y.data(), g.data(), rows, cols, db2.data(), false);
            for (index_t j = 0; j < cols; ++j) {
                double s = 0;
                for (index_t i = 0; i < rows; ++i) s += static_cast<double>(g[static_cast<std::size_t>(i * cols + j)]);
                PB_CHECK(fails, db2[static_cast<std::size_t>(j)] == static_cast<T>(s),
                         "act_backward_bias db[%lld] = %a, not the row-order double sum %a",
                         static_cast<long long>(j), static_cast<double>(db2[static_cast<std::size_t>(j)]), s);
            }
            // act_backward_block (the compiled step's dx epilogue), in place on
            // four blocks that tile the matrix, gives act_backward_bias's g and
            // act_backward's bit for bit, for every activation.
            for (int ai = 0; ai < pb::kNumActivations; ++ai) {
                const Activation act = static_cast<Activation>(ai);
                std::vector<T> want(up.size()), plain(up.size()), got = up, sums(static_cast<std::size_t>(cols));
                pb::act_backward_bias(act, p, up.data(), y.data(), want.data(), rows, cols, sums.data(), false);
                pb::act_backward(act, p, up.data(), y.data(), plain.data(), rows * cols);
                const index_t r1 = rows / 2, c1 = cols / 3;
                for (auto [i0, i1] : {std::pair<index_t, index_t>{0, r1}, {r1, rows}})
                    for (auto [j0, j1] : {std::pair<index_t, index_t>{0, c1}, {c1, cols}}) {
                        T* b = got.data() + i0 * cols;
                        pb::act_backward_block(act, p, b, y.data() + i0 * cols, b, i1 - i0, cols, j0, j1);
                    }
                // (the same value and sign, or both NaN)
                auto same = [](T a, T b) { return (a == b && std::signbit(a) == std::signbit(b)) || (a != a && b != b); };
                for (std::size_t k = 0; k < up.size(); ++k) {
                    PB_CHECK(fails, same(got[k], want[k]), "%s: act_backward_block g[%zu] = %a, act_backward_bias's %a",
                             kActNames[ai], k, static_cast<double>(got[k]), static_cast<double>(want[k]));
                    PB_CHECK(fails, same(plain[k], want[k]), "%s: act_backward g[%zu] = %a, act_backward_bias's %a",
                             kActNames[ai], k, static_cast<double>(plain[k]), static_cast<double>(want[k]));
                }
            }
        }
    }
    // Maxout: first maximum wins, NaN wins, backward routes.
    {
        const index_t pieces = 3, n2 = 4;
        T nan = std::numeric_limits<T>::quiet_NaN();
        T zz[pieces * n2] = {1, 5, 2, nan, 3, 5, 2, 0, 2, 1, 7, 9};
        T yy[n2];
        std::int32_t am[n2];
        pb::maxout_forward(zz, pieces, n2, yy, am);
        PB_CHECK(fails, am[0] == 1 && am[1] == 0 && am[2] == 2 && am[3] == 0 && std::isnan(yy[3]) && yy[0] == 3,
                 "maxout_forward routing");
        T gy[n2] = {1, 2, 3, 4}, gz[pieces * n2];
        pb::maxout_backward(gy, am, pieces, n2, gz);
        PB_CHECK(fails, gz[4] == 1 && gz[0] == 0 && gz[1] == 2 && gz[10] == 3 && gz[3] == 4 && gz[11] == 0,
                 "maxout_backward routing");
        std::int32_t bad[n2] = {0, 3, 0, 0};
        bool threw = false;
        try { pb::maxout_backward(gy, bad, pieces, n2, gz); } catch (const std::invalid_argument&) { threw = true; }
        PB_CHECK(fails, threw, "maxout_backward accepted argmax 3 of 3 pieces");
    }
    // Maxout on every tail length and across task chunks: ties (first wins) and NaNs (a NaN wins once).
    for (index_t pieces : {1, 2, 3, 5}) {
        for (index_t n2 : {1, 7, 8, 9, 31, 8192 + 13}) {
            std::mt19937 gen(static_cast<unsigned>(pieces * 100000 + n2));
            std::uniform_int_distribution<int> ud(-3, 3);
            std::vector<T> zz(static_cast<std::size_t>(pieces * n2));
            for (auto& v : zz) v = static_cast<T>(ud(gen));
            for (std::size_t k = 5; k < zz.size(); k += 37) zz[k] = std::numeric_limits<T>::quiet_NaN();
            std::vector<T> yy(static_cast<std::size_t>(n2));
            std::vector<std::int32_t> am(static_cast<std::size_t>(n2));
            pb::maxout_forward(zz.data(), pieces, n2, yy.data(), am.data());
            for (index_t i = 0; i < n2; ++i) {
                T best = zz[static_cast<std::size_t>(i)];
                std::int32_t arg = 0;
                for (index_t k = 1; k < pieces; ++k) {
                    T v = zz[static_cast<std::size_t>(k * n2 + i)];
                    if (v > best || (std::isnan(v) && !std::isnan(best))) { best = v; arg = static_cast<std::int32_t>(k); }
                }
                const std::size_t si = static_cast<std::size_t>(i);
                bool ok = am[si] == arg && (yy[si] == best || (std::isnan(yy[si]) && std::isnan(best)));
                PB_CHECK(fails, ok, "maxout pieces=%lld n=%lld i=%lld: (%g, %d) want (%g, %d)",
                         static_cast<long long>(pieces), static_cast<long long>(n2), static_cast<long long>(i),
                         static_cast<double>(yy[si]), am[si], static_cast<double>(best), arg);
            }
        }
    }
    return fails;
}

template <typename T>
int loss_tests_t() {
    int fails = 0;
    const double rtol = std::is_same<T, float>::value ? 2e-5 : 1e-13;
    std::mt19937 gen(11);
    std::normal_distribution<double> nd(0.0, 4.0);
    for (index_t n : {0, 1, 5, 33}) {
        for (index_t c : {1, 2, 7, 8, 9, 17, 100}) {
            std::vector<T> x(static_cast<std::size_t>(n * c));
            for (auto& v : x) v = static_cast<T>(nd(gen));
            if (n > 2 && c > 2) { x[0] = T(1000); x[1] = T(-1000); }
            std::vector<std::int64_t> t(static_cast<std::size_t>(n));
            for (index_t i = 0; i < n; ++i) t[static_cast<std::size_t>(i)] = (i * 7) % c;
            std::vector<T> lr(static_cast<std::size_t>(n)), d(x.size()), y(x.size()), ly(x.size());
            const T scale = T(0.25);
            double total = pb::softmax_cross_entropy(x.data(), n, c, t.data(), lr.data(), d.data(), scale);
            pb::softmax_forward(x.data(), n, c, y.data());
            pb::log_softmax_forward(x.data(), n, c, ly.data());
            double want_total = 0;
            for (index_t i = 0; i < n; ++i) {
                const T* xi = x.data() + i * c;
                double mx = xi[0];
                for (index_t j = 0; j < c; ++j) mx = std::fmax(mx, static_cast<double>(xi[j]));
                double s = 0;
                for (index_t j = 0; j < c; ++j) s += std::exp(static_cast<double>(xi[j]) - mx);
                double lse = mx + std::log(s);
                double l = lse - xi[t[static_cast<std::size_t>(i)]];
                want_total += l;
                PB_CHECK(fails, close(lr[static_cast<std::size_t>(i)], l, rtol, rtol * (1 + std::fabs(lse))), "ce row loss");
                for (index_t j = 0; j < c; ++j) {
                    std::size_t k = static_cast<std::size_t>(i * c + j);
                    double sm = std::exp(static_cast<double>(xi[j]) - lse);
                    double dw = (sm - (j == t[static_cast<std::size_t>(i)] ? 1 : 0)) * 0.25;
                    PB_CHECK(fails, close(d[k], dw, 4 * rtol, 4 * rtol * 0.25), "ce dlogits %g vs %g", static_cast<double>(d[k]), dw);
                    PB_CHECK(fails, close(y[k], sm, 4 * rtol, 1e-300), "softmax");
                    PB_CHECK(fails, close(ly[k], static_cast<double>(xi[j]) - lse, 4 * rtol, 4 * rtol * (1 + std::fabs(lse))),
                             "log_softmax");
                }
            }
            PB_CHECK(fails, close(total, want_total, rtol, rtol * n), "ce total %g vs %g", total, want_total);
            // softmax / log-softmax backward against double references.
            std::vector<T> gy(x.size()), gx(x.size()), lgx(x.size());
            for (auto& v : gy) v = static_cast<T>(nd(gen));
            pb::softmax_backward(gy.data(), y.data(), n, c, gx.data());
            pb::log_softmax_backward(gy.data(), ly.data(), n, c, lgx.data());
            for (index_t i = 0; i < n; ++i) {
                double dot = 0, sg = 0, mag = 0, lmag = 0;
                for (index_t j = 0; j < c; ++j) {
                    std::size_t k = static_cast<std::size_t>(i * c + j);
                    dot += static_cast<double>(gy[k]) * y[k];
                    sg += gy[k];
                    mag += std::fabs(static_cast<double>(gy[k]) * y[k]);
                    lmag += std::fabs(static_cast<double>(gy[k]));
                }
                for (index_t j = 0; j < c; ++j) {
                    std::size_t k = static_cast<std::size_t>(i * c + j);
                    double w = static_cast<double>(y[k]) * (gy[k] - dot);
                    PB_CHECK(fails, std::fabs(gx[k] - w) <= 4 * rtol * (std::fabs(w) + y[k] * mag),
                             "softmax_backward %g vs %g", static_cast<double>(gx[k]), w);
                    double ey = std::exp(static_cast<double>(ly[k]));
                    double lw = gy[k] - ey * sg;
                    PB_CHECK(fails, std::fabs(lgx[k] - lw) <= 4 * rtol * (std::fabs(gy[k]) + ey * lmag),
                             "log_softmax_backward %g vs %g", static_cast<double>(lgx[k]), lw);
                }
            }
        }
    }
    // Targets are validated before anything is read.
    {
        T x[6] = {1, 2, 3, 4, 5, 6};
        std::int64_t t[2] = {1, 3};
        T lr[2];
        bool threw = false;
        try { pb::softmax_cross_entropy(x, 2, 3, t, lr, static_cast<T*>(nullptr), T(1)); }
        catch (const std::invalid_argument& e) { threw = std::string(e.what()).find("row 1") != std::string::npos; }
        PB_CHECK(fails, threw, "out-of-range target not rejected with its row");
        t[1] = -1;
        threw = false;
        try { pb::softmax_cross_entropy_backward(x, 2, 3, t, x, x); } catch (const std::invalid_argument&) { threw = true; }
        PB_CHECK(fails, threw, "negative target not rejected");
    }
    // BCE and squared error.
    for (index_t n : {0, 1, 7, 8, 9, 5000}) {
        std::vector<T> z(static_cast<std::size_t>(n)), yv(z.size()), el(z.size()), gr(z.size());
        for (index_t i = 0; i < n; ++i) {
            z[static_cast<std::size_t>(i)] = static_cast<T>(i % 50 == 0 ? (i % 100 == 0 ? 1000 : -1000) : nd(gen));
            yv[static_cast<std::size_t>(i)] = static_cast<T>((i % 3) * 0.5);
        }
        double s = pb::bce_with_logits(z.data(), yv.data(), n, el.data(), gr.data(), T(0.5));
        double want = 0;
        for (index_t i = 0; i < n; ++i) {
            double zi = z[static_cast<std::size_t>(i)], yi = yv[static_cast<std::size_t>(i)];
            double l = std::fmax(zi, 0) - zi * yi + std::log1p(std::exp(-std::fabs(zi)));
            want += l;
            PB_CHECK(fails, close(el[static_cast<std::size_t>(i)], l, 4 * rtol, 4 * rtol), "bce elem");
            PB_CHECK(fails, close(gr[static_cast<std::size_t>(i)], (ref_sigmoid(zi) - yi) * 0.5, 4 * rtol, 4 * rtol), "bce grad");
        }
        PB_CHECK(fails, close(s, want, 4 * rtol, 4 * rtol), "bce sum");
        double se = pb::squared_error(z.data(), yv.data(), n, el.data(), gr.data(), T(2));
        double wse = 0;
        for (index_t i = 0; i < n; ++i) {
            double dd = static_cast<double>(z[static_cast<std::size_t>(i)]) - yv[static_cast<std::size_t>(i)];
            wse += dd * dd;
        }
        PB_CHECK(fails, close(se, wse, 4 * rtol, 4 * rtol), "squared_error sum");
        for (index_t i = 0; i < n; ++i) {
            const std::size_t k = static_cast<std::size_t>(i);
            T dd = z[k] - yv[k];
            PB_CHECK(fails, el[k] == dd * dd && gr[k] == T(4) * dd, "squared_error elem/grad at %lld",
                     static_cast<long long>(i));
        }
    }
    return fails;
}

template <typename T>
int optim_tests_t() {
    int fails = 0;
    const double rtol = std::is_same<T, float>::value ? 1e-5 : 1e-12;
    std::mt19937 gen(5);
    std::normal_distribution<double> nd(0.0, 1.0);
    for (index_t n : {0, 1, 7, 8, 9, 17, 20000}) {
        std::vector<T> p(static_cast<std::size_t>(n)), g(p.size()), m(p.size(), 0), v(p.size(), 0), vm(p.size(), 0);
        for (auto& x : p) x = static_cast<T>(nd(gen));
        std::vector<double> rp(p.begin(), p.end()), rm(p.size(), 0), rv(p.size(), 0), rvm(p.size(), 0);
        const double lr = 1e-2, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.1;
        for (int step = 1; step <= 3; ++step) {
            for (auto& x : g) x = static_cast<T>(nd(gen));
            pb::adam_update(p.data(), g.data(), m.data(), v.data(), vm.data(), n, lr, b1, b2, eps, wd, true, step, false);
            for (std::size_t i = 0; i < p.size(); ++i) {
                double gi = g[i];
                rp[i] *= 1 - lr * wd;
                rm[i] = b1 * rm[i] + (1 - b1) * gi;
                rv[i] = b2 * rv[i] + (1 - b2) * gi * gi;
                rvm[i] = std::fmax(rvm[i], rv[i]);
                double denom = std::sqrt(rvm[i]) / std::sqrt(1 - std::pow(b2, step)) + eps;
                rp[i] -= lr / (1 - std::pow(b1, step)) * rm[i] / denom;
            }
        }
        for (std::size_t i = 0; i < p.size(); ++i)
            PB_CHECK(fails, close(p[i], rp[i], 10 * rtol, 10 * rtol), "adamw amsgrad p[%zu] %g vs %g", i,
                     static_cast<double>(p[i]), rp[i]);
        // SGD with Nesterov momentum and weight decay, 3 steps.
        std::vector<T> buf(p.size());
        std::vector<double> rb(p.size());
        rp.assign(p.begin(), p.end());
        for (int step = 0; step < 3; ++step) {
            for (auto& x : g) x = static_cast<T>(nd(gen));
            pb::sgd_update(p.data(), g.data(), buf.data(), n, 0.1, 0.9, 0.0, 0.01, true, step == 0, false);
            for (std::size_t i = 0; i < p.size(); ++i) {
                double gi = g[i] + 0.01 * rp[i];
                rb[i] = step == 0 ? gi : 0.9 * rb[i] + gi;
                rp[i] -= 0.1 * (gi + 0.9 * rb[i]);
            }
        }
        for (std::size_t i = 0; i < p.size(); ++i) PB_CHECK(fails, close(p[i], rp[i], 10 * rtol, 10 * rtol), "sgd nesterov");
        // RMSprop centered with momentum, 3 steps.
        std::vector<T> sq(p.size(), 0), ga(p.size(), 0);
        std::vector<double> rsq(p.size(), 0), rga(p.size(), 0);
        std::fill(buf.begin(), buf.end(), T(0));
        std::fill(rb.begin(), rb.end(), 0.0);
        rp.assign(p.begin(), p.end());
        for (int step = 0; step < 3; ++step) {
            for (auto& x : g) x = static_cast<T>(nd(gen));
            pb::rmsprop_update(p.data(), g.data(), sq.data(), ga.data(), buf.data(), n, 0.01, 0.99, 1e-8, 0.0, 0.5, true, true);
            for (std::size_t i = 0; i < p.size(); ++i) {
                double gi = -static_cast<double>(g[i]);
                rsq[i] = 0.99 * rsq[i] + 0.01 * gi * gi;
                rga[i] = 0.99 * rga[i] + 0.01 * gi;
                double avg = std::sqrt(rsq[i] - rga[i] * rga[i]) + 1e-8;
                rb[i] = 0.5 * rb[i] + gi / avg;
                rp[i] -= 0.01 * rb[i];
            }
        }
        for (std::size_t i = 0; i < p.size(); ++i)
            PB_CHECK(fails, close(p[i], rp[i], 100 * rtol, 100 * rtol), "rmsprop centered p %g vs %g",
                     static_cast<double>(p[i]), rp[i]);
    }
    return fails;
}

template <typename T>
int reduce_tests_t() {
    int fails = 0;
    std::mt19937 gen(3);
    std::normal_distribution<double> nd(0.0, 1.0);
    for (index_t rows : {0, 1, 7, 8, 9, 100}) {
        for (index_t cols : {0, 1, 5, 8, 9, 17, 600, 1100}) {
            const index_t ld = cols + 2;
            std::vector<T> x(static_cast<std::size_t>(rows * ld));
            for (auto& v : x) v = static_cast<T>(nd(gen));
            std::vector<T> sr(static_cast<std::size_t>(cols), T(1)), sc(static_cast<std::size_t>(rows), T(1));
            pb::sum_rows(x.data(), rows, cols, ld, sr.data(), true);
            pb::sum_cols(x.data(), rows, cols, ld, sc.data(), false);
            for (index_t j = 0; j < cols; ++j) {
                double s = 1;
                for (index_t i = 0; i < rows; ++i) s += x[static_cast<std::size_t>(i * ld + j)];
                PB_CHECK(fails, close(sr[static_cast<std::size_t>(j)], s, 1e-6, 1e-6), "sum_rows");
            }
            for (index_t i = 0; i < rows; ++i) {
                double s = 0;
                for (index_t j = 0; j < cols; ++j) s += x[static_cast<std::size_t>(i * ld + j)];
                PB_CHECK(fails, close(sc[static_cast<std::size_t>(i)], s, 1e-6, 1e-6), "sum_cols");
            }
            // Both ISAs sum in the same order: bit-identical results.
            pb::Isa was = pb::active_isa();
            std::vector<T> sr2(sr.size()), sc2(sc.size());
            pb::set_active_isa(pb::Isa::generic);
            pb::sum_rows(x.data(), rows, cols, ld, sr2.data(), false);
            pb::sum_cols(x.data(), rows, cols, ld, sc2.data(), false);
            pb::set_active_isa(was);
            std::vector<T> sr3(sr.size()), sc3(sc.size());
            pb::sum_rows(x.data(), rows, cols, ld, sr3.data(), false);
            pb::sum_cols(x.data(), rows, cols, ld, sc3.data(), false);
            PB_CHECK(fails, sr2 == sr3 && sc2 == sc3, "sums differ between ISAs");
        }
    }
    return fails;
}

}  // namespace

int run_activation_tests() { return activation_tests_t<float>() + activation_tests_t<double>(); }
int run_loss_tests() { return loss_tests_t<float>() + loss_tests_t<double>(); }
int run_optim_tests() { return optim_tests_t<float>() + optim_tests_t<double>(); }
int run_reduce_tests() { return reduce_tests_t<float>() + reduce_tests_t<double>(); }
