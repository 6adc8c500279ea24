"""The internal interface between `Network` and the package's adapters.

The estimators, data-parallel training (`distributed`), model files, ONNX export and the
PyTorch bridge use a Network through its public API and through `seam_of(net)`, never through
its private attributes. The seam is not public API: it changes with the package. It names what
the adapters need and nothing more:

- ``core``: the compiled network: the parameters, gradient and optimizer buffers in C++ and the
  one training loop (``run_epochs``), whose methods check their own arguments;
- ``lock``: held while the network is read or changed as a whole (a save, an export, a step);
- ``config``: the constructor's arguments as the model file stores them (a copy);
- ``inputs(x)``, ``targets(y)``: arrays as the kernels read them, coerced to the network's
  dtype without changing kind (``x`` may be scipy.sparse);
- ``restore(snapshot)``: parameters, optimizer and curves put back as a `_training.Snapshot`
  holds them.

This module imports nothing of the package's, so that no adapter needs to import `network`.
"""

from __future__ import annotations

import threading
from typing import Any, Callable


class Seam:
    """What the adapters may use of one Network beyond its public API (see the module)."""

    __slots__ = ("_config", "core", "inputs", "lock", "restore", "targets")

    def __init__(self, core: Any, lock: threading.RLock, config: dict[str, Any],
                 inputs: Callable[[Any], Any], targets: Callable[[Any], Any],
                 restore: Callable[[Any], None]) -> None:  # fmt: skip
        self.core, self.lock, self._config = core, lock, config
        self.inputs, self.targets, self.restore = inputs, targets, restore

    @property
    def config(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, list) else v for k, v in self._config.items()}


def seam_of(net: Any) -> Seam:
    """The seam of ``net``, a `Network` (built with it, at its construction)."""
    seam: Seam = net._seam
    return seam
