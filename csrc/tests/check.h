// Tiny helpers for the native tests: no framework, one line per failure.
#pragma once
#include <cmath>
#include <cstdio>

namespace pbtest {

// |got - want| <= atol + rtol |want|, with NaN == NaN and inf == inf.
inline bool close(double got, double want, double rtol, double atol) {
    if (std::isnan(want)) return std::isnan(got);
    if (std::isinf(want)) return got == want;
    return std::fabs(got - want) <= atol + rtol * std::fabs(want);
}

}  // namespace pbtest

// Records a failure with its location and a printf-style message.
#define PB_CHECK(failures, cond, ...)                                  \
    do {                                                               \
        if (!(cond)) {                                                 \
            ++(failures);                                              \
            std::fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);  \
            std::fprintf(stderr, __VA_ARGS__);                         \
            std::fprintf(stderr, "\n");                                \
        }                                                              \
    } while (0)
