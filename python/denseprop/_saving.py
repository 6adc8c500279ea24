"""A Network as a ``.npz`` file: weights and biases, optimizer state and the JSON configuration."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

FORMAT = 1  # version of the saved file layout


def state(
    config: dict[str, Any],
    optimizer: dict[str, Any],
    layers: Sequence[tuple[NDArray[Any], NDArray[Any]]],
    first: NDArray[Any],
    second: NDArray[Any],
    steps: int,
    loss_curve: Sequence[float],
    validation_scores: Sequence[float],
) -> dict[str, NDArray[Any]]:
    """The arrays of the file: ``config`` (JSON), ``W0, b0, ...``, the optimizer's state buffers
    and steps, the curves."""
    header = {"format": FORMAT, "network": config, "optimizer": optimizer}
    out = {"config": np.array(json.dumps(header))}
    for l, (w, b) in enumerate(layers):
        out[f"W{l}"], out[f"b{l}"] = w, b
    out["optimizer_first"], out["optimizer_second"] = first, second
    out["optimizer_steps"] = np.array(steps)
    out["loss_curve"] = np.array(loss_curve, dtype=np.float64)
    out["validation_scores"] = np.array(validation_scores, dtype=np.float64)
    return out


def header(saved: dict[str, NDArray[Any]]) -> dict[str, Any]:
    """The JSON configuration of a file, its format checked."""
    config: dict[str, Any] = json.loads(str(saved["config"]))
    if config.get("format") != FORMAT:
        msg = f"path: saved in format {config.get('format')}, expected {FORMAT}"
        raise ValueError(msg)
    return config


def fill(
    saved: dict[str, NDArray[Any]], layers: Sequence[tuple[NDArray[Any], NDArray[Any]]]
) -> None:
    """Copy the file's ``W0, b0, ...`` into ``layers`` (views of a buffer laid out as params)."""
    for l, (w, b) in enumerate(layers):
        w[...], b[...] = saved[f"W{l}"], saved[f"b{l}"]
