"""The package's shape, which issue reviews otherwise check by hand: no import cycle (imports
inside functions included), no module past ~450 lines but the NumPy twins, and adapters that
reach a Network only through its public API and `denseprop._seam`."""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "python" / "denseprop"
MODULES = {p.stem: p for p in PACKAGE.glob("*.py")}
ADAPTERS = ("_mlp", "estimators", "distributed", "model_file", "onnx_export", "torch")
LONGEST = 450


def imports(path):
    """The package's modules that ``path`` imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("denseprop."):
            found.add(node.module.split(".")[1])
    return found & set(MODULES)


def test_the_package_imports_no_module_in_a_cycle():
    graph = {name: imports(path) for name, path in MODULES.items()}
    state = {}

    def visit(name, path):
        state[name] = "open"
        for other in sorted(graph[name]):
            if state.get(other) == "open":
                pytest.fail(f"import cycle: {' -> '.join([*path, other])}")
            if other not in state:
                visit(other, [*path, other])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_past_the_length_of_one_concern(name):
    if name == "reference":
        pytest.skip("the NumPy twins: one statement of every kernel's math, kept together")
    lines = len(MODULES[name].read_text(encoding="utf-8").splitlines())
    assert lines <= LONGEST, f"{name}.py: {lines} lines"


@pytest.mark.parametrize("name", ADAPTERS)
def test_the_adapters_use_no_private_state_of_a_network(name):
    text = MODULES[name].read_text(encoding="utf-8")
    reaches = re.findall(r"\b(?:net|network_|self\.network_)\._(?!_)\w+", text)
    assert reaches == [], f"{name}.py reaches into a Network: {sorted(set(reaches))}"
    if name not in ("torch", "estimators", "_mlp"):  # those build Networks; the others take one
        assert "network" not in imports(MODULES[name])
