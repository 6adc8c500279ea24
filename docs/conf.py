"""Sphinx configuration: the user guide in Markdown (MyST), the API reference from the
docstrings (NumPy style). Build with ``sphinx-build -W docs docs/_build/html``."""

import sys
from pathlib import Path

# A checkout without an installed denseprop documents its sources (with the compiled module
# copied or built beside them); an installed one is found first otherwise.
sys.path.append(str(Path(__file__).resolve().parents[1] / "python"))

import denseprop

project = "denseprop"
release = version = denseprop.__version__
exclude_patterns = ["_build"]

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]
source_suffix = {".md": "markdown"}
myst_heading_anchors = 3  # [text](page.md#a-heading) links, as on GitHub

# torch is optional and mpi4py needs an MPI library: their modules are documented without them.
autodoc_mock_imports = ["torch", "mpi4py"]
autodoc_member_order = "bysource"
autodoc_typehints_format = "short"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
# The docstrings' types are prose ("ndarray of float64, shape (1797, 64)", {"sgd", "adam"}):
# shown as written, not parsed into references.
napoleon_use_param = False
napoleon_use_rtype = False

# No intersphinx (the build runs offline), so names from NumPy, the standard library and the
# optional packages cannot resolve; every reference to denseprop's own names must.
nitpicky = True
EXTERNAL_MODULES = (
    r"numpy|np|typing|collections\.abc|types|os|io|mpi4py|MPI|torch|nn|sklearn|scipy|onnx"
)
EXTERNAL_NAMES = (
    r"NDArray|ArrayLike|Any|Callable|Iterator|Sequence|Mapping|TextIO|TracebackType|"
    r"BaseException|Exception|object|str|int|float|bool|bytes|dict|list|tuple|None|type|.*\.Comm"
)
nitpick_ignore_regex = [
    ("py:.*", rf"({EXTERNAL_MODULES})(\..*)?"),
    ("py:class", rf"({EXTERNAL_NAMES})"),
    ("py:class", r"denseprop\.model_file\._Net"),  # the Network class, a type variable there
]

html_theme = "alabaster"
html_title = f"denseprop {release}"
html_static_path: list[str] = []


def literal_blocks(app, what, name, obj, options, lines):
    """Show the docstrings' indented blocks (equations, layouts, code) verbatim.

    The docstrings indent such a block under the paragraph that introduces it, as plain text
    would; reST reads that as a quotation, in which ``|z|`` is a substitution. The compiled
    functions' docstrings (pybind11's) are plain text throughout: everything after the summary
    is shown as written.
    """
    if type(obj).__name__ == "builtin_function_or_method":
        while lines and not lines[-1].strip():
            lines.pop()
        summary = lines.index("") if "" in lines else len(lines)
        body = lines[summary + 1 :]
        lines[summary:] = ["", "::", "", *("    " + line for line in body)] if body else []
        return
    indent = lambda line: len(line) - len(line.lstrip())  # noqa: E731
    i = 2
    while i < len(lines):
        previous = lines[i - 2]
        opens_block = lines[i - 1] == "" and lines[i].strip() and previous.strip()
        if opens_block and indent(lines[i]) > indent(previous) and not previous.endswith("::"):
            lines[i - 1 : i] = ["", "::", ""]
            i += 2
        i += 1


def prose_properties(app, what, name, obj, options, lines):
    """Napoleon reads a property's first line as "type: description"; these are prose."""
    if what == "property":
        app.env.temp_data[f"property:{name}"] = list(lines)


def restore_properties(app, what, name, obj, options, lines):
    saved = app.env.temp_data.pop(f"property:{name}", None)
    if saved is not None:
        lines[:] = saved


def setup(app):
    # napoleon listens at the default priority, 500: the first two run before it, the last after
    app.connect("autodoc-process-docstring", literal_blocks, priority=400)
    app.connect("autodoc-process-docstring", prose_properties, priority=410)
    app.connect("autodoc-process-docstring", restore_properties, priority=600)
