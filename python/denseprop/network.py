"""`Network`: a multilayer perceptron whose training step is one call into C++.

The parameters live in one C++ buffer; ``Network.weights`` and ``Network.biases`` are
NumPy views of it. Every method checks its arguments before the model is touched, so a
bad argument raises and leaves the network exactly as it was.
"""

import functools
import json
import math
import threading
import time
from typing import Any, Callable, TypeVar, cast

import numpy as np

from ._native import core as _core
from .progress import ProgressBar

__all__ = ["Network"]

_LOSSES = {
    # loss -> the output activation it is fused with
    "cross_entropy": "softmax",
    "binary_cross_entropy": "sigmoid",
    "mse": "identity",
}
_HIDDEN = ("identity", "sigmoid", "tanh", "relu", "leaky_relu")
_INITS = ("auto", "glorot", "he")
_OPTIMIZERS = ("sgd", "adam")
_FORMAT = 1  # version of the saved file layout
_LARGEST_SIZE = 2**31 - 1  # units of one layer, as the C++ model takes them


def _names(value, name, allowed):
    if value not in allowed:
        raise ValueError(f"{name}: unknown {value!r}, expected one of {', '.join(allowed)}")
    return value


def _number(value, name, low=0.0, high=math.inf, low_open=False):
    """``value`` as a float in [low, high] (or (low, high] when ``low_open``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    value = float(value)
    above = value > low if low_open else value >= low
    if not (above and value <= high and math.isfinite(value)):
        bound = "(" if low_open else "["
        raise ValueError(f"{name}: must be a finite number in {bound}{low}, {high}], got {value}")
    return value


def _generator(seed):
    """``numpy.random.default_rng(seed)``, its errors naming ``seed``."""
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError) as e:
        raise type(e)(f"seed: {e}") from None


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _one_at_a_time(method: _Method) -> _Method:
    """``method`` run holding the Network's lock: a call from another thread waits until it
    ends, so steps, fits and saves never see or leave each other's half-done state."""

    @functools.wraps(method)
    def locked(self: "Network", *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return cast(_Method, locked)


def _count(value, name, low=1):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name}: must be >= {low}, got {value}")
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
    loss : {"cross_entropy", "binary_cross_entropy", "mse"}
        Cross-entropy over classes (softmax output), independent binary
        cross-entropies (sigmoid outputs), or half the squared error
        (regression, identity output). Each is the mean over the batch.
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
        sizes,
        activation="sigmoid",
        loss="cross_entropy",
        *,
        output_activation=None,
        dtype="float32",
        seed=None,
        init="auto",
        negative_slope=0.01,
    ):
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__"):
            raise TypeError(f"sizes: expected a sequence of ints, got {type(sizes).__name__}")
        sizes = [_count(s, f"sizes[{i}]") for i, s in enumerate(sizes)]
        for i, s in enumerate(sizes):
            if s > _LARGEST_SIZE:
                raise ValueError(f"sizes[{i}]: must be at most {_LARGEST_SIZE}, got {s}")
        if len(sizes) < 2:
            raise ValueError(f"sizes: need at least inputs and outputs, got {sizes}")
        hidden = len(sizes) - 2
        if isinstance(activation, str):
            activation = [activation] * hidden
        activation = list(activation)
        if len(activation) != hidden:
            raise ValueError(
                f"activation: expected one name or {hidden} (one per hidden layer), "
                f"got {len(activation)}"
            )
        for a in activation:
            _names(a, "activation", _HIDDEN)
        _names(loss, "loss", tuple(_LOSSES))
        fused = _LOSSES[loss]
        if output_activation is None:
            output_activation = fused
        elif loss != "mse" and output_activation != fused:
            raise ValueError(
                f"output_activation: {loss} is computed from {fused} outputs, "
                f"got {output_activation!r}"
            )
        _names(output_activation, "output_activation", (*_HIDDEN, "softmax"))
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype: expected float32 or float64, got {dtype}")
        _names(init, "init", _INITS)
        negative_slope = _number(negative_slope, "negative_slope")

        self._config = {
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
        self._core = kind(sizes, [*activation, output_activation], negative_slope, loss)
        self._dtype = dtype
        self._views()
        self._initialise(np.random.default_rng(seed))
        self._optimizer = {}
        self.set_optimizer()
        self.loss_curve_ = []
        self.validation_scores_ = []

    def _views(self):
        layers = self._layers(self._core.params)
        self.weights = [w for w, _ in layers]
        self.biases = [b for _, b in layers]

    def _layers(self, buffer):
        """``[(W (out, in), b (out,)), ...]``: views into a buffer laid out as the parameters."""
        layers, start = [], 0
        for n_in, n_out in zip(self.sizes, self.sizes[1:]):
            w = buffer[start : start + n_out * n_in].reshape(n_out, n_in)
            start += n_out * n_in
            layers.append((w, buffer[start : start + n_out]))
            start += n_out
        return layers

    def _initialise(self, rng):
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
    def sizes(self):
        """Inputs, then each layer's outputs."""
        return list(self._config["sizes"])

    @property
    def activations(self):
        """One activation name per layer, the output layer's last."""
        return [*self._config["activation"], self._config["output_activation"]]

    @property
    def loss(self):
        return self._config["loss"]

    @property
    def dtype(self):
        return self._dtype

    @property
    def is_classifier(self):
        return self.loss != "mse"

    def __repr__(self):
        c = self._config
        return (
            f"Network({c['sizes']}, activation={c['activation']}, "
            f"output_activation={c['output_activation']!r}, loss={c['loss']!r}, "
            f"dtype={c['dtype']!r})"
        )

    # -- argument checks -------------------------------------------------------------------

    def _cast(self, a, name):
        """``a`` as an array of the network's dtype, if it casts without changing kind."""
        a = np.asarray(a)
        if a.dtype == self._dtype:
            return a
        if not np.can_cast(a.dtype, self._dtype, "same_kind"):
            raise TypeError(
                f"{name}: dtype {a.dtype} cannot be cast safely to the network's {self._dtype}"
            )
        return a.astype(self._dtype)

    def _x(self, x):
        x = self._cast(x, "x")
        if x.ndim == 1 and x.shape[0] == self.sizes[0]:
            raise ValueError(
                f"x: expected a 2-D array (batch, {self.sizes[0]}), got a 1-D one; "
                "use x[None, :] for one sample"
            )
        return x

    def _y(self, y):
        """y as the C++ loss reads it: int labels (cross-entropy) or (batch, outputs) floats."""
        y = np.asarray(y)
        if self.loss == "cross_entropy" and y.ndim == 1:
            return y  # labels: dtype and range are checked in C++
        y = self._cast(y, "y")
        if y.ndim == 1 and self.sizes[-1] == 1:
            y = y[:, None]
        return y

    # -- inference -------------------------------------------------------------------------

    def forward(self, x):
        """The network's output: ``x: (batch, inputs)`` -> ``(batch, outputs)``.

        Probabilities for the classification losses, values for "mse".
        """
        return self._core.forward(self._x(x))

    def predict_proba(self, x):
        """Class probabilities ``(batch, classes)``; for binary cross-entropy one
        probability per output."""
        if not self.is_classifier:
            raise ValueError("predict_proba: the network is a regressor (loss='mse')")
        return self.forward(x)

    def predict(self, x):
        """Class labels ``(batch,)`` for cross-entropy, 0/1 per output for binary
        cross-entropy, values ``(batch, outputs)`` for "mse"."""
        out = self.forward(x)
        if self.loss == "cross_entropy":
            return out.argmax(axis=1)
        if self.loss == "binary_cross_entropy":
            return (out > 0.5).astype(np.int64)
        return out

    def score(self, x, y):
        """Accuracy for classification (labels or one-hot ``y``); for regression R², the mean
        over outputs as scikit-learn's ``r2_score``."""
        x, y = self._x(x), np.asarray(y)
        batch, outputs = len(x) if x.ndim else 0, self.sizes[-1]
        labels = self.loss == "cross_entropy" and y.ndim == 1
        if y.shape[:1] != (batch,):
            raise ValueError(f"y: expected {batch} rows to match x, got shape {y.shape}")
        if not labels and y.shape not in ((batch, outputs), (batch,) * (outputs == 1)):
            raise ValueError(f"y: expected shape ({batch}, {outputs}), got {y.shape}")
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
    def gradients(self, x, y, reduction="mean"):
        """The loss of ``(x, y)`` and each layer's ``(grad_w, grad_b)``; the model is unchanged.

        ``grad_w: (out, in)``, ``grad_b: (out,)``, copies. ``reduction`` is
        "mean" (over the batch, as training uses) or "sum".
        """
        _names(reduction, "reduction", ("mean", "sum"))
        loss = self._core.loss_and_gradients(self._x(x), self._y(y), reduction)
        return loss, [(gw.copy(), gb.copy()) for gw, gb in self._layers(self._core.grads)]

    @_one_at_a_time
    def set_optimizer(
        self,
        optimizer="sgd",
        lr=0.01,
        *,
        momentum=0.0,
        nesterov=False,
        beta1=0.9,
        beta2=0.999,
        eps=1e-8,
        weight_decay=0.0,
    ):
        """Choose the optimizer of `train_step`, `fit` and `partial_fit`; clears its state.

        sgd: ``v = momentum v + g; p -= lr v`` (PyTorch's form, Nesterov
        optional). adam: bias-corrected. ``weight_decay`` adds ``λ W`` to the
        weights' gradients (L2; biases are not decayed).
        """
        config = {
            "optimizer": _names(optimizer, "optimizer", _OPTIMIZERS),
            "lr": _number(lr, "lr", low_open=True),
            "momentum": _number(momentum, "momentum", high=1.0),
            "nesterov": bool(nesterov),
            "beta1": _number(beta1, "beta1", high=1.0),
            "beta2": _number(beta2, "beta2", high=1.0),
            "eps": _number(eps, "eps", low_open=True),
            "weight_decay": _number(weight_decay, "weight_decay"),
        }
        if config["nesterov"] and config["momentum"] == 0:
            raise ValueError("nesterov: needs momentum > 0")
        if optimizer == "adam" and (config["beta1"] >= 1 or config["beta2"] >= 1):
            raise ValueError("beta1, beta2: must be < 1 for adam's bias correction")
        self._core.set_optimizer(
            config["optimizer"], config["lr"], config["momentum"], config["nesterov"],
            config["beta1"], config["beta2"], config["eps"], config["weight_decay"],
        )  # fmt: skip
        self._optimizer = config
        return self

    @property
    def optimizer(self):
        """The optimizer's settings, as `set_optimizer` took them."""
        return dict(self._optimizer)

    @_one_at_a_time
    def train_step(self, x, y):
        """One optimizer step on the batch ``(x, y)``; returns its mean loss before the step.

        A non-finite loss, or a step that overflows the parameters, raises
        FloatingPointError and leaves the network as it was.
        """
        x, y = self._x(x), self._y(y)
        saved = self._snapshot()
        loss = self._core.train_step(x, y)
        if not self._finite(loss):
            self._restore(saved)
            raise FloatingPointError(
                f"the loss became {loss} or the parameters overflowed; the network is as "
                f"before the step. Try a smaller learning rate (lr={self._optimizer['lr']})"
            )
        return loss

    @_one_at_a_time
    def fit(
        self,
        x,
        y,
        epochs=200,
        batch_size=32,
        optimizer="sgd",
        lr=0.01,
        momentum=0.0,
        *,
        nesterov=False,
        weight_decay=0.0,
        validation_data=None,
        early_stopping=False,
        patience=10,
        tol=1e-4,
        shuffle=True,
        seed=None,
        verbose=False,
        progress=None,
    ):
        """Train for ``epochs`` passes over ``(x, y)`` in mini-batches; returns ``self``.

        The optimizer starts afresh (see `set_optimizer`). Each epoch reshuffles
        the samples from ``seed`` (when ``shuffle``) and keeps the last, partial
        batch. ``loss_curve_`` gets each epoch's mean training loss;
        ``validation_scores_`` the `score` on ``validation_data = (x_val, y_val)``.

        With ``early_stopping``, training stops once the validation score (or,
        without validation data, the training loss) has not improved by ``tol``
        for ``patience`` epochs; with validation data the best parameters are
        restored. ``verbose`` prints one line per epoch; ``progress`` (default:
        when stderr is a terminal) draws a progress bar.
        """
        epochs = _count(epochs, "epochs")
        batch_size = _count(batch_size, "batch_size")
        patience = _count(patience, "patience")
        tol = _number(tol, "tol")
        x, y, validation = self._training_data(x, y, validation_data)
        rng = _generator(seed)
        saved = self._snapshot()
        self.set_optimizer(
            optimizer, lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay
        )
        self.loss_curve_, self.validation_scores_ = [], []
        try:
            self._epochs(x, y, validation, epochs, batch_size, early_stopping, patience, tol,
                         shuffle, rng, verbose, progress)  # fmt: skip
        except FloatingPointError:
            self._restore(saved)
            raise
        return self

    @_one_at_a_time
    def partial_fit(self, x, y, batch_size=32, shuffle=True, seed=None):
        """One more epoch over ``(x, y)`` with the current optimizer and its state.

        Appends the epoch's mean loss to ``loss_curve_``; returns ``self``. If the
        loss or the parameters become non-finite, raises FloatingPointError and
        leaves the network as it was before the call.
        """
        batch_size = _count(batch_size, "batch_size")
        x, y, _ = self._training_data(x, y, None)
        rng = _generator(seed)
        saved = self._snapshot()
        order = rng.permutation(len(x)) if shuffle else np.arange(len(x))
        loss = self._core.fit_epoch(x, y, order, batch_size)
        if not self._finite(loss):
            self._restore(saved)
            raise FloatingPointError(
                f"partial_fit: the training loss became {loss} or the parameters overflowed; "
                f"the network is as before the call. Try a smaller learning rate "
                f"(lr={self._optimizer['lr']})"
            )
        self.loss_curve_.append(loss)
        return self

    def _finite(self, loss):
        return math.isfinite(loss) and bool(np.isfinite(self._core.params).all())

    def _snapshot(self):
        """Everything training changes, to put back when it fails."""
        first, second = self._core.optimizer_state
        return (self._core.params.copy(), dict(self._optimizer), first.copy(), second.copy(),
                self._core.optimizer_steps, list(self.loss_curve_),
                list(self.validation_scores_))  # fmt: skip

    def _restore(self, saved):
        """Put back what `_snapshot` took (or `_from_state` read from a file)."""
        params, optimizer, first, second, steps, losses, scores = saved
        self._core.params[...] = params
        self.set_optimizer(**optimizer)
        state = self._core.optimizer_state
        state[0][...], state[1][...] = first, second
        self._core.optimizer_steps = steps
        self.loss_curve_, self.validation_scores_ = losses, scores

    def _training_data(self, x, y, validation_data):
        """Checks every array of a fit before the first step, so a bad one changes nothing."""
        x, y = self._x(x), self._y(y)
        self._core.check(x, y)
        validation = None
        if validation_data is not None:
            if not (isinstance(validation_data, tuple) and len(validation_data) == 2):
                raise TypeError("validation_data: expected a tuple (x_val, y_val)")
            try:
                validation = (self._x(validation_data[0]), self._y(validation_data[1]))
                self._core.check(*validation)
            except (TypeError, ValueError) as e:
                raise type(e)(f"validation_data: {e}") from None
        return np.ascontiguousarray(x), np.ascontiguousarray(y), validation

    def _epochs(self, x, y, validation, epochs, batch_size, early_stopping, patience, tol,
                shuffle, rng, verbose, progress):  # fmt: skip
        order = np.arange(len(x))
        bar = ProgressBar(epochs, enabled=progress)
        best, best_params, stale = -math.inf, None, 0
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            if shuffle:
                rng.shuffle(order)
            loss = self._core.fit_epoch(x, y, order, batch_size)
            if not self._finite(loss):
                bar.close()
                raise FloatingPointError(
                    f"epoch {epoch}: the training loss became {loss} or the parameters "
                    f"overflowed; the network is restored to what it was before fit. "
                    f"Try a smaller learning rate "
                    f"(lr={self._optimizer['lr']})"
                )
            self.loss_curve_.append(loss)
            line = f"epoch {epoch}/{epochs}  loss {loss:.6f}"
            if validation is not None:
                self.validation_scores_.append(self.score(*validation))
                line += f"  validation {self.validation_scores_[-1]:.4f}"
            bar.update(line)
            if verbose:
                bar.write(f"{line}  ({time.perf_counter() - start:.3f} s)")
            if not early_stopping:
                continue
            current = self.validation_scores_[-1] if validation is not None else -loss
            if current > best + tol:
                best, stale = current, 0
                if validation is not None:
                    best_params = self._core.params.copy()
            else:
                stale += 1
            if stale >= patience:
                if verbose:
                    bar.write(f"no improvement for {patience} epochs: stopping")
                break
        if best_params is not None:
            self._core.params[...] = best_params
        bar.close()

    def plot_loss_curve(self, path=None):
        """Plot ``loss_curve_`` (and ``validation_scores_`` on a second axis).

        Returns the matplotlib Figure; with ``path`` also saves it there (PNG, SVG, ...).
        Needs matplotlib (``pip install "denseprop[plot]"``).
        """
        try:
            from matplotlib.figure import Figure
        except ImportError as e:
            raise ImportError('plot_loss_curve needs matplotlib: pip install "denseprop[plot]"') from e
        if not self.loss_curve_:
            raise ValueError("plot_loss_curve: nothing to plot, fit the network first")
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
    def _state(self):
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

    def save(self, path):
        """Write weights, biases, optimizer state and configuration (JSON) to a ``.npz``.

        The file loads with ``numpy.load(path, allow_pickle=False)``.
        """
        with open(path, "wb") as f:  # a path object or name, used as given (no ".npz" added)
            np.savez(f, **self._state())

    @classmethod
    def load(cls, path):
        """The network saved at ``path``, bitwise as it was, dtype and optimizer state included."""
        with np.load(path, allow_pickle=False) as f:
            return cls._from_state({k: f[k] for k in f.files})

    @classmethod
    def _from_state(cls, state):
        config = json.loads(str(state["config"]))
        if config.get("format") != _FORMAT:
            raise ValueError(f"path: saved in format {config.get('format')}, expected {_FORMAT}")
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

    def __getstate__(self):
        return self._state()

    def __setstate__(self, state):
        self.__dict__.update(Network._from_state(state).__dict__)
