"""MLPClassifier and MLPRegressor are scikit-learn estimators: they pass scikit-learn's own
checks, live in pipelines and grid searches, and learn as scikit-learn's MLPs do."""

import subprocess
import sys

import denseprop
import denseprop.reference as ref
import numpy as np
import pytest
from conftest import assert_close
from denseprop import MLPClassifier, MLPRegressor
from sklearn import neural_network
from sklearn.datasets import load_digits, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

# Training that runs to max_iter warns, as scikit-learn's MLPs do (pinned down in
# test_coefs_are_transposed_views_of_the_network); the tests here ask for accuracy instead.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def expected_failed_checks(estimator):
    """Checks these estimators fail on purpose, each with the reason."""
    return {}


@parametrize_with_checks(
    [
        MLPClassifier(random_state=0),
        MLPRegressor(random_state=0),
        MLPClassifier(max_iter=50, random_state=0),
        MLPRegressor(max_iter=50, random_state=0),
    ],
    expected_failed_checks=expected_failed_checks,
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_import_denseprop_does_not_import_scikit_learn():
    code = (
        "import sys, denseprop\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] == 'sklearn']\n"
        "assert not loaded, loaded\n"
        "denseprop.MLPClassifier\n"
        "assert 'sklearn' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_estimators_are_reached_from_the_package():
    from denseprop import estimators

    assert denseprop.MLPClassifier is estimators.MLPClassifier
    assert "MLPRegressor" in dir(denseprop)
    with pytest.raises(AttributeError, match="no attribute 'MLPClassifer'"):
        getattr(denseprop, "MLPClassifer")  # noqa: B009


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return train_test_split(x / 16, y, test_size=0.25, random_state=0)


def test_digits_accuracy_matches_scikit_learn(digits):
    """Same settings, same data: test accuracy within 2 points of scikit-learn's MLP."""
    x_train, x_test, y_train, y_test = digits
    settings = dict(hidden_layer_sizes=(32,), max_iter=200, random_state=0)
    ours = MLPClassifier(**settings).fit(x_train, y_train)
    theirs = neural_network.MLPClassifier(**settings).fit(x_train, y_train)
    ours_score, theirs_score = ours.score(x_test, y_test), theirs.score(x_test, y_test)
    assert ours_score >= 0.95
    assert abs(ours_score - theirs_score) <= 0.02, (ours_score, theirs_score)
    assert ours.n_iter_ == len(ours.loss_curve_) <= 200
    assert ours.loss_curve_[-1] < ours.loss_curve_[0] / 10


def test_pipeline_with_string_labels(digits):
    x_train, x_test, y_train, y_test = digits
    names = np.array(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    )
    model = make_pipeline(
        StandardScaler(),
        MLPClassifier((32,), solver="sgd", learning_rate_init=0.1, batch_size=32, random_state=0),
    )
    model.fit(x_train, names[y_train])
    assert list(model.classes_) == sorted(names)
    predicted = model.predict(x_test)
    assert predicted.dtype == names.dtype
    assert np.mean(predicted == names[y_test]) >= 0.95
    proba = model.predict_proba(x_test)
    assert proba.shape == (len(x_test), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-12)
    assert (model.classes_[proba.argmax(axis=1)] == predicted).all()


def test_grid_search(digits):
    x_train, x_test, y_train, y_test = digits
    search = GridSearchCV(
        MLPClassifier(max_iter=30, random_state=0),
        {"hidden_layer_sizes": [(8,), (32,)], "alpha": [1e-4, 1.0]},
        cv=3,
    )
    search.fit(x_train, y_train)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_params_["hidden_layer_sizes"] == (32,)
    assert search.best_estimator_.coefs_[0].shape == (64, 32)
    assert search.score(x_test, y_test) >= 0.9


def test_coefs_are_transposed_views_of_the_network(digits, dtype):
    """coefs_ (in, out) are the network's (out, in) weights; predict_proba is the network's
    forward pass written in NumPy from them."""
    x_train, x_test, y_train, _ = digits
    x_train, x_test = x_train.astype(dtype), x_test.astype(dtype)
    model = MLPClassifier((16, 12), activation="tanh", max_iter=5, random_state=0)
    with pytest.warns(ConvergenceWarning):
        model.fit(x_train, y_train)
    assert model.network_.dtype == dtype
    assert [c.shape for c in model.coefs_] == [(64, 16), (16, 12), (12, 10)]
    for c, w in zip(model.coefs_, model.network_.weights):
        assert np.shares_memory(c, w)
        assert (c == w.T).all()
    assert model.n_layers_ == 4
    assert model.out_activation_ == "softmax"
    expected = ref.network_forward(
        [c.T for c in model.coefs_], model.intercepts_, x_test, ["tanh", "tanh", "softmax"]
    )[-1]
    assert_close(model.predict_proba(x_test), expected, dtype)


def _one_step_each(ours, theirs, x, y, **first_call):
    """Start both from our initial parameters and take one full-batch SGD step each."""
    ours.partial_fit(x, y, **first_call)
    theirs.partial_fit(x, y, **first_call)
    ours_params = [*ours.coefs_, *ours.intercepts_]
    theirs_params = [*theirs.coefs_, *theirs.intercepts_]
    for mine, other in zip(ours_params, theirs_params):
        other[...] = mine  # in place: scikit-learn's optimizer holds these arrays
    ours.partial_fit(x, y)
    theirs.partial_fit(x, y)
    for mine, other in zip(ours_params, theirs_params):
        assert_close(mine, other, np.float64)


@pytest.mark.parametrize("classes", [2, 3])
def test_classifier_step_is_scikit_learns(rng, classes):
    """Same loss, output layer, L2 penalty (alpha) and SGD update as scikit-learn, to 1e-12."""
    x = rng.standard_normal((37, 5))
    y = rng.integers(0, classes, 37)
    settings = dict(
        hidden_layer_sizes=(7,),
        activation="logistic",
        solver="sgd",
        alpha=0.3,
        learning_rate_init=0.5,
        momentum=0.0,
        batch_size=37,
        shuffle=False,
    )
    _one_step_each(
        MLPClassifier(**settings, dtype="float64"),
        neural_network.MLPClassifier(**settings),
        x,
        y,
        classes=np.arange(classes),
    )


@pytest.mark.parametrize("outputs", [1, 3])
def test_regressor_step_is_scikit_learns(rng, outputs):
    x = rng.standard_normal((37, 5))
    y = rng.standard_normal((37, outputs)).squeeze()
    settings = dict(
        hidden_layer_sizes=(7, 4),
        solver="sgd",
        alpha=0.3,
        learning_rate_init=0.05,
        momentum=0.0,
        batch_size=37,
        shuffle=False,
    )
    _one_step_each(
        MLPRegressor(**settings, dtype="float64"), neural_network.MLPRegressor(**settings), x, y
    )


def test_regressor_learns_a_smooth_function(dtype):
    x, y = make_regression(n_samples=400, n_features=6, n_targets=2, noise=1.0, random_state=0)
    x, y = x.astype(dtype), y / y.std()
    model = MLPRegressor(hidden_layer_sizes=(32,), learning_rate_init=0.01, max_iter=500,
                         random_state=0)  # fmt: skip
    model.fit(x[:300], y[:300])
    assert model.network_.dtype == dtype
    assert model.predict(x[300:]).shape == (100, 2)
    assert model.predict(x[300:]).dtype == dtype
    assert model.score(x[300:], y[300:]) >= 0.95
    single = MLPRegressor(hidden_layer_sizes=(8,), max_iter=500, random_state=0)
    single.fit(x[:300], y[:300, 0])
    assert single.predict(x[300:]).shape == (100,)


def test_early_stopping_holds_out_data_and_keeps_the_best(digits):
    x_train, _, y_train, _ = digits
    model = MLPClassifier(
        (32,), early_stopping=True, validation_fraction=0.2, n_iter_no_change=3, random_state=0
    ).fit(x_train, y_train)
    assert model.n_iter_ < 200
    assert len(model.validation_scores_) == model.n_iter_
    assert model.best_validation_score_ == max(model.validation_scores_)
    assert model.best_loss_ is None
    # the parameters are those of the best epoch: they score it again on the held-out part,
    # split as scikit-learn splits it (its RandomState, after the initial parameters' draws)
    rs = np.random.RandomState(0)
    for n_in, n_out in [(64, 32), (32, 10)]:
        rs.uniform(size=(n_in, n_out)), rs.uniform(size=n_out)
    _, x_val, _, y_val = train_test_split(x_train, y_train, test_size=0.2, random_state=rs)
    assert model.score(x_val, y_val) == model.best_validation_score_


def test_binary_and_multilabel_targets(rng):
    x = rng.standard_normal((200, 4))
    y = np.where(x[:, 0] + x[:, 1] > 0, "yes", "no")
    binary = MLPClassifier((8,), learning_rate_init=0.01, random_state=0).fit(x, y)
    assert binary.network_.loss == "binary_cross_entropy"
    assert binary.network_.sizes[-1] == 1
    assert binary.predict_proba(x).shape == (200, 2)
    assert binary.score(x, y) >= 0.95
    labels = np.stack([x[:, 0] > 0, x[:, 1] + x[:, 2] > 0, x[:, 3] < 0.5], axis=1).astype(int)
    multilabel = MLPClassifier((16,), learning_rate_init=0.01, random_state=0).fit(x, labels)
    assert multilabel.predict(x).shape == (200, 3)
    assert multilabel.predict_proba(x).shape == (200, 3)
    assert np.mean(multilabel.predict(x) == labels) >= 0.95


def test_partial_fit_continues_training(digits):
    x_train, x_test, y_train, y_test = digits
    model = MLPClassifier((32,), learning_rate_init=0.01, random_state=0)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        model.partial_fit(x_train, y_train)
    assert not hasattr(model, "network_")
    model.partial_fit(x_train[:100], y_train[:100], classes=np.arange(10))
    for _ in range(30):
        model.partial_fit(x_train, y_train)
    assert model.n_iter_ == 1 and len(model.loss_curve_) == 31  # n_iter_ counts this call
    assert model.loss_curve_[-1] < model.loss_curve_[1] / 2
    assert model.score(x_test, y_test) >= 0.9
    with pytest.raises(ValueError, match="X has 3 features, but MLPClassifier is expecting 64"):
        model.partial_fit(x_train[:, :3], y_train)
    with pytest.raises(ValueError, match=r"`y` has classes not in `self.classes_`"):
        model.partial_fit(x_train[:2], [1, 11])


def test_too_few_samples_for_early_stopping(rng):
    x, y = rng.standard_normal((5, 3)), rng.standard_normal(5)
    with pytest.raises(ValueError, match="The validation set is too small"):
        MLPRegressor(early_stopping=True).fit(x, y)


def test_the_two_estimators_take_the_same_parameters_and_one_more_each():
    """Their shared parameters are declared once (_estimator_params.SHARED); the classifier
    adds ``class_weight`` after them (ClassifierParameters), the regressor ``loss`` before them,
    as scikit-learn's MLPRegressor has it."""
    import inspect

    from denseprop._estimator_params import Parameters

    shared = list(inspect.signature(Parameters.__init__).parameters.values())
    classifier = list(inspect.signature(MLPClassifier.__init__).parameters.values())
    regressor = list(inspect.signature(MLPRegressor.__init__).parameters.values())
    assert classifier[:-1] == shared
    assert classifier[-1].name == "class_weight" and classifier[-1].kind == classifier[-2].kind
    assert classifier[-1].default is None
    assert regressor[0] == shared[0] and regressor[1].name == "loss"
    assert regressor[2:] == shared[1:]
    own = MLPClassifier._parameter_constraints.keys() - Parameters._parameter_constraints.keys()
    assert own == {"class_weight"}
    own = MLPRegressor._parameter_constraints.keys() - Parameters._parameter_constraints.keys()
    assert own == {"loss"}
    for name in ("momentum", "beta_1", "epsilon", "solver"):
        for estimator in (MLPClassifier, MLPRegressor):
            sklearns = inspect.signature(getattr(neural_network, estimator.__name__)).parameters
            assert inspect.signature(estimator).parameters[name].default == sklearns[name].default


def test_dropout_trains_as_the_network_does_and_predicts_without_it(rng):
    """MLPClassifier(dropout=p) is the Network's dropout: the fit differs from dropout=0, is
    reproducible from random_state, predicts with the evaluation model (its network's forward),
    and lbfgs, whose objective is the whole set's loss, refuses it."""
    x, y = load_digits(return_X_y=True)
    x = x[:400] / 16
    y = y[:400]
    fits = [MLPClassifier((32,), dropout=p, learning_rate_init=0.01, max_iter=30,
                          random_state=0).fit(x, y)
            for p in (0.0, 0.2, 0.2)]  # fmt: skip
    assert not np.array_equal(fits[0].network_.params, fits[1].network_.params)
    np.testing.assert_array_equal(fits[1].network_.params, fits[2].network_.params)
    np.testing.assert_array_equal(fits[1].predict_proba(x), fits[1].network_.forward(x))
    assert fits[1].score(x, y) > 0.9
    assert MLPClassifier((32, 16), dropout=[0.1, 0.3]).get_params()["dropout"] == [0.1, 0.3]
    with pytest.raises(ValueError, match=r"^dropout: lbfgs minimises"):
        MLPClassifier((8,), solver="lbfgs", dropout=0.1).fit(x, y)
    with pytest.raises(ValueError, match="dropout"):
        MLPRegressor((8,), dropout=1.0).fit(x, y.astype(float))
    with pytest.raises(ValueError, match=r"dropout: expected one probability per hidden layer"):
        MLPClassifier((8, 8), dropout=[0.1]).fit(x, y)
