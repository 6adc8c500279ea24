"""The documentation cannot drift from the library: the site builds with warnings as errors
and documents every public name, and every ```python block of the README and of each page
runs, in order, in one namespace per page.

A page whose code needs an optional package names it in its first line,
``<!-- requires: torch -->``, and is skipped without it. The examples write their files
(``digits.npz``, ...) into a temporary folder."""

import ast
import contextlib
import importlib.util
import io
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import denseprop
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = [README, *sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts)]
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)
REQUIRES = re.compile(r"\A<!-- requires: (.*?) -->\n")
# The modules whose public names (their __all__) the API reference must document.
MODULES = ["datasets", "backprop", "distributed", "torch", "onnx_export", "model_file", "reference"]

if not README.exists():
    pytest.skip("the sources are not beside the tests", allow_module_level=True)


def blocks(page):
    return BLOCK.findall(page.read_text(encoding="utf-8"))


def requirements(page):
    found = REQUIRES.match(page.read_text(encoding="utf-8"))
    return [name.strip() for name in found.group(1).split(",")] if found else []


def name_of(page):
    return str(page.relative_to(ROOT))


def test_the_readme_and_the_pages_have_code():
    assert blocks(README)
    assert sum(len(blocks(page)) for page in PAGES) >= 30


# Each page runs in a fresh interpreter, as if pasted into one: nothing another test imported
# can stand in for an import the page forgot, and MPI (initialised once per process) runs as a
# single rank. Warnings are errors, as in the suite (pyproject.toml).
RUNNER = """
import json, sys
namespace = {"__name__": "__main__"}
for name, code in json.load(sys.stdin):
    exec(compile(code, name, "exec"), namespace)
"""
WARNINGS = ["-W", "error", "-W", "ignore:invalid value encountered in matmul:RuntimeWarning"]


@pytest.mark.parametrize("page", PAGES, ids=[name_of(p) for p in PAGES])
def test_every_python_block_of_the_page_runs(page, tmp_path):
    for module in requirements(page):
        pytest.importorskip(module)
    code = [(f"{name_of(page)}, block {n}", block) for n, block in enumerate(blocks(page), 1)]
    result = subprocess.run([sys.executable, *WARNINGS, "-c", RUNNER], input=json.dumps(code),
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_the_printed_trace_on_the_page_is_what_the_library_prints():
    page = DOCS / "backprop-in-matrix-form.md"
    text = page.read_text(encoding="utf-8")
    shown = re.search(r"prints\n\n((?:    .*\n)+)", text).group(1)
    namespace: dict = {}
    code = blocks(page)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for block in code[:2]:
            exec(block, namespace)
    expected = "\n".join(line[4:] for line in shown.rstrip("\n").split("\n"))
    assert out.getvalue().rstrip("\n") == expected


def public_names():
    """``denseprop.__all__`` and the estimators, then each module's ``__all__``, read from its
    source so that documenting torch or mpi4py's modules does not import them here."""
    names = [f"denseprop.{name}" for name in [*denseprop.__all__, "MLPClassifier", "MLPRegressor"]]
    package = Path(denseprop.__file__).parent
    for module in MODULES:
        tree = ast.parse((package / f"{module}.py").read_text(encoding="utf-8"))
        exported = next(
            node.value
            for node in tree.body
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "__all__"
        )
        names += [f"denseprop.{module}.{ast.literal_eval(item)}" for item in exported.elts]
    return names


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The HTML site, built as ``sphinx-build -W -n`` builds it: any warning fails, and every
    reference to a denseprop name must resolve."""
    for module in ("sphinx", "myst_parser"):
        assert importlib.util.find_spec(module), f'{module} is missing: pip install ".[docs]"'
    out = tmp_path_factory.mktemp("site")
    command = [sys.executable, "-m", "sphinx", "-W", "-n", "--keep-going", "-q", "-b", "html",
               "-d", str(out / "doctrees"), str(DOCS), str(out / "html")]  # fmt: skip
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stdout + result.stderr
    return out / "html", seconds


def test_the_site_builds_with_warnings_as_errors_in_well_under_a_minute(site):
    html, seconds = site
    assert (html / "index.html").exists() and (html / "guide" / "network.html").exists()
    assert seconds < 60, f"sphinx-build took {seconds:.0f} s"


def test_the_api_reference_documents_every_public_name(site):
    html, _ = site
    page = (html / "api.html").read_text(encoding="utf-8")
    missing = [name for name in public_names() if f'id="{name}"' not in page]
    assert not missing
