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


def score(loss: str, out: NDArray[Any], y: NDArray[Any], sample_weight: Any = None) -> float:
    """The score of outputs ``out (batch, outputs)`` against ``y``, each sample weighted by
    ``sample_weight (batch,)`` (float64; None: 1 each), as scikit-learn's ``accuracy_score``
    and ``r2_score`` weigh them.

    cross_entropy: the accuracy of the argmax against labels ``(batch,)`` or one-hot rows;
    binary_cross_entropy: the fraction of outputs on the right side of 0.5; mse and poisson: R²
    per output, then their mean (scikit-learn's ``r2_score``), an output whose target is
    constant scoring 1 when predicted exactly, else 0.
    """
    if loss in ("cross_entropy", "binary_cross_entropy"):
        right, total = weighted_hits(loss, out, y, sample_weight)
        return float(right / total)
    y = y.reshape(out.shape).astype(np.float64)
    if sample_weight is None:
        return r2(((y - out) ** 2).sum(axis=0), ((y - y.mean(axis=0)) ** 2).sum(axis=0))
    w = sample_weight
    mean = (w @ y) / w.sum()
    return r2(w @ (y - out) ** 2, w @ (y - mean) ** 2)


def weighted_hits(
    loss: str, out: NDArray[Any], y: NDArray[Any], sample_weight: Any
) -> tuple[float, float]:
    """A classifier's accuracy as ``(right, total)``: the weight of the right predictions (for
    binary_cross_entropy, of the outputs on the right side of 0.5, each sample's output
    counting ``1 / outputs`` of it) and the total weight."""
    if loss == "cross_entropy":
        labels = y if y.ndim == 1 else y.argmax(axis=1)
        right = (out.argmax(axis=1) == labels)[:, None]
    else:
        right = (out > 0.5) == (y.reshape(out.shape) > 0.5)
    if sample_weight is None:
        return float(right.sum()), float(right.size)
    outputs = right.shape[1]
    return float(sample_weight @ right.sum(axis=1)), float(sample_weight.sum() * outputs)


def r2(residual: NDArray[np.float64], total: NDArray[np.float64]) -> float:
    """R² from each output's residual and total sums of squares ``(outputs,)``: their mean."""
    safe = np.where(total > 0, total, 1.0)
    per_output = np.where(total > 0, 1.0 - residual / safe, (residual == 0).astype(np.float64))
    return float(per_output.mean())
