// Sums used by broadcasting gradients and bias reductions. Fixed summation
// order (independent of the thread count); the reduced dimension is never
// split across threads.
#pragma once
#include "common/types.h"

namespace pb {

// out[j] (+)= sum_i x[i*ldx + j] for a rows x cols block (sum over leading axes).
template <typename T>
void sum_rows(const T* x, index_t rows, index_t cols, index_t ldx, T* out, bool accumulate);

// out[i] (+)= sum_j x[i*ldx + j] (sum over the trailing axis).
template <typename T>
void sum_cols(const T* x, index_t rows, index_t cols, index_t ldx, T* out, bool accumulate);

}  // namespace pb
