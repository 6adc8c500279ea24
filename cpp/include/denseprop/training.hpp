// The one training loop: every path that trains for epochs (Network.fit and partial_fit, the
// estimators' sgd and adam, data-parallel training over MPI) runs `run_epochs`. Per epoch: a
// reshuffle drawn from the seed, the steps (this process's own, or several processes' together:
// see distributed.hpp), the divergence check, a score, the rule that stops a run early, and a
// learning-rate schedule. Nothing returns to Python between epochs unless the caller hands in
// work that must (a user's scorer, a progress bar, MPI's collectives), so a small data set
// costs its steps and a few microseconds per epoch.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>
#include <string_view>
#include <vector>

#include "network.hpp"
#include "noise.hpp"

namespace denseprop {

// The rule that ends a run before max_epochs (besides divergence), each stated once here:
// none: it runs max_epochs epochs.
// convergence (scikit-learn's MLPs): an epoch fails when it does not improve the best score, or
//   unscored the best loss, by tol; after more than n_iter_no_change failures in a row the
//   adaptive schedule divides η by 5 and counts again, the others stop. The parameters are kept
//   whenever the score beats the best.
// patience (Network.fit's early stopping): it stops after n_iter_no_change epochs in a row that
//   do not improve the best score, or unscored the best loss, by tol; the best moves only by
//   such an improvement, whose parameters are kept.
// Scored, the kept parameters are put back at the end of the run (best_params starts as the
// caller's: the parameters before it, or those a previous run kept).
enum class StopRule { none, convergence, patience };

// constant: η stays; invscaling: η = η₀ / (t + 1)^power_t after each epoch, t the samples seen;
// adaptive: η / 5 whenever the convergence test fails, until η ≤ 1e-6.
enum class Schedule { constant, invscaling, adaptive };

// Network.fit's learning-rate schedules, per step, over the T steps a run of max_epochs epochs
// would take (early stopping simply ends one), declared once: their names here, for the
// bindings and messages. With W = round(warmup · T) warmup steps, step t = 0 … T−1 takes
//   t < W:     η (t + 1) / W
//   constant:  η
//   cosine:    η ½ (1 + cos(π (t − W) / (T − W)))
//   linear:    η (1 − (t − W) / (T − W))
// constant without warmup leaves η to the per-epoch Schedule above, as before.
enum class LrSchedule { constant, cosine, linear };
struct LrScheduleInfo {
  std::string_view name;
  std::string_view equation;  // after the warmup, u = (t − W) / (T − W)
};
inline constexpr std::array<LrScheduleInfo, 3> lr_schedule_table{{
    {"constant", "η"},
    {"cosine", "η ½ (1 + cos(π u))"},
    {"linear", "η (1 − u)"},
}};

inline LrSchedule parse_lr_schedule(std::string_view name) {
  return LrSchedule(find_entry(lr_schedule_table, name, "lr_schedule"));
}

struct StepRates {
  LrSchedule schedule = LrSchedule::constant;
  double lr = 0;
  std::int64_t total = 0, warmup = 0;  // T and W

  // W = round(fraction · T), halves to even as Python's round (nearbyint's default rounding).
  StepRates(LrSchedule s, double lr_, std::int64_t total_, double fraction)
      : schedule(s), lr(lr_), total(total_),
        warmup(std::int64_t(std::nearbyint(fraction * double(total_)))) {}

  bool per_step() const { return schedule != LrSchedule::constant || warmup > 0; }
  double at(std::int64_t t) const {
    if (t < warmup) return lr * double(t + 1) / double(warmup);
    const double done = double(t - warmup) / double(total - warmup);  // t < T: T − W > 0
    constexpr double pi = 3.141592653589793;
    switch (schedule) {
      case LrSchedule::cosine: return lr * 0.5 * (1 + std::cos(pi * done));
      case LrSchedule::linear: return lr * (1 - done);
      case LrSchedule::constant: break;
    }
    return lr;
  }
};

struct TrainingSettings {
  Index batch_size = 200;
  bool shuffle = true;
  StopRule stop = StopRule::convergence;
  Schedule schedule = Schedule::constant;
  double lr_init = 1e-3, power_t = 0.5;
  LrSchedule lr_schedule = LrSchedule::constant;  // per step; with Schedule::constant only
  double warmup = 0;                              // the fraction of the steps, in [0, 1)
  double tol = 1e-4;
  double n_iter_no_change = 10;  // may be infinite: never stop early
  // a non-finite loss or parameter stops the run even when scored (scikit-learn's goes on)
  bool stop_when_diverged = false;
  // binary cross-entropy's accuracy: every output of a sample right (scikit-learn's), or
  // the fraction of outputs right
  bool exact_match = true;
};

// What carries over from one call to the next (warm start, partial_fit), scikit-learn's names.
struct TrainingState {
  std::uint64_t seed = 0;     // the reshuffles: epoch k's permutation comes from (seed, k)
  std::int64_t shuffles = 0;  // permutations drawn so far
  double lr = 1e-3;           // the current learning rate
  std::int64_t t = 0;         // samples seen
  std::int64_t no_improvement = 0;
  double best_loss = std::numeric_limits<double>::infinity();
  double best_score = -std::numeric_limits<double>::infinity();
};

// Why run_epochs returned.
enum class Stop { max_epochs, converged, diverged };

// A learning-rate change of the adaptive schedule: after `epoch` (1-based, of this call), to
// `lr`; lr 0 when η had reached 1e-6 and training stopped.
struct RateChange {
  std::int64_t epoch;
  double lr;
};

// X: the inputs as Network::forward takes them, `const T*` (inputs × n) or a CsrView.
template <class T, class X> struct Validation {
  X x;
  Targets<T> y;
  Index n;
};

// scikit-learn's score of the network on (x, y): accuracy (weighted; exact match of every label
// for binary cross-entropy, outputs above 0.5), or R² averaged over outputs (weighted; an output
// whose targets are constant scores 1 if predicted exactly, else 0). NaN if an output is not
// finite.
template <class T, class X>
double validation_score(Network<T>& net, const Validation<T, X>& v, bool exact_match) {
  const CMat<T> out = net.forward(v.x, v.n);
  const Index k = out.rows(), n = v.n;
  if (!std::isfinite((out.array() * T(0)).sum())) return std::numeric_limits<double>::quiet_NaN();
  auto weight = [&](Index i) { return v.y.weights ? double(v.y.weights[i]) : 1.0; };
  const CMat<T> y(v.y.dense, k, v.y.dense ? n : 0);
  const std::string_view loss = loss_table[net.loss()].name;
  if (loss_table[net.loss()].classifier) {
    double right = 0, total = 0;
    for (Index i = 0; i < n; ++i) {
      double ok;
      if (loss == "binary_cross_entropy") {
        const auto right = (out.col(i).array() > T(0.5)) == (y.col(i).array() > T(0.5));
        ok = exact_match ? double(right.all()) : double(right.count()) / double(k);
      } else {
        Index predicted, label;
        out.col(i).maxCoeff(&predicted);
        if (v.y.labels)
          label = Index(v.y.labels[i]);
        else
          y.col(i).maxCoeff(&label);
        ok = predicted == label;
      }
      right += ok * weight(i);
      total += weight(i);
    }
    return right / total;
  }
  double score = 0;
  for (Index j = 0; j < k; ++j) {
    double sw = 0, mean = 0;
    for (Index i = 0; i < n; ++i) sw += weight(i), mean += weight(i) * double(y(j, i));
    mean /= sw;
    double residual = 0, spread = 0;
    for (Index i = 0; i < n; ++i) {
      const double r = double(y(j, i)) - double(out(j, i)), d = double(y(j, i)) - mean;
      residual += weight(i) * r * r, spread += weight(i) * d * d;
    }
    score += spread != 0 ? 1 - residual / spread : (residual == 0 ? 1.0 : 0.0);
  }
  return score / double(k);
}

// order[0..n) := a permutation from (seed, k): Fisher–Yates on SplitMix64's stream.
inline void permutation(std::int64_t* order, Index n, std::uint64_t seed, std::int64_t k) {
  constexpr std::uint64_t gamma = 0x9E3779B97F4A7C15ull;
  std::iota(order, order + n, std::int64_t(0));
  std::uint64_t word = stream_key(seed, k);
  for (Index i = n - 1; i > 0; --i) {
    const double u = double(splitmix64(word += gamma) >> 11) * 0x1.0p-53;  // [0, 1)
    std::swap(order[i], order[std::min(i, Index(u * double(i + 1)))]);
  }
}

// An epoch of this process's own steps; with `penalty`, scikit-learn's per-batch L2 penalty
// (else the optimizer's own weight decay stays).
template <class T> struct LocalSteps {
  const BatchPenalty* penalty;
  Index steps_per_epoch(Index n, Index batch_size) const {
    return (n + batch_size - 1) / batch_size;
  }
  template <class X, class BeforeStep>
  double epoch(Network<T>& net, const X& x, Targets<T> y, const std::int64_t* order, Index n,
               Index batch_size, BeforeStep&& before_step) const {
    return net.fit_epoch(x, y, order, n, batch_size, penalty, before_step);
  }
};

// Puts the optimizer's rate back when a run that set it per step ends, however it ends: a
// later partial_fit or train_step takes the rate the fit was given.
template <class T> struct KeepRate {
  Optimizer<T>& optimizer;
  double lr;
  bool on;
  ~KeepRate() {
    if (on) optimizer.set_learning_rate(lr);
  }
};

// Up to max_epochs epochs of net's optimizer over (x, y), n samples, each epoch's steps taken
// by `steps` (LocalSteps, DistributedSteps), each step's rate from s.lr_schedule when it sets
// one per step (see StepRates; the optimizer's rate is put back at the end). After each epoch its
// loss goes to `losses`, then after_epoch(epoch, loss) (epoch 1-based in this call) returns the
// epoch's score, which goes to `scores`, or nothing when the run is not `scored`; the StopRule
// reads them. A non-finite loss, or parameter, stops the run (Stop::diverged) unless it is scored
// and not stop_when_diverged (scikit-learn's rule: it goes on, and keeps the best parameters).
// best_params (parameter_count values) holds the parameters the rule keeps, when scored.
template <class T, class X, class Steps, class AfterEpoch>
Stop run_epochs(Network<T>& net, const X& x, Targets<T> y, Index n, const Steps& steps,
                AfterEpoch&& after_epoch, bool scored, const TrainingSettings& s,
                TrainingState& state, std::int64_t max_epochs, T* best_params,
                std::vector<double>& losses, std::vector<double>& scores,
                std::vector<RateChange>& rate_changes) {
  const Index count = net.parameter_count();
  auto keep_best = [&] {
    if (best_params) std::copy_n(net.params(), count, best_params);
  };
  auto finish = [&](Stop stop) {
    if (scored && best_params) std::copy_n(best_params, count, net.params());
    return stop;
  };
  std::vector<std::int64_t> order(n);
  std::iota(order.begin(), order.end(), std::int64_t(0));
  const std::int64_t per_epoch = steps.steps_per_epoch(n, s.batch_size);
  const StepRates rates(s.lr_schedule, state.lr, max_epochs * per_epoch, s.warmup);
  const KeepRate<T> keep_rate{net.optimizer(), state.lr, rates.per_step()};
  for (std::int64_t epoch = 1; epoch <= max_epochs; ++epoch) {
    if (s.shuffle) permutation(order.data(), n, state.seed, state.shuffles++);
    net.optimizer().set_learning_rate(state.lr);
    const std::int64_t first = (epoch - 1) * per_epoch;
    auto before_step = [&](Index k) {
      if (rates.per_step()) net.optimizer().set_learning_rate(rates.at(first + k));
    };
    double loss = steps.epoch(net, x, y, order.data(), n, s.batch_size, before_step);
    if (s.stop_when_diverged && std::isfinite(loss) && !all_finite(net.params(), count))
      loss = std::numeric_limits<double>::quiet_NaN();
    losses.push_back(loss);
    state.t += n;
    if ((!scored || s.stop_when_diverged) && !std::isfinite(loss)) return Stop::diverged;
    const std::optional<double> score = after_epoch(epoch, loss);
    if (scored) scores.push_back(score.value_or(std::numeric_limits<double>::quiet_NaN()));
    // the value the rule improves: the score, or unscored −loss
    const double current = scored ? scores.back() : -loss;
    double& best = scored ? state.best_score : state.best_loss;
    const double best_value = scored ? best : -best;
    const bool improved = current > best_value + s.tol;  // false for NaN
    if (s.stop == StopRule::convergence) {
      // scikit-learn's comparisons as it writes them, ties and NaN included (a NaN score
      // resets the count)
      const bool failed = scored ? current < best + s.tol : loss > best - s.tol;
      state.no_improvement = failed ? state.no_improvement + 1 : 0;
      if (scored && current > best) {
        best = current;
        keep_best();
      } else if (!scored) {
        best = std::min(best, loss);
      }
    } else if (s.stop == StopRule::patience) {
      if (improved) {
        best = scored ? current : loss;
        state.no_improvement = 0;
        if (scored) keep_best();
      } else {
        ++state.no_improvement;
      }
    }
    if (s.schedule == Schedule::invscaling)
      state.lr = s.lr_init / std::pow(double(state.t + 1), s.power_t);
    if (s.stop == StopRule::patience && double(state.no_improvement) >= s.n_iter_no_change)
      return finish(Stop::converged);
    if (s.stop == StopRule::convergence && double(state.no_improvement) > s.n_iter_no_change) {
      if (s.schedule != Schedule::adaptive) return finish(Stop::converged);
      if (state.lr <= 1e-6) {
        rate_changes.push_back({epoch, 0.0});
        return finish(Stop::converged);
      }
      state.lr /= 5;
      rate_changes.push_back({epoch, state.lr});
      state.no_improvement = 0;
    }
  }
  return finish(Stop::max_epochs);
}

// The objective L-BFGS minimises, at `params` (parameter_count values): the mean loss of the
// whole set (weighted), plus α/(2 Σw) ‖W‖², and its gradient into `grad`. The network's own
// parameters are put back afterwards.
template <class T, class X>
double loss_and_gradient_at(Network<T>& net, const T* params, const X& x, Targets<T> y, Index n,
                            double alpha, T* grad, std::vector<T>& saved) {
  const Index count = net.parameter_count();
  saved.assign(net.params(), net.params() + count);
  std::copy_n(params, count, net.params());
  double loss = net.loss_and_gradients(x, y, n, Reduction::mean);
  std::copy_n(net.grads(), count, grad);
  const double sw = y.weights ? weight_sum(y.weights, n) : double(n);
  if (alpha != 0 && sw > 0) {
    loss += 0.5 * alpha * net.squared_weight_norm() / sw;
    const T decay = T(alpha / sw);
    for (Index l = 0; l < net.layers(); ++l) {
      const Index offset = net.offset(l), w = net.size(l + 1) * net.size(l);
      Vec<T>(grad + offset, w) += decay * CVec<T>(params + offset, w);
    }
  }
  std::copy(saved.begin(), saved.end(), net.params());
  return loss;
}

}  // namespace denseprop
