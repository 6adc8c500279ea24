"""The docs' code runs: every ```python block of a page, in order, in one namespace, so a page
cannot drift from the library it describes."""

import contextlib
import io
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted(DOCS.glob("*.md"))
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def blocks(page):
    return BLOCK.findall(page.read_text(encoding="utf-8"))


def test_there_are_pages_with_code():
    assert PAGES and all(blocks(page) for page in PAGES)


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_python_block_of_the_page_runs(page):
    namespace = {"__name__": f"docs.{page.stem}"}
    for number, code in enumerate(blocks(page), 1):
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(code, f"{page.name}, block {number}", "exec"), namespace)


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
