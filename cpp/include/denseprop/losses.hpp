// Losses over a batch, each with its gradient in the same pass. Logits and targets are
// n × batch, samples as columns. Each kernel returns Σ_i ℓ_i (accumulated in double), writes
// grad = scale · ∂ℓ_i/∂z per column (scale is 1/batch for a mean), and, when per_sample is
// given, each ℓ_i. grad must not alias the inputs.
#pragma once

#include <cmath>
#include <stdexcept>
#include <string>
#include <string_view>

#include "activations.hpp"

namespace denseprop {

enum class Reduction { mean, sum, none };

inline Reduction parse_reduction(std::string_view name) {
  if (name == "mean") return Reduction::mean;
  if (name == "sum") return Reduction::sum;
  if (name == "none") return Reduction::none;
  throw std::invalid_argument("reduction: unknown '" + std::string(name) +
                              "', expected one of mean, sum, none");
}

// Softmax cross-entropy, by log-sum-exp so that no log(0) is ever taken:
//   ℓ = Σ_k y_k (lse − z_k),  lse = max z + log Σ_k e^{z_k − max z},  ∂ℓ/∂z = p Σ_k y_k − y
// where p = softmax(z). With integer labels y is one-hot: ℓ = lse − z_label, ∂ℓ/∂z = p − e_label.
// Exactly one of labels (batch) and targets (n × batch) is given. probs, if given, receives p
// and may alias z (each column of z is read before its p is written). Columns go in blocks, as
// in bias_activate, so that exp and log vectorise across samples.
template <class T>
double softmax_cross_entropy(CMat<T> z, const std::int64_t* labels, const T* targets, Mat<T> grad,
                             T scale, T* probs, T* per_sample) {
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
      const T loss = labels ? lse(j) - zc(labels[c])
                            : (CVec<T>(targets + c * n, n).array() * (lse(j) - zc)).sum();
      g /= s[j];
      if (probs) Vec<T>(probs + c * n, n) = g.matrix();
      if (labels) {
        g(labels[c]) -= T(1);
        g *= scale;
      } else {
        auto y = CVec<T>(targets + c * n, n).array();
        g = (g * y.sum() - y) * scale;
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

}  // namespace denseprop
