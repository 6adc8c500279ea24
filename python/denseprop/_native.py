"""Imports the compiled kernels built for this CPU.

One C++ source is compiled once per variant (CMakeLists.txt builds each as ``_core_<name>``).
`VARIANTS` says what each needs of the CPU, best first; import takes the first that the CPU
runs and that was built. ``DENSEPROP_VARIANT=<name>`` forces one (an error if this CPU cannot
run it or it was not built); ``DENSEPROP_PORTABLE=1`` is the same as
``DENSEPROP_VARIANT=portable``. On aarch64 only the portable module is built, and Eigen uses
NEON there (part of that architecture's baseline).

The bfloat16 products (``compute_dtype="bfloat16"``) have kernels of their own, compiled into
every x86-64 variant: `BF16_KERNELS` says what each needs, best first, and import takes the
first this CPU and OS run; ``DENSEPROP_BF16_KERNEL=<name>`` forces one.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Any, Callable

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


# name -> the CPU features it needs; AMX also needs the OS to grant the tile state, asked for
# when it is chosen. Best first: emulated needs nothing.
BF16_KERNELS: dict[str, frozenset[str]] = {
    "amx": frozenset({"amx_tile", "amx_bf16"}),
    "avx512_bf16": frozenset({"avx512_bf16", "avx512f", "zmm_state"}),
    "emulated": frozenset(),
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


def choose_bf16(
    features: frozenset[str], forced: str | None, request_amx: Callable[[], str]
) -> tuple[str, str]:
    """The bf16 kernel to use and why, on a CPU with ``features``; ``forced``: the name the
    environment asks for, if any; ``request_amx()`` asks the OS for the tile state ("" when
    granted, else why not). ImportError if the forced one can't run."""
    for name, needs in BF16_KERNELS.items():
        if forced is not None and name != forced:
            continue
        missing = needs - features
        refused = "" if missing or name != "amx" else request_amx()
        if forced is None and not missing and not refused:
            return name, "the best bf16 kernel this CPU and OS run"
        if forced is not None:
            why = f"this CPU lacks {', '.join(sorted(missing))}" if missing else refused
            if why:
                msg = f"DENSEPROP_BF16_KERNEL={forced!r}: {why}"
                raise ImportError(msg)
            return name, f"DENSEPROP_BF16_KERNEL={forced}"
    msg = f"DENSEPROP_BF16_KERNEL={forced!r}: expected one of {', '.join(BF16_KERNELS)}"
    raise ImportError(msg)


# The portable module is always built and runs anywhere: it reads the CPU.
cpu_features = frozenset(importlib.import_module(module_name("portable"))._cpu_features())
variant, reason = choose(cpu_features, forced_variant(), _built())
core: Any = importlib.import_module(module_name(variant))  # typed by _core.pyi
bf16_kernel, bf16_reason = choose_bf16(
    cpu_features, os.environ.get("DENSEPROP_BF16_KERNEL") or None, core._request_amx
)
core._set_bf16_kernel(bf16_kernel)


def build_info() -> dict[str, Any]:
    """The loaded module and why it was chosen, the bf16 kernel and why, the CPU's features,
    Eigen's version, the SIMD instruction sets compiled in and the thread count of large matrix
    products."""
    compiled: dict[str, Any] = core.build_info()
    return {
        "module": compiled.pop("module"),
        "chosen_by": reason,
        "bf16_kernel": core._bf16_kernel(),
        "bf16_chosen_by": bf16_reason,
        "cpu_features": " ".join(sorted(cpu_features)),
        **compiled,
    }
