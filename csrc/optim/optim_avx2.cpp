// Optimiser updates, AVX2+FMA: optim_kernels_x86.h's loops over ymm vectors.
#include "optim/optim_simd.h"
#include "activations/avx2_guard.h"

#if PB_HAVE_AVX2_KERNELS
#include "activations/simd_avx2.h"
#include "optim/optim_kernels_x86.h"

namespace pb {
namespace avx2 {

PB_OPTIM_SIMD_DEFS(F32, F64)

}  // namespace avx2
}  // namespace pb
#endif  // PB_HAVE_AVX2_KERNELS
