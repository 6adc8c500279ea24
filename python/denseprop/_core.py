"""The compiled module this CPU runs (see `_native`), under the one name `_core.pyi` types.

The package imports the kernels from here; tests/test_typing.py checks that the stub names
exactly what every compiled variant holds.
"""

from ._native import core as _module

globals().update({k: v for k, v in vars(_module).items() if not k.startswith("__")})
