"""The argument checks that `Network` and the scikit-learn estimators share, with their messages.

What the compiled module must refuse (sizes, activation names, the loss and output pairing,
the optimizer's hyperparameters) it refuses itself, with the message users see; these are the
checks of what only Python sees: counts, flags and seeds of the training loop, and the
estimators' parameters, which scikit-learn names its own way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NoReturn

import numpy as np
from numpy.typing import NDArray


def is_int(value: object) -> bool:
    """An int of Python or NumPy, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_real(value: object) -> bool:
    """A finite int or float of Python or NumPy, not a bool."""
    return (is_int(value) or isinstance(value, (float, np.floating))) and math.isfinite(
        float(value)  # type: ignore[arg-type]
    )


def fail(name: str, expected: str, value: object) -> NoReturn:
    """Raise ``ValueError("name: expected ..., got value")``, the estimators' form."""
    msg = f"{name}: expected {expected}, got {value!r}"
    raise ValueError(msg)


def name(value: str, argument: str, allowed: Sequence[str]) -> str:
    """``value`` if it is one of ``allowed``, else a ValueError listing them."""
    if value not in allowed:
        msg = f"{argument}: unknown {value!r}, expected one of {', '.join(allowed)}"
        raise ValueError(msg)
    return value


def number(
    value: Any, argument: str, low: float = 0.0, high: float = math.inf, low_open: bool = False
) -> float:
    """``value`` as a float in [low, high] (or (low, high] when ``low_open``)."""
    value = _float(value, argument)
    above = value > low if low_open else value >= low
    if not (above and value <= high and math.isfinite(value)):
        bound = "(" if low_open else "["
        msg = f"{argument}: must be a finite number in {bound}{low}, {high}], got {value}"
        raise ValueError(msg)
    return float(value)


def fraction(value: Any, argument: str) -> float:
    """``value`` as a float in [0, 1)."""
    result = _float(value, argument)
    if not 0 <= result < 1:  # NaN included
        msg = f"{argument}: must be a number in [0, 1), got {result}"
        raise ValueError(msg)
    return result


def _float(value: Any, argument: str) -> float:
    """``value`` as a float, if it is a number (not a bool), else a TypeError naming it."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        msg = f"{argument}: expected a number, got {type(value).__name__}"
        raise TypeError(msg)
    return float(value)


def count(value: Any, argument: str, low: int = 1) -> int:
    """``value`` as an int >= ``low``."""
    if not is_int(value):
        msg = f"{argument}: expected an integer, got {type(value).__name__}"
        raise TypeError(msg)
    if value < low:
        msg = f"{argument}: must be >= {low}, got {value}"
        raise ValueError(msg)
    return int(value)


def generator(seed: Any) -> np.random.Generator:
    """``numpy.random.default_rng(seed)``, its errors naming ``seed``."""
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError) as e:
        msg = f"seed: {e}"
        raise type(e)(msg) from None


def dtype(value: Any) -> np.dtype[Any]:
    """float32 or float64, else a TypeError."""
    dt: np.dtype[Any] = np.dtype(value)
    if dt not in (np.float32, np.float64):
        msg = f"dtype: expected float32 or float64, got {dt}"
        raise TypeError(msg)
    return dt


def dropout(value: Any, hidden: int) -> list[float]:
    """``dropout`` as one probability per hidden layer: a number for all, or a sequence of
    ``hidden`` numbers (their range is the C++ network's to check, for both alike)."""
    if hasattr(value, "__len__") and not isinstance(value, (str, bytes)):
        if len(value) != hidden:
            msg = f"dropout: expected one probability per hidden layer ({hidden}), got {len(value)}"
            raise ValueError(msg)
        return [_float(p, "dropout") for p in value]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        msg = f"dropout: expected a number or one per hidden layer, got {type(value).__name__}"
        raise TypeError(msg)
    return [float(value)] * hidden


def weights(sample_weight: Any) -> NDArray[np.float64]:
    """Sample weights as float64, which must not all be 0: the weighted mean of a set weighing
    nothing is undefined. Their other checks (finite, >= 0, one per sample) are the compiled
    module's: weights that fail those pass here, to be refused there by name."""
    w = np.asarray(sample_weight, dtype=np.float64)
    if np.isfinite(w).all() and (w >= 0).all() and not w.sum() > 0:
        msg = "sample_weight: the weights are all 0; at least one sample must weigh more"
        raise ValueError(msg)
    return w
