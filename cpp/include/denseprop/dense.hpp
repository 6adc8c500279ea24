// A dense layer over a batch. Shapes are the textbook's, samples as columns:
//   x: in × batch   w: out × in   b: out   a, da: out × batch
#pragma once

#include <type_traits>

#include "activations.hpp"
#include "bf16_product.hpp"
#include "parallel.hpp"

namespace denseprop {

// dst = lhs rhs
template <class Dst, class Lhs, class Rhs> void product(Dst dst, const Lhs& lhs, const Rhs& rhs) {
  split_product(dst, lhs, rhs, [](auto d, const auto& l, const auto& r) { d.noalias() = l * r; });
}

// Compute::bfloat16 is taken by float32 layers only (the Network and the bindings refuse it for
// float64). The bf16 products below read the maps' memory as bf16::product's row-major operands.

// A = b 1ᵀ, then A += W X, then A = g(A). Eigen's `A = W X` zeroes A before the GEMM adds into
// it: starting from the bias instead saves that pass and the bias add. Split by samples (unless
// the units far outnumber them), each thread activates its own columns right after its product,
// while they are in cache; split by units, the activation (softmax needs whole columns) follows.
// z, when given (out × batch), receives Z = W X + b 1ᵀ on the way, for a backward that reads it.
// On bf16, A's memory (batch × out) is Xᵀ Wᵀ.
template <class T>
void dense_forward(CMat<T> x, CRowMat<T> w, const T* b, Mat<T> a, ActivationSpec act,
                   T* z = nullptr, Compute compute = Compute::native) {
  const Index m = a.rows(), n = a.cols();
  if constexpr (std::is_same_v<T, float>) {
    if (compute == Compute::bfloat16) {
      a.colwise() = CVec<T>(b, m);
      bf16::product(bf16::rows_of(x.data(), n, x.rows()), bf16::cols_of(w.data(), w.cols(), m),
                    a.data(), 1.0f, true);
      activate<T>(a, act, z);
      return;
    }
  }
  if (m > 2 * n) {
    a.colwise() = CVec<T>(b, m);
    split_product(a, w, x, [](auto d, const auto& l, const auto& r) { d.noalias() += l * r; });
    activate<T>(a, act, z);
    return;
  }
  parallel_ranges(n, 8, multiply_adds(m, n, w), [&](Index c, Index count) {
    Mat<T> part(a.data() + c * m, m, count);
    part.colwise() = CVec<T>(b, m);
    part.noalias() += w * x.middleCols(c, count);
    activate<T>(part, act, z ? z + c * m : nullptr);
  });
}

// dW = dZ Xᵀ. With one sample this is an outer product, a rank-1 update rather than a GEMM whose
// inner dimension is 1 (where blocking costs more than the arithmetic).
template <class T>
void weight_gradient(CMat<T> x, CMat<T> dz, RowMat<T> dw, Compute compute = Compute::native) {
  if constexpr (std::is_same_v<T, float>) {
    if (compute == Compute::bfloat16)
      return bf16::product(bf16::cols_of(dz.data(), dz.rows(), dz.cols()),
                           bf16::rows_of(x.data(), x.cols(), x.rows()), dw.data(), 1.0f, false);
  }
  if (x.cols() == 1)
    dw.noalias() = dz.col(0) * x.col(0).transpose();
  else
    product(dw, dz, x.transpose());
}

// W -= η dZ Xᵀ: plain SGD's step accumulated by the product itself, so dW is never stored
// and the weights are read and written once (a separate dW costs two more passes over it).
template <class T>
void weight_sgd_update(CMat<T> x, CMat<T> dz, RowMat<T> w, T lr,
                       Compute compute = Compute::native) {
  if constexpr (std::is_same_v<T, float>) {
    if (compute == Compute::bfloat16)
      return bf16::product(bf16::cols_of(dz.data(), dz.rows(), dz.cols()),
                           bf16::rows_of(x.data(), x.cols(), x.rows()), w.data(), -lr, true);
  }
  if (x.cols() == 1)
    w.noalias() -= (lr * dz.col(0)) * x.col(0).transpose();
  else
    split_product(w, dz, x.transpose(),
                  [lr](auto d, const auto& l, const auto& r) { d.noalias() -= lr * l * r; });
}

// From the stored output a, or Z for the activations that read it (z is null for the others):
// dZ = dA ⊙ g'(Z), db = dZ 1 (summed in the pass that forms dZ) and dX = Wᵀ dZ, all but dW;
// dense_backward and the Network's fused SGD step share it. dz is scratch of a's shape and may
// alias da; db may be null (per-sample gradients sum dZ their own way) and dx too (the first
// layer needs no dX).
// On bf16, dX's memory (batch × in) is dZᵀ W.
template <class T>
void delta_backward(CRowMat<T> w, CMat<T> a, const T* z, CMat<T> da, Mat<T> dz, T* db, T* dx,
                    ActivationSpec act, Compute compute = Compute::native) {
  if (db) Vec<T>(db, dz.rows()).setZero();
  activation_backward<T>(a, z, da, dz, act, db);
  if (!dx) return;
  if constexpr (std::is_same_v<T, float>) {
    if (compute == Compute::bfloat16)
      return bf16::product(bf16::rows_of(dz.data(), dz.cols(), dz.rows()),
                           bf16::rows_of(w.data(), w.rows(), w.cols()), dx, 1.0f, false);
  }
  product(Mat<T>(dx, w.cols(), dz.cols()), w.transpose(), dz);
}

// The whole backward of a dense layer: delta_backward, then dW = dZ Xᵀ.
template <class T>
void dense_backward(CMat<T> x, CRowMat<T> w, CMat<T> a, const T* z, CMat<T> da, Mat<T> dz,
                    RowMat<T> dw, T* db, T* dx, ActivationSpec act,
                    Compute compute = Compute::native) {
  delta_backward<T>(w, a, z, da, dz, db, dx, act, compute);
  weight_gradient<T>(x, as_const(dz), dw, compute);
}

}  // namespace denseprop
