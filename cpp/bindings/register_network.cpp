#include "denseprop/network.hpp"

#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <optional>

#include "arrays.hpp"
#include "network_model.hpp"
#include "register.hpp"

namespace denseprop::bindings {
namespace {

// Per-sample gradients take batch × parameters values: refuse a count that overflows memory's
// address range before anything is allocated.
template <class T> void expect_fits(const Network<T>& net, py::ssize_t batch) {
  const Index limit = std::numeric_limits<py::ssize_t>::max() / Index(sizeof(T));
  if (net.parameter_count() > limit / batch)
    throw py::value_error(cat("x: per-sample gradients of ", batch, " samples × ",
                              net.parameter_count(),
                              " parameters do not fit in memory; pass fewer samples"));
}

template <class T> py::array view(py::handle owner, T* data, Index n, bool writeable) {
  py::array_t<T> a({n}, {py::ssize_t(sizeof(T))}, data, owner);
  if (!writeable)
    py::detail::array_proxy(a.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  return std::move(a);
}

template <class T> void bind(py::module_& m, const char* name) {
  using M = Model<T>;
  // module_local: Model<T> is one type in every compiled variant, and two variants may be loaded
  py::class_<M>(m, name, py::module_local(),
                "A multilayer perceptron in C++; use denseprop.Network.")
      .def(py::init([](const std::vector<std::int64_t>& sizes,
                       const std::vector<std::string>& activations, double negative_slope,
                       const std::string& loss) {
             std::vector<Index> s = checked_sizes(sizes);
             if (activations.size() != s.size() - 1)
               throw py::value_error(cat("activations: expected one per layer (", s.size() - 1,
                                         "), got ", activations.size()));
             std::vector<ActivationSpec> acts;
             for (const auto& a : activations) acts.push_back(activation_spec(a, negative_slope));
             return std::make_unique<M>(std::move(s), std::move(acts), parse_loss(loss));
           }),
           py::arg("sizes"), py::arg("activations"), py::arg("negative_slope"), py::arg("loss"))
      .def_property_readonly(
          "params",
          [](py::object self) {
            auto& net = self.cast<M&>().net;
            return view<T>(self, net.params(), net.parameter_count(), true);
          },
          "All parameters, layer after layer: W[l] (out, in) row-major, then b[l]. A view.")
      .def_property_readonly(
          "grads",
          [](py::object self) {
            auto& net = self.cast<M&>().net;
            return view<T>(self, net.grads(), net.parameter_count(), false);
          },
          "The gradients of the last loss_and_gradients, laid out as params. Read-only. (A "
          "train_step with plain SGD updates the weights in its backward pass and stores only "
          "the biases' gradients.)")
      .def_property_readonly(
          "optimizer_state",
          [](py::object self) {
            auto& net = self.cast<M&>().net;
            const Index n = net.parameter_count();
            return py::make_tuple(view<T>(self, net.optimizer().first(), n, true),
                                  view<T>(self, net.optimizer().second(), n, true));
          },
          "(velocity or first moment, second moment), laid out as params. Views.")
      .def_property(
          "optimizer_steps", [](M& self) { return self.net.optimizer().steps(); },
          [](M& self, std::int64_t t) {
            if (t < 0) throw py::value_error(cat("optimizer_steps: must be >= 0, got ", t));
            self.net.optimizer().set_steps(t);
          })
      .def(
          "set_optimizer",
          [](M& self, const std::string& kind, double lr, double momentum, bool nesterov,
             double beta1, double beta2, double eps, double weight_decay, double clip_norm,
             double noise_multiplier, std::uint64_t seed) {
            OptimizerConfig c;
            if (kind == "sgd")
              c.kind = OptimizerKind::sgd;
            else if (kind == "adam")
              c.kind = OptimizerKind::adam;
            else if (kind == "dpsgd")
              c.kind = OptimizerKind::dpsgd;
            else
              throw py::value_error(
                  cat("optimizer: unknown '", kind, "', expected sgd, adam or dpsgd"));
            c.lr = lr, c.momentum = momentum, c.nesterov = nesterov, c.beta1 = beta1,
            c.beta2 = beta2, c.eps = eps, c.weight_decay = weight_decay, c.clip_norm = clip_norm,
            c.noise_multiplier = noise_multiplier, c.seed = seed;
            self.locked([&] { self.net.optimizer().configure(c); });
          },
          py::arg("kind"), py::arg("lr"), py::arg("momentum"), py::arg("nesterov"),
          py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"),
          py::arg("clip_norm"), py::arg("noise_multiplier"), py::arg("seed"),
          "Choose the optimizer and clear its state. Arguments are checked by denseprop.Network.")
      .def(
          "forward",
          [](M& self, py::handle x_obj) {
            const auto x = features(self.net, x_obj);
            const py::ssize_t batch = x.shape(0);
            auto out = new_array<T>({batch, py::ssize_t(self.net.outputs())});
            T* dst = out.mutable_data();
            self.locked([&] {
              const auto a = self.net.forward(x.data(), batch);
              std::copy_n(a.data(), a.size(), dst);
            });
            return out;
          },
          py::arg("x"), "The network's output for x: (batch, inputs) -> (batch, outputs).")
      .def(
          "loss_and_gradients",
          [](M& self, py::handle x_obj, py::handle y_obj, const std::string& reduction) {
            const auto x = features(self.net, x_obj);
            const py::ssize_t batch = x.shape(0);
            const auto y = targets(self.net, y_obj, batch);
            const Reduction r = parse_reduction(reduction);
            auto per_sample = new_array<T>({r == Reduction::none ? batch : 0});
            T* losses = r == Reduction::none ? per_sample.mutable_data() : nullptr;
            const double loss = self.locked(
                [&] { return self.net.loss_and_gradients(x.data(), y.view(), batch, r, losses); });
            if (r == Reduction::none) return py::object(per_sample);
            return py::object(py::float_(loss));
          },
          py::arg("x"), py::arg("y"), py::arg("reduction") = "mean",
          "Loss of (x, y); its gradients land in `grads`. The parameters do not change.")
      .def(
          "per_sample_gradients",
          [](M& self, py::handle x_obj, py::handle y_obj) {
            const auto x = features(self.net, x_obj);
            const py::ssize_t batch = x.shape(0);
            const auto y = targets(self.net, y_obj, batch);
            expect_fits(self.net, batch);
            py::list layers;
            std::vector<T*> grad_w, grad_b;
            for (Index l = 0; l < self.net.layers(); ++l) {
              const py::ssize_t in = self.net.size(l), out = self.net.size(l + 1);
              auto gw = new_array<T>({batch, out, in}), gb = new_array<T>({batch, out});
              grad_w.push_back(gw.mutable_data());
              grad_b.push_back(gb.mutable_data());
              layers.append(py::make_tuple(gw, gb));
            }
            self.locked(
                [&] { self.net.per_sample_gradients(x.data(), y.view(), batch, grad_w, grad_b); });
            return layers;
          },
          py::arg("x"), py::arg("y"),
          "Each sample's own gradient: [(grad_w (batch, out, in), grad_b (batch, out)), ...]. "
          "The model, and `grads`, do not change.")
      .def(
          "per_sample_gradient_norms",
          [](M& self, py::handle x_obj, py::handle y_obj) {
            const auto x = features(self.net, x_obj);
            const py::ssize_t batch = x.shape(0);
            const auto y = targets(self.net, y_obj, batch);
            auto norms = new_array<T>({batch});
            T* dst = norms.mutable_data();
            self.locked(
                [&] { self.net.per_sample_gradient_norms(x.data(), y.view(), batch, dst); });
            return norms;
          },
          py::arg("x"), py::arg("y"),
          "The L2 norm of each sample's gradient over all parameters, (batch,), without forming "
          "the gradients. The model, and `grads`, do not change.")
      .def(
          "check",
          [](M& self, py::handle x_obj, py::handle y_obj) {
            const auto x = features(self.net, x_obj);
            targets(self.net, y_obj, x.shape(0));
          },
          py::arg("x"), py::arg("y"),
          "Raise the error train_step would raise for (x, y), without touching the model.")
      .def(
          "train_step",
          [](M& self, py::handle x_obj, py::handle y_obj) {
            const auto x = features(self.net, x_obj);
            const auto y = targets(self.net, y_obj, x.shape(0));
            return self.locked([&] { return self.net.train_step(x.data(), y.view(), x.shape(0)); });
          },
          py::arg("x"), py::arg("y"),
          "One optimizer step on the batch's mean loss, returned (as before the update). "
          "A non-finite loss leaves the parameters unchanged.")
      .def(
          "fit_epoch",
          [](M& self, py::handle x_obj, py::handle y_obj, py::handle order_obj,
             std::int64_t batch_size) {
            const auto x = features(self.net, x_obj);
            const py::ssize_t n = x.shape(0);
            const auto y = targets(self.net, y_obj, n);
            const auto order = labels(order_obj, "order", n, n, "x");
            if (batch_size < 1)
              throw py::value_error(cat("batch_size: must be >= 1, got ", batch_size));
            return self.locked([&] {
              return self.net.fit_epoch(x.data(), y.view(), order.data(), n, batch_size);
            });
          },
          py::arg("x"), py::arg("y"), py::arg("order"), py::arg("batch_size"),
          "One epoch of train_step over x[order] in batches; returns the mean per-sample loss, "
          "or the first non-finite batch loss, where it stops.")
      .def(
          "workspace",
          [](M& self) {
            std::vector<std::uintptr_t> addresses;
            for (const void* p : self.net.workspace())
              addresses.push_back(reinterpret_cast<std::uintptr_t>(p));
            return py::make_tuple(self.net.capacity(), addresses);
          },
          "(batch capacity, start address of each workspace buffer).");
}

}  // namespace

void register_network(py::module_& m) {
  bind<float>(m, "NetworkF32");
  bind<double>(m, "NetworkF64");
}

}  // namespace denseprop::bindings
