// The native kernel test program: every suite, on every ISA this CPU supports,
// at 1 and 2 threads. No Python in the loop; built and run by
// tests/native/test_native.py (also under AddressSanitizer and UBSan).
#include <cstdio>

#include "common/dispatch.h"
#include "common/thread_pool.h"
#include "tests/tests.h"

int main() {
    struct Suite {
        const char* name;
        int (*run)();
    };
    const Suite suites[] = {
        {"gemm", run_gemm_tests},         {"dense", run_dense_tests},
        {"activations", run_activation_tests}, {"losses", run_loss_tests},
        {"optim", run_optim_tests},       {"reduce", run_reduce_tests},
        {"thread_pool", run_thread_pool_tests},
    };
    int failures = 0;
    int runs = 0;
    for (int isa = 0; isa <= static_cast<int>(pb::best_supported_isa()); ++isa) {
        pb::set_active_isa(static_cast<pb::Isa>(isa));
        for (int threads = 1; threads <= 2; ++threads) {
            pb::set_num_threads(threads);
            for (const Suite& s : suites) {
                int f = s.run();
                ++runs;
                std::printf("%-12s isa=%-8s threads=%d  %s\n", s.name, pb::isa_name(pb::active_isa()), threads,
                            f == 0 ? "ok" : "FAILED");
                failures += f;
            }
        }
    }
    std::printf("%d suite runs, %d failures\n", runs, failures);
    return failures == 0 ? 0 : 1;
}
