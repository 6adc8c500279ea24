"""Backprop made visible: every term of a network's batched equations, and its Jacobian.

Layers are numbered from 1 as in the textbook, ``A[0] = X``; arrays are batch-first, so the
equations read ``Z[l] = A[l-1] W[l]ᵀ + b[l]`` with ``Z[l]: (batch, out)``. Both functions are
built from the public compiled kernels, the ones the fused training step is made of, and take
the model as arrays and names (`Network.trace` and `Network.jacobian` check the data and hold
the network's lock); the equations come from the activations' and losses' tables.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from . import _core
from ._tables import ACTIVATIONS, LOSSES

__all__ = ["Trace", "TraceEntry", "jacobian", "trace"]


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


def trace(
    weights: Sequence[NDArray[np.floating]],
    biases: Sequence[NDArray[np.floating]],
    activations: Sequence[str],
    loss: str,
    x: NDArray[np.floating],
    y: NDArray[np.generic],
    reduction: str,
    *,
    negative_slope: float = 0.01,
    compute_dtype: str | None = None,
    label_smoothing: float = 0.0,
) -> Trace:
    """One forward and backward pass of a network on ``(x, y)``, keeping every term.

    ``weights[l]: (out, in)``, ``biases[l]: (out,)``, one activation name per layer and the
    loss's name, as a `Network` holds them; ``x: (batch, inputs)``; ``y`` as the loss's kernel
    takes it; ``compute_dtype`` the network's (the products on bfloat16 operands);
    ``label_smoothing`` its cross-entropy's (the trace is of the evaluation model: no dropout).
    The ``dW[l]``, ``db[l]`` equal `Network.gradients`; nothing is written.
    """
    layers = len(activations)
    info = LOSSES[loss]
    fused = info["fused_output"] is not None
    kernel = getattr(_core, info["kernel"])
    scale = " / batch" if reduction == "mean" else ""
    entries: list[TraceEntry] = []

    def add(name: str, equation: str, value: NDArray[np.floating]) -> None:
        entries.append(TraceEntry(name, value.shape, f"{name} = {equation}", value))

    def equation(act: str, which: str, l: int) -> str:
        return str(ACTIVATIONS[act][which]).replace("{l}", str(l))

    a, z = [x], [x]  # z[l] = Z[l]; z[0] is a placeholder
    add("A[0]", "X", x)
    for l in range(1, layers + 1):
        z.append(_core.dense_forward(a[-1], weights[l - 1], biases[l - 1], "identity",
                                     compute_dtype=compute_dtype))  # fmt: skip
        add(f"Z[{l}]", f"A[{l - 1}] W[{l}]ᵀ + b[{l}]", z[-1])
        act = activations[l - 1]
        a.append(_core.activation_forward(z[-1], act, negative_slope=negative_slope))
        add(f"A[{l}]", equation(act, "forward_equation", l), a[-1])

    gradient = str(info["gradient_equation"]).replace("{L}", str(layers)) + scale
    if fused:  # dZ[L] = (P − Y) / batch straight from the logits Z[L]
        smoothing = {"label_smoothing": label_smoothing} if label_smoothing else {}
        value, dz = kernel(z[-1], y, reduction, **smoothing)
        add(f"dZ[{layers}]", gradient, dz)
    else:
        value, da = kernel(a[-1], y, reduction)
        add(f"dA[{layers}]", gradient, da)
    for l in range(layers, 0, -1):
        if l < layers or not fused:
            act = activations[l - 1]
            dz = _core.activation_backward(a[l], da, act, z=z[l], negative_slope=negative_slope)
            add(f"dZ[{l}]", equation(act, "backward_equation", l), dz)
        grad_x, dw, db = _core.dense_backward(
            a[l - 1], weights[l - 1], dz, dz, "identity", need_grad_x=l > 1,
            compute_dtype=compute_dtype,
        )  # fmt: skip
        add(f"dW[{l}]", f"dZ[{l}]ᵀ A[{l - 1}]", dw)
        add(f"db[{l}]", f"1ᵀ dZ[{l}]   (the sum over the batch)", db)
        if grad_x is not None:
            da = grad_x
            add(f"dA[{l - 1}]", f"dZ[{l}] W[{l}]", da)
    return Trace(entries, float(value), reduction)


def jacobian(
    weights: Sequence[NDArray[np.floating]],
    biases: Sequence[NDArray[np.floating]],
    activations: Sequence[str],
    x: NDArray[np.floating],
    *,
    negative_slope: float = 0.01,
) -> NDArray[np.floating]:
    """The Jacobian of a network's outputs with respect to its inputs, per sample.

    The model as in `trace`; ``x: (batch, inputs)`` -> ``J: (batch, outputs, inputs)``,
    ``J[i, k, j] = ∂out[i, k] / ∂x[i, j]`` with the outputs of `Network.forward`
    (probabilities for the classifiers). By the chain rule ``J = J_g(A[L]) W[L]
    diag(g'(Z[L-1])) W[L-1] ··· diag(g'(Z[1])) W[1]``; the output's Jacobian comes from
    `activation_jacobian`, the hidden layers' diagonals from `activation_backward` of ones.
    """
    slope = negative_slope
    a, z = [x], [x]
    for w, b, act in zip(weights, biases, activations):
        z.append(_core.dense_forward(a[-1], w, b, "identity"))
        a.append(_core.activation_forward(z[-1], act, negative_slope=slope))
    output = _core.activation_jacobian(a[-1], activations[-1], z=z[-1], negative_slope=slope)
    jac: NDArray[np.floating] = output @ weights[-1]
    for l in range(len(activations) - 1, 0, -1):
        ones = np.ones_like(a[l])
        slopes = _core.activation_backward(
            a[l], ones, activations[l - 1], z=z[l], negative_slope=slope
        )
        jac = (jac * slopes[:, None, :]) @ weights[l - 1]
    return jac
