// The optimizer settings, bound by name as one struct, and the optimizers' table.
#include "denseprop/optimizers.hpp"

#include <random>

#include "arrays.hpp"
#include "register.hpp"

namespace denseprop::bindings {
namespace {

// DP-SGD's noise seed: an int in [0, 2**64), or None for a fresh one from the OS's entropy.
std::uint64_t noise_seed(py::handle obj) {
  if (obj.is_none()) {
    std::random_device entropy;
    return (std::uint64_t(entropy()) << 32 | entropy()) >> 1;  // < 2**63
  }
  if (!is_integer(obj))
    throw py::type_error(cat("seed: expected an integer or None, got ", type_name(obj)));
  const py::int_ value = py::reinterpret_borrow<py::object>(obj);
  if (value < py::int_(0) || value >= py::int_(py::module_::import("builtins").attr("pow")(2, 64)))
    throw py::value_error(cat("seed: must be in [0, 2**64), got ", std::string(py::str(obj))));
  return value.cast<std::uint64_t>();
}

OptimizerSettings settings(py::handle kind, py::handle lr, py::handle momentum, py::handle nesterov,
                           py::handle beta1, py::handle beta2, py::handle eps,
                           py::handle weight_decay, py::handle clip_norm,
                           py::handle noise_multiplier, py::handle seed) {
  OptimizerSettings s;
  s.kind = parse_optimizer(name_argument(kind));
  s.lr = real(lr, "lr");
  s.momentum = real(momentum, "momentum");
  s.nesterov = py::bool_(py::reinterpret_borrow<py::object>(nesterov));
  s.beta1 = real(beta1, "beta1");
  s.beta2 = real(beta2, "beta2");
  s.eps = real(eps, "eps");
  s.weight_decay = real(weight_decay, "weight_decay");
  s.clip_norm = real(clip_norm, "clip_norm");
  s.noise_multiplier = real(noise_multiplier, "noise_multiplier");
  check(s);
  // Only DP-SGD draws noise: the others keep no seed (and draw none from the OS).
  s.seed = optimizer_table[s.kind].per_sample ? noise_seed(seed) : 0;
  return s;
}

// The settings as `Network.optimizer` shows them (and `Network.save` writes them): the
// optimizer's name and every hyperparameter; seed None unless the optimizer draws noise.
py::dict as_dict(const OptimizerSettings& s) {
  py::dict d;
  d["optimizer"] = std::string(optimizer_table[s.kind].name);
  d["lr"] = s.lr;
  d["momentum"] = s.momentum;
  d["nesterov"] = s.nesterov;
  d["beta1"] = s.beta1;
  d["beta2"] = s.beta2;
  d["eps"] = s.eps;
  d["weight_decay"] = s.weight_decay;
  d["clip_norm"] = s.clip_norm;
  d["noise_multiplier"] = s.noise_multiplier;
  d["seed"] = optimizer_table[s.kind].per_sample ? py::object(py::int_(s.seed)) : py::none();
  return d;
}

py::list optimizers() {
  py::list out;
  for (const OptimizerInfo& e : optimizer_table) {
    py::dict d;
    d["name"] = std::string(e.name);
    d["per_sample"] = e.per_sample;
    d["equation"] = std::string(e.equation);
    out.append(d);
  }
  return out;
}

}  // namespace

void register_optimizers(py::module_& m) {
  // module_local: the portable and the x86-64-v3 module each bind the same C++ type, and one
  // process may load both.
  py::class_<OptimizerSettings>(m, "OptimizerSettings", py::module_local(),
                                "Every setting of a Network's optimizer, by name; checked when "
                                "made, with the message users see.")
      .def(py::init(&settings), py::kw_only(), py::arg("optimizer") = "sgd", py::arg("lr") = 0.01,
           py::arg("momentum") = 0.0, py::arg("nesterov") = false, py::arg("beta1") = 0.9,
           py::arg("beta2") = 0.999, py::arg("eps") = 1e-8, py::arg("weight_decay") = 0.0,
           py::arg("clip_norm") = 1.0, py::arg("noise_multiplier") = 1.0,
           py::arg("seed") = py::none())
      .def_property_readonly(
          "optimizer",
          [](const OptimizerSettings& s) { return std::string(optimizer_table[s.kind].name); })
      .def_readonly("lr", &OptimizerSettings::lr)
      .def_readonly("momentum", &OptimizerSettings::momentum)
      .def_readonly("nesterov", &OptimizerSettings::nesterov)
      .def_readonly("beta1", &OptimizerSettings::beta1)
      .def_readonly("beta2", &OptimizerSettings::beta2)
      .def_readonly("eps", &OptimizerSettings::eps)
      .def_readonly("weight_decay", &OptimizerSettings::weight_decay)
      .def_readonly("clip_norm", &OptimizerSettings::clip_norm)
      .def_readonly("noise_multiplier", &OptimizerSettings::noise_multiplier)
      .def_readonly("seed", &OptimizerSettings::seed)
      .def("as_dict", &as_dict, "The settings as a dict of keyword arguments of set_optimizer.");
  m.def("optimizers", &optimizers,
        "The optimizers, one dict each: name, per_sample (the step is formed from per-sample "
        "gradients) and equation.");
}

}  // namespace denseprop::bindings
