// Sums for broadcasting gradients and bias reductions, with one fixed order:
//   sum_rows: each column is summed over rows from first to last, in double;
//             threads take blocks of columns, never rows.
//   sum_cols: each row is summed in double with 8 running lane sums
//             (lane l takes j = l mod 8, in order), combined as
//             ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7)); threads take rows.
// The AVX2 versions follow the same order, so results do not depend on the
// thread count or the ISA.
#include "reduce/reduce.h"

#include <algorithm>

#include "activations/avx2_guard.h"
#include "common/thread_pool.h"
#include "reduce/reduce_avx2.h"

namespace pb {
namespace {

constexpr index_t kCols = 512;  // columns per task of sum_rows

// The cost of an element of a sum in the thread pool's units (about 0.01 ns,
// thread_pool.h): 512 x 1024 floats take 49 us (sum_rows) and 39 us
// (sum_cols) on one Zen 5 core, 0.08-0.09 ns an element. (Counted as 1
// before, the bias gradient of a 1024-wide layer at batch 512, the compiled
// step's db, ran on one thread while the other waited: 49 -> 26 us on two.)
constexpr double kSumCost = 10.0;

template <typename T>
void sum_rows_block(const T* x, index_t rows, index_t ldx, index_t j0, index_t j1, double* acc) {
    PB_IF_AVX2(avx2::sum_rows_block(x, rows, ldx, j0, j1, acc));
    for (index_t i = 0; i < rows; ++i) {
        const T* xi = x + i * ldx;
        for (index_t j = j0; j < j1; ++j) acc[j - j0] += static_cast<double>(xi[j]);
    }
}

template <typename T>
double row_sum(const T* x, index_t n) {
    PB_IF_AVX2(avx2::row_sum(x, n));
    double l[8] = {};
    for (index_t j = 0; j < n; ++j) l[j & 7] += static_cast<double>(x[j]);
    double t0 = l[0] + l[4], t1 = l[1] + l[5], t2 = l[2] + l[6], t3 = l[3] + l[7];
    return (t0 + t2) + (t1 + t3);
}

template <typename T>
T store(T old, double s, bool accumulate) {
    return static_cast<T>(accumulate ? static_cast<double>(old) + s : s);
}

}  // namespace

template <typename T>
void sum_rows(const T* x, index_t rows, index_t cols, index_t ldx, T* out, bool accumulate) {
    if (cols <= 0) return;
    index_t tasks = (cols + kCols - 1) / kCols;
    parallel_for(tasks, kSumCost * static_cast<double>(rows) * static_cast<double>(cols), [&](index_t b, index_t e) {
        double acc[kCols];
        for (index_t t = b; t < e; ++t) {
            index_t j0 = t * kCols, j1 = std::min(j0 + kCols, cols);
            std::fill(acc, acc + (j1 - j0), 0.0);
            if (rows > 0) sum_rows_block(x, rows, ldx, j0, j1, acc);
            for (index_t j = j0; j < j1; ++j) out[j] = store(out[j], acc[j - j0], accumulate);
        }
    });
}

template <typename T>
void sum_cols(const T* x, index_t rows, index_t cols, index_t ldx, T* out, bool accumulate) {
    if (rows <= 0) return;
    parallel_for(rows, kSumCost * static_cast<double>(rows) * static_cast<double>(cols), [&](index_t b, index_t e) {
        for (index_t i = b; i < e; ++i) out[i] = store(out[i], cols > 0 ? row_sum(x + i * ldx, cols) : 0.0, accumulate);
    });
}

template void sum_rows<float>(const float*, index_t, index_t, index_t, float*, bool);
template void sum_rows<double>(const double*, index_t, index_t, index_t, double*, bool);
template void sum_cols<float>(const float*, index_t, index_t, index_t, float*, bool);
template void sum_cols<double>(const double*, index_t, index_t, index_t, double*, bool);

}  // namespace pb
