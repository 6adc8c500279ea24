// Activations as forward/backward pairs. Every backward takes the forward's output a = g(z),
// never z: the network keeps one buffer per layer, and each derivative below is cheapest in a.
#pragma once

#include <algorithm>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

#include "types.hpp"

namespace denseprop {

enum class Activation { identity, sigmoid, tanh, relu, leaky_relu, softmax };

inline constexpr std::string_view activation_names =
    "identity, sigmoid, tanh, relu, leaky_relu, softmax";

inline Activation parse_activation(std::string_view name) {
  if (name == "identity") return Activation::identity;
  if (name == "sigmoid") return Activation::sigmoid;
  if (name == "tanh") return Activation::tanh;
  if (name == "relu") return Activation::relu;
  if (name == "leaky_relu") return Activation::leaky_relu;
  if (name == "softmax") return Activation::softmax;
  throw std::invalid_argument("activation: unknown '" + std::string(name) + "', expected one of " +
                              std::string(activation_names));
}

inline const char* activation_name(Activation a) {
  switch (a) {
    case Activation::identity: return "identity";
    case Activation::sigmoid: return "sigmoid";
    case Activation::tanh: return "tanh";
    case Activation::relu: return "relu";
    case Activation::leaky_relu: return "leaky_relu";
    case Activation::softmax: return "softmax";
  }
  return "?";
}

struct ActivationSpec {
  Activation kind = Activation::identity;
  double negative_slope = 0.01;  // leaky_relu only; >= 0 so the sign of a tells the branch
};

// Elementwise passes run over blocks of whole columns of about 8 KiB: a block stays in L1
// between the passes over it, and, being contiguous, is one flat array to Eigen, so exp
// vectorises across sample boundaries instead of leaving a scalar tail on every short column
// (a 10-unit output column is one AVX packet and two calls to libm's expf).
inline constexpr Index block_elements = 2048;
inline constexpr Index max_block_columns = 256;
inline Index block_columns(Index rows) {
  return std::clamp<Index>(block_elements / std::max<Index>(rows, 1), 1, max_block_columns);
}

template <class T> using FlatArray = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
template <class T> FlatArray<T> flat(T* data, Index size) { return FlatArray<T>(data, size); }

// softmax(z) = e^{z - max z} / Σ e^{z - max z}, per column (per sample); the shift keeps exp ≤ 1.
template <class T> void softmax_block(Mat<T> z) {
  for (Index j = 0; j < z.cols(); ++j) z.col(j).array() -= z.col(j).maxCoeff();
  auto e = flat(z.data(), z.size());
  e = e.exp();
  for (Index j = 0; j < z.cols(); ++j) z.col(j) /= z.col(j).sum();
}

// a = g(z) in place on a block of whole columns.
// σ(z) = 1 / (1 + e^{-z}): for z → -∞, e^{-z} saturates (inf, or Eigen's clamp) and σ → 0
// without NaN, so the plain form is safe and costs one exp per element.
template <class T> void activate_block(Mat<T> z, ActivationSpec act) {
  auto c = flat(z.data(), z.size());
  switch (act.kind) {
    case Activation::identity: break;
    case Activation::sigmoid: c = (T(1) + (-c).exp()).inverse(); break;
    case Activation::tanh: c = c.tanh(); break;
    case Activation::relu: c = c.max(T(0)); break;
    case Activation::leaky_relu: c = (c > T(0)).select(c, T(act.negative_slope) * c); break;
    case Activation::softmax: softmax_block(z); break;
  }
}

// a = g(z + b 1ᵀ) in place, b optional: per block, the bias add and then the activation, two
// vectorised passes while the block sits in L1 (one expression with exp inside a colwise
// broadcast does not vectorise).
template <class T> void bias_activate(Mat<T> z, const T* b, ActivationSpec act) {
  const Index rows = z.rows(), step = block_columns(rows);
  for (Index j = 0; j < z.cols(); j += step) {
    Mat<T> block(z.data() + j * rows, rows, std::min(step, z.cols() - j));
    if (b) block.colwise() += CVec<T>(b, rows);
    activate_block(block, act);
  }
}

// J f for the Jacobian J = diag(s) - s sᵀ of one softmax column: s ⊙ (f - ⟨s, f⟩).
template <class S, class G, class D>
void softmax_backward_column(const S& s, const G& g, D&& dz) {
  const auto dot = s.dot(g);
  dz.array() = s.array() * (g.array() - dot);
}

// dz = da ⊙ g'(z), written from a = g(z), column by column; when db is given, each column of dz
// is added into it in the same loop, so the bias gradient costs no extra pass over memory.
//   sigmoid: g' = a (1 - a)   tanh: g' = 1 - a²   relu: g' = [a > 0]
//   leaky_relu: g' = 1 if a > 0 else slope        softmax: the Jacobian-vector product above
// dz may alias da (in-place backward), never a.
template <class T>
void activation_backward(CMat<T> a, CMat<T> da, Mat<T> dz, ActivationSpec act, T* db) {
  const T slope = T(act.negative_slope);
  for (Index j = 0; j < a.cols(); ++j) {
    auto ac = a.col(j).array();
    auto gc = da.col(j).array();
    auto dc = dz.col(j).array();
    switch (act.kind) {
      case Activation::identity:
        if (dz.data() != da.data()) dc = gc;
        break;
      case Activation::sigmoid: dc = gc * ac * (T(1) - ac); break;
      case Activation::tanh: dc = gc * (T(1) - ac.square()); break;
      case Activation::relu: dc = (ac > T(0)).select(gc, T(0)); break;
      case Activation::leaky_relu: dc = (ac > T(0)).select(gc, slope * gc); break;
      case Activation::softmax: softmax_backward_column(a.col(j), da.col(j), dz.col(j)); break;
    }
    if (db) Vec<T>(db, dz.rows()) += dz.col(j);
  }
}

// The explicit softmax Jacobians, for inspection only: the hot path never forms them.
// jac holds n × n blocks, one per sample; J = diag(s) - s sᵀ is symmetric, so layout is moot.
template <class T> void softmax_jacobian(CMat<T> s, T* jac) {
  const Index n = s.rows();
  for (Index j = 0; j < s.cols(); ++j) {
    Mat<T> J(jac + j * n * n, n, n);
    J.noalias() = -s.col(j) * s.col(j).transpose();
    J.diagonal() += s.col(j);
  }
}

// The Jacobian dA/dZ of each sample, from a = g(z), for inspection: diag(g'(z)) for the
// elementwise activations (the diagonal is activation_backward of a vector of ones) and
// diag(s) - s sᵀ for softmax. jac holds one n × n block per sample, zero off the diagonal.
template <class T> void activation_jacobian(CMat<T> a, T* jac, ActivationSpec act) {
  if (act.kind == Activation::softmax) return softmax_jacobian<T>(a, jac);
  const Index n = a.rows();
  const Vector<T> ones = Vector<T>::Ones(n);
  Vector<T> slope(n);
  for (Index j = 0; j < a.cols(); ++j) {
    activation_backward<T>(CMat<T>(a.col(j).data(), n, 1), CMat<T>(ones.data(), n, 1),
                           Mat<T>(slope.data(), n, 1), act, nullptr);
    Mat<T> J(jac + j * n * n, n, n);
    J.setZero();
    J.diagonal() = slope;
  }
}

}  // namespace denseprop
