// Per-sample weights, as scikit-learn weighs its losses (numpy.average): the mean loss of a batch
// becomes Σ_i w_i ℓ_i / Σ_i w_i and the sum Σ_i w_i ℓ_i, so sample i's gradient column is scaled
// by w_i / Σw (mean) or w_i (sum). A batch whose weights sum to 0 carries no loss and no gradient.
#pragma once

#include "types.hpp"

namespace denseprop {

template <class T> double weight_sum(const T* w, Index n) {
  double total = 0;
  for (Index i = 0; i < n; ++i) total += double(w[i]);
  return total;
}

// grad holds the unweighted loss's gradient (scaled by 1/batch for a mean); losses each ℓ_i.
// Returns the weighted mean (or sum) of the losses and leaves the weighted gradient in grad.
template <class T> double weigh_samples(Mat<T> grad, const T* losses, const T* w, bool mean) {
  const Index batch = grad.cols();
  const double sw = weight_sum(w, batch);
  double total = 0;
  for (Index i = 0; i < batch; ++i) total += double(w[i]) * double(losses[i]);
  if (mean && !(sw > 0)) {
    grad.setZero();
    return 0;
  }
  const T factor = mean ? T(double(batch) / sw) : T(1);
  grad.array().rowwise() *= CVec<T>(w, batch).array().transpose() * factor;
  return mean ? total / sw : total;
}

}  // namespace denseprop
