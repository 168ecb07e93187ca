// Vectorised elementary functions for the AVX2+FMA kernels (float x 8, double x 4).
//
// Include ONLY from *_avx2.cpp files. Everything here is `static inline` in
// namespace pb::avx2, so each AVX2 object file gets private copies and nothing
// can be merged with generic-compiled code (see the ODR note in BRIEF/setup.py).
//
// Accuracy (tested against the C library in csrc/tests/test_elementwise.cpp):
//   exp, expm1, log1p on [0, 1], tanh, sigmoid: a few ulp in the working type;
//   normal cdf (GELU) in double: fdlibm's rational approximations of erfc
//   (FreeBSD s_erf.c, Sun Microsystems 1993, freely redistributable), about
//   1 ulp plus the error of exp; in float: one erfcx-based formula (below).
// Out-of-range arguments saturate without ever producing inf * 0 or inf - inf:
//   exp overflows to +inf only above the largest finite result, underflows
//   gradually and then to 0; NaN propagates through every function.
#pragma once
#include <immintrin.h>
#include <cstdint>

namespace pb {
namespace avx2 {
namespace {

// ---------------------------------------------------------------- double

// 2^n for integral n in [-1022 - 53, 1024] as the product of two normal powers
// (so results in the subnormal range are rounded once, by the final multiply).
static inline __m256d scale_pow2_pd(__m256d p, __m256d n) {
    __m128i ni = _mm256_cvtpd_epi32(n);
    __m128i n1 = _mm_srai_epi32(ni, 1);
    __m128i n2 = _mm_sub_epi32(ni, n1);
    const __m256i bias = _mm256_set1_epi64x(1023);
    __m256i e1 = _mm256_slli_epi64(_mm256_add_epi64(_mm256_cvtepi32_epi64(n1), bias), 52);
    __m256i e2 = _mm256_slli_epi64(_mm256_add_epi64(_mm256_cvtepi32_epi64(n2), bias), 52);
    return _mm256_mul_pd(_mm256_mul_pd(p, _mm256_castsi256_pd(e1)), _mm256_castsi256_pd(e2));
}

static inline __m256d exp_pd(__m256d x) {
    const __m256d hi = _mm256_set1_pd(709.782712893383973096);  // log(DBL_MAX)
    const __m256d lo = _mm256_set1_pd(-745.2);                   // below: 0
    // Constants first: max/min return their second operand when either is NaN.
    __m256d xc = _mm256_min_pd(hi, _mm256_max_pd(lo, x));
    __m256d n = _mm256_round_pd(_mm256_mul_pd(xc, _mm256_set1_pd(1.44269504088896340736)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256d r = _mm256_fnmadd_pd(n, _mm256_set1_pd(6.93145751953125e-1), xc);
    r = _mm256_fnmadd_pd(n, _mm256_set1_pd(1.42860682030941723212e-6), r);
    // Taylor polynomial to r^13 on |r| <= ln2/2: truncation error < 1e-17.
    __m256d p = _mm256_set1_pd(1.0 / 6227020800.0);
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 479001600.0));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 39916800.0));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 3628800.0));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 362880.0));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 40320.0));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 5040.0));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 720.0));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 120.0));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 24.0));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 6.0));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(0.5));
    p = _mm256_fmadd_pd(p, _mm256_mul_pd(r, r), r);
    p = _mm256_add_pd(p, _mm256_set1_pd(1.0));
    __m256d y = scale_pow2_pd(p, n);
    y = _mm256_blendv_pd(y, _mm256_set1_pd(__builtin_inf()), _mm256_cmp_pd(x, hi, _CMP_GT_OQ));
    y = _mm256_blendv_pd(y, _mm256_setzero_pd(), _mm256_cmp_pd(x, lo, _CMP_LT_OQ));
    return y;
}

// exp(a + b) for an argument carried as an unevaluated sum: a may be large and
// must make a - n ln2_hi exact (e.g. a = -z*z/2 from an exact product), |b| is
// small. Used where the argument of exp is known to more bits than one double.
static inline __m256d exp_hl_pd(__m256d a, __m256d b) {
    const __m256d hi = _mm256_set1_pd(709.782712893383973096);
    const __m256d lo = _mm256_set1_pd(-745.2);
    __m256d x = _mm256_add_pd(a, b);
    __m256d xc = _mm256_min_pd(hi, _mm256_max_pd(lo, x));
    __m256d n = _mm256_round_pd(_mm256_mul_pd(xc, _mm256_set1_pd(1.44269504088896340736)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256d r = _mm256_fnmadd_pd(n, _mm256_set1_pd(6.93145751953125e-1), a);
    r = _mm256_fnmadd_pd(n, _mm256_set1_pd(1.42860682030941723212e-6), r);
    r = _mm256_add_pd(r, b);
    __m256d p = _mm256_set1_pd(1.0 / 6227020800.0);
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 479001600.0));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 39916800.0));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 3628800.0));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 362880.0));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 40320.0));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 5040.0));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 720.0));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 120.0));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 24.0));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0 / 6.0));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(0.5));
    p = _mm256_fmadd_pd(p, _mm256_mul_pd(r, r), r);
    p = _mm256_add_pd(p, _mm256_set1_pd(1.0));
    __m256d y = scale_pow2_pd(p, n);
    y = _mm256_blendv_pd(y, _mm256_set1_pd(__builtin_inf()), _mm256_cmp_pd(x, hi, _CMP_GT_OQ));
    y = _mm256_blendv_pd(y, _mm256_setzero_pd(), _mm256_cmp_pd(x, lo, _CMP_LT_OQ));
    return y;
}

// e^{-z^2/2} with z^2 split exactly (hi + lo, FMA): a few ulp even where it is tiny.
static inline __m256d exp_neg_half_sq_pd(__m256d z) {
    __m256d hi = _mm256_mul_pd(z, z);
    __m256d lo = _mm256_fmsub_pd(z, z, hi);
    const __m256d mh = _mm256_set1_pd(-0.5);
    return exp_hl_pd(_mm256_mul_pd(mh, hi), _mm256_mul_pd(mh, lo));
}

// exp(x) - 1 without cancellation near 0 (Taylor polynomial for |x| < ln2/2).
static inline __m256d expm1_pd(__m256d x) {
    __m256d p = _mm256_set1_pd(1.0 / 6227020800.0);
    p = _mm256_fmadd_pd(p, x, _mm256_set1_pd(1.0 / 479001600.0));
    p = _mm256_fmadd_pd(p, x, _mm256_set1_pd(1.0 / 39916800.0));
    p = _mm256_fmadd_pd(p, x, _mm256_set1_pd(1.0 / 3628800.0));
    p = _mm256_fmadd_pd(p, x, _mm256_set1_pd(1.0 / 362880.0));
    p = _mm256_fmadd_pd(p, x, _mm256_set1_pd(1.0 / 40320.0));
    p = _mm256_fmadd_pd(p, x, _mm256_set1_pd(1.0 / 5040.0));
    p = _mm256_fmadd_pd(p, x, _mm256_set1_pd(1.0 / 720.0));
    p = _mm256_fmadd_pd(p, x, _mm256_set1_pd(1.0 / 120.0));
    p = _mm256_fmadd_pd(p, x, _mm256_set1_pd(1.0 / 24.0));
    p = _mm256_fmadd_pd(p, x, _mm256_set1_pd(1.0 / 6.0));
    p = _mm256_fmadd_pd(p, x, _mm256_set1_pd(0.5));
    __m256d small = _mm256_fmadd_pd(p, _mm256_mul_pd(x, x), x);
    __m256d big = _mm256_sub_pd(exp_pd(x), _mm256_set1_pd(1.0));
    __m256d ax = _mm256_andnot_pd(_mm256_set1_pd(-0.0), x);
    return _mm256_blendv_pd(big, small, _mm256_cmp_pd(ax, _mm256_set1_pd(0.34657359027997264), _CMP_LT_OQ));
}

// log(1 + u) for u in [0, 1] (all callers pass u = exp(-|z|)).
// w = 1 + u is split as f 2^k with f in [1/sqrt2, sqrt2]; log f = 2 atanh(s),
// s = (f - 1)/(f + 1); the rounding error of 1 + u is added back as c / w.
static inline __m256d log1p_unit_pd(__m256d u) {
    const __m256d one = _mm256_set1_pd(1.0);
    __m256d w = _mm256_add_pd(one, u);
    __m256d c = _mm256_sub_pd(_mm256_sub_pd(w, one), u);  // exact
    __m256d big = _mm256_cmp_pd(w, _mm256_set1_pd(1.41421356237309504880), _CMP_GT_OQ);
    __m256d f = _mm256_blendv_pd(w, _mm256_mul_pd(w, _mm256_set1_pd(0.5)), big);
    __m256d s = _mm256_div_pd(_mm256_sub_pd(f, one), _mm256_add_pd(f, one));
    __m256d s2 = _mm256_mul_pd(s, s);
    // 2 atanh(s) = 2 s sum_j s^2j / (2j + 1); |s| <= 0.1716, s^2 <= 0.0295.
    __m256d p = _mm256_set1_pd(2.0 / 23.0);
    p = _mm256_fmadd_pd(p, s2, _mm256_set1_pd(2.0 / 21.0));
    p = _mm256_fmadd_pd(p, s2, _mm256_set1_pd(2.0 / 19.0));
    p = _mm256_fmadd_pd(p, s2, _mm256_set1_pd(2.0 / 17.0));
    p = _mm256_fmadd_pd(p, s2, _mm256_set1_pd(2.0 / 15.0));
    p = _mm256_fmadd_pd(p, s2, _mm256_set1_pd(2.0 / 13.0));
    p = _mm256_fmadd_pd(p, s2, _mm256_set1_pd(2.0 / 11.0));
    p = _mm256_fmadd_pd(p, s2, _mm256_set1_pd(2.0 / 9.0));
    p = _mm256_fmadd_pd(p, s2, _mm256_set1_pd(2.0 / 7.0));
    p = _mm256_fmadd_pd(p, s2, _mm256_set1_pd(2.0 / 5.0));
    p = _mm256_fmadd_pd(p, s2, _mm256_set1_pd(2.0 / 3.0));
    __m256d l = _mm256_fmadd_pd(_mm256_mul_pd(p, s2), s, _mm256_add_pd(s, s));
    __m256d k = _mm256_and_pd(big, _mm256_set1_pd(0.69314718055994530942));
    return _mm256_add_pd(k, _mm256_sub_pd(l, _mm256_div_pd(c, w)));
}

static inline __m256d tanh_pd(__m256d x) {
    const __m256d sign = _mm256_set1_pd(-0.0);
    __m256d a = _mm256_andnot_pd(sign, x);
    // |x| < 0.625: Cephes rational x + x z P(z)/Q(z), z = x^2.
    __m256d z = _mm256_mul_pd(x, x);
    __m256d P = _mm256_fmadd_pd(_mm256_set1_pd(-9.64399179425052238628e-1), z,
                                _mm256_set1_pd(-9.92877231001918586564e1));
    P = _mm256_fmadd_pd(P, z, _mm256_set1_pd(-1.61468768441708447952e3));
    __m256d Q = _mm256_add_pd(z, _mm256_set1_pd(1.12811678491632931402e2));
    Q = _mm256_fmadd_pd(Q, z, _mm256_set1_pd(2.23548839060100448583e3));
    Q = _mm256_fmadd_pd(Q, z, _mm256_set1_pd(4.84406305325125486048e3));
    __m256d small = _mm256_fmadd_pd(_mm256_mul_pd(x, z), _mm256_div_pd(P, Q), x);
    // Otherwise 1 - 2 / (e^{2|x|} + 1); |x| clamped at 20 where tanh == 1.
    __m256d ac = _mm256_min_pd(_mm256_set1_pd(20.0), a);
    __m256d e = exp_pd(_mm256_add_pd(ac, ac));
    __m256d big = _mm256_sub_pd(_mm256_set1_pd(1.0),
                                _mm256_div_pd(_mm256_set1_pd(2.0), _mm256_add_pd(e, _mm256_set1_pd(1.0))));
    big = _mm256_or_pd(big, _mm256_and_pd(sign, x));
    return _mm256_blendv_pd(big, small, _mm256_cmp_pd(a, _mm256_set1_pd(0.625), _CMP_LT_OQ));
}

// 1 / (1 + e^-x) from e = e^-|x| (never overflows).
static inline __m256d sigmoid_pd(__m256d x) {
    __m256d e = exp_pd(_mm256_or_pd(x, _mm256_set1_pd(-0.0)));  // e^-|x|
    __m256d r = _mm256_div_pd(_mm256_set1_pd(1.0), _mm256_add_pd(_mm256_set1_pd(1.0), e));
    return _mm256_blendv_pd(_mm256_mul_pd(e, r), r, _mm256_cmp_pd(x, _mm256_setzero_pd(), _CMP_GE_OQ));
}

static inline __m256d poly_pd(__m256d s, const double* c, int deg) {  // c[0] + c[1] s + ...
    __m256d p = _mm256_set1_pd(c[deg]);
    for (int i = deg - 1; i >= 0; --i) p = _mm256_fmadd_pd(p, s, _mm256_set1_pd(c[i]));
    return p;
}

// Standard normal cdf Phi(z) = erfc(x) / 2, x = -z / sqrt2, by fdlibm's piecewise
// erfc (relative accuracy in the left tail). Each piece is evaluated only if some
// lane needs it (a lane's result does not depend on which pieces were evaluated).
// In the tail piece exp(-x^2) is taken as exp(-z^2/2) from z with z^2 split
// exactly, so the rounding of x does not get amplified by x^2.
static inline __m256d normal_cdf_pd(__m256d z) {
    static const double pp[5] = {1.28379167095512558561e-01, -3.25042107247001499370e-01,
                                 -2.84817495755985104766e-02, -5.77027029648944159157e-03,
                                 -2.37630166566501626084e-05};
    static const double qq[6] = {1.0, 3.97917223959155352819e-01, 6.50222499887672944485e-02,
                                 5.08130628187576562776e-03, 1.32494738004321644526e-04,
                                 -3.96022827877536812320e-06};
    static const double pa[7] = {-2.36211856075265944077e-03, 4.14856118683748331666e-01,
                                 -3.72207876035701323847e-01, 3.18346619901161753674e-01,
                                 -1.10894694282396677476e-01, 3.54783043256182359371e-02,
                                 -2.16637559486879084300e-03};
    static const double qa[7] = {1.0, 1.06420880400844228286e-01, 5.40397917702171048937e-01,
                                 7.18286544141962662868e-02, 1.26171219808761642112e-01,
                                 1.36370839120290507362e-02, 1.19844998467991074170e-02};
    static const double ra[8] = {-9.86494403484714822705e-03, -6.93858572707181764372e-01,
                                 -1.05586262253232909814e+01, -6.23753324503260060396e+01,
                                 -1.62396669462573470355e+02, -1.84605092906711035994e+02,
                                 -8.12874355063065934246e+01, -9.81432934416914548592e+00};
    static const double sa[9] = {1.0, 1.96512716674392571292e+01, 1.37657754143519042600e+02,
                                 4.34565877475229228821e+02, 6.45387271733267880336e+02,
                                 4.29008140027567833386e+02, 1.08635005541779435134e+02,
                                 6.57024977031928170135e+00, -6.04244152148580987438e-02};
    static const double rb[8] = {-9.86494292470009928597e-03, -7.99283237680523006574e-01,
                                 -1.77579549177547519889e+01, -1.60636384855821916062e+02,
                                 -6.37566443368389627722e+02, -1.02509513161107724954e+03,
                                 -4.83519191608651397019e+02, 0.0};
    static const double sb[9] = {1.0, 3.03380607434824582924e+01, 3.25792512996573918826e+02,
                                 1.53672958608443695994e+03, 3.19985821950859553908e+03,
                                 2.55305040643316442583e+03, 4.74528541206955367215e+02,
                                 -2.24409524465858183362e+01, 0.0};
    const double erx = 8.45062911510467529297e-01;
    const __m256d one = _mm256_set1_pd(1.0), two = _mm256_set1_pd(2.0);
    const __m256d x = _mm256_mul_pd(z, _mm256_set1_pd(-0.70710678118654752440));
    const __m256d a = _mm256_andnot_pd(_mm256_set1_pd(-0.0), x);
    const __m256d neg = _mm256_cmp_pd(x, _mm256_setzero_pd(), _CMP_LT_OQ);
    const __m256d inA = _mm256_cmp_pd(a, _mm256_set1_pd(0.84375), _CMP_LT_OQ);
    const __m256d inB = _mm256_cmp_pd(a, _mm256_set1_pd(1.25), _CMP_LT_OQ);   // A or B
    const __m256d inC = _mm256_cmp_pd(a, _mm256_set1_pd(28.0), _CMP_LT_OQ);   // A, B or C
    const int mA = _mm256_movemask_pd(inA), mB = _mm256_movemask_pd(inB), mC = _mm256_movemask_pd(inC);

    __m256d y = _mm256_and_pd(neg, two);  // |x| >= 28: 0 or 2

    if (mC != mB) {  // some lane in 1.25 <= |x| < 28:
        // erfc = exp(-x^2 - 0.5625 + R/S) / |x|, R/S chosen by |x| < 1/0.35.
        __m256d zc = _mm256_min_pd(_mm256_set1_pd(39.59797974644666),   // 28 sqrt2
                                   _mm256_max_pd(_mm256_set1_pd(1.76776695296636881),  // 1.25 sqrt2
                                                 _mm256_andnot_pd(_mm256_set1_pd(-0.0), z)));
        __m256d ac = _mm256_mul_pd(zc, _mm256_set1_pd(0.70710678118654752440));
        __m256d t = _mm256_div_pd(one, _mm256_mul_pd(ac, ac));
        __m256d first = _mm256_cmp_pd(ac, _mm256_set1_pd(2.85714285714285714286), _CMP_LT_OQ);
        __m256d R = _mm256_blendv_pd(_mm256_set1_pd(rb[7]), _mm256_set1_pd(ra[7]), first);
        for (int i = 6; i >= 0; --i)
            R = _mm256_fmadd_pd(R, t, _mm256_blendv_pd(_mm256_set1_pd(rb[i]), _mm256_set1_pd(ra[i]), first));
        __m256d S = _mm256_blendv_pd(_mm256_set1_pd(sb[8]), _mm256_set1_pd(sa[8]), first);
        for (int i = 7; i >= 0; --i)
            S = _mm256_fmadd_pd(S, t, _mm256_blendv_pd(_mm256_set1_pd(sb[i]), _mm256_set1_pd(sa[i]), first));
        // -x^2 = -zc^2/2 = -(hi + lo)/2 exactly; hi/2 goes to exp as its exact large part.
        __m256d hi = _mm256_mul_pd(zc, zc);
        __m256d lo = _mm256_fmsub_pd(zc, zc, hi);
        const __m256d mh = _mm256_set1_pd(-0.5);
        __m256d small = _mm256_fmadd_pd(mh, lo, _mm256_sub_pd(_mm256_div_pd(R, S), _mm256_set1_pd(0.5625)));
        __m256d r = _mm256_div_pd(exp_hl_pd(_mm256_mul_pd(mh, hi), small), ac);
        y = _mm256_blendv_pd(y, _mm256_blendv_pd(r, _mm256_sub_pd(two, r), neg), inC);
    }
    if (mB != mA) {  // some lane in 0.84375 <= |x| < 1.25: erf(1 + s) - erx = P/Q.
        __m256d s = _mm256_sub_pd(a, one);
        __m256d pq = _mm256_div_pd(poly_pd(s, pa, 6), poly_pd(s, qa, 6));
        __m256d rB = _mm256_blendv_pd(_mm256_sub_pd(_mm256_set1_pd(1.0 - erx), pq),
                                      _mm256_add_pd(one, _mm256_add_pd(_mm256_set1_pd(erx), pq)), neg);
        y = _mm256_blendv_pd(y, rB, inB);
    }
    if (mA) {  // some lane in |x| < 0.84375: erf = x + x R(x^2).
        __m256d zz = _mm256_mul_pd(x, x);
        __m256d xy = _mm256_mul_pd(x, _mm256_div_pd(poly_pd(zz, pp, 4), poly_pd(zz, qq, 5)));
        __m256d rA = _mm256_blendv_pd(
            _mm256_sub_pd(_mm256_set1_pd(0.5), _mm256_add_pd(xy, _mm256_sub_pd(x, _mm256_set1_pd(0.5)))),
            _mm256_sub_pd(one, _mm256_add_pd(x, xy)),
            _mm256_cmp_pd(x, _mm256_set1_pd(0.25), _CMP_LT_OQ));
        y = _mm256_blendv_pd(y, rA, inA);
    }
    y = _mm256_mul_pd(_mm256_set1_pd(0.5), y);
    return _mm256_blendv_pd(y, z, _mm256_cmp_pd(z, z, _CMP_UNORD_Q));  // NaN in, NaN out
}

// ---------------------------------------------------------------- float

static inline __m256 scale_pow2_ps(__m256 p, __m256 n) {
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i n1 = _mm256_srai_epi32(ni, 1);
    __m256i n2 = _mm256_sub_epi32(ni, n1);
    const __m256i bias = _mm256_set1_epi32(127);
    __m256i e1 = _mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23);
    __m256i e2 = _mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23);
    return _mm256_mul_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e1)), _mm256_castsi256_ps(e2));
}

static inline __m256 exp_ps(__m256 x) {
    const __m256 hi = _mm256_set1_ps(88.7228317f);  // largest x with finite expf
    const __m256 lo = _mm256_set1_ps(-103.972084f); // below: 0
    __m256 xc = _mm256_min_ps(hi, _mm256_max_ps(lo, x));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    // Cephes expf minimax polynomial.
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r);
    p = _mm256_add_ps(p, _mm256_set1_ps(1.0f));
    __m256 y = scale_pow2_ps(p, n);
    y = _mm256_blendv_ps(y, _mm256_set1_ps(__builtin_inff()), _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
    y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
    return y;
}

// exp(a + b), the argument as an unevaluated sum (see exp_hl_pd).
static inline __m256 exp_hl_ps(__m256 a, __m256 b) {
    const __m256 hi = _mm256_set1_ps(88.7228317f);
    const __m256 lo = _mm256_set1_ps(-103.972084f);
    __m256 x = _mm256_add_ps(a, b);
    __m256 xc = _mm256_min_ps(hi, _mm256_max_ps(lo, x));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), a);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    r = _mm256_add_ps(r, b);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r);
    p = _mm256_add_ps(p, _mm256_set1_ps(1.0f));
    __m256 y = scale_pow2_ps(p, n);
    y = _mm256_blendv_ps(y, _mm256_set1_ps(__builtin_inff()), _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
    y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
    return y;
}

// Standard normal cdf in float, one formula for every z (no pieces):
//   Phi(-|z|) = erfcx(a) e^{-a^2} / 2,  a = |z| / sqrt2,  Phi(|z|) = 1 - Phi(-|z|),
//   erfcx(a) = (1 + p(q)) / (1 + 2a),   q = (a - 2) / (a + 2) in [-1, 0.68] for a in [0, 10.5],
// p of degree 9 fitted to (1 + 2a) erfcx(a) - 1 for minimal relative error (Lawson-weighted
// least squares; 2.4e-8 with these float coefficients). e^{-a^2} = e^{-z^2/2} with z^2 split
// exactly (FMA), so that the rounding of a is not amplified by a^2 in the tail. |z| is capped at
// 14.8 where e^{-z^2/2} is already 0 in float. *e receives e^{-z^2/2} (for phi(z)).
// Relative error of Phi a few ulp (also in the left tail, down to the subnormal range).
static inline __m256 normal_cdf_ps(__m256 z, __m256* e) {
    const __m256 one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f);
    __m256 zc = _mm256_min_ps(_mm256_set1_ps(14.8f), _mm256_andnot_ps(_mm256_set1_ps(-0.0f), z));
    __m256 a = _mm256_mul_ps(zc, _mm256_set1_ps(0.707106781f));
    __m256 q = _mm256_div_ps(_mm256_sub_ps(a, two), _mm256_add_ps(a, two));
    __m256 p = _mm256_set1_ps(-3.961044131e-04f);
    p = _mm256_fmadd_ps(p, q, _mm256_set1_ps(-1.222338527e-03f));
    p = _mm256_fmadd_ps(p, q, _mm256_set1_ps(1.312568085e-03f));
    p = _mm256_fmadd_ps(p, q, _mm256_set1_ps(8.625354618e-03f));
    p = _mm256_fmadd_ps(p, q, _mm256_set1_ps(-8.060887456e-03f));
    p = _mm256_fmadd_ps(p, q, _mm256_set1_ps(-5.420261994e-02f));
    p = _mm256_fmadd_ps(p, q, _mm256_set1_ps(1.640556604e-01f));
    p = _mm256_fmadd_ps(p, q, _mm256_set1_ps(-1.660315692e-01f));
    p = _mm256_fmadd_ps(p, q, _mm256_set1_ps(-9.276399761e-02f));
    p = _mm256_fmadd_ps(p, q, _mm256_set1_ps(2.769784033e-01f));
    // (1 + p) / (2 (1 + 2a)) = erfcx(a) / 2
    __m256 h = _mm256_div_ps(_mm256_add_ps(one, p), _mm256_fmadd_ps(_mm256_set1_ps(4.0f), a, two));
    __m256 hi = _mm256_mul_ps(zc, zc);
    __m256 lo = _mm256_fmsub_ps(zc, zc, hi);
    const __m256 mh = _mm256_set1_ps(-0.5f);
    __m256 ez = exp_hl_ps(_mm256_mul_ps(mh, hi), _mm256_mul_ps(mh, lo));
    *e = ez;
    h = _mm256_mul_ps(h, ez);  // Phi(-|z|)
    return _mm256_blendv_ps(_mm256_sub_ps(one, h), h, _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_LT_OQ));
}

static inline __m256 expm1_ps(__m256 x) {
    __m256 p = _mm256_set1_ps(1.0f / 362880.0f);
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.0f / 40320.0f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.0f / 5040.0f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, x, _mm256_set1_ps(0.5f));
    __m256 small = _mm256_fmadd_ps(p, _mm256_mul_ps(x, x), x);
    __m256 big = _mm256_sub_ps(exp_ps(x), _mm256_set1_ps(1.0f));
    __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    return _mm256_blendv_ps(big, small, _mm256_cmp_ps(ax, _mm256_set1_ps(0.34657359f), _CMP_LT_OQ));
}

// log(1 + u) for u in [0, 1] as u + u^2 P(u): P of degree 8 fitted to (log1p(u)/u - 1)/u for
// minimal relative error of log1p (Lawson-weighted least squares; 2.8e-8 with these float
// coefficients). No division: this is the hot part of softplus and BCE.
static inline __m256 log1p_unit_ps(__m256 u) {
    __m256 p = _mm256_set1_ps(-3.244023304e-03f);
    p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(1.985145360e-02f));
    p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(-5.695951730e-02f));
    p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(1.060365364e-01f));
    p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(-1.530559212e-01f));
    p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(1.967593879e-01f));
    p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(-2.495413423e-01f));
    p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(3.332996368e-01f));
    p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(-4.999990165e-01f));
    return _mm256_fmadd_ps(_mm256_mul_ps(p, u), u, u);
}

static inline __m256 tanh_ps(__m256 x) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 a = _mm256_andnot_ps(sign, x);
    __m256 z = _mm256_mul_ps(x, x);
    // |x| < 0.625: Cephes tanhf polynomial.
    __m256 p = _mm256_set1_ps(-5.70498872745e-3f);
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(2.06390887954e-2f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-5.37397155531e-2f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.33314422036e-1f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-3.33332819422e-1f));
    __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), x, x);
    __m256 ac = _mm256_min_ps(_mm256_set1_ps(10.0f), a);
    __m256 e = exp_ps(_mm256_add_ps(ac, ac));
    __m256 big = _mm256_sub_ps(_mm256_set1_ps(1.0f),
                               _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
    big = _mm256_or_ps(big, _mm256_and_ps(sign, x));
    return _mm256_blendv_ps(big, small, _mm256_cmp_ps(a, _mm256_set1_ps(0.625f), _CMP_LT_OQ));
}

static inline __m256 sigmoid_ps(__m256 x) {
    __m256 e = exp_ps(_mm256_or_ps(x, _mm256_set1_ps(-0.0f)));
    __m256 r = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
    return _mm256_blendv_ps(_mm256_mul_ps(e, r), r, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ));
}

// ---------------------------------------------------------------- uniform views
// F32 / F64 give the templated kernels one spelling for both types. Templates
// over them live in anonymous namespaces of the *_avx2.cpp files.

struct F64 {
    using T = double;
    using R = __m256d;
    static constexpr int W = 4;
    static R load(const T* p) { return _mm256_loadu_pd(p); }
    static void store(T* p, R v) { _mm256_storeu_pd(p, v); }
    // The first k < W lanes (the others read as zero, are not written).
    static __m256i first(long k) {
        return _mm256_cmpgt_epi64(_mm256_set1_epi64x(k), _mm256_setr_epi64x(0, 1, 2, 3));
    }
    static R load_n(const T* p, long k) { return _mm256_maskload_pd(p, first(k)); }
    static void store_n(T* p, R v, long k) { _mm256_maskstore_pd(p, first(k), v); }
    static R set1(double a) { return _mm256_set1_pd(a); }
    static R zero() { return _mm256_setzero_pd(); }
    static R add(R a, R b) { return _mm256_add_pd(a, b); }
    static R sub(R a, R b) { return _mm256_sub_pd(a, b); }
    static R mul(R a, R b) { return _mm256_mul_pd(a, b); }
    static R div(R a, R b) { return _mm256_div_pd(a, b); }
    static R fma(R a, R b, R c) { return _mm256_fmadd_pd(a, b, c); }   // a b + c
    static R fnma(R a, R b, R c) { return _mm256_fnmadd_pd(a, b, c); } // c - a b
    static R sqrt(R a) { return _mm256_sqrt_pd(a); }
    static R max(R a, R b) { return _mm256_max_pd(a, b); }  // b if either is NaN
    static R min(R a, R b) { return _mm256_min_pd(a, b); }
    static R abs(R a) { return _mm256_andnot_pd(_mm256_set1_pd(-0.0), a); }
    static R neg(R a) { return _mm256_xor_pd(_mm256_set1_pd(-0.0), a); }
    static R gt(R a, R b) { return _mm256_cmp_pd(a, b, _CMP_GT_OQ); }
    static R ge(R a, R b) { return _mm256_cmp_pd(a, b, _CMP_GE_OQ); }
    static R lt(R a, R b) { return _mm256_cmp_pd(a, b, _CMP_LT_OQ); }
    static R select(R m, R t, R f) { return _mm256_blendv_pd(f, t, m); }
    static R ord(R a, R b) { return _mm256_cmp_pd(a, b, _CMP_ORD_Q); }
    static R unord(R a, R b) { return _mm256_cmp_pd(a, b, _CMP_UNORD_Q); }
    static R band(R a, R b) { return _mm256_and_pd(a, b); }
    static R bor(R a, R b) { return _mm256_or_pd(a, b); }
    static R exp(R a) { return exp_pd(a); }
    static R expm1(R a) { return expm1_pd(a); }
    static R log1p_unit(R a) { return log1p_unit_pd(a); }
    static R tanh(R a) { return tanh_pd(a); }
    static R sigmoid(R a) { return sigmoid_pd(a); }
    // GELU z Phi(z) and its derivative Phi(z) + z phi(z).
    static R gelu(R z) { return _mm256_mul_pd(z, normal_cdf_pd(z)); }
    static R gelu_grad(R z) {
        __m256d phi = _mm256_mul_pd(_mm256_set1_pd(0.39894228040143267794), exp_neg_half_sq_pd(z));
        return _mm256_fmadd_pd(z, phi, normal_cdf_pd(z));
    }
    // acc += a, widened to double (acc holds W lanes as one or two registers).
    static void acc_add(__m256d& a0, __m256d&, R v) { a0 = _mm256_add_pd(a0, v); }
};

struct F32 {
    using T = float;
    using R = __m256;
    static constexpr int W = 8;
    static R load(const T* p) { return _mm256_loadu_ps(p); }
    static void store(T* p, R v) { _mm256_storeu_ps(p, v); }
    // The first k < W lanes (the others read as zero, are not written).
    static __m256i first(long k) {
        return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(k)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    }
    static R load_n(const T* p, long k) { return _mm256_maskload_ps(p, first(k)); }
    static void store_n(T* p, R v, long k) { _mm256_maskstore_ps(p, first(k), v); }
    static R set1(double a) { return _mm256_set1_ps(static_cast<float>(a)); }
    static R zero() { return _mm256_setzero_ps(); }
    static R add(R a, R b) { return _mm256_add_ps(a, b); }
    static R sub(R a, R b) { return _mm256_sub_ps(a, b); }
    static R mul(R a, R b) { return _mm256_mul_ps(a, b); }
    static R div(R a, R b) { return _mm256_div_ps(a, b); }
    static R fma(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
    static R fnma(R a, R b, R c) { return _mm256_fnmadd_ps(a, b, c); }
    static R sqrt(R a) { return _mm256_sqrt_ps(a); }
    static R max(R a, R b) { return _mm256_max_ps(a, b); }
    static R min(R a, R b) { return _mm256_min_ps(a, b); }
    static R abs(R a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
    static R neg(R a) { return _mm256_xor_ps(_mm256_set1_ps(-0.0f), a); }
    static R gt(R a, R b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
    static R ge(R a, R b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
    static R lt(R a, R b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
    static R select(R m, R t, R f) { return _mm256_blendv_ps(f, t, m); }
    static R ord(R a, R b) { return _mm256_cmp_ps(a, b, _CMP_ORD_Q); }
    static R unord(R a, R b) { return _mm256_cmp_ps(a, b, _CMP_UNORD_Q); }
    static R band(R a, R b) { return _mm256_and_ps(a, b); }
    static R bor(R a, R b) { return _mm256_or_ps(a, b); }
    static R exp(R a) { return exp_ps(a); }
    static R expm1(R a) { return expm1_ps(a); }
    static R log1p_unit(R a) { return log1p_unit_ps(a); }
    static R tanh(R a) { return tanh_ps(a); }
    static R sigmoid(R a) { return sigmoid_ps(a); }
    static R gelu(R z) {
        __m256 e;
        return _mm256_mul_ps(z, normal_cdf_ps(z, &e));
    }
    static R gelu_grad(R z) {
        __m256 e;
        __m256 cdf = normal_cdf_ps(z, &e);
        return _mm256_fmadd_ps(_mm256_mul_ps(z, _mm256_set1_ps(0.398942280f)), e, cdf);
    }
    static void acc_add(__m256d& a0, __m256d& a1, R v) {
        a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
        a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    }
};

// Sum of the lanes of two double accumulators in a fixed order.
static inline double hsum_pd(__m256d a0, __m256d a1) {
    __m256d a = _mm256_add_pd(a0, a1);
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

}  // namespace
}  // namespace avx2
}  // namespace pb
