// A dense layer over a batch. Shapes are the textbook's, samples as columns:
//   x: in × batch   w: out × in   b: out   a, da: out × batch
#pragma once

#include "activations.hpp"
#include "parallel.hpp"

namespace denseprop {

// op(dst, lhs, rhs) for dst = lhs rhs (m × k times k × n), shared by the workers when large. A
// row split has every thread pack all of rhs, a column split all of lhs: split the dimension
// whose operand is the larger, so the copies each thread repeats are the smaller ones.
// Ranges are multiples of 8, a whole number of SIMD packets for float and double.
inline bool split_rows(Index m, Index n) { return m >= n; }
template <class Lhs> double multiply_adds(Index m, Index n, const Lhs& lhs) {
  return double(m) * double(n) * double(lhs.cols());
}

template <class Dst, class Lhs, class Rhs, class Op>
void split_product(Dst dst, const Lhs& lhs, const Rhs& rhs, const Op& op) {
  const Index m = dst.rows(), n = dst.cols();
  if (split_rows(m, n))
    parallel_ranges(m, 8, multiply_adds(m, n, lhs), [&](Index r, Index count) {
      op(dst.middleRows(r, count), lhs.middleRows(r, count), rhs);
    });
  else
    parallel_ranges(n, 8, multiply_adds(m, n, lhs), [&](Index c, Index count) {
      op(dst.middleCols(c, count), lhs, rhs.middleCols(c, count));
    });
}

// dst = lhs rhs
template <class Dst, class Lhs, class Rhs> void product(Dst dst, const Lhs& lhs, const Rhs& rhs) {
  split_product(dst, lhs, rhs, [](auto d, const auto& l, const auto& r) { d.noalias() = l * r; });
}

// A = b 1ᵀ, then A += W X, then A = g(A). Eigen's `A = W X` zeroes A before the GEMM adds into
// it: starting from the bias instead saves that pass and the bias add. Split by samples (unless
// the units far outnumber them), each thread activates its own columns right after its product,
// while they are in cache; split by units, the activation (softmax needs whole columns) follows.
// z, when given (out × batch), receives Z = W X + b 1ᵀ on the way, for a backward that reads it.
template <class T>
void dense_forward(CMat<T> x, CRowMat<T> w, const T* b, Mat<T> a, ActivationSpec act,
                   T* z = nullptr) {
  const Index m = a.rows(), n = a.cols();
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
template <class T> void weight_gradient(CMat<T> x, CMat<T> dz, RowMat<T> dw) {
  if (x.cols() == 1)
    dw.noalias() = dz.col(0) * x.col(0).transpose();
  else
    product(dw, dz, x.transpose());
}

// W -= η dZ Xᵀ: plain SGD's step accumulated by the product itself, so dW is never stored
// and the weights are read and written once (a separate dW costs two more passes over it).
template <class T> void weight_sgd_update(CMat<T> x, CMat<T> dz, RowMat<T> w, T lr) {
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
template <class T>
void delta_backward(CRowMat<T> w, CMat<T> a, const T* z, CMat<T> da, Mat<T> dz, T* db, T* dx,
                    ActivationSpec act) {
  if (db) Vec<T>(db, dz.rows()).setZero();
  activation_backward<T>(a, z, da, dz, act, db);
  if (dx) product(Mat<T>(dx, w.cols(), dz.cols()), w.transpose(), dz);
}

// The whole backward of a dense layer: delta_backward, then dW = dZ Xᵀ.
template <class T>
void dense_backward(CMat<T> x, CRowMat<T> w, CMat<T> a, const T* z, CMat<T> da, Mat<T> dz,
                    RowMat<T> dw, T* db, T* dx, ActivationSpec act) {
  delta_backward<T>(w, a, z, da, dz, db, dx, act);
  weight_gradient<T>(x, as_const(dz), dw);
}

}  // namespace denseprop
