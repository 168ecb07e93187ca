// Losses on raw logits, each returning the loss and its gradient from one pass.
// Row reductions use a fixed order (bit-identical for any thread count) and
// accumulate in double. Targets out of range raise std::invalid_argument
// naming the row and value; nothing is read out of bounds.
#pragma once
#include <cstdint>
#include "common/types.h"

namespace pb {

// Fused, stable softmax + cross-entropy over logits (n x c, contiguous).
// loss_rows[i] = logsumexp(logits[i]) - logits[i, t_i]  (always written, length n)
// Returns sum_i loss_rows[i] (caller divides by n for "mean").
// If dlogits != null: dlogits = (softmax(logits) - onehot(t)) * grad_scale.
template <typename T>
double softmax_cross_entropy(const T* logits, index_t n, index_t c, const std::int64_t* targets,
                             T* loss_rows, T* dlogits, T grad_scale);

// Rows [r0, r1) of softmax_cross_entropy, on the calling thread, for a caller
// that splits the rows itself: loss[i] = logsumexp(logits[i]) - logits[i, t_i]
// in double, and the rows of dlogits (if not null), exactly as
// softmax_cross_entropy computes them. Targets must have passed
// check_class_targets.
template <typename T>
void softmax_cross_entropy_rows(const T* logits, index_t r0, index_t r1, index_t c, const std::int64_t* targets,
                                double* loss, T* dlogits, T grad_scale);

// Throws std::invalid_argument naming fn, the first row whose target is not
// in [0, c) and its value.
void check_class_targets(const char* fn, const std::int64_t* targets, index_t n, index_t c);

// dlogits[i] = (softmax(logits[i]) - onehot(t_i)) * row_scale[i]  (reduction "none").
template <typename T>
void softmax_cross_entropy_backward(const T* logits, index_t n, index_t c,
                                    const std::int64_t* targets, const T* row_scale, T* dlogits);

// Row-wise softmax and log-softmax (n x c contiguous) and their backward passes:
//   softmax:      gx = y * (gy - sum_j gy_j y_j)
//   log_softmax:  gx = gy - exp(y) * sum_j gy_j
template <typename T> void softmax_forward(const T* x, index_t n, index_t c, T* y);
template <typename T> void softmax_backward(const T* gy, const T* y, index_t n, index_t c, T* gx);
template <typename T> void log_softmax_forward(const T* x, index_t n, index_t c, T* y);
template <typename T> void log_softmax_backward(const T* gy, const T* y, index_t n, index_t c, T* gx);

// Mean squared error pieces over n elements: returns sum (a - b)^2;
// elem (nullable) receives (a - b)^2; grad (nullable) receives 2 (a - b) * grad_scale.
template <typename T>
double squared_error(const T* a, const T* b, index_t n, T* elem, T* grad, T grad_scale);

// Binary cross-entropy with logits over n elements, stable:
//   l = max(z, 0) - z y + log1p(exp(-|z|))
// returns sum l; elem (nullable) receives l; grad (nullable) receives (sigmoid(z) - y) * grad_scale.
template <typename T>
double bce_with_logits(const T* z, const T* y, index_t n, T* elem, T* grad, T grad_scale);

}  // namespace pb
