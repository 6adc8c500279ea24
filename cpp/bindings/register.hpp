// One registration function per family of bindings, all called from module.cpp.
#pragma once

#include <pybind11/pybind11.h>

namespace denseprop::bindings {

void register_activations(pybind11::module_& m);
void register_bf16(pybind11::module_& m);
void register_dense(pybind11::module_& m);
void register_losses(pybind11::module_& m);
void register_network(pybind11::module_& m);
void register_optimizers(pybind11::module_& m);
void register_training(pybind11::module_& m);     // after register_network: adds to its classes
void register_distributed(pybind11::module_& m);  // after register_network: adds to its classes

}  // namespace denseprop::bindings
