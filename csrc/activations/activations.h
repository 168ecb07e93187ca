// Activation functions and their local gradients: the one table of the C++ core.
//
// Each activation names what its backward needs (the cheapest saved value):
// sigmoid, tanh, ReLU, leaky ReLU (slope >= 0) and ELU (alpha > 0) differentiate
// from their *output* y; GELU, softplus and leaky ReLU with a negative slope
// from their *input* z. `derivative_uses_output` is the single source of truth
// for that choice; the dense layer and the autograd graph both ask it.
//
//   act          forward y = f(z)                      f'(z) written as
//   identity     z                                     1
//   relu         max(z, 0)                             y > 0            (0 at z = 0)
//   leaky_relu   z > 0 ? z : alpha z                   y > 0 ? 1 : alpha
//   elu          z > 0 ? z : alpha (e^z - 1)           y > 0 ? 1 : y + alpha
//   sigmoid      1 / (1 + e^-z)                        y (1 - y)
//   tanh         tanh z                                1 - y^2
//   gelu         z Phi(z)   (exact, erf form)          Phi(z) + z phi(z)
//   gelu_tanh    0.5 z (1 + tanh(sqrt(2/pi)(z + 0.044715 z^3)))   its derivative
//   softplus     (1/beta) log(1 + e^(beta z)); z if beta z > threshold
//                                                      sigmoid(beta z); 1 above threshold
//
// All are finite and warning-free for |z| up to and beyond 1000 in float32 and
// float64 (no overflow in exp, no 0 * inf).
#pragma once
#include <cstdint>
#include "common/types.h"

namespace pb {

enum class Activation : int {
    identity = 0,
    relu = 1,
    leaky_relu = 2,
    elu = 3,
    sigmoid = 4,
    tanh = 5,
    gelu = 6,
    gelu_tanh = 7,
    softplus = 8,
};
constexpr int kNumActivations = 9;

struct ActParams {
    double alpha = 0.01;      // leaky_relu slope, elu alpha
    double beta = 1.0;        // softplus beta
    double threshold = 20.0;  // softplus threshold
};

// The activation's name as the Python API spells it ("relu", "gelu_tanh", ...).
const char* activation_name(Activation act);

// True if f'(z) is computed from the output y, false if from the input z.
bool derivative_uses_output(Activation act, const ActParams& p);

// y = f(z) elementwise over n contiguous values; y == z (in place) is allowed.
template <typename T>
void act_forward(Activation act, const ActParams& p, const T* z, T* y, index_t n);

// g = upstream * f'(.) elementwise; `saved` is y or z as derivative_uses_output
// says. g == upstream (in place) is allowed.
template <typename T>
void act_backward(Activation act, const ActParams& p, const T* upstream, const T* saved,
                  T* g, index_t n);

// The GEMM write-back epilogue of the dense layer, on a rows x cols block of C
// with row stride ldc (unit column stride): z = c + bias[j]; if preact != null,
// preact[i*ldp + j] = z; then c = f(z). bias may be null.
template <typename T>
void bias_act_forward(Activation act, const ActParams& p, T* c, index_t rows, index_t cols,
                      index_t ldc, const T* bias, T* preact, index_t ldp);

// The first pass of the dense backward: g = upstream * f'(saved) over an m x n
// contiguous block, and, when db != null, db[j] (+)= sum_i g[i, j] in the same
// pass (fixed row order: bit-identical for any thread count). g may alias upstream.
template <typename T>
void act_backward_bias(Activation act, const ActParams& p, const T* upstream, const T* saved,
                       T* g, index_t m, index_t n, T* db, bool db_accumulate);

// g = upstream * f'(saved) over columns [j0, j1) of `rows` rows with row
// stride ld (all three arrays), on the calling thread: the epilogue of a
// GEMM that writes `upstream` (the compiled step's dx GEMM forms the layer
// below's g while each block of dx is in cache). The same arithmetic per
// element as act_backward and act_backward_bias. g may alias upstream.
template <typename T>
void act_backward_block(Activation act, const ActParams& p, const T* upstream, const T* saved, T* g,
                        index_t rows, index_t ld, index_t j0, index_t j1);

// Maxout over `pieces` stacked blocks of n values: z is pieces x n contiguous.
// y[i] = max_k z[k, i]; argmax[i] = first k attaining it (NaN wins: a NaN piece
// propagates).
template <typename T>
void maxout_forward(const T* z, index_t pieces, index_t n, T* y, std::int32_t* argmax);

// gz[k, i] = upstream[i] if argmax[i] == k else 0 (gz is pieces x n).
template <typename T>
void maxout_backward(const T* upstream, const std::int32_t* argmax, index_t pieces, index_t n,
                     T* gz);

}  // namespace pb
