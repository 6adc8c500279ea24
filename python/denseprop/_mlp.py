"""What scikit-learn's MLPs do on a `Network`, for `MLPClassifier` and `MLPRegressor`
(`estimators`): their checks, initialisation and training (its sgd and adam epochs through the
one training loop, L-BFGS through SciPy). Their parameters are declared in `_estimator_params`.

What they take and expose is said in `estimators`' docstring; here is how.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from . import _core
from ._estimator_params import _ACTIVATIONS, _OPTIMIZER_SETTINGS, Parameters
from ._layer_views import LayerViews, assign
from ._seam import seam_of
from ._tables import OPTIMIZERS
from .network import Network
from .sparse import is_sparse

try:
    from sklearn.utils.validation import validate_data
except ImportError:  # scikit-learn < 1.6 has it as a method

    def validate_data(estimator: Any, /, *args: Any, **kwargs: Any) -> Any:
        return estimator._validate_data(*args, **kwargs)


# what estimators.py builds on
__all__ = ["_SPARSE_FORMATS", "_BaseMLP", "_readable", "validate_data"]

_STOCHASTIC = ("sgd", "adam")
_SPARSE_FORMATS = ["csr", "csc"]
_OWN_READERS = ("pandas", "polars", "pyarrow", "scipy")  # libraries scikit-learn reads itself


def _readable(a: Any, name: str) -> Any:
    """``a`` as scikit-learn's checks take it. They read arrays, lists, data frames (keeping
    their column names) and sparse matrices themselves; any other array-like (a tensor, an
    object with only ``__array_interface__`` or ``__dlpack__``) is read as the kernels read
    it, a view of its memory when it can be."""
    if a is None or isinstance(a, (np.ndarray, list, tuple)):
        return a
    if type(a).__module__.startswith(_OWN_READERS):
        return a
    return _core._as_array(a, name)


class _BaseMLP(Parameters):
    """What the classifier and the regressor share: their checks and their training."""

    # -- what the subclasses say -----------------------------------------------------------

    def _validate_input(
        self, X: Any, y: Any, incremental: bool, reset: bool
    ) -> tuple[Any, NDArray[Any], NDArray[np.float64] | None]:
        """X and y checked, y as the network's targets, and each sample's class weight (None:
        none), computed before anything of the estimator changes."""
        raise NotImplementedError

    def _network_loss(self) -> str:
        raise NotImplementedError

    def _network_targets(self, y: NDArray[Any], dtype: Any) -> NDArray[Any]:
        """``y (samples, outputs)`` as scikit-learn holds it, as the network's loss reads it."""
        return y.astype(dtype, copy=False)

    # -- fitting ---------------------------------------------------------------------------

    def _input_dtype(self, reset: bool) -> Any:
        if not reset:
            return self.network_.dtype
        if self.compute_dtype is not None and self.dtype is None:
            return np.float32  # bfloat16 products keep float32 parameters
        return (np.float64, np.float32) if self.dtype is None else self.dtype

    def _fit(self, X: Any, y: Any, sample_weight: Any, incremental: bool) -> _BaseMLP:
        self._validate_params()
        if self.compute_dtype is not None and self.dtype == "float64":
            msg = (
                f"compute_dtype: {self.compute_dtype} products need dtype='float32' (or None), "
                "got dtype='float64'"
            )
            raise ValueError(msg)
        if self.solver == "lbfgs" and np.any(np.asarray(self.dropout, dtype=float) > 0):
            msg = ("dropout: lbfgs minimises the whole set's loss, which dropout would make "
                   "random; use solver='sgd' or 'adam'")  # fmt: skip
            raise ValueError(msg)
        sizes = self.hidden_layer_sizes
        hidden = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
        if np.any(np.array(hidden) <= 0):
            msg = f"hidden_layer_sizes must be > 0, got {hidden}."
            raise ValueError(msg)
        first_pass = not hasattr(self, "network_") or (not self.warm_start and not incremental)
        X, y, class_weights = self._validate_input(X, y, incremental, reset=first_pass)
        sample_weight = _weights(sample_weight, class_weights, X)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(y, [X.shape[1], *map(int, hidden), y.shape[1]], X.dtype)
        elif y.shape[1] != self.n_outputs_:
            msg = f"y: expected {self.n_outputs_} outputs as in the previous fit, got {y.shape[1]}"
            raise ValueError(msg)
        if self.solver in _STOCHASTIC:
            self._fit_stochastic(X, y, sample_weight, incremental)
        else:
            self._fit_lbfgs(X, y, sample_weight)
        if not np.isfinite(self.network_.params).all():
            msg = (
                "Solver produced non-finite parameter weights. The input data may contain "
                "large values and need to be preprocessed."
            )
            raise ValueError(msg)
        return self

    def _initialize(self, y: NDArray[Any], layer_units: list[int], dtype: Any) -> None:
        """A new network, initialised as scikit-learn's: W and b uniform in ±√(6 / (fan_in +
        fan_out)) (2 instead of 6 for the logistic activation), drawn from ``random_state``
        in scikit-learn's order, so the same seed gives the same initial parameters."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        loss = self._network_loss()
        self.out_activation_ = {
            "cross_entropy": "softmax",
            "binary_cross_entropy": "logistic",
            "mse": "identity",
            "poisson": "exp",
        }[loss]
        activation = _ACTIVATIONS[self.activation]
        self.network_ = Network(layer_units, activation, loss, dtype=dtype, seed=0,
                                compute_dtype=self.compute_dtype, dropout=self.dropout)  # fmt: skip
        seam = seam_of(self.network_)
        if any(seam.config["dropout"]):  # the masks' stream, from random_state (drawn only then)
            seam.core.dropout_seed = int(self._random_state.randint(2**62, dtype=np.int64))
        factor = 2.0 if activation == "sigmoid" else 6.0
        for w, b in zip(self.network_.weights, self.network_.biases):
            fan_out, fan_in = w.shape
            bound = np.sqrt(factor / (fan_in + fan_out))
            w[...] = self._random_state.uniform(-bound, bound, (fan_in, fan_out)).T
            b[...] = self._random_state.uniform(-bound, bound, fan_out)
        self._best_params = self.network_.params.copy()
        self._optimizer_ready = False
        if self.solver in _STOCHASTIC:
            self.loss_curve_: list[float] = []
            self._no_improvement_count = 0
            self._shuffles = 0
            if self.early_stopping:
                self.validation_scores_: list[float] | None = []
                self.best_validation_score_: float | None = -np.inf
                self.best_loss_: float | None = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _set_optimizer(self) -> None:
        """scikit-learn's optimizer for this fit: a new one (state cleared) at the initial
        learning rate. ``alpha`` is applied per batch by the training loop."""
        settings = {ours: getattr(self, theirs) for theirs, ours in _OPTIMIZER_SETTINGS.items()}
        # scikit-learn's Nesterov momentum is on only with momentum
        settings["nesterov"] = bool(settings["nesterov"]) and settings["momentum"] > 0
        read = OPTIMIZERS[self.solver]["settings"]
        self.network_.set_optimizer(
            self.solver, float(self.learning_rate_init),
            **{name: value for name, value in settings.items() if name in read},
        )  # fmt: skip
        self._learning_rate = float(self.learning_rate_init)
        self._optimizer_ready = True

    def _split(self, X: Any, y: NDArray[Any], sample_weight: Any) -> tuple[Any, ...]:
        """``validation_fraction`` of the data held out, stratified as scikit-learn's (by
        class for a single-output classifier), when early stopping."""
        should_stratify = is_classifier(self) and self.n_outputs_ == 1
        stratify = y.astype(bool) if should_stratify else None
        arrays = [X, y] if sample_weight is None else [X, y, sample_weight]
        parts = train_test_split(
            *arrays,
            random_state=self._random_state,
            test_size=self.validation_fraction,
            stratify=stratify,
        )
        if parts[1].shape[0] < 2:
            msg = (
                "The validation set is too small. Increase 'validation_fraction' or the size "
                "of your dataset."
            )
            raise ValueError(msg)
        if sample_weight is None:
            parts += [None, None]
        x_train, x_val, y_train, y_val, w_train, w_val = parts
        return x_train, y_train, w_train, (x_val, y_val, w_val)

    def _fit_stochastic(
        self, X: Any, y: NDArray[Any], sample_weight: Any, incremental: bool
    ) -> None:
        if not incremental or not self._optimizer_ready:
            self._set_optimizer()
        if self.early_stopping and incremental:
            msg = "partial_fit does not support early_stopping=True"
            raise ValueError(msg)
        validation = None
        if self.early_stopping:
            X, y, sample_weight, validation = self._split(X, y, sample_weight)
        n_samples = X.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than sample size. It is going to "
                    "be clipped",
                    stacklevel=4,
                )
            batch_size = int(np.clip(self.batch_size, 1, n_samples))
        net = self.network_
        dtype = net.dtype
        x_train = _dense(X, dtype)
        targets = self._network_targets(y, dtype)
        if validation is not None:
            x_val, y_val, w_val = validation
            validation = (_dense(x_val, dtype), self._network_targets(y_val, dtype), w_val)
        state = _core.TrainingState()
        state.seed = int(self._random_state.randint(np.iinfo(np.int64).max, dtype=np.int64))
        state.shuffles = self._shuffles
        state.lr = self._learning_rate
        state.t = self.t_
        state.no_improvement = self._no_improvement_count
        if self.early_stopping:
            state.best_score = float(self.best_validation_score_)  # type: ignore[arg-type]
        else:
            state.best_loss = float(self.best_loss_)  # type: ignore[arg-type]
        schedule = self.learning_rate if self.solver == "sgd" else "constant"
        losses, scores, stop, rate_changes = seam_of(net).core.run_epochs(
            x_train, targets, sample_weight, state=state,
            max_epochs=1 if incremental else int(self.max_iter),
            batch_size=batch_size, shuffle=bool(self.shuffle), stop="convergence",
            tol=float(self.tol), n_iter_no_change=float(self.n_iter_no_change),
            schedule=schedule, lr_init=float(self.learning_rate_init),
            power_t=float(self.power_t), alpha=float(self.alpha),
            # scikit-learn's squared error is the mean over outputs, not the sum
            data_scale=1.0 / self.n_outputs_ if self._network_loss() == "mse" else 1.0,
            validation=validation, best_params=self._best_params,
            stop_when_diverged=False,
        )  # fmt: skip
        self.n_iter_ = len(losses)
        self.t_ = state.t
        self._shuffles = state.shuffles
        self._learning_rate = state.lr
        self._no_improvement_count = state.no_improvement
        self.loss_curve_ += losses
        self.loss_ = losses[-1]
        if self.early_stopping:
            self.validation_scores_ += scores
            self.best_validation_score_ = state.best_score
        else:
            self.best_loss_ = state.best_loss
        if self.verbose:
            self._report(losses, scores, stop, dict(rate_changes))
        if stop == "diverged":
            msg = (
                "Solver produced non-finite parameter weights. The input data may contain "
                "large values and need to be preprocessed."
            )
            raise ValueError(msg)
        if stop == "max_epochs" and not incremental:
            msg = (
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                "optimization hasn't converged yet."
            )
            warnings.warn(msg, ConvergenceWarning, stacklevel=4)

    def _report(
        self, losses: list[float], scores: list[float], stop: str, changes: dict[int, float]
    ) -> None:
        """scikit-learn's verbose lines, epoch by epoch."""
        what = "Validation score" if self.early_stopping else "Training loss"
        n = self.n_iter_no_change
        reason = f"{what} did not improve more than tol={self.tol:f} for {n} consecutive epochs."
        for epoch, loss in enumerate(losses, 1):
            print(f"Iteration {epoch}, loss = {loss:.8f}")
            if scores:
                print(f"Validation score: {scores[epoch - 1]:f}")
            if epoch in changes:
                lr = changes[epoch]
                if lr == 0:
                    print(f"{reason} Learning rate too small. Stopping.")
                else:
                    print(f"{reason} Setting learning rate to {lr:f}")
        if stop == "converged" and self.learning_rate != "adaptive":
            print(f"{reason} Stopping.")

    def _fit_lbfgs(self, X: Any, y: NDArray[Any], sample_weight: Any) -> None:
        """scipy's L-BFGS-B over the flat parameters; loss and gradient of the whole set
        (L2 term included) from one C++ call each. ``max_iter``, ``max_fun`` and ``tol`` (the
        gradient tolerance) as scikit-learn passes them."""
        import scipy.optimize

        net = self.network_
        dtype = net.dtype
        x = _dense(X, dtype)
        targets = self._network_targets(y, dtype)
        alpha = float(self.alpha)

        def objective(params: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
            loss, grad = seam_of(net).core.loss_and_gradient(
                params.astype(dtype, copy=False), x, targets, sample_weight, alpha
            )
            return loss, grad.astype(np.float64)

        result = scipy.optimize.minimize(
            objective,
            net.params.astype(np.float64),
            method="L-BFGS-B",
            jac=True,
            options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol},
        )
        if result.status != 0:
            message = result.message
            message = message.decode("latin1") if isinstance(message, bytes) else message
            msg = (
                f"lbfgs failed to converge after {result.nit} iteration(s) "
                f"(status={result.status}):\n{message}\n\nIncrease the number of iterations "
                f"to improve the convergence (max_iter={self.max_iter})."
            )
            warnings.warn(msg, ConvergenceWarning, stacklevel=4)
        self.n_iter_ = min(int(result.nit), int(self.max_iter))
        self.loss_ = float(result.fun)
        net.params[...] = result.x

    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> Any:
        """Train on ``X: (samples, features)`` (dense, or scipy.sparse CSR/CSC) and targets
        ``y``; ``sample_weight: (samples,)`` weighs each sample's loss. Returns ``self``."""
        return self._fit(X, y, sample_weight, incremental=False)

    def _check_solver(self) -> bool:
        if self.solver not in _STOCHASTIC:
            msg = (
                "partial_fit is only available for stochastic optimizers. "
                f"{self.solver} is not stochastic."
            )
            raise AttributeError(msg)
        return True

    # -- learned parameters, scikit-learn's way --------------------------------------------

    @property
    def coefs_(self) -> list[NDArray[Any]]:
        """Each layer's weights ``(in, out)``, scikit-learn's layout: ``coefs_[i]`` is
        ``network_.weights[i].T``, a view; assigning to it (or to an item) writes into the
        network."""
        check_is_fitted(self, "network_")
        return LayerViews([w.T for w in self.network_.weights], "coefs_")

    @coefs_.setter
    def coefs_(self, value: list[ArrayLike]) -> None:
        assign(self.coefs_, value, "coefs_")

    @property
    def intercepts_(self) -> list[NDArray[Any]]:
        """Each layer's biases ``(out,)``, views of ``network_.biases``; assignable."""
        check_is_fitted(self, "network_")
        return LayerViews(list(self.network_.biases), "intercepts_")

    @intercepts_.setter
    def intercepts_(self, value: list[ArrayLike]) -> None:
        assign(self.intercepts_, value, "intercepts_")

    def _forward(self, X: Any) -> NDArray[Any]:
        check_is_fitted(self, "network_")
        x = validate_data(
            self,
            _readable(X, "X"),
            reset=False,
            dtype=self.network_.dtype,
            accept_sparse=_SPARSE_FORMATS,
        )
        return self.network_.forward(_dense(x, self.network_.dtype))

    def to_onnx(self, path: str | os.PathLike[str] | None = None) -> Any:
        """The fitted model as ONNX, written to ``path`` when given; returns the
        ``onnx.ModelProto``. Input ``x: (samples, features)`` in the network's dtype; output
        ``predict_proba``'s probabilities (classifier) or ``predict``'s values (regressor).
        Needs onnx (``pip install "denseprop[onnx]"``); see `denseprop.onnx_export`."""
        check_is_fitted(self, "network_")
        from .onnx_export import estimator_to_onnx

        return estimator_to_onnx(self, path)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


def _weights(sample_weight: Any, class_weights: NDArray[np.float64] | None, X: Any) -> Any:
    """The samples' weights in X's dtype: ``sample_weight`` checked as scikit-learn checks it,
    times each sample's class weight in float64 (as ``compute_sample_weight(class_weight, y) *
    sample_weight`` would be, so that the two fits are the same to the bit)."""
    if class_weights is None:
        if sample_weight is None:
            return None
        return _check_sample_weight(sample_weight, X, dtype=X.dtype, ensure_non_negative=True)
    if sample_weight is not None:
        class_weights = class_weights * _check_sample_weight(
            sample_weight, X, dtype=np.float64, ensure_non_negative=True
        )
    return class_weights.astype(X.dtype)


def _dense(X: Any, dtype: Any) -> Any:
    """X as the network takes it: a C-contiguous array, or a CSR matrix kept sparse."""
    if is_sparse(X):
        return X.tocsr().astype(dtype, copy=False)  # CSC is converted; CSR is used as it is
    return np.ascontiguousarray(X, dtype=dtype)
