// Entry points of losses_avx2.cpp (compiled with -mavx2 -mfma), called by
// losses.cpp when active_isa() == avx2. Each runs serially on its range.
#pragma once
#include <cstdint>
#include "common/types.h"

namespace pb {
namespace avx2 {

// Rows [r0, r1) of the fused softmax + cross-entropy: loss[i] (double, nullable)
// = logsumexp(x_i) - x_i[t_i]; d (nullable) = (softmax - onehot) * s_i with
// s_i = row_scale ? row_scale[i] : scale. Targets were validated by the caller.
void ce_rows(const float* x, index_t r0, index_t r1, index_t c, const std::int64_t* t, double* loss,
             float* d, float scale, const float* row_scale);
void ce_rows(const double* x, index_t r0, index_t r1, index_t c, const std::int64_t* t, double* loss,
             double* d, double scale, const double* row_scale);

// Rows [r0, r1): y = softmax(x) or, if log, log_softmax(x).
void softmax_rows(const float* x, index_t r0, index_t r1, index_t c, float* y, bool log);
void softmax_rows(const double* x, index_t r0, index_t r1, index_t c, double* y, bool log);

// BCE with logits over n elements; returns the sum of l in double (lane order fixed).
double bce_range(const float* z, const float* y, index_t n, float* elem, float* grad, float scale);
double bce_range(const double* z, const double* y, index_t n, double* elem, double* grad, double scale);

// Rows [r0, r1) of the softmax backward (y = softmax output): gx = y (gy - sum_j gy_j y_j),
// or, if log, of the log-softmax backward (y = log-softmax output): gx = gy - exp(y) sum_j gy_j.
// Row sums in double, lane order fixed.
void softmax_backward_rows(const float* gy, const float* y, index_t r0, index_t r1, index_t c, float* gx,
                           bool log);
void softmax_backward_rows(const double* gy, const double* y, index_t r0, index_t r1, index_t c, double* gx,
                           bool log);

// Squared error over n elements; returns sum (a - b)^2 in double (lane order fixed).
double squared_error_range(const float* a, const float* b, index_t n, float* elem, float* grad, float scale);
double squared_error_range(const double* a, const double* b, index_t n, double* elem, double* grad,
                           double scale);

}  // namespace avx2
}  // namespace pb
