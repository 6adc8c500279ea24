"""`Network`: a multilayer perceptron whose training step is one call into C++.

The parameters live in one C++ buffer; ``Network.weights`` and ``Network.biases`` are
NumPy views of it. Every method checks its arguments before the model is touched, so a
bad argument raises and leaves the network exactly as it was. The compiled module checks
what it is given (sizes, names, hyperparameters) with the messages raised here; the class
holds the Pythonic surface, and its concerns live beside it: `_checks` (shared argument
checks), `_init` (initial weights), `_training` (the epochs), `_metrics`, `_plot`, and
`model_file` (saving and loading) and `onnx_export`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import types
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Callable, TypeVar, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _checks, _core, _metrics, _plot, _training, backprop, model_file
from ._init import INITS, initialise
from ._tables import LOSSES
from .sparse import is_sparse

if TYPE_CHECKING:
    from mpi4py import MPI

__all__ = ["Network"]

_Method = TypeVar("_Method", bound=Callable[..., Any])


def _agreement(comm: MPI.Comm | None, undo: Callable[[], None]) -> Any:
    """The block of a fit's argument checks: with ``comm`` a `distributed.Agreement` (an error on
    any rank is raised on every rank), else one that only holds ``settings`` and ``seed``."""
    if comm is None:
        return contextlib.nullcontext(types.SimpleNamespace(settings={}, seed=None))
    from . import distributed

    return distributed.Agreement(comm, undo)


def _batching(n: int, batch_size: Any, seed: Any, comm: MPI.Comm | None,
              fresh_seed: int | None) -> tuple[int, np.random.Generator]:  # fmt: skip
    """``batch_size`` checked (in one process any size past ``n`` is ``n``; with ``comm`` it is
    per rank) and the generator of ``seed``; with ``comm`` that must be an int, the same on
    every rank, or None for ``fresh_seed``, drawn once for all ranks."""
    batch_size = _checks.count(batch_size, "batch_size")
    if comm is None:
        return min(batch_size, n), _checks.generator(seed)
    if seed is None:
        return batch_size, _checks.generator(fresh_seed)
    return batch_size, _checks.generator(_checks.count(seed, "seed", low=0))


def _one_at_a_time(method: _Method) -> _Method:
    """``method`` run holding the Network's lock: a call from another thread waits until it
    ends, so steps, fits, saves and traces never see or leave each other's half-done state."""

    @functools.wraps(method)
    def locked(self: Network, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return cast(_Method, locked)


class Network:
    """A multilayer perceptron: dense layers, one fused C++ call per training step.

    Parameters
    ----------
    sizes : sequence of int
        Inputs, then each layer's outputs, e.g. ``[64, 32, 10]``.
    activation : str or sequence of str
        Of the hidden layers: any name of ``denseprop.activations()`` whose
        "hidden" is true (all but softmax and exp); one name for all, or one per hidden layer.
    loss : {"cross_entropy", "binary_cross_entropy", "mse", "poisson"}
        Cross-entropy over classes (softmax output), independent binary
        cross-entropies (sigmoid outputs), half the squared error
        (regression, identity output), or half the Poisson deviance (counts or
        rates ``y >= 0``, exp output: the log link). Each is the mean over the batch.
    output_activation : str, optional
        Defaults to the one the loss is fused with; "mse" may take any.
    dtype : {"float32", "float64"}
    seed : int or numpy.random.Generator, optional
        Seeds the initial weights.
    init : {"auto", "glorot", "he"}
        Glorot uniform or He normal; "auto" takes each layer's activation's "init"
        in ``denseprop.activations()`` (He for the relu family and the smooth ones
        after it, Glorot for the others). Biases start at 0.
    negative_slope : float
        The slope of leaky_relu below 0.
    compute_dtype : {None, "bfloat16"}
        None: every product in ``dtype``. "bfloat16" (float32 networks): each layer's three
        products (``Z = X Wᵀ``, ``dX = dZ W``, ``dW = dZᵀ X``) take bfloat16 operands, rounded
        to nearest even, and accumulate in float32, on the CPU's matrix units where it has
        them (AMX, AVX512_BF16; ``build_info()["bf16_kernel"]``). Parameters, optimizer
        state, activations, losses and softmax stay float32. DP-SGD's clipped sums,
        per-sample gradients and a sparse first layer keep float32 products.

    Notes
    -----
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
        compute_dtype: str | None = None,
    ) -> None:
        sequence = hasattr(sizes, "__len__") and not isinstance(sizes, (str, bytes))
        hidden = len(sizes) - 2 if sequence else 0
        activations = [activation] * hidden if isinstance(activation, str) else list(activation)
        if output_activation is None and loss in LOSSES:
            output_activation = LOSSES[loss]["default_output"]
        dt = _checks.dtype(dtype)
        _checks.name(init, "init", INITS)
        kind = _core.NetworkF32 if dt == np.float32 else _core.NetworkF64
        # sizes, the names, the pairing of loss and output and the slope are checked here
        self._core: _core.NetworkF32 | _core.NetworkF64 = kind(
            sizes, activations, output_activation, negative_slope, loss
        )
        self._core.compute_dtype = compute_dtype  # checked there: None, or bfloat16 on float32
        self._config: dict[str, Any] = {
            "sizes": [int(s) for s in sizes],
            "activation": activations,
            "output_activation": output_activation,
            "loss": loss,
            "dtype": dt.name,
            "init": init,
            "negative_slope": float(negative_slope),
            "compute_dtype": compute_dtype,
        }
        self._lock = threading.RLock()
        self._dtype: np.dtype[Any] = dt
        layers = self._core.layers(self._core.params)
        self.weights = [w for w, _ in layers]
        self.biases = [b for _, b in layers]
        initialise(layers, self.activations, init, np.random.default_rng(seed))
        self.set_optimizer()
        self.loss_curve_: list[float] = []
        self.validation_scores_: list[float] = []

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
        """The loss: "cross_entropy", "binary_cross_entropy", "mse" or "poisson"."""
        return str(self._config["loss"])

    @property
    def dtype(self) -> np.dtype[Any]:
        """float32 or float64, of the parameters and of every array the network returns."""
        return self._dtype

    @property
    def compute_dtype(self) -> str | None:
        """None (products in `dtype`) or "bfloat16" (bfloat16 operands, float32 sums).
        Assignable: a network trained in float32 can infer on bfloat16 products, and back."""
        compute: str | None = self._config["compute_dtype"]
        return compute

    @compute_dtype.setter
    def compute_dtype(self, compute: str | None) -> None:
        with self._lock:
            self._core.compute_dtype = compute  # checked there, as in the constructor
            self._config["compute_dtype"] = compute

    @property
    def is_classifier(self) -> bool:
        """Whether the loss is a cross-entropy (else it is "mse" or "poisson", regression)."""
        return bool(LOSSES[self.loss]["classifier"])

    def __repr__(self) -> str:
        c = self._config
        compute = "" if c["compute_dtype"] is None else f", compute_dtype={c['compute_dtype']!r}"
        return (
            f"Network({c['sizes']}, activation={c['activation']}, "
            f"output_activation={c['output_activation']!r}, loss={c['loss']!r}, "
            f"dtype={c['dtype']!r}{compute})"
        )

    # -- input coercion --------------------------------------------------------------------

    def _cast(self, a: ArrayLike, name: str) -> NDArray[Any]:
        """``a`` as an array of the network's dtype, if it casts without changing kind. Any
        array-like reads as the kernels read it (a view of its memory when it can be)."""
        a = _core._as_array(a, name)
        if a.dtype == self._dtype:
            return a
        if not np.can_cast(a.dtype, self._dtype, "same_kind"):
            msg = f"{name}: dtype {a.dtype} cannot be cast safely to the network's {self._dtype}"
            raise TypeError(msg)
        return a.astype(self._dtype)

    def _x(self, x: ArrayLike) -> NDArray[Any]:
        if type(x) is np.ndarray and x.ndim == 2 and x.dtype == self._dtype:
            return x  # the common case, at batch 1 a tenth of the call: C++ checks the rest
        if is_sparse(x):  # CSR of the network's dtype (CSC and other dtypes converted)
            m: Any = x
            if m.dtype != self._dtype and not np.can_cast(m.dtype, self._dtype, "same_kind"):
                msg = f"x: dtype {m.dtype} cannot be cast safely to the network's {self._dtype}"
                raise TypeError(msg)
            return m.tocsr().astype(self._dtype, copy=False)  # type: ignore[no-any-return]
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
        y = _core._as_array(y, "y")
        if LOSSES[self.loss]["labels"] and y.ndim == 1:
            return y  # labels: dtype and range are checked in C++
        y = self._cast(y, "y")
        if y.ndim == 1 and self.sizes[-1] == 1:
            y = y[:, None]
        return y

    def _checked(self, x: ArrayLike, y: ArrayLike) -> tuple[NDArray[Any], NDArray[Any]]:
        """``(x, y)`` coerced and checked as a training step would check them."""
        x, y = self._x(x), self._y(y)
        self._core.check(x, y)
        return x, y

    # -- inference -------------------------------------------------------------------------

    def forward(self, x: ArrayLike) -> NDArray[Any]:
        """The network's output: ``x: (batch, inputs)`` -> ``(batch, outputs)``.

        Probabilities for the classification losses, values for "mse" and "poisson" (the
        means ``exp(Z[L])``). ``x`` may be a
        scipy.sparse CSR or CSC matrix: the first layer then multiplies its non-zeros only.
        """
        x = self._x(x)
        return self._core.forward(x) if type(x) is np.ndarray else self._core.forward_csr(x)

    @property
    def params(self) -> NDArray[Any]:
        """Every parameter in one flat view, layer after layer: ``W[l]`` ``(out, in)``
        row-major, then ``b[l]``; writeable (`weights` and `biases` view the same memory)."""
        return self._core.params

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
        `params`. ``x`` dense or scipy.sparse. One C++ call with the GIL released; the network
        is unchanged.
        """
        params = self._cast(params, "params")
        weights = None if sample_weight is None else self._cast(sample_weight, "sample_weight")
        with self._lock:
            loss, grad = self._core.loss_and_gradient(params, self._x(x), self._y(y), weights,
                                                      float(alpha))  # fmt: skip
        return float(loss), grad

    def predict_proba(self, x: ArrayLike) -> NDArray[Any]:
        """Class probabilities ``(batch, classes)``; for binary cross-entropy one
        probability per output."""
        if not self.is_classifier:
            msg = f"predict_proba: the network is a regressor (loss={self.loss!r})"
            raise ValueError(msg)
        return self.forward(x)

    def predict(self, x: ArrayLike) -> NDArray[Any]:
        """Class labels ``(batch,)`` for cross-entropy, 0/1 per output for binary
        cross-entropy, values ``(batch, outputs)`` for "mse" and "poisson"."""
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
        x, y = self._x(x), _core._as_array(y, "y")
        labels = bool(LOSSES[self.loss]["labels"]) and y.ndim == 1
        _metrics.check_targets(y, x.shape[0] if x.ndim else 0, self.sizes[-1], labels)
        return _metrics.score(self.loss, self.forward(x), y)

    # -- learning --------------------------------------------------------------------------

    @_one_at_a_time
    def gradients(
        self, x: ArrayLike, y: ArrayLike, reduction: str = "mean"
    ) -> tuple[float, list[tuple[NDArray[Any], NDArray[Any]]]]:
        """The loss of ``(x, y)`` and each layer's ``(grad_w, grad_b)``; the model is unchanged.

        ``grad_w: (out, in)``, ``grad_b: (out,)``, copies. ``reduction`` is
        "mean" (over the batch, as training uses) or "sum".
        """
        _checks.name(reduction, "reduction", ("mean", "sum"))
        loss = self._core.loss_and_gradients(self._x(x), self._y(y), reduction)
        grads = self._core.layers(self._core.grads)
        return loss, [(gw.copy(), gb.copy()) for gw, gb in grads]

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

    @_one_at_a_time
    def trace(
        self, x: NDArray[np.floating], y: NDArray[np.generic], reduction: str = "mean"
    ) -> backprop.Trace:
        """Every term of one forward and backward pass on ``(x, y)``, with shapes and equations.

        ``Z[l], A[l], dA[l], dZ[l], dW[l], db[l]`` for layers ``l = 1..L`` (``A[0] = X``), in the
        order they are computed; ``print`` it for a table. Its ``dW``, ``db`` equal
        `gradients`. The model is unchanged.
        """
        _checks.name(reduction, "reduction", ("mean", "sum"))
        x, y = self._checked(x, y)
        return backprop.trace(
            self.weights, self.biases, self.activations, self.loss, x, y, reduction,
            negative_slope=self._config["negative_slope"], compute_dtype=self.compute_dtype,
        )  # fmt: skip

    @_one_at_a_time
    def jacobian(self, x: NDArray[np.floating]) -> NDArray[np.floating]:
        """The Jacobian of `forward`'s outputs with respect to the inputs, per sample (with
        ``compute_dtype="bfloat16"``, of the float32 network: rounding has no derivative).

        ``x: (batch, inputs)`` -> ``(batch, outputs, inputs)``.
        """
        x = self._x(x)
        self._core.check(x)
        return backprop.jacobian(self.weights, self.biases, self.activations, x,
                                 negative_slope=self._config["negative_slope"])  # fmt: skip

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
        weights' gradients (L2; biases are not decayed). adamw: Adam whose weight
        decay is decoupled, ``W -= lr λ W`` beside the step (PyTorch's AdamW).

        dpsgd (differentially private SGD): each sample's gradient is clipped to
        L2 norm ``clip_norm``, the clipped gradients summed, Gaussian noise of
        standard deviation ``noise_multiplier * clip_norm`` added to every
        parameter, the result divided by the batch size and an SGD step taken
        (no momentum). The noise comes from ``seed`` (None: a fresh one, kept in
        `optimizer`) and the step count, so a saved or pickled network continues
        the same noise stream.
        """
        settings = _core.OptimizerSettings(
            optimizer=optimizer, lr=lr, momentum=momentum, nesterov=nesterov, beta1=beta1,
            beta2=beta2, eps=eps, weight_decay=weight_decay, clip_norm=clip_norm,
            noise_multiplier=noise_multiplier, seed=seed,
        )  # fmt: skip
        self._core.set_optimizer(settings)
        return self

    @_one_at_a_time
    def set_learning_rate(self, lr: float) -> Network:
        """Change the optimizer's learning rate, keeping its state (velocity, moments, step
        count), as a schedule does between epochs; returns ``self``."""
        self._core.set_learning_rate(lr)
        return self

    @property
    def optimizer(self) -> dict[str, Any]:
        """The optimizer's settings, as `set_optimizer` takes them (DP-SGD's seed included)."""
        return self._core.optimizer.as_dict()

    @_one_at_a_time
    def train_step(self, x: ArrayLike, y: ArrayLike, comm: MPI.Comm | None = None) -> float:
        """One optimizer step on the batch ``(x, y)``; returns its mean loss before the step.

        A non-finite loss, or a step that overflows the parameters, raises
        FloatingPointError and leaves the network as it was. ``x`` may be a scipy.sparse CSR
        or CSC matrix (the first layer then works on its non-zeros; not with dpsgd), here
        and in `fit`, `partial_fit`, `gradients` and `score`.

        With an mpi4py communicator ``comm``, ``(x, y)`` is this rank's part of the batch (it
        may be empty) and the step is taken on the union of every rank's part, the same on
        every rank; the ranks must start from the same network (`denseprop.distributed`).
        """
        if comm is not None:
            from . import distributed

            return distributed.train_step(self, x, y, comm)
        loss = self._core.train_step(self._x(x), self._y(y))
        if not np.isfinite(loss):
            msg = (
                f"the loss became {loss} or the parameters overflowed; the network is as "
                f"before the step. Try a smaller learning rate (lr={self._core.optimizer.lr})"
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
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
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
        comm: MPI.Comm | None = None,
    ) -> Network:
        """Train for ``epochs`` passes over ``(x, y)`` in mini-batches; returns ``self``.

        The optimizer starts afresh with the settings given here by name (see
        `set_optimizer`). Each epoch reshuffles the samples from ``seed`` (when
        ``shuffle``) and keeps the last, partial batch. ``loss_curve_`` gets each
        epoch's mean training loss; ``validation_scores_`` the `score` on
        ``validation_data = (x_val, y_val)``.

        With ``early_stopping``, training stops once the validation score (or,
        without validation data, the training loss) has not improved by ``tol``
        for ``patience`` epochs; with validation data the best parameters are
        restored. ``verbose`` prints one line per epoch; ``progress`` (default:
        when stderr is a terminal) draws a progress bar.

        ``optimizer="dpsgd"`` trains with differentially private SGD (see
        `set_optimizer`), ``clip_norm`` and ``noise_multiplier`` its settings,
        its noise seeded from ``seed``.

        With an mpi4py communicator ``comm``, ``(x, y)`` (and ``validation_data``) are this
        rank's shard and training is data-parallel: ``batch_size`` per rank, each step on the
        union of the ranks' batches, rank 0's initial parameters on every rank, shuffles per
        rank from ``seed`` (an int, the same on every rank, or None), the loss and validation
        scores of all shards, so every rank stops at the same epoch; only rank 0 prints. A bad
        argument on any rank raises on every rank.
        """
        saved = _training.Snapshot.take(self._core, self.loss_curve_, self.validation_scores_)
        with _agreement(comm, lambda: self._restore(saved)) as agreed:
            epochs = _checks.count(epochs, "epochs")
            patience = _checks.count(patience, "patience")
            tol = _checks.number(tol, "tol")
            x, y, validation = self._training_data(x, y, validation_data)
            batch_size, rng = _batching(x.shape[0], batch_size, seed, comm, agreed.seed)
            noise_seed = int(rng.integers(2**63)) if optimizer == "dpsgd" else None
            self.set_optimizer(
                optimizer, lr, momentum=momentum, nesterov=nesterov, beta1=beta1, beta2=beta2,
                eps=eps, weight_decay=weight_decay, clip_norm=clip_norm,
                noise_multiplier=noise_multiplier, seed=noise_seed,
            )  # fmt: skip
            schedule = _training.Schedule(
                epochs, batch_size, bool(early_stopping), patience, tol, bool(shuffle),
                bool(verbose), progress,
            )  # fmt: skip
            agreed.settings = {"network": self._config, "optimizer": self.optimizer,
                               "epochs": epochs, "batch_size": batch_size, "patience": patience,
                               "tol": tol, "early_stopping": early_stopping, "shuffle": shuffle,
                               "validation_data": validation is not None}  # fmt: skip
        self.loss_curve_, self.validation_scores_ = [], []
        try:
            epoch: Callable[[NDArray[Any], int], float] | None = None
            score: Callable[..., float] = self.score
            if comm is not None:
                from . import distributed

                distributed.broadcast_parameters(self, comm)
                rng = distributed.rank_generator(rng, comm)
                epoch = functools.partial(distributed.epoch, self, x, y, comm=comm)
                score = functools.partial(distributed.score, self, comm=comm)
            validation_score = None if validation is None else functools.partial(score, *validation)
            _training.run_epochs(self._core, x, y, schedule, rng, validation_score,
                                 self.loss_curve_, self.validation_scores_, epoch=epoch,
                                 leader=comm is None or comm.rank == 0)  # fmt: skip
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
        comm: MPI.Comm | None = None,
    ) -> Network:
        """One more epoch over ``(x, y)`` with the current optimizer and its state.

        Appends the epoch's mean loss to ``loss_curve_``; returns ``self``. If the
        loss or the parameters become non-finite, raises FloatingPointError and
        leaves the network as it was before the call. ``comm``: as in `fit`, but the
        parameters are not broadcast (the ranks must already hold the same ones).
        """
        saved = _training.Snapshot.take(self._core, self.loss_curve_, self.validation_scores_)
        with _agreement(comm, lambda: self._restore(saved)) as agreed:
            x, y, _ = self._training_data(x, y, None)
            batch_size, rng = _batching(x.shape[0], batch_size, seed, comm, agreed.seed)
            agreed.settings = {"network": self._config, "optimizer": self.optimizer,
                               "batch_size": batch_size, "shuffle": shuffle}  # fmt: skip
        if comm is None:
            order = rng.permutation(x.shape[0]) if shuffle else np.arange(x.shape[0])
            loss = self._core.fit_epoch(x, y, order, batch_size, checked=True)
        else:
            from . import distributed

            rng = distributed.rank_generator(rng, comm)
            order = rng.permutation(x.shape[0]) if shuffle else np.arange(x.shape[0])
            loss = distributed.epoch(self, x, y, order, batch_size, comm)
        if not _training.finite(self._core, loss):
            self._restore(saved)
            where, state = "partial_fit: ", "as before the call"
            raise _training.diverged(where, loss, self._core.optimizer.lr, state)
        self.loss_curve_.append(loss)
        return self

    def _restore(self, saved: _training.Snapshot) -> None:
        saved.restore(self._core)
        self.loss_curve_, self.validation_scores_ = saved.loss_curve, saved.validation_scores

    def _training_data(
        self, x: ArrayLike, y: ArrayLike, validation_data: Any
    ) -> tuple[NDArray[Any], NDArray[Any], tuple[NDArray[Any], NDArray[Any]] | None]:
        """Checks every array of a fit before the first step, so a bad one changes nothing.
        (The epochs then trust them: x and y are scanned for NaN once, here.)"""
        x, y = self._checked(x, y)
        validation = None
        if validation_data is not None:
            if not (isinstance(validation_data, tuple) and len(validation_data) == 2):
                msg = "validation_data: expected a tuple (x_val, y_val)"
                raise TypeError(msg)
            try:
                validation = self._checked(*validation_data)
            except (TypeError, ValueError) as e:
                msg = f"validation_data: {e}"
                raise type(e)(msg) from None
        x = x if is_sparse(x) else np.ascontiguousarray(x)  # CSR, from _x
        return x, np.ascontiguousarray(y), validation

    def plot_loss_curve(self, path: str | os.PathLike[str] | None = None) -> Any:
        """Plot ``loss_curve_`` (and ``validation_scores_`` on a second axis).

        Returns the matplotlib Figure; with ``path`` also saves it there (PNG, SVG, ...).
        Needs matplotlib (``pip install "denseprop[plot]"``).
        """
        return _plot.loss_curve_figure(
            self.loss_curve_, self.validation_scores_,
            title=f"Network({self.sizes}), {' / '.join(self.activations)}, {self.loss}",
            loss=self.loss, score="accuracy" if self.is_classifier else "R²", path=path,
        )  # fmt: skip

    # -- saving and export ------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write weights, biases, optimizer state and configuration (JSON) to a ``.npz``.

        The file loads with ``numpy.load(path, allow_pickle=False)``; its layout is in
        `denseprop.model_file`.
        """
        model_file.write(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Network:
        """The network saved at ``path``, bitwise as it was, dtype and optimizer state included.

        Everything in the file is checked before the network is built: a damaged or foreign
        file raises ValueError "<path> is not a denseprop model file: <what>"; one that cannot
        be opened, OSError.
        """
        return model_file.read(path, cls)

    def to_onnx(self, path: str | os.PathLike[str] | None = None) -> Any:
        """The network as an ONNX model computing `forward` (Gemm and activation ops, Softmax
        for probabilities), written to ``path`` when given; returns the ``onnx.ModelProto``.

        Input ``x: (batch, inputs)``, output ``(batch, outputs)``, in the network's dtype.
        Needs onnx (``pip install "denseprop[onnx]"``); see `denseprop.onnx_export`.
        """
        from . import onnx_export

        return onnx_export.network_to_onnx(self, path)

    def __getstate__(self) -> dict[str, NDArray[Any]]:
        return model_file.state(self)

    def __setstate__(self, state: dict[str, NDArray[Any]]) -> None:
        self.__dict__.update(model_file.from_state(state, type(self), "a pickled Network").__dict__)
