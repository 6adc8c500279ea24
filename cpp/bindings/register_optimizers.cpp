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

const SettingInfo* find_setting(std::string_view name) {
  for (const SettingInfo& row : setting_table)
    if (row.name == name) return &row;
  return nullptr;
}

// optimizer=, seed= and any setting of setting_table by its name; the others keep their
// defaults. The values are checked against their rows, then by the optimizer's own rules.
OptimizerSettings settings(const py::args& args, const py::kwargs& kwargs) {
  if (!args.empty()) throw py::type_error("OptimizerSettings: takes its settings by name only");
  OptimizerSettings s;
  py::object seed = py::none();
  for (const auto& [key, value] : kwargs) {
    const std::string name = py::str(key);
    if (name == "optimizer") {
      s.kind = parse_optimizer(name_argument(value));
    } else if (name == "seed") {
      seed = py::reinterpret_borrow<py::object>(value);
    } else if (const SettingInfo* row = find_setting(name)) {
      s[row->id] = row->flag ? double(bool(py::bool_(py::reinterpret_borrow<py::object>(value))))
                             : real(value, name.c_str());
    } else {
      throw py::type_error(cat("unexpected keyword argument '", name,
                               "': the optimizers' settings are ", names_of(setting_table)));
    }
  }
  check(s);
  // Only DP-SGD draws noise: the others keep no seed (and draw none from the OS).
  s.seed = optimizer_table[s.kind].per_sample ? noise_seed(seed) : 0;
  return s;
}

// A setting's value as Python holds it: a bool for a flag, else a float.
py::object as_python(const SettingInfo& row, double v) {
  return row.flag ? py::object(py::bool_(v != 0)) : py::object(py::float_(v));
}

// The settings as `Network.optimizer` shows them (and `Network.save` writes them): the
// optimizer's name and every setting; seed None unless the optimizer draws noise.
py::dict as_dict(const OptimizerSettings& s) {
  py::dict d;
  d["optimizer"] = std::string(optimizer_table[s.kind].name);
  for (const SettingInfo& row : setting_table)
    d[py::str(std::string(row.name))] = as_python(row, s[row.id]);
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
    py::list names;
    for (const Setting s : e.reads()) names.append(std::string(setting_table[std::size_t(s)].name));
    d["settings"] = names;
    out.append(d);
  }
  return out;
}

py::list optimizer_settings() {
  py::list out;
  for (const SettingInfo& row : setting_table) {
    py::dict d;
    d["name"] = std::string(row.name);
    d["default"] = as_python(row, row.default_value);
    d["flag"] = row.flag;
    d["low"] = row.low;
    d["high"] = row.high;
    d["low_open"] = row.low_open;
    d["help"] = std::string(row.help);
    out.append(d);
  }
  return out;
}

}  // namespace

void register_optimizers(py::module_& m) {
  // module_local: the portable and the x86-64-v3 module each bind the same C++ type, and one
  // process may load both.
  // module_local: the portable and the x86-64-v3 module each bind the same C++ type, and one
  // process may load both.
  py::class_<OptimizerSettings>(m, "OptimizerSettings", py::module_local(),
                                "Every setting of a Network's optimizer, by name (optimizer=, "
                                "seed= and those of optimizer_settings()); checked when made, "
                                "with the message users see.")
      .def(py::init(&settings))
      .def_property_readonly(
          "optimizer",
          [](const OptimizerSettings& s) { return std::string(optimizer_table[s.kind].name); })
      .def_readonly("seed", &OptimizerSettings::seed)
      .def(
          "__getattr__",
          [](const OptimizerSettings& s, const std::string& name) {
            const SettingInfo* row = find_setting(name);
            if (!row) throw py::attribute_error(cat("no optimizer setting '", name, "'"));
            return as_python(*row, s[row->id]);
          },
          "A setting's value by its name (s.lr, s.beta2, ...).")
      .def("as_dict", &as_dict, "The settings as a dict of keyword arguments of set_optimizer.");
  m.def("optimizers", &optimizers,
        "The optimizers, one dict each: name, per_sample (the step is formed from per-sample "
        "gradients), equation and settings (the names of those it reads: lr, weight_decay, "
        "max_grad_norm but for a per-sample one, then its own).");
  m.def("optimizer_settings", &optimizer_settings,
        "Every optimizer setting, one dict each: name, default, flag (true or false rather "
        "than a number), low, high, low_open (the range low..high, low excluded when "
        "low_open) and help.");
}

}  // namespace denseprop::bindings
