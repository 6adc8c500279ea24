"""scikit-learn estimators over `Network`: `MLPClassifier` and `MLPRegressor`.

They take the parameters of scikit-learn's estimators of the same names (solvers "sgd" and
"adam", a constant learning rate) and expose the same learned attributes, so they drop into a
`Pipeline` or `GridSearchCV` unchanged. Importing this module imports scikit-learn;
``import denseprop`` does not, and reaches these classes only when they are first used.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from ._checks import fail, is_int, is_real
from ._tables import HIDDEN
from .network import Network

try:
    from sklearn.utils.validation import validate_data
except ImportError:  # scikit-learn < 1.6 has it as a method

    def validate_data(estimator: Any, /, *args: Any, **kwargs: Any) -> Any:
        return estimator._validate_data(*args, **kwargs)


__all__ = ["MLPClassifier", "MLPRegressor"]

# scikit-learn's activation names ("logistic"), and every hidden activation of denseprop's table
_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", **{n: n for n in HIDDEN}}
_SOLVERS = ("sgd", "adam")
_DTYPES = (None, "float32", "float64")


class _BaseMLP(BaseEstimator):
    """What the classifier and the regressor share: parameters, checks and the training loop."""

    _numeric_y = True  # regression targets are numbers; class labels may be anything

    def __init__(
        self,
        hidden_layer_sizes: int | Sequence[int] = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 1e-4,
        batch_size: int | str = "auto",
        learning_rate_init: float = 1e-3,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: int | np.random.RandomState | None = None,
        tol: float = 1e-4,
        verbose: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        dtype: str | None = None,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.dtype = dtype

    # -- parameters ------------------------------------------------------------------------

    def _hidden(self) -> list[int]:
        sizes = self.hidden_layer_sizes
        layers: list[Any] = [sizes] if is_int(sizes) else list(sizes)  # type: ignore[arg-type]
        if not all(is_int(n) and n >= 1 for n in layers):
            fail("hidden_layer_sizes", "an int or a sequence of ints >= 1", sizes)
        return [int(n) for n in layers]

    def _check_params(self) -> None:
        """Every parameter, checked with the name scikit-learn gives it, before fit touches any."""
        self._hidden()
        if self.activation not in _ACTIVATIONS:
            fail("activation", f"one of {', '.join(_ACTIVATIONS)}", self.activation)
        if self.solver not in _SOLVERS:
            fail("solver", "'sgd' or 'adam' (lbfgs is not supported)", self.solver)
        if not (is_real(self.alpha) and self.alpha >= 0):
            fail("alpha", "a number >= 0", self.alpha)
        batch_size: Any = self.batch_size
        if batch_size != "auto" and not (is_int(batch_size) and batch_size >= 1):
            fail("batch_size", "'auto' or an int >= 1", self.batch_size)
        if not (is_real(self.learning_rate_init) and self.learning_rate_init > 0):
            fail("learning_rate_init", "a number > 0", self.learning_rate_init)
        if not (is_int(self.max_iter) and self.max_iter >= 1):
            fail("max_iter", "an int >= 1", self.max_iter)
        if not (is_real(self.tol) and self.tol >= 0):
            fail("tol", "a number >= 0", self.tol)
        if not (is_real(self.momentum) and 0 <= self.momentum <= 1):
            fail("momentum", "a number in [0, 1]", self.momentum)
        if not (is_real(self.validation_fraction) and 0 < self.validation_fraction < 1):
            fail("validation_fraction", "a number in (0, 1)", self.validation_fraction)
        if not (is_int(self.n_iter_no_change) and self.n_iter_no_change >= 1):
            fail("n_iter_no_change", "an int >= 1", self.n_iter_no_change)
        if self.dtype not in _DTYPES:
            fail("dtype", "None, 'float32' or 'float64'", self.dtype)

    def _optimizer(self, n_samples: int) -> tuple[int, dict[str, Any]]:
        """The batch size and `Network.fit`'s optimizer arguments.

        scikit-learn's penalty ``alpha / (2 batch) ||W||²`` adds ``alpha / batch · W`` to the
        gradient of the batch's mean loss, which is `Network`'s ``weight_decay``.
        """
        batch = min(200 if self.batch_size == "auto" else int(self.batch_size), n_samples)
        sgd = self.solver == "sgd"
        momentum = float(self.momentum) if sgd else 0.0
        return batch, {
            "optimizer": self.solver,
            "lr": float(self.learning_rate_init),
            "momentum": momentum,
            "nesterov": sgd and bool(self.nesterovs_momentum) and momentum > 0,
            "weight_decay": float(self.alpha) / batch,
        }

    # -- data ------------------------------------------------------------------------------

    def _validate(self, X: ArrayLike, y: ArrayLike, *, reset: bool) -> tuple[Any, Any]:
        """``X`` as a float array of the network's dtype, ``y`` as an array (1-D when it is a
        column); the number of features is learnt with ``reset``, else checked."""
        if reset:
            dtype: Any = [np.float64, np.float32] if self.dtype is None else self.dtype
        else:
            dtype = self.network_.dtype
        x_checked, y_checked = validate_data(
            self, X, y, reset=reset, dtype=dtype, multi_output=True, y_numeric=self._numeric_y
        )
        if y_checked.ndim == 2 and y_checked.shape[1] == 1:
            y_checked = column_or_1d(y_checked, warn=True)
        return x_checked, y_checked

    def _targets(self, y: NDArray[Any], dtype: Any, *, reset: bool) -> NDArray[Any]:
        """Regression targets ``(samples, outputs)`` of ``dtype``; with ``reset`` their width
        becomes ``n_outputs_``."""
        if y.ndim == 1:
            y = y[:, None]
        if reset:
            self.n_outputs_ = y.shape[1]
        elif y.shape[1] != self.n_outputs_:
            msg = f"y: expected {self.n_outputs_} outputs as in the first fit, got {y.shape[1]}"
            raise ValueError(msg)
        return y.astype(dtype, copy=False)

    # -- training --------------------------------------------------------------------------

    def _new_network(self, n_features: int, n_outputs: int, loss: str, dtype: Any) -> Network:
        sizes = [n_features, *self._hidden(), n_outputs]
        seed = int(self._random_state.randint(np.iinfo(np.int32).max))
        return Network(sizes, _ACTIVATIONS[self.activation], loss, dtype=dtype, seed=seed)

    def _fit(self, X: NDArray[Any], y: NDArray[Any], validation: Any) -> None:
        """Train ``network_`` on targets ``y`` as the network reads them."""
        batch, optimizer = self._optimizer(len(X))
        self.network_.fit(
            X,
            y,
            epochs=int(self.max_iter),
            batch_size=batch,
            **optimizer,
            validation_data=validation,
            # scikit-learn's convergence test: stop after n_iter_no_change epochs without an
            # improvement by tol, of the validation score or else of the training loss
            early_stopping=True,
            patience=int(self.n_iter_no_change),
            tol=float(self.tol),
            shuffle=bool(self.shuffle),
            seed=int(self._random_state.randint(np.iinfo(np.int32).max)),
            verbose=bool(self.verbose),
            progress=None if self.verbose else False,
        )
        self.n_iter_ = len(self.network_.loss_curve_)
        self.loss_curve_ = list(self.network_.loss_curve_)
        self.best_loss_: float | None = None
        self.validation_scores_: list[float] | None = None
        self.best_validation_score_: float | None = None
        if validation is None:
            self.best_loss_ = min(self.loss_curve_)
        else:
            self.validation_scores_ = list(self.network_.validation_scores_)
            self.best_validation_score_ = max(self.validation_scores_)
        if self.n_iter_ == self.max_iter:
            msg = (
                f"{type(self).__name__}: max_iter={self.max_iter} epochs reached and the "
                "optimization has not converged yet."
            )
            warnings.warn(msg, ConvergenceWarning, stacklevel=3)

    def _split(self, X: NDArray[Any], y: NDArray[Any], stratify: Any) -> tuple[Any, Any, Any]:
        """Training data and ``validation_fraction`` of it held out, when early stopping."""
        if not self.early_stopping:
            return X, y, None
        n_validation = math.ceil(len(X) * float(self.validation_fraction))
        if n_validation < 2 or len(X) - n_validation < 1:
            msg = (
                f"early_stopping: validation_fraction={self.validation_fraction} of "
                f"{len(X)} samples leaves too few to train on and to validate with"
            )
            raise ValueError(msg)
        x_train, x_val, y_train, y_val = train_test_split(
            X, y, test_size=n_validation, random_state=self._random_state, stratify=stratify
        )
        return x_train, y_train, (x_val, y_val)

    def _partial_fit(self, X: NDArray[Any], y: NDArray[Any]) -> None:
        self.network_.partial_fit(
            X,
            y,
            batch_size=self._optimizer(len(X))[0],
            shuffle=bool(self.shuffle),
            seed=int(self._random_state.randint(np.iinfo(np.int32).max)),
        )
        self.n_iter_ += 1
        self.loss_curve_ = list(self.network_.loss_curve_)
        self.best_loss_ = min(self.loss_curve_)

    def _start(self, X: NDArray[Any], n_outputs: int, loss: str) -> None:
        """A new network for ``X``, its optimizer set up for `partial_fit`."""
        self.network_ = self._new_network(X.shape[1], n_outputs, loss, X.dtype)
        optimizer = self._optimizer(len(X))[1]
        self.network_.set_optimizer(optimizer.pop("optimizer"), optimizer.pop("lr"), **optimizer)
        self.n_iter_ = 0

    # -- learned parameters, scikit-learn's way --------------------------------------------

    @property
    def coefs_(self) -> list[NDArray[Any]]:
        """Each layer's weights ``(in, out)``, scikit-learn's layout: ``coefs_[i]`` is
        ``network_.weights[i].T``, a view of the network's ``(out, in)`` weights."""
        check_is_fitted(self, "network_")
        return [w.T for w in self.network_.weights]

    @property
    def intercepts_(self) -> list[NDArray[Any]]:
        """Each layer's biases ``(out,)``, views of ``network_.biases``."""
        check_is_fitted(self, "network_")
        return list(self.network_.biases)

    @property
    def n_layers_(self) -> int:
        """The number of layers, inputs and outputs included."""
        check_is_fitted(self, "network_")
        return len(self.network_.sizes)

    @property
    def out_activation_(self) -> str:
        """The output layer's activation, in scikit-learn's names."""
        check_is_fitted(self, "network_")
        name = self.network_.activations[-1]
        return "logistic" if name == "sigmoid" else name

    def _forward(self, X: ArrayLike) -> NDArray[Any]:
        check_is_fitted(self, "network_")
        return self.network_.forward(validate_data(self, X, reset=False, dtype=self.network_.dtype))


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """A multilayer perceptron classifier on denseprop's `Network`, as scikit-learn's.

    Parameters are scikit-learn's ``MLPClassifier``'s. The output layer is softmax with
    cross-entropy for more than two classes, one sigmoid with binary cross-entropy for two,
    one sigmoid per label for a multilabel indicator ``y``. ``activation`` takes scikit-learn's
    names ("identity", "logistic", "tanh", "relu") and every hidden activation of
    ``denseprop.activations()`` ("sigmoid", "leaky_relu", "gelu", ...).
    ``alpha`` is the L2 penalty ``alpha / (2 batch) ||W||²`` per batch, as in scikit-learn.
    ``dtype`` is the network's: None keeps float32 data in float32 and trains everything else
    in float64.

    Training stops after ``max_iter`` epochs, or earlier when the training loss (or, with
    ``early_stopping``, the accuracy on ``validation_fraction`` of the data held out) has not
    improved by ``tol`` for ``n_iter_no_change`` epochs; early stopping then restores the best
    parameters.

    Attributes
    ----------
    classes_ : (classes,) array of the labels seen in fit (any sortable type).
    network_ : the trained `Network`.
    coefs_, intercepts_ : per layer, weights ``(in, out)`` (the transposes of
        ``network_.weights``, which are ``(out, in)``) and biases ``(out,)``; views.
    n_features_in_, feature_names_in_ (when X has column names), n_outputs_, n_layers_,
    out_activation_, n_iter_ (epochs run), loss_curve_ (each epoch's mean training loss,
    without the penalty), best_loss_ (without early stopping), validation_scores_ and
    best_validation_score_ (with early stopping).
    """

    _numeric_y = False

    def fit(self, X: ArrayLike, y: ArrayLike) -> MLPClassifier:
        """Train a new network on ``X: (samples, features)`` and labels ``y: (samples,)``
        (or a multilabel indicator ``(samples, labels)``); returns ``self``."""
        self._check_params()
        self._random_state = check_random_state(self.random_state)
        x, labels = self._validate(X, y, reset=True)
        targets = self._encode(x, labels, None)
        stratify = labels if self._binarizer.y_type_ != "multilabel-indicator" else None
        x_train, y_train, validation = self._split(x, targets, stratify)
        self._start(x, self._n_network_outputs(), self._network_loss())
        self._fit(x_train, y_train, validation)
        return self

    def partial_fit(
        self, X: ArrayLike, y: ArrayLike, classes: ArrayLike | None = None
    ) -> MLPClassifier:
        """One epoch over ``(X, y)``, continuing the optimizer's state; returns ``self``.

        ``classes``, every label ``y`` may ever hold, is needed on the first call.
        """
        first = not hasattr(self, "network_")
        if first:
            if classes is None:
                msg = "classes: must be given on the first call to partial_fit"
                raise ValueError(msg)
            self._check_params()
            self._random_state = check_random_state(self.random_state)
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            msg = (
                f"classes: {np.unique(classes).tolist()} differ from classes_ "
                f"{self.classes_.tolist()} of the first call"
            )
            raise ValueError(msg)
        x, labels = self._validate(X, y, reset=first)
        targets = self._encode(x, labels, classes if first else self.classes_)
        if first:
            self._start(x, self._n_network_outputs(), self._network_loss())
        self._partial_fit(x, targets)
        return self

    def _encode(self, X: NDArray[Any], y: NDArray[Any], classes: Any) -> NDArray[Any]:
        """Labels ``y`` as the network's loss reads them: class indices ``(samples,)`` for
        more than two classes, else 0/1 floats ``(samples, outputs)``."""
        check_classification_targets(y)
        if classes is None or not hasattr(self, "_binarizer"):
            self._binarizer = LabelBinarizer().fit(y if classes is None else classes)
            self.classes_ = self._binarizer.classes_
        if y.ndim == 1:
            unknown = np.setdiff1d(y, self.classes_)
            if len(unknown):
                known = self.classes_.tolist()
                msg = f"y: labels {unknown[:5].tolist()} are not in classes_ {known}"
                raise ValueError(msg)
        if self._network_loss() == "cross_entropy":
            return np.searchsorted(self.classes_, y).astype(np.int64)
        return np.asarray(self._binarizer.transform(y), dtype=X.dtype)

    def _network_loss(self) -> str:
        multiclass = self._binarizer.y_type_ == "multiclass"
        return "cross_entropy" if multiclass else "binary_cross_entropy"

    def _n_network_outputs(self) -> int:
        if self._binarizer.y_type_ == "binary":
            return 1
        return len(self.classes_)

    def predict_proba(self, X: ArrayLike) -> NDArray[Any]:
        """Class probabilities ``(samples, classes)`` for ``X: (samples, features)``; one
        probability per label for multilabel targets."""
        out = self._forward(X)
        if self._binarizer.y_type_ == "binary":
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
        if self._network_loss() == "cross_entropy":
            predicted: NDArray[Any] = self.classes_[out.argmax(axis=1)]
            return predicted
        return self._binarizer.inverse_transform(out)  # type: ignore[no-any-return]

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    def _more_tags(self) -> dict[str, Any]:  # scikit-learn < 1.6
        return {"multilabel": True}


class MLPRegressor(RegressorMixin, _BaseMLP):
    """A multilayer perceptron regressor on denseprop's `Network`, as scikit-learn's.

    Parameters are scikit-learn's ``MLPRegressor``'s (see `MLPClassifier`). The output
    layer is linear and the loss half the squared error, the mean over the batch.
    ``y`` is ``(samples,)`` or ``(samples, outputs)``; `predict` returns the same shape.
    With ``early_stopping`` the validation score is R².

    Attributes are `MLPClassifier`'s, without ``classes_``.
    """

    def fit(self, X: ArrayLike, y: ArrayLike) -> MLPRegressor:
        """Train a new network on ``X: (samples, features)`` and targets ``y: (samples,)``
        or ``(samples, outputs)``; returns ``self``."""
        self._check_params()
        self._random_state = check_random_state(self.random_state)
        x, values = self._validate(X, y, reset=True)
        targets = self._targets(values, x.dtype, reset=True)
        x_train, y_train, validation = self._split(x, targets, None)
        self._start(x, self.n_outputs_, "mse")
        self._fit(x_train, y_train, validation)
        return self

    def partial_fit(self, X: ArrayLike, y: ArrayLike) -> MLPRegressor:
        """One epoch over ``(X, y)``, continuing the optimizer's state; returns ``self``."""
        first = not hasattr(self, "network_")
        if first:
            self._check_params()
            self._random_state = check_random_state(self.random_state)
        x, values = self._validate(X, y, reset=first)
        targets = self._targets(values, x.dtype, reset=first)
        if first:
            self._start(x, self.n_outputs_, "mse")
        self._partial_fit(x, targets)
        return self

    def predict(self, X: ArrayLike) -> NDArray[Any]:
        """Predictions ``(samples,)`` for one output, else ``(samples, outputs)``."""
        out = self._forward(X)
        return out.ravel() if self.n_outputs_ == 1 else out

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _more_tags(self) -> dict[str, Any]:  # scikit-learn < 1.6
        return {"multioutput": True}
