// pybind11 bindings of the compiled training plan (csrc/plan/mlp_plan.h): a
// C++ object with state (workspaces, step counts, the arrays it updates), which
// is what pybind11 is here for. pybackprop/compile.py builds it from a model.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "plan/mlp_plan.h"

namespace py = pybind11;

namespace {

pb::Activation parse_activation(const std::string& name) {
    for (int i = 0; i < pb::kNumActivations; ++i)
        if (name == pb::activation_name(static_cast<pb::Activation>(i))) return static_cast<pb::Activation>(i);
    throw std::invalid_argument("unknown activation '" + name + "'");
}

pb::LossKind parse_loss(const std::string& name) {
    if (name == "cross_entropy") return pb::LossKind::cross_entropy;
    if (name == "mse") return pb::LossKind::mse;
    if (name == "bce_with_logits") return pb::LossKind::bce_with_logits;
    if (name == "none") return pb::LossKind::none;
    throw std::invalid_argument("unknown loss '" + name + "'");
}

pb::Reduction parse_reduction(const std::string& name) {
    if (name == "mean") return pb::Reduction::mean;
    if (name == "sum") return pb::Reduction::sum;
    throw std::invalid_argument("a compiled step reduces its loss by 'mean' or 'sum', not '" + name + "'");
}

pb::OptimKind parse_optim(const std::string& name) {
    if (name == "none") return pb::OptimKind::none;
    if (name == "sgd") return pb::OptimKind::sgd;
    if (name == "adam") return pb::OptimKind::adam;
    if (name == "adamw") return pb::OptimKind::adamw;
    if (name == "rmsprop") return pb::OptimKind::rmsprop;
    throw std::invalid_argument("unknown optimiser '" + name + "'");
}

bool is_c_contiguous(const py::array& a) { return (a.flags() & py::array::c_style) != 0; }

// A writable C-contiguous array of dtype T with `n` elements, or null for None.
template <typename T>
T* buffer_of(const py::object& obj, pb::index_t n, const char* what, std::vector<py::object>& keep) {
    if (obj.is_none()) return nullptr;
    py::array a = py::reinterpret_borrow<py::array>(obj);
    if (!py::isinstance<py::array_t<T>>(obj) || !is_c_contiguous(a) || !a.writeable())
        throw std::invalid_argument(std::string(what) + " must be a writable C-contiguous array of the model's dtype");
    if (a.size() != n)
        throw std::invalid_argument(std::string(what) + " has " + std::to_string(a.size()) + " elements, expected " +
                                    std::to_string(n));
    keep.push_back(obj);
    return static_cast<T*>(a.mutable_data());
}

// The plan for one dtype, plus references keeping its arrays alive.
class PlanBase {
public:
    virtual ~PlanBase() = default;
    virtual double train_step(const py::array& x, const py::array& y, const pb::OptimSpec& opt) = 0;
    virtual py::array forward(const py::array& x) = 0;
    virtual std::vector<std::int64_t> steps() = 0;
    virtual void set_steps(const std::vector<std::int64_t>& s) = 0;
    // The C++ plan for the Cython fast path (_bindings/step.pxi), named by dtype.
    virtual py::capsule native() = 0;
};

template <typename T>
class Plan final : public PlanBase {
public:
    Plan(std::vector<pb::LayerSpec> layers, pb::LossKind loss, pb::Reduction red, const py::list& weights,
         const py::list& biases)
        : loss_(loss) {
        std::vector<pb::ParamBuffers<T>> w, b;
        for (size_t l = 0; l < layers.size(); ++l) {
            w.push_back(param(weights[l], layers[l].in * layers[l].out, "weight"));
            b.push_back(layers[l].has_bias ? param(biases[l], layers[l].out, "bias") : pb::ParamBuffers<T>{});
        }
        in_ = layers.front().in;
        out_ = layers.back().out;
        plan_ = std::make_unique<pb::MlpPlan<T>>(std::move(layers), loss, red, std::move(w), std::move(b));
    }

    double train_step(const py::array& x, const py::array& y, const pb::OptimSpec& opt) override {
        const pb::index_t batch = check_input(x);
        const void* targets = nullptr;
        // Layout and dtype problems are TypeErrors (the Python side converts and
        // retries); sizes that cannot fit are ValueErrors.
        if (loss_ == pb::LossKind::cross_entropy) {
            if (!py::isinstance<py::array_t<std::int64_t>>(y) || !is_c_contiguous(y) || y.ndim() != 1)
                throw py::type_error("targets must be a 1-D C-contiguous int64 array");
            if (y.shape(0) != batch)
                throw std::invalid_argument("got " + std::to_string(y.shape(0)) + " targets for a batch of " +
                                            std::to_string(batch));
        } else {
            if (!py::isinstance<py::array_t<T>>(y) || !is_c_contiguous(y))
                throw py::type_error("targets must be a C-contiguous array of the model's dtype");
            if (y.ndim() != 2 || y.shape(0) != batch || y.shape(1) != out_)
                throw std::invalid_argument("targets must have the output's shape (" + std::to_string(batch) +
                                            ", " + std::to_string(out_) + ")");
        }
        targets = y.data();
        const T* xp = static_cast<const T*>(x.data());
        py::gil_scoped_release release;
        // Rounded to the model's dtype, as the eager loss tensor is.
        return static_cast<double>(static_cast<T>(plan_->train_step(xp, batch, targets, opt)));
    }

    py::array forward(const py::array& x) override {
        const pb::index_t batch = check_input(x);
        py::array_t<T> out({batch, out_});
        T* op = out.mutable_data();
        const T* xp = static_cast<const T*>(x.data());
        {
            py::gil_scoped_release release;
            plan_->forward(xp, batch, op);
        }
        return std::move(out);
    }

    py::capsule native() override {
        return py::capsule(static_cast<void*>(plan_.get()),
                           std::is_same<T, float>::value ? "pybackprop.MlpPlan<float>" : "pybackprop.MlpPlan<double>");
    }

    std::vector<std::int64_t> steps() override {
        std::vector<std::int64_t> s;
        for (auto& p : plan_->weights()) s.push_back(p.step);
        for (auto& p : plan_->biases()) s.push_back(p.step);
        return s;
    }

    void set_steps(const std::vector<std::int64_t>& s) override {
        auto& w = plan_->weights();
        auto& b = plan_->biases();
        if (s.size() != w.size() + b.size()) throw std::invalid_argument("one step count per parameter expected");
        for (size_t i = 0; i < w.size(); ++i) w[i].step = s[i];
        for (size_t i = 0; i < b.size(); ++i) b[i].step = s[w.size() + i];
    }

private:
    pb::ParamBuffers<T> param(const py::handle& d, pb::index_t n, const char* what) {
        py::dict dict = py::reinterpret_borrow<py::dict>(d);
        pb::ParamBuffers<T> p;
        p.n = n;
        p.value = buffer_of<T>(dict["value"], n, what, keep_);
        p.grad = buffer_of<T>(dict["grad"], n, "gradient", keep_);
        py::list state = dict["state"];
        for (size_t i = 0; i < 3 && i < state.size(); ++i) p.state[i] = buffer_of<T>(state[i], n, "optimiser state", keep_);
        p.step = dict.contains("step") ? dict["step"].cast<std::int64_t>() : 0;
        return p;
    }

    pb::index_t check_input(const py::array& x) {
        if (!py::isinstance<py::array_t<T>>(x) || !is_c_contiguous(x))
            throw py::type_error("input must be a C-contiguous array of the model's dtype");
        if (x.ndim() != 2)
            throw std::invalid_argument("input must be 2-D (batch, features), got " + std::to_string(x.ndim()) + "-D");
        if (x.shape(1) != in_)
            throw std::invalid_argument("input has " + std::to_string(x.shape(1)) + " features per row, the model takes " +
                                        std::to_string(in_));
        return x.shape(0);
    }

    pb::LossKind loss_;
    pb::index_t in_ = 0, out_ = 0;
    std::vector<py::object> keep_;
    std::unique_ptr<pb::MlpPlan<T>> plan_;
};

std::unique_ptr<PlanBase> make_plan(const std::string& dtype, const py::list& layer_specs, const std::string& loss,
                                    const std::string& reduction, const py::list& weights, const py::list& biases) {
    std::vector<pb::LayerSpec> layers;
    for (const py::handle& h : layer_specs) {
        py::dict d = py::reinterpret_borrow<py::dict>(h);
        pb::LayerSpec s;
        s.in = d["in"].cast<pb::index_t>();
        s.out = d["out"].cast<pb::index_t>();
        s.act = parse_activation(d["act"].cast<std::string>());
        s.params.alpha = d["alpha"].cast<double>();
        s.params.beta = d["beta"].cast<double>();
        s.params.threshold = d["threshold"].cast<double>();
        s.has_bias = d["bias"].cast<bool>();
        layers.push_back(s);
    }
    if (layers.empty()) throw std::invalid_argument("a plan needs at least one dense layer");
    if (weights.size() != layers.size() || biases.size() != layers.size())
        throw std::invalid_argument("one weight and one bias entry per layer expected");
    const pb::LossKind lk = parse_loss(loss);
    const pb::Reduction red = lk == pb::LossKind::none ? pb::Reduction::mean : parse_reduction(reduction);
    if (dtype == "float32") return std::make_unique<Plan<float>>(std::move(layers), lk, red, weights, biases);
    if (dtype == "float64") return std::make_unique<Plan<double>>(std::move(layers), lk, red, weights, biases);
    throw std::invalid_argument("a plan's dtype is float32 or float64, not " + dtype);
}

}  // namespace

void pb_register_plan(py::module_ m) {
    py::class_<pb::OptimSpec>(m, "OptimSpec", "Optimiser hyper-parameters read by every compiled step.")
        .def(py::init([](const std::string& kind) {
                 pb::OptimSpec s;
                 s.kind = parse_optim(kind);
                 return s;
             }),
             py::arg("kind"))
        .def_readwrite("lr", &pb::OptimSpec::lr)
        .def_readwrite("momentum", &pb::OptimSpec::momentum)
        .def_readwrite("dampening", &pb::OptimSpec::dampening)
        .def_readwrite("weight_decay", &pb::OptimSpec::weight_decay)
        .def_readwrite("nesterov", &pb::OptimSpec::nesterov)
        .def_readwrite("maximize", &pb::OptimSpec::maximize)
        .def_readwrite("centered", &pb::OptimSpec::centered)
        .def_readwrite("amsgrad", &pb::OptimSpec::amsgrad)
        .def_readwrite("beta1", &pb::OptimSpec::beta1)
        .def_readwrite("beta2", &pb::OptimSpec::beta2)
        .def_readwrite("eps", &pb::OptimSpec::eps)
        .def_readwrite("alpha", &pb::OptimSpec::alpha)
        .def("_native", [](pb::OptimSpec& s) { return py::capsule(static_cast<void*>(&s), "pybackprop.OptimSpec"); },
             "A capsule holding the C++ spec, for the Cython fast path; valid while this object lives.");

    py::class_<PlanBase>(m, "MlpPlan", "A captured training step of a dense network (see pybackprop.compile).")
        .def(py::init(&make_plan), py::arg("dtype"), py::arg("layers"), py::arg("loss"), py::arg("reduction"),
             py::arg("weights"), py::arg("biases"))
        .def("train_step", &PlanBase::train_step, py::arg("x"), py::arg("targets"), py::arg("optim"),
             "Forward, loss, backward and update as one native call (GIL released). Returns the loss.")
        .def("forward", &PlanBase::forward, py::arg("x"), "Inference: the model's output for x.")
        .def("steps", &PlanBase::steps, "Optimiser steps taken per parameter (weights, then biases).")
        .def("set_steps", &PlanBase::set_steps, py::arg("steps"))
        .def("_native", &PlanBase::native,
             "A capsule holding the C++ plan, for the Cython fast path; valid while this object lives.");
}
