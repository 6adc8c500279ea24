"""scikit-learn estimators over `Network`: `MLPClassifier` and `MLPRegressor`.

They take every parameter of scikit-learn's estimators of the same names, validate them the
same way, initialise and train as those do (Glorot-uniform weights, the L2 penalty of the
batch, the learning-rate schedules, the convergence test, early stopping, warm start, sample
weights, L-BFGS) and expose the same learned attributes, so they drop into a `Pipeline` or
`GridSearchCV` unchanged and learn the same curves up to the random draws. Their
``learning_rate`` is scikit-learn's schedule, per epoch; `Network.fit`'s per-step
``lr_schedule`` and ``max_grad_norm`` are not among their parameters. The epochs of a fit
run in one C++ call. Importing this module imports scikit-learn; ``import denseprop`` does
not, and reaches these classes only when they are first used. SciPy is imported by
``solver="lbfgs"`` only. Their parameters are declared in `_estimator_params`, their training
in `_mlp`.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import column_or_1d
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels

from ._checks import is_real
from ._estimator_params import SHARED, ClassifierParameters, _init_of
from ._mlp import _SPARSE_FORMATS, _BaseMLP, _readable, validate_data
from ._tables import LOSSES

__all__ = ["MLPClassifier", "MLPRegressor"]


class MLPClassifier(ClassifierMixin, _BaseMLP, ClassifierParameters):
    """A multilayer perceptron classifier on denseprop's `Network`, as scikit-learn's.

    Parameters, their defaults and their checks are scikit-learn's ``MLPClassifier``'s, plus
    ``activation``: every hidden activation of ``denseprop.activations()`` ("sigmoid",
    "leaky_relu", "gelu", ...), ``dtype``: None trains float32 data in float32 and anything
    else in float64, and ``compute_dtype``: "bfloat16" forms the network's products on
    bfloat16 operands with float32 sums, its parameters in float32 (see `denseprop.Network`;
    with ``dtype=None`` any data then trains in float32), and ``class_weight``, which
    scikit-learn's ``MLPClassifier`` lacks, as its other classifiers define it: None, "balanced"
    (``n_samples / (n_classes * np.bincount(y))``) or ``{label: weight}``; a fit then weighs
    each sample by ``compute_sample_weight(class_weight, y)`` (times its ``sample_weight``), in
    its loss and in early stopping's validation score, and is that fit's to the bit. A
    multilabel ``y`` takes "balanced" (each label's column balanced, the weights multiplied)
    or None; `partial_fit` takes no "balanced", which needs the whole of ``y``. ``dropout``,
    also an addition: the network's inverted dropout on the hidden layers in training (one
    probability, or one per hidden layer; see `denseprop.Network`), with sgd or adam; the
    masks come from ``random_state``.

    The output layer is softmax with cross-entropy for more than two classes, one sigmoid
    with binary cross-entropy for two, one sigmoid per label for a multilabel indicator
    ``y``. ``alpha`` is the L2 penalty ``alpha / (2 Σw) ||W||²`` of each batch (Σw its
    weight: its size when unweighted), in the gradient and in ``loss_curve_``, as in
    scikit-learn.

    Attributes: ``classes_``, ``loss_``, ``best_loss_``, ``loss_curve_``,
    ``validation_scores_``, ``best_validation_score_``, ``t_``, ``coefs_`` ``(in, out)`` and
    ``intercepts_`` (views of ``network_``'s parameters), ``n_features_in_``,
    ``feature_names_in_``, ``n_iter_``, ``n_layers_``, ``n_outputs_``, ``out_activation_``, as
    scikit-learn defines them; ``network_``, the trained `Network`.
    """

    def _validate_input(
        self, X: Any, y: Any, incremental: bool, reset: bool
    ) -> tuple[Any, NDArray[Any], NDArray[np.float64] | None]:
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
        class_weights = self._class_weights(y)
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
        return X, self._label_binarizer.transform(y).astype(bool), class_weights

    def _class_weights(self, y: NDArray[Any]) -> NDArray[np.float64] | None:
        """Each sample's weight from ``class_weight`` (None without one): scikit-learn's
        ``compute_sample_weight``, with its errors, and a ValueError naming ``class_weight``
        for a weight that is not a finite number >= 0."""
        class_weight = self.class_weight
        if class_weight is None:
            return None
        if y.ndim == 2 and isinstance(class_weight, dict):
            msg = f"class_weight: a multilabel y takes 'balanced' or None, got {class_weight!r}"
            raise ValueError(msg)
        weights: NDArray[np.float64] = compute_sample_weight(class_weight, y)
        for label, weight in (class_weight.items() if isinstance(class_weight, dict) else ()):
            if not (is_real(weight) and weight >= 0):
                msg = (
                    f"class_weight: the weight of class {label!r} must be a finite number "
                    f">= 0, got {weight!r}"
                )
                raise ValueError(msg)
        return weights

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
        if isinstance(self.class_weight, str) and self.class_weight == "balanced":
            msg = (
                "class_weight 'balanced' is not supported for partial_fit. In order to use "
                "'balanced' weights, use compute_class_weight('balanced', classes=classes, "
                "y=y). In place of y you can use a large enough sample of the full training "
                "set target to properly estimate the class frequency distributions. Pass the "
                "resulting weights as the class_weight parameter, as "
                "dict(zip(classes, weights))."
            )
            raise ValueError(msg)
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

    Attributes are `MLPClassifier`'s, without ``classes_``; it takes no ``class_weight``.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    __init__ = _init_of([SHARED[0], inspect.Parameter(
        "loss", inspect.Parameter.POSITIONAL_OR_KEYWORD, default="squared_error"), *SHARED[1:]])

    def _validate_input(
        self, X: Any, y: Any, incremental: bool, reset: bool
    ) -> tuple[Any, NDArray[Any], None]:
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
        return X, y, None

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
