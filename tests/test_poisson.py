"""The poisson loss and its exp output, against their peers: PyTorch's PoissonNLLLoss and
scikit-learn's Poisson deviance for the kernel, scikit-learn's MLPRegressor(loss="poisson") for
the estimator (the same loss curves from the same draws), ONNX Runtime for the export; and the
Network around them: training, the model file, the trace, overflow and what is refused.
(The kernel against its NumPy twin, finite differences and the network's gradients run in the
tests parametrised by the tables.)"""

import warnings

import denseprop
import numpy as np
import pytest
from conftest import assert_close, assert_unchanged, randn, snapshot
from denseprop import Network


def counts(rng, *shape):
    """Poisson counts around a rate of 2, zeros included."""
    return rng.poisson(2.0, shape).astype(np.float64)


def poisson_data(n=90, features=4, outputs=1, seed=0):
    """x (n, features) and counts y whose log-rate is linear in x: (n,) or (n, outputs)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, features))
    w = rng.uniform(-0.5, 0.5, (features, outputs))
    y = rng.poisson(np.exp(x @ w + 0.5)).astype(np.float64)
    return x, y[:, 0] if outputs == 1 else y


# -- the tables ---------------------------------------------------------------------------


def test_the_tables_list_exp_and_poisson():
    exp = {a["name"]: a for a in denseprop.activations()}["exp"]
    assert (exp["hidden"], exp["needs_z"], exp["init"]) == (False, False, "glorot")
    assert exp["forward_equation"] == "exp(Z[{l}])"
    assert exp["backward_equation"] == "dA[{l}] ⊙ A[{l}]"
    poisson = {loss["name"]: loss for loss in denseprop.losses()}["poisson"]
    assert poisson == {
        "name": "poisson", "fused_output": "exp", "default_output": "exp", "labels": False,
        "classifier": False, "gradient_equation": "(A[{L}] − Y)",
        "kernel": "half_poisson_deviance", "nonnegative_targets": True,
    }  # fmt: skip
    others = [loss for loss in denseprop.losses() if loss["name"] != "poisson"]
    assert not any(loss["nonnegative_targets"] for loss in others)


# -- the kernel against its peers ---------------------------------------------------------


@pytest.mark.parametrize("batch", [1, 17])
def test_the_kernel_is_pytorchs_poisson_nll_plus_its_constant(rng, dtype, batch):
    """PyTorch's PoissonNLLLoss(log_input=True, full=False) is exp(z) − y z per element: the
    half deviance less y log y − y, which leaves the gradient as it is."""
    torch = pytest.importorskip("torch")
    z = 2 * randn(rng, dtype, batch, 3)
    y = counts(rng, batch, 3).astype(dtype)
    zt = torch.from_numpy(z.copy()).requires_grad_(True)
    nll = torch.nn.PoissonNLLLoss(log_input=True, full=False, reduction="none")
    per_element = nll(zt, torch.from_numpy(y))
    per_element.sum().backward()
    y64 = y.astype(np.float64)
    constant = (y64 * np.log(np.where(y64 > 0, y64, 1)) - y64).sum(axis=1)
    loss, grad = denseprop.half_poisson_deviance(z, y, "none")
    assert_close(loss, per_element.detach().numpy().sum(axis=1, dtype=np.float64) + constant,
                 dtype, scale=float(np.abs(per_element.detach().numpy()).sum()) + 1)  # fmt: skip
    assert_close(denseprop.half_poisson_deviance(z, y, "sum")[1], zt.grad.numpy(), dtype)
    assert_close(grad, zt.grad.numpy(), dtype)


def test_the_mean_loss_is_half_scikit_learns_mean_poisson_deviance(rng):
    from sklearn.metrics import mean_poisson_deviance

    z = rng.standard_normal((33, 1))
    y = counts(rng, 33, 1)
    loss, _ = denseprop.half_poisson_deviance(z, y)
    assert_close(2 * loss, mean_poisson_deviance(y[:, 0], np.exp(z[:, 0])), np.float64)
    assert denseprop.half_poisson_deviance(np.log(y + 1), y + 1)[0] == pytest.approx(0, abs=1e-14)


def test_a_negative_target_is_refused_by_the_kernel_and_its_twin(impl):
    y = np.ones((3, 2))
    y[1, 0] = -1.0
    with pytest.raises(ValueError, match=r"^y: contains -1.* the poisson loss needs y >= 0$"):
        impl.half_poisson_deviance(np.zeros((3, 2)), y)


# -- the estimator against scikit-learn's -------------------------------------------------

sklearn = pytest.importorskip("sklearn")
from denseprop import MLPRegressor  # noqa: E402
from sklearn import neural_network  # noqa: E402
from sklearn.utils._param_validation import InvalidParameterError  # noqa: E402


def both(**settings):
    return MLPRegressor(loss="poisson", **settings), neural_network.MLPRegressor(
        loss="poisson", **settings
    )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize(
    "settings",
    [
        dict(solver="sgd", momentum=0.9, nesterovs_momentum=True, learning_rate_init=0.01),
        dict(solver="sgd", momentum=0.0, learning_rate="invscaling", learning_rate_init=0.1),
        dict(solver="adam", learning_rate_init=0.01),
    ],
)
@pytest.mark.parametrize("outputs", [1, 2])
def test_loss_curve_is_scikit_learns(settings, outputs):
    """Same draws, same data order: the same half deviance per epoch (summed over outputs, L2
    term included), to rounding; Adam's ε differs (see test_estimators_drop_in)."""
    x, y = poisson_data(outputs=outputs)
    common = dict(hidden_layer_sizes=(8,), alpha=0.01, batch_size=16, shuffle=False, max_iter=20,
                  random_state=0)  # fmt: skip
    ours, theirs = both(**common, **settings)
    ours.fit(x, y)
    theirs.fit(x, y)
    assert ours.out_activation_ == theirs.out_activation_ == "exp"
    assert ours.n_iter_ == theirs.n_iter_ and ours.t_ == theirs.t_
    rtol = 5e-3 if settings["solver"] == "adam" else 1e-10
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=rtol)
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x), rtol=100 * rtol)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_weighted_loss_and_validation_scores_are_scikit_learns(rng):
    x, y = poisson_data(n=120)
    weights = rng.uniform(0.1, 3.0, len(x))
    settings = dict(hidden_layer_sizes=(6,), solver="sgd", momentum=0.0, batch_size=24,
                    learning_rate_init=0.02, alpha=0.1, shuffle=False, max_iter=12,
                    early_stopping=True, n_iter_no_change=50, random_state=0)  # fmt: skip
    ours, theirs = both(**settings)
    ours.fit(x, y, sample_weight=weights)
    theirs.fit(x, y, sample_weight=weights)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=1e-10)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_lbfgs_follows_scikit_learns_path():
    """The same start and objective (half deviance + L2, and its gradient): the same steps."""
    x, y = poisson_data()
    ours, theirs = both(solver="lbfgs", hidden_layer_sizes=(10,), alpha=1e-3, max_iter=40,
                        random_state=1)  # fmt: skip
    ours.fit(x, y)
    theirs.fit(x, y)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-8)
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x), rtol=1e-5)


def test_float32_trains_in_float32():
    x, y = poisson_data()
    model = MLPRegressor(loss="poisson", hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x.astype(np.float32), y.astype(np.float32))
    assert model.network_.dtype == np.float32 and model.predict(x).dtype == np.float32
    assert (model.predict(x) > 0).all()


def test_negative_y_is_refused_naming_y_and_the_fitted_model_is_kept():
    x, y = poisson_data()
    model = MLPRegressor(loss="poisson", solver="lbfgs", hidden_layer_sizes=(4,), max_iter=5,
                         random_state=0)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x, y)
    network, params = model.network_, model.network_.params.copy()
    bad = y.copy()
    bad[3] = -1.0
    with pytest.raises(ValueError, match=r"^y: loss='poisson' needs y >= 0 .*got -1.0$"):
        model.fit(x, bad)
    assert model.network_ is network and (network.params == params).all()
    squared = MLPRegressor(hidden_layer_sizes=(2,)).partial_fit(x, bad)  # any y is a value
    assert squared.n_iter_ == 1


@pytest.mark.parametrize(("param", "value"), [("loss", "gamma"), ("activation", "exp")])
def test_what_scikit_learn_refuses_is_refused(param, value):
    x, y = poisson_data()
    with pytest.raises(InvalidParameterError, match=rf"'{param}' parameter"):
        MLPRegressor(**{"loss": "poisson", param: value}).fit(x, y)


# -- the Network --------------------------------------------------------------------------


def null_deviance(y):
    """The mean half deviance of the best constant rate, the mean of y."""
    mu = y.mean(axis=0)
    return float(np.mean((y * np.log(np.where(y > 0, y / mu, 1)) - y + mu).sum(axis=1)))


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_network_fit_learns_the_rates(dtype, optimizer):
    x, y = poisson_data(n=400, outputs=2, seed=3)
    x, y = x.astype(dtype), y.astype(dtype)
    net = Network([4, 16, 2], "tanh", "poisson", dtype=dtype, seed=0)
    net.fit(x, y, epochs=40, batch_size=32, optimizer=optimizer, lr=0.01 if optimizer == "adam"
            else 0.05, seed=0)  # fmt: skip
    loss, _ = net.gradients(x, y)
    assert loss < 0.8 * null_deviance(y.astype(np.float64))
    assert net.loss_curve_[-1] < net.loss_curve_[0]
    assert (net.predict(x) > 0).all() and net.score(x, y) > 0.2
    with pytest.raises(ValueError, match=r"^predict_proba: the network is a regressor"):
        net.predict_proba(x)


def test_train_step_from_the_logits_of_a_batch_of_one(dtype, rng):
    net = Network([3, 5, 2], "relu", "poisson", dtype=dtype, seed=1)
    x, y = randn(rng, dtype, 1, 3), counts(rng, 1, 2).astype(dtype)
    w, b = net.weights[-1].copy(), net.biases[-1].copy()
    hidden = denseprop.dense_forward(x, net.weights[0], net.biases[0], "relu")
    mu = np.exp(hidden @ w.T + b)
    loss = net.set_optimizer("sgd", 0.1).train_step(x, y)
    assert_close(loss, float((mu - y * np.log(mu) + y * np.log(np.where(y > 0, y, 1)) - y).sum()),
                 dtype)  # fmt: skip
    assert_close(net.biases[-1], b - np.asarray(0.1, dtype) * (mu - y)[0], dtype)


def test_an_overflowing_exp_is_reported_and_changes_nothing(dtype, rng):
    """exp of a large Z[L] is inf: forward says so; a step or a fit raises and leaves the
    network as it was; loss_and_gradient returns the infinite loss."""
    net = Network([3, 4, 1], "tanh", "poisson", dtype=dtype, seed=0)
    net.biases[1][...] = 1000  # beyond log(max) of either dtype
    x, y = randn(rng, dtype, 5, 3), np.ones((5, 1), dtype)
    assert np.isposinf(net.forward(x)).all()
    before = snapshot(net)
    with pytest.raises(FloatingPointError, match=r"^the training loss became inf"):
        net.train_step(x, y)
    with pytest.raises(FloatingPointError, match=r"^epoch 1: the training loss became inf"):
        net.fit(x, y, epochs=3, batch_size=2)
    before.pop("workspace")
    assert_unchanged(net, before)
    loss, _ = net.loss_and_gradient(net.params, x, y)
    assert loss == np.inf


def test_the_trace_shows_the_exp_output_and_its_fused_gradient(dtype, rng):
    net = Network([4, 3, 2], "sigmoid", "poisson", dtype=dtype, seed=2)
    x, y = randn(rng, dtype, 7, 4), counts(rng, 7, 2).astype(dtype)
    trace = net.trace(x, y)
    assert trace["A[2]"].equation == "A[2] = exp(Z[2])"
    assert trace["dZ[2]"].equation == "dZ[2] = (A[2] − Y) / batch"
    assert "dA[2]" not in [e.name for e in trace]  # fused: no pass through exp's derivative
    assert_close(trace["A[2]"].value, np.exp(trace["Z[2]"].value), dtype)
    assert_close(trace["dZ[2]"].value, (trace["A[2]"].value - y) / 7, dtype)
    loss, grads = net.gradients(x, y)
    assert_close(trace.loss, loss, dtype)
    for l, (gw, gb) in enumerate(grads, 1):
        assert_close(trace[f"dW[{l}]"].value, gw, dtype)
        assert_close(trace[f"db[{l}]"].value, gb, dtype)
    assert "exp(Z[2])" in str(trace)


def test_the_model_file_and_pickle_keep_the_poisson_network(tmp_path, dtype, rng):
    import pickle

    net = Network([4, 6, 2], "tanh", "poisson", dtype=dtype, seed=0)
    x, y = randn(rng, dtype, 20, 4), counts(rng, 20, 2).astype(dtype)
    net.fit(x, y, epochs=3, batch_size=8, optimizer="adam", lr=0.01, seed=0)
    net.save(tmp_path / "poisson.npz")
    for copy in (Network.load(tmp_path / "poisson.npz"), pickle.loads(pickle.dumps(net))):
        assert (copy.loss, copy.activations) == ("poisson", ["tanh", "exp"])
        assert copy.params.tobytes() == net.params.tobytes()
        np.testing.assert_array_equal(copy.forward(x), net.forward(x))
        assert copy.train_step(x, y) == Network.load(tmp_path / "poisson.npz").train_step(x, y)


# -- ONNX export --------------------------------------------------------------------------


def test_onnx_runtime_computes_the_poisson_networks_forward(dtype, rng):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    net = Network([5, 7, 3], "relu", "poisson", dtype=dtype, seed=0)
    model = net.to_onnx()
    assert [n.op_type for n in model.graph.node] == ["Gemm", "Relu", "Gemm", "Exp"]
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for batch in (1, 17):
        x = randn(rng, dtype, batch, 5)
        assert_close(session.run(["output"], {"x": x})[0], net.forward(x), dtype)


def test_onnx_export_of_the_estimator_computes_predict():
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    x, y = poisson_data()
    model = MLPRegressor(loss="poisson", solver="lbfgs", hidden_layer_sizes=(6,), max_iter=20,
                         random_state=0)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x, y)
    session = ort.InferenceSession(model.to_onnx().SerializeToString(),
                                   providers=["CPUExecutionProvider"])  # fmt: skip
    assert_close(session.run(["output"], {"x": x})[0], model.predict(x), np.float64)
