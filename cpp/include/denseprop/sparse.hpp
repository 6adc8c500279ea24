// A sparse first layer: inputs as CSR rows (samples × features, scipy.sparse's layout), the
// first layer's products taken over their non-zeros only. Samples are rows, so the CSR matrix
// X (batch × in) gives
//   Z[1] = W[1] Xᵀ         (forward: out × batch)
//   dW[1] = dZ[1] X        (backward: out × in, as W[1])
// and the first layer needs no dX. A batch's rows are gathered into the network's own CSR
// buffers (its non-zeros, never a dense copy), indices as int64 whatever the caller's type.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "types.hpp"

namespace denseprop {

// The caller's CSR matrix, read where it lies: indptr (rows + 1), indices and data (nnz) with
// indices of type I (int32 or int64, as scipy chooses).
template <class T, class I> struct CsrView {
  const I* indptr;
  const I* indices;
  const T* data;
  Index rows, cols;
};

// A batch of rows gathered from a CsrView; buffers grow, never shrink.
template <class T> struct CsrBatch {
  std::vector<std::int64_t> indptr, indices;
  Buffer<T> data;
  Index rows = 0, cols = 0;

  // Rows idx[0..b) of x, in that order.
  template <class I> void gather(const CsrView<T, I>& x, const std::int64_t* idx, Index b) {
    Index nnz = 0;
    for (Index i = 0; i < b; ++i) nnz += Index(x.indptr[idx[i] + 1] - x.indptr[idx[i]]);
    indptr.resize(b + 1);
    if (Index(indices.size()) < nnz) indices.resize(nnz), data.resize(nnz);
    indptr[0] = 0;
    for (Index i = 0, at = 0; i < b; ++i) {
      const Index start = Index(x.indptr[idx[i]]), count = Index(x.indptr[idx[i] + 1]) - start;
      for (Index k = 0; k < count; ++k) indices[at + k] = std::int64_t(x.indices[start + k]);
      std::memcpy(data.data() + at, x.data + start, sizeof(T) * count);
      at += count;
      indptr[i + 1] = at;
    }
    rows = b, cols = x.cols;
  }
};

// The products go unit by unit: W's row o (the weights of one unit, contiguous) stays in
// cache while every non-zero of the batch gathers from it (forward) or scatters into its
// gradient row (backward). Eigen's sparse products walk W's columns instead, which the
// row-major (out, in) layout strides by `in`: one cache miss per weight at 20,000 inputs.

// Z (out × batch) = W Xᵀ: Z(o, i) = Σ_{k ∈ row i} W(o, k) x_ik. Bias and activation follow as
// for a dense layer.
template <class T> void sparse_product(const CsrBatch<T>& x, CRowMat<T> w, Mat<T> z) {
  const std::int64_t* p = x.indptr.data();
  const std::int64_t* k = x.indices.data();
  const T* v = x.data.data();
  for (Index o = 0; o < w.rows(); ++o) {
    const T* row = w.data() + o * w.cols();
    for (Index i = 0; i < x.rows; ++i) {
      T sum = 0;
      for (std::int64_t j = p[i]; j < p[i + 1]; ++j) sum += row[k[j]] * v[j];
      z(o, i) = sum;
    }
  }
}

// dW (out × in, row-major) -= η dZ X, or dW = dZ X when `lr` is 0 (a gradient, not a step):
// dW(o, k) = Σ_i dz(o, i) x_ik over the batch's non-zeros.
template <class T> void sparse_weight_product(const CsrBatch<T>& x, CMat<T> dz, RowMat<T> dw,
                                              T lr) {
  const std::int64_t* p = x.indptr.data();
  const std::int64_t* k = x.indices.data();
  const T* v = x.data.data();
  const bool step = lr != T(0);
  if (!step) dw.setZero();
  for (Index o = 0; o < dw.rows(); ++o) {
    T* row = dw.data() + o * dw.cols();
    for (Index i = 0; i < x.rows; ++i) {
      const T d = step ? -lr * dz(o, i) : dz(o, i);
      for (std::int64_t j = p[i]; j < p[i + 1]; ++j) row[k[j]] += d * v[j];
    }
  }
}

template <class T> void sparse_weight_gradient(const CsrBatch<T>& x, CMat<T> dz, RowMat<T> dw) {
  sparse_weight_product<T>(x, dz, dw, T(0));
}

// W -= η dZ X, plain SGD's step on the sparse layer (η > 0).
template <class T>
void sparse_weight_sgd_update(const CsrBatch<T>& x, CMat<T> dz, RowMat<T> w, T lr) {
  sparse_weight_product<T>(x, dz, w, lr);
}

}  // namespace denseprop
