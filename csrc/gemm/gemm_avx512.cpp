// Kernels of the avx512 path that differ from the AVX2 ones: today only the
// batch-1 row (row_kernel_x86.h). The rest of that path is the AVX2 kernels
// (gemm.cpp's table).
//
// Compiled with -mavx2 -mfma -mavx512f -mavx512vl (this file only), for
// AVX-512VL's 32 vector registers rather than its 512-bit width: the row
// kernel stays on 256-bit vectors but keeps 16 accumulators, so a strip covers
// 128 floats and a 784 x 128 layer is one pass over B (Zen 4, one core, the
// kernel alone: 4.4 -> 3.5 us; 512-bit vectors measured 3.6). 256-bit EVEX
// instructions also keep Intel CPUs out of their AVX-512 frequency license.
// The same ODR rule as gemm_avx2.cpp: nothing shared with other ISAs' files.
#include "gemm/gemm_kernels.h"
#include "gemm/row_kernel_x86.h"

namespace pb {
namespace avx512 {

void gemm_row_f32(index_t j0, index_t j1, index_t k, float alpha, const float* a, index_t inc_a, const float* b,
                  index_t rs_b, float beta, float* c) {
    row_kernel::row_impl<row_kernel::RowF32, 16>(j0, j1, k, alpha, a, inc_a, b, rs_b, beta, c);
}
void gemm_row_f64(index_t j0, index_t j1, index_t k, double alpha, const double* a, index_t inc_a,
                  const double* b, index_t rs_b, double beta, double* c) {
    row_kernel::row_impl<row_kernel::RowF64, 16>(j0, j1, k, alpha, a, inc_a, b, rs_b, beta, c);
}

}  // namespace avx512
}  // namespace pb
