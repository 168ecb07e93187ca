// The native test program's suites. Each returns its number of failures and
// prints one line per failure. test_main.cpp runs them all, on every ISA the
// CPU supports, at 1 and 2 threads.
#pragma once

int run_gemm_tests();
int run_dense_tests();
int run_activation_tests();
int run_loss_tests();
int run_optim_tests();
int run_reduce_tests();
int run_thread_pool_tests();
