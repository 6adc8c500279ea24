"""The stub _core.pyi names exactly what both compiled modules hold, member by member."""

import ast
import importlib
from pathlib import Path

import denseprop
import pytest

STUB = Path(denseprop.__file__).with_name("_core.pyi")
MODULES = ["denseprop._core_portable", "denseprop._core_x86_64_v3"]
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


def module(name):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError:  # the x86-64-v3 module exists only on x86-64 builds
        pytest.skip(f"{name} was not built on this machine")


@pytest.mark.parametrize("name", MODULES)
def test_stub_names_equal_the_module(name):
    compiled = module(name)
    stub = stub_definitions()
    assert set(stub) - STUB_ONLY == {n for n in dir(compiled) if not n.startswith("__")}


@pytest.mark.parametrize("name", MODULES)
@pytest.mark.parametrize("cls", ["NetworkF32", "NetworkF64"])
def test_stub_members_equal_the_class(name, cls):
    compiled = getattr(module(name), cls)
    stub = stub_definitions()["_Network"]
    members = {n for n in vars(compiled) if not n.startswith("_") or n == "__init__"}
    assert stub == members


def test_package_is_typed():
    assert STUB.with_name("py.typed").exists()
