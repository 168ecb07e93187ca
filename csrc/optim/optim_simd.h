// Entry points of the vector optimiser updates, called by optim.cpp on one
// contiguous range each: optim_avx2.cpp (compiled with -mavx2 -mfma) when
// active_isa() == avx2, optim_avx512.cpp (and -mavx512f -mavx512vl) when it is
// avx512. Both run optim_kernels_x86.h's loops, so they give the same bits.
#pragma once
#include "optim/optim_coeffs.h"

namespace pb {

#define PB_OPTIM_SIMD_DECLS                                                                                   \
    void sgd_range(float* p, const float* g, float* buf, index_t n, const SgdCoeffs& k);                      \
    void sgd_range(double* p, const double* g, double* buf, index_t n, const SgdCoeffs& k);                   \
    void adam_range(float* p, const float* g, float* m, float* v, float* vmax, index_t n, const AdamCoeffs& k); \
    void adam_range(double* p, const double* g, double* m, double* v, double* vmax, index_t n,               \
                    const AdamCoeffs& k);                                                                     \
    void rmsprop_range(float* p, const float* g, float* sq, float* gavg, float* buf, index_t n,               \
                       const RmspropCoeffs& k);                                                               \
    void rmsprop_range(double* p, const double* g, double* sq, double* gavg, double* buf, index_t n,         \
                       const RmspropCoeffs& k);

namespace avx2 {
PB_OPTIM_SIMD_DECLS
}  // namespace avx2

namespace avx512 {
PB_OPTIM_SIMD_DECLS
}  // namespace avx512

#undef PB_OPTIM_SIMD_DECLS

}  // namespace pb
