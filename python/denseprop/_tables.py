"""The families the compiled module declares once (activations, losses, optimizers), as Python
reads them: the names and properties of each entry, in the table's order."""

from __future__ import annotations

from typing import Any

from . import _core

#: name -> {needs_z, hidden, init ("glorot" or "he"), forward_equation, backward_equation}
ACTIVATIONS: dict[str, dict[str, Any]] = {a["name"]: a for a in _core.activations()}
#: The activations a hidden layer may have (softmax and exp are output activations only).
HIDDEN: tuple[str, ...] = tuple(n for n, a in ACTIVATIONS.items() if a["hidden"])
#: name -> {fused_output, default_output, labels, classifier, gradient_equation, kernel,
#: nonnegative_targets}
LOSSES: dict[str, dict[str, Any]] = {loss["name"]: loss for loss in _core.losses()}
#: name -> {per_sample, equation}
OPTIMIZERS: dict[str, dict[str, Any]] = {o["name"]: o for o in _core.optimizers()}
