#include "denseprop/activations.hpp"

#include <limits>
#include <optional>

#include "arrays.hpp"
#include "register.hpp"

namespace denseprop::bindings {
namespace {

// g(z) of a (batch, n) array, into a new array.
py::object apply(py::handle z_arg, ActivationSpec act) {
  const py::array z_obj = ndarray(z_arg, "z");  // read once, for all that follows
  return dispatch(float_dtype(z_obj, "z"), [&](auto tag) -> py::object {
    using T = decltype(tag);
    const auto z = input<T>(z_obj, "z", 2, "(batch, n)", "z");
    auto a = new_array<T>({z.shape(0), z.shape(1)});
    std::copy_n(z.data(), z.size(), a.mutable_data());
    auto a_view = cols(a);
    {
      py::gil_scoped_release nogil;  // only the buffers held above are touched
      activate<T>(a_view, act);
    }
    return std::move(a);
  });
}

// grad_z from the output a (or the input z, for the activations that read it) and grad_a, all
// (batch, n).
py::object backward(py::handle a_arg, py::handle grad_obj, ActivationSpec act, const char* a_name,
                    const char* grad_name, py::handle z_obj = py::none()) {
  const py::array a_obj = ndarray(a_arg, a_name);  // read once, for all that follows
  return dispatch(float_dtype(a_obj, a_name), [&](auto tag) -> py::object {
    using T = decltype(tag);
    const auto a = input<T>(a_obj, a_name, 2, "(batch, n)", a_name);
    const auto g = input<T>(grad_obj, grad_name, 2, "(batch, n)", a_name);
    expect_same_shape(g, grad_name, a, a_name);
    std::optional<Array<T>> z_array;
    const T* z = activation_input<T>(z_obj, a, a_name, act, z_array);
    auto dz = new_array<T>({a.shape(0), a.shape(1)});
    auto dz_view = cols(dz);
    {
      py::gil_scoped_release nogil;  // only the buffers held above are touched
      activation_backward<T>(cols(a), z, cols(g), dz_view, act, nullptr);
    }
    return std::move(dz);
  });
}

// The Jacobian of the activation at every sample, from its output (or input): (batch, n) ->
// (batch, n, n).
py::object jacobian(py::handle a_arg, ActivationSpec act, const char* a_name,
                    py::handle z_obj = py::none()) {
  const py::array a_obj = ndarray(a_arg, a_name);  // read once, for all that follows
  return dispatch(float_dtype(a_obj, a_name), [&](auto tag) -> py::object {
    using T = decltype(tag);
    const auto a = input<T>(a_obj, a_name, 2, "(batch, n)", a_name);
    std::optional<Array<T>> z_array;
    const T* z = activation_input<T>(z_obj, a, a_name, act, z_array);
    const py::ssize_t batch = a.shape(0), n = a.shape(1);
    auto jac = new_array<T>({batch, n, n});
    T* out = jac.mutable_data();
    {
      py::gil_scoped_release nogil;  // only the buffers held above are touched
      activation_jacobian<T>(cols(a), z, out, act);
    }
    return std::move(jac);
  });
}

const char* init_name(Init i) { return i == Init::he ? "he" : "glorot"; }

// The table, for Python: one dict per activation, in the table's order.
py::list activations() {
  py::list out;
  for (const ActivationInfo& e : activation_table) {
    py::dict d;
    d["name"] = std::string(e.name);
    d["needs_z"] = e.needs_z;
    d["hidden"] = e.hidden;
    d["init"] = init_name(e.init);
    d["forward_equation"] = std::string(e.forward_equation);
    d["backward_equation"] = std::string(e.backward_equation);
    d["torch"] = std::string(e.torch);
    d["onnx"] = e.onnx.empty() ? py::object(py::none()) : py::object(py::str(std::string(e.onnx)));
    d["onnx_opset"] = e.onnx_opset;
    out.append(d);
  }
  return out;
}

}  // namespace

void register_activations(py::module_& m) {
  m.def(
      "sigmoid", [](py::handle z) { return apply(z, {activation_id<Sigmoid>}); }, py::arg("z"),
      R"(Logistic sigmoid 1 / (1 + exp(-z)), elementwise; z: (batch, n) -> (batch, n).
Finite for any finite z: saturates to exactly 0 or 1 instead of overflowing.)");
  m.def(
      "sigmoid_backward",
      [](py::handle a, py::handle grad_a) {
        return backward(a, grad_a, {activation_id<Sigmoid>}, "a", "grad_a");
      },
      py::arg("a"), py::arg("grad_a"),
      R"(Gradient through a sigmoid from its output: grad_a * a * (1 - a).

a = sigmoid(z) and grad_a: (batch, n) -> grad_z: (batch, n).)");
  m.def(
      "softmax", [](py::handle z) { return apply(z, {activation_id<Softmax>}); }, py::arg("z"),
      R"(Softmax over the features of each sample; z: (batch, n) -> (batch, n), rows sum to 1.
Each row is shifted by its maximum first, so exp never overflows.)");
  m.def(
      "softmax_backward",
      [](py::handle s, py::handle grad_s) {
        return backward(s, grad_s, {activation_id<Softmax>}, "s", "grad_s");
      },
      py::arg("s"), py::arg("grad_s"),
      R"(Jacobian-vector product through a softmax, per sample, without forming the Jacobian.

s = softmax(z) and grad_s: (batch, n) -> grad_z: (batch, n), where for each row
    grad_z = J grad_s = s * (grad_s - <s, grad_s>),   J = diag(s) - s s^T.)");
  m.def(
      "softmax_jacobian", [](py::handle s) { return jacobian(s, {activation_id<Softmax>}, "s"); },
      py::arg("s"),
      R"(The explicit softmax Jacobians, for inspection: J[i] = diag(s[i]) - outer(s[i], s[i]).

s = softmax(z): (batch, n) -> J: (batch, n, n), each symmetric. J[i] @ g[i] equals
softmax_backward(s, g)[i]; training never forms these n x n matrices.)");
  m.def("activations", &activations,
        "The activations, one dict each: name, needs_z (the backward reads z, not the output), "
        "hidden (allowed in a hidden layer), init ('glorot' or 'he'), forward_equation and "
        "backward_equation (as the trace prints them, '{l}' the layer), torch (the PyTorch "
        "module, 'Class(attribute=value, ...)'), onnx (its ONNX nodes as an expression over z, "
        "or None) and onnx_opset (the oldest opset that has them, 0 for any).");
  m.def(
      "activation_forward",
      [](py::handle z, const std::string& activation, double negative_slope) {
        return apply(z, activation_spec(activation, negative_slope));
      },
      py::arg("z"), py::arg("activation"), py::kw_only(), py::arg("negative_slope") = 0.01,
      R"(A named activation: z: (batch, n) -> a: (batch, n).

activation: any name of activations() (leaky_relu is z if z > 0 else negative_slope * z;
softmax acts over the features of each sample).)");
  m.def(
      "activation_backward",
      [](py::handle a, py::handle grad_a, const std::string& activation, py::handle z,
         double negative_slope) {
        return backward(a, grad_a, activation_spec(activation, negative_slope), "a", "grad_a", z);
      },
      py::arg("a"), py::arg("grad_a"), py::arg("activation"), py::kw_only(),
      py::arg("z") = py::none(), py::arg("negative_slope") = 0.01,
      R"(Gradient through a named activation: grad_z = grad_a * g'(z).

a = g(z), grad_a and z: (batch, n) -> grad_z: (batch, n). Where the derivative is cheapest in
the output, g' is read from a: sigmoid a (1 - a), tanh 1 - a^2, relu [a > 0], leaky_relu 1 or
negative_slope; softmax is its Jacobian-vector product, as softmax_backward. The activations
whose needs_z is true in activations() (gelu, ...) read it from their input: pass z, required
for them, checked and unused for the others.)");
  m.def(
      "activation_jacobian",
      [](py::handle a, const std::string& activation, py::handle z, double negative_slope) {
        return jacobian(a, activation_spec(activation, negative_slope), "a", z);
      },
      py::arg("a"), py::arg("activation"), py::kw_only(), py::arg("z") = py::none(),
      py::arg("negative_slope") = 0.01,
      R"(The Jacobian da/dz of a named activation at each sample, from its output a = g(z).

a (and z, for the activations whose derivative reads it, as activation_backward): (batch, n)
-> J: (batch, n, n). Elementwise activations give diagonal matrices, J[i] = diag(g'(z[i])), so
J[i] @ g[i] equals activation_backward(a, g, activation)[i]; softmax gives diag(s) - s s^T, as
softmax_jacobian. For inspection; training uses the fused products.)");
}

}  // namespace denseprop::bindings
