"""MLPClassifier's ``class_weight``, as scikit-learn's other classifiers define it: a fit with
it is, to the bit, the fit with ``sample_weight = compute_sample_weight(class_weight, y)``
(times any sample_weight), for every solver, single-label and multilabel, early stopping's
validation score included; bad values get scikit-learn's errors and change nothing."""

import re

import numpy as np
import pytest
from denseprop import MLPClassifier, MLPRegressor
from sklearn.base import clone
from sklearn.datasets import make_classification, make_multilabel_classification
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.model_selection import GridSearchCV
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.class_weight import compute_sample_weight

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def problem(kind, dtype=np.float64):
    """(X, y): unbalanced binary or three-class labels, or a multilabel indicator."""
    if kind == "multilabel":
        X, y = make_multilabel_classification(n_samples=90, n_features=6, n_classes=3,
                                              random_state=0)  # fmt: skip
        return X.astype(dtype), y
    classes = 2 if kind == "binary" else 3
    weights = [0.8, 0.2] if classes == 2 else [0.6, 0.3, 0.1]
    X, y = make_classification(n_samples=90, n_features=6, n_informative=4, n_classes=classes,
                               weights=weights, random_state=0)  # fmt: skip
    labels = np.array(["low", "mid", "high"])[y] if kind == "multiclass" else y
    return X.astype(dtype), labels


def fitted_state(est):
    """Everything a fit learns, for comparing two fits bit for bit."""
    curves = {k: getattr(est, k, None) for k in ("loss_curve_", "validation_scores_")}
    return [w.tobytes() for w in est.coefs_ + est.intercepts_], est.loss_, curves


def weights_of(kind):
    return {"binary": {0: 1.0, 1: 4.0}, "multiclass": {"low": 1, "mid": 2.5, "high": 6}}.get(kind)


# every solver and kind of y; a multilabel y takes "balanced" only, lbfgs does not stop early
FITS = [(solver, kind, class_weight, early_stopping)
        for solver in ("sgd", "adam", "lbfgs")
        for kind in ("binary", "multiclass", "multilabel")
        for class_weight in ("balanced", "dict")[: 1 if kind == "multilabel" else 2]
        for early_stopping in (False, True)[: 1 if solver == "lbfgs" else 2]]  # fmt: skip


@pytest.mark.parametrize("given", [False, True], ids=["", "times sample_weight"])
@pytest.mark.parametrize("solver, kind, class_weight, early_stopping", FITS)
def test_class_weight_is_the_fit_with_compute_sample_weight(
    solver, kind, class_weight, early_stopping, given
):
    X, y = problem(kind, np.float32 if given else np.float64)
    class_weight = weights_of(kind) if class_weight == "dict" else class_weight
    sample_weight = np.random.default_rng(1).random(len(y)) * 2 if given else None
    params = dict(hidden_layer_sizes=(7,), solver=solver, max_iter=15, random_state=0,
                  early_stopping=early_stopping, learning_rate_init=0.01)  # fmt: skip
    weighted = MLPClassifier(class_weight=class_weight, **params).fit(X, y, sample_weight)
    expected = compute_sample_weight(class_weight, y)
    if given:
        expected = expected * sample_weight
    plain = MLPClassifier(**params).fit(X, y, sample_weight=expected)
    assert fitted_state(weighted) == fitted_state(plain)
    unweighted = MLPClassifier(**params).fit(X, y)
    assert fitted_state(weighted) != fitted_state(unweighted)


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_partial_fit_with_a_dict_is_partial_fit_with_its_sample_weights(kind):
    X, y = problem(kind)
    classes = np.unique(y)
    weighted = MLPClassifier(hidden_layer_sizes=(5,), class_weight=weights_of(kind),
                             random_state=0)  # fmt: skip
    plain = MLPClassifier(hidden_layer_sizes=(5,), random_state=0)
    for part in (slice(0, 50), slice(50, 90)):
        weighted.partial_fit(X[part], y[part], classes=classes)
        w = compute_sample_weight(weights_of(kind), y[part])
        plain.partial_fit(X[part], y[part], sample_weight=w, classes=classes)
    assert fitted_state(weighted) == fitted_state(plain)


def test_partial_fit_refuses_balanced_saying_what_to_do_instead():
    """scikit-learn's SGDClassifier's message, whose advice is followed to the letter."""
    X, y = problem("binary")
    est = MLPClassifier(class_weight="balanced")
    with pytest.raises(ValueError) as ours:
        est.partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError) as theirs:
        SGDClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1])
    assert str(ours.value).startswith(str(theirs.value)[:-1])
    assert not hasattr(est, "classes_") and not hasattr(est, "network_")
    from sklearn.utils.class_weight import compute_class_weight

    weights = compute_class_weight("balanced", classes=np.array([0, 1]), y=y)
    est.set_params(class_weight=dict(zip([0, 1], weights)))
    est.partial_fit(X, y, classes=[0, 1])
    assert est.n_iter_ == 1


def logistic_regressions_error(class_weight, X, y):
    """The type and message of LogisticRegression's error, with MLPClassifier's name."""
    with pytest.raises((ValueError, InvalidParameterError)) as theirs:
        LogisticRegression(class_weight=class_weight).fit(X, y)
    message = str(theirs.value).replace("LogisticRegression", "MLPClassifier")
    if isinstance(class_weight, (list, str)):  # its constraints, listed in our order
        message = re.sub(r"must be .* or None\.", "must be a str among {'balanced'}, an "
                         "instance of 'dict' or None.", message)  # fmt: skip
    return type(theirs.value), "^" + re.escape(message) + "$"


@pytest.mark.parametrize(
    "class_weight",
    [{0: 1, 7: 2}, [1, 2], "foo", {0: "a", 1: 1}],
    ids=["a class missing", "list", "unknown string", "a string weight"],
)
def test_bad_class_weights_get_scikit_learns_errors(class_weight):
    """The error LogisticRegression gives, with the estimator's name; the estimator unfitted,
    or, fitted, unchanged."""
    X, y = problem("binary")
    est = MLPClassifier(hidden_layer_sizes=(3,), max_iter=5, class_weight=class_weight)
    kind, match = logistic_regressions_error(class_weight, X, y)
    with pytest.raises(kind, match=match):
        est.fit(X, y)
    assert not hasattr(est, "network_") and not hasattr(est, "classes_")
    est.set_params(class_weight=None).fit(X, y)
    before = fitted_state(est)
    est.set_params(class_weight=class_weight)
    other = np.where(y == 1, 2, y)  # another class, which must not be taken in
    kind, match = logistic_regressions_error(class_weight, X, other)
    with pytest.raises(kind, match=match):
        est.fit(X, other)
    assert fitted_state(est) == before and est.classes_.tolist() == [0, 1]


@pytest.mark.parametrize("weight", [-1.0, np.nan, np.inf, True])
def test_a_weight_that_is_not_a_finite_number_at_least_0_is_refused(weight):
    """scikit-learn's classifiers take a negative class weight silently (SGDClassifier) or fail
    on it (LogisticRegression divides by zero): here a ValueError names class_weight."""
    X, y = problem("binary")
    est = MLPClassifier(hidden_layer_sizes=(3,), max_iter=5, class_weight={0: 1, 1: weight})
    message = f"class_weight: the weight of class 1 must be a finite number >= 0, got {weight!r}"
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        est.fit(X, y)
    assert not hasattr(est, "network_") and not hasattr(est, "classes_")


def test_a_multilabel_y_takes_no_dict():
    X, y = problem("multilabel")
    est = MLPClassifier(max_iter=5, class_weight={0: 1, 1: 2})
    match = r"^class_weight: a multilabel y takes 'balanced' or None, got \{0: 1, 1: 2\}$"
    with pytest.raises(ValueError, match=match):
        est.fit(X, y)
    assert not hasattr(est, "network_")


def test_class_weight_in_a_grid_search_clone_and_get_params():
    X, y = problem("binary")
    est = MLPClassifier(hidden_layer_sizes=(5,), max_iter=30, random_state=0)
    assert est.get_params()["class_weight"] is None
    copy = clone(est.set_params(class_weight={0: 1, 1: 3}))
    assert copy.get_params()["class_weight"] == {0: 1, 1: 3}
    grid = GridSearchCV(est, {"class_weight": [None, "balanced", {0: 1, 1: 3}]}, cv=2,
                        scoring="balanced_accuracy").fit(X, y)  # fmt: skip
    assert len(grid.cv_results_["params"]) == 3
    assert grid.best_params_["class_weight"] in (None, "balanced", {0: 1, 1: 3})


def test_balanced_weights_raise_the_rare_class_recall():
    X, y = problem("binary")
    params = dict(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=200, random_state=0)
    plain = MLPClassifier(**params).fit(X, y)
    balanced = MLPClassifier(class_weight="balanced", **params).fit(X, y)
    recall = [np.mean(est.predict(X)[y == 1] == 1) for est in (plain, balanced)]
    assert recall[1] >= recall[0]


def test_the_regressor_takes_no_class_weight():
    with pytest.raises(TypeError, match="class_weight"):
        MLPRegressor(class_weight="balanced")
    assert "class_weight" not in MLPRegressor().get_params()
