"""Backprop made visible: every term of a network's batched equations, and its Jacobian.

Layers are numbered from 1 as in the textbook, ``A[0] = X``; arrays are batch-first, so the
equations read ``Z[l] = A[l-1] W[l]ᵀ + b[l]`` with ``Z[l]: (batch, out)``. Both functions are
built from the public compiled kernels, the ones the fused training step is made of.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from . import _core

if TYPE_CHECKING:
    from .network import Network

__all__ = ["Trace", "TraceEntry", "jacobian", "trace"]

# A[l] = g(Z[l]), and dZ[l] from dA[l] through g, each read from the stored output A[l].
_FORWARD = {
    "identity": "Z[{l}]",
    "sigmoid": "σ(Z[{l}]) = 1 / (1 + exp(−Z[{l}]))",
    "tanh": "tanh(Z[{l}])",
    "relu": "max(Z[{l}], 0)",
    "leaky_relu": "Z[{l}] if Z[{l}] > 0 else α Z[{l}]",
    "softmax": "softmax(Z[{l}]) per row",
}
_BACKWARD = {
    "identity": "dA[{l}]",
    "sigmoid": "dA[{l}] ⊙ A[{l}] ⊙ (1 − A[{l}])",
    "tanh": "dA[{l}] ⊙ (1 − A[{l}]²)",
    "relu": "dA[{l}] ⊙ [A[{l}] > 0]",
    "leaky_relu": "dA[{l}] ⊙ (1 if A[{l}] > 0 else α)",
    "softmax": "A[{l}] ⊙ (dA[{l}] − rowsum(A[{l}] ⊙ dA[{l}]))",
}


@dataclass(frozen=True)
class TraceEntry:
    """One term of the batched equations: its name (``"dW[2]"``), shape, equation and value."""

    name: str
    shape: tuple[int, ...]
    equation: str
    value: NDArray[np.floating]


class Trace:
    """Every intermediate of one forward and backward pass, in the order they are computed.

    Iterate over the `TraceEntry` items, or index by name: ``trace["dW[2]"].value``.
    ``loss`` is the loss of the batch under ``reduction``. ``str(trace)`` is an aligned table.
    """

    def __init__(self, entries: list[TraceEntry], loss: float, reduction: str) -> None:
        self.entries = entries
        self.loss = loss
        self.reduction = reduction

    def __iter__(self) -> Iterator[TraceEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, name: str) -> TraceEntry:
        for entry in self.entries:
            if entry.name == name:
                return entry
        names = ", ".join(e.name for e in self.entries)
        msg = f"{name!r} is not in the trace; it holds {names}"
        raise KeyError(msg)

    def __str__(self) -> str:
        left = max(len(e.name) for e in self.entries)
        rows = []
        for e in self.entries:
            rhs = e.equation.split(" = ", 1)[1]
            rows.append((f"{e.name:<{left}} = {rhs}", str(e.shape)))
        width = max(len(eq) for eq, _ in rows)
        head = f"loss = {self.loss:.6g} ({self.reduction} over the batch)"
        return "\n".join([head, *(f"{eq:<{width}}   {shape}" for eq, shape in rows)])

    def __repr__(self) -> str:
        return f"<Trace of {len(self.entries)} terms, loss {self.loss:.6g}>"


def trace(net: Network, x: NDArray[np.floating], y: NDArray[np.generic], reduction: str) -> Trace:
    """One forward and backward pass of ``net`` on ``(x, y)``, keeping every term.

    ``x: (batch, inputs)``; ``y`` as `Network.gradients` takes it. The ``dW[l]``, ``db[l]``
    equal ``net.gradients(x, y, reduction)``; the network is unchanged.
    """
    x, y = net._x(x), net._y(y)
    net._core.check(x, y)
    slope = net._config["negative_slope"]
    acts = net.activations
    layers = len(acts)
    scale = " / batch" if reduction == "mean" else ""
    entries: list[TraceEntry] = []

    def add(name: str, equation: str, value: NDArray[np.floating]) -> None:
        entries.append(TraceEntry(name, value.shape, f"{name} = {equation}", value))

    a = [x]
    add("A[0]", "X", x)
    for l in range(1, layers + 1):
        w, b = net.weights[l - 1], net.biases[l - 1]
        z = _core.dense_forward(a[-1], w, b, "identity")
        add(f"Z[{l}]", f"A[{l - 1}] W[{l}]ᵀ + b[{l}]", z)
        a.append(_core.activation_forward(z, acts[l - 1], negative_slope=slope))
        add(f"A[{l}]", _FORWARD[acts[l - 1]].format(l=l), a[-1])

    # The fused losses give dZ[L] = (P − Y) / batch straight from the logits Z[L].
    if net.loss == "mse":
        loss, da = _core.mse(a[-1], y, reduction)
        add(f"dA[{layers}]", f"(A[{layers}] − Y){scale}", da)
    else:
        if net.loss == "cross_entropy":
            loss, dz = _core.softmax_cross_entropy(z, y, reduction)
        else:
            loss, dz = _core.sigmoid_cross_entropy(z, y, reduction)
        add(f"dZ[{layers}]", f"(A[{layers}] − Y){scale}", dz)
    for l in range(layers, 0, -1):
        if l < layers or net.loss == "mse":
            dz = _core.activation_backward(a[l], da, acts[l - 1], negative_slope=slope)
            add(f"dZ[{l}]", _BACKWARD[acts[l - 1]].format(l=l), dz)
        w = net.weights[l - 1]
        grad_x, dw, db = _core.dense_backward(a[l - 1], w, dz, dz, "identity", need_grad_x=l > 1)
        add(f"dW[{l}]", f"dZ[{l}]ᵀ A[{l - 1}]", dw)
        add(f"db[{l}]", f"1ᵀ dZ[{l}]   (the sum over the batch)", db)
        if grad_x is not None:
            da = grad_x
            add(f"dA[{l - 1}]", f"dZ[{l}] W[{l}]", da)
    return Trace(entries, float(loss), reduction)


def jacobian(net: Network, x: NDArray[np.floating]) -> NDArray[np.floating]:
    """The Jacobian of the network's outputs with respect to its inputs, per sample.

    ``x: (batch, inputs)`` -> ``J: (batch, outputs, inputs)``, ``J[i, k, j] = ∂out[i, k] /
    ∂x[i, j]`` with the outputs of `Network.forward` (probabilities for the classifiers). By the
    chain rule ``J = J_g(A[L]) W[L] diag(g'(Z[L-1])) W[L-1] ··· diag(g'(Z[1])) W[1]``; the
    output's Jacobian comes from `activation_jacobian`, the hidden layers' diagonals from
    `activation_backward` of ones.
    """
    x = net._x(x)
    net._core.forward(x)  # checks x as every Network method does
    slope = net._config["negative_slope"]
    acts = net.activations
    a = [x]
    for w, b, act in zip(net.weights, net.biases, acts):
        a.append(_core.dense_forward(a[-1], w, b, act, negative_slope=slope))
    output = _core.activation_jacobian(a[-1], acts[-1], negative_slope=slope)
    jac: NDArray[np.floating] = output @ net.weights[-1]
    for l in range(len(acts) - 1, 0, -1):
        ones = np.ones_like(a[l])
        slopes = _core.activation_backward(a[l], ones, acts[l - 1], negative_slope=slope)
        jac = (jac * slopes[:, None, :]) @ net.weights[l - 1]
    return jac
