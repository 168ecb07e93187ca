// The dense layer on top of the GEMM driver and the activation kernels.
//
// Forward is one GEMM whose write-back epilogue adds the bias, keeps the
// pre-activation if asked and applies the activation on each block of Y while
// it is in cache: Y is written once.
//
// Backward makes one elementwise pass that forms G = dY * f'(saved) and
// reduces db = sum_rows G at the same time, then two GEMMs on G read with
// strides (nothing is transposed in memory):
//   dX (m x k) = G W^T :  A = G (row-major), B(p, j) = W[j, p]  (rs 1, cs n)
//   dW (k x n) = X^T G :  A(i, p) = X[p, i]  (rs 1, cs k), B = G (row-major)
// Accumulation into dX / dW is the GEMM's beta = 1. dX comes first, so a hook
// on dW's blocks (the compiled step's optimiser update) may change W.
#include "dense/dense.h"

#include <cstddef>
#include <memory>

#include "gemm/gemm.h"
#include "reduce/reduce.h"

namespace pb {

template <typename T>
void dense_forward(const T* x, const T* w, const T* b, index_t m, index_t k, index_t n, Activation act,
                   const ActParams& p, T* y, T* preact) {
    GemmEpilogue<T> epi;
    epi.bias = b;
    epi.act = act;
    epi.params = p;
    epi.preact = preact;
    epi.ld_preact = n;
    const bool need_epilogue = b != nullptr || act != Activation::identity || preact != nullptr;
    gemm<T>(m, n, k, T(1), x, k, 1, w, n, 1, T(0), y, n, 1, need_epilogue ? &epi : nullptr);
}

template <typename T>
void dense_input_grad(const T* g, const T* w, index_t m, index_t k, index_t n, T* dx, bool accumulate,
                      TileHook hook) {
    GemmEpilogue<T> epi;
    epi.tile = hook;
    gemm<T>(m, k, n, T(1), g, n, 1, w, 1, n, accumulate ? T(1) : T(0), dx, k, 1, hook.fn != nullptr ? &epi : nullptr);
}

template <typename T>
void dense_backward(const T* dy, const T* saved, const T* x, const T* w, index_t m, index_t k, index_t n,
                    Activation act, const ActParams& p, T* dx, bool dx_accumulate, T* dw, bool dw_accumulate,
                    T* db, bool db_accumulate, T* workspace, TileHook dw_hook, TileHook dx_hook) {
    const T* g = dy;
    std::unique_ptr<T[]> owned;  // uninitialised: act_backward_bias writes every element
    if (act == Activation::identity) {
        if (db != nullptr) sum_rows<T>(dy, m, n, n, db, db_accumulate);
    } else {
        T* gw = workspace;
        if (gw == nullptr) {
            owned.reset(new T[static_cast<std::size_t>(m) * static_cast<std::size_t>(n)]);
            gw = owned.get();
        }
        act_backward_bias<T>(act, p, dy, saved, gw, m, n, db, db_accumulate);
        g = gw;
    }
    if (dx != nullptr) dense_input_grad<T>(g, w, m, k, n, dx, dx_accumulate, dx_hook);
    if (dw != nullptr) {
        GemmEpilogue<T> epi;
        epi.tile = dw_hook;
        gemm<T>(k, n, m, T(1), x, 1, k, g, n, 1, dw_accumulate ? T(1) : T(0), dw, n, 1,
                dw_hook.fn != nullptr ? &epi : nullptr);
    }
}

template void dense_forward<float>(const float*, const float*, const float*, index_t, index_t, index_t, Activation,
                                   const ActParams&, float*, float*);
template void dense_forward<double>(const double*, const double*, const double*, index_t, index_t, index_t,
                                    Activation, const ActParams&, double*, double*);
template void dense_input_grad<float>(const float*, const float*, index_t, index_t, index_t, float*, bool, TileHook);
template void dense_input_grad<double>(const double*, const double*, index_t, index_t, index_t, double*, bool,
                                       TileHook);
template void dense_backward<float>(const float*, const float*, const float*, const float*, index_t, index_t,
                                    index_t, Activation, const ActParams&, float*, bool, float*, bool, float*, bool,
                                    float*, TileHook, TileHook);
template void dense_backward<double>(const double*, const double*, const double*, const double*, index_t, index_t,
                                     index_t, Activation, const ActParams&, double*, bool, double*, bool, double*,
                                     bool, double*, TileHook, TileHook);

}  // namespace pb
