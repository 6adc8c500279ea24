// Data-parallel training's step: each process steps on its own batch, and the processes add up
// their gradients between the two halves of the step, so that every one takes the same step,
// that of one process on the union of the batches. No MPI here: `reduce` is handed in (Python's
// denseprop/distributed.py runs the collectives through mpi4py).
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <type_traits>

#include "network.hpp"

namespace denseprop {

template <class T> struct StepHalves {
  // First: the gradient of the batch's summed loss into grads() (a per-sample optimizer's, the
  // sum of the clipped per-sample gradients); returns the summed loss. An empty batch adds 0.
  // The parameters do not change. x: inputs × batch, or CSR rows (not for a per-sample one).
  template <class X>
  static double gradient_sum(Network<T>& net, const X& x, Targets<T> y, Index batch) {
    if (batch == 0) {
      std::fill(net.grads_.begin(), net.grads_.end(), T(0));
      return 0;
    }
    const typename Network<T>::Training on(net);  // a training step's passes: dropout applies
    if constexpr (!std::is_pointer_v<X>) {
      return net.loss_and_gradients(x, y, batch, Reduction::sum);
    } else {
      if (!net.optimizer_.info().per_sample)
        return net.loss_and_gradients(x, y, batch, Reduction::sum);
      const double loss = net.per_sample_deltas(x, y, batch);
      if (std::isfinite(loss)) net.clipped_sum(x, batch);
      return loss;
    }
  }

  // Second: one optimizer step on the mean gradient, grads() holding the gradient of a loss
  // summed over `count` samples of total weight `weight` (`count` unweighted): the gradient is
  // divided by the weight, as a weighted batch's mean is Σ w_i ℓ_i / Σ w_i (a weight of 0 leaves
  // the zero gradient as it is; a per-sample optimizer's noise added first). Clipping to
  // max_grad_norm (in update()) takes the norm of that mean, the whole step's gradient, the same
  // on every process. Returns whether the parameters stayed finite; when not and `undoable`,
  // they and the optimizer state are put back.
  static bool apply_gradient_sum(Network<T>& net, Index count, double weight, bool undoable) {
    auto& opt = net.optimizer_;
    if (undoable) {
      net.saved_params_.assign(net.params_.begin(), net.params_.end());
      opt.save();
    }
    opt.begin_step();
    if (opt.info().per_sample)
      opt.privatise(net.grads_.data(), net.parameter_count(), count);
    else
      Vec<T>(net.grads_.data(), net.parameter_count()) /= T(weight > 0 ? weight : 1);
    net.update();
    if (net.parameters_finite()) return true;
    if (undoable) {
      std::copy(net.saved_params_.begin(), net.saved_params_.end(), net.params_.begin());
      opt.restore();
    }
    return false;
  }
};

// What a step's reduce returns: the processes' summed loss, samples and weight (the sum of
// the samples' weights, their count when unweighted).
struct StepTotals {
  double sum;
  Index samples;
  double weight;
};

// The loss and samples of one step over every process, from this process's batch.
// reduce(loss, samples, weight) adds grads() up over the processes in place and returns their
// `StepTotals`. The step is on the weighted mean Σ w_i ℓ_i / Σ w_i of the union of the batches;
// the returned sum is that mean times the samples, as an unweighted batch's summed loss (so an
// epoch's loss is the mean of its batches', each counted by its size, as a process's own
// epoch). NaN, and nothing updated, when any process's loss was not finite; NaN after the
// update when it overflowed a parameter (then undone when `undoable`).
template <class T, class X, class Reduce>
typename Network<T>::BatchLoss distributed_step(Network<T>& net, const X& x, Targets<T> y,
                                                Index batch, Reduce& reduce, bool undoable) {
  const double loss = StepHalves<T>::gradient_sum(net, x, y, batch);
  const double weight = y.weights ? weight_sum(y.weights, batch) : double(batch);
  const StepTotals total = reduce(loss, batch, weight);
  if (total.samples == 0) throw std::invalid_argument("x: the batch is empty on every rank");
  // unweighted (weight == samples), the summed loss itself, untouched by rounding
  double sum = total.sum;
  if (total.weight != double(total.samples))
    sum = total.weight > 0 ? total.sum / total.weight * double(total.samples) : 0.0 * total.sum;
  if (std::isfinite(sum) &&
      !StepHalves<T>::apply_gradient_sum(net, total.samples, total.weight, undoable))
    sum = std::numeric_limits<double>::quiet_NaN();
  return {sum, total.samples};
}

// Steps for the one training loop (training.hpp), each process on its own shard: every epoch
// takes the same number of steps on every process (`steps`, the most batches of any shard),
// before_step(k) before each (a schedule's rate: the same on every process).
template <class T, class Reduce> struct DistributedSteps {
  Reduce& reduce;
  Index steps;
  Index steps_per_epoch(Index, Index) const { return steps; }
  template <class X, class BeforeStep>
  double epoch(Network<T>& net, const X& x, Targets<T> y, const std::int64_t* order, Index n,
               Index batch_size, BeforeStep&& before_step) const {
    return net.epoch(x, y, order, n, batch_size, steps, before_step,
                     [&](const T* xb, Targets<T> yb, Index b) {
                       return distributed_step(net, xb, yb, b, reduce, false);
                     });
  }
};

}  // namespace denseprop
