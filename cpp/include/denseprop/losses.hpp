// Losses over a batch, each with its gradient in the same pass. Logits and targets are
// n × batch, samples as columns. The Network's losses are declared once, in the table at the end.
// Each kernel returns Σ_i ℓ_i (accumulated in double), writes grad = scale · ∂ℓ_i/∂z per column
// (scale is 1/batch for a mean), and, when per_sample is given, each ℓ_i. grad must not alias the
// inputs.
#pragma once

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "activations.hpp"

namespace denseprop {

enum class Reduction { mean, sum, none };

struct ReductionInfo {
  std::string_view name;
};
inline constexpr std::array<ReductionInfo, 3> reduction_table{{{"mean"}, {"sum"}, {"none"}}};
inline Reduction parse_reduction(std::string_view name) {
  return Reduction(find_entry(reduction_table, name, "reduction"));
}

// Softmax cross-entropy, by log-sum-exp so that no log(0) is ever taken:
//   ℓ = Σ_k y_k (lse − z_k),  lse = max z + log Σ_k e^{z_k − max z},  ∂ℓ/∂z = p Σ_k y_k − y
// where p = softmax(z). With integer labels y is one-hot: ℓ = lse − z_label, ∂ℓ/∂z = p − e_label.
// Label smoothing ε (PyTorch's) takes q = (1 − ε) y + ε/n for y: with labels
// ℓ = lse − (1 − ε) z_label − ε mean(z), ∂ℓ/∂z = p − (1 − ε) e_label − ε/n.
// Exactly one of labels (batch) and targets (n × batch) is given. probs, if given, receives p
// and may alias z (each column of z is read before its p is written). Columns go in blocks, as
// in activate, so that exp and log vectorise across samples.
template <class T>
double softmax_cross_entropy(CMat<T> z, const std::int64_t* labels, const T* targets, Mat<T> grad,
                             T scale, T* probs, T* per_sample, T smoothing = T(0)) {
  const T keep = T(1) - smoothing, spread = smoothing / T(z.rows());
  const Index n = z.rows(), step = block_columns(n);
  double total = 0;
  T m[max_block_columns], s[max_block_columns];
  for (Index j0 = 0; j0 < z.cols(); j0 += step) {
    const Index k = std::min(step, z.cols() - j0);
    for (Index j = 0; j < k; ++j) {
      m[j] = z.col(j0 + j).maxCoeff();
      grad.col(j0 + j).array() = z.col(j0 + j).array() - m[j];
    }
    auto e = flat(grad.col(j0).data(), n * k);
    e = e.exp();  // the block's only exp, vectorised across its columns
    for (Index j = 0; j < k; ++j) s[j] = grad.col(j0 + j).sum();
    auto lse = flat(m, k);
    lse += flat(s, k).log();
    for (Index j = 0; j < k; ++j) {
      const Index c = j0 + j;
      auto zc = z.col(c).array();
      auto g = grad.col(c).array();
      T loss = labels ? lse(j) - keep * zc(labels[c])
                      : keep * (CVec<T>(targets + c * n, n).array() * (lse(j) - zc)).sum();
      if (smoothing != T(0)) loss += labels ? -smoothing * zc.mean() : spread * (lse(j) - zc).sum();
      g /= s[j];
      if (probs) Vec<T>(probs + c * n, n) = g.matrix();
      if (labels) {
        g(labels[c]) -= keep;
        if (smoothing != T(0)) g -= spread;
        g *= scale;
      } else {
        auto y = CVec<T>(targets + c * n, n).array();
        g = (g * (keep * y.sum() + smoothing) - (keep * y + spread)) * scale;
      }
      if (per_sample) per_sample[c] = loss;
      total += loss;
    }
  }
  return total;
}

// Binary cross-entropy on logits, per output unit, summed over units:
//   ℓ = Σ_k max(z, 0) − z y + log(1 + e^{−|z|}),  ∂ℓ/∂z = σ(z) − y
// Both use e = e^{−|z|} ≤ 1, so nothing overflows: σ = 1/(1+e) for z ≥ 0 and e/(1+e) for z < 0.
// probs, if given, receives σ(z) and may alias z.
template <class T>
double sigmoid_cross_entropy(CMat<T> z, CMat<T> y, Mat<T> grad, T scale, T* probs, T* per_sample) {
  const Index n = z.rows();
  double total = 0;
  for (Index j = 0; j < z.cols(); ++j) {
    auto zc = z.col(j).array();
    auto yc = y.col(j).array();
    auto g = grad.col(j).array();
    g = (-zc.abs()).exp();
    const T loss = (zc.max(T(0)) - zc * yc + g.log1p()).sum();
    g = (zc >= T(0)).select(T(1), g) / (T(1) + g);
    if (probs) Vec<T>(probs + j * n, n) = g.matrix();
    g = (g - yc) * scale;
    if (per_sample) per_sample[j] = loss;
    total += loss;
  }
  return total;
}

// Squared error, halved so that the gradient is the residual:
//   ℓ = ½ Σ_k (p_k − t_k)²,  ∂ℓ/∂p = p − t
template <class T>
double mse(CMat<T> pred, CMat<T> target, Mat<T> grad, T scale, T* per_sample) {
  double total = 0;
  for (Index j = 0; j < pred.cols(); ++j) {
    auto g = grad.col(j);
    g = pred.col(j) - target.col(j);
    const T loss = T(0.5) * g.squaredNorm();
    g *= scale;
    if (per_sample) per_sample[j] = loss;
    total += loss;
  }
  return total;
}

// Half the Poisson deviance of μ = e^z (the log link), per output unit, summed over units:
//   ℓ = Σ_k e^z − y z + y log y − y,  ∂ℓ/∂z = e^z − y      (y ≥ 0; y log y = 0 at y = 0)
// The y terms make ℓ = Σ_k y log(y/μ) − y + μ, scikit-learn's form: ≥ 0, 0 where μ = y; they
// leave the gradient alone. e^z by std::exp: past log(max) it is inf, and so is the loss.
// mu, if given, receives e^z and may alias z.
template <class T>
double half_poisson_deviance(CMat<T> z, CMat<T> y, Mat<T> grad, T scale, T* mu, T* per_sample) {
  const Index n = z.rows();
  const auto y_log_y = [](T v) { return v > T(0) ? v * std::log(v) : T(0); };
  double total = 0;
  for (Index j = 0; j < z.cols(); ++j) {
    auto zc = z.col(j).array();
    auto yc = y.col(j).array();
    auto g = grad.col(j).array();
    g = zc.unaryExpr([](T v) { return std::exp(v); });
    const T loss = (g - yc * zc + yc.unaryExpr(y_log_y) - yc).sum();
    if (mu) Vec<T>(mu + j * n, n) = g.matrix();
    g = (g - yc) * scale;
    if (per_sample) per_sample[j] = loss;
    total += loss;
  }
  return total;
}

// -- the Network's losses ------------------------------------------------------------------

// Targets of a batch, samples as columns: class labels (batch), or dense targets
// (outputs × batch) for one-hot/probabilities, binary targets and regression.
// Optionally a weight per sample (see sample_weights.hpp).
template <class T> struct Targets {
  const std::int64_t* labels = nullptr;
  const T* dense = nullptr;
  const T* weights = nullptr;
};

// An entry names each property as it sets it, from the defaults (any output activation, identity
// when none is given; y dense and of any sign; a regression):
//   LossInfo::named("poisson").fused_with("exp").targets_nonnegative().gradient("...")...
struct LossInfo : Builder<LossInfo> {
  std::string_view name;
  // The output activation the loss is fused with: the network stops at the logits Z[L] and the
  // loss gives dZ[L] = (P − Y) / batch. Empty: any output activation, dA[L] from the loss.
  std::string_view fused_output;
  // The Network's output activation when none is given.
  std::string_view default_output = "identity";
  bool labels = false;                 // y may be class labels (batch,)
  bool classifier = false;             // predictions are classes (else values: regression)
  std::string_view gradient_equation;  // the trace's dZ[L] (fused) or dA[L], "{L}" the layer
  std::string_view kernel;  // the compiled function of the loss on (logits or outputs, y)
  // y must be >= 0 (counts or rates): the bindings refuse any other
  bool nonnegative_targets = false;
  // takes label smoothing ε: its targets become (1 − ε) y + ε / classes
  bool smooths_labels = false;

  static constexpr LossInfo named(std::string_view name) {
    return LossInfo{}.with(&LossInfo::name, name);
  }
  // Fused with `output`, which is then also the default output activation.
  constexpr LossInfo fused_with(std::string_view output) const {
    return with(&LossInfo::fused_output, output).with(&LossInfo::default_output, output);
  }
  constexpr LossInfo takes_labels() const { return with(&LossInfo::labels, true); }
  constexpr LossInfo classifies() const { return with(&LossInfo::classifier, true); }
  constexpr LossInfo smooths() const { return with(&LossInfo::smooths_labels, true); }
  constexpr LossInfo targets_nonnegative() const {
    return with(&LossInfo::nonnegative_targets, true);
  }
  constexpr LossInfo gradient(std::string_view equation) const {
    return with(&LossInfo::gradient_equation, equation);
  }
  constexpr LossInfo computed_by(std::string_view function) const {
    return with(&LossInfo::kernel, function);
  }
};

// Each entry: its info and loss(a, y, grad, scale, per_sample), which returns Σ_i ℓ_i, writes
// the gradient, and, when fused, turns a (the logits) into the outputs (probabilities, μ) in
// place.
struct CrossEntropy {
  static constexpr auto info = LossInfo::named("cross_entropy")
                                   .fused_with("softmax")
                                   .takes_labels()
                                   .classifies()
                                   .smooths()
                                   .gradient("(A[{L}] − Y)")
                                   .computed_by("softmax_cross_entropy");
  template <class T>
  static double loss(Mat<T> a, Targets<T> y, Mat<T> grad, T scale, T* per_sample, T smoothing) {
    return softmax_cross_entropy<T>(as_const(a), y.labels, y.dense, grad, scale, a.data(),
                                    per_sample, smoothing);
  }
};

struct BinaryCrossEntropy {
  static constexpr auto info = LossInfo::named("binary_cross_entropy")
                                   .fused_with("sigmoid")
                                   .classifies()
                                   .gradient("(A[{L}] − Y)")
                                   .computed_by("sigmoid_cross_entropy");
  template <class T>
  static double loss(Mat<T> a, Targets<T> y, Mat<T> grad, T scale, T* per_sample) {
    return sigmoid_cross_entropy<T>(as_const(a), CMat<T>(y.dense, a.rows(), a.cols()), grad, scale,
                                    a.data(), per_sample);
  }
};

struct SquaredError {
  static constexpr auto info = LossInfo::named("mse").gradient("(A[{L}] − Y)").computed_by("mse");
  template <class T>
  static double loss(Mat<T> a, Targets<T> y, Mat<T> grad, T scale, T* per_sample) {
    return mse<T>(as_const(a), CMat<T>(y.dense, a.rows(), a.cols()), grad, scale, per_sample);
  }
};

// Counts or rates: the network's output is μ = exp(Z[L]), and dZ[L] = (μ − Y) / batch.
struct Poisson {
  static constexpr auto info = LossInfo::named("poisson")
                                   .fused_with("exp")
                                   .targets_nonnegative()
                                   .gradient("(A[{L}] − Y)")
                                   .computed_by("half_poisson_deviance");
  template <class T>
  static double loss(Mat<T> a, Targets<T> y, Mat<T> grad, T scale, T* per_sample) {
    return half_poisson_deviance<T>(as_const(a), CMat<T>(y.dense, a.rows(), a.cols()), grad, scale,
                                    a.data(), per_sample);
  }
};

using Losses = std::tuple<CrossEntropy, BinaryCrossEntropy, SquaredError, Poisson>;
using LossKind = std::size_t;  // an index into Losses
inline constexpr auto loss_table = infos_of<LossInfo>(static_cast<Losses*>(nullptr));

inline LossKind parse_loss(std::string_view name) { return find_entry(loss_table, name, "loss"); }

}  // namespace denseprop
