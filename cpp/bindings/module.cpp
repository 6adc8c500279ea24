// The compiled module, built once per variant of CMakeLists.txt's table under the name
// _core_<variant> (DENSEPROP_MODULE); denseprop/_native.py imports the best one this CPU runs.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <Eigen/Core>
#include <string>

#include "arrays.hpp"
#include "cpu_features.hpp"
#include "denseprop/parallel.hpp"
#include "register.hpp"

namespace py = pybind11;
using denseprop::bindings::cat;
using denseprop::bindings::cpu_features;

namespace {

// The instruction sets this module was compiled for (Eigen's own string omits AVX2 and FMA).
std::string simd_in_use() {
  std::string s;
  auto add = [&s](const char* name) { s += s.empty() ? name : std::string(", ") + name; };
#if defined(__SSE2__)
  add("SSE2");
#endif
#if defined(__SSE4_2__)
  add("SSE4.2");
#endif
#if defined(__AVX__)
  add("AVX");
#endif
#if defined(__AVX2__)
  add("AVX2");
#endif
#if defined(__FMA__)
  add("FMA");
#endif
#if defined(__AVX512F__)
  add("AVX512F");
#endif
#if defined(__AVX512BW__)
  add("AVX512BW");
#endif
#if defined(__AVX512CD__)
  add("AVX512CD");
#endif
#if defined(__AVX512DQ__)
  add("AVX512DQ");
#endif
#if defined(__AVX512VL__)
  add("AVX512VL");
#endif
#if defined(__ARM_NEON)
  add("NEON");
#endif
  return s.empty() ? "none" : s;
}

py::dict build_info() {
  py::dict info;
  info["module"] = DENSEPROP_VARIANT;
  info["eigen_version"] =
      cat(EIGEN_WORLD_VERSION, ".", EIGEN_MAJOR_VERSION, ".", EIGEN_MINOR_VERSION);
  info["simd"] = simd_in_use();
  info["num_threads"] = denseprop::Workers::get().threads();
  return info;
}

// More is a mistake (a byte count, a cast negative number): each would be a thread started now.
constexpr int max_threads = 256;

void set_num_threads(int n) {
  if (n < 1 || n > max_threads)
    throw py::value_error(cat("n: must be a number of threads in [1, ", max_threads, "], got ", n));
  py::gil_scoped_release nogil;  // joining the old workers may wait for a running product
  denseprop::Workers::get().set_threads(n);
}

int get_num_threads() { return denseprop::Workers::get().threads(); }

}  // namespace

PYBIND11_MODULE(DENSEPROP_MODULE, m) {
  m.doc() = "denseprop's compiled kernels (" DENSEPROP_VARIANT " build).";
  denseprop::bindings::register_activations(m);
  denseprop::bindings::register_bf16(m);
  denseprop::bindings::register_dense(m);
  denseprop::bindings::register_losses(m);
  denseprop::bindings::register_optimizers(m);  // before the Network, whose methods take its type
  denseprop::bindings::register_network(m);
  denseprop::bindings::register_training(m);
  denseprop::bindings::register_distributed(m);
  m.def("build_info", &build_info,
        "Which compiled module is loaded, Eigen's version, the SIMD instruction sets in use "
        "and the thread count of large matrix products.");
  m.def("set_num_threads", &set_num_threads, py::arg("n"),
        "Set the number of threads that share a large matrix product, for this process (the "
        "default: DENSEPROP_NUM_THREADS, else OMP_NUM_THREADS, else the CPUs available).");
  m.def("get_num_threads", &get_num_threads,
        "The number of threads that share a large matrix product.");
  m.def("_cpu_features", &cpu_features,
        "The instruction-set features this CPU has and the OS enables, by the names "
        "denseprop._native's table of variants uses.");
  m.def("_as_array", &denseprop::bindings::ndarray, py::arg("obj"), py::arg("name"),
        "obj as an ndarray, as every kernel reads its arguments: itself, a view of an "
        "array-like's memory, or a copy (lists); for denseprop.Network and the estimators.");
}
