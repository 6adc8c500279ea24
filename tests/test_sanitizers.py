"""tools/sanitize.sh --quick: the portable module built with AddressSanitizer and
UndefinedBehaviorSanitizer passes the tests that reach every kernel and Network method, and
a slice of the fuzz harness, without a single sanitizer report."""

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).parent.parent


def asan_runtime():
    gxx = shutil.which(os.environ.get("CXX", "g++"))
    if gxx is None:
        return None
    path = subprocess.run([gxx, "-print-file-name=libasan.so"], capture_output=True, text=True)
    return path.stdout.strip() if os.path.isabs(path.stdout.strip()) else None


@pytest.mark.skipif(
    os.environ.get("DENSEPROP_SANITIZED") == "1", reason="already inside a sanitized run"
)
def test_quick_sanitizer_run_is_clean():
    if asan_runtime() is None:
        pytest.skip("needs g++ with AddressSanitizer")
    result = subprocess.run(
        [str(ROOT / "tools" / "sanitize.sh"), "--quick"],
        env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True,
    )  # fmt: skip
    report = result.stdout[-6000:] + result.stderr[-3000:]
    assert result.returncode == 0, report
    assert "sanitize: clean, no sanitizer reports" in result.stdout, report
    assert " passed" in result.stdout, report
