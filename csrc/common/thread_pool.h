// The one thread pool of the library.
//
// Policy (see docs/architecture.md):
// - One pool, created lazily, with num_threads-1 workers; the calling thread
//   does a share of every parallel_for.
// - Work below a threshold stays on the calling thread: on a 2-core machine a
//   second thread costs more than it saves on a small GEMM.
// - Each thread starts with a contiguous share of the *tasks* (so data a
//   thread produced in one kernel tends to be read by the same thread in the
//   next) and claims it a chunk at a time; a thread that finishes early takes
//   chunks from the back of the others' shares. On a virtual machine whose two
//   cores often run at different speeds, a static split waits for the slower
//   one; this way the faster does more. A kernel splits a reduction only
//   into blocks fixed by the shape (never by the thread count) whose partial
//   sums it adds in a fixed order, and a task's result does not depend on
//   which thread runs it or with which neighbours, so results are
//   bit-identical for any thread count and any schedule.
// - If the pool is busy (another Python thread is inside a kernel), the caller
//   runs its whole range itself: kernels are safe to call concurrently. So
//   does a parallel_for called from inside a task of another (a kernel that
//   splits rows itself and calls threaded kernels on each part).
#pragma once
#include "common/types.h"

namespace pb {

int get_num_threads();
// n >= 1. Throws std::invalid_argument otherwise.
void set_num_threads(int n);

// One iteration of a spin-wait: tells the core this thread is waiting.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

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

// Calls fn(begin, end) over disjoint ranges covering [0, n_tasks), on at most
// get_num_threads() threads. `work` is the total work of the call; the number
// of threads used is limited so that each gets >= kMinWorkPerThread. `grain`
// is the fewest tasks one call of fn takes (but the last of a share): a kernel
// whose fn pays a set-up cost per call (packing an operand) raises it, and
// kStaticSplit gives each thread its whole share in one call.
// Exceptions thrown by fn on any thread are rethrown on the caller.
constexpr index_t kStaticSplit = index_t(1) << 40;
void parallel_for(index_t n_tasks, double work, index_t grain, RangeFn fn);

template <typename F>
inline void parallel_for(index_t n_tasks, double work, index_t grain, F&& f) {
    parallel_for(n_tasks, work, grain, RangeFn(f));
}

template <typename F>
inline void parallel_for(index_t n_tasks, double work, F&& f) {
    parallel_for(n_tasks, work, 1, RangeFn(f));
}

}  // namespace pb
