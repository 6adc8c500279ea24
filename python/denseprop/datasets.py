"""Small real data sets shipped with the package, so that the demo and the examples run on a
fresh machine without downloads or scikit-learn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["load_digits"]

_DIGITS = Path(__file__).resolve().parent / "data" / "digits.npz"


def load_digits() -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """The 1,797 handwritten digits of 8×8 pixels that scikit-learn's ``load_digits`` returns.

    The test part of the UCI "Optical Recognition of Handwritten Digits" set (E. Alpaydin and
    C. Kaynak, 1998; CC BY 4.0), stored in ``denseprop/data/digits.npz`` as 8-bit pixels.

    Returns
    -------
    x : ndarray of float64, shape (1797, 64)
        One image per row, its 8×8 pixels row by row, each a count of inked cells from 0 to 16
        (divide by 16 for inputs in [0, 1]).
    y : ndarray of int64, shape (1797,)
        The digit each image shows, 0 to 9.

    Examples
    --------
    >>> x, y = load_digits()
    >>> x.shape, y.shape
    ((1797, 64), (1797,))
    """
    with np.load(_DIGITS, allow_pickle=False) as data:
        images: NDArray[Any] = data["images"]
        target: NDArray[Any] = data["target"]
    return images.reshape(len(images), 64).astype(np.float64), target.astype(np.int64)
