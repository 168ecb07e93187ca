#include "plan/mlp_plan.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

#include "common/thread_pool.h"
#include "dense/dense.h"
#include "losses/losses.h"
#include "optim/optim.h"

namespace pb {

template <typename T>
MlpPlan<T>::MlpPlan(std::vector<LayerSpec> layers, LossKind loss, Reduction reduction,
                    std::vector<ParamBuffers<T>> weights, std::vector<ParamBuffers<T>> biases)
    : layers_(std::move(layers)), loss_(loss), reduction_(reduction), weights_(std::move(weights)),
      biases_(std::move(biases)) {
    if (layers_.empty()) throw std::invalid_argument("a plan needs at least one dense layer");
    if (weights_.size() != layers_.size() || biases_.size() != layers_.size())
        throw std::invalid_argument("one weight and one bias entry per layer expected");
    for (size_t l = 0; l < layers_.size(); ++l) {
        const LayerSpec& s = layers_[l];
        if (l > 0 && s.in != layers_[l - 1].out)
            throw std::invalid_argument("layer " + std::to_string(l) + " takes " + std::to_string(s.in) +
                                        " features but layer " + std::to_string(l - 1) + " gives " +
                                        std::to_string(layers_[l - 1].out));
        if (weights_[l].n != s.in * s.out)
            throw std::invalid_argument("layer " + std::to_string(l) + ": weight buffer size mismatch");
        if (s.has_bias && biases_[l].n != s.out)
            throw std::invalid_argument("layer " + std::to_string(l) + ": bias buffer size mismatch");
    }
    if (loss_ == LossKind::cross_entropy && layers_.back().act != Activation::identity)
        throw std::invalid_argument("cross-entropy takes logits: the last layer must have no activation");
}

template <typename T>
void MlpPlan<T>::reserve(index_t batch) {
    if (batch == batch_) return;
    const size_t L = layers_.size();
    y_.assign(L, {});
    z_.assign(L, {});
    index_t widest = 0;
    for (size_t l = 0; l < L; ++l) {
        const LayerSpec& s = layers_[l];
        y_[l].resize(static_cast<size_t>(batch * s.out));
        if (!derivative_uses_output(s.act, s.params)) z_[l].resize(static_cast<size_t>(batch * s.out));
        widest = std::max({widest, s.in, s.out});
    }
    dy_.resize(static_cast<size_t>(batch * widest));
    dx_.resize(static_cast<size_t>(batch * widest));
    loss_rows_.resize(static_cast<size_t>(batch * layers_.back().out));
    row_loss_.resize(static_cast<size_t>(batch));
    batch_ = batch;
}

template <typename T>
void MlpPlan<T>::run_forward(const T* x, index_t batch, bool training, T* out_last, size_t n_layers) {
    const T* in = x;
    for (size_t l = 0; l < n_layers; ++l) {
        const LayerSpec& s = layers_[l];
        const bool last = l + 1 == layers_.size();
        T* y = (last && out_last != nullptr) ? out_last : y_[l].data();
        T* z = (training && !z_[l].empty()) ? z_[l].data() : nullptr;
        dense_forward<T>(in, weights_[l].value, s.has_bias ? biases_[l].value : nullptr, batch, s.in, s.out,
                         s.act, s.params, y, z);
        in = y;
    }
}

template <typename T>
void MlpPlan<T>::forward(const T* x, index_t batch, T* out) {
    std::lock_guard<std::mutex> lock(mutex_);
    reserve(batch);
    run_forward(x, batch, false, out, layers_.size());
}

namespace {

// This step's update of one parameter (step: the count after it).
template <typename T>
ParamUpdate<T> prepare_update(ParamBuffers<T>& p, const OptimSpec& o, std::int64_t step) {
    switch (o.kind) {
        case OptimKind::none:
            return {};
        case OptimKind::sgd:
            return ParamUpdate<T>::sgd(p.value, p.grad, p.state[0], p.n, o.lr, o.momentum, o.dampening,
                                       o.weight_decay, o.nesterov, step == 1, o.maximize);
        case OptimKind::adam:
        case OptimKind::adamw:
            return ParamUpdate<T>::adam(p.value, p.grad, p.state[0], p.state[1], o.amsgrad ? p.state[2] : nullptr,
                                        p.n, o.lr, o.beta1, o.beta2, o.eps, o.weight_decay,
                                        o.kind == OptimKind::adamw, step, o.maximize);
        case OptimKind::rmsprop:
            return ParamUpdate<T>::rmsprop(p.value, p.grad, p.state[0], o.centered ? p.state[1] : nullptr,
                                           o.momentum > 0 ? p.state[2] : nullptr, p.n, o.lr, o.alpha, o.eps,
                                           o.weight_decay, o.momentum, o.centered, o.maximize);
    }
    return {};
}

// The update of a weight (row-major, `cols` wide) applied to one finished
// block of its gradient: the dW GEMM's tile hook.
template <typename T>
struct BlockUpdate {
    const ParamUpdate<T>* update;
    index_t cols;

    static void run(const void* ctx, index_t i0, index_t rows, index_t j0, index_t n) {
        const BlockUpdate& b = *static_cast<const BlockUpdate*>(ctx);
        if (n == b.cols) return b.update->apply(i0 * b.cols, rows * b.cols);  // whole rows: one range
        for (index_t i = i0; i < i0 + rows; ++i) b.update->apply(i * b.cols + j0, n);
    }
};

// The activation derivative of the layer below applied to one finished block
// of dx, in place (the dx GEMM's tile hook): dx becomes that layer's g while
// the block is still in the cache of the thread that wrote it. A separate
// pass over dx would read every line back, often on the other core, which
// on this VM can be far (see gemm.cpp's k_block_split). The arithmetic per
// element is act_backward_bias's, so the bits are those of the eager path.
template <typename T>
struct BelowGrad {
    Activation act;
    ActParams params;
    const T* saved;  // the layer below's y or z, row stride ld
    T* g;            // dx, row stride ld
    index_t ld;

    static void run(const void* ctx, index_t i0, index_t rows, index_t j0, index_t n) {
        const BelowGrad& b = *static_cast<const BelowGrad*>(ctx);
        const index_t o = i0 * b.ld;
        act_backward_block<T>(b.act, b.params, b.g + o, b.saved + o, b.g + o, rows, b.ld, j0, j0 + n);
    }
};

}  // namespace

// What layer l's activation derivative reads: its output y or its input z.
template <typename T>
const T* MlpPlan<T>::saved_for_backward(size_t l) const {
    const LayerSpec& s = layers_[l];
    return derivative_uses_output(s.act, s.params) ? y_[l].data() : z_[l].data();
}

// Whether layer l's dx GEMM turns dx into layer l-1's g (BelowGrad): when
// layer l-1 has an activation.
template <typename T>
bool MlpPlan<T>::forms_below_grad(size_t l) const {
    return l > 0 && layers_[l - 1].act != Activation::identity;
}

template <typename T>
void MlpPlan<T>::update(ParamBuffers<T>& p, const OptimSpec& o) {
    // The count moves only once the update has happened (a kernel may refuse).
    const std::int64_t step = p.step + 1;
    prepare_update(p, o, step).apply_all();
    p.step = step;
}

template <typename T>
double MlpPlan<T>::train_step(const T* x, index_t batch, const void* targets, const OptimSpec& opt) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (batch <= 0) throw std::invalid_argument("a training step needs a batch of at least one example");
    reserve(batch);
    const bool split_head = splits_head(batch);
    run_forward(x, batch, true, nullptr, layers_.size() - (split_head ? 1 : 0));

    // Loss and its gradient with respect to the network's output, into dy_.
    const LayerSpec& top = layers_.back();
    const index_t n_out = batch * top.out;
    const T* out = y_.back().data();
    const double scale = reduction_ == Reduction::mean
                             ? 1.0 / static_cast<double>(loss_ == LossKind::cross_entropy ? batch : n_out)
                             : 1.0;
    double total = 0.0;
    if (split_head) {  // (the top layer's forward and dx too)
        const T* x_top = layers_.size() == 1 ? x : y_[layers_.size() - 2].data();
        total = split_head_step(x_top, batch, static_cast<const std::int64_t*>(targets), static_cast<T>(scale));
    } else switch (loss_) {
        case LossKind::cross_entropy:
            total = softmax_cross_entropy<T>(out, batch, top.out, static_cast<const std::int64_t*>(targets),
                                             loss_rows_.data(), dy_.data(), static_cast<T>(scale));
            break;
        case LossKind::mse:
            total = squared_error<T>(out, static_cast<const T*>(targets), n_out, nullptr, dy_.data(),
                                     static_cast<T>(scale));
            break;
        case LossKind::bce_with_logits:
            total = bce_with_logits<T>(out, static_cast<const T*>(targets), n_out, nullptr, dy_.data(),
                                       static_cast<T>(scale));
            break;
        case LossKind::none:
            throw std::invalid_argument("a training step needs a loss");
    }

    // Backward, updating each layer as soon as its gradients are complete:
    // dx uses W_l before the update, so dense_backward computes it first; W_l
    // is then updated block by block as the dW GEMM writes each block back.
    // Every element gets the arithmetic of a whole-tensor update. The dx GEMM
    // also turns each block of dx into the layer below's g (BelowGrad), so
    // that layer's backward starts from g (identity) and only sums db.
    // (A split head forms it in split_head_step.)
    const bool head_forms_g = split_head && forms_below_grad(layers_.size() - 1);
    bool g_formed = false;  // dy_ holds this layer's g already
    for (size_t l = layers_.size(); l-- > 0;) {
        const LayerSpec& s = layers_[l];
        const T* x_l = l == 0 ? x : y_[l - 1].data();
        T* dx = l == 0 || (split_head && l + 1 == layers_.size()) ? nullptr : dx_.data();
        ParamBuffers<T>& w = weights_[l];
        const std::int64_t w_step = w.step + 1;
        const ParamUpdate<T> w_update = prepare_update(w, opt, w_step);  // throws before anything changes
        const BlockUpdate<T> w_blocks{&w_update, s.out};
        TileHook hook;
        if (!w_update.empty()) hook = TileHook{&BlockUpdate<T>::run, &w_blocks};
        const Activation act = g_formed ? Activation::identity : s.act;
        const T* saved = act == Activation::identity ? nullptr : saved_for_backward(l);
        BelowGrad<T> below{};
        TileHook dx_hook;
        if (dx != nullptr && forms_below_grad(l)) {
            const LayerSpec& b = layers_[l - 1];
            below = BelowGrad<T>{b.act, b.params, saved_for_backward(l - 1), dx, s.in};
            dx_hook = TileHook{&BelowGrad<T>::run, &below};
        }
        dense_backward<T>(dy_.data(), saved, x_l, w.value, batch, s.in, s.out, act, s.params, dx, false, w.grad,
                          false, s.has_bias ? biases_[l].grad : nullptr, false, dy_.data(), hook, dx_hook);
        g_formed = dx_hook.fn != nullptr || (head_forms_g && l + 1 == layers_.size());
        w.step = w_step;
        if (s.has_bias) update(biases_[l], opt);
        if (l > 0) std::swap(dy_, dx_);
    }
    return reduction_ == Reduction::mean ? total * scale : total;
}

// The output layer of a classifier with few classes (cross-entropy, at most
// kHeadClasses logits) split by rows over the threads: each thread computes its
// rows' logits, losses, dlogits and dx in one pass. Alone, the forward GEMM,
// the loss and the dx GEMM are each too small to be worth a second thread,
// whose three meetings would cost more than it saves; as one pass they meet
// once. Measured on Zen 4, two threads, forward to the top layer's update:
// A's 784-128-10 14.5 -> 10.4 us, B's 784-256-128-10 26 -> 20.5 us. Heads
// whose GEMMs already use every thread (C's, E's) are left as they were (the
// split measured 6-8% slower there). Every row's arithmetic is that of the
// unsplit kernels (the same GEMM kernel for any part of kHeadRows rows or
// more, softmax_cross_entropy's row kernel) and the row losses are added in
// row order: the bits do not change.
namespace {
constexpr index_t kHeadClasses = 16;
constexpr index_t kHeadRows = 32;
}  // namespace

template <typename T>
bool MlpPlan<T>::splits_head(index_t batch) const {
    const LayerSpec& s = layers_.back();
    const double macs = static_cast<double>(batch) * static_cast<double>(s.in) * static_cast<double>(s.out);
    return loss_ == LossKind::cross_entropy && s.out <= kHeadClasses && get_num_threads() > 1 &&
           batch >= 2 * kHeadRows && kHeadRows * s.in * s.out > 512 &&  // (> 512: not gemm's tiny kernel)
           macs < kMinWorkPerThread;  // (larger heads: each GEMM is split over the threads by itself)
}

template <typename T>
double MlpPlan<T>::split_head_step(const T* x, index_t batch, const std::int64_t* targets, T grad_scale) {
    const size_t top = layers_.size() - 1;
    const LayerSpec& s = layers_[top];
    check_class_targets("softmax_cross_entropy", targets, batch, s.out);
    const T* w = weights_[top].value;
    const T* b = s.has_bias ? biases_[top].value : nullptr;
    T* logits = y_[top].data();
    T* z = z_[top].empty() ? nullptr : z_[top].data();
    T* g = dy_.data();
    T* dx = top == 0 ? nullptr : dx_.data();
    double* loss = row_loss_.data();
    const bool below_grad = dx != nullptr && forms_below_grad(top);
    const T* below_saved = below_grad ? saved_for_backward(top - 1) : nullptr;
    const index_t parts = batch / kHeadRows;  // each of kHeadRows to 2 kHeadRows - 1 rows
    // (work: enough for every thread, as measured)
    parallel_for(parts, static_cast<double>(parts) * kMinWorkPerThread, [&](index_t p0, index_t p1) {
        const index_t r0 = p0 * batch / parts, r1 = p1 * batch / parts, rows = r1 - r0;
        dense_forward<T>(x + r0 * s.in, w, b, rows, s.in, s.out, s.act, s.params, logits + r0 * s.out,
                         z ? z + r0 * s.out : nullptr);
        softmax_cross_entropy_rows<T>(logits, r0, r1, s.out, targets, loss, g, grad_scale);
        if (dx) {  // (and the layer below's g, block by block, as in train_step)
            BelowGrad<T> below{};
            TileHook hook;
            if (below_grad) {
                const LayerSpec& b = layers_[top - 1];
                below = BelowGrad<T>{b.act, b.params, below_saved + r0 * s.in, dx + r0 * s.in, s.in};
                hook = TileHook{&BelowGrad<T>::run, &below};
            }
            dense_input_grad<T>(g + r0 * s.out, w, rows, s.in, s.out, dx + r0 * s.in, false, hook);
        }
    });
    double total = 0.0;
    for (index_t i = 0; i < batch; ++i) total += loss[i];
    return total;
}

template class MlpPlan<float>;
template class MlpPlan<double>;

}  // namespace pb
