// General matrix multiply, the engine under every dense layer.
//
//   C = alpha * op(A) op(B) + beta * C,  then the optional epilogue
//
// Matrices are given by a pointer and element strides (rs = row stride,
// cs = column stride), BLIS-style, so X W, G W^T and X^T G are all the same
// call with different strides and nothing is transposed in memory.
// beta == 0 means C is not read (NaN or garbage in C is overwritten); with
// k == 0 or alpha == 0, A and B are not read (C = beta C). Strides may be any
// (also negative); C must not overlap A or B. An epilogue needs cs_c == 1.
// Throws std::invalid_argument for negative dimensions.
// The reduction dimension k is never split across threads: results are
// bit-identical for any thread count on one ISA.
#pragma once
#include "activations/activations.h"
#include "common/types.h"

namespace pb {

// A callback on a finished block of C: fn(ctx, i0, rows, j0, cols), called on
// the thread that computed the block, while it is in cache. It must not call
// gemm itself (the thread's packing buffers are in use).
struct TileHook {
    void (*fn)(const void* ctx, index_t i0, index_t rows, index_t j0, index_t cols) = nullptr;
    const void* ctx = nullptr;
};

// Applied to each block of C after its last k-block is accumulated (the
// write-back): bias_act_forward (preact = C + bias; C = act(preact)) if any
// of bias, act, preact is set, then the tile hook if set.
template <typename T>
struct GemmEpilogue {
    const T* bias = nullptr;          // length n, or null
    Activation act = Activation::identity;
    ActParams params{};
    T* preact = nullptr;              // m x n with row stride ld_preact, or null
    index_t ld_preact = 0;
    TileHook tile{};
};

template <typename T>
void gemm(index_t m, index_t n, index_t k, T alpha,
          const T* a, index_t rs_a, index_t cs_a,
          const T* b, index_t rs_b, index_t cs_b,
          T beta, T* c, index_t rs_c, index_t cs_c,
          const GemmEpilogue<T>* epilogue = nullptr);

}  // namespace pb
