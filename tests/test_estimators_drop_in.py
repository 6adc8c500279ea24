"""MLPClassifier and MLPRegressor train as scikit-learn's do: the same initial parameters from
the same seed, the same loss curve, L2 term, schedules, sample weights, early stopping and
L-BFGS objective, on dense and sparse inputs; compared with scikit-learn itself."""

import warnings

import numpy as np
import pytest
import scipy.sparse
from conftest import assert_close
from denseprop import MLPClassifier, MLPRegressor, Network
from sklearn import neural_network
from sklearn.datasets import load_digits, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import InvalidParameterError

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

X_DIGITS, Y_DIGITS = load_digits(n_class=3, return_X_y=True)
X_DIGITS = X_DIGITS[:120] / 16
Y_DIGITS = Y_DIGITS[:120]


def both(cls, **settings):
    ours = getattr(__import__("denseprop"), cls)(**settings)
    theirs = getattr(neural_network, cls)(**settings)
    return ours, theirs


@pytest.mark.parametrize("activation", ["relu", "logistic", "tanh"])
def test_initial_parameters_are_scikit_learns(activation):
    """Glorot-uniform from the same RandomState draws, output layer included."""
    ours, theirs = both(
        "MLPClassifier", hidden_layer_sizes=(7, 5), activation=activation, random_state=3,
        solver="sgd", learning_rate_init=1e-300, momentum=0.0, max_iter=1,
    )  # fmt: skip
    ours.fit(X_DIGITS, Y_DIGITS)
    theirs.fit(X_DIGITS, Y_DIGITS)
    theirs_params = [*theirs.coefs_, *theirs.intercepts_]
    for mine, other in zip([*ours.coefs_, *ours.intercepts_], theirs_params):
        assert_close(mine, other, np.float64)


@pytest.mark.parametrize(
    "settings",
    [
        dict(solver="sgd", momentum=0.9, nesterovs_momentum=True, learning_rate_init=0.1),
        dict(solver="sgd", momentum=0.5, nesterovs_momentum=False, learning_rate_init=0.1),
        dict(solver="sgd", momentum=0.0, learning_rate="invscaling", learning_rate_init=0.5),
        dict(solver="sgd", momentum=0.0, learning_rate="adaptive", tol=0.5, n_iter_no_change=2),
        dict(solver="adam", learning_rate_init=0.01),
    ],
)
def test_loss_curve_is_scikit_learns(settings):
    """Same data order (no shuffle): the same loss per epoch, L2 term included, to rounding."""
    common = dict(hidden_layer_sizes=(16,), alpha=0.01, batch_size=32, shuffle=False,
                  max_iter=25, random_state=0)  # fmt: skip
    ours, theirs = both("MLPClassifier", **common, **settings)
    ours.fit(X_DIGITS, Y_DIGITS)
    theirs.fit(X_DIGITS, Y_DIGITS)
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.t_ == theirs.t_
    # Adam adds eps to sqrt(v / (1 - b2^t)), as PyTorch does, where scikit-learn adds it to
    # sqrt(v): an effective eps 1/sqrt(1 - b2^t) times larger there (31x at the first step)
    rtol = 5e-3 if settings["solver"] == "adam" else 1e-10
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=rtol)
    np.testing.assert_allclose(ours.best_loss_, theirs.best_loss_, rtol=rtol)
    atol = 1e-3 if settings["solver"] == "adam" else 1e-8
    np.testing.assert_allclose(ours.predict_proba(X_DIGITS), theirs.predict_proba(X_DIGITS),
                               rtol=1e-5, atol=atol)  # fmt: skip


def test_regression_loss_curve_averages_outputs_as_scikit_learn():
    x, y = make_regression(60, 4, n_targets=3, random_state=0)
    y = y / y.std()
    settings = dict(hidden_layer_sizes=(8,), solver="sgd", momentum=0.0, learning_rate_init=0.01,
                    batch_size=20, shuffle=False, max_iter=10, random_state=0)  # fmt: skip
    ours, theirs = both("MLPRegressor", **settings)
    np.testing.assert_allclose(
        ours.fit(x, y).loss_curve_, theirs.fit(x, y).loss_curve_, rtol=1e-10
    )


def test_sample_weights_and_weighted_validation_are_scikit_learns(rng):
    weights = rng.uniform(0.1, 3.0, len(X_DIGITS))
    settings = dict(hidden_layer_sizes=(16,), solver="sgd", momentum=0.0, batch_size=24,
                    learning_rate_init=0.2, alpha=0.1, shuffle=False, max_iter=15,
                    early_stopping=True, n_iter_no_change=50, random_state=0)  # fmt: skip
    ours, theirs = both("MLPClassifier", **settings)
    ours.fit(X_DIGITS, Y_DIGITS, sample_weight=weights)
    theirs.fit(X_DIGITS, Y_DIGITS, sample_weight=weights)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=1e-12)
    assert ours.best_validation_score_ == theirs.best_validation_score_


def test_integer_weights_equal_repeated_samples(rng):
    x, y = rng.standard_normal((9, 4)), rng.standard_normal((9, 2))
    net = Network([4, 6, 2], "tanh", "mse", dtype="float64", seed=0)
    counts = rng.integers(0, 4, 9)
    counts[0] = 1
    params = net.params.copy()
    weighted = net.loss_and_gradient(params, x, y, sample_weight=counts.astype(float), alpha=0.3)
    repeated = net.loss_and_gradient(params, x.repeat(counts, 0), y.repeat(counts, 0), alpha=0.3)
    assert_close(weighted[0], repeated[0], np.float64)
    assert_close(weighted[1], repeated[1], np.float64)
    assert (net.params == params).all()  # evaluated at params, the network left as it was


@pytest.mark.parametrize("loss", ["cross_entropy", "binary_cross_entropy", "mse", "poisson"])
def test_loss_and_gradient_matches_finite_differences(rng, loss):
    x = rng.standard_normal((7, 3))
    y = {
        "cross_entropy": rng.integers(0, 2, 7),
        "binary_cross_entropy": rng.integers(0, 2, (7, 2)).astype(float),
        "mse": rng.standard_normal((7, 2)),
        "poisson": rng.poisson(2.0, (7, 2)).astype(float),
    }[loss]
    net = Network([3, 5, 2], "tanh", loss, dtype="float64", seed=1)
    weights = rng.uniform(0.5, 2.0, 7)
    params = net.params + rng.standard_normal(net.params.shape) * 0.1
    f = lambda p: net.loss_and_gradient(p, x, y, sample_weight=weights, alpha=0.7)[0]  # noqa: E731
    _, grad = net.loss_and_gradient(params, x, y, sample_weight=weights, alpha=0.7)
    h = 1e-6
    numeric = np.array([(f(params + h * e) - f(params - h * e)) / (2 * h)
                        for e in np.eye(len(params))])  # fmt: skip
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


def test_lbfgs_follows_scikit_learns_path():
    """Same start, same objective (loss + L2 and gradient): L-BFGS takes the same steps."""
    settings = dict(solver="lbfgs", hidden_layer_sizes=(10,), max_iter=30, alpha=1e-3,
                    random_state=1)  # fmt: skip
    ours, theirs = both("MLPClassifier", **settings)
    ours.fit(X_DIGITS, Y_DIGITS)
    theirs.fit(X_DIGITS, Y_DIGITS)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-6)
    assert not hasattr(ours, "partial_fit")


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize(
    "solver", [dict(solver="sgd"), dict(solver="sgd", momentum=0.0), dict(solver="adam"),
               dict(solver="lbfgs")],
)  # fmt: skip
def test_sparse_input_trains_as_dense(fmt, solver):
    """Forward, gradient and plain SGD's fused step over the non-zeros, in batches and whole."""
    x = X_DIGITS.copy()
    x[x < 0.5] = 0
    sparse = scipy.sparse.csr_matrix(x) if fmt == "csr" else scipy.sparse.csc_matrix(x)
    settings = dict(hidden_layer_sizes=(12,), **solver, max_iter=15, random_state=0)
    dense_model = MLPClassifier(**settings).fit(x, Y_DIGITS)
    sparse_model = MLPClassifier(**settings).fit(sparse, Y_DIGITS)
    for a, b in zip(dense_model.coefs_, sparse_model.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        sparse_model.predict_proba(sparse), dense_model.predict_proba(x), rtol=1e-9, atol=1e-12
    )


def test_network_takes_sparse_rows(rng, dtype):
    x = rng.standard_normal((13, 30)) * (rng.random((13, 30)) < 0.1)
    y = rng.integers(0, 4, 13)
    net = Network([30, 8, 4], "relu", dtype=dtype, seed=0)
    for matrix in (scipy.sparse.csr_matrix(x), scipy.sparse.csc_array(x)):
        assert_close(net.forward(matrix), net.forward(x.astype(dtype)), dtype)
        wide = scipy.sparse.csr_matrix(x)
        wide.indices, wide.indptr = wide.indices.astype(np.int64), wide.indptr.astype(np.int64)
        assert_close(net.forward(wide), net.forward(x.astype(dtype)), dtype)
    params = net.params.copy()
    for a, b in zip(net.loss_and_gradient(params, scipy.sparse.csr_matrix(x), y),
                    net.loss_and_gradient(params, x, y)):  # fmt: skip
        assert_close(a, b, dtype)
    with pytest.raises(ValueError, match="x has 29 features, but the network expects 30"):
        net.forward(scipy.sparse.csr_matrix(x[:, :29]))


def test_verbose_prints_scikit_learns_lines(capsys):
    model = MLPClassifier(hidden_layer_sizes=(4,), solver="sgd", max_iter=3, verbose=True,
                          random_state=0).fit(X_DIGITS, Y_DIGITS)  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"Iteration {i}, loss = {loss:.8f}"
                     for i, loss in enumerate(model.loss_curve_, 1)]  # fmt: skip


def test_coefs_and_intercepts_are_assignable():
    model = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    model.fit(X_DIGITS, Y_DIGITS)
    model.coefs_[0] = np.zeros((64, 4))
    model.intercepts_ = [np.ones(4), np.zeros(3)]
    assert (model.network_.weights[0] == 0).all()
    assert (model.network_.biases[0] == 1).all()
    # all hidden units equal: every sample gets the same probabilities
    proba = model.predict_proba(X_DIGITS)
    assert_close(proba, np.broadcast_to(proba[0], proba.shape), np.float64)
    with pytest.raises(ValueError, match=r"coefs_\[1\]: expected shape \(4, 3\)"):
        model.coefs_[1] = np.zeros((3, 4))


def test_warm_start_and_partial_fit_after_fit_continue():
    model = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, warm_start=True, random_state=0)
    model.fit(X_DIGITS, Y_DIGITS)
    before = model.network_.params.copy()
    curve = list(model.loss_curve_)
    model.fit(X_DIGITS, Y_DIGITS)
    assert len(model.loss_curve_) == 10 and model.loss_curve_[:5] == curve
    assert not (model.network_.params == before).all()
    model.partial_fit(X_DIGITS, Y_DIGITS)
    assert len(model.loss_curve_) == 11 and model.t_ == 11 * len(X_DIGITS)


def test_network_learning_rate_changes_without_resetting_the_optimizer(rng):
    x, y = rng.standard_normal((16, 3)), rng.integers(0, 2, 16)
    net = Network([3, 4, 2], dtype="float64", seed=0).set_optimizer("adam", 0.1)
    net.train_step(x, y)
    moments = [m.copy() for m in net._core.optimizer_state]
    net.set_learning_rate(0.01)
    assert net.optimizer["lr"] == 0.01
    assert net._core.optimizer_steps == 1
    assert all((a == b).all() for a, b in zip(net._core.optimizer_state, moments))
    with pytest.raises(ValueError, match="lr: must be > 0"):
        net.set_learning_rate(0)


@pytest.mark.parametrize(
    ("param", "value"),
    [("solver", "newton"), ("learning_rate", "cyclic"), ("alpha", -1.0), ("max_fun", 0),
     ("n_iter_no_change", 0), ("beta_1", 1.0), ("dtype", "float16"), ("activation", "cube")],
)  # fmt: skip
def test_bad_parameters_raise_scikit_learns_error(param, value):
    model = MLPClassifier(**{param: value})
    assert model.get_params()[param] == value
    with pytest.raises(InvalidParameterError, match=f"The '{param}' parameter of MLPClassifier"):
        model.fit(X_DIGITS, Y_DIGITS)


def test_float32_trains_in_float32_to_float32_accuracy():
    """Adam's 1 - beta and bias corrections are formed in double: float32 and float64 runs
    agree to float32's precision, not to 1e-5 (1 - float(0.999) keeps 3 digits)."""
    x, y = load_digits(n_class=2, return_X_y=True)
    curves = []
    for dtype in (np.float64, np.float32):
        model = MLPRegressor(alpha=1e-5, hidden_layer_sizes=(5, 3), random_state=1, max_iter=20)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            curves.append(model.fit(x[:300].astype(dtype), y[:300]).loss_curve_)
    np.testing.assert_allclose(curves[1], curves[0], rtol=2e-5)
