"""build_info describes the loaded module; the thread count can be set and read back."""

import os
import re
import subprocess
import sys

import denseprop
import pytest


def test_build_info_keys_and_types():
    info = denseprop.build_info()
    assert set(info) == {"module", "eigen_version", "simd", "num_threads"}
    assert info["module"] in {"x86-64-v3", "portable"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", info["eigen_version"])
    assert isinstance(info["simd"], str) and info["simd"]
    assert type(info["num_threads"]) is int and info["num_threads"] >= 1
    assert info["num_threads"] == denseprop.get_num_threads()


def test_x86_64_v3_module_uses_avx2_and_fma():
    info = denseprop.build_info()
    if info["module"] != "x86-64-v3":
        pytest.skip("the portable module is loaded")
    assert {"AVX2", "FMA"} <= set(info["simd"].split(", "))


def test_set_num_threads_round_trips(restore_threads):
    for n in [1, 3, 2]:
        denseprop.set_num_threads(n)
        assert denseprop.get_num_threads() == n
        assert denseprop.build_info()["num_threads"] == n


@pytest.mark.parametrize("n", [0, -1, 257])
def test_set_num_threads_refuses_non_positive(restore_threads, n):
    with pytest.raises(ValueError, match=rf"\bn\b.*{n}"):
        denseprop.set_num_threads(n)


def test_environment_variable_forces_the_portable_module():
    env = {**os.environ, "DENSEPROP_PORTABLE": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import denseprop; print(denseprop.build_info()['module'])",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "portable"
