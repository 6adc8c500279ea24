// A sparse first layer: inputs as CSR rows (samples × features, scipy.sparse's layout), the
// first layer's products taken over their non-zeros only. Samples are rows, so the CSR matrix
// X (batch × in) gives
//   Z[1]ᵀ = X W[1]ᵀ        (forward: batch × out, the column-major out × batch Z[1] itself)
//   dW[1]ᵀ = Xᵀ dZ[1]ᵀ     (backward: in × out, the column-major view of the row-major W)
// and the first layer needs no dX. A batch's rows are gathered into the network's own CSR
// buffers (its non-zeros, never a dense copy), indices as int64 whatever the caller's type.
#pragma once

#include <Eigen/SparseCore>
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

template <class T> using SparseRows = Eigen::SparseMatrix<T, Eigen::RowMajor, std::int64_t>;
template <class T> using SparseMap = Eigen::Map<const SparseRows<T>>;

// A batch of rows gathered from a CsrView; buffers grow, never shrink.
template <class T> struct CsrBatch {
  std::vector<std::int64_t> indptr, indices;
  Buffer<T> data;
  Index rows = 0, cols = 0;

  SparseMap<T> map() const {
    return SparseMap<T>(rows, cols, indptr[rows], indptr.data(), indices.data(), data.data());
  }

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

// Z (out × batch) = W Xᵀ, written through its row-major batch × out view; bias and activation
// follow as for a dense layer.
template <class T> void sparse_product(const SparseMap<T>& x, CRowMat<T> w, Mat<T> z) {
  RowMat<T>(z.data(), z.cols(), z.rows()).noalias() = x * w.transpose();
}

// dW = dZ X (out × in, row-major), through its column-major in × out view: dWᵀ = Xᵀ dZᵀ.
template <class T> void sparse_weight_gradient(const SparseMap<T>& x, CMat<T> dz, RowMat<T> dw) {
  Mat<T>(dw.data(), dw.cols(), dw.rows()).noalias() = x.transpose() * dz.transpose();
}

// W -= η dZ X, plain SGD's step on the sparse layer.
template <class T>
void sparse_weight_sgd_update(const SparseMap<T>& x, CMat<T> dz, RowMat<T> w, T lr) {
  Mat<T>(w.data(), w.cols(), w.rows()).noalias() -= lr * (x.transpose() * dz.transpose());
}

}  // namespace denseprop
