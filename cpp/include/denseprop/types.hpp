// Views of caller-owned memory. A NumPy array of shape (batch, features), C-contiguous, is
// exactly the column-major features × batch matrix of the textbook equations, so every
// activation map is column-major; weights (out, in) C-contiguous are a row-major out × in map.
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <vector>

namespace denseprop {

using Index = Eigen::Index;

template <class T> using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
template <class T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T> using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;

template <class T> using Mat = Eigen::Map<Matrix<T>>;
template <class T> using CMat = Eigen::Map<const Matrix<T>>;
template <class T> using RowMat = Eigen::Map<RowMatrix<T>>;
template <class T> using CRowMat = Eigen::Map<const RowMatrix<T>>;
template <class T> using Vec = Eigen::Map<Vector<T>>;
template <class T> using CVec = Eigen::Map<const Vector<T>>;

// How a layer forms its products: in its own dtype, or on bfloat16 operands (bf16.hpp).
enum class Compute { native, bfloat16 };

// Buffers the library owns start on Eigen's packet boundary. Eigen treats a column's unaligned
// head with scalar code, which rounds differently from its vector code: with a heap-chosen
// alignment, two identical networks could differ in the last bits.
template <class T> using Buffer = std::vector<T, Eigen::aligned_allocator<T>>;

// Whether every one of n values is finite: v · 0 is 0 for finite v and NaN otherwise, so one
// vectorised sum answers, where Eigen's allFinite() tests element by element (a step's check of
// its input took 4% of it).
template <class T> bool all_finite(const T* data, Index n) {
  return std::isfinite(
      (Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>(data, n) * T(0)).sum());
}

// A read-only view of a writable one (Eigen has no implicit conversion between the two maps).
template <class T> CMat<T> as_const(const Mat<T>& m) {
  return CMat<T>(m.data(), m.rows(), m.cols());
}

}  // namespace denseprop
