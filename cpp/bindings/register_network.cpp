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

// Sizes as the Network checks them: each entry an integer, refused with a TypeError naming it
// when it is not one; values are the Network's to check, but for one past the int64 range.
std::vector<Index> sizes_of(py::handle obj) {
  if (py::isinstance<py::str>(obj) || py::isinstance<py::bytes>(obj) ||
      !py::isinstance<py::sequence>(obj))
    throw py::type_error(cat("sizes: expected a sequence of ints, got ", type_name(obj)));
  std::vector<Index> sizes;
  const auto seq = py::reinterpret_borrow<py::sequence>(obj);
  for (size_t l = 0; l < seq.size(); ++l) {
    const py::object s = seq[l];
    if (!is_integer(s))
      throw py::type_error(cat("sizes[", l, "]: expected an integer, got ", type_name(s)));
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(py::int_(s).ptr(), &overflow);
    if (overflow)
      throw py::value_error(cat("sizes[", l, "]: must be ", overflow > 0 ? "at most " : ">= ",
                                overflow > 0 ? max_layer_size : 1, ", got ",
                                std::string(py::str(s))));
    sizes.push_back(Index(v));
  }
  return sizes;
}

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

template <class T> void bind_network(py::module_& m, const char* name) {
  using M = Model<T>;
  // Module-local: each compiled variant registers its own Model (the C++ types share a name).
  py::class_<M>(m, name, py::module_local(),
                "A multilayer perceptron in C++; use denseprop.Network.")
      .def(py::init([](py::handle sizes, const std::vector<py::object>& activation,
                       py::handle output_activation, py::handle negative_slope, py::handle loss) {
             const LossKind kind = parse_loss(name_argument(loss));
             const double slope = real(negative_slope, "negative_slope");
             std::vector<ActivationSpec> acts;
             for (const auto& a : activation)
               acts.push_back(activation_spec(name_argument(a), slope));
             acts.push_back(
                 activation_spec(name_argument(output_activation), slope, "output_activation"));
             return std::make_unique<M>(sizes_of(sizes), std::move(acts), kind);
           }),
           py::arg("sizes"), py::arg("activation"), py::arg("output_activation"),
           py::arg("negative_slope"), py::arg("loss"),
           "sizes: inputs, then each layer's outputs; activation: one name per hidden layer. "
           "Every argument is checked here, with the message denseprop.Network raises.")
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
      .def(
          "layers",
          [](M& self, const py::array& buffer) {
            const auto& net = self.net;
            if (buffer.ndim() != 1 || buffer.shape(0) != net.parameter_count())
              throw py::value_error(cat("buffer: expected shape (", net.parameter_count(),
                                        ",), laid out as params, got ", shape_str(buffer)));
            py::list layers;
            for (Index l = 0; l < net.layers(); ++l) {
              const py::ssize_t in = net.size(l), out = net.size(l + 1), start = net.offset(l);
              const py::object w = buffer[py::slice(start, start + out * in, 1)];
              layers.append(
                  py::make_tuple(w.attr("reshape")(out, in),
                                 buffer[py::slice(start + out * in, start + out * in + out, 1)]));
            }
            return layers;
          },
          py::arg("buffer"),
          "[(W (out, in), b (out,)), ...]: views of each layer's slices of a buffer laid out as "
          "params (params, grads, an optimizer state, or a copy of one).")
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
          [](M& self, const OptimizerSettings& settings) {
            self.locked([&] { self.net.optimizer().configure(settings); });
          },
          py::arg("settings"), "Choose the optimizer (an OptimizerSettings) and clear its state.")
      .def_property_readonly(
          "optimizer", [](M& self) { return self.net.optimizer().settings(); },
          "The optimizer's settings, a copy.")
      .def_property(
          "compute_dtype",
          [](M& self) -> py::object {
            if (self.net.compute() == Compute::bfloat16) return py::str("bfloat16");
            return py::none();
          },
          [](M& self, py::handle compute) {
            const Compute c = compute_of(compute);
            self.locked([&] { self.net.set_compute(c); });  // refuses bfloat16 on float64
          },
          "None (products in the network's dtype) or 'bfloat16' (bfloat16 operands, float32 "
          "accumulation; float32 networks only).")
      .def_property(
          "label_smoothing", [](M& self) { return self.net.label_smoothing(); },
          [](M& self, py::handle eps) {
            const double e = real(eps, "label_smoothing");
            self.locked([&] { self.net.set_label_smoothing(e); });
          },
          "Label smoothing ε of the cross-entropy loss, in [0, 1).")
      .def_property(
          "dropout",
          [](M& self) {
            std::vector<double> p = self.net.dropout();
            if (p.empty()) p.assign(self.net.layers(), 0.0);
            return p;
          },
          [](M& self, const std::vector<double>& p) {
            self.locked([&] { self.net.set_dropout(p); });
          },
          "Each layer's dropout probability in training steps (the output layer's 0).")
      .def_property(
          "dropout_seed", [](M& self) { return self.net.dropout_seed; },
          [](M& self, std::uint64_t seed) { self.locked([&] { self.net.dropout_seed = seed; }); },
          "The seed of the dropout masks' stream.")
      .def_property(
          "dropout_stream", [](M& self) { return self.net.dropout_stream; },
          [](M& self, std::uint64_t stream) {
            self.locked([&] { self.net.dropout_stream = stream; });
          },
          "Which of several processes' mask streams this network draws (0 alone, the MPI "
          "rank + 1 in a data-parallel step).")
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
            const Inputs<T> x(self.net, x_obj, "x");
            const py::ssize_t batch = x.n();
            const auto y = targets(self.net, y_obj, batch);
            const Reduction r = parse_reduction(reduction);
            auto per_sample = new_array<T>({r == Reduction::none ? batch : 0});
            T* losses = r == Reduction::none ? per_sample.mutable_data() : nullptr;
            const double loss = self.locked([&] {
              return x.visit([&](const auto& in) {
                return self.net.loss_and_gradients(in, y.view(), batch, r, losses);
              });
            });
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
          [](M& self, py::handle x_obj, py::handle y_obj, py::handle w_obj) {
            const Inputs<T> x(self.net, x_obj, "x");
            if (y_obj.is_none()) return;
            expect_dense_per_sample(self.net, x);
            targets(self.net, y_obj, x.n());
            sample_weights<T>(w_obj, "sample_weight", x.n());
          },
          py::arg("x"), py::arg("y") = py::none(), py::arg("sample_weight") = py::none(),
          "Raise the error train_step would raise for (x, y, sample_weight) (forward for x "
          "alone; sample weights as any optimizer takes them), without touching the model.")
      .def(
          "train_step",
          [](M& self, py::handle x_obj, py::handle y_obj, py::handle w_obj) {
            const Inputs<T> x(self.net, x_obj, "x");
            expect_dense_per_sample(self.net, x);
            auto y = targets(self.net, y_obj, x.n());
            y.weights = step_weights(self.net, w_obj, x.n());
            return self.locked([&] {
              return x.visit(
                  [&](const auto& in) { return self.net.train_step(in, y.view(), x.n()); });
            });
          },
          py::arg("x"), py::arg("y"), py::arg("sample_weight") = py::none(),
          "One optimizer step on the batch's mean loss (weighted: sum(w * loss) / sum(w)), "
          "returned (as before the update). A non-finite loss leaves the parameters unchanged.")
      .def(
          "forward_csr",
          [](M& self, py::handle x_obj) {
            const Inputs<T> x(self.net, x_obj, "x");
            const py::ssize_t batch = x.n();
            auto out = new_array<T>({batch, py::ssize_t(self.net.outputs())});
            T* dst = out.mutable_data();
            self.locked([&] {
              x.visit([&](const auto& in) {
                const auto a = self.net.forward(in, batch);
                std::copy_n(a.data(), a.size(), dst);
              });
            });
            return out;
          },
          py::arg("x"), "forward for x as a scipy.sparse CSR matrix (or a dense array).")
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
  bind_network<float>(m, "NetworkF32");
  bind_network<double>(m, "NetworkF64");
}

}  // namespace denseprop::bindings
