// Optimiser updates: one fused in-place pass per parameter, with PyTorch's
// formulas (torch/optim/{sgd,adam,adamw,rmsprop}.py, single-tensor variants).
#pragma once
#include "common/types.h"
#include "optim/optim_coeffs.h"

namespace pb {

// SGD (PyTorch convention): g = grad + wd p; if momentum != 0:
//   buf = g on the first step, else buf = momentum buf + (1 - dampening) g;
//   g = nesterov ? g + momentum buf : buf.
// p -= lr g. `buf` may be null only when momentum == 0. maximize flips the sign of grad.
template <typename T>
void sgd_update(T* p, const T* grad, T* buf, index_t n, double lr, double momentum,
                double dampening, double weight_decay, bool nesterov, bool first_step,
                bool maximize);

// Adam / AdamW. `step` is the step count after incrementing (1 on the first call).
//   decoupled (AdamW): p *= 1 - lr wd;  else g = grad + wd p
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   [amsgrad: vmax = max(vmax, v), used in place of v below]
//   p -= (lr / (1 - b1^step)) * m / (sqrt(v) / sqrt(1 - b2^step) + eps)
template <typename T>
void adam_update(T* p, const T* grad, T* m, T* v, T* vmax, index_t n, double lr, double beta1,
                 double beta2, double eps, double weight_decay, bool decoupled, std::int64_t step,
                 bool maximize);

// RMSprop: g = grad + wd p; sq = alpha sq + (1 - alpha) g^2;
//   centered: gavg = alpha gavg + (1 - alpha) g; avg = sqrt(sq - gavg^2) + eps
//   else avg = sqrt(sq) + eps
//   momentum > 0: buf = momentum buf + g / avg; p -= lr buf   else p -= lr g / avg
template <typename T>
void rmsprop_update(T* p, const T* grad, T* sq, T* gavg, T* buf, index_t n, double lr,
                    double alpha, double eps, double weight_decay, double momentum, bool centered,
                    bool maximize);

// One parameter's update for this step, prepared once (arguments checked,
// per-step scalars computed) and applied range by range. Every element gets
// the same arithmetic whichever range it is in, so the compiled step can
// update each block of dW as the GEMM finishes it (the functions above are
// prepare + apply_all). A default-constructed update does nothing.
template <typename T>
class ParamUpdate {
public:
    ParamUpdate() = default;
    static ParamUpdate sgd(T* p, const T* grad, T* buf, index_t n, double lr, double momentum, double dampening,
                           double weight_decay, bool nesterov, bool first_step, bool maximize);
    static ParamUpdate adam(T* p, const T* grad, T* m, T* v, T* vmax, index_t n, double lr, double beta1,
                            double beta2, double eps, double weight_decay, bool decoupled, std::int64_t step,
                            bool maximize);
    static ParamUpdate rmsprop(T* p, const T* grad, T* sq, T* gavg, T* buf, index_t n, double lr, double alpha,
                               double eps, double weight_decay, double momentum, bool centered, bool maximize);

    bool empty() const { return kind_ == Kind::none; }
    // Elements [offset, offset + len), on the calling thread.
    void apply(index_t offset, index_t len) const;
    // All n elements, on the thread pool.
    void apply_all() const;

private:
    enum class Kind { none, sgd, adam, rmsprop };
    ParamUpdate(Kind kind, T* p, const T* grad, T* s0, T* s1, T* s2, index_t n)
        : kind_(kind), p_(p), grad_(grad), state_{s0, s1, s2}, n_(n) {}

    Kind kind_ = Kind::none;
    T* p_ = nullptr;
    const T* grad_ = nullptr;
    T* state_[3] = {nullptr, nullptr, nullptr};
    index_t n_ = 0;
    SgdCoeffs sgd_{};
    AdamCoeffs adam_{};
    RmspropCoeffs rmsprop_{};
};

}  // namespace pb
