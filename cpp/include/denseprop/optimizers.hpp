// Parameter updates, each one fused pass over a segment of the parameter buffer. Their state
// (velocity, Adam's moments) lives here, beside the parameters, one entry per parameter.
#pragma once

#include <cmath>
#include <vector>

#include "noise.hpp"
#include "types.hpp"

namespace denseprop {

enum class OptimizerKind { sgd, adam, dpsgd };

struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::sgd;
  double lr = 0.01;
  double momentum = 0;  // sgd
  bool nesterov = false;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // adam
  double weight_decay = 0;  // L2: λ p is added to the gradient of each decayed parameter
  double clip_norm = 1, noise_multiplier = 0;  // dpsgd: C and σ
  std::uint64_t seed = 0;                      // dpsgd: the noise stream (see noise.hpp)
};

template <class T> class Optimizer {
 public:
  explicit Optimizer(Index n) : first_(n, T(0)), second_(n, T(0)) {}

  const OptimizerConfig& config() const { return config_; }
  void configure(const OptimizerConfig& c) {
    config_ = c;
    reset();
  }
  // A learning-rate schedule or a per-batch L2 strength changes these between steps; the
  // state (velocity, moments, step count) is kept.
  void set_learning_rate(double lr) { config_.lr = lr; }
  void set_weight_decay(double weight_decay) { config_.weight_decay = weight_decay; }
  void reset() {
    std::fill(first_.begin(), first_.end(), T(0));
    std::fill(second_.begin(), second_.end(), T(0));
    steps_ = 0;
  }

  // Momentum velocity (sgd) or first moment (adam); second moment (adam); steps taken.
  T* first() { return first_.data(); }
  T* second() { return second_.data(); }
  std::int64_t steps() const { return steps_; }
  void set_steps(std::int64_t t) { steps_ = t; }

  // Plain SGD (no momentum) needs no state: its step can be fused into the weight gradient's
  // product (see weight_sgd_update).
  bool plain_sgd() const { return config_.kind == OptimizerKind::sgd && config_.momentum == 0; }

  // Counts one step; the segments of that step follow through update().
  void begin_step() { ++steps_; }

  // Keeps what the next step changes, so that a failed step can be undone: the step count and
  // the state buffers this optimizer uses (plain SGD and DP-SGD have none).
  void save() {
    saved_steps_ = steps_;
    const bool adam = config_.kind == OptimizerKind::adam;
    saved_first_.clear();  // keeps the capacity: no allocation after the first save
    saved_second_.clear();
    if (adam || config_.momentum != 0) saved_first_.assign(first_.begin(), first_.end());
    if (adam) saved_second_.assign(second_.begin(), second_.end());
  }
  void restore() {
    steps_ = saved_steps_;
    std::copy(saved_first_.begin(), saved_first_.end(), first_.begin());
    std::copy(saved_second_.begin(), saved_second_.end(), second_.begin());
  }

  // DP-SGD's gradient from the sum of the clipped per-sample gradients, in place:
  // g = (Σ_i c_i g_i + N(0, σ²C²)) / batch, the noise drawn from (seed, step) for every parameter.
  void privatise(T* grads, Index n, Index batch) const {
    const OptimizerConfig& c = config_;
    if (c.noise_multiplier > 0)
      add_gaussian_noise<T>(grads, n, T(c.noise_multiplier * c.clip_norm), c.seed,
                            std::uint64_t(steps_));
    Vec<T>(grads, n) /= T(batch);
  }

  // Updates params[i] for i in [offset, offset + n) from grads, λ applied when `decay`.
  // dpsgd takes sgd's step on its privatised gradient (no momentum).
  // sgd  (PyTorch's):  d = g + λp;  v = μv + d;  p -= η (nesterov ? d + μv : v)   (v = d if μ = 0)
  // adam (bias-corrected):  m = β₁m + (1-β₁)d;  s = β₂s + (1-β₂)d²;
  //                         p -= η (m / (1-β₁ᵗ)) / (√(s / (1-β₂ᵗ)) + ε)
  void update(T* params, const T* grads, Index offset, Index n, bool decay) {
    const OptimizerConfig& c = config_;
    auto p = Vec<T>(params + offset, n).array();
    const auto g = CVec<T>(grads + offset, n).array();
    const T lr = T(c.lr), wd = decay ? T(c.weight_decay) : T(0);
    auto d = g + wd * p;
    if (c.kind != OptimizerKind::adam) {
      const T mu = T(c.momentum);
      if (mu == T(0)) {
        p -= lr * d;
        return;
      }
      auto v = Vec<T>(first_.data() + offset, n).array();
      v = mu * v + d;
      if (c.nesterov)
        p -= lr * (d + mu * v);
      else
        p -= lr * v;
      return;
    }
    auto m = Vec<T>(first_.data() + offset, n).array();
    auto s = Vec<T>(second_.data() + offset, n).array();
    const T b1 = T(c.beta1), b2 = T(c.beta2);
    // 1 − β and 1 − βᵗ in double: in float, 1 − 0.999 keeps only 3 of its 7 digits (β₂ rounds
    // to 0.99900001), which skews the moments and their bias correction by 1e-5
    const T c1 = T(1.0 - std::pow(c.beta1, double(steps_)));
    const T c2 = T(1.0 - std::pow(c.beta2, double(steps_)));
    m = b1 * m + T(1.0 - c.beta1) * d;
    s = b2 * s + T(1.0 - c.beta2) * d.square();
    p -= lr * (m / c1) / ((s / c2).sqrt() + T(c.eps));
  }

 private:
  OptimizerConfig config_;
  Buffer<T> first_, second_;
  std::int64_t steps_ = 0;
  Buffer<T> saved_first_, saved_second_;  // see save(); sized once, then reused
  std::int64_t saved_steps_ = 0;
};

}  // namespace denseprop
