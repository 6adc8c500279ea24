// Activations, declared once: each is one entry below (a struct holding what the rest of the
// library reads about it, its forward kernel and its backward kernel) and one name in the
// `Activations` list at the end. The bindings, the Network, the trace and the Python package read
// the table built from that list; see docs/design.md for how to add an entry.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

#include "table.hpp"
#include "types.hpp"

namespace denseprop {

// How the weights of a layer with this activation start (see python/denseprop/_init.py).
enum class Init { glorot, he };

// What the rest of the library needs to know about an activation. An entry names each property
// as it sets it, from the defaults (reads a, may be hidden, Glorot):
//   ActivationInfo::named("silu").reads_z().initial(Init::he).equations("...", "...")
//       .in_torch("SiLU").in_onnx("Mul(z, Sigmoid(z))")
struct ActivationInfo : Builder<ActivationInfo> {
  std::string_view name;
  // The backward reads z, the activation's input, instead of its output a: the network keeps
  // Z[l] only for the layers whose activation says so.
  bool needs_z = false;
  // May be a hidden layer's activation: not softmax (it normalises a whole layer) nor exp (the
  // poisson loss's output).
  bool hidden = true;
  Init init = Init::glorot;
  // The trace's equations, "{l}" standing for the layer: A[l] = forward, dZ[l] = backward.
  std::string_view forward_equation, backward_equation;
  // How other libraries write it, in Python's call syntax; `slope` stands for leaky_relu's
  // negative_slope, `z` for the activation's input.
  // torch: the PyTorch module, "Class" or "Class(attribute=value, ...)": a class of torch.nn (or
  // denseprop.torch's own, Exp) and the attributes that make it this activation, literals or
  // `slope`. denseprop.torch builds the module with them; it reads a module as the entry of its
  // class whose attributes the module has, `dim` (the axis, checked against the input) aside:
  // GELU(approximate='tanh') is gelu_tanh, any other GELU gelu; a Softplus whose beta is not 1
  // is refused.
  std::string_view torch;
  // onnx: its ONNX nodes as one expression of ONNX ops over `z` and `slope` (a constant of the
  // graph's dtype), attributes by name: "Relu(z)", "Softmax(z, axis=1)", "Mul(z, Sigmoid(z))";
  // empty where ONNX has no way to write it. onnx_opset: the oldest opset that has those ops
  // when it is newer than the export's own, 17 (0: any).
  std::string_view onnx;
  int onnx_opset = 0;

  static constexpr ActivationInfo named(std::string_view name) {
    return ActivationInfo{}.with(&ActivationInfo::name, name);
  }
  constexpr ActivationInfo reads_z() const { return with(&ActivationInfo::needs_z, true); }
  constexpr ActivationInfo output_only() const { return with(&ActivationInfo::hidden, false); }
  constexpr ActivationInfo initial(Init family) const {
    return with(&ActivationInfo::init, family);
  }
  constexpr ActivationInfo equations(std::string_view forward, std::string_view backward) const {
    return with(&ActivationInfo::forward_equation, forward)
        .with(&ActivationInfo::backward_equation, backward);
  }
  constexpr ActivationInfo in_torch(std::string_view module) const {
    return with(&ActivationInfo::torch, module);
  }
  constexpr ActivationInfo in_onnx(std::string_view expression, int opset = 0) const {
    return with(&ActivationInfo::onnx, expression).with(&ActivationInfo::onnx_opset, opset);
  }
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

// An activation that acts on each element alone: Entry::apply(c, slope) maps a flat array in
// place, so a block of columns is one pass.
template <class Entry> struct Elementwise {
  template <class T> static void forward(Mat<T> z, T slope) {
    auto c = flat(z.data(), z.size());
    Entry::apply(c, slope);
  }
};

// The entries. forward(z, slope) turns a block of whole columns of z into a = g(z) in place;
// backward(x, g, d, slope) writes one column d = g ⊙ g'(z), x being a = g(z) or, when
// info.needs_z, z itself. d may alias g, never x. slope is leaky_relu's, ignored by the others.

struct Identity : Elementwise<Identity> {
  static constexpr auto info = ActivationInfo::named("identity")
                                   .equations("Z[{l}]", "dA[{l}]")
                                   .in_torch("Identity")
                                   .in_onnx("Identity(z)");
  template <class C, class T> static void apply(C&, T) {}
  template <class X, class G, class D, class T> static void backward(const X&, const G& g, D&& d,
                                                                     T) {
    if (d.data() != g.data()) d = g;
  }
};

// σ(z) = 1 / (1 + e^{-z}): for z → -∞, e^{-z} saturates (inf, or Eigen's clamp) and σ → 0
// without NaN, so the plain form is safe and costs one exp per element.   g' = a (1 - a)
struct Sigmoid : Elementwise<Sigmoid> {
  static constexpr auto info =
      ActivationInfo::named("sigmoid")
          .equations("σ(Z[{l}]) = 1 / (1 + exp(−Z[{l}]))", "dA[{l}] ⊙ A[{l}] ⊙ (1 − A[{l}])")
          .in_torch("Sigmoid")
          .in_onnx("Sigmoid(z)");
  template <class C, class T> static void apply(C& c, T) { c = (T(1) + (-c).exp()).inverse(); }
  template <class X, class G, class D, class T>
  static void backward(const X& a, const G& g, D&& d, T) {
    d.array() = g.array() * a.array() * (T(1) - a.array());
  }
};

// g' = 1 - a²
struct Tanh : Elementwise<Tanh> {
  static constexpr auto info = ActivationInfo::named("tanh")
                                   .equations("tanh(Z[{l}])", "dA[{l}] ⊙ (1 − A[{l}]²)")
                                   .in_torch("Tanh")
                                   .in_onnx("Tanh(z)");
  template <class C, class T> static void apply(C& c, T) { c = c.tanh(); }
  template <class X, class G, class D, class T>
  static void backward(const X& a, const G& g, D&& d, T) {
    d.array() = g.array() * (T(1) - a.array().square());
  }
};

// g' = [a > 0]
struct Relu : Elementwise<Relu> {
  static constexpr auto info = ActivationInfo::named("relu")
                                   .initial(Init::he)
                                   .equations("max(Z[{l}], 0)", "dA[{l}] ⊙ [A[{l}] > 0]")
                                   .in_torch("ReLU")
                                   .in_onnx("Relu(z)");
  template <class C, class T> static void apply(C& c, T) { c = c.max(T(0)); }
  template <class X, class G, class D, class T>
  static void backward(const X& a, const G& g, D&& d, T) {
    d.array() = (a.array() > T(0)).select(g.array(), T(0));
  }
};

// g' = 1 if a > 0 else slope; the slope is >= 0, so the sign of a tells the branch.
// ONNX writes it as PRelu, not LeakyRelu: PRelu's slope is a tensor of the graph's dtype,
// LeakyRelu's alpha a float32 attribute, which would round a float64 network's slope.
struct LeakyRelu : Elementwise<LeakyRelu> {
  static constexpr auto info =
      ActivationInfo::named("leaky_relu")
          .initial(Init::he)
          .equations("Z[{l}] if Z[{l}] > 0 else α Z[{l}]", "dA[{l}] ⊙ (1 if A[{l}] > 0 else α)")
          .in_torch("LeakyReLU(negative_slope=slope)")
          .in_onnx("PRelu(z, slope)");
  template <class C, class T> static void apply(C& c, T slope) {
    c = (c > T(0)).select(c, slope * c);
  }
  template <class X, class G, class D, class T>
  static void backward(const X& a, const G& g, D&& d, T slope) {
    d.array() = (a.array() > T(0)).select(g.array(), slope * g.array());
  }
};

// softmax(z) = e^{z - max z} / Σ e^{z - max z}, per column (per sample); the shift keeps
// exp ≤ 1. Backward: J g for J = diag(s) - s sᵀ, that is s ⊙ (g - ⟨s, g⟩).
struct Softmax {
  static constexpr auto info =
      ActivationInfo::named("softmax")
          .output_only()
          .equations("softmax(Z[{l}]) per row", "A[{l}] ⊙ (dA[{l}] − rowsum(A[{l}] ⊙ dA[{l}]))")
          .in_torch("Softmax(dim=-1)")
          .in_onnx("Softmax(z, axis=1)");
  template <class T> static void forward(Mat<T> z, T) {
    for (Index j = 0; j < z.cols(); ++j) z.col(j).array() -= z.col(j).maxCoeff();
    auto e = flat(z.data(), z.size());
    e = e.exp();
    for (Index j = 0; j < z.cols(); ++j) z.col(j) /= z.col(j).sum();
  }
  template <class X, class G, class D, class T>
  static void backward(const X& s, const G& g, D&& d, T) {
    const auto dot = s.dot(g);
    d.array() = s.array() * (g.array() - dot);
  }
};

// exp(z), the inverse of the log link: the mean of a Poisson output (the poisson loss's).
// std::exp, which overflows to inf past log(max) as NumPy's does (Eigen's vectorised exp clamps
// its argument), so an output that overflowed is seen as one.   g' = a
// Output only: no hidden layer needs it, and stacked it overflows at once.
struct Exp : Elementwise<Exp> {
  static constexpr auto info = ActivationInfo::named("exp")
                                   .output_only()
                                   .equations("exp(Z[{l}])", "dA[{l}] ⊙ A[{l}]")
                                   .in_torch("Exp")
                                   .in_onnx("Exp(z)");
  template <class C, class T> static void apply(C& c, T) {
    c = c.unaryExpr([](T z) { return std::exp(z); });
  }
  template <class X, class G, class D, class T>
  static void backward(const X& a, const G& g, D&& d, T) {
    d.array() = g.array() * a.array();
  }
};

// The activations below read their derivative from z. Each is a pair of scalar functions (std::
// exp, erfc and log1p underflow to exactly 0 and saturate without NaN at any finite |z|, where
// Eigen's vectorised exp clamps its argument), applied by ScalarOfZ.
template <class Entry> struct ScalarOfZ : Elementwise<Entry> {
  template <class C, class T> static void apply(C& c, T) {
    c = c.unaryExpr([](T z) { return Entry::value(z); });
  }
  template <class X, class G, class D, class T>
  static void backward(const X& z, const G& g, D&& d, T) {
    d.array() = g.array().binaryExpr(z.array(), [](T gi, T zi) { return gi * Entry::slope(zi); });
  }
};

// σ(z) without overflow: e^{-|z|} ≤ 1, σ = 1/(1+e) for z ≥ 0 and e/(1+e) below.
template <class T> T logistic(T z) {
  const T e = std::exp(-std::abs(z));
  return z >= 0 ? T(1) / (T(1) + e) : e / (T(1) + e);
}

// gelu(z) = z Φ(z) = ½ z erfc(−z/√2)   g' = Φ(z) + z φ(z),  φ(z) = e^{−z²/2} / √(2π)
// (erfc keeps Φ accurate far into the negative tail, where 1 + erf(z/√2) cancels.)
struct Gelu : ScalarOfZ<Gelu> {
  static constexpr auto info = ActivationInfo::named("gelu")
                                   .reads_z()
                                   .initial(Init::he)
                                   .equations("Z[{l}] Φ(Z[{l}]) = ½ Z[{l}] erfc(−Z[{l}] / √2)",
                                              "dA[{l}] ⊙ (Φ(Z[{l}]) + Z[{l}] φ(Z[{l}]))")
                                   .in_torch("GELU")
                                   .in_onnx("Gelu(z)", 20);
  template <class T> static T value(T z) {
    return T(0.5) * z * std::erfc(-z * T(0.70710678118654752440));
  }
  template <class T> static T slope(T z) {
    return T(0.5) * std::erfc(-z * T(0.70710678118654752440)) +
           z * std::exp(T(-0.5) * z * z) * T(0.39894228040143267794);
  }
};

// gelu_tanh(z) = ½ z (1 + tanh u),  u = √(2/π) (z + 0.044715 z³), PyTorch's approximate="tanh".
// ½ (1 + tanh u) = σ(2u), so g(z) = z σ(2u) and g' = σ(2u) + 2 z u' σ(2u) (1 − σ(2u)) with
// u' = √(2/π) (1 + 3 · 0.044715 z²). Past |z| = 32, σ(2u)(1 − σ(2u)) is 0 in double: the
// factor 2 z u' is taken at the clamped z, so that 0 · inf cannot occur.
struct GeluTanh : ScalarOfZ<GeluTanh> {
  static constexpr auto info =
      ActivationInfo::named("gelu_tanh")
          .reads_z()
          .initial(Init::he)
          .equations("½ Z[{l}] (1 + tanh(√(2/π) (Z[{l}] + 0.044715 Z[{l}]³)))",
                     "dA[{l}] ⊙ (σ(2U) + 2 Z[{l}] U′ σ(2U) (1 − σ(2U))), "
                     "U = √(2/π) (Z[{l}] + 0.044715 Z[{l}]³)")
          .in_torch("GELU(approximate='tanh')")
          .in_onnx("Gelu(z, approximate='tanh')", 20);
  static constexpr double k = 0.79788456080286535588, c = 0.044715;
  template <class T> static T u(T z) { return T(k) * z * (T(1) + T(c) * z * z); }
  template <class T> static T value(T z) { return z * logistic(T(2) * u(z)); }
  template <class T> static T slope(T z) {
    const T s = logistic(T(2) * u(z));
    const T zc = std::clamp(z, T(-32), T(32));
    return s + T(2) * zc * T(k) * (T(1) + T(3 * c) * zc * zc) * s * (T(1) - s);
  }
};

// silu(z) = z σ(z)   g' = σ(z) (1 + z (1 − σ(z)))
struct Silu : ScalarOfZ<Silu> {
  static constexpr auto info =
      ActivationInfo::named("silu")
          .reads_z()
          .initial(Init::he)
          .equations("Z[{l}] σ(Z[{l}])", "dA[{l}] ⊙ σ(Z[{l}]) (1 + Z[{l}] (1 − σ(Z[{l}])))")
          .in_torch("SiLU")
          .in_onnx("Mul(z, Sigmoid(z))");
  template <class T> static T value(T z) { return z * logistic(z); }
  template <class T> static T slope(T z) {
    const T s = logistic(z);
    return s * (T(1) + z * (T(1) - s));
  }
};

// softplus(z) = log(1 + e^z) = max(z, 0) + log1p(e^{−|z|})   g' = σ(z)
// (PyTorch's softplus returns z itself past z = 20; this form is exact there too.)
struct Softplus : ScalarOfZ<Softplus> {
  static constexpr auto info = ActivationInfo::named("softplus")
                                   .reads_z()
                                   .initial(Init::he)
                                   .equations("log(1 + exp(Z[{l}]))", "dA[{l}] ⊙ σ(Z[{l}])")
                                   .in_torch("Softplus(beta=1)")
                                   .in_onnx("Softplus(z)");
  template <class T> static T value(T z) {
    return std::max(z, T(0)) + std::log1p(std::exp(-std::abs(z)));
  }
  template <class T> static T slope(T z) { return logistic(z); }
};

// mish(z) = z t,  t = tanh(softplus(z))   g' = t + z σ(z) (1 − t²)
// With w = (1 + e^z)², t = (w − 1)/(w + 1); written in e = e^{−|z|} ≤ 1, so that nothing
// overflows and 1 − t² does not cancel (numerator and denominator times e² for z ≥ 0):
//   z ≥ 0:  t = (1 + 2e) / d,   d = 1 + 2e + 2e²,   σ(z) (1 − t²) = 4 e² (1 + e) / d²
//   z < 0:  t = e (2 + e) / d,  d = 2 + 2e + e²,    σ(z) (1 − t²) = 4 e (1 + e) / d²
struct Mish : ScalarOfZ<Mish> {
  static constexpr auto info =
      ActivationInfo::named("mish")
          .reads_z()
          .initial(Init::he)
          .equations("Z[{l}] tanh(softplus(Z[{l}]))",
                     "dA[{l}] ⊙ (T + Z[{l}] σ(Z[{l}]) (1 − T²)), T = tanh(softplus(Z[{l}]))")
          .in_torch("Mish")
          .in_onnx("Mish(z)", 18);
  // t and σ(z) (1 − t²)
  template <class T> static std::pair<T, T> parts(T z) {
    const T e = std::exp(-std::abs(z));
    if (z >= 0) {
      const T d = T(1) + T(2) * e * (T(1) + e);
      return {(T(1) + T(2) * e) / d, T(4) * e * e * (T(1) + e) / (d * d)};
    }
    const T d = T(2) + e * (T(2) + e);
    return {e * (T(2) + e) / d, T(4) * e * (T(1) + e) / (d * d)};
  }
  template <class T> static T value(T z) { return z * parts(z).first; }
  template <class T> static T slope(T z) {
    const auto [t, s] = parts(z);
    return t + z * s;
  }
};

// The table: every activation, in the order the names are listed to users.
using Activations = std::tuple<Identity, Sigmoid, Tanh, Relu, LeakyRelu, Softmax, Gelu, GeluTanh,
                               Silu, Softplus, Mish, Exp>;

// An activation is its index in the list.
using Activation = std::size_t;
template <class Entry> inline constexpr Activation activation_id =
    index_of<Entry, Activations>::value;
inline constexpr auto activation_table =
    infos_of<ActivationInfo>(static_cast<Activations*>(nullptr));

struct ActivationSpec {
  Activation kind = activation_id<Identity>;
  double negative_slope = 0.01;  // leaky_relu only; >= 0 so the sign of a tells the branch
  const ActivationInfo& info() const { return activation_table[kind]; }
};

// The checked spec: a finite slope >= 0 and a known name (`what` names the argument).
inline ActivationSpec activation_spec(std::string_view name, double negative_slope,
                                      const char* what = "activation") {
  if (!(negative_slope >= 0) || !std::isfinite(negative_slope))
    throw std::invalid_argument("negative_slope: must be a finite number >= 0, got " +
                                format_number(negative_slope));
  return {find_entry(activation_table, name, what), negative_slope};
}

// a = g(z) in place on a block of whole columns.
template <class T> void activate_block(Mat<T> z, ActivationSpec act) {
  visit<Activations>(act.kind, [&](auto entry) { entry.forward(z, T(act.negative_slope)); });
}

// a = g(z) in place, block by block: each block is one flat vectorised pass while it sits in L1
// (the bias is already in z: dense_forward starts the product from it). When z_out is given, it
// receives z (same layout) on the way.
template <class T> void activate(Mat<T> z, ActivationSpec act, T* z_out = nullptr) {
  const Index rows = z.rows(), step = block_columns(rows);
  for (Index j = 0; j < z.cols(); j += step) {
    Mat<T> block(z.data() + j * rows, rows, std::min(step, z.cols() - j));
    if (z_out) std::copy_n(block.data(), block.size(), z_out + j * rows);
    activate_block(block, act);
  }
}

// dz = da ⊙ g'(z), column by column, from a = g(z) or, for the activations that need it, from z
// (else z may be null); when db is given, each column of dz is added into it in the same loop,
// so the bias gradient costs no extra pass over memory. dz may alias da, never a or z.
template <class T>
void activation_backward(CMat<T> a, const T* z, CMat<T> da, Mat<T> dz, ActivationSpec act, T* db) {
  const T slope = T(act.negative_slope);
  const CMat<T> x = act.info().needs_z ? CMat<T>(z, a.rows(), a.cols()) : a;
  visit<Activations>(act.kind, [&](auto entry) {
    for (Index j = 0; j < a.cols(); ++j) {
      entry.backward(x.col(j), da.col(j), dz.col(j), slope);
      if (db) Vec<T>(db, dz.rows()) += dz.col(j);
    }
  });
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

// The Jacobian dA/dZ of each sample, for inspection: diag(g'(z)) for the elementwise
// activations (the diagonal is activation_backward of a vector of ones, from a or z as the
// entry reads it) and diag(s) - s sᵀ for softmax. jac holds one n × n block per sample, zero off
// the diagonal.
template <class T> void activation_jacobian(CMat<T> a, const T* z, T* jac, ActivationSpec act) {
  if (act.kind == activation_id<Softmax>) return softmax_jacobian<T>(a, jac);
  const Index n = a.rows();
  const Vector<T> ones = Vector<T>::Ones(n);
  Vector<T> slope(n);
  for (Index j = 0; j < a.cols(); ++j) {
    activation_backward<T>(CMat<T>(a.col(j).data(), n, 1), z ? z + j * n : nullptr,
                           CMat<T>(ones.data(), n, 1), Mat<T>(slope.data(), n, 1), act, nullptr);
    Mat<T> J(jac + j * n * n, n, n);
    J.setZero();
    J.diagonal() = slope;
  }
}

}  // namespace denseprop
