#include "denseprop/dense.hpp"

#include <optional>

#include "arrays.hpp"
#include "register.hpp"

namespace denseprop::bindings {
namespace {

py::object layer_forward(py::handle x_arg, py::handle w_obj, py::handle b_obj,
                         const std::string& activation, py::handle out_obj, double negative_slope,
                         py::handle compute_obj) {
  const ActivationSpec act = activation_spec(activation, negative_slope);
  const py::array x_obj = ndarray(x_arg, "x");  // read once, for all that follows
  return dispatch(float_dtype(x_obj, "x"), [&](auto tag) -> py::object {
    using T = decltype(tag);
    const Compute compute = array_compute<T>(compute_obj);
    const auto x = input<T>(x_obj, "x", 2, "(batch, in)", "x");
    const auto w = input<T>(w_obj, "w", 2, "(out, in)", "x");
    const auto b = input<T>(b_obj, "b", 1, "(out,)", "x");
    const py::ssize_t batch = x.shape(0), in = x.shape(1), out = w.shape(0);
    if (w.shape(1) != in)
      throw py::value_error(cat("w: expected shape (out, ", in, ") to match x's ", in,
                                " features, got ", shape_str(w)));
    if (b.shape(0) != out)
      throw py::value_error(
          cat("b: expected shape (", out, ",) to match w's ", out, " outputs, got ", shape_str(b)));
    auto a = output<T>(out_obj, "out", {batch, out}, "x", {{&x, "x"}, {&w, "w"}, {&b, "b"}});
    auto a_view = cols(a);
    {
      py::gil_scoped_release nogil;  // only the buffers held above are touched
      dense_forward<T>(cols(x), weights(w), b.data(), a_view, act, nullptr, compute);
    }
    return std::move(a);
  });
}

py::tuple layer_backward(py::handle x_arg, py::handle w_obj, py::handle a_obj,
                         py::handle grad_a_obj, const std::string& activation, bool need_grad_x,
                         py::handle z_obj, double negative_slope, py::handle compute_obj) {
  const ActivationSpec act = activation_spec(activation, negative_slope);
  const py::array x_obj = ndarray(x_arg, "x");  // read once, for all that follows
  return dispatch(float_dtype(x_obj, "x"), [&](auto tag) -> py::tuple {
    using T = decltype(tag);
    const Compute compute = array_compute<T>(compute_obj);
    const auto x = input<T>(x_obj, "x", 2, "(batch, in)", "x");
    const auto w = input<T>(w_obj, "w", 2, "(out, in)", "x");
    const auto a = input<T>(a_obj, "a", 2, "(batch, out)", "x");
    const auto grad_a = input<T>(grad_a_obj, "grad_a", 2, "(batch, out)", "x");
    const py::ssize_t batch = x.shape(0), in = x.shape(1), out = w.shape(0);
    if (w.shape(1) != in)
      throw py::value_error(cat("w: expected shape (out, ", in, ") to match x's ", in,
                                " features, got ", shape_str(w)));
    if (a.shape(0) != batch || a.shape(1) != out)
      throw py::value_error(cat("a: expected shape (", batch, ", ", out,
                                ") from x's batch and w's outputs, got ", shape_str(a)));
    expect_same_shape(grad_a, "grad_a", a, "a");
    std::optional<Array<T>> z_array;
    const T* z = activation_input<T>(z_obj, a, "a", act, z_array);
    auto grad_w = new_array<T>({out, in}), grad_b = new_array<T>({out});
    py::object grad_x = py::none();
    T* dx = nullptr;
    if (need_grad_x) {
      auto gx = new_array<T>({batch, in});
      dx = gx.mutable_data();
      grad_x = std::move(gx);
    }
    RowMat<T> dw(grad_w.mutable_data(), out, in);
    T* db = grad_b.mutable_data();
    {
      py::gil_scoped_release nogil;  // only the buffers held above are touched
      Matrix<T> dz(out, batch);
      dense_backward<T>(cols(x), weights(w), cols(a), z, cols(grad_a),
                        Mat<T>(dz.data(), out, batch), dw, db, dx, act, compute);
    }
    return py::make_tuple(grad_x, grad_w, grad_b);
  });
}

}  // namespace

void register_dense(py::module_& m) {
  m.def("dense_forward", &layer_forward, py::arg("x"), py::arg("w"), py::arg("b"),
        py::arg("activation") = "identity", py::arg("out") = py::none(), py::kw_only(),
        py::arg("negative_slope") = 0.01, py::arg("compute_dtype") = py::none(),
        R"(Forward pass of a dense layer: a = activation(x @ w.T + b).

x: (batch, in), w: (out, in), b: (out,) -> a: (batch, out); all float32 or all float64.
One matrix product, then the bias add and the activation in one pass over a.
activation: any name of activations() (leaky_relu's slope is `negative_slope`; softmax acts
over the features of each sample). `out`, if given, must be a C-contiguous, writeable
(batch, out) array of the same dtype that shares no memory with the inputs; it is
filled and returned. compute_dtype="bfloat16" (float32 only) rounds x and w to bfloat16 for
the product, which accumulates in float32; the bias and activation stay float32.)");
  m.def("dense_backward", &layer_backward, py::arg("x"), py::arg("w"), py::arg("a"),
        py::arg("grad_a"), py::arg("activation") = "identity", py::arg("need_grad_x") = true,
        py::kw_only(), py::arg("z") = py::none(), py::arg("negative_slope") = 0.01,
        py::arg("compute_dtype") = py::none(),
        R"(Backward pass of a dense layer, from its stored output a.

x: (batch, in), w: (out, in), a and grad_a: (batch, out) -> (grad_x, grad_w, grad_b) with
grad_x: (batch, in) or None when need_grad_x is False, grad_w: (out, in), grad_b: (out,).
    grad_z = grad_a * activation'(z)   (softmax: s * (grad_a - sum(s * grad_a, axis=1)))
    grad_w = grad_z.T @ x    grad_b = grad_z.sum(axis=0)    grad_x = grad_z @ w
grad_b sums over the batch (a loss with reduction="mean" has already divided by it).
z = x @ w.T + b is needed only by the activations whose derivative reads it (needs_z in
activations()), as in activation_backward. compute_dtype="bfloat16" (float32 only) rounds the
operands of the products grad_w and grad_x to bfloat16, accumulating in float32.)");
}

}  // namespace denseprop::bindings
