"""A Network's learning: its optimizer, `train_step`, `fit` and `partial_fit`, and the
argument checks of a fit. Part of `Network` (a base class of it, in a file of its own since
`network.py` holds what the network is and computes); the epochs themselves are the one training
loop's (`_training`, and ``run_epochs`` in C++), their steps this process's or, with ``comm``,
data-parallel (`distributed.Strategy`)."""

from __future__ import annotations

import functools
import inspect
import textwrap
import threading
from typing import TYPE_CHECKING, Any, Callable, TypeVar, cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _checks, _core, _training
from ._tables import LR_SCHEDULES, OPTIMIZERS, setting_parameters, settings_help
from .sparse import is_sparse

if TYPE_CHECKING:
    from mpi4py import MPI
    from typing_extensions import Self

_Method = TypeVar("_Method", bound=Callable[..., Any])


def _strategy(net: Any, comm: MPI.Comm | None) -> _training.Strategy:
    """How the training loop takes its steps: alone, or with the ranks of ``comm``."""
    if comm is None:
        return _training.LOCAL
    from . import distributed  # imports mpi4py: only when a communicator is given

    return distributed.Strategy(net, comm)


def _one_at_a_time(method: _Method) -> _Method:
    """``method`` run holding the Network's lock: a call from another thread waits until it
    ends, so steps, fits, saves and traces never see or leave each other's half-done state."""

    @functools.wraps(method)
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return cast(_Method, locked)


class Learning:
    """`Network`'s methods that train it (see the module)."""

    _core: _core.NetworkF32 | _core.NetworkF64
    _lock: threading.RLock
    _config: dict[str, Any]
    loss_curve_: list[float]
    validation_scores_: list[float]

    if TYPE_CHECKING:

        def _x(self, x: ArrayLike) -> Any: ...
        def _y(self, y: ArrayLike) -> NDArray[Any]: ...
        def _cast(self, a: ArrayLike, name: str) -> NDArray[Any]: ...

    @_one_at_a_time
    def set_optimizer(
        self, optimizer: str = "sgd", lr: float = 0.01, *, seed: int | None = None, **settings: Any
    ) -> Self:
        """Choose the optimizer of `train_step`, `fit` and `partial_fit`; clears its state.

        sgd: ``v = momentum v + g; p -= lr v`` (PyTorch's form, Nesterov
        optional). adam: bias-corrected. ``weight_decay`` adds ``λ W`` to the
        weights' gradients (L2; biases are not decayed). adamw: Adam whose weight
        decay is decoupled, ``W -= lr λ W`` beside the step (PyTorch's AdamW).
        ``denseprop.optimizers()`` lists each optimizer's equation and the settings it reads.

        dpsgd (differentially private SGD): each sample's gradient is clipped to
        L2 norm ``clip_norm``, the clipped gradients summed, Gaussian noise of
        standard deviation ``noise_multiplier * clip_norm`` added to every
        parameter, the result divided by the batch size and an SGD step taken
        (no momentum). The noise comes from ``seed`` (None: a fresh one, kept in
        `optimizer`) and the step count, so a saved or pickled network continues
        the same noise stream.

        ``max_grad_norm=c`` clips the gradient by its global norm before each step, as
        ``torch.nn.utils.clip_grad_norm_(model.parameters(), c)`` followed by the
        optimizer's step: when the L2 norm ``‖g‖`` of the whole gradient (every weight and
        bias) exceeds ``c``, the gradient is multiplied by ``c / (‖g‖ + 1e-6)``; weight decay
        is added after, by the optimizer. Over MPI the norm is that of the step's gradient,
        the mean over every rank's samples. The default ``inf`` never clips. dpsgd refuses a
        finite one: it already clips each sample's gradient to ``clip_norm`` (Opacus's
        ``max_grad_norm``), and a second bound on the privatised mean is not what that name
        means there.

        Every setting is taken by name (an optimizer ignores those it does not read) and
        checked against its range; see Other Parameters.
        """
        self._core.set_optimizer(
            _core.OptimizerSettings(optimizer=optimizer, lr=lr, seed=seed, **settings)
        )
        return self

    @_one_at_a_time
    def set_learning_rate(self, lr: float) -> Self:
        """Change the optimizer's learning rate, keeping its state (velocity, moments, step
        count), as a schedule does between epochs; returns ``self``."""
        self._core.set_learning_rate(lr)
        return self

    @property
    def optimizer(self) -> dict[str, Any]:
        """The optimizer's settings, as `set_optimizer` takes them (DP-SGD's seed included)."""
        return self._core.optimizer.as_dict()

    @_one_at_a_time
    def train_step(
        self,
        x: ArrayLike,
        y: ArrayLike,
        comm: MPI.Comm | None = None,
        *,
        sample_weight: ArrayLike | None = None,
    ) -> float:
        """One optimizer step on the batch ``(x, y)``; returns its mean loss before the step.

        ``sample_weight: (batch,)``, finite and >= 0, weighs each sample's loss: the batch's
        loss is then ``Σ w_i ℓ_i / Σ w_i`` (scikit-learn's weighting; a batch weighing 0 has
        loss 0 and a zero gradient). dpsgd, which bounds each sample's gradient, takes none.

        A non-finite loss, or a step that overflows the parameters, raises
        FloatingPointError and leaves the network as it was. ``x`` may be a scipy.sparse CSR
        or CSC matrix (the first layer then works on its non-zeros; not with dpsgd), here
        and in `fit`, `partial_fit`, `gradients` and `score`.

        With an mpi4py communicator ``comm``, ``(x, y)`` is this rank's part of the batch (it
        may be empty) and the step is taken on the union of every rank's part, the same on
        every rank; the ranks must start from the same network (`denseprop.distributed`).
        """
        weights = self._weights(sample_weight)
        if comm is not None:  # one step, not a loop: no strategy to hand it
            from . import distributed

            return distributed.train_step(self, x, y, comm, weights)
        loss = self._core.train_step(self._x(x), self._y(y), weights)
        if not np.isfinite(loss):
            where, state = "", "as before the step"
            raise _training.diverged(where, loss, self._core.optimizer.lr, state)
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
        sample_weight: ArrayLike | None = None,
        validation_data: tuple[ArrayLike, ...] | None = None,
        early_stopping: bool = False,
        patience: int = 10,
        tol: float = 1e-4,
        shuffle: bool = True,
        seed: Any = None,
        verbose: bool = False,
        progress: bool | None = None,
        lr_schedule: str = "constant",
        warmup: float = 0.0,
        comm: MPI.Comm | None = None,
        **settings: Any,
    ) -> Self:
        """Train for ``epochs`` passes over ``(x, y)`` in mini-batches; returns ``self``.

        The optimizer starts afresh with the settings given here by name (see
        `set_optimizer`). Each epoch reshuffles the samples from ``seed`` (when
        ``shuffle``) and keeps the last, partial batch. ``loss_curve_`` gets each
        epoch's mean training loss; ``validation_scores_`` the `score` on
        ``validation_data = (x_val, y_val)`` or ``(x_val, y_val, sample_weight_val)``.

        ``sample_weight: (samples,)``, finite and >= 0 and not all 0, weighs each sample's
        loss as in `train_step`: each batch's loss is ``Σ w_i ℓ_i / Σ w_i`` over its samples,
        and an epoch's loss in ``loss_curve_`` the mean of its batches' losses, each counted
        by its size (scikit-learn's MLP's epoch loss; with one batch per epoch, the weighted
        mean ``Σ w_i ℓ_i / Σ w_i`` of the whole set). Weights the validation data's score as
        scikit-learn's ``accuracy_score`` and ``r2_score`` do.

        With ``early_stopping``, training stops once the validation score (or,
        without validation data, the training loss) has not improved by ``tol``
        for ``patience`` epochs; with validation data the best parameters are
        restored. ``verbose`` prints one line per epoch; ``progress`` (default:
        when stderr is a terminal) draws a progress bar.

        ``lr_schedule`` sets each step's learning rate over the fit's ``T = epochs × (steps
        per epoch)`` steps, after ``W = round(warmup · T)`` warmup steps (``warmup`` in
        [0, 1), Python's round) at ``lr (t + 1) / W`` for step ``t`` from 0: ``"constant"``
        keeps ``lr``; ``"cosine"`` takes ``lr ½ (1 + cos(π (t − W) / (T − W)))``;
        ``"linear"`` takes ``lr (1 − (t − W) / (T − W))`` (PyTorch's ``LinearLR`` warmup,
        then ``CosineAnnealingLR`` or ``LinearLR``, stepped after each batch). Over MPI, the
        steps per epoch are the ranks' common count. Early stopping ends a schedule where it
        stops; afterwards the optimizer's rate is ``lr`` again. `partial_fit` keeps the
        optimizer's rate, and the estimators their own ``learning_rate`` schedule.

        The optimizer's settings are `set_optimizer`'s, by name (``max_grad_norm`` clips the
        gradient). ``optimizer="dpsgd"`` trains
        with differentially private SGD (see `set_optimizer`), ``clip_norm`` and
        ``noise_multiplier`` its settings, its noise seeded from ``seed``.

        With an mpi4py communicator ``comm``, ``(x, y)`` (and ``sample_weight`` and
        ``validation_data``) are this rank's shard and training is data-parallel:
        ``batch_size`` per rank, each step on the union of the ranks' batches (weighted, its
        mean over the union; a rank's weights may all be 0), rank 0's initial parameters on
        every rank, shuffles per rank from ``seed`` (an int, the same on every rank, or None),
        the loss and validation scores of all shards, so every rank stops at the same epoch;
        only rank 0 prints. A bad argument on any rank raises on every rank.
        """
        strategy = _strategy(self, comm)
        saved = _training.Snapshot.take(self._core, self.loss_curve_, self.validation_scores_)
        with strategy.agreement(lambda: self._restore(saved)) as agreed:
            epochs = _checks.count(epochs, "epochs")
            patience = _checks.count(patience, "patience")
            tol = _checks.number(tol, "tol")
            lr_schedule = _checks.name(lr_schedule, "lr_schedule", tuple(LR_SCHEDULES))
            warmup = _checks.fraction(warmup, "warmup")
            x, y, w, validation = self._training_data(
                x, y, sample_weight, validation_data, strategy.prechecks
            )
            batch_size, rng = strategy.batching(x.shape[0], batch_size, seed, agreed.seed)
            noisy = isinstance(optimizer, str) and OPTIMIZERS.get(optimizer, {}).get("per_sample")
            noise_seed = int(rng.integers(2**63)) if noisy else None
            if any(self._config["dropout"]):  # this fit's masks: from its seed
                self._core.dropout_seed = int(rng.integers(2**63))
            self.set_optimizer(optimizer, lr, momentum=momentum, seed=noise_seed, **settings)
            plan = _training.Plan(epochs, batch_size, bool(shuffle), bool(early_stopping),
                                  patience, tol, bool(verbose), progress,
                                  lr_schedule, warmup)  # fmt: skip
            agreed.settings = {"network": self._config, "optimizer": self.optimizer,
                               "epochs": epochs, "batch_size": batch_size, "patience": patience,
                               "tol": tol, "early_stopping": early_stopping, "shuffle": shuffle,
                               "validation_data": validation is not None,
                               "lr_schedule": lr_schedule, "warmup": warmup}  # fmt: skip
        self.loss_curve_, self.validation_scores_ = [], []
        try:
            strategy.start(self)
            validation_score = None if validation is None else functools.partial(
                strategy.score, self, *validation)  # fmt: skip
            _training.run(self._core, x, y, w, plan, strategy.seed(rng), strategy,
                          validation_score,
                          self.loss_curve_, self.validation_scores_, where="epoch {epoch}: ",
                          state_after="restored to what it was before fit")  # fmt: skip
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
        *,
        sample_weight: ArrayLike | None = None,
    ) -> Self:
        """One more epoch over ``(x, y)`` with the current optimizer and its state, at its
        learning rate (no schedule: `set_learning_rate` changes it between calls).

        Appends the epoch's mean loss to ``loss_curve_`` (``sample_weight`` weighs it as in
        `fit`); returns ``self``. If the
        loss or the parameters become non-finite, raises FloatingPointError and
        leaves the network as it was before the call. ``comm``: as in `fit`, but the
        parameters are not broadcast (the ranks must already hold the same ones).
        """
        strategy = _strategy(self, comm)
        saved = _training.Snapshot.take(self._core, self.loss_curve_, self.validation_scores_)
        with strategy.agreement(lambda: self._restore(saved)) as agreed:
            x, y, w, _ = self._training_data(x, y, sample_weight, None, strategy.prechecks)
            batch_size, rng = strategy.batching(x.shape[0], batch_size, seed, agreed.seed)
            agreed.settings = {"network": self._config, "optimizer": self.optimizer,
                               "batch_size": batch_size, "shuffle": shuffle}  # fmt: skip
        try:
            _training.run(self._core, x, y, w, _training.Plan(1, batch_size, bool(shuffle)),
                          strategy.seed(rng), strategy, None, self.loss_curve_, [],
                          where="partial_fit: ", state_after="as before the call")  # fmt: skip
        except Exception:
            self._restore(saved)
            raise
        return self

    def _restore(self, saved: _training.Snapshot) -> None:
        """Everything training changes put back as ``saved`` holds it."""
        saved.restore(self._core)
        self.loss_curve_, self.validation_scores_ = saved.loss_curve, saved.validation_scores

    def _weights(self, sample_weight: ArrayLike | None) -> NDArray[Any] | None:
        """Sample weights in the network's dtype (the compiled module checks the rest)."""
        return None if sample_weight is None else self._cast(sample_weight, "sample_weight")

    def _training_data(
        self, x: ArrayLike, y: ArrayLike, sample_weight: Any, validation_data: Any,
        prechecks: bool,
    ) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any] | None, tuple[Any, ...] | None]:
        """A fit's arrays as the kernels read them. The training arrays are checked here when
        the strategy ``prechecks`` (over MPI: they are a rank's shard, whose weights may all be
        0), else by the training loop as it starts, in the same C++ checks (x and y cross into
        C++ once and are scanned for NaN once); the validation arrays always here, before the
        first epoch. A bad array raises before the first step; the caller puts back what it
        set."""
        x, y, w = self._checked_weighted(x, y, sample_weight, whole=not prechecks,
                                         check=prechecks)  # fmt: skip
        validation = None
        if validation_data is not None:
            if not (isinstance(validation_data, tuple) and len(validation_data) in (2, 3)):
                msg = "validation_data: expected a tuple (x_val, y_val) or (x_val, y_val, w_val)"
                raise TypeError(msg)
            try:
                x_val, y_val, *w_val = validation_data
                validation = self._checked_weighted(x_val, y_val, (w_val or [None])[0],
                                                    whole=not prechecks)  # fmt: skip
            except (TypeError, ValueError) as e:
                msg = f"validation_data: {e}"
                raise type(e)(msg) from None
        x = x if is_sparse(x) else np.ascontiguousarray(x)  # CSR, from _x
        return x, np.ascontiguousarray(y), w, validation

    def _checked_weighted(
        self, x: ArrayLike, y: ArrayLike, sample_weight: Any, whole: bool, check: bool = True
    ) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any] | None]:
        """``(x, y, sample_weight)`` coerced, and with ``check`` checked as a training step
        would check them; the weights not all 0 when they are the ``whole`` data's."""
        xa, ya, w = self._x(x), self._y(y), self._weights(sample_weight)
        if check or xa.ndim != 2:  # the loop checks the rest; a fit reads x's rows before it
            self._core.check(xa, ya, w)
        if w is not None and whole:
            _checks.weights(w)
        return xa, ya, w


def _spell_out_settings(method: Any, skip: tuple[str, ...]) -> None:
    """``method``'s signature and docstring with its ``**settings`` listed from the table, so
    that ``help()``, the API reference and editors show every optimizer setting."""
    signature = inspect.signature(method)
    fixed = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    method.__signature__ = signature.replace(parameters=fixed + setting_parameters(skip=skip))
    heading = "Other Parameters\n----------------\n"
    section = textwrap.indent(heading + settings_help(), " " * 8)
    method.__doc__ = f"{method.__doc__.rstrip()}\n\n{section}\n"


_spell_out_settings(Learning.set_optimizer, skip=("lr",))
_spell_out_settings(Learning.fit, skip=("lr", "momentum"))
