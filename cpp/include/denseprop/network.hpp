// A multilayer perceptron whose training step is forward, fused loss, backward and update in
// one call. Parameters live in one contiguous buffer and gradients in another, layer after
// layer (W as out × in row-major, then b), so a whole model is one array to save, copy or
// reduce. The workspace holds each layer's activations A[l] and deltas for a batch, and Z[l]
// for the layers whose activation's derivative needs it; it grows only when a larger batch
// arrives, so steps of a seen batch size allocate nothing.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "dense.hpp"
#include "losses.hpp"
#include "noise.hpp"
#include "optimizers.hpp"
#include "per_sample.hpp"
#include "sample_weights.hpp"
#include "sparse.hpp"

namespace denseprop {

// The parameters a layout of `sizes` holds: W[l] (out × in) then b[l], layer after layer.
inline std::vector<Index> layer_offsets(const std::vector<Index>& sizes) {
  std::vector<Index> offsets{0};
  for (size_t l = 0; l + 1 < sizes.size(); ++l)
    offsets.push_back(offsets.back() + sizes[l + 1] * (sizes[l] + 1));
  return offsets;
}

// The most units a layer may have: sizes are int32 in the saved files and the bindings.
inline constexpr Index max_layer_size = std::numeric_limits<std::int32_t>::max();

// Refuses what no Network can be, with the message users see: fewer than two sizes, a size
// outside [1, 2³¹ − 1], more than 2⁴⁰ parameters, an activation count that is not one per hidden
// layer plus the output's, an output-only activation (softmax, exp) in a hidden layer, a loss
// without its fused output.
inline void check_network(const std::vector<Index>& sizes, const std::vector<ActivationSpec>& acts,
                          LossKind loss) {
  const auto fail = [](const std::string& what) { throw std::invalid_argument(what); };
  if (sizes.size() < 2)
    fail("sizes: need at least inputs and outputs, got " + std::to_string(sizes.size()) +
         " entries");
  constexpr Index largest = max_layer_size;
  Index total = 0;
  for (size_t l = 0; l < sizes.size(); ++l) {
    const std::string at = "sizes[" + std::to_string(l) + "]: must be ";
    if (sizes[l] < 1) fail(at + ">= 1, got " + std::to_string(sizes[l]));
    if (sizes[l] > largest)
      fail(at + "at most " + std::to_string(largest) + ", got " + std::to_string(sizes[l]));
    if (l > 0) total += sizes[l] * (sizes[l - 1] + 1);  // < 2^63 by the bound above
  }
  if (total > (Index(1) << 40))
    fail("sizes: " + std::to_string(total) + " parameters are more than this library supports");
  const size_t hidden = sizes.size() - 2;
  if (acts.size() != hidden + 1)
    fail("activation: expected one name or " + std::to_string(hidden) +
         " (one per hidden layer), got " + std::to_string(int(acts.size()) - 1));
  for (size_t l = 0; l < hidden; ++l)
    if (!acts[l].info().hidden)
      fail("activation: " + std::string(acts[l].info().name) +
           " can only be output_activation, not a hidden layer's");
  const LossInfo& info = loss_table[loss];
  const std::string_view out = acts.back().info().name;
  if (!info.fused_output.empty() && out != info.fused_output)
    fail("output_activation: " + std::string(info.name) + " is computed from " +
         std::string(info.fused_output) + " outputs, got '" + std::string(out) + "'");
}

// How fit_epoch reports each batch's loss and sets its L2 penalty, as scikit-learn's MLPs do:
// the reported loss is data_scale × the loss the step minimises + α/(2 Σw) ‖W‖² (Σw the batch's
// weight, its size when unweighted), and the step's weight decay is α/Σw.
struct BatchPenalty {
  double alpha = 0;
  double data_scale = 1;
};

template <class T> struct StepHalves;  // distributed.hpp

template <class T> class Network {
 public:
  // sizes: inputs, then each layer's outputs; one activation per layer. Cross-entropy needs a
  // softmax output, binary cross-entropy a sigmoid one and poisson an exp one: each pair is fused
  // into (P − Y)/batch.
  Network(std::vector<Index> sizes, std::vector<ActivationSpec> activations, LossKind loss)
      : sizes_((check_network(sizes, activations, loss), std::move(sizes))),
        acts_(std::move(activations)), loss_(loss), offsets_(layer_offsets(sizes_)),
        params_(offsets_.back(), T(0)), grads_(offsets_.back(), T(0)), optimizer_(offsets_.back()) {
  }

  Index layers() const { return Index(acts_.size()); }
  Index inputs() const { return sizes_.front(); }
  Index outputs() const { return sizes_.back(); }
  Index size(Index l) const { return sizes_[l]; }  // inputs (0), then each layer's outputs
  Index parameter_count() const { return Index(params_.size()); }
  Index offset(Index l) const { return offsets_[l]; }  // where W[l] starts; b[l] follows it
  T* params() { return params_.data(); }
  T* grads() { return grads_.data(); }
  Optimizer<T>& optimizer() { return optimizer_; }
  LossKind loss() const { return loss_; }
  Compute compute() const { return compute_; }
  // Forms the forward and backward products on bfloat16 operands, or in T; DP-SGD's clipped
  // sums, per-sample gradients and a sparse first layer keep T's products.
  void set_compute(Compute compute) {
    if (compute == Compute::bfloat16 && !std::is_same_v<T, float>)
      throw std::invalid_argument(
          "compute_dtype: bfloat16 products need a float32 network, got float64");
    compute_ = compute;
  }
  // Label smoothing ε of a loss that takes it (cross-entropy), in [0, 1); the loss's gradient and
  // value everywhere (steps, gradients, the trace), as PyTorch's cross_entropy(label_smoothing=ε).
  void set_label_smoothing(double eps) {
    if (!(eps >= 0 && eps < 1))
      throw std::invalid_argument("label_smoothing: must be in [0, 1), got " + format_number(eps));
    if (eps != 0 && !loss_table[loss_].smooths_labels)
      throw std::invalid_argument("label_smoothing: the " + std::string(loss_table[loss_].name) +
                                  " loss takes none; cross_entropy does");
    label_smoothing_ = eps;
  }
  double label_smoothing() const { return label_smoothing_; }

  // Inverted dropout on each hidden layer's output in training steps only (train_step, the
  // epochs, a distributed step): p[l] per layer, 0 for the output layer, each in [0, 1). The
  // masks come from (seed, the optimizer's step count, stream, layer, element): reproducible
  // bit for bit whatever the thread count, different for each stream (an MPI rank's).
  void set_dropout(const std::vector<double>& p) {
    if (Index(p.size()) != layers())
      throw std::invalid_argument("dropout: expected one probability per layer");
    for (Index l = 0; l < layers(); ++l)
      if (!(p[l] >= 0 && p[l] < 1) || (l == layers() - 1 && p[l] != 0))
        throw std::invalid_argument("dropout: each hidden layer's must be in [0, 1), got " +
                                    format_number(p[l]));
    dropout_ = p;
    capacity_ = 0;  // the workspace grows the dropped activations' and masks' buffers
  }
  const std::vector<double>& dropout() const { return dropout_; }
  std::uint64_t dropout_seed = 0, dropout_stream = 0;

  Index capacity() const { return capacity_; }
  // The start of each workspace buffer, to show that steps do not reallocate them.
  std::vector<const void*> workspace() const {
    return {acts_buf_.data(), deltas_buf_.data(), norms_.data(), xb_.data(),
            yb_.data(),       lb_.data(),         zs_buf_.data()};
  }

  // Grows the workspace to hold a batch of `batch` samples; never shrinks it.
  void reserve(Index batch) {
    if (batch <= capacity_) return;
    Index units = 0, z_units = 0;
    for (Index l = 0; l < layers(); ++l) {
      units += sizes_[l + 1];
      if (keeps_z(l)) z_units += sizes_[l + 1];
    }
    acts_buf_.assign(units * batch, T(0));
    deltas_buf_.assign(units * batch, T(0));
    Index dropped_units = 0;
    for (Index l = 0; l < layers(); ++l)
      if (drops(l)) dropped_units += sizes_[l + 1];
    dropped_buf_.assign(dropped_units * batch, T(0));
    masks_buf_.assign(dropped_units * batch, T(0));
    zs_buf_.assign(z_units * batch, T(0));
    norms_.assign(batch, T(0));
    capacity_ = batch;
  }

  // The network's output for x (inputs × batch); the result stays valid until the next call.
  CMat<T> forward(const T* x, Index batch) {
    forward_pass(x, batch, false, false);
    return CMat<T>(act(layers() - 1), outputs(), batch);
  }

  // forward and loss_and_gradients on CSR rows (see sparse.hpp).
  template <class I> CMat<T> forward(const CsrView<T, I>& x, Index batch) {
    SparseInput on(*this, x);
    return forward(nullptr, batch);
  }
  template <class I>
  double loss_and_gradients(const CsrView<T, I>& x, Targets<T> y, Index batch, Reduction reduction,
                            T* per_sample = nullptr) {
    SparseInput on(*this, x);
    return loss_and_gradients(nullptr, y, batch, reduction, per_sample);
  }

  // Σ_l ‖W[l]‖², the biases left out: the L2 penalty's norm.
  double squared_weight_norm() const {
    double total = 0;
    for (Index l = 0; l < layers(); ++l) total += double(weight(l).squaredNorm());
    return total;
  }

  // Forward, loss and backward; gradients land in grads(). Returns Σ or mean of the per-sample
  // losses as `reduction` says (mean also divides the gradients by batch); per_sample optional.
  double loss_and_gradients(const T* x, Targets<T> y, Index batch, Reduction reduction,
                            T* per_sample = nullptr) {
    const double loss = forward_loss(x, y, batch, reduction, per_sample);
    backward(x, batch, Pass::gradients);
    return loss;
  }

  // The gradient of each sample's own loss: grad_w[l] holds batch blocks of out × in
  // (row-major), grad_b[l] batch columns of out. Their sum is the gradient of the summed loss.
  // grads() and the parameters are left as they were.
  void per_sample_gradients(const T* x, Targets<T> y, Index batch, const std::vector<T*>& grad_w,
                            const std::vector<T*>& grad_b) {
    per_sample_deltas(x, y, batch);
    for (Index l = 0; l < layers(); ++l)
      denseprop::per_sample_gradients<T>(layer_input(x, l, batch), layer_dz(l, batch), grad_w[l],
                                         grad_b[l]);
  }

  // norms[i] = ‖g_i‖, the L2 norm of sample i's gradient over all parameters, without forming
  // it (see add_squared_norms). grads() and the parameters are left as they were.
  void per_sample_gradient_norms(const T* x, Targets<T> y, Index batch, T* norms) {
    per_sample_deltas(x, y, batch);
    squared_norms(x, batch, norms);
    for (Index i = 0; i < batch; ++i) norms[i] = std::sqrt(norms[i]);
  }

  // One optimizer step on the mean loss of the batch; returns that loss (before the update).
  // A step that is not finite is undone: a non-finite loss is returned before any update, and
  // an update that overflows a parameter (too large a learning rate or input) puts back the
  // parameters and optimizer state it started from and returns NaN.
  double train_step(const T* x, Targets<T> y, Index batch) { return step(x, y, batch, true); }
  // The same on CSR rows (not DP-SGD, whose clipping reads each sample's dense input).
  template <class I> double train_step(const CsrView<T, I>& x, Targets<T> y, Index batch) {
    SparseInput on(*this, x);
    return train_step(nullptr, y, batch);
  }

  // train_step; `undoable` false skips the undo's copy (fit_epoch: its caller restores a failed
  // epoch). The gradient is formed before any parameter changes: plain SGD keeps every layer's
  // dZ and takes W -= η dZ Aᵀ as the product itself (dW is never stored); other optimizers, and
  // SGD clipping the gradient, form dW, then update() (the clip, then one fused pass over the
  // buffers); DP-SGD forms its gradient from the per-sample ones.
  double step(const T* x, Targets<T> y, Index batch, bool undoable) {
    const Training on(*this);
    const bool dp = optimizer_.info().per_sample;
    const bool sgd = optimizer_.fusable();
    const double loss = dp ? per_sample_deltas(x, y, batch) / double(batch)
                           : forward_loss(x, y, batch, Reduction::mean, nullptr);
    if (!std::isfinite(loss)) return loss;
    if (!dp) backward(x, batch, sgd ? Pass::sgd : Pass::gradients);
    // The undo needs a copy of everything the step changes, unless plain SGD's step is shown
    // unable to overflow (which a finite loss and the bound below together prove).
    const bool keep = undoable && !(sgd && sgd_cannot_overflow(x, batch));
    if (keep) {
      saved_params_.assign(params_.begin(), params_.end());
      optimizer_.save();
    }
    optimizer_.begin_step();
    if (dp)
      dpsgd_update(x, batch);
    else if (sgd)
      sgd_update(x, batch);
    else
      update();
    if (!keep || parameters_finite()) return loss;
    std::copy(saved_params_.begin(), saved_params_.end(), params_.begin());
    optimizer_.restore();
    return std::numeric_limits<double>::quiet_NaN();
  }

  // {summed loss, samples} of the batches of an epoch's steps.
  struct BatchLoss {
    double sum;
    Index samples;
  };

  // One epoch over n samples (x: inputs × n, y alike, or CSR rows) in the given order, batch by
  // batch, the last batch partial, then empty batches up to `steps` (a process whose shard ran
  // out stepping beside the others: see distributed.hpp). before_step(k) comes before step k
  // (from 0; a learning-rate schedule sets the step's rate), then take(xb, yb, b) takes the step
  // on one batch (xb null for CSR rows, gathered into the sparse layer) and returns its
  // BatchLoss. Returns the mean per-sample loss, or the first non-finite summed loss, at which
  // it stops. Steps are not undone one by one: the caller keeps the network as it was before
  // the epoch.
  template <class X, class BeforeStep, class Take>
  double epoch(const X& x, Targets<T> y, const std::int64_t* order, Index n, Index batch_size,
               Index steps, BeforeStep&& before_step, Take&& take) {
    auto in = batches_of(*this, x, std::min(batch_size, n));
    const Index out = outputs();
    const Index b_max = std::min(batch_size, n);
    reserve(std::max<Index>(b_max, 1));
    if (y.dense && Index(yb_.size()) < out * b_max) yb_.assign(out * b_max, T(0));
    if (y.labels && Index(lb_.size()) < b_max) lb_.assign(b_max, 0);
    if (y.weights && Index(wb_.size()) < b_max) wb_.assign(b_max, T(0));
    double total = 0;
    Index samples = 0;
    for (Index k = 0; k < steps; ++k) {
      const Index start = std::min(k * batch_size, n), b = std::min(batch_size, n - start);
      const std::int64_t* idx = order + start;
      const bool consecutive = b == 0 || std::adjacent_find(idx, idx + b, [](auto i, auto j) {
                                           return j != i + 1;
                                         }) == idx + b;
      Targets<T> yb;
      const T* xb = in.gather(idx, b, consecutive);
      if (b == 0) {
        yb = {};
      } else if (consecutive) {
        yb = {y.labels ? y.labels + idx[0] : nullptr, y.dense ? y.dense + idx[0] * out : nullptr,
              y.weights ? y.weights + idx[0] : nullptr};
      } else {
        for (Index i = 0; i < b; ++i) {
          if (y.dense) std::memcpy(yb_.data() + i * out, y.dense + idx[i] * out, sizeof(T) * out);
          if (y.labels) lb_[i] = y.labels[idx[i]];
          if (y.weights) wb_[i] = y.weights[idx[i]];
        }
        yb = {y.labels ? lb_.data() : nullptr, y.dense ? yb_.data() : nullptr,
              y.weights ? wb_.data() : nullptr};
      }
      before_step(k);
      const BatchLoss batch = take(xb, yb, b);
      if (!std::isfinite(batch.sum)) return batch.sum;
      total += batch.sum;
      samples += batch.samples;
    }
    return total / double(samples);
  }

  // An epoch of this process's own steps (train_step's, not undone one by one), before_step(k)
  // before each (see epoch). With `penalty`, each batch's loss and weight decay are
  // scikit-learn's (see BatchPenalty).
  template <class X, class BeforeStep>
  double fit_epoch(const X& x, Targets<T> y, const std::int64_t* order, Index n, Index batch_size,
                   const BatchPenalty* penalty, BeforeStep&& before_step) {
    return epoch(x, y, order, n, batch_size, (n + batch_size - 1) / batch_size, before_step,
                 [&](const T* xb, Targets<T> yb, Index b) {
                   double l2 = 0, scale = 1;
                   if (penalty) {
                     const double sw = yb.weights ? weight_sum(yb.weights, b) : double(b);
                     optimizer_.set_weight_decay(sw > 0 ? penalty->alpha / sw : 0);
                     if (penalty->alpha != 0 && sw > 0)
                       l2 = 0.5 * penalty->alpha * squared_weight_norm() / sw;
                     scale = penalty->data_scale;
                   }
                   const double loss = step(xb, yb, b, false);
                   return BatchLoss{std::isfinite(loss) ? (scale * loss + l2) * double(b) : loss,
                                    b};
                 });
  }

  CRowMat<T> weight(Index l) const {
    return CRowMat<T>(params_.data() + offsets_[l], sizes_[l + 1], sizes_[l]);
  }
  const T* bias(Index l) const { return params_.data() + offsets_[l] + sizes_[l + 1] * sizes_[l]; }

 private:
  friend struct StepHalves<T>;

  // Layer 0 reads sparse_batch_ instead of x while one lives (set, and cleared on exit).
  struct SparseInput {
    Network& net;
    explicit SparseInput(Network& n) : net(n) { net.sparse_input_ = true; }
    template <class I> SparseInput(Network& n, const CsrView<T, I>& x) : SparseInput(n) {
      std::vector<std::int64_t> all(x.rows);
      for (Index i = 0; i < x.rows; ++i) all[i] = i;
      net.sparse_batch_.gather(x, all.data(), x.rows);
    }
    ~SparseInput() { net.sparse_input_ = false; }
  };

  // An epoch's batches of inputs: gather(idx, b, consecutive) gives batch idx[0..b)'s inputs,
  // the caller's own memory when they are consecutive rows, else copied into xb_.
  struct DenseBatches {
    Network& net;
    const T* x;
    DenseBatches(Network& n, const T* x_, Index b_max) : net(n), x(x_) {
      const Index in = net.inputs();
      if (Index(net.xb_.size()) < in * b_max) net.xb_.assign(in * b_max, T(0));
    }
    const T* gather(const std::int64_t* idx, Index b, bool consecutive) {
      const Index in = net.inputs();
      if (b == 0 || consecutive) return x + (b ? idx[0] * in : 0);
      for (Index i = 0; i < b; ++i)
        std::memcpy(net.xb_.data() + i * in, x + idx[i] * in, sizeof(T) * in);
      return net.xb_.data();
    }
  };
  // CSR rows: each batch's rows gathered into the sparse layer (see sparse.hpp).
  template <class I> struct SparseBatches {
    SparseInput on;
    const CsrView<T, I>& x;
    SparseBatches(Network& n, const CsrView<T, I>& x_, Index) : on(n), x(x_) {}
    const T* gather(const std::int64_t* idx, Index b, bool) {
      on.net.sparse_batch_.gather(x, idx, b);
      return nullptr;
    }
  };
  static DenseBatches batches_of(Network& n, const T* x, Index b_max) { return {n, x, b_max}; }
  template <class I>
  static SparseBatches<I> batches_of(Network& n, const CsrView<T, I>& x, Index b_max) {
    return {n, x, b_max};
  }

  // Layer l's slice of a workspace buffer, laid out for the current capacity; the Z buffer
  // holds only the layers that keep it, the dropout buffers only those that drop.
  enum class Layers { all, keeping_z, dropping };
  T* slice(Buffer<T>& buf, Index l, Layers which = Layers::all) {
    Index units = 0;
    for (Index k = 0; k < l; ++k)
      if (which == Layers::all || (which == Layers::keeping_z ? keeps_z(k) : drops(k)))
        units += sizes_[k + 1];
    return buf.data() + units * capacity_;
  }
  T* act(Index l) { return slice(acts_buf_, l); }
  T* delta(Index l) { return slice(deltas_buf_, l); }
  T* z(Index l) { return keeps_z(l) ? slice(zs_buf_, l, Layers::keeping_z) : nullptr; }
  T* dropped(Index l) { return slice(dropped_buf_, l, Layers::dropping); }
  T* mask(Index l) { return slice(masks_buf_, l, Layers::dropping); }

  // Whether layer l drops units in training, and in the pass under way.
  bool drops(Index l) const { return !dropout_.empty() && dropout_[l] > 0; }
  bool dropping(Index l) const { return training_ && drops(l); }
  // Marks a training step's passes, in which dropout applies.
  struct Training {
    Network& net;
    explicit Training(Network& n) : net(n) { net.training_ = true; }
    ~Training() { net.training_ = false; }
  };

  // Inverted dropout of layer l's output a (size values, samples as columns): mask(l) holds 0 or
  // 1/(1 − p), dropped(l) = a ⊙ mask(l). Value e of the layer is dropped when its 32 bits of
  // the stream of (seed, step count, stream, l) are below p·2³²: word ⌊e/2⌋ gives values
  // 2⌊e/2⌋ (low bits) and 2⌊e/2⌋ + 1 (high bits).
  void drop(Index l, T* a, Index size) {
    constexpr std::uint64_t gamma = 0x9E3779B97F4A7C15ull;
    const double p = dropout_[l];
    const std::uint64_t threshold = std::uint64_t(std::ldexp(p, 32));
    const std::uint64_t key = dropout_key(l);
    const T kept = T(1 / (1 - p));
    T* m = mask(l);
    const Index pairs = size / 2;
    for (Index i = 0; i < pairs; ++i) {  // no branch in the loop: the compiler vectorises it
      const std::uint64_t word = splitmix64(key + std::uint64_t(i) * gamma);
      m[2 * i] = (word & 0xFFFFFFFFull) < threshold ? T(0) : kept;
      m[2 * i + 1] = (word >> 32) < threshold ? T(0) : kept;
    }
    if (size % 2)
      m[size - 1] = (splitmix64(key + std::uint64_t(pairs) * gamma) & 0xFFFFFFFFull) < threshold
                        ? T(0)
                        : kept;
    flat(dropped(l), size) = flat(a, size) * flat(m, size);
  }
  std::uint64_t dropout_key(Index l) const {
    return stream_key(dropout_seed, optimizer_.steps(), dropout_stream, l);
  }

  bool fused_output() const { return !loss_table[loss_].fused_output.empty(); }
  // The activation layer l applies in training: the fused output layer stops at its logits.
  ActivationSpec trained_activation(Index l) const {
    return (l == layers() - 1 && fused_output()) ? ActivationSpec{} : acts_[l];
  }
  // Whether layer l keeps Z[l] for its backward (gelu, silu, ...; not sigmoid, relu, ...).
  bool keeps_z(Index l) const { return trained_activation(l).info().needs_z; }

  // A[l-1], the input of layer l, and dZ[l] as the backward pass left it.
  CMat<T> layer_input(const T* x, Index l, Index batch) {
    return CMat<T>(l == 0 ? x : dropping(l - 1) ? dropped(l - 1) : act(l - 1), sizes_[l], batch);
  }
  CMat<T> layer_dz(Index l, Index batch) { return CMat<T>(delta(l), sizes_[l + 1], batch); }

  // Forward and backward on each sample's own (unscaled) loss, keeping dZ[l] of every layer in
  // the workspace; grads() is not written.
  double per_sample_deltas(const T* x, Targets<T> y, Index batch) {
    const double loss = forward_loss(x, y, batch, Reduction::sum, nullptr);
    backward(x, batch, Pass::deltas);
    return loss;
  }

  // sq[i] = ‖g_i‖², from the dZ[l] of per_sample_deltas.
  void squared_norms(const T* x, Index batch, T* sq) {
    Vec<T>(sq, batch).setZero();
    for (Index l = 0; l < layers(); ++l)
      add_squared_norms<T>(layer_input(x, l, batch), layer_dz(l, batch), sq);
  }

  // One optimizer step over grads(), the step's whole gradient: clipped to max_grad_norm
  // first (before the optimizer adds any weight decay, as torch's clip_grad_norm_ before its
  // step), then W with weight decay, b without.
  void update() {
    if (optimizer_.clips()) optimizer_.clip(grads_.data(), parameter_count());
    for (Index l = 0; l < layers(); ++l) {
      const Index w = sizes_[l + 1] * sizes_[l];
      optimizer_.update(params_.data(), grads_.data(), offsets_[l], w, true);
      optimizer_.update(params_.data(), grads_.data(), offsets_[l] + w, sizes_[l + 1], false);
    }
  }

  // DP-SGD (Abadi et al. 2016): each sample's gradient g_i clipped to norm C, summed, noise
  // N(0, σ²C²) added to every parameter, divided by the batch, then SGD's step. The clipped sum
  // Σ_i c_i dz_i a_iᵀ = (dZ diag(c)) Aᵀ is one GEMM per layer, as a plain gradient is.
  void dpsgd_update(const T* x, Index batch) {
    clipped_sum(x, batch);
    optimizer_.privatise(grads_.data(), parameter_count(), batch);
    update();
  }

  // grads() = Σ_i c_i g_i, from the dZ[l] of per_sample_deltas.
  void clipped_sum(const T* x, Index batch) {
    T* c = norms_.data();
    squared_norms(x, batch, c);
    clip_factors<T>(c, batch, T(optimizer_.settings()[Setting::clip_norm]));
    for (Index l = 0; l < layers(); ++l) {
      const Index in = sizes_[l], out = sizes_[l + 1];
      Mat<T> d(delta(l), out, batch);
      d.array().rowwise() *= CVec<T>(c, batch).array().transpose();
      T* gw = grads_.data() + offsets_[l];
      weight_gradient<T>(layer_input(x, l, batch), as_const(d), RowMat<T>(gw, out, in));
      Vec<T>(gw + out * in, out) = d.rowwise().sum();
    }
  }

  // Plain SGD from what backward(Pass::sgd) left: W ← (1 − ηλ) W − η dZ Aᵀ, accumulated by the
  // product itself, and b ← b − η db.
  void sgd_update(const T* x, Index batch) {
    const T lr = T(optimizer_.settings()[Setting::lr]),
            decay = T(optimizer_.settings()[Setting::weight_decay]);
    for (Index l = 0; l < layers(); ++l) {
      const Index in = sizes_[l], out = sizes_[l + 1];
      RowMat<T> w(params_.data() + offsets_[l], out, in);
      if (decay != T(0)) w *= T(1) - lr * decay;  // p -= η λ p, the L2 term of the step
      if (l == 0 && sparse_input_)
        sparse_weight_sgd_update<T>(sparse_batch_, layer_dz(0, batch), w, lr);
      else
        weight_sgd_update<T>(layer_input(x, l, batch), layer_dz(l, batch), w, lr, compute_);
      Vec<T>(params_.data() + offsets_[l] + out * in, out) -=
          lr * CVec<T>(grads_.data() + offsets_[l] + out * in, out);
    }
  }

  // Whether plain SGD's step can overflow no parameter, from the dZ[l] backward left. A finite
  // loss means finite parameters (an infinite one would make some Z NaN); each entry of
  // η dZ Aᵀ is at most η max_r Σ_b |dz_rb| · max|A| (the bias: η max_r Σ_b |dz_rb|), and a
  // finite value moved by less than a quarter of the largest value's ulp cannot round past it.
  // The bound reads every dZ and A once, in flat vectorised passes: used while that costs less
  // than the undo's copy of the parameters and its check (three passes over them), else the
  // copy is made.
  bool sgd_cannot_overflow(const T* x, Index batch) {
    Index reads = 0;
    for (Index l = 0; l < layers(); ++l) reads += (sizes_[l] + sizes_[l + 1]) * batch;
    const double decay_factor =
        1 - optimizer_.settings()[Setting::lr] * optimizer_.settings()[Setting::weight_decay];
    if (sparse_input_ || reads >= 3 * parameter_count() || std::abs(decay_factor) > 1) return false;
    constexpr int unsafe =
        std::numeric_limits<T>::max_exponent - std::numeric_limits<T>::digits - 2;
    // bf16 products round each operand by up to 2⁻⁸ of itself: half the limit covers that.
    const double limit = std::ldexp(1.0, compute_ == Compute::bfloat16 ? unsafe - 1 : unsafe) /
                         optimizer_.settings()[Setting::lr];
    for (Index l = 0; l < layers(); ++l) {
      const CMat<T> a = layer_input(x, l, batch), dz = layer_dz(l, batch);
      const double row_sums =
          double(dz.cwiseAbs().rowwise().sum().template maxCoeff<Eigen::PropagateNaN>());
      const double largest_a =
          double(CVec<T>(a.data(), a.size()).cwiseAbs().template maxCoeff<Eigen::PropagateNaN>());
      if (!(row_sums * (1 + largest_a) < limit)) return false;  // NaN included
    }
    return true;
  }

  bool parameters_finite() const { return all_finite(params_.data(), parameter_count()); }

  // The forward pass and the loss; leaves dZ[L] (fused output) or dA[L] in delta(L).
  double forward_loss(const T* x, Targets<T> y, Index batch, Reduction reduction, T* per_sample) {
    const Index L = layers() - 1;
    forward_pass(x, batch, fused_output(), true);
    const T scale = reduction == Reduction::mean ? T(1) / T(batch) : T(1);
    Mat<T> a(act(L), outputs(), batch), d(delta(L), outputs(), batch);
    if (y.weights && !per_sample) {  // weighing needs each sample's loss
      if (Index(sample_losses_.size()) < batch) sample_losses_.assign(batch, T(0));
      per_sample = sample_losses_.data();
    }
    double total = 0;  // a receives the probabilities when the output is fused
    visit<Losses>(loss_, [&](auto entry) {
      if constexpr (decltype(entry)::info.smooths_labels)
        total = entry.loss(a, y, d, scale, per_sample, T(label_smoothing_));
      else
        total = entry.loss(a, y, d, scale, per_sample);
    });
    if (y.weights) return weigh_samples<T>(d, per_sample, y.weights, reduction == Reduction::mean);
    return reduction == Reduction::mean ? total / double(batch) : total;
  }

  // What a backward pass leaves: the gradients in grads(); or plain SGD's step taken in place,
  // each layer's weights updated after dA[l-1] has used them (grads() then holds the biases'
  // gradients); or only dZ[l] of every layer in the workspace.
  // gradients: dZ, dW and db; sgd: dZ of every layer and db (see sgd_update); deltas: dZ only.
  enum class Pass { gradients, sgd, deltas };

  // Back from delta(L) to the first layer.
  void backward(const T* x, Index batch, Pass pass) {
    const Index L = layers() - 1;
    for (Index l = L; l >= 0; --l) {
      const Index in = sizes_[l], out = sizes_[l + 1];
      T* gw = grads_.data() + offsets_[l];
      Mat<T> dz(delta(l), out, batch);
      if (dropping(l)) flat(dz.data(), dz.size()) *= flat(mask(l), dz.size());
      delta_backward<T>(weight(l), CMat<T>(act(l), out, batch), z(l), as_const(dz), dz,
                        pass == Pass::deltas ? nullptr : gw + out * in,
                        l == 0 ? nullptr : delta(l - 1), trained_activation(l), compute_);
      if (pass == Pass::gradients && l == 0 && sparse_input_)
        sparse_weight_gradient<T>(sparse_batch_, as_const(dz), RowMat<T>(gw, out, in));
      else if (pass == Pass::gradients)
        weight_gradient<T>(layer_input(x, l, batch), as_const(dz), RowMat<T>(gw, out, in),
                           compute_);
    }
  }

  // A[l] = g(W[l] A[l-1] + b[l]); with `logits_out` the last layer stops at its logits Z[L],
  // which the fused loss turns into probabilities. With `keep_z`, the layers whose backward
  // reads Z[l] keep it.
  void forward_pass(const T* x, Index batch, bool logits_out, bool keep_z) {
    reserve(batch);
    const T* in = x;
    for (Index l = 0; l < layers(); ++l) {
      const ActivationSpec g = logits_out ? trained_activation(l) : acts_[l];
      Mat<T> a(act(l), sizes_[l + 1], batch);
      if (l == 0 && sparse_input_) {
        sparse_product<T>(sparse_batch_, weight(0), a);
        a.colwise() += CVec<T>(bias(0), a.rows());
        activate<T>(a, g, keep_z ? z(0) : nullptr);
      } else {
        dense_forward<T>(CMat<T>(in, sizes_[l], batch), weight(l), bias(l), a, g,
                         keep_z ? z(l) : nullptr, compute_);
      }
      in = a.data();
      if (dropping(l)) {
        drop(l, a.data(), a.size());
        in = dropped(l);
      }
    }
  }

  std::vector<Index> sizes_;
  std::vector<ActivationSpec> acts_;
  LossKind loss_;
  Compute compute_ = Compute::native;
  std::vector<Index> offsets_;
  Buffer<T> params_, grads_;
  Optimizer<T> optimizer_;
  Index capacity_ = 0;
  Buffer<T> acts_buf_, deltas_buf_, zs_buf_;
  Buffer<T> norms_;           // DP-SGD's per-sample norms, then clip factors
  Buffer<T> saved_params_;    // train_step's undo
  Buffer<T> xb_, yb_, wb_;    // a shuffled batch, gathered
  Buffer<T> sample_losses_;   // each sample's loss, for weighing
  CsrBatch<T> sparse_batch_;  // sparse inputs' rows of the current batch
  bool sparse_input_ = false;
  double label_smoothing_ = 0;
  std::vector<double> dropout_;        // per layer; empty: none
  Buffer<T> dropped_buf_, masks_buf_;  // the dropping layers' A[l] ⊙ mask and masks
  bool training_ = false;              // in a training step: dropout applies
  std::vector<std::int64_t> lb_;
};

}  // namespace denseprop
