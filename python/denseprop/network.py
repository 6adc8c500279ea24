"""`Network`: a multilayer perceptron whose training step is one call into C++.

The parameters live in one C++ buffer; ``Network.weights`` and ``Network.biases`` are
NumPy views of it. Every method checks its arguments before the model is touched, so a
bad argument raises and leaves the network exactly as it was.
"""

from __future__ import annotations

import functools
import json
import math
import os
import threading
import time
from collections.abc import Sequence
from typing import Any, Callable, TypeVar, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _core, backprop
from .progress import ProgressBar
from .sparse import is_sparse

__all__ = ["Network"]

_LOSSES = {
    # loss -> the output activation it is fused with
    "cross_entropy": "softmax",
    "binary_cross_entropy": "sigmoid",
    "mse": "identity",
    "poisson": "exp",  # the log link: the last layer's z, predictions e^z
}
_HIDDEN = ("identity", "sigmoid", "tanh", "relu", "leaky_relu")
_INITS = ("auto", "glorot", "he")
_OPTIMIZERS = ("sgd", "adam", "dpsgd")
_FORMAT = 1  # version of the saved file layout
_LARGEST_SIZE = 2**31 - 1  # units of one layer, as the C++ model takes them


def _names(value: str, name: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        msg = f"{name}: unknown {value!r}, expected one of {', '.join(allowed)}"
        raise ValueError(msg)
    return value


def _number(
    value: Any, name: str, low: float = 0.0, high: float = math.inf, low_open: bool = False
) -> float:
    """``value`` as a float in [low, high] (or (low, high] when ``low_open``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        msg = f"{name}: expected a number, got {type(value).__name__}"
        raise TypeError(msg)
    value = float(value)
    above = value > low if low_open else value >= low
    if not (above and value <= high and math.isfinite(value)):
        bound = "(" if low_open else "["
        msg = f"{name}: must be a finite number in {bound}{low}, {high}], got {value}"
        raise ValueError(msg)
    return float(value)


def _generator(seed: Any) -> np.random.Generator:
    """``numpy.random.default_rng(seed)``, its errors naming ``seed``."""
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError) as e:
        msg = f"seed: {e}"
        raise type(e)(msg) from None


def _noise_seed(seed: object) -> int:
    """DP-SGD's noise seed as an int in [0, 2**64); None draws one from the OS's entropy."""
    if seed is None:
        return int(np.random.default_rng().integers(2**63))
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        msg = f"seed: expected an integer or None, got {type(seed).__name__}"
        raise TypeError(msg)
    if not 0 <= seed < 2**64:
        msg = f"seed: must be in [0, 2**64), got {seed}"
        raise ValueError(msg)
    return int(seed)


def _csr(x: Any, dtype: np.dtype[Any]) -> Any:
    """A scipy.sparse matrix as CSR of ``dtype`` (CSR of that dtype is used as it is)."""
    if x.dtype != dtype and not np.can_cast(x.dtype, dtype, "same_kind"):
        msg = f"x: dtype {x.dtype} cannot be cast safely to the network's {dtype}"
        raise TypeError(msg)
    return x.tocsr().astype(dtype, copy=False)


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _one_at_a_time(method: _Method) -> _Method:
    """``method`` run holding the Network's lock: a call from another thread waits until it
    ends, so steps, fits and saves never see or leave each other's half-done state."""

    @functools.wraps(method)
    def locked(self: Network, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return cast(_Method, locked)


def _count(value: Any, name: str, low: int = 1) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        msg = f"{name}: expected an integer, got {type(value).__name__}"
        raise TypeError(msg)
    if value < low:
        msg = f"{name}: must be >= {low}, got {value}"
        raise ValueError(msg)
    return int(value)


class Network:
    """A multilayer perceptron: dense layers, one fused C++ call per training step.

    Parameters
    ----------
    sizes : sequence of int
        Inputs, then each layer's outputs, e.g. ``[64, 32, 10]``.
    activation : str or sequence of str
        Of the hidden layers: identity, sigmoid, tanh, relu or leaky_relu; one
        name for all, or one per hidden layer.
    loss : {"cross_entropy", "binary_cross_entropy", "mse", "poisson"}
        Cross-entropy over classes (softmax output), independent binary
        cross-entropies (sigmoid outputs), half the squared error
        (regression, identity output), or the Poisson deviance
        ``Σ y log(y/p) − y + p`` of predictions ``p = e^z`` (counts, "exp"
        output). Each is the mean over the batch.
    output_activation : str, optional
        Defaults to the one the loss is fused with; "mse" may take any.
    dtype : {"float32", "float64"}
    seed : int or numpy.random.Generator, optional
        Seeds the initial weights.
    init : {"auto", "glorot", "he"}
        Glorot uniform (sigmoid, tanh, identity) or He normal (relu family);
        "auto" picks by the hidden activation. Biases start at 0.
    negative_slope : float
        The slope of leaky_relu below 0.

    Arrays are batch-first: ``x: (batch, sizes[0])``; ``y`` is integer labels
    ``(batch,)`` or one-hot/probabilities ``(batch, classes)`` for
    cross-entropy, ``(batch, outputs)`` otherwise.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str | Sequence[str] = "sigmoid",
        loss: str = "cross_entropy",
        *,
        output_activation: str | None = None,
        dtype: Any = "float32",
        seed: Any = None,
        init: str = "auto",
        negative_slope: float = 0.01,
    ) -> None:
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__"):
            msg = f"sizes: expected a sequence of ints, got {type(sizes).__name__}"
            raise TypeError(msg)
        sizes = [_count(s, f"sizes[{i}]") for i, s in enumerate(sizes)]
        for i, s in enumerate(sizes):
            if s > _LARGEST_SIZE:
                msg = f"sizes[{i}]: must be at most {_LARGEST_SIZE}, got {s}"
                raise ValueError(msg)
        if len(sizes) < 2:
            msg = f"sizes: need at least inputs and outputs, got {sizes}"
            raise ValueError(msg)
        hidden = len(sizes) - 2
        if isinstance(activation, str):
            activation = [activation] * hidden
        activation = list(activation)
        if len(activation) != hidden:
            msg = (
                f"activation: expected one name or {hidden} (one per hidden layer), "
                f"got {len(activation)}"
            )
            raise ValueError(msg)
        for a in activation:
            _names(a, "activation", _HIDDEN)
        _names(loss, "loss", tuple(_LOSSES))
        fused = _LOSSES[loss]
        if output_activation is None:
            output_activation = fused
        elif loss != "mse" and output_activation != fused:
            msg = (
                f"output_activation: {loss} is computed from {fused} outputs, "
                f"got {output_activation!r}"
            )
            raise ValueError(msg)
        if output_activation != fused:
            _names(output_activation, "output_activation", (*_HIDDEN, "softmax"))
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            msg = f"dtype: expected float32 or float64, got {dtype}"
            raise TypeError(msg)
        _names(init, "init", _INITS)
        negative_slope = _number(negative_slope, "negative_slope")

        self._config: dict[str, Any] = {
            "sizes": sizes,
            "activation": activation,
            "output_activation": output_activation,
            "loss": loss,
            "dtype": dtype.name,
            "init": init,
            "negative_slope": negative_slope,
        }
        self._lock = threading.RLock()
        kind = _core.NetworkF32 if dtype == np.float32 else _core.NetworkF64
        acts = [*activation, "identity" if loss == "poisson" else output_activation]
        self._core: _core.NetworkF32 | _core.NetworkF64 = kind(sizes, acts, negative_slope, loss)
        self._dtype: np.dtype[Any] = dtype
        self._views()
        self._initialise(np.random.default_rng(seed))
        self._optimizer: dict[str, Any] = {}
        self.set_optimizer()
        self.loss_curve_: list[float] = []
        self.validation_scores_: list[float] = []

    def _views(self) -> None:
        layers = self._layers(self._core.params)
        self.weights = [w for w, _ in layers]
        self.biases = [b for _, b in layers]

    def _layers(self, buffer: NDArray[Any]) -> list[tuple[NDArray[Any], NDArray[Any]]]:
        """``[(W (out, in), b (out,)), ...]``: views into a buffer laid out as the parameters."""
        layers, start = [], 0
        for n_in, n_out in zip(self.sizes, self.sizes[1:]):
            w = buffer[start : start + n_out * n_in].reshape(n_out, n_in)
            start += n_out * n_in
            layers.append((w, buffer[start : start + n_out]))
            start += n_out
        return layers

    def _initialise(self, rng: np.random.Generator) -> None:
        init = self._config["init"]
        for l, w in enumerate(self.weights):
            n_out, n_in = w.shape
            act = self.activations[l]
            he = init == "he" or (init == "auto" and act in ("relu", "leaky_relu"))
            if he:
                w[...] = rng.standard_normal((n_out, n_in)) * math.sqrt(2.0 / n_in)
            else:
                limit = math.sqrt(6.0 / (n_in + n_out))
                w[...] = rng.uniform(-limit, limit, (n_out, n_in))
            self.biases[l][...] = 0

    # -- what the network is ---------------------------------------------------------------

    @property
    def sizes(self) -> list[int]:
        """Inputs, then each layer's outputs."""
        return list(self._config["sizes"])

    @property
    def activations(self) -> list[str]:
        """One activation name per layer, the output layer's last."""
        return [*self._config["activation"], self._config["output_activation"]]

    @property
    def loss(self) -> str:
        """The loss: "cross_entropy", "binary_cross_entropy" or "mse"."""
        return str(self._config["loss"])

    @property
    def dtype(self) -> np.dtype[Any]:
        """float32 or float64, of the parameters and of every array the network returns."""
        return self._dtype

    @property
    def is_classifier(self) -> bool:
        """Whether the loss is a cross-entropy (else "mse" or "poisson", regression)."""
        return self.loss in ("cross_entropy", "binary_cross_entropy")

    @property
    def params(self) -> NDArray[Any]:
        """Every parameter in one flat view, layer after layer: ``W[l]`` ``(out, in)``
        row-major, then ``b[l]``; writeable (`weights` and `biases` view the same memory)."""
        return self._core.params

    def __repr__(self) -> str:
        c = self._config
        return (
            f"Network({c['sizes']}, activation={c['activation']}, "
            f"output_activation={c['output_activation']!r}, loss={c['loss']!r}, "
            f"dtype={c['dtype']!r})"
        )

    # -- argument checks -------------------------------------------------------------------

    def _cast(self, a: ArrayLike, name: str) -> NDArray[Any]:
        """``a`` as an array of the network's dtype, if it casts without changing kind."""
        a = np.asarray(a)
        if a.dtype == self._dtype:
            return a
        if not np.can_cast(a.dtype, self._dtype, "same_kind"):
            msg = f"{name}: dtype {a.dtype} cannot be cast safely to the network's {self._dtype}"
            raise TypeError(msg)
        return a.astype(self._dtype)

    def _x(self, x: ArrayLike) -> NDArray[Any]:
        if is_sparse(x):
            return _csr(x, self._dtype)  # type: ignore[no-any-return]
        x = self._cast(x, "x")
        if x.ndim == 1 and x.shape[0] == self.sizes[0]:
            msg = (
                f"x: expected a 2-D array (batch, {self.sizes[0]}), got a 1-D one; "
                "use x[None, :] for one sample"
            )
            raise ValueError(msg)
        return x

    def _y(self, y: ArrayLike) -> NDArray[Any]:
        """y as the C++ loss reads it: int labels (cross-entropy) or (batch, outputs) floats."""
        y = np.asarray(y)
        if self.loss == "cross_entropy" and y.ndim == 1:
            return y  # labels: dtype and range are checked in C++
        y = self._cast(y, "y")
        if y.ndim == 1 and self.sizes[-1] == 1:
            y = y[:, None]
        return y

    # -- inference -------------------------------------------------------------------------

    def forward(self, x: ArrayLike) -> NDArray[Any]:
        """The network's output: ``x: (batch, inputs)`` -> ``(batch, outputs)``.

        Probabilities for the classification losses, values for "mse" and "poisson". ``x``
        may be a scipy.sparse CSR or CSC matrix: the first layer then multiplies its non-zeros
        only.
        """
        x = self._x(x)
        return self._core.forward_csr(x) if is_sparse(x) else self._core.forward(x)

    def predict_proba(self, x: ArrayLike) -> NDArray[Any]:
        """Class probabilities ``(batch, classes)``; for binary cross-entropy one
        probability per output."""
        if not self.is_classifier:
            msg = "predict_proba: the network is a regressor (loss='mse')"
            raise ValueError(msg)
        return self.forward(x)

    def predict(self, x: ArrayLike) -> NDArray[Any]:
        """Class labels ``(batch,)`` for cross-entropy, 0/1 per output for binary
        cross-entropy, values ``(batch, outputs)`` for "mse"."""
        out = self.forward(x)
        if self.loss == "cross_entropy":
            labels: NDArray[Any] = out.argmax(axis=1)
            return labels
        if self.loss == "binary_cross_entropy":
            return (out > 0.5).astype(np.int64)
        return out

    def score(self, x: ArrayLike, y: ArrayLike) -> float:
        """Accuracy for classification (labels or one-hot ``y``); for regression R², the mean
        over outputs as scikit-learn's ``r2_score``."""
        x, y = self._x(x), np.asarray(y)
        batch, outputs = x.shape[0] if x.ndim else 0, self.sizes[-1]
        given_labels = self.loss == "cross_entropy" and y.ndim == 1
        if y.shape[:1] != (batch,):
            msg = f"y: expected {batch} rows to match x, got shape {y.shape}"
            raise ValueError(msg)
        if not given_labels and y.shape not in ((batch, outputs), (batch,) * (outputs == 1)):
            msg = f"y: expected shape ({batch}, {outputs}), got {y.shape}"
            raise ValueError(msg)
        out = self.forward(x)
        if self.loss == "cross_entropy":
            labels = y if y.ndim == 1 else y.argmax(axis=1)
            return float(np.mean(out.argmax(axis=1) == labels))
        if self.loss == "binary_cross_entropy":
            return float(np.mean((out > 0.5) == (y.reshape(out.shape) > 0.5)))
        # R² per output, then their mean (scikit-learn's "uniform_average"); an output whose
        # target is constant scores 1 when predicted exactly, else 0.
        y = y.reshape(out.shape).astype(np.float64)
        residual = ((y - out) ** 2).sum(axis=0)
        total = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
        safe = np.where(total > 0, total, 1.0)
        r2 = np.where(total > 0, 1.0 - residual / safe, (residual == 0).astype(np.float64))
        return float(r2.mean())

    # -- learning --------------------------------------------------------------------------

    @_one_at_a_time
    def gradients(
        self, x: ArrayLike, y: ArrayLike, reduction: str = "mean"
    ) -> tuple[float, list[tuple[NDArray[Any], NDArray[Any]]]]:
        """The loss of ``(x, y)`` and each layer's ``(grad_w, grad_b)``; the model is unchanged.

        ``grad_w: (out, in)``, ``grad_b: (out,)``, copies. ``reduction`` is
        "mean" (over the batch, as training uses) or "sum".
        """
        _names(reduction, "reduction", ("mean", "sum"))
        loss = self._core.loss_and_gradients(self._x(x), self._y(y), reduction)
        return loss, [(gw.copy(), gb.copy()) for gw, gb in self._layers(self._core.grads)]

    def loss_and_gradient(
        self,
        params: ArrayLike,
        x: ArrayLike,
        y: ArrayLike,
        *,
        sample_weight: ArrayLike | None = None,
        alpha: float = 0.0,
    ) -> tuple[float, NDArray[Any]]:
        """The objective of full-batch optimisers (L-BFGS) at the flat ``params``: the mean loss
        of ``(x, y)``, weighted by ``sample_weight (batch,)`` (``Σ w_i ℓ_i / Σ w_i``), plus the
        L2 term ``alpha / (2 Σw) ||W||²``; and its gradient ``(parameters,)``, laid out as
        `params`. One C++ call with the GIL released; the network is unchanged.
        """
        alpha = _number(alpha, "alpha")
        params = self._cast(params, "params")
        weights = None if sample_weight is None else self._cast(sample_weight, "sample_weight")
        with self._lock:
            loss, grad = self._core.loss_and_gradient(params, self._x(x), self._y(y), weights,
                                                      alpha)  # fmt: skip
        return float(loss), grad

    def per_sample_gradients(
        self, x: NDArray[np.floating], y: NDArray[np.generic]
    ) -> list[tuple[NDArray[np.floating], NDArray[np.floating]]]:
        """The gradient of each sample's own loss, per layer: ``[(grad_w, grad_b), ...]``.

        ``grad_w: (batch, out, in)``, ``grad_b: (batch, out)``. Summed over the batch they give
        ``gradients(x, y, reduction="sum")``, averaged ``gradients(x, y)`` (the mean). Computed
        in C++ from one backward pass; the model is unchanged.
        """
        layers = self._core.per_sample_gradients(self._x(x), self._y(y))
        return [(grad_w, grad_b) for grad_w, grad_b in layers]

    def per_sample_gradient_norms(
        self, x: NDArray[np.floating], y: NDArray[np.generic]
    ) -> NDArray[np.floating]:
        """The L2 norm of each sample's gradient over all parameters, ``(batch,)``.

        Equal to the norms of `per_sample_gradients`, without forming them: a dense layer's
        per-sample gradient is the outer product ``dz aᵀ`` (and ``dz`` for the bias), so its
        squared norm is ``‖dz‖² (‖a‖² + 1)``. Costs about one `gradients` call.
        """
        return self._core.per_sample_gradient_norms(self._x(x), self._y(y))

    def trace(
        self, x: NDArray[np.floating], y: NDArray[np.generic], reduction: str = "mean"
    ) -> backprop.Trace:
        """Every term of one forward and backward pass on ``(x, y)``, with shapes and equations.

        ``Z[l], A[l], dA[l], dZ[l], dW[l], db[l]`` for layers ``l = 1..L`` (``A[0] = X``), in the
        order they are computed; ``print`` it for a table. Its ``dW``, ``db`` equal
        `gradients`. The model is unchanged.
        """
        _names(reduction, "reduction", ("mean", "sum"))
        self._no_exp_output("trace")
        return backprop.trace(self, x, y, reduction)

    def jacobian(self, x: NDArray[np.floating]) -> NDArray[np.floating]:
        """The Jacobian of `forward`'s outputs with respect to the inputs, per sample.

        ``x: (batch, inputs)`` -> ``(batch, outputs, inputs)``.
        """
        self._no_exp_output("jacobian")
        return backprop.jacobian(self, x)

    def _no_exp_output(self, method: str) -> None:
        if self.loss == "poisson":
            msg = f"{method}: not available for the poisson loss's exp output"
            raise ValueError(msg)

    @_one_at_a_time
    def set_optimizer(
        self,
        optimizer: str = "sgd",
        lr: float = 0.01,
        *,
        momentum: float = 0.0,
        nesterov: bool = False,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        clip_norm: float = 1.0,
        noise_multiplier: float = 1.0,
        seed: int | None = None,
    ) -> Network:
        """Choose the optimizer of `train_step`, `fit` and `partial_fit`; clears its state.

        sgd: ``v = momentum v + g; p -= lr v`` (PyTorch's form, Nesterov
        optional). adam: bias-corrected. ``weight_decay`` adds ``λ W`` to the
        weights' gradients (L2; biases are not decayed).

        dpsgd (differentially private SGD): each sample's gradient is clipped to
        L2 norm ``clip_norm``, the clipped gradients summed, Gaussian noise of
        standard deviation ``noise_multiplier * clip_norm`` added to every
        parameter, the result divided by the batch size and an SGD step taken
        (no momentum). The noise comes from ``seed`` (None: a fresh one, kept in
        `optimizer`) and the step count, so a saved or pickled network continues
        the same noise stream.
        """
        config: dict[str, Any] = {
            "optimizer": _names(optimizer, "optimizer", _OPTIMIZERS),
            "lr": _number(lr, "lr", low_open=True),
            "momentum": _number(momentum, "momentum", high=1.0),
            "nesterov": bool(nesterov),
            "beta1": _number(beta1, "beta1", high=1.0),
            "beta2": _number(beta2, "beta2", high=1.0),
            "eps": _number(eps, "eps", low_open=True),
            "weight_decay": _number(weight_decay, "weight_decay"),
            "clip_norm": _number(clip_norm, "clip_norm", low_open=True),
            "noise_multiplier": _number(noise_multiplier, "noise_multiplier"),
            "seed": _noise_seed(seed) if optimizer == "dpsgd" else None,
        }
        if config["nesterov"] and config["momentum"] == 0:
            msg = "nesterov: needs momentum > 0"
            raise ValueError(msg)
        if optimizer == "dpsgd" and config["momentum"] != 0:
            msg = f"momentum: dpsgd takes plain SGD steps, got momentum={config['momentum']}"
            raise ValueError(msg)
        if optimizer == "adam" and (config["beta1"] >= 1 or config["beta2"] >= 1):
            msg = "beta1, beta2: must be < 1 for adam's bias correction"
            raise ValueError(msg)
        self._core.set_optimizer(
            config["optimizer"], config["lr"], config["momentum"], config["nesterov"],
            config["beta1"], config["beta2"], config["eps"], config["weight_decay"],
            config["clip_norm"], config["noise_multiplier"], config["seed"] or 0,
        )  # fmt: skip
        self._optimizer = config
        return self

    @_one_at_a_time
    def set_learning_rate(self, lr: float) -> Network:
        """Change the optimizer's learning rate, keeping its state (velocity, moments, step
        count), as a schedule does between epochs; returns ``self``."""
        lr = _number(lr, "lr", low_open=True)
        self._core.set_learning_rate(lr)
        self._optimizer["lr"] = lr
        return self

    @property
    def optimizer(self) -> dict[str, Any]:
        """The optimizer's settings, as `set_optimizer` took them."""
        return dict(self._optimizer)

    @_one_at_a_time
    def train_step(self, x: ArrayLike, y: ArrayLike) -> float:
        """One optimizer step on the batch ``(x, y)``; returns its mean loss before the step.

        A non-finite loss, or a step that overflows the parameters, raises
        FloatingPointError and leaves the network as it was.
        """
        loss = self._core.train_step(self._x(x), self._y(y))
        if not math.isfinite(loss):
            msg = (
                f"the loss became {loss} or the parameters overflowed; the network is as "
                f"before the step. Try a smaller learning rate (lr={self._optimizer['lr']})"
            )
            raise FloatingPointError(msg)
        return loss

    @_one_at_a_time
    def fit(
        self,
        x: ArrayLike,
        y: ArrayLike,
        epochs: int = 200,
        batch_size: int = 32,
        optimizer: str = "sgd",
        lr: float = 0.01,
        momentum: float = 0.0,
        *,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        clip_norm: float = 1.0,
        noise_multiplier: float = 1.0,
        validation_data: tuple[ArrayLike, ArrayLike] | None = None,
        early_stopping: bool = False,
        patience: int = 10,
        tol: float = 1e-4,
        shuffle: bool = True,
        seed: Any = None,
        verbose: bool = False,
        progress: bool | None = None,
    ) -> Network:
        """Train for ``epochs`` passes over ``(x, y)`` in mini-batches; returns ``self``.

        The optimizer starts afresh (see `set_optimizer`). Each epoch reshuffles
        the samples from ``seed`` (when ``shuffle``) and keeps the last, partial
        batch. ``loss_curve_`` gets each epoch's mean training loss;
        ``validation_scores_`` the `score` on ``validation_data = (x_val, y_val)``.

        With ``early_stopping``, training stops once ``patience`` epochs in a row
        fail to improve the best validation score (or, without validation data,
        the training loss) by ``tol``; with validation data the best parameters
        are restored. ``verbose`` prints one line per epoch; ``progress``
        (default: when stderr is a terminal) draws a progress bar. The epochs
        run in C++ in one call (one per epoch when a bar or lines are shown),
        the loop scikit-learn's estimators use too; ``x`` may be a
        scipy.sparse CSR or CSC matrix.

        ``optimizer="dpsgd"`` trains with differentially private SGD (see
        `set_optimizer`), ``clip_norm`` and ``noise_multiplier`` its settings,
        its noise seeded from ``seed``.
        """
        epochs = _count(epochs, "epochs")
        patience = _count(patience, "patience")
        tol = _number(tol, "tol")
        x, y, validation = self._training_data(x, y, validation_data)
        batch_size = min(_count(batch_size, "batch_size"), x.shape[0])  # any size past n is n
        rng = _generator(seed)
        saved = self._snapshot()
        noise_seed = int(rng.integers(2**63)) if optimizer == "dpsgd" else None
        self.set_optimizer(
            optimizer, lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay,
            clip_norm=clip_norm, noise_multiplier=noise_multiplier, seed=noise_seed,
        )  # fmt: skip
        self.loss_curve_, self.validation_scores_ = [], []
        try:
            self._epochs(x, y, validation, epochs, batch_size, early_stopping, patience, tol,
                         shuffle, rng, verbose, progress)  # fmt: skip
        except Exception:  # a diverging epoch, or an argument only the C++ side can judge
            self._restore(saved)
            raise
        return self

    @_one_at_a_time
    def partial_fit(
        self,
        x: ArrayLike,
        y: ArrayLike,
        batch_size: int = 32,
        shuffle: bool = True,
        seed: Any = None,
    ) -> Network:
        """One more epoch over ``(x, y)`` with the current optimizer and its state.

        Appends the epoch's mean loss to ``loss_curve_``; returns ``self``. If the
        loss or the parameters become non-finite, raises FloatingPointError and
        leaves the network as it was before the call.
        """
        x, y, _ = self._training_data(x, y, None)
        batch_size = min(_count(batch_size, "batch_size"), x.shape[0])  # any size past n is n
        rng = _generator(seed)
        saved = self._snapshot()
        state = self._training_state(rng)
        losses, _, _ = self._run(x, y, None, 1, batch_size, math.inf, 0.0, shuffle, state)
        loss = losses[-1]
        if not self._finite(loss):
            self._restore(saved)
            msg = (
                f"partial_fit: the training loss became {loss} or the parameters overflowed; "
                f"the network is as before the call. Try a smaller learning rate "
                f"(lr={self._optimizer['lr']})"
            )
            raise FloatingPointError(msg)
        self.loss_curve_.append(loss)
        return self

    def _finite(self, loss: float) -> bool:
        return math.isfinite(loss) and bool(np.isfinite(self._core.params).all())

    def _snapshot(self) -> tuple[Any, ...]:
        """Everything training changes, to put back when it fails."""
        first, second = self._core.optimizer_state
        return (self._core.params.copy(), dict(self._optimizer), first.copy(), second.copy(),
                self._core.optimizer_steps, list(self.loss_curve_),
                list(self.validation_scores_))  # fmt: skip

    def _restore(self, saved: tuple[Any, ...]) -> None:
        """Put back what `_snapshot` took (or `_from_state` read from a file)."""
        params, optimizer, first, second, steps, losses, scores = saved
        self._core.params[...] = params
        self.set_optimizer(**optimizer)
        state = self._core.optimizer_state
        state[0][...], state[1][...] = first, second
        self._core.optimizer_steps = steps
        self.loss_curve_, self.validation_scores_ = losses, scores

    def _training_data(
        self, x: ArrayLike, y: ArrayLike, validation_data: Any
    ) -> tuple[NDArray[Any], NDArray[Any], tuple[NDArray[Any], NDArray[Any]] | None]:
        """Checks every array of a fit before the first step, so a bad one changes nothing."""
        x, y = self._x(x), self._y(y)
        if is_sparse(x):
            if self._optimizer["optimizer"] == "dpsgd":
                msg = "x: dpsgd needs dense inputs, got a sparse matrix"
                raise ValueError(msg)
        else:
            self._core.check(x, y)
            x = np.ascontiguousarray(x)
        validation = None
        if validation_data is not None:
            if not (isinstance(validation_data, tuple) and len(validation_data) == 2):
                msg = "validation_data: expected a tuple (x_val, y_val)"
                raise TypeError(msg)
            try:
                validation = (self._x(validation_data[0]), self._y(validation_data[1]))
                if not is_sparse(validation[0]):
                    self._core.check(*validation)
            except (TypeError, ValueError) as e:
                msg = f"validation_data: {e}"
                raise type(e)(msg) from None
        return x, np.ascontiguousarray(y), validation

    def _run(self, x: Any, y: NDArray[Any], validation: tuple[Any, Any] | None, epochs: int,
             batch_size: int, n_iter_no_change: float, tol: float, shuffle: bool,
             state: Any, best: NDArray[Any] | None = None,
             ) -> tuple[list[float], list[float], str]:  # fmt: skip
        """Up to ``epochs`` epochs in one C++ call (training.hpp, the loop scikit-learn's
        estimators use too) with the optimizer as set; ``state`` (a ``TrainingState``) carries
        the reshuffles' stream between calls. Returns (losses, validation scores, stop)."""
        losses, scores, stop, _ = self._core.train_epochs(
            x, y, None, None if validation is None else (*validation, None), state,
            max_epochs=epochs, batch_size=batch_size, shuffle=shuffle, alpha=0.0, data_scale=1.0,
            schedule="constant", lr_init=self._optimizer["lr"], power_t=0.5, tol=tol,
            n_iter_no_change=n_iter_no_change, best_params=best, batch_penalty=False,
            stop_when_diverged=True, exact_match=False,
        )  # fmt: skip
        return losses, scores, stop

    def _training_state(self, rng: np.random.Generator) -> Any:
        state = _core.TrainingState()
        state.seed = int(rng.integers(2**63))
        state.lr = self._optimizer["lr"]
        return state

    def _epochs(self, x: Any, y: NDArray[Any],
                validation: tuple[Any, Any] | None, epochs: int,
                batch_size: int, early_stopping: bool, patience: int, tol: float,
                shuffle: bool, rng: np.random.Generator, verbose: bool,
                progress: bool | None) -> None:  # fmt: skip
        """The epochs of `fit` in C++: all in one call, or one per call when a progress bar or
        verbose lines show them. Early stopping counts the epochs that fail to improve the best
        validation score (or training loss) by ``tol``; ``patience`` of them stop training."""
        bar = ProgressBar(epochs, enabled=progress)
        best = self._core.params.copy() if validation is not None else None
        stall = patience - 1 if early_stopping else math.inf
        state = self._training_state(rng)
        chunk = 1 if verbose or bar.enabled else epochs
        done, stop = 0, "max_epochs"
        while done < epochs and stop == "max_epochs":
            start = time.perf_counter()
            losses, scores, stop = self._run(x, y, validation, chunk, batch_size, stall, tol,
                                             shuffle, state, best)  # fmt: skip
            self.loss_curve_ += losses
            self.validation_scores_ += scores
            for i, loss in enumerate(losses):
                epoch = done + i + 1
                line = f"epoch {epoch}/{epochs}  loss {loss:.6f}"
                if validation is not None:
                    line += f"  validation {scores[i]:.4f}"
                bar.update(line)
                if verbose:
                    bar.write(f"{line}  ({time.perf_counter() - start:.3f} s)")
            done += len(losses)
            if stop == "diverged" or not self._finite(losses[-1]):
                bar.close()
                msg = (
                    f"epoch {done}: the training loss became {losses[-1]} or the parameters "
                    f"overflowed; the network is restored to what it was before fit. "
                    f"Try a smaller learning rate (lr={self._optimizer['lr']})"
                )
                raise FloatingPointError(msg)
        if stop == "converged" and verbose:
            bar.write(f"no improvement for {patience} epochs: stopping")
        if early_stopping and best is not None:
            self._core.params[...] = best
        bar.close()

    def plot_loss_curve(self, path: str | os.PathLike[str] | None = None) -> Any:
        """Plot ``loss_curve_`` (and ``validation_scores_`` on a second axis).

        Returns the matplotlib Figure; with ``path`` also saves it there (PNG, SVG, ...).
        Needs matplotlib (``pip install "denseprop[plot]"``).
        """
        try:
            from matplotlib.figure import Figure
        except ImportError as e:
            msg = 'plot_loss_curve needs matplotlib: pip install "denseprop[plot]"'
            raise ImportError(msg) from e
        if not self.loss_curve_:
            msg = "plot_loss_curve: nothing to plot, fit the network first"
            raise ValueError(msg)
        fig = Figure(figsize=(6, 4), layout="constrained")
        ax = fig.add_subplot()
        epochs = np.arange(1, len(self.loss_curve_) + 1)
        ax.plot(epochs, self.loss_curve_, color="C0", label="training loss")
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{self.loss} (mean per sample)")
        ax.set_yscale("log")
        if self.validation_scores_:
            score = ax.twinx()
            score.plot(epochs[: len(self.validation_scores_)], self.validation_scores_,
                       color="C1", label="validation score")  # fmt: skip
            score.set_ylabel("accuracy" if self.is_classifier else "R²")
            fig.legend(loc="upper right")
        ax.set_title(f"Network({self.sizes}), {' / '.join(self.activations)}, {self.loss}",
                     fontsize=9)  # fmt: skip
        if path is not None:
            fig.savefig(path, dpi=120)
        return fig

    # -- saving ----------------------------------------------------------------------------

    @_one_at_a_time
    def _state(self) -> dict[str, Any]:
        first, second = self._core.optimizer_state
        config = {"format": _FORMAT, "network": self._config, "optimizer": self._optimizer}
        state = {"config": np.array(json.dumps(config))}
        for l, (w, b) in enumerate(zip(self.weights, self.biases)):
            state[f"W{l}"], state[f"b{l}"] = w, b
        state["optimizer_first"], state["optimizer_second"] = first, second
        state["optimizer_steps"] = np.array(self._core.optimizer_steps)
        state["loss_curve"] = np.array(self.loss_curve_, dtype=np.float64)
        state["validation_scores"] = np.array(self.validation_scores_, dtype=np.float64)
        return state

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write weights, biases, optimizer state and configuration (JSON) to a ``.npz``.

        The file loads with ``numpy.load(path, allow_pickle=False)``.
        """
        with open(path, "wb") as f:  # a path object or name, used as given (no ".npz" added)
            np.savez(f, **self._state())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Network:
        """The network saved at ``path``, bitwise as it was, dtype and optimizer state included."""
        with np.load(path, allow_pickle=False) as f:
            return cls._from_state({k: f[k] for k in f.files})

    @classmethod
    def _from_state(cls, state: dict[str, NDArray[Any]]) -> Network:
        config = json.loads(str(state["config"]))
        if config.get("format") != _FORMAT:
            msg = f"path: saved in format {config.get('format')}, expected {_FORMAT}"
            raise ValueError(msg)
        c = config["network"]
        net = cls(
            c["sizes"], c["activation"], c["loss"], output_activation=c["output_activation"],
            dtype=c["dtype"], init=c["init"], negative_slope=c["negative_slope"], seed=0,
        )  # fmt: skip
        layers = range(len(net.weights))
        params = np.concatenate([state[f"{k}{l}"].ravel() for l in layers for k in "Wb"])
        net._restore((params, config["optimizer"], state["optimizer_first"],
                      state["optimizer_second"], int(state["optimizer_steps"]),
                      [float(v) for v in state["loss_curve"]],
                      [float(v) for v in state["validation_scores"]]))  # fmt: skip
        return net

    def __getstate__(self) -> dict[str, NDArray[Any]]:
        return self._state()

    def __setstate__(self, state: dict[str, NDArray[Any]]) -> None:
        self.__dict__.update(Network._from_state(state).__dict__)
