// The bound Network and the checks of what it is given, shared by the files that bind its
// methods (register_network.cpp, register_distributed.cpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <mutex>
#include <optional>

#include "arrays.hpp"
#include "denseprop/network.hpp"

namespace denseprop::bindings {

// A Network and the lock that makes calls from several Python threads take turns: they share
// the workspace. The GIL is released before the lock is taken, so a waiting thread never holds it.
template <class T> struct Model {
  Model(std::vector<Index> sizes, std::vector<ActivationSpec> acts, LossKind loss)
      : net(std::move(sizes), std::move(acts), loss) {}
  Network<T> net;
  std::mutex busy;

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
  Targets<T> view() const {
    return {labels ? labels->data() : nullptr, dense ? dense->data() : nullptr};
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
  t.dense = dense;
  return t;
}

}  // namespace denseprop::bindings
