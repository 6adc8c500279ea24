// The Poisson deviance on a log link, scikit-learn's MLPRegressor(loss="poisson"): the network's
// last layer gives z, its prediction is p = e^z (so every prediction is positive), and
//   ℓ = Σ_k y log(y / p) − y + p = Σ_k y log y − y z − y + e^z,   ∂ℓ/∂z = e^z − y
// with y log y = 0 at y = 0. Columns are samples, as in losses.hpp; grad = scale · ∂ℓ/∂z.
#pragma once

#include <cmath>

#include "types.hpp"

namespace denseprop {

// probs, if given, receives e^z and may alias z (each column of z is read before it is written).
template <class T>
double poisson_log_link(CMat<T> z, CMat<T> y, Mat<T> grad, T scale, T* probs, T* per_sample) {
  const Index n = z.rows();
  double total = 0;
  for (Index j = 0; j < z.cols(); ++j) {
    auto zc = z.col(j).array();
    auto yc = y.col(j).array();
    auto g = grad.col(j).array();
    g = zc.exp();
    const T ylogy = (yc > T(0)).select(yc * yc.log(), T(0)).sum();  // log 0's -inf not selected
    const T loss = ylogy + (g - yc * zc - yc).sum();
    if (probs) Vec<T>(probs + j * n, n) = g.matrix();
    g = (g - yc) * scale;
    if (per_sample) per_sample[j] = loss;
    total += loss;
  }
  return total;
}

}  // namespace denseprop
