// The handoff probe: a two-task parallel_for in which the caller and the
// worker bounce one cache line, timed by the caller.
#include "common/core_distance.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>

#include "common/thread_pool.h"

namespace pb {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kBatches = 4, kTripsPerBatch = 8;  // min over batches of 8 round trips
constexpr std::int64_t kTripTimeoutNs = 20'000;   // a round trip this long: a thread was descheduled

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

struct alignas(64) Line {
    std::atomic<std::uint32_t> v{0};
};

// The one-way handoff in ns, or -1 if the two tasks did not run at the same
// time on two threads. A round trip that takes longer than kTripTimeoutNs
// (a thread descheduled: the other core is busy) ends the measurement; the
// batches done until then count.
double measure(std::int64_t worker_start_timeout_ns) {
    enum : std::uint32_t { kWaiting = 0, kStarted = 1, kAbandoned = 2, kStop = 0xffffffffu };
    Line state, ball;
    double best = -1.0;
    parallel_for(2, 4.0 * kMinWorkPerThread, kStaticSplit, [&](index_t b, index_t e) {
        if (e - b != 1) return;  // both tasks on one thread: pool busy, or one thread
        if (b == 1) {            // the worker: answer each serve until told to stop
            std::uint32_t st = kWaiting;
            if (!state.v.compare_exchange_strong(st, kStarted, std::memory_order_acq_rel)) return;
            for (std::uint32_t i = 0;; ++i) {
                std::uint32_t v;
                while ((v = ball.v.load(std::memory_order_acquire)) != 2 * i + 1) {
                    if (v == kStop) return;
                    cpu_relax();
                }
                if (!ball.v.compare_exchange_strong(v, 2 * i + 2, std::memory_order_acq_rel)) return;  // kStop
            }
        }
        // The caller: wait for the worker to start, or give up.
        const std::int64_t t0 = now_ns();
        while (state.v.load(std::memory_order_acquire) == kWaiting) {
            if (now_ns() - t0 > worker_start_timeout_ns) {
                std::uint32_t st = kWaiting;
                if (state.v.compare_exchange_strong(st, kAbandoned, std::memory_order_acq_rel)) return;
                break;  // it started just now
            }
            cpu_relax();
        }
        std::uint32_t i = 0;
        for (int batch = 0; batch < kBatches; ++batch) {
            const Clock::time_point start = Clock::now();
            for (int t = 0; t < kTripsPerBatch; ++t, ++i) {
                ball.v.store(2 * i + 1, std::memory_order_release);
                const std::int64_t serve = now_ns();
                for (unsigned spin = 1; ball.v.load(std::memory_order_acquire) != 2 * i + 2; ++spin) {
                    if (spin % 64 == 0 && now_ns() - serve > kTripTimeoutNs) {
                        ball.v.store(kStop, std::memory_order_release);
                        return;
                    }
                    cpu_relax();
                }
            }
            const double ns = std::chrono::duration<double, std::nano>(Clock::now() - start).count() /
                              (2.0 * kTripsPerBatch);
            best = best < 0.0 ? ns : std::min(best, ns);
        }
        ball.v.store(kStop, std::memory_order_release);
    });
    return best;
}

}  // namespace

double measure_handoff_ns(long long worker_start_timeout_ns) {
    if (get_num_threads() < 2) return -1.0;
    return measure(worker_start_timeout_ns);
}

}  // namespace pb
