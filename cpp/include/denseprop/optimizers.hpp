// Parameter updates, each one fused pass over a segment of the parameter buffer. Optimizers are
// declared once: an entry below (its info, its checks, the state buffers it uses and its update)
// and a name in the `Optimizers` list. Their state (velocity, Adam's moments) lives in
// `Optimizer`, beside the parameters, one entry per parameter in each buffer.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "noise.hpp"
#include "table.hpp"
#include "types.hpp"

namespace denseprop {

// Every setting an optimizer can take, declared once: its keyword (in set_optimizer, fit, the
// model file and Network.optimizer), default, range and one line of help. An optimizer's entry
// lists the settings it reads beside lr, weight_decay and max_grad_norm, which all take (but
// dpsgd, max_grad_norm: it clips each sample's gradient instead); the bindings, Python's
// signatures and the model file follow from this table, and a model file written before a
// setting existed loads with its default.
enum class Setting : std::size_t {
  lr,
  weight_decay,
  momentum,
  nesterov,
  beta1,
  beta2,
  eps,
  alpha,
  clip_norm,
  noise_multiplier,
  max_grad_norm,
  count
};

struct SettingInfo {
  Setting id;
  std::string_view name;
  double default_value;
  // value in [low, high], or (low, high] when low_open; a flag is true or false instead
  double low, high;
  bool low_open;
  bool flag;
  std::string_view help;
  // high is inf and inf itself is a value (no limit); else the value must be finite
  bool takes_inf = false;
};

namespace range {
inline constexpr double inf = std::numeric_limits<double>::infinity();
inline constexpr bool open = true, closed = false;
inline constexpr bool unlimited = true;  // see SettingInfo::takes_inf
}  // namespace range

inline constexpr std::array<SettingInfo, std::size_t(Setting::count)> setting_table{{
    {Setting::lr, "lr", 0.01, 0, range::inf, range::open, false, "the learning rate η"},
    {Setting::weight_decay, "weight_decay", 0, 0, range::inf, range::closed, false,
     "λ: the weights' decay (L2 on the gradient; decoupled for adamw); biases are not decayed"},
    {Setting::momentum, "momentum", 0, 0, 1, range::closed, false, "μ: the velocity's decay"},
    {Setting::nesterov, "nesterov", 0, 0, 1, range::closed, true,
     "Nesterov's momentum (needs momentum > 0)"},
    {Setting::beta1, "beta1", 0.9, 0, 1, range::closed, false,
     "β₁: the first moment's decay (< 1)"},
    {Setting::beta2, "beta2", 0.999, 0, 1, range::closed, false,
     "β₂: the second moment's decay (< 1)"},
    {Setting::eps, "eps", 1e-8, 0, range::inf, range::open, false,
     "ε: added to the root of the second moment"},
    {Setting::alpha, "alpha", 0.99, 0, 1, range::closed, false,
     "α: the decay of the squared gradients' running average"},
    {Setting::clip_norm, "clip_norm", 1, 0, range::inf, range::open, false,
     "C: each sample's gradient is clipped to this L2 norm"},
    {Setting::noise_multiplier, "noise_multiplier", 1, 0, range::inf, range::closed, false,
     "σ: the noise's standard deviation is σC"},
    {Setting::max_grad_norm, "max_grad_norm", range::inf, 0, range::inf, range::open, false,
     "c: the whole gradient is scaled by c / (‖g‖ + 1e-6) when its L2 norm ‖g‖ exceeds c, "
     "before the step (inf: never; not with dpsgd)",
     range::unlimited},
}};

constexpr bool in_order() {
  for (std::size_t i = 0; i < setting_table.size(); ++i)
    if (std::size_t(setting_table[i].id) != i) return false;
  return true;
}
static_assert(in_order(), "setting_table lists the settings in Setting's order");

// The value of every setting (each optimizer reads its own), `kind` the index of an entry of
// Optimizers, and DP-SGD's noise stream (see noise.hpp).
struct OptimizerSettings {
  std::size_t kind = 0;
  std::array<double, std::size_t(Setting::count)> values = defaults();
  std::uint64_t seed = 0;

  double operator[](Setting s) const { return values[std::size_t(s)]; }
  double& operator[](Setting s) { return values[std::size_t(s)]; }
  static constexpr std::array<double, std::size_t(Setting::count)> defaults() {
    std::array<double, std::size_t(Setting::count)> v{};
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = setting_table[i].default_value;
    return v;
  }
};

// The settings an optimizer reads besides lr, weight_decay and max_grad_norm, for its docs and
// messages.
using SettingList = std::array<Setting, 4>;

struct OptimizerInfo {
  std::string_view name;
  // The step is formed from each sample's gradient (DP-SGD's clipping), not the batch's.
  bool per_sample;
  std::string_view equation;  // the step, for the docs and `optimizers()`
  SettingList settings;       // Setting::count ends a shorter list

  // Every setting it reads: lr and weight_decay, max_grad_norm unless the step is per-sample
  // (DP-SGD bounds each sample's gradient instead: see DpSgd::check), then its own.
  std::vector<Setting> reads() const {
    std::vector<Setting> all{Setting::lr, Setting::weight_decay};
    if (!per_sample) all.push_back(Setting::max_grad_norm);
    for (std::size_t i = 0; i < settings.size() && settings[i] != Setting::count; ++i)
      all.push_back(settings[i]);
    return all;
  }
};

inline constexpr bool per_sample = true, per_batch = false;
inline constexpr Setting end_of_list = Setting::count;

// A segment of the buffers an update works on: parameters, gradients and the two state buffers
// at the same offset; `decay` is λ for weights, 0 for biases; `step` counts from 1.
template <class T> struct Segment {
  Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> p;
  Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>> g;
  T* first;
  T* second;
  T decay;
  std::int64_t step;
};

// f(part) over consecutive parts of s small enough to stay in L1 cache, so that an update of
// several statements (Adam's three) reads and writes each buffer once, not once per statement.
// Each element's arithmetic is the same either way.
template <class T, class F> void in_parts(Segment<T> s, const F& f) {
  constexpr Index part = 512;
  const Index n = s.p.size();
  auto at = [](T* buffer, Index i) { return buffer ? buffer + i : nullptr; };
  for (Index i = 0; i < n; i += part) {
    const Index k = std::min(part, n - i);
    f(Segment<T>{{s.p.data() + i, k},
                 {s.g.data() + i, k},
                 at(s.first, i),
                 at(s.second, i),
                 s.decay,
                 s.step});
  }
}

namespace detail {
inline void refuse(const std::string& what) { throw std::invalid_argument(what); }
inline std::string str(double v) { return format_number(v); }
// The range of a setting's row, with the message users see.
inline void check_range(const SettingInfo& row, double value) {
  if (row.flag) return;
  const bool above = row.low_open ? value > row.low : value >= row.low;
  const bool finite = std::isfinite(value) || (row.takes_inf && value == range::inf);
  if (!(above && value <= row.high && finite))
    refuse(std::string(row.name) + ": must be a " + (row.takes_inf ? "" : "finite ") +
           "number in " + (row.low_open ? "(" : "[") + str(row.low) + ", " + str(row.high) +
           "], got " + str(value));
}
}  // namespace detail

// sgd (PyTorch's):  d = g + λp;  v = μv + d;  p -= η (nesterov ? d + μv : v)   (v = d if μ = 0)
struct Sgd {
  static constexpr OptimizerInfo info{"sgd",
                                      per_batch,
                                      "d = g + λp; v = μv + d; p -= η (nesterov ? d + μv : v)",
                                      {Setting::momentum, Setting::nesterov, end_of_list}};
  static int state_buffers(const OptimizerSettings& s) { return s[Setting::momentum] != 0; }
  // Without momentum the step can be fused into the weight gradient's product.
  static bool fusable(const OptimizerSettings& s) { return s[Setting::momentum] == 0; }
  static void check(const OptimizerSettings&) {}
  template <class T> static void update(const OptimizerSettings& c, Segment<T> whole) {
    const T lr = T(c[Setting::lr]), mu = T(c[Setting::momentum]);
    const bool nesterov = c[Setting::nesterov] != 0;
    in_parts(whole, [&](Segment<T> s) {
      auto d = s.g + s.decay * s.p;
      if (mu == T(0)) {
        s.p -= lr * d;
        return;
      }
      auto v = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>(s.first, s.p.size());
      v = mu * v + d;
      if (nesterov)
        s.p -= lr * (d + mu * v);
      else
        s.p -= lr * v;
    });
  }
};

// 1 − β and 1 − βᵗ in double: in float, 1 − 0.999 keeps only 3 of its 7 digits (β₂ rounds to
// 0.99900001), which skews the moments and their bias correction by 1e-5.
inline double bias_correction(double beta, std::int64_t step) {
  return 1.0 - std::pow(beta, double(step));
}

// adam (bias-corrected):  m = β₁m + (1-β₁)d;  s = β₂s + (1-β₂)d²;
//                         p -= η (m / (1-β₁ᵗ)) / (√(s / (1-β₂ᵗ)) + ε)
struct Adam {
  static constexpr OptimizerInfo info{
      "adam",
      per_batch,
      "d = g + λp; m = β₁m + (1−β₁)d; s = β₂s + (1−β₂)d²; p -= η m̂ / (√ŝ + ε)",
      {Setting::beta1, Setting::beta2, Setting::eps, end_of_list}};
  static int state_buffers(const OptimizerSettings&) { return 2; }
  static bool fusable(const OptimizerSettings&) { return false; }
  static void check(const OptimizerSettings& s) {
    if (s[Setting::beta1] >= 1 || s[Setting::beta2] >= 1)
      detail::refuse("beta1, beta2: must be < 1 for adam's bias correction");
  }
  template <class T> static void update(const OptimizerSettings& c, Segment<T> whole) {
    const double beta1 = c[Setting::beta1], beta2 = c[Setting::beta2];
    const T b1 = T(beta1), b2 = T(beta2), lr = T(c[Setting::lr]), eps = T(c[Setting::eps]);
    const T c1 = T(bias_correction(beta1, whole.step));
    const T c2 = T(bias_correction(beta2, whole.step));
    in_parts(whole, [&](Segment<T> s) {
      const Index n = s.p.size();
      auto d = s.g + s.decay * s.p;
      auto m = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>(s.first, n);
      auto v = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>(s.second, n);
      m = b1 * m + T(1.0 - beta1) * d;
      v = b2 * v + T(1.0 - beta2) * d.square();
      s.p -= lr * (m / c1) / ((v / c2).sqrt() + eps);
    });
  }
};

// adamw (Adam with decoupled weight decay, Loshchilov & Hutter 2019; PyTorch's AdamW):
//   m = β₁m + (1-β₁)g;  s = β₂s + (1-β₂)g²;  p ← p (1 − ηλ) − η (m / (1-β₁ᵗ)) / (√(s / (1-β₂ᵗ)) +
//   ε)
struct AdamW {
  static constexpr OptimizerInfo info{
      "adamw", per_batch, "m = β₁m + (1−β₁)g; s = β₂s + (1−β₂)g²; p ← p (1 − ηλ) − η m̂ / (√ŝ + ε)",
      Adam::info.settings};
  static int state_buffers(const OptimizerSettings&) { return 2; }
  static bool fusable(const OptimizerSettings&) { return false; }
  static void check(const OptimizerSettings& s) { Adam::check(s); }
  template <class T> static void update(const OptimizerSettings& c, Segment<T> whole) {
    const double beta1 = c[Setting::beta1], beta2 = c[Setting::beta2];
    const T b1 = T(beta1), b2 = T(beta2), lr = T(c[Setting::lr]), eps = T(c[Setting::eps]);
    const T c1 = T(bias_correction(beta1, whole.step));
    const T c2 = T(bias_correction(beta2, whole.step));
    in_parts(whole, [&](Segment<T> s) {
      const Index n = s.p.size();
      auto m = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>(s.first, n);
      auto v = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>(s.second, n);
      m = b1 * m + T(1.0 - beta1) * s.g;
      v = b2 * v + T(1.0 - beta2) * s.g.square();
      s.p = s.p * (T(1) - lr * s.decay) - lr * (m / c1) / ((v / c2).sqrt() + eps);
    });
  }
};

// rmsprop (Hinton 2012; PyTorch's RMSprop):  d = g + λp;  v = αv + (1−α)d²;  p -= η d / (√v + ε)
struct RmsProp {
  static constexpr OptimizerInfo info{"rmsprop",
                                      per_batch,
                                      "d = g + λp; v = αv + (1−α)d²; p -= η d / (√v + ε)",
                                      {Setting::alpha, Setting::eps, end_of_list}};
  static int state_buffers(const OptimizerSettings&) { return 1; }
  static bool fusable(const OptimizerSettings&) { return false; }
  static void check(const OptimizerSettings&) {}
  template <class T> static void update(const OptimizerSettings& c, Segment<T> whole) {
    const double alpha = c[Setting::alpha];
    const T a = T(alpha), rest = T(1.0 - alpha), lr = T(c[Setting::lr]), eps = T(c[Setting::eps]);
    in_parts(whole, [&](Segment<T> s) {
      auto d = s.g + s.decay * s.p;
      auto v = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>(s.first, s.p.size());
      v = a * v + rest * d.square();
      s.p -= lr * d / (v.sqrt() + eps);
    });
  }
};

// DP-SGD (Abadi et al. 2016): SGD's plain step on the privatised gradient (see Network and
// Optimizer::privatise): each sample's gradient clipped to C, summed, N(0, σ²C²) noise added.
struct DpSgd {
  static constexpr OptimizerInfo info{"dpsgd",
                                      per_sample,
                                      "g = (Σ_i clip_C(g_i) + N(0, σ²C²)) / batch; p -= η (g + λp)",
                                      {Setting::clip_norm, Setting::noise_multiplier, end_of_list}};
  static int state_buffers(const OptimizerSettings&) { return 0; }
  static bool fusable(const OptimizerSettings&) { return false; }
  static void check(const OptimizerSettings& s) {
    if (s[Setting::momentum] != 0)
      detail::refuse("momentum: dpsgd takes plain SGD steps, got momentum=" +
                     detail::str(s[Setting::momentum]));
    // Opacus's max_grad_norm is the per-sample bound, clip_norm here: a bound on the mean
    // gradient besides it is more likely that mistake than a wish, so it is refused.
    if (std::isfinite(s[Setting::max_grad_norm]))
      detail::refuse(
          "max_grad_norm: dpsgd clips each sample's gradient to clip_norm (Opacus's "
          "max_grad_norm) and takes no bound on the whole gradient, got max_grad_norm=" +
          detail::str(s[Setting::max_grad_norm]));
  }
  template <class T> static void update(const OptimizerSettings& c, Segment<T> s) {
    s.p -= T(c[Setting::lr]) * (s.g + s.decay * s.p);
  }
};

using Optimizers = std::tuple<Sgd, Adam, DpSgd, AdamW, RmsProp>;
inline constexpr auto optimizer_table = infos_of<OptimizerInfo>(static_cast<Optimizers*>(nullptr));

inline std::size_t parse_optimizer(std::string_view name) {
  return find_entry(optimizer_table, name, "optimizer");
}

// Refuses settings out of their rows' ranges, then those the chosen optimizer cannot take,
// with the message users see.
inline void check(const OptimizerSettings& s) {
  if (s.kind >= optimizer_table.size()) detail::refuse("optimizer: unknown kind");
  for (const SettingInfo& row : setting_table) detail::check_range(row, s[row.id]);
  if (s[Setting::nesterov] != 0 && s[Setting::momentum] == 0)
    detail::refuse("nesterov: needs momentum > 0");
  visit<Optimizers>(s.kind, [&](auto entry) { entry.check(s); });
}

template <class T> class Optimizer {
 public:
  explicit Optimizer(Index n) : first_(n, T(0)), second_(n, T(0)) {}

  const OptimizerSettings& settings() const { return settings_; }
  const OptimizerInfo& info() const { return optimizer_table[settings_.kind]; }
  void configure(const OptimizerSettings& s) {
    check(s);
    settings_ = s;
    reset();
  }
  // A learning-rate schedule or a per-batch L2 strength changes these between steps; the
  // state (velocity, moments, step count) is kept.
  void set_learning_rate(double lr) { settings_[Setting::lr] = lr; }
  void set_weight_decay(double weight_decay) { settings_[Setting::weight_decay] = weight_decay; }
  void reset() {
    std::fill(first_.begin(), first_.end(), T(0));
    std::fill(second_.begin(), second_.end(), T(0));
    steps_ = 0;
  }

  // The state buffers (momentum velocity, or Adam's first and second moments), as the entry
  // uses them, and the steps taken.
  T* first() { return first_.data(); }
  T* second() { return second_.data(); }
  std::int64_t steps() const { return steps_; }
  void set_steps(std::int64_t t) { steps_ = t; }

  // Whether the step is p -= η (g + λp) with no state: then it can be fused into the weight
  // gradient's product (see weight_sgd_update). Not when clipping, which needs the whole
  // gradient formed before any parameter moves.
  bool fusable() const {
    bool f = false;
    visit<Optimizers>(settings_.kind, [&](auto entry) { f = entry.fusable(settings_); });
    return f && !clips();
  }

  // Whether the gradient is clipped to max_grad_norm before the step.
  bool clips() const { return std::isfinite(settings_[Setting::max_grad_norm]); }

  // torch.nn.utils.clip_grad_norm_ over grads[0, n), the whole gradient, when clips():
  //   ‖g‖ = √(Σ g²) (summed in double, in one order whatever the thread count);
  //   g ← g · c / (‖g‖ + 1e-6) when that factor is below 1, c = max_grad_norm.
  // A non-finite norm leaves a non-finite gradient, whose step is then undone.
  void clip(T* grads, Index n) const {
    const double norm = std::sqrt(CVec<T>(grads, n).template cast<double>().squaredNorm());
    const double factor = settings_[Setting::max_grad_norm] / (norm + 1e-6);
    if (factor < 1) Vec<T>(grads, n) *= T(factor);
  }

  // Counts one step; the segments of that step follow through update().
  void begin_step() { ++steps_; }

  // Keeps what the next step changes, so that a failed step can be undone: the step count and
  // the state buffers this optimizer declares.
  void save() {
    int used = 0;
    visit<Optimizers>(settings_.kind, [&](auto entry) { used = entry.state_buffers(settings_); });
    saved_steps_ = steps_;
    saved_first_.clear();  // keeps the capacity: no allocation after the first save
    saved_second_.clear();
    if (used >= 1) saved_first_.assign(first_.begin(), first_.end());
    if (used >= 2) saved_second_.assign(second_.begin(), second_.end());
  }
  void restore() {
    steps_ = saved_steps_;
    std::copy(saved_first_.begin(), saved_first_.end(), first_.begin());
    std::copy(saved_second_.begin(), saved_second_.end(), second_.begin());
  }

  // DP-SGD's gradient from the sum of the clipped per-sample gradients, in place:
  // g = (Σ_i c_i g_i + N(0, σ²C²)) / batch, the noise drawn from (seed, step) for every parameter.
  void privatise(T* grads, Index n, Index batch) const {
    const OptimizerSettings& c = settings_;
    const double sigma = c[Setting::noise_multiplier] * c[Setting::clip_norm];
    if (sigma > 0) add_gaussian_noise<T>(grads, n, T(sigma), c.seed, std::uint64_t(steps_));
    Vec<T>(grads, n) /= T(batch);
  }

  // Updates params[i] for i in [offset, offset + n) from grads, λ applied when `decay`.
  void update(T* params, const T* grads, Index offset, Index n, bool decay) {
    Segment<T> s{{params + offset, n},
                 {grads + offset, n},
                 first_.data() + offset,
                 second_.data() + offset,
                 decay ? T(settings_[Setting::weight_decay]) : T(0),
                 steps_};
    visit<Optimizers>(settings_.kind, [&](auto entry) { entry.update(settings_, s); });
  }

 private:
  OptimizerSettings settings_;
  Buffer<T> first_, second_;
  std::int64_t steps_ = 0;
  Buffer<T> saved_first_, saved_second_;  // see save(); sized once, then reused
  std::int64_t saved_steps_ = 0;
};

}  // namespace denseprop
