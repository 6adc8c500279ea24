// Views of caller-owned memory. A NumPy array of shape (batch, features), C-contiguous, is
// exactly the column-major features × batch matrix of the textbook equations, so every
// activation map is column-major; weights (out, in) C-contiguous are a row-major out × in map.
#pragma once

#include <Eigen/Core>
#include <cstdint>

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

// A read-only view of a writable one (Eigen has no implicit conversion between the two maps).
template <class T> CMat<T> as_const(const Mat<T>& m) { return CMat<T>(m.data(), m.rows(), m.cols()); }

}  // namespace denseprop
