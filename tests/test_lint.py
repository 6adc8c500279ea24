"""The repository's linters pass: ruff (pyproject.toml), clang-format (.clang-format) on the
C++, and mypy --strict (pyproject.toml) on the package. They come with the test extras."""

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CPP = sorted(p for d in ("cpp/include", "cpp/bindings") for p in (ROOT / d).rglob("*.[ch]pp"))

if not (ROOT / "pyproject.toml").exists():
    pytest.skip("the sources are not beside the tests", allow_module_level=True)


def run(*command):
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def tool(name):
    """The console script installed beside this Python (the test extras), else on PATH."""
    beside = Path(sysconfig.get_path("scripts")) / name
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f'{name} is missing: pip install ".[test]"'
    return found


def test_ruff():
    run(sys.executable, "-m", "ruff", "check", "--no-cache", ".")


def test_clang_format():
    assert CPP
    run(tool("clang-format"), "--dry-run", "--Werror", *map(str, CPP))


def test_mypy_strict():
    run(sys.executable, "-m", "mypy", "--no-incremental")
