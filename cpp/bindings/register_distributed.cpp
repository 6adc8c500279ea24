// What data-parallel training needs of a Network beyond one process's step: the gradient buffer
// as a writable view (each process's local gradient is summed in place there across processes)
// and the step whose halves such a sum goes between (distributed.hpp). No MPI here: the package's
// Python side (denseprop/distributed.py) does the communication.
#include <string>
#include <utility>

#include "denseprop/distributed.hpp"

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
         "The gradients, laid out as params: a writable view, summed across processes in place "
         "between the two halves of distributed_step (by its reduce).")
      .def(
          "distributed_step",
          [](M& self, py::handle x_obj, py::handle y_obj, py::object reduce, py::handle w_obj) {
            auto reduced = [&](double loss, Index samples, double weight) {
              py::gil_scoped_acquire gil;
              return step_totals(reduce(loss, samples, weight));
            };
            typename Network<T>::BatchLoss step;
            if (x_obj.is_none()) {  // this process has no samples in this step
              step = self.locked([&] {
                return distributed_step(self.net, static_cast<const T*>(nullptr), Targets<T>{}, 0,
                                        reduced, true);
              });
            } else {
              const Inputs<T> x(self.net, x_obj, "x");
              expect_dense_per_sample(self.net, x);
              auto y = targets(self.net, y_obj, x.n());
              y.weights = step_weights(self.net, w_obj, x.n());
              step = self.locked([&] {
                return x.visit([&](const auto& in) {
                  return distributed_step(self.net, in, y.view(), x.n(), reduced, true);
                });
              });
            }
            return py::make_tuple(step.sum, step.samples);
          },
          py::arg("x"), py::arg("y"), py::arg("reduce"), py::arg("sample_weight") = py::none(),
          "One step of several processes, this one's batch (x, y) (None, None: empty), weighted "
          "by sample_weight: the gradient of its summed loss, then reduce(loss, samples, "
          "weight), which sums the gradient buffer and (loss, samples, weight) over the "
          "processes and returns the totals, then one optimizer step on the (weighted) mean "
          "(undone if it overflows a parameter). Returns (the mean loss times the samples, the "
          "samples), the loss NaN if any process's was not finite or the step overflowed.");
}

}  // namespace

void register_distributed(py::module_& m) {
  bind_distributed<float>(m, "NetworkF32");
  bind_distributed<double>(m, "NetworkF64");
}

}  // namespace denseprop::bindings
