// A captured training step of a dense network, replayed as one native call.
//
// pb.compile(model, loss_fn, optimizer) describes a Sequential of Linear layers
// (each optionally followed by one activation) with a loss and an optimiser;
// the plan then runs, for a batch, without returning to Python:
//
//   forward   y_l = act_l(x_l W_l + b_l)            dense_forward (fused epilogue)
//   loss      L, dlogits                              one fused loss kernel
//             (a small classifier head's forward, loss and dx: one pass split
//              by rows over the threads, split_head_step)
//   backward  for l = last .. first:
//               g = dy * act'(saved)                   (already formed by layer
//                    l+1's dx GEMM, block by block: BelowGrad in mlp_plan.cpp)
//               db = sum_rows g
//               dx = g W_l^T                           (before W_l changes), each
//                    block turned into layer l-1's g in the write-back
//               dW = x_l^T g, and W_l updated block by block in this GEMM's
//                    write-back, while each block of dW is in cache
//               update b_l
//
// Parameters, gradients and optimiser state live in memory owned by Python
// (one flat aligned buffer that the Parameters are views of), so changes made
// from Python between steps are seen by the next step. The plan owns only its
// workspaces, sized for the batch it was last run with.
#pragma once
#include <cstdint>
#include <mutex>
#include <vector>

#include "activations/activations.h"
#include "common/types.h"

namespace pb {

enum class LossKind : int { none = 0, cross_entropy = 1, mse = 2, bce_with_logits = 3 };
enum class OptimKind : int { none = 0, sgd = 1, adam = 2, adamw = 3, rmsprop = 4 };

struct LayerSpec {
    index_t in = 0, out = 0;
    Activation act = Activation::identity;
    ActParams params{};
    bool has_bias = true;
};

// Hyper-parameters read at every step (schedulers may change lr between steps).
struct OptimSpec {
    OptimKind kind = OptimKind::none;
    double lr = 0, momentum = 0, dampening = 0, weight_decay = 0;
    bool nesterov = false, maximize = false, centered = false, amsgrad = false;
    double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, alpha = 0.99;
};

// One parameter tensor: its value, gradient and up to three optimiser state
// buffers (SGD: momentum; Adam: m, v, vmax; RMSprop: square avg, grad avg,
// momentum), all of n elements, any of the state pointers null when unused.
template <typename T>
struct ParamBuffers {
    T* value = nullptr;
    T* grad = nullptr;
    T* state[3] = {nullptr, nullptr, nullptr};
    index_t n = 0;
    std::int64_t step = 0;  // optimiser steps taken (Adam's bias correction)
};

template <typename T>
class MlpPlan {
public:
    // weights[l]: in x out; biases[l]: out (ignored when !has_bias).
    MlpPlan(std::vector<LayerSpec> layers, LossKind loss, Reduction reduction,
            std::vector<ParamBuffers<T>> weights, std::vector<ParamBuffers<T>> biases);

    // One training step on x (batch x in_0, contiguous). targets: int64 class
    // indices (cross_entropy) or T values shaped like the output (mse, bce).
    // Returns the reduced loss. Throws std::invalid_argument on bad targets.
    double train_step(const T* x, index_t batch, const void* targets, const OptimSpec& opt);

    // Inference: out (batch x out_last) = model(x).
    void forward(const T* x, index_t batch, T* out);

    const std::vector<LayerSpec>& layers() const { return layers_; }
    std::vector<ParamBuffers<T>>& weights() { return weights_; }
    std::vector<ParamBuffers<T>>& biases() { return biases_; }
    index_t captured_batch() const { return batch_; }

private:
    void reserve(index_t batch);
    void run_forward(const T* x, index_t batch, bool training, T* out_last, size_t n_layers);
    bool splits_head(index_t batch) const;
    const T* saved_for_backward(size_t l) const;
    bool forms_below_grad(size_t l) const;
    double split_head_step(const T* x, index_t batch, const std::int64_t* targets, T grad_scale);
    void update(ParamBuffers<T>& p, const OptimSpec& opt);

    std::vector<LayerSpec> layers_;
    LossKind loss_;
    Reduction reduction_;
    std::vector<ParamBuffers<T>> weights_, biases_;

    // Workspaces for the captured batch size.
    index_t batch_ = -1;
    std::vector<std::vector<T>> y_;    // y_[l]: output of layer l (batch x out_l)
    std::vector<std::vector<T>> z_;    // z_[l]: pre-activation, only where backward needs it
    std::vector<T> dy_, dx_;           // backward ping-pong (dx becomes the layer below's g in place)
    std::vector<T> loss_rows_;
    std::vector<double> row_loss_;     // split_head_step's per-row losses
    std::mutex mutex_;                 // one call at a time per plan
};

}  // namespace pb
