"""NumPy twins of the denseprop kernels.

Each function has the name, signature and formula of its compiled kernel, in
plain NumPy. They are the oracle the tests compare against, the baseline the
benchmarks beat, and a readable statement of the math.

Arrays are batch-first: ``x: (batch, in)``, ``w: (out, in)``, ``b: (out,)``.
Every function computes in its inputs' dtype (float32 or float64) and returns
that dtype. With ``compute_dtype="bfloat16"`` (float32 only) a product's operands
are rounded to bfloat16 (`round_bf16`) and summed exactly (in float64), then
rounded to float32: the bf16 kernels' result up to the order of their float32 sums.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "ACTIVATIONS",
    "FROM_INPUT",
    "LOSSES",
    "OPTIMIZER_STEPS",
    "REDUCTIONS",
    "activation_backward",
    "activation_forward",
    "activation_jacobian",
    "adam_step",
    "adamw_step",
    "clip_grad_norm",
    "dense_backward",
    "dense_forward",
    "dpsgd_step",
    "dropout_mask",
    "fit_epoch",
    "half_poisson_deviance",
    "learning_rate",
    "mse",
    "network_forward",
    "network_loss_and_gradients",
    "permutation",
    "rmsprop_step",
    "round_bf16",
    "sgd_step",
    "sigmoid",
    "sigmoid_backward",
    "sigmoid_cross_entropy",
    "softmax",
    "softmax_backward",
    "softmax_cross_entropy",
    "softmax_jacobian",
]


def round_bf16(x: NDArray[Any]) -> NDArray[Any]:
    """float32 ``x`` rounded to the nearest bfloat16 (ties to even), as float32: the top 16
    bits of each value after adding half of the dropped bits' range; NaN stays NaN."""
    bits = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    up = bits + np.uint64(0x7FFF) + ((bits >> np.uint64(16)) & np.uint64(1))
    rounded = (up >> np.uint64(16) << np.uint64(16)).astype(np.uint32).view(np.float32)
    return np.where(np.isnan(x), np.float32(np.nan), rounded)


def _product(a: NDArray[Any], b: NDArray[Any], compute_dtype: str | None) -> NDArray[Any]:
    """``a @ b``, on bfloat16 operands with ``compute_dtype="bfloat16"``."""
    if compute_dtype is None:
        return a @ b
    exact = round_bf16(a).astype(np.float64) @ round_bf16(b).astype(np.float64)
    return exact.astype(np.float32)


def _check_activation(activation: str, negative_slope: float) -> None:
    if activation not in ACTIVATIONS:
        msg = f"activation: unknown {activation!r}, expected one of {', '.join(ACTIVATIONS)}"
        raise ValueError(msg)
    if not negative_slope >= 0:  # also refuses NaN
        msg = f"negative_slope: must be >= 0, got {negative_slope}"
        raise ValueError(msg)


def sigmoid(z: NDArray[Any]) -> NDArray[Any]:
    """Logistic function, elementwise. ``z: (batch, n)`` -> ``(batch, n)``.

    With ``e = exp(-|z|)``: ``1 / (1 + e)`` for ``z >= 0``, ``e / (1 + e)``
    otherwise. ``exp`` only sees non-positive arguments, so it cannot
    overflow.
    """
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


_erfc = np.vectorize(math.erfc, otypes=[np.float64])
_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


def _in_float64(f: Any, z: NDArray[Any]) -> NDArray[Any]:
    """``f`` of ``z`` computed in float64, returned in ``z``'s dtype."""
    return np.asarray(f(np.asarray(z, np.float64)), dtype=z.dtype)


def _gelu(z: NDArray[Any]) -> NDArray[Any]:
    # z Φ(z), Φ(z) = erfc(−z/√2) / 2: accurate in the negative tail, where 1 + erf cancels
    return 0.5 * z * _erfc(-z / math.sqrt(2))


def _gelu_slope(z: NDArray[Any]) -> NDArray[Any]:
    # Φ(z) + z φ(z); φ at the clipped z is 0 past |z| = 40 as it is at z, without overflow
    zc = np.clip(z, -40, 40)
    return 0.5 * _erfc(-z / math.sqrt(2)) + zc * np.exp(-0.5 * zc * zc) / math.sqrt(2 * math.pi)


def _tanh_inner(z: NDArray[Any]) -> NDArray[Any]:
    # u = √(2/π) (z + 0.044715 z³); tanh(u) is ±1 past |z| = 100, where z³ could overflow
    zc = np.clip(z, -100, 100)
    return _SQRT_2_OVER_PI * (zc + 0.044715 * zc**3)


def _gelu_tanh(z: NDArray[Any]) -> NDArray[Any]:
    return 0.5 * z * (1 + np.tanh(_tanh_inner(z)))


def _gelu_tanh_slope(z: NDArray[Any]) -> NDArray[Any]:
    # ½ (1 + t) + ½ z (1 − t²) u′, t = tanh u, u′ = √(2/π) (1 + 3 · 0.044715 z²)
    t = np.tanh(_tanh_inner(z))
    zc = np.clip(z, -100, 100)
    return 0.5 * (1 + t) + 0.5 * zc * (1 - t * t) * _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * zc**2)


def _silu_slope(z: NDArray[Any]) -> NDArray[Any]:
    s = sigmoid(z)
    return s * (1 + z * (1 - s))


def _softplus(z: NDArray[Any]) -> NDArray[Any]:
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def _mish(z: NDArray[Any]) -> NDArray[Any]:
    return z * np.tanh(_softplus(z))


def _mish_slope(z: NDArray[Any]) -> NDArray[Any]:
    # t + z σ(z) (1 − t²), t = tanh(softplus(z))
    t = np.tanh(_softplus(z))
    return t + z * sigmoid(z) * (1 - t * t)


def sigmoid_backward(a: NDArray[Any], grad_a: NDArray[Any]) -> NDArray[Any]:
    """Gradient through a sigmoid from its output.

    ``a, grad_a: (batch, n)`` -> ``grad_z = grad_a * a * (1 - a)``.
    """
    return grad_a * a * (1 - a)


def softmax(z: NDArray[Any]) -> NDArray[Any]:
    """Softmax over the features of each sample. ``z: (batch, n)`` -> ``(batch, n)``.

    The row maximum is subtracted first, so ``exp`` sees only arguments <= 0.
    """
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def softmax_backward(s: NDArray[Any], grad_s: NDArray[Any]) -> NDArray[Any]:
    """Jacobian-vector product of softmax, from its output.

    ``s, grad_s: (batch, n)`` -> ``grad_z = s * (grad_s - sum(s * grad_s, axis=1))``,
    which is ``softmax_jacobian(s)[i] @ grad_s[i]`` for every sample ``i``
    without forming the ``n x n`` matrix.
    """
    return s * (grad_s - np.sum(s * grad_s, axis=1, keepdims=True))


def softmax_jacobian(s: NDArray[Any]) -> NDArray[Any]:
    """Explicit softmax Jacobian per sample, for inspection.

    ``s: (batch, n)`` -> ``J: (batch, n, n)``, ``J[i] = diag(s[i]) - outer(s[i], s[i])``.
    """
    jac = -s[:, :, None] * s[:, None, :]
    diagonal = np.arange(s.shape[1])
    jac[:, diagonal, diagonal] += s
    return jac


# The activations' twins, by name, in the table's order: each has its forward in `_FORWARD` and
# its derivative in `_FROM_OUTPUT` (read from a) or `_SLOPE_OF_Z` (read from z); `slope` is
# leaky_relu's negative_slope.
_Activation = Callable[[NDArray[Any], float], NDArray[Any]]
_FromOutput = Callable[[NDArray[Any], NDArray[Any], float], NDArray[Any]]


def _exp(z: NDArray[Any], slope: float) -> NDArray[Any]:
    with np.errstate(over="ignore"):  # inf, as the kernel gives
        return np.exp(z)


# name -> a = g(z); the smooth ones computed in float64 and returned in z's dtype
_FORWARD: dict[str, _Activation] = {
    "identity": lambda z, slope: z,
    "sigmoid": lambda z, slope: sigmoid(z),
    "tanh": lambda z, slope: np.tanh(z),
    "relu": lambda z, slope: np.maximum(z, 0),
    "leaky_relu": lambda z, slope: np.where(z > 0, z, z.dtype.type(slope) * z),
    "softmax": lambda z, slope: softmax(z),
    "gelu": lambda z, slope: _in_float64(_gelu, z),
    "gelu_tanh": lambda z, slope: _in_float64(_gelu_tanh, z),
    "silu": lambda z, slope: _in_float64(lambda v: v * sigmoid(v), z),
    "softplus": lambda z, slope: _in_float64(_softplus, z),
    "mish": lambda z, slope: _in_float64(_mish, z),
    "exp": _exp,
}
# name -> grad_z from (a, grad_a, slope), for those whose derivative is read from a
_FROM_OUTPUT: dict[str, _FromOutput] = {
    "identity": lambda a, g, slope: g,
    "sigmoid": lambda a, g, slope: sigmoid_backward(a, g),
    "tanh": lambda a, g, slope: g * (1 - a * a),
    "relu": lambda a, g, slope: g * (a > 0),
    "leaky_relu": lambda a, g, slope: np.where(a > 0, g, a.dtype.type(slope) * g),
    "softmax": lambda a, g, slope: softmax_backward(a, g),
    "exp": lambda a, g, slope: g * a,
}
# name -> g'(z), in float64, for those whose derivative is read from z
_SLOPE_OF_Z: dict[str, Callable[[NDArray[Any]], NDArray[Any]]] = {
    "gelu": _gelu_slope,
    "gelu_tanh": _gelu_tanh_slope,
    "silu": _silu_slope,
    "softplus": sigmoid,
    "mish": _mish_slope,
}
# name -> the Jacobian per sample, for those that are not elementwise (the others: diag(g'))
_JACOBIAN: dict[str, Callable[[NDArray[Any]], NDArray[Any]]] = {"softmax": softmax_jacobian}

ACTIVATIONS = tuple(_FORWARD)
# Those whose derivative is written here in their input z rather than their output.
FROM_INPUT = tuple(_SLOPE_OF_Z)


def activation_forward(
    z: NDArray[Any], activation: str, negative_slope: float = 0.01
) -> NDArray[Any]:
    """Apply a named activation. ``z: (batch, n)`` -> ``a: (batch, n)``.

    ``leaky_relu`` is ``z if z > 0 else negative_slope * z``; ``softmax`` acts
    per sample; ``gelu`` is ``z Φ(z)`` (exact, with erf), ``gelu_tanh`` its tanh
    approximation ``½ z (1 + tanh(√(2/π) (z + 0.044715 z³)))``, ``silu`` is
    ``z σ(z)``, ``softplus`` ``log(1 + exp(z))`` and ``mish``
    ``z tanh(softplus(z))``; these five are computed in float64 and returned in
    ``z``'s dtype. ``exp`` is ``exp(z)`` (inf past log(max)).
    """
    _check_activation(activation, negative_slope)
    return _FORWARD[activation](z, negative_slope)


def activation_backward(
    a: NDArray[Any],
    grad_a: NDArray[Any],
    activation: str,
    negative_slope: float = 0.01,
    *,
    z: NDArray[Any] | None = None,
) -> NDArray[Any]:
    """Gradient through a named activation, from its output or its input.

    ``a, grad_a: (batch, n)`` -> ``grad_z: (batch, n)``. The derivative is read
    from the output where that is cheapest: sigmoid ``a (1 - a)``, tanh
    ``1 - a^2``, relu ``a > 0``, leaky_relu ``1 if a > 0 else negative_slope``,
    exp ``a``.
    Those in `FROM_INPUT` read it from their input ``z: (batch, n)``, required:
    gelu ``Φ(z) + z φ(z)``, gelu_tanh ``½ (1 + t) + ½ z (1 − t²) u′``, silu
    ``σ(z) (1 + z (1 − σ(z)))``, softplus ``σ(z)``, mish ``t + z σ(z) (1 − t²)``
    with ``t = tanh(softplus(z))``.
    """
    _check_activation(activation, negative_slope)
    slope_of_z = _SLOPE_OF_Z.get(activation)
    if slope_of_z is None:
        return _FROM_OUTPUT[activation](a, grad_a, negative_slope)
    if z is None:
        msg = f"z: {activation}'s derivative is read from its input; pass z"
        raise ValueError(msg)
    return grad_a * _in_float64(slope_of_z, z)


def activation_jacobian(
    a: NDArray[Any],
    activation: str,
    negative_slope: float = 0.01,
    *,
    z: NDArray[Any] | None = None,
) -> NDArray[Any]:
    """The Jacobian ``da/dz`` of a named activation per sample, from its output.

    ``a: (batch, n)`` -> ``J: (batch, n, n)``: ``diag(g'(z_i))`` for the elementwise
    activations (``g'`` as `activation_backward` reads it from ``a``), and
    ``diag(s_i) - s_i s_iᵀ`` for softmax; ``z`` as `activation_backward` takes it.
    """
    if activation in _JACOBIAN:
        return _JACOBIAN[activation](a)
    slopes = activation_backward(a, np.ones_like(a), activation, negative_slope, z=z)
    jac = np.zeros(a.shape + a.shape[1:], dtype=a.dtype)
    diagonal = np.arange(a.shape[1])
    jac[:, diagonal, diagonal] = slopes
    return jac


def dense_forward(
    x: NDArray[Any],
    w: NDArray[Any],
    b: NDArray[Any],
    activation: str = "identity",
    out: NDArray[Any] | None = None,
    *,
    negative_slope: float = 0.01,
    compute_dtype: str | None = None,
) -> NDArray[Any]:
    """Dense layer: ``a = act(x @ w.T + b)``.

    ``x: (batch, in)``, ``w: (out, in)``, ``b: (out,)`` -> ``a: (batch, out)``.
    When ``out`` is given, ``a`` is written into it and ``out`` is returned.
    """
    a = activation_forward(_product(x, w.T, compute_dtype) + b, activation, negative_slope)
    if out is None:
        return a
    out[...] = a
    return out


def dense_backward(
    x: NDArray[Any],
    w: NDArray[Any],
    a: NDArray[Any],
    grad_a: NDArray[Any],
    activation: str = "identity",
    need_grad_x: bool = True,
    *,
    z: NDArray[Any] | None = None,
    negative_slope: float = 0.01,
    compute_dtype: str | None = None,
) -> tuple[NDArray[Any] | None, NDArray[Any], NDArray[Any]]:
    """Gradients of a dense layer from its input, weights and output.

    ``x: (batch, in)``, ``w: (out, in)``, ``a, grad_a: (batch, out)`` ->
    ``(grad_x: (batch, in) or None, grad_w: (out, in), grad_b: (out,))`` with
    ``grad_z = act_backward(a, grad_a)``, ``grad_w = grad_z.T @ x``,
    ``grad_b = grad_z.sum(0)`` and ``grad_x = grad_z @ w``, or None when
    ``need_grad_x`` is false. ``z = x @ w.T + b`` as `activation_backward` takes it.
    """
    grad_z = activation_backward(a, grad_a, activation, negative_slope, z=z)
    grad_x = _product(grad_z, w, compute_dtype) if need_grad_x else None
    return grad_x, _product(grad_z.T, x, compute_dtype), grad_z.sum(axis=0)


_REDUCE: dict[str, Callable[[NDArray[Any], NDArray[Any]], tuple[Any, NDArray[Any]]]] = {
    "mean": lambda per_sample, grad: (
        float(per_sample.sum() / per_sample.shape[0]),
        grad / per_sample.shape[0],
    ),
    "sum": lambda per_sample, grad: (float(per_sample.sum()), grad),
    "none": lambda per_sample, grad: (per_sample, grad),
}
REDUCTIONS = tuple(_REDUCE)


def _reduce(
    per_sample: NDArray[Any], grad: NDArray[Any], reduction: str
) -> tuple[Any, NDArray[Any]]:
    """Apply ``reduction`` to per-sample losses ``(batch,)`` and their gradient."""
    if reduction not in _REDUCE:
        msg = f"reduction: unknown {reduction!r}, expected one of {', '.join(REDUCTIONS)}"
        raise ValueError(msg)
    return _REDUCE[reduction](per_sample, grad)


def softmax_cross_entropy(
    logits: NDArray[Any], y: NDArray[Any], reduction: str = "mean", label_smoothing: float = 0.0
) -> tuple[Any, NDArray[Any]]:
    """Cross-entropy of softmax(logits) against labels or target probabilities.

    ``logits: (batch, n)``; ``y``: integer labels ``(batch,)`` in ``[0, n)``
    or targets ``(batch, n)`` of the logits' dtype. Returns ``(loss, grad)``,
    ``grad: (batch, n)``, with

        lse_i = max_k z_ik + log(sum_k exp(z_ik - max_k z_ik))
        l_i = sum_k y_ik (lse_i - z_ik)
        grad_i = softmax(z_i) * sum_k y_ik - y_i

    (labels count as one-hot rows). No probability is ever passed to ``log``
    or divided by, so one that underflows to 0 still gives a finite loss and
    gradient. ``label_smoothing`` ε takes ``(1 - ε) y + ε / n`` for ``y``, as PyTorch's
    ``cross_entropy(..., label_smoothing=ε)``.
    """
    y = np.asarray(y)
    n = logits.shape[1]
    if np.issubdtype(y.dtype, np.integer):
        bad = (y < 0) | (y >= n)
        if bad.any():
            msg = f"y: label {y[bad][0]} out of range [0, {n})"
            raise ValueError(msg)
        y = np.eye(n, dtype=logits.dtype)[y]
    if label_smoothing:
        f = logits.dtype.type
        y = f(1 - label_smoothing) * y + f(label_smoothing) / f(n)
    row_max = logits.max(axis=1, keepdims=True)
    e = np.exp(logits - row_max)
    s = e.sum(axis=1, keepdims=True)
    lse = row_max + np.log(s)
    per_sample = (y * (lse - logits)).sum(axis=1)
    grad = e / s * y.sum(axis=1, keepdims=True) - y
    return _reduce(per_sample, grad, reduction)


def sigmoid_cross_entropy(
    logits: NDArray[Any], y: NDArray[Any], reduction: str = "mean"
) -> tuple[Any, NDArray[Any]]:
    """Binary cross-entropy of sigmoid(logits) against targets, per feature.

    ``logits, y: (batch, n)``. Returns ``(loss, grad)``, ``grad: (batch, n)``, with

        l_i = sum_k max(z_ik, 0) - z_ik y_ik + log1p(exp(-|z_ik|))
        grad = sigmoid(z) - y
    """
    per_element = np.maximum(logits, 0) - logits * y + np.log1p(np.exp(-np.abs(logits)))
    return _reduce(per_element.sum(axis=1), sigmoid(logits) - y, reduction)


def mse(
    pred: NDArray[Any], target: NDArray[Any], reduction: str = "mean"
) -> tuple[Any, NDArray[Any]]:
    """Half squared error, so that the gradient is the residual.

    ``pred, target: (batch, n)``. Returns ``(loss, grad)``, ``grad: (batch, n)``, with

        l_i = 0.5 * sum_k (pred_ik - target_ik)^2
        grad = pred - target
    """
    diff = pred - target
    return _reduce(0.5 * (diff * diff).sum(axis=1), diff, reduction)


def half_poisson_deviance(
    logits: NDArray[Any], y: NDArray[Any], reduction: str = "mean"
) -> tuple[Any, NDArray[Any]]:
    """Half the Poisson deviance of ``mu = exp(logits)`` (the log link), per output.

    ``logits, y: (batch, n)``, ``y >= 0`` (counts or rates). Returns ``(loss, grad)``,
    ``grad: (batch, n)``, with

        l_i = sum_k y_ik log(y_ik / mu_ik) - y_ik + mu_ik    (y log y = 0 at y = 0)
            = sum_k exp(z_ik) - y_ik z_ik + y_ik log(y_ik) - y_ik
        grad = exp(z) - y
    """
    if (y < 0).any():
        msg = f"y: contains {y[y < 0][0]}; the poisson loss needs y >= 0"
        raise ValueError(msg)
    with np.errstate(over="ignore"):  # exp(z) is inf past log(max), and so is the loss
        mu = np.exp(logits)
    y_log_y = y * np.log(np.where(y > 0, y, 1))
    return _reduce((mu - y * logits + y_log_y - y).sum(axis=1), mu - y, reduction)


# name -> (its kernel, the output activation it is fused with: the kernel then takes the
# logits, or None: it takes the outputs)
_LOSSES: dict[str, tuple[Callable[..., tuple[Any, NDArray[Any]]], str | None]] = {
    "cross_entropy": (softmax_cross_entropy, "softmax"),
    "binary_cross_entropy": (sigmoid_cross_entropy, "sigmoid"),
    "mse": (mse, None),
    "poisson": (half_poisson_deviance, "exp"),
}
LOSSES = tuple(_LOSSES)


def network_forward(
    weights: Sequence[NDArray[Any]],
    biases: Sequence[NDArray[Any]],
    x: NDArray[Any],
    activations: Sequence[str],
    negative_slope: float = 0.01,
    compute_dtype: str | None = None,
) -> list[NDArray[Any]]:
    """Forward pass of a multilayer perceptron, keeping every layer's output.

    ``weights[l]: (out_l, in_l)``, ``biases[l]: (out_l,)``, ``x: (batch, in_0)``,
    one activation name per layer. Returns ``[A0 = x, A1, ..., AL]``,
    ``A[l] = act_l(A[l-1] @ W[l].T + b[l])``.
    """
    a = [x]
    for w, b, act in zip(weights, biases, activations):
        a.append(dense_forward(a[-1], w, b, act, negative_slope=negative_slope,
                               compute_dtype=compute_dtype))  # fmt: skip
    return a


def network_loss_and_gradients(
    weights: Sequence[NDArray[Any]],
    biases: Sequence[NDArray[Any]],
    x: NDArray[Any],
    y: NDArray[Any],
    activations: Sequence[str],
    loss: str,
    negative_slope: float = 0.01,
    reduction: str = "mean",
    compute_dtype: str | None = None,
    label_smoothing: float = 0.0,
    masks: Sequence[NDArray[Any] | None] | None = None,
    sample_weight: NDArray[Any] | None = None,
) -> tuple[Any, list[tuple[NDArray[Any], NDArray[Any]]]]:
    """Loss of a multilayer perceptron and the gradients of every parameter.

    Arguments as in `network_forward`; ``y`` as the loss takes it (labels
    ``(batch,)`` or targets ``(batch, out)``). ``loss`` is ``cross_entropy``
    (softmax output: the loss is taken on the last logits, grad ``(P - Y)``),
    ``binary_cross_entropy`` (sigmoid output, alike) or ``mse`` (on the
    output itself, back through the output activation) or ``poisson`` (exp
    output, on the logits, grad ``exp(Z) - Y``). Returns
    ``(loss, [(grad_w, grad_b) per layer])``; ``reduction="mean"`` averages
    over the batch, ``"sum"`` adds. ``compute_dtype`` as in `dense_forward`;
    ``label_smoothing`` as in `softmax_cross_entropy` (cross_entropy only). ``masks``: a training
    step's dropout, per layer ``(batch, out)`` values 0 or ``1 / (1 - p)`` (`dropout_mask`) or
    None: the next layer reads ``A[l] * mask``, and the gradient flows back through the mask.
    ``sample_weight: (batch,)`` weighs each sample's loss ℓ_i: the mean is then
    ``Σ w_i ℓ_i / Σ w_i`` (0, and no gradient, when the weights sum to 0), the sum
    ``Σ w_i ℓ_i``.
    """
    if loss not in LOSSES:
        msg = f"loss: unknown {loss!r}, expected one of {', '.join(LOSSES)}"
        raise ValueError(msg)
    kernel, fused = _LOSSES[loss]
    acts = list(activations)
    if fused is not None:  # the last layer stops at its logits; the loss applies its activation
        acts[-1] = "identity"
    masks = list(masks) if masks is not None else [None] * len(weights)
    a, z, inputs = [x], [x], [x]  # z[0] is a placeholder; inputs: each layer's, after dropout
    for w, b, act, mask in zip(weights, biases, acts, masks):
        z.append(_product(inputs[-1], w.T, compute_dtype) + b)
        a.append(activation_forward(z[-1], act, negative_slope))
        inputs.append(a[-1] if mask is None else a[-1] * mask)
    grad: Any  # becomes None past the first layer, where no gradient is asked for
    smoothing = {"label_smoothing": label_smoothing} if label_smoothing else {}
    if sample_weight is None:
        value, grad = kernel(a[-1], y, reduction, **smoothing)
    elif reduction not in ("mean", "sum"):
        msg = f"reduction: sample weights take 'mean' or 'sum', got {reduction!r}"
        raise ValueError(msg)
    else:
        per_sample, grad = kernel(a[-1], y, "none", **smoothing)
        w = np.asarray(sample_weight, dtype=np.float64)
        total = w.sum() if reduction == "mean" else 1.0
        scale = w / total if total > 0 else np.zeros_like(w)
        value = float(scale @ per_sample.astype(np.float64))
        grad = (grad * scale[:, None]).astype(grad.dtype)
    grads = []
    for l in range(len(weights) - 1, -1, -1):
        if l < len(weights) - 1 and masks[l] is not None:
            grad = grad * masks[l]  # dA[l] from the gradient of the layer's dropped output
        grad, gw, gb = dense_backward(
            inputs[l],
            weights[l],
            a[l + 1],
            grad,
            acts[l],
            need_grad_x=l > 0,
            z=z[l + 1],
            negative_slope=negative_slope,
            compute_dtype=compute_dtype,
        )
        grads.append((gw, gb))
    return value, grads[::-1]


def sgd_step(
    params: list[tuple[NDArray[Any], NDArray[Any]]],
    grads: list[tuple[NDArray[Any], NDArray[Any]]],
    velocity: Sequence[tuple[Any, Any]] | None,
    lr: float,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
) -> None:
    """One SGD step in place, PyTorch's formulation, on lists of ``(w, b)`` pairs.

    ``d = g + weight_decay * p`` (weights only), ``v = momentum * v + d``,
    ``p -= lr * (d + momentum * v if nesterov else v)``; with ``momentum == 0``
    simply ``p -= lr * d``, and ``velocity`` may be None. Otherwise ``velocity``
    holds ``v`` like ``params`` and is updated.
    """
    if velocity is None:
        velocity = [(None, None)] * len(params)
    for (w, b), (gw, gb), (vw, vb) in zip(params, grads, velocity):
        for p, g, v, decay in ((w, gw, vw, weight_decay), (b, gb, vb, 0.0)):
            d = g + p.dtype.type(decay) * p
            if momentum == 0:
                p -= p.dtype.type(lr) * d
                continue
            v *= v.dtype.type(momentum)
            v += d
            step = d + v.dtype.type(momentum) * v if nesterov else v
            p -= p.dtype.type(lr) * step


def dpsgd_step(
    params: list[tuple[NDArray[Any], NDArray[Any]]],
    per_sample_grads: list[tuple[NDArray[Any], NDArray[Any]]],
    noise: list[tuple[NDArray[Any], NDArray[Any]]],
    lr: float,
    clip_norm: float,
    noise_multiplier: float,
    weight_decay: float = 0.0,
) -> None:
    """One differentially private SGD step in place (Abadi et al. 2016).

    ``params``: list of ``(w, b)``; ``per_sample_grads``: ``(grad_w (batch, out, in),
    grad_b (batch, out))`` per layer; ``noise``: standard normal values shaped like
    ``params``. With ``g_i`` sample i's whole gradient and ``C = clip_norm``:

        c_i = min(1, C / ‖g_i‖)   (1 when ‖g_i‖ = 0)
        g = (Σ_i c_i g_i + noise_multiplier · C · noise) / batch

    then ``sgd_step(params, g, None, lr, weight_decay=weight_decay)``.
    """
    batch = per_sample_grads[0][1].shape[0]
    squared = sum((gw * gw).sum(axis=(1, 2)) + (gb * gb).sum(axis=1) for gw, gb in per_sample_grads)
    norms = np.sqrt(squared)
    clip = norms.dtype.type(clip_norm)
    factors = np.ones_like(norms)
    large = norms > clip
    factors[large] = clip / norms[large]
    sigma = norms.dtype.type(noise_multiplier * clip_norm)
    grads = [
        (
            (np.einsum("i,ijk->jk", factors, gw) + sigma * nw) / batch,
            (factors @ gb + sigma * nb) / batch,
        )
        for (gw, gb), (nw, nb) in zip(per_sample_grads, noise)
    ]
    sgd_step(params, grads, None, lr, weight_decay=weight_decay)


def adam_step(
    params: list[tuple[NDArray[Any], NDArray[Any]]],
    grads: list[tuple[NDArray[Any], NDArray[Any]]],
    m: list[tuple[NDArray[Any], NDArray[Any]]],
    s: list[tuple[NDArray[Any], NDArray[Any]]],
    t: int,
    lr: float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
) -> None:
    """One bias-corrected Adam step in place; ``t`` counts steps from 1.

    ``d = g + weight_decay * p`` (weights only), ``m = b1 m + (1 - b1) d``,
    ``s = b2 s + (1 - b2) d^2``,
    ``p -= lr * (m / (1 - b1^t)) / (sqrt(s / (1 - b2^t)) + eps)``.
    """
    for (w, b), (gw, gb), (mw, mb), (sw, sb) in zip(params, grads, m, s):
        for p, g, mp, sp, decay in ((w, gw, mw, sw, weight_decay), (b, gb, mb, sb, 0.0)):
            f = p.dtype.type
            d = g + f(decay) * p
            # 1 - b and 1 - b^t in float64: 1 - f(0.999) keeps 3 digits in float32
            mp[...] = f(beta1) * mp + f(1 - beta1) * d
            sp[...] = f(beta2) * sp + f(1 - beta2) * d * d
            c1 = f(1 - beta1**t)
            c2 = f(1 - beta2**t)
            p -= f(lr) * (mp / c1) / (np.sqrt(sp / c2) + f(eps))


def adamw_step(
    params: list[tuple[NDArray[Any], NDArray[Any]]],
    grads: list[tuple[NDArray[Any], NDArray[Any]]],
    m: list[tuple[NDArray[Any], NDArray[Any]]],
    s: list[tuple[NDArray[Any], NDArray[Any]]],
    t: int,
    lr: float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
) -> None:
    """One AdamW step in place (decoupled weight decay, weights only); ``t`` counts from 1.

    ``m = b1 m + (1 - b1) g``, ``s = b2 s + (1 - b2) g^2``,
    ``p = p (1 - lr weight_decay) - lr (m / (1 - b1^t)) / (sqrt(s / (1 - b2^t)) + eps)``.
    """
    for (w, b), (gw, gb), (mw, mb), (sw, sb) in zip(params, grads, m, s):
        for p, g, mp, sp, decay in ((w, gw, mw, sw, weight_decay), (b, gb, mb, sb, 0.0)):
            f = p.dtype.type
            mp[...] = f(beta1) * mp + f(1 - beta1) * g  # in float64, as adam_step
            sp[...] = f(beta2) * sp + f(1 - beta2) * g * g
            c1 = f(1 - beta1**t)
            c2 = f(1 - beta2**t)
            p[...] = p * (f(1) - f(lr) * f(decay)) - f(lr) * (mp / c1) / (np.sqrt(sp / c2) + f(eps))


def rmsprop_step(
    params: list[tuple[NDArray[Any], NDArray[Any]]],
    grads: list[tuple[NDArray[Any], NDArray[Any]]],
    v: list[tuple[NDArray[Any], NDArray[Any]]],
    lr: float,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
) -> None:
    """One RMSprop step in place, PyTorch's formulation: ``d = g + weight_decay * p`` (weights
    only), ``v = alpha v + (1 - alpha) d^2``, ``p -= lr d / (sqrt(v) + eps)``."""
    for (w, b), (gw, gb), (vw, vb) in zip(params, grads, v):
        for p, g, vp, decay in ((w, gw, vw, weight_decay), (b, gb, vb, 0.0)):
            f = p.dtype.type
            d = g + f(decay) * p
            vp[...] = f(alpha) * vp + f(1 - alpha) * d * d  # 1 - alpha in float64, as adam_step
            p -= f(lr) * d / (np.sqrt(vp) + f(eps))


def clip_grad_norm(
    grads: list[tuple[NDArray[Any], NDArray[Any]]], max_norm: float
) -> tuple[list[tuple[NDArray[Any], NDArray[Any]]], float]:
    """``torch.nn.utils.clip_grad_norm_`` on a list of ``(gw, gb)`` pairs, the whole gradient.

    With ``‖g‖`` the L2 norm of every entry together (summed in float64), returns the gradient
    times ``max_norm / (‖g‖ + 1e-6)`` when that factor is below 1 (else the gradient itself),
    and ``‖g‖``.
    """
    norm = math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for pair in grads
                         for g in pair))  # fmt: skip
    factor = max_norm / (norm + 1e-6)
    if not factor < 1:
        return grads, norm
    return [(gw * gw.dtype.type(factor), gb * gb.dtype.type(factor)) for gw, gb in grads], norm


def _clipping(step: Callable[..., None]) -> Callable[..., None]:
    """``step`` on the gradient `clip_grad_norm` leaves, ``max_grad_norm`` (default inf: no
    clipping) taken by name beside the step's own settings."""

    def clipped(params: Any, grads: Any, state: Any, t: int, max_grad_norm: float = math.inf,
                **settings: Any) -> None:  # fmt: skip
        step(params, clip_grad_norm(grads, max_grad_norm)[0], state, t, **settings)

    return clipped


# Each optimizer's step (but the per-sample ones, whose twin takes per-sample gradients) in one
# form: step(params, grads, state, t, **settings) in place, ``state`` its two buffers, lists of
# ``(w, b)`` zeros like ``params`` at first, ``t`` the step from 1, ``settings`` those it reads
# (``denseprop.optimizers()``) and ``max_grad_norm``, by name: the gradient is clipped
# (`clip_grad_norm`), then the step taken.
OPTIMIZER_STEPS: dict[str, Callable[..., None]] = {
    name: _clipping(step)
    for name, step in {
        "sgd": lambda params, grads, state, t, **kw: sgd_step(params, grads, state[0], **kw),
        "adam": lambda params, grads, state, t, **kw: adam_step(
            params, grads, state[0], state[1], t, **kw
        ),
        "adamw": lambda params, grads, state, t, **kw: adamw_step(
            params, grads, state[0], state[1], t, **kw
        ),
        "rmsprop": lambda params, grads, state, t, **kw: rmsprop_step(
            params, grads, state[0], **kw
        ),
    }.items()
}


def learning_rate(t: int, total: int, lr: float, schedule: str, warmup: float) -> float:
    """The learning rate of step ``t`` (from 0) of a fit of ``total`` steps, as
    `denseprop.Network.fit`'s ``lr_schedule`` sets it.

    With ``W = round(warmup * total)`` warmup steps (Python's round: halves to even) and
    ``u = (t - W) / (total - W)``: ``lr (t + 1) / W`` while ``t < W``, then ``lr`` (constant),
    ``lr ½ (1 + cos(π u))`` (cosine) or ``lr (1 - u)`` (linear).
    """
    w = round(warmup * total)
    if t < w:
        return lr * (t + 1) / w
    u = (t - w) / (total - w)
    rates = {"constant": lambda: lr,
             "cosine": lambda: lr * 0.5 * (1 + math.cos(math.pi * u)),
             "linear": lambda: lr * (1 - u)}  # fmt: skip
    return rates[schedule]()


def _splitmix64(z: NDArray[np.uint64]) -> NDArray[np.uint64]:
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _stream(seed: int, parts: Sequence[int], first: int, count: int) -> NDArray[np.uint64]:
    """Words ``first .. first + count`` of the counter-based stream the compiled module draws
    from ``(seed, *parts)`` (noise.hpp's ``stream_key``): the key is SplitMix64 folded over
    ``seed``, then over each part added in turn; word ``i`` is SplitMix64(key + i γ). (uint64
    arrays wrap as the C++ words do.)"""
    key = _splitmix64(np.array([seed], dtype=np.uint64))
    for part in parts:
        key = _splitmix64(key + np.uint64(part))
    i = np.arange(first, first + count, dtype=np.uint64)
    return _splitmix64(key + i * np.uint64(0x9E3779B97F4A7C15))


def permutation(n: int, seed: int, k: int) -> NDArray[np.int64]:
    """The order of epoch ``k``'s samples when training reshuffles from ``seed`` (the one
    shuffle of every training path): Fisher-Yates over ``range(n)``, each swap's uniform
    ``u`` in [0, 1) the top 53 bits of the next word of the stream of ``(seed, k)``."""
    order = np.arange(n, dtype=np.int64)
    u = (_stream(seed, [k], 1, max(n - 1, 0)) >> np.uint64(11)).astype(np.float64) * 2.0**-53
    for draw, i in enumerate(range(n - 1, 0, -1)):
        j = min(i, int(u[draw] * (i + 1)))
        order[i], order[j] = order[j], order[i]
    return order


def dropout_mask(
    p: float, shape: tuple[int, int], seed: int, step: int, layer: int, stream: int = 0,
    dtype: Any = np.float64,
) -> NDArray[Any]:
    """The mask of a training step's inverted dropout on layer ``layer``'s output, ``shape``
    ``(batch, units)``: each value 0 or ``1 / (1 - p)``, as the network draws it from its
    ``dropout_seed``, the optimizer's step count ``step`` (before the step), the ``stream``
    (0 alone, an MPI rank + 1) and the layer. Value ``e`` (row-major) is dropped when its 32
    bits of the stream of ``(seed, step, stream, layer)`` are below ``p`` 2³²: word ``e // 2``
    gives values ``2 (e // 2)`` (its low bits) and ``2 (e // 2) + 1`` (its high bits)."""
    size = shape[0] * shape[1]
    words = _stream(seed, [step, stream, layer], 0, (size + 1) // 2)
    bits = np.stack([words & np.uint64(0xFFFFFFFF), words >> np.uint64(32)], axis=1).ravel()
    kept = np.dtype(dtype).type(1 / (1 - p))
    mask = np.where(bits[:size] < np.uint64(int(np.ldexp(p, 32))), 0, kept).astype(dtype)
    return mask.reshape(shape)


def fit_epoch(
    params: list[tuple[NDArray[Any], NDArray[Any]]],
    x: NDArray[Any],
    y: NDArray[Any],
    order: NDArray[Any],
    batch_size: int,
    activations: Sequence[str],
    loss: str,
    lr: float,
) -> float:
    """One epoch of plain SGD over ``x[order]`` in batches, the last one partial.

    ``params``: list of ``(w, b)`` pairs, updated in place. Returns the mean
    per-sample loss, as `denseprop.Network`'s epochs do.
    """
    total = 0.0
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        value, grads = network_loss_and_gradients(
            [w for w, _ in params], [b for _, b in params], x[idx], y[idx], activations, loss
        )
        sgd_step(params, grads, None, lr)
        total += value * len(idx)
    return total / len(order)
