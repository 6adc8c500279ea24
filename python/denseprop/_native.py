"""Imports the compiled kernels built for this CPU.

The package ships one source compiled twice: `_core_x86_64_v3` (AVX2 and FMA) and
`_core_portable`. The fast one is taken when the CPU runs it, unless the environment
variable DENSEPROP_PORTABLE is set to a non-empty value other than "0".
"""

import importlib
import os
from typing import Any

from . import _core_portable


def _choose() -> Any:  # a compiled module, typed by _core.pyi
    if os.environ.get("DENSEPROP_PORTABLE", "") not in ("", "0"):
        return _core_portable
    if not _core_portable._cpu_supports_x86_64_v3():
        return _core_portable
    try:
        return importlib.import_module("denseprop._core_x86_64_v3")
    except ModuleNotFoundError:  # built on a host that is not x86-64
        return _core_portable


core = _choose()
