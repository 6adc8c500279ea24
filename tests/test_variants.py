"""Every compiled variant this CPU runs passes the kernel and Network tests (the loaded one runs
the whole suite; DENSEPROP_VARIANT forces each other one in a child process), and the chooser
takes the best variant the CPU runs, obeys the override and refuses what cannot run."""

import importlib.util
import os
import pathlib
import subprocess
import sys

import denseprop
import pytest
from denseprop._native import VARIANTS, choose, cpu_features, module_name

HERE = pathlib.Path(__file__).parent
# The tests that reach every kernel and Network method. Lint, typing, leaks, the sanitizer
# build and the estimators' scikit-learn checks do not depend on the instruction set.
KERNEL_AND_NETWORK_TESTS = sorted(
    {*HERE.glob("test_kernels*.py"), *HERE.glob("test_activation*.py"),
     *HERE.glob("test_network_*.py")}
    | {HERE / f"test_{name}.py" for name in (
        "bad_input", "extreme_values", "identities", "properties", "gradients_finite_differences",
        "per_sample", "dpsgd", "backprop", "concurrency", "threads", "fuzz", "bf16",
    ) if (HERE / f"test_{name}.py").exists()}
)  # fmt: skip
ALL = frozenset(VARIANTS)
V3, V4 = VARIANTS["x86-64-v3"], VARIANTS["x86-64-v4"]


def child(variant, *args, **env):
    """``python *args`` in a child process whose environment forces ``variant``."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DENSEPROP_")}
    environ.update(DENSEPROP_VARIANT=variant, **env)
    return subprocess.run(
        [sys.executable, *args], env=environ, capture_output=True, text=True, cwd=HERE.parent
    )


def built(variant):
    return importlib.util.find_spec(module_name(variant)) is not None


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_other_variant_passes_the_kernel_and_network_tests(variant):
    if variant == denseprop.build_info()["module"]:
        pytest.skip(f"{variant} is the loaded module: the whole suite runs on it")
    if not (VARIANTS[variant] <= cpu_features and built(variant)):
        pytest.skip(f"this CPU cannot run {variant}, or it was not built here")
    tests = [str(t) for t in KERNEL_AND_NETWORK_TESTS]
    result = child(variant, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests,
                   DENSEPROP_FUZZ_CASES="2000")  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout


def test_kernel_and_network_tests_are_found():
    names = {t.name for t in KERNEL_AND_NETWORK_TESTS}
    assert {"test_kernels_match_reference.py", "test_network_api.py", "test_fuzz.py"} <= names


def test_import_takes_the_best_variant_this_cpu_runs():
    best = next(v for v, needs in VARIANTS.items() if needs <= cpu_features and built(v))
    if {"DENSEPROP_VARIANT", "DENSEPROP_PORTABLE"} & set(os.environ):
        pytest.skip("a variant is forced in this run's environment")
    info = denseprop.build_info()
    assert info["module"] == best
    assert info["chosen_by"] == "the best variant built that this CPU runs"
    assert VARIANTS[best] <= set(info["cpu_features"].split())


def test_the_best_variant_wins_and_a_missing_feature_falls_back():
    assert choose(V4, None, ALL) == ("x86-64-v4", "the best variant built that this CPU runs")
    assert choose(V4 - {"zmm_state"}, None, ALL)[0] == "x86-64-v3"  # OS without AVX-512 state
    assert choose(V3 - {"fma"}, None, ALL)[0] == "portable"
    assert choose(frozenset(), None, ALL)[0] == "portable"


def test_a_variant_not_built_falls_back_to_the_next():
    assert choose(V4, None, frozenset({"portable", "x86-64-v3"}))[0] == "x86-64-v3"
    assert choose(V4, None, frozenset({"portable"}))[0] == "portable"


def test_the_override_is_obeyed():
    assert choose(V4, "portable", ALL) == ("portable", "DENSEPROP_VARIANT=portable")
    assert choose(V4, "x86-64-v3", ALL)[0] == "x86-64-v3"


@pytest.mark.parametrize(
    ("features", "forced", "built_here", "message"),
    [
        (V3, "x86-64-v4", ALL, r"lacks avx512bw, avx512cd, avx512dq, avx512f, avx512vl, zmm_state"),
        (V4 - {"zmm_state"}, "x86-64-v4", ALL, r"lacks zmm_state"),
        (V4, "x86-64-v9", ALL, r"expected one of x86-64-v4, x86-64-v3, portable"),
        (V4, "x86-64-v4", frozenset({"portable"}), r"not built in this installation"),
    ],
)
def test_an_override_that_cannot_run_is_refused(features, forced, built_here, message):
    with pytest.raises(ImportError, match=rf"DENSEPROP_VARIANT='{forced}': .*{message}"):
        choose(features, forced, built_here)


@pytest.mark.parametrize("variant", ["portable", "x86-64-v3"])
def test_environment_variable_forces_a_variant(variant):
    if not (VARIANTS[variant] <= cpu_features and built(variant)):
        pytest.skip(f"this CPU cannot run {variant}, or it was not built here")
    code = "import denseprop; i = denseprop.build_info(); print(i['module'], i['chosen_by'])"
    result = child(variant, "-c", code)
    assert result.stdout.split() == [variant, f"DENSEPROP_VARIANT={variant}"], result.stderr


def test_denseprop_portable_still_forces_the_portable_module():
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DENSEPROP_")}
    code = "import denseprop; print(denseprop.build_info()['module'])"
    environ["DENSEPROP_PORTABLE"] = "1"
    result = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "portable"


def test_a_forced_variant_the_cpu_lacks_fails_at_import_with_the_reason():
    result = child("x86-64-v9", "-c", "import denseprop")
    assert result.returncode != 0
    assert "DENSEPROP_VARIANT='x86-64-v9': expected one of" in result.stderr
