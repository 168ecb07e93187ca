// How far apart are the pool's threads? Measured, not assumed: a diagnostic.
//
// On this project's first build machine (a Zen 4 VM) the two vCPUs sat at
// times on cores of one CPU die (a cache line crossed between them in about
// 25-35 ns) and at times on two dies (140-200 ns), for seconds to minutes at
// a stretch, and the GEMM's row split chose its layout by it. On the Zen 5 VM
// that followed, packing B per thread won at both distances (gemm.cpp's
// own_b_fits), so no kernel asks any more; the benchmark records the handoff
// after each of pybackprop's two-thread windows (benchmarks/run.py), so that
// a slow window can be told apart from a far one.
#pragma once

namespace pb {

// Measures the pool's caller-to-worker handoff now: the caller and the worker
// bounce one cache line (four batches of 8 round trips, a few microseconds)
// and the fastest batch's one-way time in ns is returned. -1 if the pool has
// one thread, is busy (or this is called from inside a task), its worker did
// not start within `worker_start_timeout_ns`, or a round trip took over 20 us
// (a thread was descheduled: the other core is busy).
double measure_handoff_ns(long long worker_start_timeout_ns);

}  // namespace pb
