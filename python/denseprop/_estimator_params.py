"""The scikit-learn estimators' parameters, apart from their training: each parameter's
default, declared once as a signature (`SHARED`, in scikit-learn's MLPs' order), and its
constraint (scikit-learn's checks), and how those that are optimizer settings map onto
denseprop's (`_OPTIMIZER_SETTINGS`). `MLPClassifier` adds ``class_weight`` after these
(`ClassifierParameters`), `MLPRegressor` ``loss`` in front of them; each ``__init__`` is made
from the signature (`_init_of`)."""

from __future__ import annotations

import inspect
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, Options, StrOptions

from ._tables import HIDDEN

# scikit-learn's activation names ("logistic"), and every hidden activation of denseprop's table
_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", **{n: n for n in HIDDEN}}
# scikit-learn's name of each optimizer setting it has -> denseprop's (optimizers.hpp's table)
_OPTIMIZER_SETTINGS = {"momentum": "momentum", "nesterovs_momentum": "nesterov",
                       "beta_1": "beta1", "beta_2": "beta2", "epsilon": "eps"}  # fmt: skip


def _declared(
    self: Any,
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
    dropout: float | Any = 0.0,
) -> None:
    """The parameters the two estimators share, in scikit-learn's MLPs' order and with their
    defaults: declared here once, as a signature (`SHARED`)."""


#: The shared parameters, ``self`` first: `MLPClassifier`'s signature, and `MLPRegressor`'s
#: after its ``loss``.
SHARED = list(inspect.signature(_declared).parameters.values())


def _init_of(parameters: list[inspect.Parameter]) -> Any:
    """An ``__init__`` taking ``parameters`` (``self`` first) that stores each argument under
    its name and nothing else, as scikit-learn requires; ``inspect.signature``, and so
    scikit-learn's ``get_params``, ``clone`` and ``repr``, read its ``__signature__``."""
    signature = inspect.Signature(parameters)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        for name, value in list(bound.arguments.items())[1:]:
            setattr(self, name, value)

    __init__.__signature__ = signature  # type: ignore[attr-defined]
    return __init__


class Parameters(BaseEstimator):
    """The parameters `MLPClassifier` and `MLPRegressor` share, declared and checked."""

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
        "dropout": [Interval(Real, 0, 1, closed="left"), "array-like"],
    }

    __init__ = _init_of(SHARED)


class ClassifierParameters(Parameters):
    """`Parameters` and the classifier's own: ``class_weight``, as scikit-learn's other
    classifiers (``LogisticRegression``, ``SGDClassifier``) declare it: None, "balanced" or
    ``{label: weight}``."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **Parameters._parameter_constraints,
        "class_weight": [StrOptions({"balanced"}), dict, None],
    }

    __init__ = _init_of(
        [*SHARED, inspect.Parameter("class_weight", inspect.Parameter.KEYWORD_ONLY, default=None)]
    )
