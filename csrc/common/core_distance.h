// Are the pool's threads on cores that share a cache? Measured, not assumed.
//
// On this project's VM the two vCPUs sit at times on cores of one CPU die
// (a cache line crosses between them in about 25-35 ns) and at times on two
// dies (140-200 ns), for seconds to minutes at a stretch. A kernel that
// shares data between its threads can then pick the layout that suits the
// distance (gemm.cpp's row split). The answer only chooses between layouts
// that compute the same bits.
#pragma once

namespace pb {

// One-way handoff above which two cores count as far apart: between the two
// clusters the VM shows (26-35 ns near, 140-200 ns far).
constexpr double kFarHandoffNs = 80.0;

// True if the last measurement of the pool's caller-to-worker handoff was
// slower than kFarHandoffNs. Measures again (a few microseconds: 32 round
// trips through a cache line) when the last one is older than 50 ms; false on
// one thread. When the pool is busy, or the worker did not start within
// 0.2 ms, or a round trip took over 20 us (a thread descheduled: the other
// core is busy), there is no new measurement and the last answer stands.
bool threads_far_apart();

// The one-way handoff time of the last measurement in ns (0 before the first).
double last_handoff_ns();

// Measures the handoff now (and records it as threads_far_apart's last
// measurement): the one-way time in ns, or -1 if the pool has one thread, is
// busy, or its worker did not start within `worker_start_timeout_ns`.
double measure_handoff_ns(long long worker_start_timeout_ns);

// For tests: -1 measures (the default), 0 answers near, 1 answers far.
void set_core_distance_override(int mode);

}  // namespace pb
