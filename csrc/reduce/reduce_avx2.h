// Entry points of reduce_avx2.cpp (compiled with -mavx2 -mfma), called by
// reduce.cpp when active_isa() == avx2. Both keep the portable summation order
// exactly, so the two ISAs give bit-identical sums.
#pragma once
#include "common/types.h"

namespace pb {
namespace avx2 {

// acc[j - j0] += x[i*ldx + j] for i = 0..rows-1 in order, j in [j0, j1).
void sum_rows_block(const float* x, index_t rows, index_t ldx, index_t j0, index_t j1, double* acc);
void sum_rows_block(const double* x, index_t rows, index_t ldx, index_t j0, index_t j1, double* acc);

// Sum of x[0..n) in the 8-lane order of reduce.cpp's row_sum.
double row_sum(const float* x, index_t n);
double row_sum(const double* x, index_t n);

}  // namespace avx2
}  // namespace pb
