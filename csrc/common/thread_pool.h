// The one thread pool of the library.
//
// Policy (see docs/architecture.md):
// - One pool, created lazily, with num_threads-1 workers; the calling thread
//   does a share of every parallel_for.
// - Work below a threshold stays on the calling thread: on a 2-core machine a
//   second thread costs more than it saves on a small GEMM.
// - Work is split statically into contiguous ranges of *tasks*; a kernel never
//   splits a reduction dimension over tasks, so results are bit-identical for
//   any thread count.
// - If the pool is busy (another Python thread is inside a kernel), the caller
//   runs its whole range itself: kernels are safe to call concurrently.
#pragma once
#include "common/types.h"

namespace pb {

int get_num_threads();
// n >= 1. Throws std::invalid_argument otherwise.
void set_num_threads(int n);

// Smallest amount of work (in flops or element operations) worth a thread.
constexpr double kMinWorkPerThread = 2.0e6;

// A non-owning reference to a callable `void(index_t begin, index_t end)`.
class RangeFn {
public:
    template <typename F>
    RangeFn(F& f) : obj_(&f), call_([](void* o, index_t b, index_t e) { (*static_cast<F*>(o))(b, e); }) {}
    void operator()(index_t b, index_t e) const { call_(obj_, b, e); }
private:
    void* obj_;
    void (*call_)(void*, index_t, index_t);
};

// Calls fn(begin, end) over a static partition of [0, n_tasks) into at most
// get_num_threads() contiguous ranges. `work` is the total work of the call;
// the number of threads used is limited so that each gets >= kMinWorkPerThread.
// Exceptions thrown by fn on any thread are rethrown on the caller.
void parallel_for(index_t n_tasks, double work, RangeFn fn);

template <typename F>
inline void parallel_for(index_t n_tasks, double work, F&& f) {
    parallel_for(n_tasks, work, RangeFn(f));
}

}  // namespace pb
