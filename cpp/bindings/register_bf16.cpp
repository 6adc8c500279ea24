// The bf16 kernels' controls: which kernel this process uses (denseprop._native chooses it at
// import), the AMX permission, and one product by any kernel for the tests.
#include <algorithm>

#include "arrays.hpp"
#include "cpu_features.hpp"
#include "denseprop/bf16_product.hpp"
#include "register.hpp"

namespace denseprop::bindings {
namespace {

bf16::Kernel kernel_named(const std::string& name) {
  std::string names;
  for (int i = 0; i < int(std::size(bf16::kernel_names)); ++i) {
    if (name == bf16::kernel_names[i]) return bf16::Kernel(i);
    names += cat(i ? ", " : "", bf16::kernel_names[i]);
  }
  throw py::value_error(cat("kernel: expected one of ", names, ", got '", name, "'"));
}

// Why this CPU and OS cannot run `kernel` ("" when they can): a native kernel's instructions
// fault without the CPU's feature, AMX's also without the OS's grant of the tile state.
std::string unavailable(bf16::Kernel kernel) {
  const auto has = [features = cpu_features()](const char* name) {
    return std::find(features.begin(), features.end(), name) != features.end();
  };
  if (kernel == bf16::Kernel::avx512_bf16 && !has("avx512_bf16"))
    return "this CPU lacks avx512_bf16";
  if (kernel == bf16::Kernel::amx)
    return has("amx_tile") && has("amx_bf16") ? bf16::request_amx() : "this CPU lacks amx_bf16";
  return "";
}

bf16::Kernel runnable(const std::string& name) {
  const bf16::Kernel kernel = kernel_named(name);
  const std::string why = unavailable(kernel);
  if (!why.empty()) throw py::value_error(cat("kernel: ", name, " cannot run here: ", why));
  return kernel;
}

void set_bf16_kernel(const std::string& name) { bf16::kernel().store(runnable(name)); }

// C = alpha · round(A) round(B) (+ c): A is a, or aᵀ with transpose_a (likewise B), so that every
// packing path is reached from Python.
py::array bf16_matmul(py::handle a_obj, py::handle b_obj, const std::string& kernel,
                      bool transpose_a, bool transpose_b, double alpha, py::handle c_obj) {
  const bf16::Kernel k = runnable(kernel);
  const auto a = input<float>(a_obj, "a", 2, "(m, k)", "a");
  const auto b = input<float>(b_obj, "b", 2, "(k, n)", "a");
  const py::ssize_t m = a.shape(transpose_a ? 1 : 0), ka = a.shape(transpose_a ? 0 : 1);
  const py::ssize_t kb = b.shape(transpose_b ? 1 : 0), n = b.shape(transpose_b ? 0 : 1);
  if (ka != kb) throw py::value_error(cat("b: expected ", ka, " rows of k to match a, got ", kb));
  const bool accumulate = !c_obj.is_none();
  auto c = new_array<float>({m, n});
  if (accumulate) {
    const auto given = input<float>(c_obj, "c", 2, "(m, n)", "a");
    if (given.shape(0) != m || given.shape(1) != n)
      throw py::value_error(cat("c: expected shape (", m, ", ", n, "), got ", shape_str(given)));
    std::copy_n(given.data(), m * n, c.mutable_data());
  }
  const bf16::Operand oa = (transpose_a ? bf16::cols_of : bf16::rows_of)(a.data(), m, ka);
  const bf16::Operand ob = (transpose_b ? bf16::cols_of : bf16::rows_of)(b.data(), kb, n);
  float* dst = c.mutable_data();
  {
    py::gil_scoped_release nogil;
    bf16::product(oa, ob, dst, float(alpha), accumulate, k);
  }
  return std::move(c);
}

}  // namespace

void register_bf16(py::module_& m) {
  m.def("_set_bf16_kernel", &set_bf16_kernel, py::arg("name"),
        "Make every bfloat16 product of this process use the kernel `name` (ValueError if it "
        "cannot run here); denseprop._native chooses it at import.");
  m.def(
      "_bf16_kernel", [] { return std::string(bf16::kernel_names[int(bf16::kernel().load())]); },
      "The kernel of this process's bfloat16 products.");
  m.def("_request_amx", &bf16::request_amx,
        "Ask the OS for the AMX tile state; '' when granted, else why not.");
  m.def("_bf16_matmul", &bf16_matmul, py::arg("a"), py::arg("b"), py::kw_only(), py::arg("kernel"),
        py::arg("transpose_a") = false, py::arg("transpose_b") = false, py::arg("alpha") = 1.0,
        py::arg("c") = py::none(),
        "alpha * round(a) @ round(b) (+ c, a copy) by the bfloat16 kernel `kernel`; "
        "transpose_a, transpose_b: a, b given transposed. For the tests.");
}

}  // namespace denseprop::bindings
