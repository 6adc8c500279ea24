#include "denseprop/losses.hpp"

#include "arrays.hpp"
#include "register.hpp"

namespace denseprop::bindings {
namespace {

// Allocates the gradient and, for reduction="none", the per-sample losses; runs `kernel`
// (which returns the summed loss) without the GIL; packs (loss, grad) as the reduction says.
template <class T, class Kernel>
py::tuple reduce(const std::string& reduction, py::ssize_t batch, py::ssize_t n, Kernel&& kernel) {
  const Reduction r = parse_reduction(reduction);
  auto grad = new_array<T>({batch, n});
  auto per_sample = new_array<T>({r == Reduction::none ? batch : 0});
  T* losses = r == Reduction::none ? per_sample.mutable_data() : nullptr;
  const T scale = r == Reduction::mean ? T(1) / T(batch) : T(1);
  Mat<T> g = cols(grad);
  double total;
  {
    py::gil_scoped_release nogil;  // only the buffers held by the caller and above are touched
    total = kernel(g, scale, losses);
  }
  if (r == Reduction::none) return py::make_tuple(per_sample, grad);
  return py::make_tuple(r == Reduction::mean ? total / double(batch) : total, grad);
}

py::tuple softmax_ce(py::handle z_arg, py::handle y_obj, const std::string& reduction,
                     py::handle smoothing_obj) {
  const double eps = real(smoothing_obj, "label_smoothing");
  if (!(eps >= 0 && eps < 1))
    throw py::value_error(cat("label_smoothing: must be in [0, 1), got ", format_number(eps)));
  const py::array z_obj = ndarray(z_arg, "logits");  // read once, for all that follows
  return dispatch(float_dtype(z_obj, "logits"), [&](auto tag) -> py::tuple {
    using T = decltype(tag);
    const auto z = input<T>(z_obj, "logits", 2, "(batch, n)", "logits");
    const py::ssize_t batch = z.shape(0), n = z.shape(1);
    const py::array y = ndarray(y_obj, "y");
    if (y.ndim() == 1) {
      const auto l = labels(y, "y", batch, n, "logits");
      return reduce<T>(reduction, batch, n, [&](Mat<T> g, T scale, T* losses) {
        return softmax_cross_entropy<T>(cols(z), l.data(), nullptr, g, scale, nullptr, losses,
                                        T(eps));
      });
    }
    if (y.ndim() != 2)
      throw py::value_error(cat("y: expected integer labels (batch,) or target probabilities ",
                                "(batch, n), got ", y.ndim(), "-D"));
    const auto t = input<T>(y, "y", 2, "(batch, n)", "logits");
    expect_same_shape(t, "y", z, "logits");
    return reduce<T>(reduction, batch, n, [&](Mat<T> g, T scale, T* losses) {
      return softmax_cross_entropy<T>(cols(z), nullptr, t.data(), g, scale, nullptr, losses,
                                      T(eps));
    });
  });
}

// A loss of two (batch, n) arrays of one shape, `first` (logits or predictions) and `second`
// (its targets), read and checked under those names; kernel(first, second, g, scale, losses)
// in their dtype. nonnegative_for: the loss whose targets must be >= 0, or null.
template <class Kernel>
py::tuple same_shape_loss(py::handle first_arg, const char* first, py::handle second_obj,
                          const char* second, const std::string& reduction,
                          const char* nonnegative_for, const Kernel& kernel) {
  const py::array a_obj = ndarray(first_arg, first);  // read once, for all that follows
  return dispatch(float_dtype(a_obj, first), [&](auto tag) -> py::tuple {
    using T = decltype(tag);
    const auto a = input<T>(a_obj, first, 2, "(batch, n)", first);
    const auto b = input<T>(second_obj, second, 2, "(batch, n)", first);
    expect_same_shape(b, second, a, first);
    if (nonnegative_for) expect_nonnegative(b, second, nonnegative_for);
    return reduce<T>(reduction, a.shape(0), a.shape(1), [&](Mat<T> g, T scale, T* losses) {
      return kernel(cols(a), cols(b), g, scale, losses);
    });
  });
}

py::tuple sigmoid_ce(py::handle z, py::handle y, const std::string& reduction) {
  return same_shape_loss(z, "logits", y, "y", reduction, nullptr,
                         [](auto z, auto y, auto g, auto scale, auto* losses) {
                           using T = decltype(scale);
                           return sigmoid_cross_entropy<T>(z, y, g, scale, nullptr, losses);
                         });
}

py::tuple squared_error(py::handle p, py::handle t, const std::string& reduction) {
  return same_shape_loss(p, "pred", t, "target", reduction, nullptr,
                         [](auto p, auto t, auto g, auto scale, auto* losses) {
                           using T = decltype(scale);
                           return mse<T>(p, t, g, scale, losses);
                         });
}

py::tuple poisson(py::handle z, py::handle y, const std::string& reduction) {
  return same_shape_loss(z, "logits", y, "y", reduction, "poisson",
                         [](auto z, auto y, auto g, auto scale, auto* losses) {
                           using T = decltype(scale);
                           return half_poisson_deviance<T>(z, y, g, scale, nullptr, losses);
                         });
}

constexpr const char* reduction_doc = R"(
reduction: "mean" (default) divides the summed loss and the gradient by the batch size;
"sum" does not; "none" returns the per-sample losses l_i, shape (batch,), with the
gradient of each sample's own loss. Scalar losses are Python floats.)";

// The Network's losses, for Python: one dict each, in the table's order.
py::list losses() {
  py::list out;
  for (const LossInfo& e : loss_table) {
    py::dict d;
    d["name"] = std::string(e.name);
    d["fused_output"] = e.fused_output.empty() ? py::object(py::none())
                                               : py::object(py::str(std::string(e.fused_output)));
    d["default_output"] = std::string(e.default_output);
    d["labels"] = e.labels;
    d["classifier"] = e.classifier;
    d["gradient_equation"] = std::string(e.gradient_equation);
    d["kernel"] = std::string(e.kernel);
    d["nonnegative_targets"] = e.nonnegative_targets;
    out.append(d);
  }
  return out;
}

}  // namespace

void register_losses(py::module_& m) {
  m.def("losses", &losses,
        "The Network's losses, one dict each: name, fused_output (the output activation the "
        "loss is fused with, or None: any), default_output, labels (y may be class labels), "
        "classifier, gradient_equation (the trace's, '{L}' the output layer), kernel (the function "
        "of this module that computes it), nonnegative_targets (y must be >= 0).");
  m.def("softmax_cross_entropy", &softmax_ce, py::arg("logits"), py::arg("y"),
        py::arg("reduction") = "mean", py::kw_only(), py::arg("label_smoothing") = 0.0,
        (std::string(R"(Softmax cross-entropy and its gradient in one pass: (loss, grad_logits).

logits: (batch, n). y: integer class labels (batch,) in [0, n), any integer dtype, or target
probabilities (batch, n) of the logits' dtype. Per sample, with p = softmax(z):
    l = -sum_k y_k log p_k = sum_k y_k (lse - z_k),   lse = max(z) + log(sum_k exp(z_k - max(z)))
    dl/dz = p * sum_k y_k - y     (= p - y for one-hot or probability targets)
computed by log-sum-exp, so no log(0) is ever taken. grad_logits: (batch, n). label_smoothing
eps in [0, 1) takes (1 - eps) y + eps / n for y, as PyTorch's cross_entropy(label_smoothing=).)") +
         reduction_doc)
            .c_str());
  m.def("sigmoid_cross_entropy", &sigmoid_ce, py::arg("logits"), py::arg("y"),
        py::arg("reduction") = "mean",
        (std::string(R"(Binary cross-entropy on logits and its gradient: (loss, grad_logits).

logits and y: (batch, n), y the targets (normally in [0, 1]). Per sample, summed over units:
    l = sum_k max(z, 0) - z y + log(1 + exp(-|z|)),   dl/dz = sigmoid(z) - y
which never overflows, whatever the size of |z|. grad_logits: (batch, n).)") +
         reduction_doc)
            .c_str());
  m.def("half_poisson_deviance", &poisson, py::arg("logits"), py::arg("y"),
        py::arg("reduction") = "mean",
        (std::string(R"(Half Poisson deviance of exp(logits), and its gradient: (loss, grad_logits).

logits: (batch, n), the log of the predicted means mu; y: (batch, n), counts or rates >= 0 (a
negative one is a ValueError). Per sample, summed over outputs:
    l = sum_k exp(z) - y z + y log y - y  = sum_k y log(y / mu) - y + mu,   dl/dz = exp(z) - y
(y log y = 0 at y = 0), scikit-learn's poisson loss: >= 0, 0 where mu = y. It is
torch.nn.PoissonNLLLoss(log_input=True, full=False) per element plus y log y - y, which does not
change the gradient. exp(z) overflows to inf past log(max): the loss is then inf.
grad_logits: (batch, n).)") +
         reduction_doc)
            .c_str());
  m.def("mse", &squared_error, py::arg("pred"), py::arg("target"), py::arg("reduction") = "mean",
        (std::string(R"(Halved squared error and its gradient: (loss, grad_pred).

pred and target: (batch, n). Per sample, summed over outputs:
    l = 0.5 * sum_k (pred_k - target_k)^2,   dl/dpred = pred - target
so reduction="mean" is the mean over the batch (not over every element, as in
torch.nn.MSELoss). grad_pred: (batch, n).)") +
         reduction_doc)
            .c_str());
}

}  // namespace denseprop::bindings
