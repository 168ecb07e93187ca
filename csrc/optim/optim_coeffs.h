// Per-step scalars of the optimiser updates, computed once in double by
// optim.cpp (as PyTorch computes them in Python floats) and shared by both ISAs.
#pragma once
#include "common/types.h"

namespace pb {

struct SgdCoeffs {
    double lr, momentum, one_minus_dampening, weight_decay;
    bool nesterov, first_step, maximize;
};

struct AdamCoeffs {
    double lr_wd_keep;       // 1 - lr wd (decoupled) — p *= this
    double weight_decay;     // coupled only (0 when decoupled)
    double w1;               // 1 - beta1: m = lerp(m, g, w1)
    double beta2, one_minus_beta2;
    double step_size;        // lr / (1 - beta1^step)
    double inv_bc2_sqrt;     // 1 / sqrt(1 - beta2^step): the denominator multiplies by it
    double eps;
    bool decoupled, amsgrad, maximize;
};

struct RmspropCoeffs {
    double lr, alpha, one_minus_alpha, eps, weight_decay, momentum;
    bool centered, maximize;
};

}  // namespace pb
