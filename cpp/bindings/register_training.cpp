// Training beyond one step, added to the classes register_network defines: the one training
// loop (training.hpp) with its stop rules, schedules and Python's work between epochs or steps,
// the L-BFGS objective on flat parameters, and the learning-rate hook.
#include "denseprop/training.hpp"

#include "denseprop/distributed.hpp"

#include <pybind11/stl.h>

#include <cmath>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>

#include "arrays.hpp"
#include "network_model.hpp"
#include "register.hpp"

namespace denseprop::bindings {
namespace {

StopRule parse_stop(const std::string& name) {
  if (name == "none") return StopRule::none;
  if (name == "convergence") return StopRule::convergence;
  if (name == "patience") return StopRule::patience;
  throw py::value_error(cat("stop: unknown '", name, "', expected none, convergence or patience"));
}

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
          "run_epochs",
          [](M& self, py::handle x_obj, py::handle y_obj, py::handle w_obj, TrainingState& state,
             std::int64_t max_epochs, std::int64_t batch_size, bool shuffle,
             const std::string& stop, double tol, double n_iter_no_change,
             const std::string& schedule, double lr_init, double power_t,
             const std::string& lr_schedule, double warmup, py::handle alpha_obj, double data_scale,
             py::handle val_obj, py::object after_epoch, bool scored, py::handle best_obj,
             py::object reduce, std::int64_t steps, bool stop_when_diverged, bool exact_match,
             bool checked) {
            const Inputs<T> x(self.net, x_obj, "x", checked);
            expect_dense_per_sample(self.net, x);
            const Index n = x.n();
            ParsedTargets<T> y = targets(self.net, y_obj, n, checked);
            y.weights = step_weights(self.net, w_obj, n);
            std::optional<Data<T>> val;
            if (!val_obj.is_none()) {
              const py::tuple v = py::cast<py::tuple>(val_obj);
              if (v.size() != 3)
                throw py::value_error("validation: expected (x_val, y_val, sample_weight_val)");
              val.emplace(self.net, v[0], v[1], v[2], "x_val", "sample_weight_val");
              if (!after_epoch.is_none())
                throw py::value_error("validation: scored in C++ or by after_epoch, not both");
              scored = true;
            }
            std::optional<Array<T>> best;
            if (!best_obj.is_none())
              best = output<T>(best_obj, "best_params", {py::ssize_t(self.net.parameter_count())},
                               "the network", {});
            if (max_epochs < 1)
              throw py::value_error(cat("max_epochs: must be >= 1, got ", max_epochs));
            if (batch_size < 1)
              throw py::value_error(cat("batch_size: must be >= 1, got ", batch_size));
            expect_number(tol, "tol", 0);
            expect_number(n_iter_no_change, "n_iter_no_change", 0);
            expect_number(lr_init, "lr_init", 0, true);
            expect_number(power_t, "power_t", 0);
            const LrSchedule per_step = parse_lr_schedule(lr_schedule);
            if (!(warmup >= 0 && warmup < 1))
              throw py::value_error(
                  cat("warmup: must be a number in [0, 1), got ", format_number(warmup)));
            if ((per_step != LrSchedule::constant || warmup > 0) && schedule != "constant")
              throw py::value_error(cat("lr_schedule: a per-step schedule ('", lr_schedule,
                                        "', warmup ", format_number(warmup),
                                        ") needs schedule='constant'"));
            std::optional<BatchPenalty> penalty;
            if (!alpha_obj.is_none()) {
              const double alpha = real(alpha_obj, "alpha");
              expect_number(alpha, "alpha", 0);
              penalty = BatchPenalty{alpha, data_scale};
            }
            if (!reduce.is_none() && steps * batch_size < n)
              throw py::value_error(cat("steps: ", steps, " batches of ", batch_size,
                                        " do not cover the ", n, " samples"));
            TrainingSettings s;
            s.batch_size = batch_size, s.shuffle = shuffle, s.stop = parse_stop(stop);
            s.schedule = parse_schedule(schedule), s.lr_init = lr_init, s.power_t = power_t;
            s.lr_schedule = per_step, s.warmup = warmup;
            s.tol = tol, s.n_iter_no_change = n_iter_no_change;
            s.stop_when_diverged = stop_when_diverged, s.exact_match = exact_match;
            std::vector<double> losses, scores;
            std::vector<RateChange> changes;
            T* best_params = best ? best->mutable_data() : nullptr;
            // Python's work is called with the network unlocked and the GIL held: a scorer may
            // use the network.
            py::gil_scoped_release nogil;
            std::unique_lock<std::mutex> lock(self.busy);
            auto in_python = [&](auto&& f) {
              lock.unlock();
              py::gil_scoped_acquire gil;
              auto result = f();
              lock.lock();
              return result;
            };
            auto reduced = [&](double loss, Index samples, double weight) {
              return in_python([&] { return step_totals(reduce(loss, samples, weight)); });
            };
            const Stop why = x.visit([&](const auto& in) {
              auto run = [&](const auto& steps_of, auto&& after) {
                return run_epochs(self.net, in, y.view(), n, steps_of, after, scored, s, state,
                                  max_epochs, best_params, losses, scores, changes);
              };
              auto with_steps = [&](auto&& after) {
                if (reduce.is_none())
                  return run(LocalSteps<T>{penalty ? &*penalty : nullptr}, after);
                return run(DistributedSteps<T, decltype(reduced)>{reduced, Index(steps)}, after);
              };
              if (val)
                return val->x.visit([&](const auto& vx) {
                  using VX = std::decay_t<decltype(vx)>;
                  const Validation<T, VX> v{vx, val->y.view(), val->n()};
                  return with_steps([&](std::int64_t, double) -> std::optional<double> {
                    return validation_score(self.net, v, s.exact_match);
                  });
                });
              if (after_epoch.is_none())
                return with_steps([](std::int64_t, double) { return std::optional<double>(); });
              return with_steps([&](std::int64_t epoch, double loss) {
                return in_python([&] {
                  const py::object score = after_epoch(epoch, loss);
                  return score.is_none() ? std::optional<double>()
                                         : std::optional<double>(score.cast<double>());
                });
              });
            });
            lock.unlock();
            py::gil_scoped_acquire gil;
            py::list rate_changes;
            for (const RateChange& c : changes) rate_changes.append(py::make_tuple(c.epoch, c.lr));
            return py::make_tuple(losses, scores, stop_name(why), rate_changes);
          },
          py::arg("x"), py::arg("y"), py::arg("sample_weight") = py::none(), py::kw_only(),
          py::arg("state"), py::arg("max_epochs"), py::arg("batch_size"), py::arg("shuffle") = true,
          py::arg("stop") = "none", py::arg("tol") = 1e-4, py::arg("n_iter_no_change") = 10.0,
          py::arg("schedule") = "constant", py::arg("lr_init") = 1e-3, py::arg("power_t") = 0.5,
          py::arg("lr_schedule") = "constant", py::arg("warmup") = 0.0,
          py::arg("alpha") = py::none(), py::arg("data_scale") = 1.0,
          py::arg("validation") = py::none(), py::arg("after_epoch") = py::none(),
          py::arg("scored") = false, py::arg("best_params") = py::none(),
          py::arg("reduce") = py::none(), py::arg("steps") = 0,
          py::arg("stop_when_diverged") = true, py::arg("exact_match") = true,
          py::arg("checked") = false,
          "The one training loop (training.hpp): up to max_epochs epochs, reshuffled from "
          "state.seed, stopped early by `stop` ('none', 'convergence', 'patience'). Returns "
          "(losses, scores, 'max_epochs' | 'converged' | 'diverged', [(epoch, new learning "
          "rate), ...]). lr_schedule, warmup: the rate of each step (see lr_schedules()), with "
          "schedule 'constant' only. alpha: scikit-learn's per-batch L2 penalty. validation: "
          "(x, y, sample_weight) scored in C++; after_epoch(epoch, loss): Python's work between "
          "epochs, returning the epoch's score when `scored`. reduce(loss, samples, weight): "
          "sums the gradient buffer and (loss, samples, weight) over processes, `steps` steps "
          "per epoch. best_params receives the parameters the rule keeps.");
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
  m.def(
      "permutation",
      [](std::int64_t n, std::uint64_t seed, std::int64_t k) {
        if (n < 0) throw py::value_error(cat("n: must be >= 0, got ", n));
        auto order = new_array<std::int64_t>({py::ssize_t(n)});
        permutation(order.mutable_data(), n, seed, k);
        return order;
      },
      py::arg("n"), py::arg("seed"), py::arg("k"),
      "The order of epoch k's samples when the training loop reshuffles from `seed`: a "
      "permutation of range(n), Fisher-Yates on SplitMix64's stream from (seed, k).");
  m.def(
      "lr_schedules",
      [] {
        py::list out;
        for (const LrScheduleInfo& e : lr_schedule_table) {
          py::dict d;
          d["name"] = std::string(e.name);
          d["equation"] = std::string(e.equation);
          out.append(d);
        }
        return out;
      },
      "Network.fit's learning-rate schedules, one dict each: name and equation (the rate after "
      "the warmup, u = (t - W) / (T - W) for step t of T, W of them the warmup's).");
  bind_training<float>(m, "NetworkF32");
  bind_training<double>(m, "NetworkF64");
}

}  // namespace denseprop::bindings
