// Per-sample gradients of a dense layer from the batch's backward pass, samples as columns:
//   a: in × batch (the layer's input A[l-1])   dz: out × batch (dZ[l] of each sample's own loss)
// Sample i's gradient is dz_i a_iᵀ for W and dz_i for b; the batch gradient is their sum.
#pragma once

#include <cmath>

#include "types.hpp"

namespace denseprop {

// grad_w[i] = dz_i a_iᵀ, one out × in row-major block per sample; grad_b[i] = dz_i (a batch ×
// out C-contiguous array is the out × batch column-major dz itself).
template <class T> void per_sample_gradients(CMat<T> a, CMat<T> dz, T* grad_w, T* grad_b) {
  const Index in = a.rows(), out = dz.rows();
  for (Index i = 0; i < dz.cols(); ++i)
    RowMat<T>(grad_w + i * out * in, out, in).noalias() = dz.col(i) * a.col(i).transpose();
  Mat<T>(grad_b, out, dz.cols()) = dz;
}

// sq[i] += ‖dz_i a_iᵀ‖²_F + ‖dz_i‖² = ‖dz_i‖² (‖a_i‖² + 1): the outer product's norm is the
// product of its factors' norms, so no per-sample gradient is formed.
template <class T> void add_squared_norms(CMat<T> a, CMat<T> dz, T* sq) {
  Vec<T>(sq, dz.cols()).array() += dz.colwise().squaredNorm().transpose().array() *
                                   (a.colwise().squaredNorm().transpose().array() + T(1));
}

// DP-SGD's clip factors from squared norms, in place: c_i = min(1, C / ‖g_i‖), 1 for ‖g_i‖ = 0.
template <class T> void clip_factors(T* sq, Index batch, T clip_norm) {
  for (Index i = 0; i < batch; ++i) {
    const T norm = std::sqrt(sq[i]);
    sq[i] = norm > clip_norm ? clip_norm / norm : T(1);
  }
}

}  // namespace denseprop
