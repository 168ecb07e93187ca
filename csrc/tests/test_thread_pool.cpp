// Native tests of the thread pool's schedule: every task runs exactly once,
// whatever the thread count, grain and speed of each thread; a thread that
// finishes early takes work from a slow one; a static split hands each
// thread its share in one call; exceptions reach the caller.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/core_distance.h"
#include "common/thread_pool.h"
#include "tests/check.h"
#include "tests/tests.h"

using pb::index_t;

namespace {

// Enough work per call for parallel_for to use every thread.
constexpr double kBigWork = 1e12;

struct Record {
    std::vector<std::atomic<int>> runs;    // times each task ran
    std::atomic<index_t> by_caller{0};     // tasks the calling thread ran
    std::atomic<int> calls{0};             // calls of fn
    explicit Record(index_t n) : runs(static_cast<size_t>(n)) {}
};

// Runs n tasks; the thread that is not the caller (slow_worker) or the caller
// (!slow_worker) sleeps in each call, as a core taken by another process would.
void run_tasks(Record& r, index_t n, index_t grain, bool slow_worker, int sleep_us) {
    const std::thread::id caller = std::this_thread::get_id();
    pb::parallel_for(n, kBigWork, grain, [&](index_t b, index_t e) {
        const bool on_caller = std::this_thread::get_id() == caller;
        if (sleep_us > 0 && on_caller != slow_worker)
            std::this_thread::sleep_for(std::chrono::microseconds(sleep_us));
        for (index_t t = b; t < e; ++t) r.runs[static_cast<size_t>(t)].fetch_add(1);
        if (on_caller) r.by_caller.fetch_add(e - b);
        r.calls.fetch_add(1);
    });
}

int every_task_once() {
    int failures = 0;
    const index_t sizes[] = {1, 2, 3, 7, 16, 100, 1001};
    const index_t grains[] = {1, 3, pb::kStaticSplit};
    for (index_t n : sizes)
        for (index_t grain : grains)
            for (int slow = 0; slow < 3; ++slow) {
                Record r(n);
                run_tasks(r, n, grain, slow == 1, slow == 0 ? 0 : 200);
                for (index_t t = 0; t < n; ++t)
                    PB_CHECK(failures, r.runs[static_cast<size_t>(t)].load() == 1,
                             "pool: %d threads, %lld tasks, grain %lld: task %lld ran %d times",
                             pb::get_num_threads(), (long long)n, (long long)grain, (long long)t,
                             r.runs[static_cast<size_t>(t)].load());
            }
    return failures;
}

// With two threads and one of them slow, the other ends up running more than
// its half.
int fast_thread_helps() {
    int failures = 0;
    if (pb::get_num_threads() != 2) return 0;
    const index_t n = 64;
    for (int slow_worker = 0; slow_worker < 2; ++slow_worker) {
        Record r(n);
        run_tasks(r, n, 1, slow_worker == 1, 2000);
        const index_t mine = r.by_caller.load();
        PB_CHECK(failures, slow_worker ? mine > n / 2 : mine < n / 2,
                 "pool: slow %s, but the caller ran %lld of %lld tasks", slow_worker ? "worker" : "caller",
                 (long long)mine, (long long)n);
    }
    return failures;
}

// kStaticSplit: one call per share (a kernel that packs per call packs once).
int static_split_one_call_per_share() {
    int failures = 0;
    const int threads = pb::get_num_threads();
    Record r(40);
    run_tasks(r, 40, pb::kStaticSplit, false, 0);
    PB_CHECK(failures, r.calls.load() == threads, "pool: static split over %d threads made %d calls", threads,
             r.calls.load());
    return failures;
}

// After `what`, a plain parallel_for still runs each of its tasks once.
int still_runs_every_task_once(const char* what) {
    int failures = 0;
    Record r(10);
    run_tasks(r, 10, 1, false, 0);
    for (index_t t = 0; t < 10; ++t)
        PB_CHECK(failures, r.runs[static_cast<size_t>(t)].load() == 1, "pool: after %s, task %lld ran %d times", what,
                 (long long)t, r.runs[static_cast<size_t>(t)].load());
    return failures;
}

int exceptions_reach_the_caller() {
    int failures = 0;
    bool caught = false;
    try {
        pb::parallel_for(100, kBigWork, [&](index_t b, index_t e) {
            if (b <= 77 && 77 < e) throw std::runtime_error("task 77");
        });
    } catch (const std::runtime_error&) {
        caught = true;
    }
    PB_CHECK(failures, caught, "pool: an exception thrown in a task did not reach the caller");
    return failures + still_runs_every_task_once("an exception");
}

// A parallel_for inside a task (on the caller's thread as on a worker's) runs
// its whole range on that thread, once.
int nested_calls_run_inline() {
    int failures = 0;
    constexpr index_t kOuter = 8, kInner = 50;
    std::vector<std::atomic<int>> runs(static_cast<size_t>(kOuter * kInner));
    std::atomic<int> wrong_thread{0};
    pb::parallel_for(kOuter, kBigWork, [&](index_t b, index_t e) {
        for (index_t o = b; o < e; ++o) {
            const std::thread::id me = std::this_thread::get_id();
            pb::parallel_for(kInner, kBigWork, [&](index_t ib, index_t ie) {
                if (std::this_thread::get_id() != me) wrong_thread.fetch_add(1);
                for (index_t i = ib; i < ie; ++i) runs[static_cast<size_t>(o * kInner + i)].fetch_add(1);
            });
        }
    });
    for (index_t t = 0; t < kOuter * kInner; ++t)
        PB_CHECK(failures, runs[static_cast<size_t>(t)].load() == 1, "pool: nested task %lld ran %d times",
                 (long long)t, runs[static_cast<size_t>(t)].load());
    PB_CHECK(failures, wrong_thread.load() == 0, "pool: %d nested ranges ran on another thread", wrong_thread.load());
    return failures + still_runs_every_task_once("nesting");
}

// Whether this process gets two cores at once: two tasks that each spin for
// 100 ms of wall time use over 150 ms of CPU time between them.
bool threads_run_together() {
    auto cpu_ms = [] {
        timespec t{};
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
        return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
    };
    const double before = cpu_ms();
    pb::parallel_for(2, kBigWork, pb::kStaticSplit, [&](index_t, index_t) {
        const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
        while (std::chrono::steady_clock::now() < end) {}
    });
    return cpu_ms() - before > 150.0;
}

// The core-distance probe: on two threads it measures a handoff of a
// plausible length (trying again for up to 10 s if the worker did not start
// or was descheduled mid-way: the other core may be busy); inside a task, and
// on one thread, it answers -1 without a deadlock; and the pool still runs
// every task once after it.
int core_distance_probe() {
    int failures = 0;
    const int before = pb::get_num_threads();
    pb::set_num_threads(2);
    // (With the other core busy, both threads may wait on one core: a pause
    // lets the scheduler move one, and the next attempt can succeed.)
    double ns = -1.0;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while ((ns = pb::measure_handoff_ns(1'000'000'000)) < 0.0 && std::chrono::steady_clock::now() < give_up)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (ns < 0.0 && !threads_run_together())
        std::printf("core distance: no measurement, and the pool's two threads never ran at the same time "
                    "(the other core is busy): not checked\n");
    else
        PB_CHECK(failures, ns > 0.0 && ns < 1e6, "core distance: a handoff of %g ns (no measurement in 10 s)", ns);
    std::atomic<int> measured_in_task{0};
    pb::parallel_for(2, kBigWork, [&](index_t, index_t) {
        if (pb::measure_handoff_ns(1'000'000) != -1.0) measured_in_task.fetch_add(1);
    });
    PB_CHECK(failures, measured_in_task.load() == 0, "core distance: %d measurements from inside a task",
             measured_in_task.load());
    pb::set_num_threads(1);
    PB_CHECK(failures, pb::measure_handoff_ns(1'000'000) == -1.0, "core distance: one thread measured a handoff");
    pb::set_num_threads(before);
    return failures + still_runs_every_task_once("the core-distance probe");
}

}  // namespace

int run_thread_pool_tests() {
    return every_task_once() + fast_thread_helps() + static_split_one_call_per_share() +
           exceptions_reach_the_caller() + nested_calls_run_inline() + core_distance_probe();
}
