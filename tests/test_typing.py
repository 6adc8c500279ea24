"""The stub _core.pyi names exactly what every compiled variant holds, member by member."""

import ast
import importlib
from pathlib import Path

import denseprop
import pytest
from denseprop._native import VARIANTS, cpu_features, module_name

STUB = Path(denseprop.__file__).with_name("_core.pyi")
# The class the stub types NetworkF32 and NetworkF64 with; not in the modules.
STUB_ONLY = {"_Network"}


def stub_definitions():
    """{name: member names} of the stub's top-level functions (no members) and classes."""
    tree = ast.parse(STUB.read_text())
    names = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            names[node.name] = set()
        elif isinstance(node, ast.ClassDef):
            names[node.name] = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
    return names


def module(variant):
    if not VARIANTS[variant] <= cpu_features:  # importing it could raise SIGILL
        pytest.skip(f"this CPU cannot run the {variant} module")
    try:
        return importlib.import_module(module_name(variant))
    except ModuleNotFoundError:  # the x86-64 variants exist only on x86-64 builds
        pytest.skip(f"the {variant} module was not built on this machine")


@pytest.mark.parametrize("variant", VARIANTS)
def test_stub_names_equal_the_module(variant):
    compiled = module(variant)
    stub = stub_definitions()
    assert set(stub) - STUB_ONLY == {n for n in dir(compiled) if not n.startswith("__")}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("cls", ["NetworkF32", "NetworkF64"])
def test_stub_members_equal_the_class(variant, cls):
    compiled = getattr(module(variant), cls)
    stub = stub_definitions()["_Network"]
    members = {n for n in vars(compiled) if not n.startswith("_") or n == "__init__"}
    assert stub == members


def test_package_is_typed():
    assert STUB.with_name("py.typed").exists()
