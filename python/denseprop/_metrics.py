"""How a Network scores its predictions: accuracy for the classifiers, R² for regression."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray


def check_targets(y: NDArray[Any], batch: int, outputs: int, labels: bool) -> None:
    """``y`` has ``batch`` rows, and ``outputs`` columns unless it holds ``labels``."""
    if y.shape[:1] != (batch,):
        msg = f"y: expected {batch} rows to match x, got shape {y.shape}"
        raise ValueError(msg)
    if not labels and y.shape not in ((batch, outputs), (batch,) * (outputs == 1)):
        msg = f"y: expected shape ({batch}, {outputs}), got {y.shape}"
        raise ValueError(msg)


def score(loss: str, out: NDArray[Any], y: NDArray[Any]) -> float:
    """The score of outputs ``out (batch, outputs)`` against ``y``.

    cross_entropy: the accuracy of the argmax against labels ``(batch,)`` or one-hot rows;
    binary_cross_entropy: the fraction of outputs on the right side of 0.5; mse and poisson: R²
    per output, then their mean (scikit-learn's ``r2_score``), an output whose target is
    constant scoring 1 when predicted exactly, else 0.
    """
    if loss == "cross_entropy":
        labels = y if y.ndim == 1 else y.argmax(axis=1)
        return float(np.mean(out.argmax(axis=1) == labels))
    if loss == "binary_cross_entropy":
        return float(np.mean((out > 0.5) == (y.reshape(out.shape) > 0.5)))
    y = y.reshape(out.shape).astype(np.float64)
    return r2(((y - out) ** 2).sum(axis=0), ((y - y.mean(axis=0)) ** 2).sum(axis=0))


def r2(residual: NDArray[np.float64], total: NDArray[np.float64]) -> float:
    """R² from each output's residual and total sums of squares ``(outputs,)``: their mean."""
    safe = np.where(total > 0, total, 1.0)
    per_output = np.where(total > 0, 1.0 - residual / safe, (residual == 0).astype(np.float64))
    return float(per_output.mean())
