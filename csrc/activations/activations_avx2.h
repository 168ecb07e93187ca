// Entry points of activations_avx2.cpp (compiled with -mavx2 -mfma), called by
// the dispatching code in activations.cpp only when active_isa() == avx2.
// Plain declarations: no inline code may be shared across the ISA boundary.
// Each runs serially on its range; threading happens in activations.cpp.
#pragma once
#include "activations/activations.h"

namespace pb {
namespace avx2 {

void act_forward(Activation act, const ActParams& p, const float* z, float* y, index_t n);
void act_forward(Activation act, const ActParams& p, const double* z, double* y, index_t n);

void act_backward(Activation act, const ActParams& p, const float* up, const float* saved, float* g,
                  index_t n);
void act_backward(Activation act, const ActParams& p, const double* up, const double* saved, double* g,
                  index_t n);

void bias_act_forward(Activation act, const ActParams& p, float* c, index_t rows, index_t cols,
                      index_t ldc, const float* bias, float* preact, index_t ldp);
void bias_act_forward(Activation act, const ActParams& p, double* c, index_t rows, index_t cols,
                      index_t ldc, const double* bias, double* preact, index_t ldp);

// Columns [j0, j1) of act_backward_bias on an m x n block: g = up * f'(saved), and
// acc[j - j0] += g[i, j] for i = 0..m-1 in order (acc is double, length j1 - j0).
// acc == null: no reduction.
void act_backward_cols(Activation act, const ActParams& p, const float* up, const float* saved,
                       float* g, index_t m, index_t n, index_t j0, index_t j1, double* acc);
void act_backward_cols(Activation act, const ActParams& p, const double* up, const double* saved,
                       double* g, index_t m, index_t n, index_t j0, index_t j1, double* acc);

// Maxout forward on outputs [lo, hi) of z (pieces x n): y[i] = max_k z[k, i], argmax[i] =
// the first k attaining it, a NaN piece wins once (the rule of activations.cpp).
void maxout_forward(const float* z, index_t pieces, index_t n, index_t lo, index_t hi, float* y,
                    std::int32_t* argmax);
void maxout_forward(const double* z, index_t pieces, index_t n, index_t lo, index_t hi, double* y,
                    std::int32_t* argmax);

}  // namespace avx2
}  // namespace pb
