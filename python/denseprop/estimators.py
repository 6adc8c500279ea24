"""scikit-learn estimators over `Network`: `MLPClassifier` and `MLPRegressor`.

They take every parameter of scikit-learn's estimators of the same names, validate them the
same way, initialise and train as those do (Glorot-uniform weights, the L2 penalty of the
batch, the learning-rate schedules, the convergence test, early stopping, warm start, sample
weights, L-BFGS) and expose the same learned attributes, so they drop into a `Pipeline` or
`GridSearchCV` unchanged and learn the same curves up to the random draws. The epochs of a fit
run in one C++ call. Importing this module imports scikit-learn; ``import denseprop`` does
not, and reaches these classes only when they are first used. SciPy is imported by
``solver="lbfgs"`` only.
"""

from __future__ import annotations

import os
import warnings
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from . import _core
from ._seam import seam_of
from ._tables import HIDDEN, LOSSES, OPTIMIZERS
from .network import Network
from .sparse import is_sparse

try:
    from sklearn.utils.validation import validate_data
except ImportError:  # scikit-learn < 1.6 has it as a method

    def validate_data(estimator: Any, /, *args: Any, **kwargs: Any) -> Any:
        return estimator._validate_data(*args, **kwargs)


__all__ = ["MLPClassifier", "MLPRegressor"]

# scikit-learn's activation names ("logistic"), and every hidden activation of denseprop's table
_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", **{n: n for n in HIDDEN}}
_STOCHASTIC = ("sgd", "adam")
# scikit-learn's name of each optimizer setting it has -> denseprop's (optimizers.hpp's table)
_OPTIMIZER_SETTINGS = {"momentum": "momentum", "nesterovs_momentum": "nesterov",
                       "beta_1": "beta1", "beta_2": "beta2", "epsilon": "eps"}  # fmt: skip
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


class _LayerViews(list):  # type: ignore[type-arg]
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


class _BaseMLP(BaseEstimator):
    """What the classifier and the regressor share: parameters, checks and the training loop."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(_ACTIVATIONS))],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [
            Interval(Integral, 1, None, closed="left"),
            Options(Real, {np.inf}),
        ],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "dtype": [None, StrOptions({"float32", "float64"})],
        "compute_dtype": [None, StrOptions({"bfloat16"})],
    }

    def __init__(
        self,
        hidden_layer_sizes: Any = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 1e-4,
        batch_size: int | str = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 1e-3,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: bool | int = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: float = 10,
        max_fun: int = 15000,
        dtype: str | None = None,
        compute_dtype: str | None = None,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dtype = dtype
        self.compute_dtype = compute_dtype

    # -- what the subclasses say -----------------------------------------------------------

    def _validate_input(
        self, X: Any, y: Any, incremental: bool, reset: bool
    ) -> tuple[Any, NDArray[Any]]:
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
        sizes = self.hidden_layer_sizes
        hidden = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
        if np.any(np.array(hidden) <= 0):
            msg = f"hidden_layer_sizes must be > 0, got {hidden}."
            raise ValueError(msg)
        first_pass = not hasattr(self, "network_") or (not self.warm_start and not incremental)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=X.dtype, ensure_non_negative=True
            )
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
        self.network_ = Network(
            layer_units, activation, loss, dtype=dtype, seed=0, compute_dtype=self.compute_dtype
        )
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
        return _LayerViews([w.T for w in self.network_.weights], "coefs_")

    @coefs_.setter
    def coefs_(self, value: list[ArrayLike]) -> None:
        _assign(self.coefs_, value, "coefs_")

    @property
    def intercepts_(self) -> list[NDArray[Any]]:
        """Each layer's biases ``(out,)``, views of ``network_.biases``; assignable."""
        check_is_fitted(self, "network_")
        return _LayerViews(list(self.network_.biases), "intercepts_")

    @intercepts_.setter
    def intercepts_(self, value: list[ArrayLike]) -> None:
        _assign(self.intercepts_, value, "intercepts_")

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


def _assign(views: list[NDArray[Any]], value: list[ArrayLike], name: str) -> None:
    if len(value) != len(views):
        msg = f"{name}: expected {len(views)} layers, got {len(value)}"
        raise ValueError(msg)
    for i, v in enumerate(value):
        views[i] = np.asarray(v)


def _dense(X: Any, dtype: Any) -> Any:
    """X as the network takes it: a C-contiguous array, or a CSR matrix kept sparse."""
    if is_sparse(X):
        return X.tocsr().astype(dtype, copy=False)  # CSC is converted; CSR is used as it is
    return np.ascontiguousarray(X, dtype=dtype)


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """A multilayer perceptron classifier on denseprop's `Network`, as scikit-learn's.

    Parameters, their defaults and their checks are scikit-learn's ``MLPClassifier``'s, plus
    ``activation``: every hidden activation of ``denseprop.activations()`` ("sigmoid",
    "leaky_relu", "gelu", ...), ``dtype``: None trains float32 data in float32 and anything
    else in float64, and ``compute_dtype``: "bfloat16" forms the network's products on
    bfloat16 operands with float32 sums, its parameters in float32 (see `denseprop.Network`;
    with ``dtype=None`` any data then trains in float32). The output layer is softmax with
    cross-entropy for more than two classes, one sigmoid with binary cross-entropy for two,
    one sigmoid per label for a multilabel indicator ``y``. ``alpha`` is the L2 penalty
    ``alpha / (2 Σw) ||W||²`` of each batch (Σw its weight: its size when unweighted), in the
    gradient and in ``loss_curve_``, as in scikit-learn.

    Attributes: ``classes_``, ``loss_``, ``best_loss_``, ``loss_curve_``,
    ``validation_scores_``, ``best_validation_score_``, ``t_``, ``coefs_`` ``(in, out)`` and
    ``intercepts_`` (views of ``network_``'s parameters), ``n_features_in_``,
    ``feature_names_in_``, ``n_iter_``, ``n_layers_``, ``n_outputs_``, ``out_activation_``, as
    scikit-learn defines them; ``network_``, the trained `Network`.
    """

    def _validate_input(
        self, X: Any, y: Any, incremental: bool, reset: bool
    ) -> tuple[Any, NDArray[Any]]:
        X, y = _readable(X, "X"), _readable(y, "y")
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=_SPARSE_FORMATS,
            multi_output=True,
            dtype=self._input_dtype(reset),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    msg = (
                        "warm_start can only be used where `y` has the same classes as in the "
                        f"previous call to fit. Previously got {self.classes_}, `y` has "
                        f"{classes}"
                    )
                    raise ValueError(msg)
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                msg = (
                    "`y` has classes not in `self.classes_`. "
                    f"`self.classes_` has {self.classes_}. 'y' has {classes}."
                )
                raise ValueError(msg)
        return X, self._label_binarizer.transform(y).astype(bool)

    def _network_loss(self) -> str:
        multiclass = self._label_binarizer.y_type_ == "multiclass"
        return "cross_entropy" if multiclass else "binary_cross_entropy"

    def _network_targets(self, y: NDArray[Any], dtype: Any) -> NDArray[Any]:
        if self._network_loss() == "cross_entropy":
            labels: NDArray[Any] = y.argmax(axis=1).astype(np.int64)
            return labels
        return y.astype(dtype)

    @available_if(lambda est: est._check_solver())  # type: ignore[untyped-decorator]
    def partial_fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        sample_weight: ArrayLike | None = None,
        classes: ArrayLike | None = None,
    ) -> MLPClassifier:
        """One epoch over ``(X, y)``, continuing the optimizer's state; returns ``self``.

        ``classes``, every label ``y`` may ever hold, is needed on the first call.
        """
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        self._fit(X, y, sample_weight, incremental=True)
        return self

    def predict_proba(self, X: ArrayLike) -> NDArray[Any]:
        """Class probabilities ``(samples, classes)`` for ``X: (samples, features)``; one
        probability per label for multilabel targets."""
        out = self._forward(X)
        if self.n_outputs_ == 1:
            proba: NDArray[Any] = np.hstack([1 - out, out])
            return proba
        return out

    def predict_log_proba(self, X: ArrayLike) -> NDArray[Any]:
        """The log of `predict_proba`: ``(samples, classes)``."""
        log: NDArray[Any] = np.log(self.predict_proba(X))
        return log

    def predict(self, X: ArrayLike) -> NDArray[Any]:
        """Labels ``(samples,)`` from ``classes_`` (``(samples, labels)`` 0/1 for multilabel)."""
        out = self._forward(X)
        if self.n_outputs_ == 1:
            out = out.ravel()
        return self._label_binarizer.inverse_transform(out)  # type: ignore[no-any-return]

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    def _more_tags(self) -> dict[str, Any]:  # scikit-learn < 1.6
        return {"multilabel": True}


class MLPRegressor(RegressorMixin, _BaseMLP):
    """A multilayer perceptron regressor on denseprop's `Network`, as scikit-learn's.

    Parameters are scikit-learn's ``MLPRegressor``'s (see `MLPClassifier` for denseprop's
    extras). ``loss="squared_error"``: a linear output layer and half the squared error,
    averaged over outputs in ``loss_curve_`` as scikit-learn reports it. ``loss="poisson"``:
    the log link, an ``exp`` output layer (``out_activation_ == "exp"``) predicting the mean
    ``μ = exp(z)``, and half the Poisson deviance ``Σ_k y log(y / μ) − y + μ``, summed over
    outputs in ``loss_curve_`` as scikit-learn's; ``y`` must be ``>= 0`` (a negative value is a
    ValueError naming ``y``, where scikit-learn's loss turns NaN). ``y`` is ``(samples,)`` or
    ``(samples, outputs)``; `predict` returns the same shape. With ``early_stopping`` the
    validation score is R².

    Attributes are `MLPClassifier`'s, without ``classes_``.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(
        self,
        loss: str = "squared_error",
        hidden_layer_sizes: Any = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 1e-4,
        batch_size: int | str = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 1e-3,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: bool | int = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: float = 10,
        max_fun: int = 15000,
        dtype: str | None = None,
        compute_dtype: str | None = None,
    ) -> None:
        super().__init__(
            hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
            learning_rate=learning_rate, learning_rate_init=learning_rate_init,
            power_t=power_t, max_iter=max_iter, shuffle=shuffle, random_state=random_state,
            tol=tol, verbose=verbose, warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun, dtype=dtype,
            compute_dtype=compute_dtype,
        )  # fmt: skip
        self.loss = loss

    def _validate_input(
        self, X: Any, y: Any, incremental: bool, reset: bool
    ) -> tuple[Any, NDArray[Any]]:
        X, y = _readable(X, "X"), _readable(y, "y")
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=_SPARSE_FORMATS,
            multi_output=True,
            y_numeric=True,
            dtype=self._input_dtype(reset),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if LOSSES[self._network_loss()]["nonnegative_targets"] and (y < 0).any():
            msg = f"y: loss={self.loss!r} needs y >= 0 (counts or rates), got {y.min()}"
            raise ValueError(msg)
        return X, y

    def _network_loss(self) -> str:
        return "poisson" if self.loss == "poisson" else "mse"

    @available_if(lambda est: est._check_solver())  # type: ignore[untyped-decorator]
    def partial_fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> MLPRegressor:
        """One epoch over ``(X, y)``, continuing the optimizer's state; returns ``self``."""
        self._fit(X, y, sample_weight, incremental=True)
        return self

    def predict(self, X: ArrayLike) -> NDArray[Any]:
        """Predictions ``(samples,)`` for one output, else ``(samples, outputs)``."""
        out = self._forward(X)
        return out.ravel() if out.shape[1] == 1 else out

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _more_tags(self) -> dict[str, Any]:  # scikit-learn < 1.6
        return {"multioutput": True}
