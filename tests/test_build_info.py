"""build_info describes the loaded module; the thread count can be set and read back."""

import re

import denseprop
import pytest
from denseprop._native import BF16_KERNELS, VARIANTS


def test_build_info_keys_and_types():
    info = denseprop.build_info()
    assert set(info) == {
        "module", "chosen_by", "bf16_kernel", "bf16_chosen_by", "cpu_features", "eigen_version",
        "simd", "num_threads",
    }  # fmt: skip
    assert info["bf16_kernel"] in BF16_KERNELS
    assert BF16_KERNELS[info["bf16_kernel"]] <= set(info["cpu_features"].split())
    assert info["module"] in VARIANTS
    assert VARIANTS[info["module"]] <= set(info["cpu_features"].split())
    assert re.fullmatch(r"\d+\.\d+\.\d+", info["eigen_version"])
    assert isinstance(info["simd"], str) and info["simd"]
    assert type(info["num_threads"]) is int and info["num_threads"] >= 1
    assert info["num_threads"] == denseprop.get_num_threads()


# What each x86-64 variant's compiler flags must have switched on.
SIMD = {
    "x86-64-v3": {"AVX2", "FMA"},
    "x86-64-v4": {"AVX2", "FMA", "AVX512F", "AVX512BW", "AVX512CD", "AVX512DQ", "AVX512VL"},
}


def test_the_loaded_module_uses_its_instruction_sets():
    info = denseprop.build_info()
    if info["module"] not in SIMD:
        pytest.skip(f"the {info['module']} module is loaded")
    assert SIMD[info["module"]] <= set(info["simd"].split(", "))


def test_set_num_threads_round_trips(restore_threads):
    for n in [1, 3, 2]:
        denseprop.set_num_threads(n)
        assert denseprop.get_num_threads() == n
        assert denseprop.build_info()["num_threads"] == n


@pytest.mark.parametrize("n", [0, -1, 257])
def test_set_num_threads_refuses_non_positive(restore_threads, n):
    with pytest.raises(ValueError, match=rf"\bn\b.*{n}"):
        denseprop.set_num_threads(n)
