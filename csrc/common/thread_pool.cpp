// The thread pool: workers spin briefly on a generation counter (a wake-up
// through a condition variable costs tens of microseconds, as much as a small
// GEMM), then sleep. One parallel_for runs at a time; a caller that finds the
// pool busy runs its work alone, which gives the same bits.
//
// Scheduling: each participant owns a contiguous share of the tasks, held as
// one 64-bit word [begin, end). The owner claims chunks from the front, and
// once its own share is done it claims chunks from the back of the others';
// both sides move the same word by compare-and-swap, so every task runs once.
//
// A handoff costs the cache lines that cross between cores, so a worker's
// share, the ticket it spins on and a copy of the job share one line (its
// Slot), and the mutex is touched only when a thread sleeps or wakes one that
// announced it sleeps. (Caller with ~1 us of its own work between 4-task jobs,
// 8 alternating runs: 0.50-0.60 -> 0.46-0.54 us a job while both cores ran
// fast, 1.68-1.89 -> 1.47-1.50 while the second was slow.)
#include "common/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <pthread.h>

namespace pb {
namespace {

int threads_from_env() {
    const char* env = std::getenv("PYBACKPROP_NUM_THREADS");
    if (env != nullptr && *env != '\0') {
        char* end = nullptr;
        long n = std::strtol(env, &end, 10);
        if (end != env && *end == '\0' && n >= 1 && n <= 1024) return static_cast<int>(n);
    }
    unsigned hw = std::thread::hardware_concurrency();
    return hw == 0 ? 1 : static_cast<int>(hw);
}

class Pool {
public:
    // Leaked on purpose: worker threads must not be joined during static
    // destruction at interpreter exit. After a fork() the child has none of
    // the parent's threads, and its copies of the mutexes and condition
    // variables may be held or waited on by threads that no longer exist (a
    // notify could then wait for them forever): the child gets a new pool,
    // with the same thread count, whose workers are made on first need.
    static Pool& instance() {
        static const bool registered = [] {
            current_.store(new Pool(threads_from_env()), std::memory_order_release);
            pthread_atfork(nullptr, nullptr, [] {
                Pool* old = current_.load(std::memory_order_relaxed);
                current_.store(new Pool(old->num_threads()), std::memory_order_release);
            });
            return true;
        }();
        (void)registered;
        return *current_.load(std::memory_order_acquire);
    }

    int num_threads() const { return num_threads_.load(std::memory_order_relaxed); }

    void set_num_threads(int n) {
        std::lock_guard<std::mutex> run(run_mutex_);
        num_threads_.store(n, std::memory_order_relaxed);
    }

    void run(index_t n_tasks, double work, index_t grain, RangeFn fn) {
        if (n_tasks <= 0) return;
        index_t by_work = static_cast<index_t>(work / kMinWorkPerThread);
        index_t n = std::min<index_t>({static_cast<index_t>(num_threads()), n_tasks, std::max<index_t>(by_work, 1)});
        if (n <= 1 || n_tasks > kMaxTasks) {  // (more tasks than a share word holds: one thread)
            fn(0, n_tasks);
            return;
        }
        // A parallel_for inside a task (a kernel calling a threaded kernel on
        // part of its range) runs on the thread that calls it: the pool is
        // busy with the outer one, whose caller holds run_mutex_.
        if (tl_in_task) {
            fn(0, n_tasks);
            return;
        }
        std::unique_lock<std::mutex> run(run_mutex_, std::try_to_lock);
        if (!run.owns_lock()) {  // another Python thread is using the pool
            fn(0, n_tasks);
            return;
        }
        ensure_workers(static_cast<int>(n) - 1);
        // Up to kChunksPerShare claims per share, each at least `grain` tasks.
        const index_t share = ceil_div(n_tasks, n);
        const index_t chunk = std::max<index_t>(std::min(grain, share), ceil_div(share, kChunksPerShare));
        for (auto& e : errors_) e = nullptr;
        errors_.resize(static_cast<size_t>(n));
        remaining_.store(static_cast<int>(n) - 1, std::memory_order_relaxed);
        ++generation_;
        // Post the job into each participant's slot: a worker's one cache line
        // then carries its ticket, its share and the job.
        for (index_t i = 0; i < n; ++i) {
            Slot& s = slot(i);
            s.fn = &fn;
            s.parts = n;
            s.chunk = chunk;
            s.range.store(pack(n_tasks * i / n, n_tasks * (i + 1) / n), std::memory_order_relaxed);
            if (i > 0) s.ticket.store(generation_, std::memory_order_seq_cst);
        }
        // Wake sleeping workers (rare: they sleep only after spinning for a
        // while); taking m_ first orders the tickets before their predicate check.
        if (sleepers_.load(std::memory_order_seq_cst) > 0) {
            { std::lock_guard<std::mutex> lk(m_); }
            cv_start_.notify_all();
        }
        run_part(0);
        // Wait for the workers: spin first, then sleep.
        for (int spin = 0; remaining_.load(std::memory_order_acquire) != 0; ++spin) {
            if (spin < kSpins) {
                backoff(spin);
            } else {
                std::unique_lock<std::mutex> lk(m_);
                caller_waiting_.store(true, std::memory_order_seq_cst);
                cv_done_.wait(lk, [&] { return remaining_.load(std::memory_order_seq_cst) == 0; });
                caller_waiting_.store(false, std::memory_order_relaxed);
            }
        }
        for (auto& e : errors_)
            if (e) std::rethrow_exception(e);
    }

private:
    explicit Pool(int num_threads) : num_threads_(num_threads) {}
    static std::atomic<Pool*> current_;

    // Spinning before sleeping: a sleep/wake round trip costs tens of
    // microseconds, as much as a whole small kernel. Every 64 spins the thread
    // yields, so a core shared with other processes is handed over quickly.
    static constexpr int kSpins = 20000;

    static void backoff(int spin) {
        if ((spin & 63) == 63)
            std::this_thread::yield();
        else
            cpu_relax();
    }

    static index_t ceil_div(index_t x, index_t y) { return (x + y - 1) / y; }

    // A share of tasks [begin, end) in one word: begin in the low 32 bits.
    static constexpr index_t kMaxTasks = 0x7fffffff;
    static constexpr index_t kChunksPerShare = 8;
    static std::uint64_t pack(index_t begin, index_t end) {
        return static_cast<std::uint64_t>(begin) | (static_cast<std::uint64_t>(end) << 32);
    }

    // One participant's cache line: its share of the tasks and (for a worker)
    // the ticket it spins on, with a copy of the job beside them.
    struct alignas(64) Slot {
        std::atomic<std::uint64_t> range{0};
        std::atomic<std::uint64_t> ticket{0};
        RangeFn* fn = nullptr;
        index_t parts = 0, chunk = 1;
    };
    struct Worker {
        Slot slot;
        index_t index = 0;
    };
    Slot& slot(index_t part) { return part == 0 ? caller_slot_ : workers_[static_cast<size_t>(part - 1)]->slot; }

    // Claims up to `chunk` tasks of `s`, from its front (the owner) or its
    // back (a helper). False once the share is empty.
    static bool claim(Slot& s, index_t chunk, bool front, index_t& begin, index_t& end) {
        std::uint64_t cur = s.range.load(std::memory_order_acquire);
        for (;;) {
            const index_t lo = static_cast<index_t>(cur & 0xffffffffu), hi = static_cast<index_t>(cur >> 32);
            if (lo >= hi) return false;
            const index_t n = std::min(chunk, hi - lo);
            const std::uint64_t next = front ? pack(lo + n, hi) : pack(lo, hi - n);
            if (s.range.compare_exchange_weak(cur, next, std::memory_order_acq_rel, std::memory_order_acquire)) {
                begin = front ? lo : hi - n;
                end = front ? lo + n : hi;
                return true;
            }
        }
    }

    void run_part(index_t part) {
        struct InTask {
            InTask() { tl_in_task = true; }
            ~InTask() { tl_in_task = false; }
        } in_task;
        Slot& own = slot(part);
        RangeFn& fn = *own.fn;
        const index_t parts = own.parts, chunk = own.chunk;
        index_t begin = 0, end = 0;
        try {
            while (claim(own, chunk, true, begin, end)) fn(begin, end);
            for (index_t k = 1; k < parts; ++k) {
                Slot& other = slot((part + k) % parts);
                while (claim(other, chunk, false, begin, end)) fn(begin, end);
            }
        } catch (...) {
            errors_[static_cast<size_t>(part)] = std::current_exception();
        }
    }

    // Workers are created on first need.
    void ensure_workers(int needed) {
        while (static_cast<int>(workers_.size()) < needed) {
            Worker* w = new Worker();  // lives as long as its detached thread: the process
            w->index = static_cast<index_t>(workers_.size()) + 1;
            w->slot.ticket.store(generation_, std::memory_order_relaxed);
            // The worker starts from the generation current now: reading its ticket
            // inside the new thread would race with the job being posted.
            const std::uint64_t start = generation_;
            std::thread t([this, w, start] { worker_loop(*w, start); });
            t.detach();
            workers_.push_back(w);
        }
    }

    void worker_loop(Worker& w, std::uint64_t seen) {
        for (;;) {
            int spin = 0;
            while (w.slot.ticket.load(std::memory_order_acquire) == seen) {
                if (++spin < kSpins) {
                    backoff(spin);
                } else {
                    std::unique_lock<std::mutex> lk(m_);
                    sleepers_.fetch_add(1, std::memory_order_seq_cst);
                    cv_start_.wait(lk, [&] { return w.slot.ticket.load(std::memory_order_seq_cst) != seen; });
                    sleepers_.fetch_sub(1, std::memory_order_relaxed);
                }
            }
            seen = w.slot.ticket.load(std::memory_order_acquire);
            run_part(w.index);
            if (remaining_.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
                caller_waiting_.load(std::memory_order_seq_cst)) {
                { std::lock_guard<std::mutex> lk(m_); }
                cv_done_.notify_all();
            }
        }
    }

    static thread_local bool tl_in_task;  // this thread is running a part of a parallel_for

    std::atomic<int> num_threads_;
    std::mutex run_mutex_;
    std::mutex m_;  // for sleeping only
    std::condition_variable cv_start_, cv_done_;
    std::atomic<int> sleepers_{0};
    std::atomic<bool> caller_waiting_{false};
    std::uint64_t generation_ = 0;  // written by the caller holding run_mutex_
    std::atomic<int> remaining_{0};
    std::vector<Worker*> workers_;
    Slot caller_slot_;
    std::vector<std::exception_ptr> errors_;
};

std::atomic<Pool*> Pool::current_{nullptr};
thread_local bool Pool::tl_in_task = false;

}  // namespace

int get_num_threads() { return Pool::instance().num_threads(); }

void set_num_threads(int n) {
    // Same range as PYBACKPROP_NUM_THREADS (1..1024): a huge count would spawn that many workers.
    if (n < 1 || n > 1024)
        throw std::invalid_argument("number of threads must be >= 1 and <= 1024, got " + std::to_string(n));
    Pool::instance().set_num_threads(n);
}

void parallel_for(index_t n_tasks, double work, index_t grain, RangeFn fn) {
    Pool::instance().run(n_tasks, work, grain, fn);
}

}  // namespace pb
