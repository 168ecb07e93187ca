// Entry points of optim_avx2.cpp (compiled with -mavx2 -mfma), called by
// optim.cpp when active_isa() == avx2, on one contiguous range each.
#pragma once
#include "optim/optim_coeffs.h"

namespace pb {
namespace avx2 {

void sgd_range(float* p, const float* g, float* buf, index_t n, const SgdCoeffs& k);
void sgd_range(double* p, const double* g, double* buf, index_t n, const SgdCoeffs& k);
void adam_range(float* p, const float* g, float* m, float* v, float* vmax, index_t n, const AdamCoeffs& k);
void adam_range(double* p, const double* g, double* m, double* v, double* vmax, index_t n, const AdamCoeffs& k);
void rmsprop_range(float* p, const float* g, float* sq, float* gavg, float* buf, index_t n,
                   const RmspropCoeffs& k);
void rmsprop_range(double* p, const double* g, double* sq, double* gavg, double* buf, index_t n,
                   const RmspropCoeffs& k);

}  // namespace avx2
}  // namespace pb
