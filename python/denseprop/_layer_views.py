"""The estimators' ``coefs_`` and ``intercepts_``: lists of views of their network's
parameters, through which an assignment writes into the network, as it changes the model of
scikit-learn's MLPs."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray


class LayerViews(list):  # type: ignore[type-arg]
    """``coefs_`` or ``intercepts_``: views of the network's parameters. Assigning an item
    (``coefs_[0] = w``) writes into the network, so the model changes as in scikit-learn."""

    def __init__(self, views: list[NDArray[Any]], name: str) -> None:
        super().__init__(views)
        self._name = name

    def __setitem__(self, i: Any, value: Any) -> None:
        if isinstance(i, slice):
            msg = f"{self._name}: assign one layer at a time"
            raise TypeError(msg)
        view = super().__getitem__(i)
        value = np.asarray(value)
        if value.shape != view.shape:
            msg = f"{self._name}[{i}]: expected shape {view.shape}, got {value.shape}"
            raise ValueError(msg)
        view[...] = value


def assign(views: list[NDArray[Any]], value: list[ArrayLike], name: str) -> None:
    """``value``, one array per layer, written into ``views`` (``coefs_ = [...]``)."""
    if len(value) != len(views):
        msg = f"{name}: expected {len(views)} layers, got {len(value)}"
        raise ValueError(msg)
    for i, v in enumerate(value):
        views[i] = np.asarray(v)
