// Argument checks and zero-copy views at the Python boundary. Every check runs before any
// memory is touched, and a failed one raises TypeError (wrong kind of object or dtype) or
// ValueError (wrong shape or value) naming the argument, what was expected and what came.
#pragma once

#include <pybind11/gil_safe_call_once.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "denseprop/activations.hpp"
#include "denseprop/types.hpp"

namespace denseprop::bindings {

namespace py = pybind11;

template <class T> using Array = py::array_t<T, py::array::c_style>;

template <class... Parts> std::string cat(const Parts&... parts) {
  std::ostringstream s;
  (s << ... << parts);
  return s.str();
}

template <class Shape> std::string shape_str(const Shape& shape, py::ssize_t ndim) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < ndim; ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (ndim == 1 ? ",)" : ")");
}
inline std::string shape_str(const py::array& a) { return shape_str(a.shape(), a.ndim()); }

template <class T> const char* dtype_name() { return sizeof(T) == 4 ? "float32" : "float64"; }

// The NumPy functions that read array-likes, looked up once per process.
struct NumpyReaders {
  py::object asarray, from_dlpack;
};
inline const NumpyReaders& numpy_readers() {
  PYBIND11_CONSTINIT static py::gil_safe_call_once_and_store<NumpyReaders> store;
  return store
      .call_once_and_store_result([] {
        const py::module_ np = py::module_::import("numpy");
        return NumpyReaders{np.attr("asarray"), np.attr("from_dlpack")};
      })
      .get_stored();
}

// `obj` as an ndarray: itself, or what `numpy.asarray` makes of it (lists, objects with
// __array__ or __array_interface__, such as PyTorch CPU tensors and JAX arrays: views of their
// memory, no copy), or for an object that only DLPack describes, `numpy.from_dlpack`'s view.
// A list of floats is float64 and one of ints int64, as in NumPy. Anything that does not read as
// numbers (ragged lists, strings, None, other objects) is a TypeError or ValueError naming `name`.
inline py::array ndarray(py::handle obj, const char* name) {
  if (py::isinstance<py::array>(obj)) return py::reinterpret_borrow<py::array>(obj);
  const std::string type = py::str(py::type::handle_of(obj).attr("__name__"));
  py::object a;
  try {
    a = numpy_readers().asarray(obj);
    if (py::reinterpret_borrow<py::array>(a).dtype().kind() == 'O' &&
        py::hasattr(obj, "__dlpack__"))
      a = numpy_readers().from_dlpack(obj);
  } catch (py::error_already_set& e) {
    if (e.matches(PyExc_MemoryError)) throw;
    // Whatever the object's own conversion raised (a tensor that requires grad raises
    // RuntimeError, one on a GPU BufferError) is the argument's fault: say which argument.
    const bool value = e.matches(PyExc_ValueError);
    const std::string why = py::str(e.value());
    py::raise_from(e, value ? PyExc_ValueError : PyExc_TypeError,
                   cat(name, ": cannot be read as an array (", type, "): ", why).c_str());
    throw py::error_already_set();
  }
  py::array array = py::reinterpret_steal<py::array>(a.release());
  const char kind = array.dtype().kind();
  if (kind == 'O' || kind == 'U' || kind == 'S' || kind == 'V')
    throw py::type_error(cat(name, ": expected an array-like of numbers, got ", type));
  return array;
}

// `out` must be the caller's own ndarray: a converted copy would lose the writes.
inline py::array out_ndarray(py::handle obj, const char* name) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(cat(name, ": expected a numpy.ndarray (writeable, C-contiguous), got ",
                             std::string(py::str(py::type::handle_of(obj).attr("__name__")))));
  return py::reinterpret_borrow<py::array>(obj);
}

// The float type that every array of one call shares, read from the call's first array.
enum class DType { f32, f64 };

inline DType float_dtype(py::handle obj, const char* name) {
  py::array a = ndarray(obj, name);
  if (a.dtype().equal(py::dtype::of<float>())) return DType::f32;
  if (a.dtype().equal(py::dtype::of<double>())) return DType::f64;
  throw py::type_error(
      cat(name, ": expected float32 or float64, got ", std::string(py::str(a.dtype()))));
}

// Runs f(T{}) with T the float type of d, so one generic lambda serves both dtypes.
template <class F> decltype(auto) dispatch(DType d, F&& f) {
  if (d == DType::f32) return f(float{});
  return f(double{});
}

inline void check_ndim(const py::array& a, const char* name, py::ssize_t ndim, const char* layout) {
  if (a.ndim() != ndim)
    throw py::value_error(
        cat(name, ": expected a ", ndim, "-D array ", layout, ", got ", a.ndim(), "-D"));
  for (py::ssize_t i = 0; i < ndim; ++i)
    if (a.shape(i) == 0)
      throw py::value_error(
          cat(name, i == 0 ? ": empty batch, shape " : ": empty dimension, shape ", shape_str(a)));
}

// `obj` as a C-contiguous array of T: the caller's memory when it is already a C-contiguous
// array-like of T, a copy only when it is strided or Fortran-ordered.
// `first` names the argument whose dtype chose T, for the message when the two differ.
template <class T>
Array<T> input(py::handle obj, const char* name, py::ssize_t ndim, const char* layout,
               const char* first) {
  py::array a = ndarray(obj, name);
  if (!a.dtype().equal(py::dtype::of<T>()))
    throw py::type_error(cat(name, ": dtype ", std::string(py::str(a.dtype())), " does not match ",
                             first, "'s ", dtype_name<T>()));
  check_ndim(a, name, ndim, layout);
  auto c = Array<T>::ensure(a);
  if (!c) throw std::bad_alloc();
  return c;
}

// A new C-contiguous array whose data starts on a 64-byte boundary. Eigen runs the unaligned
// head of a vectorised pass in scalar code, which rounds differently (exp, sums): on NumPy's
// 16-byte alignment a result's last bits would depend on where the allocator put it.
template <class T> Array<T> new_array(std::initializer_list<py::ssize_t> shape) {
  constexpr py::ssize_t align = 64;
  std::vector<py::ssize_t> strides(shape.size());
  py::ssize_t bytes = sizeof(T);
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = bytes;
    const py::ssize_t extent = shape.begin()[i];
    if (extent != 0 && bytes > (std::numeric_limits<py::ssize_t>::max() - align) / extent) {
      PyErr_SetString(PyExc_MemoryError,
                      cat("a result of shape ", shape_str(shape.begin(), shape.size()),
                          " is larger than the address space")
                          .c_str());
      throw py::error_already_set();
    }
    bytes *= extent;
  }
  py::array_t<std::uint8_t> raw(bytes + align);
  const auto start = reinterpret_cast<std::uintptr_t>(raw.mutable_data());
  T* data = reinterpret_cast<T*>((start + align - 1) & ~std::uintptr_t(align - 1));
  return Array<T>(std::vector<py::ssize_t>(shape), strides, data, raw);
}

inline bool overlaps(const py::array& a, const py::array& b) {
  const auto* a0 = static_cast<const char*>(a.data());
  const auto* b0 = static_cast<const char*>(b.data());
  return a0 < b0 + b.nbytes() && b0 < a0 + a.nbytes();
}

// The caller's `out` if it can take the result in place, else a new array. An `out` that would
// need a conversion is refused: writing into a converted copy would silently drop the result.
template <class T>
Array<T> output(py::handle obj, const char* name, std::initializer_list<py::ssize_t> shape,
                const char* first,
                std::initializer_list<std::pair<const py::array*, const char*>> inputs) {
  if (obj.is_none()) return new_array<T>(shape);
  py::array a = out_ndarray(obj, name);
  if (!a.dtype().equal(py::dtype::of<T>()))
    throw py::type_error(cat(name, ": dtype ", std::string(py::str(a.dtype())), " does not match ",
                             first, "'s ", dtype_name<T>()));
  if (a.ndim() != py::ssize_t(shape.size()) || !std::equal(shape.begin(), shape.end(), a.shape()))
    throw py::value_error(cat(name, ": expected shape ", shape_str(shape.begin(), shape.size()),
                              ", got ", shape_str(a)));
  if (!(a.flags() & py::array::c_style)) throw py::value_error(cat(name, ": must be C-contiguous"));
  if (!a.writeable())
    throw py::value_error(cat(name, ": must be writeable, got a read-only array"));
  for (const auto& [in, in_name] : inputs)
    if (overlaps(a, *in))
      throw py::value_error(
          cat(name, ": overlaps the memory of ", in_name, "; pass a separate array"));
  return py::reinterpret_borrow<Array<T>>(a);
}

// A (batch, n) C-contiguous array is the column-major n × batch matrix of the equations.
template <class T> CMat<T> cols(const Array<T>& a) {
  return CMat<T>(a.data(), a.ndim() == 2 ? a.shape(1) : 1, a.shape(0));
}
template <class T> Mat<T> cols(Array<T>& a) {
  return Mat<T>(a.mutable_data(), a.ndim() == 2 ? a.shape(1) : 1, a.shape(0));
}
template <class T> CRowMat<T> weights(const Array<T>& w) {
  return CRowMat<T>(w.data(), w.shape(0), w.shape(1));
}

inline void expect_rows(const py::array& a, const char* name, py::ssize_t batch, const char* ref) {
  if (a.shape(0) != batch)
    throw py::value_error(cat(name, ": expected ", batch, " rows to match ", ref, "'s batch of ",
                              batch, ", got shape ", shape_str(a)));
}

inline void expect_same_shape(const py::array& a, const char* name, const py::array& ref,
                              const char* ref_name) {
  if (a.ndim() != ref.ndim() || !std::equal(a.shape(), a.shape() + a.ndim(), ref.shape()))
    throw py::value_error(cat(name, ": expected shape ", shape_str(ref), " to match ", ref_name,
                              ", got ", shape_str(a)));
}

// A (batch, n) array of the targets of a loss of counts or rates (poisson), which has no value
// at y < 0: the first negative entry is refused, naming it.
template <class T>
void expect_nonnegative(const Array<T>& a, const char* name, std::string_view loss) {
  const T* p = a.data();
  const py::ssize_t n = a.size();
  const py::ssize_t i = std::find_if(p, p + n, [](T v) { return v < T(0); }) - p;
  if (i < n)
    throw py::value_error(cat(name, ": contains ", p[i], " at row ", i / a.shape(1), ", column ",
                              i % a.shape(1), "; the ", loss, " loss needs ", name, " >= 0"));
}

// A TypeError unless a has an integer dtype; `what` names its values ("class labels").
inline void expect_integers(const py::array& a, const char* name, const char* what) {
  const char kind = a.dtype().kind();
  if (kind != 'i' && kind != 'u')
    throw py::type_error(
        cat(name, ": ", what, " need an integer dtype, got ", std::string(py::str(a.dtype()))));
}

// a as C-ordered int64, each value checked to lie in [0, bound); `noun` ("label") names one.
inline Array<std::int64_t> int64_below(const py::array& a, const char* name, const char* noun,
                                       py::ssize_t bound) {
  auto l = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
  if (!l) throw std::bad_alloc();
  const std::int64_t* p = l.data();
  for (py::ssize_t i = 0; i < l.size(); ++i)
    if (p[i] < 0 || p[i] >= bound)
      throw py::value_error(
          cat(name, ": ", noun, " ", p[i], " at index ", i, " is out of range [0, ", bound, ")"));
  return l;
}

// Integer class labels as int64, each checked to lie in [0, classes).
inline Array<std::int64_t> labels(py::handle obj, const char* name, py::ssize_t batch,
                                  py::ssize_t classes, const char* ref) {
  py::array a = ndarray(obj, name);
  expect_integers(a, name, "class labels");
  check_ndim(a, name, 1, "(batch,)");
  expect_rows(a, name, batch, ref);
  return int64_below(a, name, "label", classes);
}

inline std::string type_name(py::handle obj) {
  return py::str(py::type::handle_of(obj).attr("__name__"));
}

// Python's and NumPy's integers and floats, not bool (a flag passed for a number is a mistake).
inline bool is_bool(py::handle obj) {
  return PyBool_Check(obj.ptr()) || py::isinstance(obj, py::module_::import("numpy").attr("bool_"));
}
inline bool is_integer(py::handle obj) {
  return !is_bool(obj) && (PyLong_Check(obj.ptr()) ||
                           py::isinstance(obj, py::module_::import("numpy").attr("integer")));
}

// A number argument as a double, refused with a TypeError naming it when it is not a number.
inline double real(py::handle obj, const char* name) {
  if (is_bool(obj) || !(PyLong_Check(obj.ptr()) || PyFloat_Check(obj.ptr()) ||
                        py::isinstance(obj, py::module_::import("numpy").attr("number"))))
    throw py::type_error(cat(name, ": expected a number, got ", type_name(obj)));
  return py::float_(py::reinterpret_borrow<py::object>(obj));
}

// compute_dtype: None (products in the arrays' own dtype) or "bfloat16". Whether the dtype
// takes it is the caller's to check (the Network refuses bfloat16 for float64 itself).
inline Compute compute_of(py::handle obj) {
  if (obj.is_none()) return Compute::native;
  if (!py::isinstance<py::str>(obj))
    throw py::type_error(cat("compute_dtype: expected None or 'bfloat16', got ", type_name(obj)));
  if (obj.cast<std::string>() != "bfloat16")
    throw py::value_error(
        cat("compute_dtype: expected None or 'bfloat16', got ", std::string(py::repr(obj))));
  return Compute::bfloat16;
}

// compute_of for a kernel on arrays of T: bfloat16 products take float32 arrays only.
template <class T> Compute array_compute(py::handle obj) {
  const Compute compute = compute_of(obj);
  if (compute == Compute::bfloat16 && !std::is_same_v<T, float>)
    throw py::value_error("compute_dtype: bfloat16 products need float32 arrays, got float64");
  return compute;
}

// A name argument (an activation's, a loss's ...) as a string; what is not a str becomes its
// repr, which no table holds, so that it is refused as an unknown name.
inline std::string name_argument(py::handle obj) {
  return py::isinstance<py::str>(obj) ? obj.cast<std::string>() : std::string(py::repr(obj));
}

// z, the input of an activation whose output is `a`, for the backward kernels: required (same
// shape and dtype as a) when the activation's derivative reads it, checked when given, else
// unused. Returns its data, or null when the activation does not read it.
template <class T>
const T* activation_input(py::handle z_obj, const Array<T>& a, const char* a_name,
                          ActivationSpec act, std::optional<Array<T>>& keep) {
  const ActivationInfo& info = act.info();
  if (z_obj.is_none()) {
    if (info.needs_z)
      throw py::value_error(cat("z: ", info.name, "'s derivative is read from its input; pass z, ",
                                "the ", shape_str(a), " array the activation was applied to"));
    return nullptr;
  }
  keep = input<T>(z_obj, "z", 2, "(batch, n)", a_name);
  expect_same_shape(*keep, "z", a, a_name);
  return info.needs_z ? keep->data() : nullptr;
}

}  // namespace denseprop::bindings
