"""Imports the compiled kernels built for this CPU.

One C++ source is compiled once per variant (CMakeLists.txt builds each as ``_core_<name>``).
`VARIANTS` says what each needs of the CPU, best first; import takes the first that the CPU
runs and that was built. ``DENSEPROP_VARIANT=<name>`` forces one (an error if this CPU cannot
run it or it was not built); ``DENSEPROP_PORTABLE=1`` is the same as
``DENSEPROP_VARIANT=portable``. On aarch64 only the portable module is built, and Eigen uses
NEON there (part of that architecture's baseline).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Any

# The x86-64 micro-architecture levels as GCC's -march=x86-64-v3 and -v4 assume them.
_X86_64_V2 = frozenset({"cx16", "lahf_lm", "popcnt", "sse3", "sse4_1", "sse4_2", "ssse3"})
_X86_64_V3 = _X86_64_V2 | {
    "avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "lzcnt", "movbe", "xsave", "ymm_state"
}  # fmt: skip

# name -> the CPU features it needs, as the compiled _cpu_features() names them (the "_state"
# entries: the OS saves those registers, read with XGETBV). Best first.
VARIANTS: dict[str, frozenset[str]] = {
    "x86-64-v4": _X86_64_V3
    | {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl", "zmm_state"},
    "x86-64-v3": _X86_64_V3,
    "portable": frozenset(),
}


def module_name(variant: str) -> str:
    """The compiled module of a variant: ``x86-64-v3`` -> ``denseprop._core_x86_64_v3``."""
    return "denseprop._core_" + variant.replace("-", "_")


def _built() -> frozenset[str]:
    """The variants compiled into this installation (others: another architecture, left out)."""
    return frozenset(n for n in VARIANTS if importlib.util.find_spec(module_name(n)) is not None)


def choose(features: frozenset[str], forced: str | None, built: frozenset[str]) -> tuple[str, str]:
    """The variant to load and why, on a CPU with ``features``, among those ``built``;
    ``forced``: the name the environment asks for, if any. ImportError if that one can't run."""
    if forced is not None:
        if forced not in VARIANTS:
            msg = f"DENSEPROP_VARIANT={forced!r}: expected one of {', '.join(VARIANTS)}"
            raise ImportError(msg)
        missing = VARIANTS[forced] - features
        if missing:
            msg = (
                f"DENSEPROP_VARIANT={forced!r}: this CPU lacks {', '.join(sorted(missing))}, "
                "which that variant needs"
            )
            raise ImportError(msg)
        if forced not in built:
            msg = f"DENSEPROP_VARIANT={forced!r}: that module was not built in this installation"
            raise ImportError(msg)
        return forced, f"DENSEPROP_VARIANT={forced}"
    # The portable variant needs nothing and is always built: the loop always returns.
    name = next(n for n, needs in VARIANTS.items() if needs <= features and n in built)
    return name, "the best variant built that this CPU runs"


def forced_variant() -> str | None:
    """The variant the environment asks for: DENSEPROP_VARIANT, or DENSEPROP_PORTABLE=1."""
    if os.environ.get("DENSEPROP_VARIANT", ""):
        return os.environ["DENSEPROP_VARIANT"]
    if os.environ.get("DENSEPROP_PORTABLE", "") not in ("", "0"):
        return "portable"
    return None


# The portable module is always built and runs anywhere: it reads the CPU.
cpu_features = frozenset(importlib.import_module(module_name("portable"))._cpu_features())
variant, reason = choose(cpu_features, forced_variant(), _built())
core: Any = importlib.import_module(module_name(variant))  # typed by _core.pyi


def build_info() -> dict[str, Any]:
    """The loaded module and why it was chosen, the CPU's features, Eigen's version, the SIMD
    instruction sets compiled in and the thread count of large matrix products."""
    compiled: dict[str, Any] = core.build_info()
    return {
        "module": compiled.pop("module"),
        "chosen_by": reason,
        "cpu_features": " ".join(sorted(cpu_features)),
        **compiled,
    }
