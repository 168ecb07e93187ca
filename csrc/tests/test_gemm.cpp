// Native tests of csrc/gemm and csrc/dense against naive double-precision
// references. test_main.cpp runs them on every ISA and at 1 and 2 threads;
// the thread-count determinism check here switches threads itself.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <vector>

#include "activations/activations.h"
#include "common/thread_pool.h"
#include "dense/dense.h"
#include "gemm/gemm.h"
#include "tests/check.h"
#include "tests/tests.h"

namespace {

using pb::index_t;

struct Rng {
    std::uint64_t s;
    explicit Rng(std::uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
    double uniform() {  // in [-1, 1)
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        return static_cast<double>(s >> 11) * (2.0 / 9007199254740992.0) - 1.0;
    }
};

// A matrix view with arbitrary element strides inside a guarded buffer.
template <typename T>
struct Mat {
    index_t rows, cols, rs, cs;
    std::vector<T> buf;
    T* p() { return buf.data(); }
    T& at(index_t i, index_t j) { return buf[static_cast<std::size_t>(i * rs + j * cs)]; }
};

// layout 0: row-major, 1: column-major, 2: strided both ways with gaps.
template <typename T>
Mat<T> make_mat(index_t rows, index_t cols, int layout, Rng& rng, T guard) {
    Mat<T> m{rows, cols, 0, 0, {}};
    if (layout == 0) {
        m.rs = cols;
        m.cs = 1;
    } else if (layout == 1) {
        m.rs = 1;
        m.cs = rows;
    } else {
        m.rs = 2;
        m.cs = 2 * rows + 3;
    }
    index_t size = 1;
    if (rows > 0 && cols > 0) size = (rows - 1) * m.rs + (cols - 1) * m.cs + 1;
    m.buf.assign(static_cast<std::size_t>(size), guard);
    for (index_t i = 0; i < rows; ++i)
        for (index_t j = 0; j < cols; ++j) m.at(i, j) = static_cast<T>(rng.uniform());
    return m;
}

template <typename T>
const char* tname() {
    return sizeof(T) == 4 ? "f32" : "f64";
}

// Checks one gemm call; returns failures.
template <typename T>
int check_gemm(index_t m, index_t n, index_t k, int la, int lb, int lc, double alpha, double beta,
               std::uint64_t seed) {
    int failures = 0;
    Rng rng(seed);
    const T guard = static_cast<T>(12345.0);
    Mat<T> a = make_mat<T>(m, k, la, rng, guard);
    Mat<T> b = make_mat<T>(k, n, lb, rng, guard);
    Mat<T> c = make_mat<T>(m, n, lc, rng, guard);
    if (beta == 0.0)  // beta == 0 must not read C: NaN must not leak through
        for (index_t i = 0; i < m; ++i)
            for (index_t j = 0; j < n; ++j) c.at(i, j) = std::numeric_limits<T>::quiet_NaN();
    const std::vector<T> c0 = c.buf;
    pb::gemm<T>(m, n, k, static_cast<T>(alpha), a.p(), a.rs, a.cs, b.p(), b.rs, b.cs, static_cast<T>(beta), c.p(),
                c.rs, c.cs);
    const double eps = std::numeric_limits<T>::epsilon();
    int reported = 0;
    for (index_t i = 0; i < m; ++i) {
        for (index_t j = 0; j < n; ++j) {
            double s = 0.0, sa = 0.0;
            for (index_t p = 0; p < k; ++p) {
                const double t = static_cast<double>(a.at(i, p)) * static_cast<double>(b.at(p, j));
                s += t;
                sa += std::fabs(t);
            }
            const double cold = static_cast<double>(c0[static_cast<std::size_t>(i * c.rs + j * c.cs)]);
            const double want = alpha * s + (beta == 0.0 ? 0.0 : beta * cold);
            const double scale = std::fabs(alpha) * sa + std::fabs(beta * (beta == 0.0 ? 0.0 : cold));
            const double got = static_cast<double>(c.at(i, j));
            const double tol = 2.0 * (static_cast<double>(k) + 4.0) * eps * scale + 1e-30;
            if (!(std::fabs(got - want) <= tol)) {
                ++failures;
                if (reported++ < 3)
                    std::fprintf(stderr,
                                 "FAIL gemm<%s> m=%lld n=%lld k=%lld layouts A%d B%d C%d alpha=%g beta=%g: "
                                 "C[%lld,%lld]=%.9g want %.9g\n",
                                 tname<T>(), (long long)m, (long long)n, (long long)k, la, lb, lc, alpha, beta,
                                 (long long)i, (long long)j, got, want);
            }
        }
    }
    // Nothing outside C's elements was written (strided layouts have gaps).
    std::vector<char> is_elem(c.buf.size(), 0);
    for (index_t i = 0; i < m; ++i)
        for (index_t j = 0; j < n; ++j) is_elem[static_cast<std::size_t>(i * c.rs + j * c.cs)] = 1;
    for (std::size_t q = 0; q < c.buf.size(); ++q)
        if (!is_elem[q] && !(c.buf[q] == guard)) {
            ++failures;
            std::fprintf(stderr, "FAIL gemm<%s> m=%lld n=%lld k=%lld: wrote outside C at %zu\n", tname<T>(),
                         (long long)m, (long long)n, (long long)k, q);
            break;
        }
    return failures;
}

template <typename T>
int gemm_suite() {
    int failures = 0;
    std::uint64_t seed = 1;
    // Sizes around every tile (4, 6, 8, 16) and block (mc 96..144) edge.
    const index_t dims[] = {0, 1, 2, 5, 6, 7, 13, 16, 17, 31, 97, 130};
    for (index_t m : dims)
        for (index_t n : dims)
            for (index_t k : {index_t(0), index_t(1), index_t(3), index_t(17), index_t(64)}) {
                const int layouts = (m + n + k) % 3;
                failures += check_gemm<T>(m, n, k, layouts, (layouts + 1) % 3, 0, 1.0, 0.0, seed++);
            }
    // Every transpose / layout variant and beta on a few odd shapes.
    const index_t shapes[][3] = {{7, 19, 13}, {13, 33, 29}, {61, 47, 53}, {64, 128, 100}};
    for (const auto& s : shapes)
        for (int la = 0; la < 3; ++la)
            for (int lb = 0; lb < 3; ++lb)
                for (int lc = 0; lc < 3; ++lc)
                    for (double beta : {0.0, 1.0, -0.5})
                        failures += check_gemm<T>(s[0], s[1], s[2], la, lb, lc, beta == 1.0 ? 0.75 : 1.0, beta,
                                                  seed++);
    // Large: past mc, kc and nc, both the packed and the in-place paths.
    failures += check_gemm<T>(301, 517, 799, 0, 0, 0, 1.0, 0.0, seed++);
    failures += check_gemm<T>(301, 517, 799, 1, 1, 0, 1.0, 1.0, seed++);
    failures += check_gemm<T>(403, 389, 401, 0, 1, 0, -1.5, 0.25, seed++);
    // A packed (n >= 768) from each layout: 301 = 50 panels of 6 and a row;
    // k = 517, two k-blocks of 264 and 253 (the copies go 8 rows at a time).
    for (int la = 0; la < 3; ++la) failures += check_gemm<T>(301, 803, 517, la, la == 1 ? 0 : 1, 0, 1.0, 0.0, seed++);
    failures += check_gemm<T>(3, 3301, 5, 0, 0, 0, 1.0, 0.0, seed++);
    failures += check_gemm<T>(3301, 3, 5, 1, 0, 1, 1.0, 1.0, seed++);
    failures += check_gemm<T>(64, 128, 784, 0, 0, 0, 1.0, 0.0, seed++);  // X W of an MNIST MLP
    failures += check_gemm<T>(64, 784, 128, 0, 1, 0, 1.0, 0.0, seed++);  // G W^T
    failures += check_gemm<T>(784, 128, 64, 1, 0, 0, 1.0, 1.0, seed++);  // X^T G, accumulate
    // alpha == 0: A and B are not read; C = beta C.
    failures += check_gemm<T>(9, 11, 5, 0, 0, 0, 0.0, 2.0, seed++);
    return failures;
}

// Same bits at 1 and 2 threads: split along n (B in place, then A packed per
// column range), along m (B blocks over 2 MiB packed once and shared; smaller
// ones packed by each thread: 300 x 3100 x 600 and 832 x 3100 x 160 take
// both, by dtype and column block, on the x86 paths), and an MLP's forward.
template <typename T>
int determinism_suite() {
    int failures = 0;
    const int before = pb::get_num_threads();
    // {m, n, k, layout of B}; m = 1 with a row-major B is the batch-1 row,
    // whose k-blocks are summed by different threads, and so are the two
    // k-blocks of a short C (k_block_split: 784 on the x86 paths, 500 on the
    // generic one; up to 512 rows). k = 10 splits rows (a classifier head's dX).
    const index_t shapes[][4] = {{200, 390, 300, 1}, {200, 800, 700, 1}, {700, 40, 300, 1},
                                 {64, 784, 128, 1},  {1, 128, 784, 0},   {1, 700, 3000, 0},
                                 {128, 256, 784, 1}, {96, 70, 500, 1},   {300, 3100, 600, 1},
                                 {832, 3100, 160, 1}, {832, 3100, 80, 1}, {500, 1030, 784, 1},
                                 {500, 1030, 10, 1}};
    for (const auto& s : shapes) {
        const index_t m = s[0], n = s[1], k = s[2];
        Rng rng(77);
        Mat<T> a = make_mat<T>(m, k, 0, rng, T(0));
        Mat<T> b = make_mat<T>(k, n, static_cast<int>(s[3]), rng, T(0));
        std::vector<T> c1(static_cast<std::size_t>(m * n)), c2(c1.size());
        pb::set_num_threads(1);
        pb::gemm<T>(m, n, k, T(1), a.p(), a.rs, a.cs, b.p(), b.rs, b.cs, T(0), c1.data(), n, 1);
        pb::set_num_threads(2);
        std::fill(c2.begin(), c2.end(), T(7));
        pb::gemm<T>(m, n, k, T(1), a.p(), a.rs, a.cs, b.p(), b.rs, b.cs, T(0), c2.data(), n, 1);
        PB_CHECK(failures, std::memcmp(c1.data(), c2.data(), c1.size() * sizeof(T)) == 0,
                 "gemm<%s> %lldx%lldx%lld: 1 and 2 threads differ", tname<T>(), (long long)m, (long long)n,
                 (long long)k);
    }
    pb::set_num_threads(before);
    return failures;
}

// ---------------------------------------------------------------- dense

constexpr double kPi = 3.14159265358979323846;

double act_ref(pb::Activation act, const pb::ActParams& p, double z) {
    switch (act) {
        case pb::Activation::identity: return z;
        case pb::Activation::relu: return z > 0 ? z : 0.0;
        case pb::Activation::leaky_relu: return z > 0 ? z : p.alpha * z;
        case pb::Activation::elu: return z > 0 ? z : p.alpha * std::expm1(z);
        case pb::Activation::sigmoid: return 1.0 / (1.0 + std::exp(-z));
        case pb::Activation::tanh: return std::tanh(z);
        case pb::Activation::gelu: return 0.5 * z * (1.0 + std::erf(z / std::sqrt(2.0)));
        case pb::Activation::gelu_tanh:
            return 0.5 * z * (1.0 + std::tanh(std::sqrt(2.0 / kPi) * (z + 0.044715 * z * z * z)));
        case pb::Activation::softplus:
            return p.beta * z > p.threshold ? z : std::log1p(std::exp(p.beta * z)) / p.beta;
    }
    return 0.0;
}

double dact_ref(pb::Activation act, const pb::ActParams& p, double z) {
    switch (act) {
        case pb::Activation::identity: return 1.0;
        case pb::Activation::relu: return z > 0 ? 1.0 : 0.0;
        case pb::Activation::leaky_relu: return z > 0 ? 1.0 : p.alpha;
        case pb::Activation::elu: return z > 0 ? 1.0 : p.alpha * std::exp(z);
        case pb::Activation::sigmoid: {
            const double s = 1.0 / (1.0 + std::exp(-z));
            return s * (1.0 - s);
        }
        case pb::Activation::tanh: return 1.0 - std::tanh(z) * std::tanh(z);
        case pb::Activation::gelu:
            return 0.5 * (1.0 + std::erf(z / std::sqrt(2.0))) + z * std::exp(-0.5 * z * z) / std::sqrt(2.0 * kPi);
        case pb::Activation::gelu_tanh: {
            const double c = std::sqrt(2.0 / kPi), u = c * (z + 0.044715 * z * z * z);
            const double t = std::tanh(u);
            return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * z * z);
        }
        case pb::Activation::softplus: return p.beta * z > p.threshold ? 1.0 : 1.0 / (1.0 + std::exp(-p.beta * z));
    }
    return 0.0;
}

template <typename T>
int dense_case(index_t m, index_t k, index_t n, pb::Activation act, bool with_bias, bool accumulate,
               std::uint64_t seed) {
    int failures = 0;
    pb::ActParams p;
    p.alpha = act == pb::Activation::elu ? 1.0 : 0.01;
    p.beta = 1.0;
    p.threshold = 20.0;
    Rng rng(seed);
    auto fill = [&](std::size_t len, double scale) {
        std::vector<T> v(len);
        for (auto& e : v) e = static_cast<T>(scale * rng.uniform());
        return v;
    };
    const std::size_t mk = static_cast<std::size_t>(m * k), kn = static_cast<std::size_t>(k * n),
                      mn = static_cast<std::size_t>(m * n), un = static_cast<std::size_t>(n);
    std::vector<T> x = fill(mk, 1.0), w = fill(kn, 1.0), b = fill(un, 1.0), dy = fill(mn, 1.0);
    std::vector<T> y(mn), z(mn);
    const T* bp = with_bias ? b.data() : nullptr;
    pb::dense_forward<T>(x.data(), w.data(), bp, m, k, n, act, p, y.data(), z.data());

    const double eps = std::numeric_limits<T>::epsilon();
    std::vector<double> zr(mn), g(mn);
    int reported = 0;
    for (index_t i = 0; i < m; ++i)
        for (index_t j = 0; j < n; ++j) {
            double s = with_bias ? static_cast<double>(b[j]) : 0.0, sa = std::fabs(s);
            for (index_t q = 0; q < k; ++q) {
                const double t = static_cast<double>(x[i * k + q]) * static_cast<double>(w[q * n + j]);
                s += t;
                sa += std::fabs(t);
            }
            const std::size_t e = static_cast<std::size_t>(i * n + j);
            zr[e] = s;
            const double tol_z = 2.0 * (k + 4) * eps * sa + 1e-30;
            const double yr = act_ref(act, p, s);
            const double tol_y = 8.0 * tol_z + 64.0 * eps * (std::fabs(yr) + 1e-3);
            const bool ok = std::fabs(z[e] - s) <= tol_z && std::fabs(y[e] - yr) <= tol_y;
            if (!ok) {
                ++failures;
                if (reported++ < 3)
                    std::fprintf(stderr, "FAIL dense_forward<%s> act=%d %lldx%lldx%lld [%lld,%lld]: z %.9g/%.9g y %.9g/%.9g\n",
                                 tname<T>(), static_cast<int>(act), (long long)m, (long long)k, (long long)n,
                                 (long long)i, (long long)j, (double)z[e], s, (double)y[e], yr);
            }
        }

    // Backward with the reference's saved value (y or z as the kernel asks).
    const bool uses_y = pb::derivative_uses_output(act, p);
    std::vector<T> dx = fill(mk, 1.0), dw = fill(kn, 1.0), db = fill(un, 1.0);
    const std::vector<T> dx0 = dx, dw0 = dw, db0 = db;
    pb::dense_backward<T>(dy.data(), uses_y ? y.data() : z.data(), x.data(), w.data(), m, k, n, act, p, dx.data(),
                          accumulate, dw.data(), accumulate, db.data(), accumulate, nullptr);
    for (std::size_t e = 0; e < mn; ++e) g[e] = static_cast<double>(dy[e]) * dact_ref(act, p, static_cast<double>(z[e]));
    // f'(.) comes from a rounded saved value (1 - y^2 near saturation loses
    // all relative precision): allow a few eps of |dy| per term, absolutely.
    auto check = [&](const char* what, double got, double want, double scale, double dyscale, index_t len) {
        const double tol = 2.0 * (len + 4) * eps * scale + 16.0 * eps * dyscale + 1e-30;
        if (!(std::fabs(got - want) <= tol)) {
            ++failures;
            if (reported++ < 3)
                std::fprintf(stderr, "FAIL dense_backward<%s> act=%d %lldx%lldx%lld acc=%d %s: %.9g want %.9g\n",
                             tname<T>(), static_cast<int>(act), (long long)m, (long long)k, (long long)n,
                             (int)accumulate, what, got, want);
        }
    };
    for (index_t i = 0; i < m; ++i)
        for (index_t q = 0; q < k; ++q) {
            double s = accumulate ? static_cast<double>(dx0[i * k + q]) : 0.0, sa = std::fabs(s), sd = 0.0;
            for (index_t j = 0; j < n; ++j) {
                const double t = g[i * n + j] * static_cast<double>(w[q * n + j]);
                s += t;
                sa += std::fabs(t);
                sd += std::fabs(static_cast<double>(dy[i * n + j]) * static_cast<double>(w[q * n + j]));
            }
            check("dx", dx[i * k + q], s, sa, sd, n);
        }
    for (index_t q = 0; q < k; ++q)
        for (index_t j = 0; j < n; ++j) {
            double s = accumulate ? static_cast<double>(dw0[q * n + j]) : 0.0, sa = std::fabs(s), sd = 0.0;
            for (index_t i = 0; i < m; ++i) {
                const double t = static_cast<double>(x[i * k + q]) * g[i * n + j];
                s += t;
                sa += std::fabs(t);
                sd += std::fabs(static_cast<double>(x[i * k + q]) * static_cast<double>(dy[i * n + j]));
            }
            check("dw", dw[q * n + j], s, sa, sd, m);
        }
    for (index_t j = 0; j < n; ++j) {
        double s = accumulate ? static_cast<double>(db0[j]) : 0.0, sa = std::fabs(s), sd = 0.0;
        for (index_t i = 0; i < m; ++i) {
            s += g[i * n + j];
            sa += std::fabs(g[i * n + j]);
            sd += std::fabs(static_cast<double>(dy[i * n + j]));
        }
        check("db", db[j], s, sa, sd, m);
    }
    return failures;
}

template <typename T>
int dense_suite() {
    int failures = 0;
    std::uint64_t seed = 100;
    const index_t shapes[][3] = {{1, 1, 1}, {0, 5, 3}, {4, 0, 3}, {5, 7, 0}, {7, 13, 17}, {64, 100, 10}, {33, 70, 129}};
    for (int a = 0; a < pb::kNumActivations; ++a)
        for (const auto& s : shapes)
            for (bool bias : {false, true})
                for (bool acc : {false, true})
                    failures += dense_case<T>(s[0], s[1], s[2], static_cast<pb::Activation>(a), bias, acc, seed++);
    failures += dense_case<T>(130, 300, 200, pb::Activation::relu, true, false, seed++);
    return failures;
}

}  // namespace

int run_gemm_tests() {
    int failures = 0;
    failures += gemm_suite<float>();
    failures += gemm_suite<double>();
    failures += determinism_suite<float>();
    failures += determinism_suite<double>();
    return failures;
}

int run_dense_tests() {
    int failures = 0;
    failures += dense_suite<float>();
    failures += dense_suite<double>();
    return failures;
}
