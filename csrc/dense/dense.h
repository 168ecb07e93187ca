// The dense layer, fused: Y = act(X W + b) forward, and its backward.
// W is stored (in_features, out_features) = (k, n), as in the design.
// All matrices here are contiguous row-major; the bindings make them so.
#pragma once
#include "activations/activations.h"
#include "common/types.h"
#include "gemm/gemm.h"

namespace pb {

// y (m x n) = act(x (m x k) @ w (k x n) + b). Bias and activation are applied
// in the GEMM write-back. If preact != null it receives z = x w + b (needed by
// backward when !derivative_uses_output(act)). b may be null.
template <typename T>
void dense_forward(const T* x, const T* w, const T* b, index_t m, index_t k, index_t n,
                   Activation act, const ActParams& p, T* y, T* preact);

// Given dy (m x n) and `saved` (y or z, per derivative_uses_output):
//   g  = dy * act'(saved)         (one pass, which also reduces db = sum_rows g)
//   dx (+)= g w^T                  (m x k)   if dx != null
//   dw (+)= x^T g                  (k x n)   if dw != null
//   db (+)= sum_rows g             (n)       if db != null
// `workspace` holds g (m x n); it may be dy itself (g then overwrites dy); if
// null, g is allocated (or dy reused for identity).
// dw_hook, if set, is called on each finished block of dw (k x n, row stride
// n) in the GEMM's write-back: after dx, so it may change w (the compiled
// step's optimiser update). dx_hook, if set, is called likewise on each
// finished block of dx (m x k, row stride k): the compiled step forms the
// layer below's g there (act_backward_block).
template <typename T>
void dense_backward(const T* dy, const T* saved, const T* x, const T* w,
                    index_t m, index_t k, index_t n, Activation act, const ActParams& p,
                    T* dx, bool dx_accumulate, T* dw, bool dw_accumulate,
                    T* db, bool db_accumulate, T* workspace, TileHook dw_hook = {},
                    TileHook dx_hook = {});

// dx (m x k) = g W^T (+ dx if accumulate): dense_backward's input gradient
// alone, for a caller that splits the rows itself. Row i of dx depends only on
// row i of g; gemm picks its kernel by shape, so parts of at least 2 rows and
// more than 512 multiply-adds each get the bits of the unsplit call (smaller
// ones take gemm's one-row or tiny kernel). hook: as dense_backward's dx_hook.
template <typename T>
void dense_input_grad(const T* g, const T* w, index_t m, index_t k, index_t n, T* dx, bool accumulate,
                      TileHook hook = {});

}  // namespace pb
