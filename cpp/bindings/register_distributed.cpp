// What data-parallel training needs of a Network beyond one process's step: the gradient buffer
// as a writable view (each process's local gradient is summed in place there across processes)
// and the two halves of a step that such a sum goes between. No MPI here: the package's Python
// side (denseprop/distributed.py) does the communication.
#include <string>

#include "network_model.hpp"
#include "register.hpp"

namespace denseprop::bindings {
namespace {

template <class T> void bind_distributed(py::module_& m, const char* name) {
  using M = Model<T>;
  auto cls = py::reinterpret_borrow<py::class_<M>>(m.attr(name));  // bound in register_network
  cls.def_property_readonly(
         "gradient_buffer",
         [](py::object self) {
           auto& net = self.cast<M&>().net;
           py::array_t<T> a({py::ssize_t(net.parameter_count())}, {py::ssize_t(sizeof(T))},
                            net.grads(), self);
           return a;
         },
         "The gradients, laid out as params: a writable view, to be summed across processes "
         "in place between clipped_gradient_sum or loss_and_gradients(reduction='sum') and "
         "apply_gradient_sum.")
      .def(
          "clipped_gradient_sum",
          [](M& self, py::handle x_obj, py::handle y_obj) {
            const auto x = features(self.net, x_obj);
            const auto y = targets(self.net, y_obj, x.shape(0));
            return self.locked(
                [&] { return self.net.clipped_gradient_sum(x.data(), y.view(), x.shape(0)); });
          },
          py::arg("x"), py::arg("y"),
          "DP-SGD's sum of per-sample gradients, each clipped to clip_norm, into `grads`; "
          "returns the summed loss. The parameters do not change.")
      .def(
          "apply_gradient_sum",
          [](M& self, std::int64_t count, bool undoable) {
            if (count < 1) throw py::value_error(cat("count: must be >= 1, got ", count));
            return self.locked([&] { return self.net.apply_gradient_sum(count, undoable); });
          },
          py::arg("count"), py::arg("undoable"),
          "One optimizer step on `grads` / count (DP-SGD: its noise added first), `grads` "
          "holding the gradient of a loss summed over count samples. Returns whether the "
          "parameters stayed finite; if not and `undoable`, the step is undone.");
}

}  // namespace

void register_distributed(py::module_& m) {
  bind_distributed<float>(m, "NetworkF32");
  bind_distributed<double>(m, "NetworkF64");
}

}  // namespace denseprop::bindings
