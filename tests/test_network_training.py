"""train_step equals the same step written in NumPy, and fit learns real data."""

import denseprop
import denseprop.reference as ref
import numpy as np
import pytest
from conftest import assert_close

OPTIMIZERS = {
    "sgd": dict(optimizer="sgd", lr=0.5),
    "sgd+decay": dict(optimizer="sgd", lr=0.5, weight_decay=0.01),
    "momentum": dict(optimizer="sgd", lr=0.3, momentum=0.9),
    "nesterov": dict(optimizer="sgd", lr=0.3, momentum=0.9, nesterov=True, weight_decay=0.001),
    "adam": dict(optimizer="adam", lr=0.01),
    "adam+decay": dict(optimizer="adam", lr=0.01, beta1=0.8, beta2=0.99, weight_decay=0.01),
    "adamw": dict(optimizer="adamw", lr=0.01, beta1=0.8, beta2=0.99, weight_decay=0.1),
}


def numpy_steps(net, settings, batches):
    """Run ``batches`` through the NumPy reference network and optimizer; returns the
    losses and the final ``[(w, b), ...]``."""
    params = [(w.copy(), b.copy()) for w, b in zip(net.weights, net.biases)]
    first = [(np.zeros_like(w), np.zeros_like(b)) for w, b in params]
    second = [(np.zeros_like(w), np.zeros_like(b)) for w, b in params]
    opt = dict(settings)
    kind = opt.pop("optimizer")
    losses = []
    for t, (x, y) in enumerate(batches, start=1):
        loss, grads = ref.network_loss_and_gradients(
            [w for w, _ in params], [b for _, b in params], x, y, net.activations, net.loss
        )
        losses.append(loss)
        if kind == "sgd":  # state: the velocity
            ref.sgd_step(params, grads, first, **opt)
        else:  # adam, adamw: both moments and the step count
            getattr(ref, f"{kind}_step")(params, grads, first, second, t, **opt)
    return losses, params


@pytest.mark.parametrize("settings", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
@pytest.mark.parametrize(
    "sizes, hidden, loss",
    [([7, 5, 3], "sigmoid", "cross_entropy"),
     ([6, 9, 4, 2], "tanh", "binary_cross_entropy"),
     ([5, 8, 2], "relu", "mse"),
     ([5, 8, 2], "tanh", "poisson")],
)  # fmt: skip
def test_three_train_steps_equal_numpy(rng, dtype, settings, sizes, hidden, loss):
    net = denseprop.Network(sizes, hidden, loss, dtype=dtype, seed=3)
    net.set_optimizer(**settings)
    batches = []
    for batch in (4, 1, 9):
        x = rng.standard_normal((batch, sizes[0])).astype(dtype)
        if loss == "cross_entropy":
            y = rng.integers(0, sizes[-1], batch)
        else:
            y = rng.random((batch, sizes[-1])).astype(dtype)
        batches.append((x, y))
    expected_losses, expected = numpy_steps(net, settings, batches)
    losses = [net.train_step(x, y) for x, y in batches]
    for actual, wanted in zip(losses, expected_losses):
        assert_close(actual, wanted, dtype)
    for w, b, (ew, eb) in zip(net.weights, net.biases, expected):
        assert_close(w, ew, dtype)
        assert_close(b, eb, dtype)
    assert net._core.optimizer_steps == 3


def test_set_optimizer_clears_the_optimizer_state(rng):
    net = denseprop.Network([4, 3], "identity", "mse", dtype="float64", seed=0)
    x, y = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
    net.set_optimizer("adam", 0.1)
    net.train_step(x, y)
    net.set_optimizer("adam", 0.1)
    first, second = net._core.optimizer_state
    assert net._core.optimizer_steps == 0
    assert not first.any() and not second.any()


@pytest.fixture(scope="module")
def digits():
    datasets = pytest.importorskip("sklearn.datasets")
    model_selection = pytest.importorskip("sklearn.model_selection")
    x, y = datasets.load_digits(return_X_y=True)
    return model_selection.train_test_split(x / 16, y, test_size=0.25, random_state=0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "optimizer, lr, floor", [("sgd", 0.1, 0.96), ("adam", 0.001, 0.97)]
)  # fmt: skip
def test_digits_reach_the_accuracy_of_scikit_learn(digits, dtype, optimizer, lr, floor):
    x_train, x_test, y_train, y_test = digits
    net = denseprop.Network([64, 32, 10], dtype=dtype, seed=0)
    net.fit(x_train, y_train, epochs=200, batch_size=32, optimizer=optimizer, lr=lr, seed=0)
    assert net.score(x_test, y_test) >= floor
    assert len(net.loss_curve_) == 200
    assert net.loss_curve_[-1] < net.loss_curve_[0] / 10


def test_digits_learn_from_one_hot_targets_as_from_labels(digits):
    x_train, _, y_train, _ = digits
    nets = [denseprop.Network([64, 32, 10], dtype="float64", seed=0) for _ in range(2)]
    nets[0].fit(x_train, y_train, epochs=5, lr=0.1, seed=1)
    nets[1].fit(x_train, np.eye(10)[y_train], epochs=5, lr=0.1, seed=1)
    for w0, w1 in zip(nets[0].weights, nets[1].weights):
        np.testing.assert_allclose(w0, w1, rtol=1e-12, atol=1e-14)


def test_fit_epoch_equals_train_steps_over_the_shuffled_batches(rng, dtype):
    x = rng.standard_normal((37, 6)).astype(dtype)
    y = rng.integers(0, 4, 37)
    nets = [denseprop.Network([6, 5, 4], "tanh", dtype=dtype, seed=2) for _ in range(2)]
    for net in nets:
        net.set_optimizer("sgd", 0.2, momentum=0.5)
    order = rng.permutation(37)
    nets[0].partial_fit(x[order], y[order], batch_size=8, shuffle=False)
    mean_loss = nets[0].loss_curve_[-1]
    losses = [nets[1].train_step(x[order[i : i + 8]], y[order[i : i + 8]]) for i in range(0, 37, 8)]
    sizes = [len(order[i : i + 8]) for i in range(0, 37, 8)]
    assert_close(mean_loss, np.dot(losses, sizes) / 37, dtype)
    # Same arithmetic, but an epoch reads each batch from its place in x, train_step from its
    # own array: Eigen's vectorised sums start at the first aligned element, so the rounding
    # may differ.
    ulps = 8 * np.finfo(dtype).eps
    for w0, w1 in zip(nets[0].weights, nets[1].weights):
        np.testing.assert_allclose(w0, w1, rtol=ulps, atol=ulps)


def test_adamw_matches_pytorch(rng):
    torch = pytest.importorskip("torch")
    net = denseprop.Network([5, 4, 3], "tanh", "mse", dtype=np.float64, seed=0)
    settings = dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)
    net.set_optimizer("adamw", 0.05, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.1)
    layers = [torch.nn.Linear(5, 4).double(), torch.nn.Linear(4, 3).double()]
    with torch.no_grad():
        for layer, w, b in zip(layers, net.weights, net.biases):
            layer.weight.copy_(torch.from_numpy(w)), layer.bias.copy_(torch.from_numpy(b))
    weights = [layer.weight for layer in layers]
    biases = [layer.bias for layer in layers]  # not decayed, as in Network
    opt = torch.optim.AdamW([{"params": weights}, {"params": biases, "weight_decay": 0.0}],
                            **settings)  # fmt: skip
    for batch in (6, 1, 9, 4):
        x, y = rng.standard_normal((batch, 5)), rng.standard_normal((batch, 3))
        net.train_step(x, y)
        opt.zero_grad()
        out = layers[1](torch.tanh(layers[0](torch.from_numpy(x))))
        (0.5 * ((out - torch.from_numpy(y)) ** 2).sum() / batch).backward()
        opt.step()
    for layer, w, b in zip(layers, net.weights, net.biases):
        np.testing.assert_allclose(w, layer.weight.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(b, layer.bias.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_fit_runs_the_same_epochs_with_or_without_python_between_them(rng, dtype, capsys):
    """Without per-epoch work the epochs run in one C++ call; verbose fits call back into
    Python after each. Same shuffles, same arithmetic: bitwise equal."""
    x = rng.standard_normal((37, 6)).astype(dtype)
    y = rng.integers(0, 4, 37)
    nets = [denseprop.Network([6, 5, 4], "tanh", dtype=dtype, seed=2) for _ in range(2)]
    for net, verbose in zip(nets, (False, True)):
        net.fit(x, y, epochs=7, batch_size=8, optimizer="adam", lr=0.05, seed=5, verbose=verbose)
    assert len(capsys.readouterr().out.splitlines()) == 7
    assert nets[0].loss_curve_ == nets[1].loss_curve_
    np.testing.assert_array_equal(nets[0].params, nets[1].params)


def test_the_training_loop_refuses_bad_settings_before_a_step(rng):
    net = denseprop.Network([6, 5, 4], dtype=np.float64, seed=0)
    x, y = rng.standard_normal((5, 6)), rng.integers(0, 4, 5)
    before = net.params.copy()
    cases = [
        ({"max_epochs": 0}, "max_epochs: must be >= 1, got 0"),
        ({"batch_size": 0}, "batch_size: must be >= 1, got 0"),
        ({"stop": "never"}, "stop: unknown 'never', expected none, convergence or patience"),
        ({"schedule": "cosine"}, "learning_rate: unknown 'cosine'"),
        ({"tol": -1.0}, "tol: must be >= 0"),
        ({"reduce": lambda loss, n: (loss, n), "steps": 1}, "steps: 1 batches of 2 do not cover"),
    ]
    for change, match in cases:
        kwargs = {"state": denseprop._core.TrainingState(), "max_epochs": 2, "batch_size": 2}
        with pytest.raises(ValueError, match=match):
            net._core.run_epochs(x, y, **{**kwargs, **change})
    np.testing.assert_array_equal(net.params, before)


@pytest.mark.parametrize(
    ("n", "seed", "k"), [(0, 0, 0), (1, 5, 3), (37, 2**64 - 1, 0), (1000, 12345, 7)]
)
def test_the_training_loops_shuffle_is_its_numpy_twin(n, seed, k):
    order = denseprop._core.permutation(n, seed, k)
    np.testing.assert_array_equal(order, ref.permutation(n, seed, k))
    assert sorted(order) == list(range(n))


def test_fit_shuffles_each_epoch_with_the_loops_permutation(rng):
    """fit(seed=s) is partial_fit without shuffling over x[permutation(n, seed, k)] for epoch k,
    its seed the first draw of numpy's generator of s."""
    x, y = rng.standard_normal((23, 4)), rng.integers(0, 3, 23)
    nets = [denseprop.Network([4, 5, 3], "tanh", dtype=np.float64, seed=1) for _ in range(2)]
    nets[0].fit(x, y, epochs=3, batch_size=5, lr=0.1, seed=9)
    nets[1].set_optimizer("sgd", 0.1)
    shuffles = int(np.random.default_rng(9).integers(2**63))
    for k in range(3):
        order = ref.permutation(23, shuffles, k)
        nets[1].partial_fit(x[order], y[order], batch_size=5, shuffle=False)
    np.testing.assert_allclose(nets[0].params, nets[1].params, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(nets[0].loss_curve_, nets[1].loss_curve_, rtol=1e-13)


# -- sample weights --------------------------------------------------------------------------

LOSS_CASES = [([7, 5, 3], "sigmoid", "cross_entropy"),
              ([6, 9, 4, 2], "tanh", "binary_cross_entropy"),
              ([5, 8, 2], "relu", "mse"),
              ([5, 8, 2], "tanh", "poisson")]  # fmt: skip


def batch_of(rng, dtype, sizes, loss, n):
    x = rng.standard_normal((n, sizes[0])).astype(dtype)
    if loss == "cross_entropy":
        return x, rng.integers(0, sizes[-1], n)
    return x, rng.random((n, sizes[-1])).astype(dtype)


@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("sizes, hidden, loss", LOSS_CASES)
def test_a_weighted_step_equals_numpy(rng, dtype, sizes, hidden, loss, batch):
    """The weighted mean loss Σ w_i ℓ_i / Σ w_i and its gradient, as the NumPy twin states
    them, in train_step's returned loss and its SGD step."""
    net = denseprop.Network(sizes, hidden, loss, dtype=dtype, seed=3)
    net.set_optimizer("sgd", 0.5)
    x, y = batch_of(rng, dtype, sizes, loss, batch)
    w = (rng.random(batch) * 3).astype(dtype)
    params = [(wl.copy(), bl.copy()) for wl, bl in zip(net.weights, net.biases)]
    expected, grads = ref.network_loss_and_gradients(
        [p for p, _ in params], [b for _, b in params], x, y, net.activations, net.loss,
        sample_weight=w,
    )  # fmt: skip
    ref.sgd_step(params, grads, None, 0.5)
    assert_close(net.train_step(x, y, sample_weight=w), expected, dtype)
    for wl, bl, (ew, eb) in zip(net.weights, net.biases, params):
        assert_close(wl, ew, dtype)
        assert_close(bl, eb, dtype)


@pytest.mark.parametrize("sizes, hidden, loss", LOSS_CASES)
def test_the_weighted_loss_gradient_equals_finite_differences(rng, sizes, hidden, loss):
    net = denseprop.Network(sizes, hidden, loss, dtype="float64", seed=4)
    x, y = batch_of(rng, np.float64, sizes, loss, 5)
    w = rng.random(5) * 2
    core = net._core
    params = net.params.copy()
    _, grad = core.loss_and_gradient(params, x, y, w, 0.0)
    h = 1e-6
    for i in rng.choice(len(params), 12, replace=False):
        up, down = params.copy(), params.copy()
        up[i] += h
        down[i] -= h
        numeric = (core.loss_and_gradient(up, x, y, w, 0.0)[0]
                   - core.loss_and_gradient(down, x, y, w, 0.0)[0]) / (2 * h)  # fmt: skip
        np.testing.assert_allclose(grad[i], numeric, rtol=1e-5, atol=1e-8)


def test_integer_weights_fit_as_the_rows_repeated(rng, dtype):
    """With one batch per epoch and no shuffling, weight k is the row taken k times (0: left
    out): the same steps, the same weighted loss curve."""
    x, y = batch_of(rng, dtype, [6, 5, 4], "cross_entropy", 9)
    counts = np.array([1, 0, 2, 3, 1, 1, 0, 4, 2])
    nets = [denseprop.Network([6, 5, 4], "tanh", dtype=dtype, seed=2) for _ in range(2)]
    nets[0].fit(x, y, epochs=4, batch_size=9, optimizer="adam", lr=0.05, shuffle=False,
                sample_weight=counts)  # fmt: skip
    rows = np.repeat(np.arange(9), counts)
    nets[1].fit(x[rows], y[rows], epochs=4, batch_size=len(rows), optimizer="adam", lr=0.05,
                shuffle=False)  # fmt: skip
    ulps = 10 * np.finfo(dtype).eps
    np.testing.assert_allclose(nets[0].loss_curve_, nets[1].loss_curve_, rtol=ulps)
    assert_close(nets[0].params, nets[1].params, dtype)


def test_a_weighted_epoch_is_the_weighted_steps_of_its_batches(rng, dtype):
    """fit's and partial_fit's epoch with weights: train_step's weighted steps on its batches;
    the epoch's loss the mean of theirs, each counted by its size."""
    x, y = batch_of(rng, dtype, [6, 5, 4], "cross_entropy", 23)
    w = (rng.random(23) * 2).astype(dtype)
    nets = [denseprop.Network([6, 5, 4], "tanh", dtype=dtype, seed=2) for _ in range(3)]
    for net in nets:
        net.set_optimizer("sgd", 0.2, momentum=0.5)
    nets[0].partial_fit(x, y, batch_size=8, shuffle=False, sample_weight=w)
    nets[1].fit(x, y, epochs=1, batch_size=8, lr=0.2, momentum=0.5, shuffle=False,
                sample_weight=w)  # fmt: skip
    losses = [nets[2].train_step(x[i : i + 8], y[i : i + 8], sample_weight=w[i : i + 8])
              for i in range(0, 23, 8)]  # fmt: skip
    expected = np.dot(losses, [8, 8, 7]) / 23
    ulps = 8 * np.finfo(dtype).eps
    for net in nets[:2]:
        assert_close(net.loss_curve_[0], expected, dtype)
        np.testing.assert_allclose(net.params, nets[2].params, rtol=ulps, atol=ulps)


def test_a_batch_weighing_nothing_has_no_loss_and_no_gradient(rng):
    net = denseprop.Network([4, 3, 2], "tanh", dtype="float64", seed=0)
    net.set_optimizer("sgd", 0.5)
    x, y = rng.standard_normal((3, 4)), np.array([0, 1, 1])
    before = net.params.copy()
    assert net.train_step(x, y, sample_weight=np.zeros(3)) == 0.0
    np.testing.assert_array_equal(net.params, before)


@pytest.mark.parametrize("loss", ["cross_entropy", "binary_cross_entropy", "mse"])
def test_weighted_validation_scores_are_score_with_the_weights(rng, loss):
    """validation_data's third element weighs validation_scores_ as Network.score does, which
    is scikit-learn's accuracy_score or r2_score with sample_weight."""
    from sklearn.metrics import accuracy_score, r2_score

    sizes = [5, 6, 3]
    net = denseprop.Network(sizes, "tanh", loss, dtype="float64", seed=1)
    x, y = batch_of(rng, np.float64, sizes, loss, 40)
    if loss == "binary_cross_entropy":
        y = (y > 0.5).astype(np.float64)
    w = rng.random(40) * 2
    net.fit(x[:30], y[:30], epochs=2, lr=0.1, sample_weight=w[:30],
            validation_data=(x[30:], y[30:], w[30:]))  # fmt: skip
    assert net.validation_scores_[-1] == net.score(x[30:], y[30:], sample_weight=w[30:])
    out, wv = net.forward(x[30:]), w[30:]
    if loss == "cross_entropy":
        expected = accuracy_score(y[30:], out.argmax(axis=1), sample_weight=wv)
    elif loss == "binary_cross_entropy":  # each output a label: the fraction right, weighted
        expected = np.average(((out > 0.5) == (y[30:] > 0.5)).mean(axis=1), weights=wv)
    else:
        expected = r2_score(y[30:], out, sample_weight=wv)
    np.testing.assert_allclose(net.score(x[30:], y[30:], sample_weight=wv), expected, rtol=1e-12)
    unweighted = net.score(x[30:], y[30:])
    np.testing.assert_allclose(net.score(x[30:], y[30:], sample_weight=np.ones(10)), unweighted)


def test_dpsgd_takes_no_sample_weights(rng):
    net = denseprop.Network([4, 3, 2], "tanh", dtype="float64", seed=0)
    x, y = rng.standard_normal((3, 4)), np.array([0, 1, 1])
    before = net.params.copy()
    with pytest.raises(ValueError, match=r"^sample_weight: dpsgd clips each sample's gradient"):
        net.fit(x, y, epochs=1, optimizer="dpsgd", sample_weight=np.ones(3))
    np.testing.assert_array_equal(net.params, before)


def test_the_convergence_rule_compares_as_scikit_learn_ties_included(rng):
    """Unscored, an epoch fails when loss > best_loss - tol (scikit-learn's own comparison): an
    epoch whose loss equals the best with tol 0 is not a failure, and resets the count."""
    x, y = rng.standard_normal((20, 4)), rng.integers(0, 3, 20)

    def epoch(best_loss, failures):
        net = denseprop.Network([4, 5, 3], "tanh", dtype=np.float64, seed=0)
        state = denseprop._core.TrainingState()
        state.best_loss, state.no_improvement = best_loss, failures
        losses, *_ = net._core.run_epochs(x, y, state=state, max_epochs=1, batch_size=5,
                                          shuffle=False, stop="convergence", tol=0.0,
                                          n_iter_no_change=10.0)  # fmt: skip
        return losses[0], state.no_improvement

    loss, _ = epoch(np.inf, 0)
    assert epoch(loss, 3) == (loss, 0)  # a tie improves nothing but fails nothing either
    assert epoch(np.nextafter(loss, -np.inf), 3) == (loss, 4)
