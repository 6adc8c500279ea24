"""The families the compiled module declares once (activations, losses, optimizers), as Python
reads them: the names and properties of each entry, in the table's order."""

from __future__ import annotations

import inspect
from typing import Any

from . import _core

#: name -> {needs_z, hidden, init ("glorot" or "he"), forward_equation, backward_equation}
ACTIVATIONS: dict[str, dict[str, Any]] = {a["name"]: a for a in _core.activations()}
#: The activations a hidden layer may have (softmax and exp are output activations only).
HIDDEN: tuple[str, ...] = tuple(n for n, a in ACTIVATIONS.items() if a["hidden"])
#: name -> {fused_output, default_output, labels, classifier, gradient_equation, kernel,
#: nonnegative_targets}
LOSSES: dict[str, dict[str, Any]] = {loss["name"]: loss for loss in _core.losses()}
#: name -> {per_sample, equation, settings (the names of the settings it reads)}
OPTIMIZERS: dict[str, dict[str, Any]] = {o["name"]: o for o in _core.optimizers()}
#: name -> {equation}: `Network.fit`'s learning-rate schedules (``lr_schedule``), per step.
LR_SCHEDULES: dict[str, dict[str, Any]] = {s["name"]: s for s in _core.lr_schedules()}
#: name -> {default, flag, low, high, low_open, help}: every optimizer setting, each declared once
#: in C++ (optimizers.hpp); `set_optimizer`, `fit`, the estimators and the model file read it.
OPTIMIZER_SETTINGS: dict[str, dict[str, Any]] = {s["name"]: s for s in _core.optimizer_settings()}


def setting_parameters(*, skip: tuple[str, ...] = ()) -> list[inspect.Parameter]:
    """Keyword-only parameters of the optimizer settings but ``skip``, defaults from the table,
    for the signatures of the methods that take them through ``**settings``."""
    kind = inspect.Parameter.KEYWORD_ONLY
    return [inspect.Parameter(name, kind, default=s["default"],
                              annotation="bool" if s["flag"] else "float")
            for name, s in OPTIMIZER_SETTINGS.items() if name not in skip]  # fmt: skip


def settings_help() -> str:
    """The settings as a NumPy docstring's parameter list: name, default and one line each."""
    return "\n".join(f"{name} : {'bool' if s['flag'] else 'float'}, default {s['default']}\n"
                     f"    {s['help']}." for name, s in OPTIMIZER_SETTINGS.items())  # fmt: skip
