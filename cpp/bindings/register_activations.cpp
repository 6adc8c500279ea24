#include "denseprop/activations.hpp"

#include "arrays.hpp"
#include "register.hpp"

namespace denseprop::bindings {
namespace {

// g(z) of a (batch, n) array, into a new array.
py::object apply(py::handle z_obj, Activation kind) {
  return dispatch(float_dtype(z_obj, "z"), [&](auto tag) -> py::object {
    using T = decltype(tag);
    const auto z = input<T>(z_obj, "z", 2, "(batch, n)", "z");
    auto a = new_array<T>({z.shape(0), z.shape(1)});
    std::copy_n(z.data(), z.size(), a.mutable_data());
    auto a_view = cols(a);
    {
      py::gil_scoped_release nogil;  // only the buffers held above are touched
      bias_activate<T>(a_view, nullptr, {kind});
    }
    return std::move(a);
  });
}

// grad_z from the output a and grad_a, both (batch, n).
py::object backward(py::handle a_obj, py::handle grad_obj, Activation kind, const char* a_name,
                    const char* grad_name) {
  return dispatch(float_dtype(a_obj, a_name), [&](auto tag) -> py::object {
    using T = decltype(tag);
    const auto a = input<T>(a_obj, a_name, 2, "(batch, n)", a_name);
    const auto g = input<T>(grad_obj, grad_name, 2, "(batch, n)", a_name);
    expect_same_shape(g, grad_name, a, a_name);
    auto dz = new_array<T>({a.shape(0), a.shape(1)});
    auto dz_view = cols(dz);
    {
      py::gil_scoped_release nogil;  // only the buffers held above are touched
      activation_backward<T>(cols(a), cols(g), dz_view, {kind}, nullptr);
    }
    return std::move(dz);
  });
}

py::object jacobian(py::handle s_obj) {
  return dispatch(float_dtype(s_obj, "s"), [&](auto tag) -> py::object {
    using T = decltype(tag);
    const auto s = input<T>(s_obj, "s", 2, "(batch, n)", "s");
    const py::ssize_t batch = s.shape(0), n = s.shape(1);
    auto jac = new_array<T>({batch, n, n});
    T* out = jac.mutable_data();
    {
      py::gil_scoped_release nogil;  // only the buffers held above are touched
      softmax_jacobian<T>(cols(s), out);
    }
    return std::move(jac);
  });
}

}  // namespace

void register_activations(py::module_& m) {
  m.def(
      "sigmoid", [](py::handle z) { return apply(z, Activation::sigmoid); }, py::arg("z"),
      R"(Logistic sigmoid 1 / (1 + exp(-z)), elementwise; z: (batch, n) -> (batch, n).
Finite for any finite z: saturates to exactly 0 or 1 instead of overflowing.)");
  m.def(
      "sigmoid_backward",
      [](py::handle a, py::handle grad_a) {
        return backward(a, grad_a, Activation::sigmoid, "a", "grad_a");
      },
      py::arg("a"), py::arg("grad_a"),
      R"(Gradient through a sigmoid from its output: grad_a * a * (1 - a).

a = sigmoid(z) and grad_a: (batch, n) -> grad_z: (batch, n).)");
  m.def(
      "softmax", [](py::handle z) { return apply(z, Activation::softmax); }, py::arg("z"),
      R"(Softmax over the features of each sample; z: (batch, n) -> (batch, n), rows sum to 1.
Each row is shifted by its maximum first, so exp never overflows.)");
  m.def(
      "softmax_backward",
      [](py::handle s, py::handle grad_s) {
        return backward(s, grad_s, Activation::softmax, "s", "grad_s");
      },
      py::arg("s"), py::arg("grad_s"),
      R"(Jacobian-vector product through a softmax, per sample, without forming the Jacobian.

s = softmax(z) and grad_s: (batch, n) -> grad_z: (batch, n), where for each row
    grad_z = J grad_s = s * (grad_s - <s, grad_s>),   J = diag(s) - s s^T.)");
  m.def("softmax_jacobian", &jacobian, py::arg("s"),
        R"(The explicit softmax Jacobians, for inspection: J[i] = diag(s[i]) - outer(s[i], s[i]).

s = softmax(z): (batch, n) -> J: (batch, n, n), each symmetric. J[i] @ g[i] equals
softmax_backward(s, g)[i]; training never forms these n x n matrices.)");
}

}  // namespace denseprop::bindings
