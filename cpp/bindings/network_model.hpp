// The compiled Network as Python holds it (Model) and the checks of its arguments, shared by the
// translation units that bind its methods (register_network.cpp, register_training.cpp,
// register_distributed.cpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "arrays.hpp"
#include "denseprop/distributed.hpp"
#include "denseprop/network.hpp"

namespace denseprop::bindings {

// A Network and the lock that makes calls from several Python threads take turns: they share
// the workspace. The GIL is released before the lock is taken, so a waiting thread never holds it.
template <class T> struct Model {
  Model(std::vector<Index> sizes, std::vector<ActivationSpec> acts, LossKind loss)
      : net(std::move(sizes), std::move(acts), loss) {}
  Network<T> net;
  std::mutex busy;
  std::vector<T> saved;  // loss_and_gradient's copy of the parameters it puts back

  template <class F> auto locked(F&& f) {
    py::gil_scoped_release nogil;  // the work below touches only buffers the caller holds
    std::lock_guard<std::mutex> lock(busy);
    return f();
  }
};

// NaN or inf in what the network learns from would spread into every weight: refuse it.
template <class T> void expect_finite(const Array<T>& a, const char* name) {
  const T* p = a.data();
  const py::ssize_t n = a.size();
  if (all_finite(p, n)) return;
  const py::ssize_t i = std::find_if(p, p + n, [](T v) { return !std::isfinite(v); }) - p;
  throw py::value_error(cat(name, ": contains ", p[i], " at row ", i / a.shape(1), ", column ",
                            i % a.shape(1), "; NaN and inf are not allowed"));
}

// `finite_checked`: the caller has had these very arrays checked (by `check`) and not changed
// them since; the scan for NaN and inf is then not repeated (an epoch of fit).
template <class T>
Array<T> features(const Network<T>& net, py::handle obj, bool finite_checked = false) {
  auto x = input<T>(obj, "x", 2, "(batch, features)", "the network");
  if (x.shape(1) != net.inputs())
    throw py::value_error(
        cat("x has ", x.shape(1), " features, but the network expects ", net.inputs()));
  if (!finite_checked) expect_finite(x, "x");
  return x;
}

// y as the network's loss reads it: class labels (batch,) for cross-entropy, or a dense
// (batch, outputs) array of the network's dtype.
template <class T> struct ParsedTargets {
  std::optional<Array<std::int64_t>> labels;
  std::optional<Array<T>> dense;
  std::optional<Array<T>> weights;
  Targets<T> view() const {
    return {labels ? labels->data() : nullptr, dense ? dense->data() : nullptr,
            weights ? weights->data() : nullptr};
  }
};

template <class T>
ParsedTargets<T> targets(const Network<T>& net, py::handle obj, py::ssize_t batch,
                         bool finite_checked = false) {
  ParsedTargets<T> t;
  const py::array y = ndarray(obj, "y");
  if (loss_table[net.loss()].labels && y.ndim() == 1) {
    t.labels = labels(y, "y", batch, net.outputs(), "x");
    return t;
  }
  const Array<T> dense = input<T>(y, "y", 2, "(batch, outputs)", "the network");
  expect_rows(dense, "y", batch, "x");
  if (dense.shape(1) != net.outputs())
    throw py::value_error(
        cat("y has ", dense.shape(1), " columns, but the network has ", net.outputs(), " outputs"));
  if (!finite_checked) expect_finite(dense, "y");
  if (!finite_checked && loss_table[net.loss()].nonnegative_targets)
    expect_nonnegative(dense, "y", loss_table[net.loss()].name);
  t.dense = dense;
  return t;
}

// Per-sample weights (batch,) of the network's dtype, finite and >= 0; None gives none.
template <class T>
std::optional<Array<T>> sample_weights(py::handle obj, const char* name, py::ssize_t batch) {
  if (obj.is_none()) return std::nullopt;
  auto w = input<T>(obj, name, 1, "(batch,)", "the network");
  expect_rows(w, name, batch, "x");
  const T* p = w.data();
  for (py::ssize_t i = 0; i < batch; ++i)
    if (!(p[i] >= T(0)) || !std::isfinite(p[i]))
      throw py::value_error(
          cat(name, ": weight ", p[i], " at index ", i, " is not a finite number >= 0"));
  return w;
}

// A 1-D C-contiguous array of `a`'s own dtype (copied only if strided), possibly empty.
template <class A> A vector_of(py::handle obj, const char* name) {
  auto a = A::ensure(obj);
  if (!a) throw py::error_already_set();
  if (a.ndim() != 1)
    throw py::value_error(cat(name, ": expected a 1-D array, got ", a.ndim(), "-D"));
  return a;
}

// x as the network takes it: a dense (batch, inputs) array, or a scipy.sparse CSR matrix read
// through its data, indices and indptr arrays where they lie (int32 or int64 indices).
template <class T> struct Inputs {
  std::optional<Array<T>> dense;
  std::optional<Array<T>> data;
  std::optional<py::array> indptr, indices;  // empty for dense x: no array is made for it
  bool wide = false;                         // int64 indices
  Index rows = 0;

  // `finite_checked` as for `features`: these very arrays passed `check` and are unchanged.
  Inputs(const Network<T>& net, py::handle obj, const char* name, bool finite_checked = false) {
    // an ndarray first: hasattr's failed lookup costs a third of a batch-1 step
    if (py::isinstance<py::array>(obj) || !py::hasattr(obj, "indptr")) {
      dense = features(net, obj, finite_checked);
      rows = dense->shape(0);
      return;
    }
    if (py::str(obj.attr("format")).cast<std::string>() != "csr")
      throw py::type_error(cat(name, ": sparse inputs must be CSR (convert with .tocsr())"));
    const auto shape = obj.attr("shape").cast<std::pair<Index, Index>>();
    rows = shape.first;
    if (rows < 1) throw py::value_error(cat(name, ": empty batch"));
    if (shape.second != net.inputs())
      throw py::value_error(
          cat(name, " has ", shape.second, " features, but the network expects ", net.inputs()));
    py::array values = ndarray(obj.attr("data"), name);
    if (!values.dtype().equal(py::dtype::of<T>()))
      throw py::type_error(cat(name, ": dtype ", std::string(py::str(values.dtype())),
                               " does not match the network's ", dtype_name<T>()));
    data = vector_of<Array<T>>(values, name);
    const py::array ip = ndarray(obj.attr("indptr"), name), ix = ndarray(obj.attr("indices"), name);
    wide = ip.dtype().equal(py::dtype::of<std::int64_t>());
    if (!(wide || ip.dtype().equal(py::dtype::of<std::int32_t>())) || !ix.dtype().equal(ip.dtype()))
      throw py::type_error(cat(name, ": CSR indices and indptr must both be int32 or int64"));
    if (wide)
      check<std::int64_t>(ip, ix, name, shape.second);
    else
      check<std::int32_t>(ip, ix, name, shape.second);
    if (!finite_checked) expect_finite_values(name);
  }

  Index n() const { return rows; }

  template <class F> decltype(auto) visit(F&& f) const {
    if (dense) return f(static_cast<const T*>(dense->data()));
    if (wide) return f(view<std::int64_t>());
    return f(view<std::int32_t>());
  }

 private:
  template <class I> CsrView<T, I> view() const {
    return {static_cast<const I*>(indptr->data()), static_cast<const I*>(indices->data()),
            data->data(), rows, cols_};
  }
  Index cols_ = 0;

  template <class I>
  void check(const py::array& ip, const py::array& ix, const char* name, Index cols) {
    using V = py::array_t<I, py::array::c_style>;
    indptr = vector_of<V>(ip, name), indices = vector_of<V>(ix, name), cols_ = cols;
    const I* p = static_cast<const I*>(indptr->data());
    const I* k = static_cast<const I*>(indices->data());
    if (Index(indptr->size()) != rows + 1 || p[0] != 0)
      throw py::value_error(cat(name, ": indptr must have ", rows + 1, " entries starting at 0"));
    for (Index i = 0; i < rows; ++i)
      if (p[i + 1] < p[i]) throw py::value_error(cat(name, ": indptr decreases at row ", i));
    if (Index(p[rows]) > Index(indices->size()) || Index(p[rows]) > Index(data->size()))
      throw py::value_error(cat(name, ": indptr's last entry exceeds the non-zeros"));
    for (Index j = 0; j < Index(p[rows]); ++j)
      if (k[j] < 0 || Index(k[j]) >= cols)
        throw py::value_error(cat(name, ": column index ", k[j], " out of range [0, ", cols, ")"));
  }
  void expect_finite_values(const char* name) const {
    if (!all_finite(data->data(), Index(data->size())))
      throw py::value_error(cat(name, ": contains NaN or inf; they are not allowed"));
  }
};

// A per-sample optimizer (DP-SGD) needs every sample's own input; the sparse layer keeps none.
template <class T> void expect_dense_per_sample(Network<T>& net, const Inputs<T>& x) {
  if (!x.dense && net.optimizer().info().per_sample)
    throw py::value_error(
        cat("x: ", net.optimizer().info().name, " needs dense inputs, got a sparse matrix"));
}

// Sample weights (batch,) checked as `sample_weights` does. A per-sample optimizer bounds each
// sample's gradient by its clip; a weight would scale the gradient past that bound: refused.
template <class T>
std::optional<Array<T>> step_weights(Network<T>& net, py::handle obj, py::ssize_t batch) {
  auto w = sample_weights<T>(obj, "sample_weight", batch);
  if (w && net.optimizer().info().per_sample)
    throw py::value_error(cat("sample_weight: ", net.optimizer().info().name,
                              " clips each sample's gradient and takes no sample weights"));
  return w;
}

// What Python's reduce(loss, samples, weight) returns for a distributed step (see
// distributed.hpp), as the step reads it.
inline StepTotals step_totals(const py::object& reduced) {
  const auto t = reduced.cast<std::tuple<double, Index, double>>();
  return {std::get<0>(t), std::get<1>(t), std::get<2>(t)};
}

}  // namespace denseprop::bindings
