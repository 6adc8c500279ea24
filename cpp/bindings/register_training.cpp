// Whole-run training of the compiled Network: many epochs per call with scikit-learn's
// convergence test and schedules (training.hpp), the L-BFGS objective on flat parameters, and
// the learning-rate hook. Added to the classes register_network defines.
#include "denseprop/training.hpp"

#include <pybind11/stl.h>

#include <cmath>
#include <optional>
#include <string>
#include <type_traits>

#include "arrays.hpp"
#include "network_model.hpp"
#include "register.hpp"

namespace denseprop::bindings {
namespace {

Schedule parse_schedule(const std::string& name) {
  if (name == "constant") return Schedule::constant;
  if (name == "invscaling") return Schedule::invscaling;
  if (name == "adaptive") return Schedule::adaptive;
  throw py::value_error(
      cat("learning_rate: unknown '", name, "', expected constant, invscaling or adaptive"));
}

const char* stop_name(Stop s) {
  switch (s) {
    case Stop::converged: return "converged";
    case Stop::diverged: return "diverged";
    case Stop::max_epochs: break;
  }
  return "max_epochs";
}

// orders: (epochs, n) sample indices, each in [0, n).
Array<std::int64_t> epoch_orders(py::handle obj, Index n) {
  const py::array a = ndarray(obj, "orders");
  expect_integers(a, "orders", "sample indices");
  check_ndim(a, "orders", 2, "(epochs, samples)");
  if (a.shape(1) != n)
    throw py::value_error(cat("orders: expected rows of ", n, " sample indices, got ", a.shape(1)));
  return int64_below(a, "orders", "sample index", n);
}

void expect_number(double v, const char* name, double low, bool open = false) {
  if (std::isnan(v) || (open ? v <= low : v < low))
    throw py::value_error(cat(name, ": must be ", open ? "> " : ">= ", low, ", got ", v));
}

// x (dense or CSR), y and sample weights, all checked before the network is touched.
template <class T> struct Data {
  Inputs<T> x;
  ParsedTargets<T> y;
  Data(const Network<T>& net, py::handle x_obj, py::handle y_obj, py::handle w_obj,
       const char* x_name, const char* w_name)
      : x(net, x_obj, x_name), y(targets(net, y_obj, x.n())) {
    y.weights = sample_weights<T>(w_obj, w_name, x.n());
  }
  Index n() const { return x.n(); }
};

template <class T> void bind_training(py::module_& m, const char* name) {
  using M = Model<T>;
  auto cls = py::reinterpret_borrow<py::class_<M>>(m.attr(name));
  cls.def(
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
          "set_learning_rate",
          [](M& self, double lr) {
            expect_number(lr, "lr", 0, true);
            self.locked([&] { self.net.optimizer().set_learning_rate(lr); });
          },
          py::arg("lr"), "Change the learning rate; the optimizer's state is kept.")
      .def(
          "loss_and_gradient",
          [](M& self, py::handle params_obj, py::handle x_obj, py::handle y_obj, py::handle w_obj,
             double alpha) {
            const Index count = self.net.parameter_count();
            const auto params = input<T>(params_obj, "params", 1, "(parameters,)", "the network");
            if (params.shape(0) != count)
              throw py::value_error(
                  cat("params: expected ", count, " values, got ", params.shape(0)));
            expect_number(alpha, "alpha", 0);
            const Data<T> d(self.net, x_obj, y_obj, w_obj, "x", "sample_weight");
            auto grad = new_array<T>({py::ssize_t(count)});
            T* g = grad.mutable_data();
            const double loss = self.locked([&] {
              return d.x.visit([&](const auto& x) {
                return loss_and_gradient_at(self.net, params.data(), x, d.y.view(), d.n(), alpha, g,
                                            self.saved);
              });
            });
            return py::make_tuple(loss, grad);
          },
          py::arg("params"), py::arg("x"), py::arg("y"), py::arg("sample_weight"), py::arg("alpha"),
          "(loss, gradient (parameters,)) of the whole set at params: the mean loss, weighted, "
          "plus alpha / (2 sum(weights)) ||W||^2. The network's parameters are left as they were.")
      .def(
          "fit_epochs",
          [](M& self, py::handle x_obj, py::handle y_obj, py::handle orders_obj,
             std::int64_t batch_size, bool checked) {
            const Inputs<T> x(self.net, x_obj, "x", checked);
            expect_dense_per_sample(self.net, x);
            const Index n = x.n();
            const auto y = targets(self.net, y_obj, n, checked);
            const auto orders = epoch_orders(orders_obj, n);
            if (batch_size < 1)
              throw py::value_error(cat("batch_size: must be >= 1, got ", batch_size));
            std::vector<double> losses;
            self.locked([&] {
              x.visit([&](const auto& in) {
                fit_epochs(self.net, in, y.view(), orders.data(), n, Index(orders.shape(0)),
                           batch_size, losses);
              });
            });
            return losses;
          },
          py::arg("x"), py::arg("y"), py::arg("orders"), py::arg("batch_size"), py::kw_only(),
          py::arg("checked") = false,
          "fit_epoch once per row of orders (epochs, samples): the list of the epochs' mean "
          "losses, NaN for an epoch that overflowed a parameter; stops after a non-finite one.")
      .def(
          "train_epochs",
          [](M& self, py::handle x_obj, py::handle y_obj, py::handle w_obj, py::handle val_obj,
             TrainingState& state, std::int64_t max_epochs, std::int64_t batch_size, bool shuffle,
             double alpha, double data_scale, const std::string& schedule, double lr_init,
             double power_t, double tol, double n_iter_no_change, py::handle best_obj,
             bool batch_penalty, bool stop_when_diverged, bool exact_match) {
            const Data<T> d(self.net, x_obj, y_obj, w_obj, "x", "sample_weight");
            expect_dense_per_sample(self.net, d.x);
            std::optional<Data<T>> val;
            std::optional<Array<T>> best;
            if (!val_obj.is_none()) {
              const py::tuple v = py::cast<py::tuple>(val_obj);
              if (v.size() != 3)
                throw py::value_error("validation: expected (x_val, y_val, sample_weight_val)");
              val.emplace(self.net, v[0], v[1], v[2], "x_val", "sample_weight_val");
              best = output<T>(best_obj, "best_params", {py::ssize_t(self.net.parameter_count())},
                               "the network", {});
            }
            if (max_epochs < 1)
              throw py::value_error(cat("max_epochs: must be >= 1, got ", max_epochs));
            if (batch_size < 1)
              throw py::value_error(cat("batch_size: must be >= 1, got ", batch_size));
            expect_number(alpha, "alpha", 0);
            expect_number(lr_init, "lr_init", 0, true);
            expect_number(power_t, "power_t", 0);
            expect_number(tol, "tol", 0);
            expect_number(n_iter_no_change, "n_iter_no_change", 0);
            TrainingSettings s;
            s.batch_size = batch_size, s.shuffle = shuffle, s.penalty = {alpha, data_scale};
            s.schedule = parse_schedule(schedule), s.lr_init = lr_init, s.power_t = power_t;
            s.tol = tol, s.n_iter_no_change = n_iter_no_change, s.batch_penalty = batch_penalty;
            s.stop_when_diverged = stop_when_diverged, s.exact_match = exact_match;
            std::vector<double> losses, scores;
            std::vector<RateChange> changes;
            T* best_params = best ? best->mutable_data() : nullptr;
            const Stop stop = self.locked([&] {
              return d.x.visit([&](const auto& x) {
                if (!val) {
                  const Validation<T, const T*>* none = nullptr;
                  return train_epochs(self.net, x, d.y.view(), d.n(), none, s, state, max_epochs,
                                      best_params, losses, scores, changes);
                }
                return val->x.visit([&](const auto& vx) {
                  using VX = std::decay_t<decltype(vx)>;
                  const Validation<T, VX> v{vx, val->y.view(), val->n()};
                  return train_epochs(self.net, x, d.y.view(), d.n(), &v, s, state, max_epochs,
                                      best_params, losses, scores, changes);
                });
              });
            });
            py::list rate_changes;
            for (const RateChange& c : changes) rate_changes.append(py::make_tuple(c.epoch, c.lr));
            return py::make_tuple(losses, scores, stop_name(stop), rate_changes);
          },
          py::arg("x"), py::arg("y"), py::arg("sample_weight"), py::arg("validation"),
          py::arg("state"), py::arg("max_epochs"), py::arg("batch_size"), py::arg("shuffle"),
          py::arg("alpha"), py::arg("data_scale"), py::arg("schedule"), py::arg("lr_init"),
          py::arg("power_t"), py::arg("tol"), py::arg("n_iter_no_change"), py::arg("best_params"),
          py::arg("batch_penalty") = true, py::arg("stop_when_diverged") = false,
          py::arg("exact_match") = true,
          "Up to max_epochs epochs as scikit-learn's MLPs train (see training.hpp): returns "
          "(losses, validation scores, 'max_epochs' | 'converged' | 'diverged', "
          "[(epoch, new learning rate), ...]). validation is None or (x, y, sample_weight); "
          "best_params receives the best-scoring parameters.");
}

}  // namespace

void register_training(py::module_& m) {
  py::class_<TrainingState>(m, "TrainingState", py::module_local(),
                            "What a run of train_epochs carries to the next: the reshuffles' "
                            "seed and count, learning rate, samples seen and the convergence "
                            "test's count and best values.")
      .def(py::init<>())
      .def_readwrite("seed", &TrainingState::seed)
      .def_readwrite("shuffles", &TrainingState::shuffles)
      .def_readwrite("lr", &TrainingState::lr)
      .def_readwrite("t", &TrainingState::t)
      .def_readwrite("no_improvement", &TrainingState::no_improvement)
      .def_readwrite("best_loss", &TrainingState::best_loss)
      .def_readwrite("best_score", &TrainingState::best_score);
  bind_training<float>(m, "NetworkF32");
  bind_training<double>(m, "NetworkF64");
}

}  // namespace denseprop::bindings
