// Basic types shared by every kernel.
#pragma once
#include <cstdint>

namespace pb {

using index_t = std::int64_t;

// The SIMD path a kernel runs on. Chosen once at import (see dispatch.h);
// every module keeps one implementation per entry and indexes it by this.
// Each path runs on every CPU that runs the next: avx512 is the AVX2 kernels
// plus those that AVX-512F/VL makes faster (today the batch-1 GEMM row).
enum class Isa : int { generic = 0, avx2 = 1, avx512 = 2 };
constexpr int kNumIsa = 3;

// How a loss is reduced over the batch, as in PyTorch.
enum class Reduction : int { none = 0, mean = 1, sum = 2 };

}  // namespace pb
