"""A Network's loss curve as a matplotlib figure (matplotlib is imported only here)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np


def loss_curve_figure(
    loss_curve: Sequence[float],
    validation_scores: Sequence[float],
    *,
    title: str,
    loss: str,
    score: str,
    path: str | os.PathLike[str] | None,
) -> Any:
    """The training loss per epoch (log scale) and the validation score on a second axis."""
    try:
        from matplotlib.figure import Figure
    except ImportError as e:
        msg = 'plot_loss_curve needs matplotlib: pip install "denseprop[plot]"'
        raise ImportError(msg) from e
    if not loss_curve:
        msg = "plot_loss_curve: nothing to plot, fit the network first"
        raise ValueError(msg)
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    epochs = np.arange(1, len(loss_curve) + 1)
    ax.plot(epochs, loss_curve, color="C0", label="training loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{loss} (mean per sample)")
    ax.set_yscale("log")
    if validation_scores:
        twin = ax.twinx()
        twin.plot(epochs[: len(validation_scores)], validation_scores, color="C1",
                  label="validation score")  # fmt: skip
        twin.set_ylabel(score)
        fig.legend(loc="upper right")
    ax.set_title(title, fontsize=9)
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
