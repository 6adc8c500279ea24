"""The whole suite again on the portable module (SSE2 only), which DENSEPROP_PORTABLE forces:
both compiled modules ship, so both must pass."""

import os
import pathlib
import subprocess
import sys

import denseprop
import pytest


@pytest.mark.skipif(
    denseprop.build_info()["module"] == "portable", reason="the portable module is already loaded"
)
def test_suite_passes_on_the_portable_module():
    here = pathlib.Path(__file__).parent
    env = {**os.environ, "DENSEPROP_PORTABLE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(here), "-q", "-p", "no:cacheprovider",
         f"--ignore={__file__}"],
        env=env, capture_output=True, text=True, cwd=here.parent,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
