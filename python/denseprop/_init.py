"""The initial weights of a Network: Glorot uniform or He normal per layer, biases 0."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from ._tables import ACTIVATIONS

#: "auto" takes each layer's activation's family from the table (He for the relu family and the
#: smooth ones after it, Glorot for sigmoid, tanh, identity and softmax).
INITS = ("auto", "glorot", "he")


def initialise(
    layers: Sequence[tuple[NDArray[np.floating], NDArray[np.floating]]],
    activations: Sequence[str],
    init: str,
    rng: np.random.Generator,
) -> None:
    """Fill each layer's ``(W (out, in), b (out,))`` in place.

    Glorot uniform: ``U(-√(6 / (in + out)), √(6 / (in + out)))``; He normal:
    ``N(0, 2 / in)``. ``init`` is "glorot", "he" or "auto" (by each layer's activation).
    """
    for (w, b), act in zip(layers, activations):
        n_out, n_in = w.shape
        family = ACTIVATIONS[act]["init"] if init == "auto" else init
        if family == "he":
            w[...] = rng.standard_normal((n_out, n_in)) * math.sqrt(2.0 / n_in)
        else:
            limit = math.sqrt(6.0 / (n_in + n_out))
            w[...] = rng.uniform(-limit, limit, (n_out, n_in))
        b[...] = 0
