"""The public surface of `denseprop.Network`: parameter views, initialisation, inference,
gradients, saving, the workspace, the training loops and the progress bar.

Tests that compare two networks bit for bit use a relu/mse network with sgd (or adam in
float64): for other layers and optimizers the results currently depend on where the heap put
the C++ buffers (see `test_networks_built_alike_compute_bitwise_alike`), and the other
bitwise tests must not be flaky because of that one bug.
"""

import io
import json
import math
import pickle

import denseprop.reference as ref
import numpy as np
import pytest
from conftest import assert_close, randn
from denseprop import Network
from denseprop.progress import ProgressBar
from sklearn.metrics import r2_score


def reference_output(net, x):
    return ref.network_forward(net.weights, net.biases, x, net.activations)[-1]


def regression_data(dtype, n=40, n_in=6, n_out=3, seed=3):
    rng = np.random.default_rng(seed)
    return randn(rng, dtype, n, n_in), randn(rng, dtype, n, n_out)


def regressor(dtype, seed=0):
    """A network whose training is bitwise reproducible across instances (see the docstring)."""
    return Network([6, 16, 3], "relu", "mse", dtype=dtype, seed=seed)


def bits(a):
    return np.ascontiguousarray(a).tobytes()


# -- parameters ---------------------------------------------------------------------------


def test_weights_and_biases_are_views_of_the_parameter_buffer(dtype):
    net = Network([5, 7, 3], dtype=dtype, seed=0)
    assert [w.shape for w in net.weights] == [(7, 5), (3, 7)]
    assert [b.shape for b in net.biases] == [(7,), (3,)]
    for a in (*net.weights, *net.biases):
        assert a.dtype == dtype
        assert np.shares_memory(a, net._core.params)
    first = net.weights[0]
    net.set_optimizer("sgd", 0.1)
    net.train_step(np.ones((4, 5), dtype), [0, 1, 2, 0])
    assert np.shares_memory(first, net.weights[0])
    np.testing.assert_array_equal(first, net.weights[0])  # the old view sees the update


def test_writing_into_weights_and_biases_changes_forward(rng, dtype):
    net = Network([5, 7, 3], "tanh", "mse", dtype=dtype, seed=0)
    x = randn(rng, dtype, 9, 5)
    net.weights[0][...] = 0
    net.biases[1][2] = 5
    out = net.forward(x)
    assert_close(out, reference_output(net, x), dtype)
    np.testing.assert_array_equal(out, np.broadcast_to(out[0], out.shape))  # x no longer matters
    net.weights[1][...] = 0
    np.testing.assert_array_equal(net.forward(x), np.tile(np.array([0, 0, 5], dtype), (9, 1)))


# -- initialisation -----------------------------------------------------------------------


def test_same_seed_gives_identical_weights_and_another_seed_different(dtype):
    a, b, c = (Network([8, 16, 4], dtype=dtype, seed=s) for s in (1, 1, 2))
    assert bits(a._core.params) == bits(b._core.params)
    assert not np.array_equal(a.weights[0], c.weights[0])


@pytest.mark.parametrize(("activation", "init"), [("sigmoid", "auto"), ("relu", "glorot")])
def test_glorot_weights_lie_within_the_glorot_limit(dtype, activation, init):
    net = Network([64, 32, 10], activation, init=init, dtype=dtype, seed=0)
    for w in net.weights:
        n_out, n_in = w.shape
        limit = math.sqrt(6 / (n_in + n_out))
        assert np.abs(w).max() <= dtype.type(limit)
        assert np.abs(w).max() > 0.95 * limit  # uniform over the whole interval


def test_he_weights_have_std_sqrt_2_over_fan_in(dtype):
    he = Network([512, 512, 2], "relu", init="he", dtype=dtype, seed=0)
    assert np.std(he.weights[0]) == pytest.approx(math.sqrt(2 / 512), rel=0.05)
    auto = Network([512, 512, 2], "relu", init="auto", dtype=dtype, seed=0)
    assert bits(auto.weights[0]) == bits(he.weights[0])  # auto: He for the relu layer


def test_biases_start_at_zero(dtype):
    for init in ("auto", "glorot", "he"):
        net = Network([6, 5, 4, 3], "leaky_relu", init=init, dtype=dtype, seed=0)
        assert all(not b.any() for b in net.biases)


# -- what the network is ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loss", "output"),
    [("cross_entropy", "softmax"), ("binary_cross_entropy", "sigmoid"), ("mse", "identity"),
     ("poisson", "exp")],
)  # fmt: skip
def test_output_activation_follows_from_the_loss(loss, output):
    net = Network([4, 6, 3], "tanh", loss)
    assert net.activations == ["tanh", output]
    assert net.is_classifier == (loss not in ("mse", "poisson"))


def test_repr_shows_sizes_activations_loss_and_dtype():
    net = Network([4, 6, 5, 3], ["relu", "tanh"], "mse", dtype="float64")
    assert repr(net) == (
        "Network([4, 6, 5, 3], activation=['relu', 'tanh'], output_activation='identity', "
        "loss='mse', dtype='float64')"
    )


# -- inference ----------------------------------------------------------------------------


def test_cross_entropy_predicts_the_most_probable_class_and_scores_labels_like_one_hot(rng, dtype):
    net = Network([6, 12, 4], "tanh", dtype=dtype, seed=0)
    x, labels = randn(rng, dtype, 50, 6), rng.integers(0, 4, 50)
    proba = net.predict_proba(x)
    assert_close(proba, reference_output(net, x), dtype)
    assert_close(proba.sum(axis=1), np.ones(50, dtype), dtype)
    np.testing.assert_array_equal(net.predict(x), proba.argmax(axis=1))
    accuracy = np.mean(net.predict(x) == labels)
    assert net.score(x, labels) == accuracy
    assert net.score(x, np.eye(4, dtype=dtype)[labels]) == accuracy


def test_binary_cross_entropy_predicts_zero_or_one_per_output(rng, dtype):
    net = Network([6, 12, 3], "tanh", "binary_cross_entropy", dtype=dtype, seed=0)
    x, y = randn(rng, dtype, 50, 6), rng.integers(0, 2, (50, 3))
    proba = net.predict_proba(x)
    assert_close(proba, reference_output(net, x), dtype)
    np.testing.assert_array_equal(net.predict(x), (proba > 0.5).astype(np.int64))
    assert net.score(x, y) == np.mean(net.predict(x) == y)


@pytest.mark.parametrize("outputs", [1, 3])
def test_mse_predicts_values_and_scores_sklearn_r2(dtype, outputs):
    rng = np.random.default_rng(4)
    net = Network([6, 12, outputs], "tanh", "mse", dtype=dtype, seed=0)
    x = randn(rng, dtype, 50, 6)
    y = net.forward(x) + rng.standard_normal((50, outputs)) * np.geomspace(0.1, 10, outputs)
    predicted = net.predict(x)
    np.testing.assert_array_equal(predicted, net.forward(x))
    assert net.score(x, y) == pytest.approx(r2_score(y, predicted), rel=1e-9)


def test_predict_proba_of_a_regressor_raises():
    with pytest.raises(ValueError, match=r"predict_proba: .*regressor"):
        Network([4, 3], loss="mse").predict_proba(np.ones((2, 4)))


# -- gradients ----------------------------------------------------------------------------


def test_gradients_leave_the_model_and_optimizer_unchanged_and_return_copies(rng, dtype):
    net = Network([6, 12, 4], "tanh", dtype=dtype, seed=0)
    x, y = randn(rng, dtype, 20, 6), rng.integers(0, 4, 20)
    net.set_optimizer("adam", 1e-2)
    for _ in range(3):
        net.train_step(x, y)
    params = net._core.params.copy()
    state = [s.copy() for s in net._core.optimizer_state]
    loss, grads = net.gradients(x, y)
    assert bits(net._core.params) == bits(params)
    assert [bits(s) for s in net._core.optimizer_state] == [bits(s) for s in state]
    assert net._core.optimizer_steps == 3
    kept = [(gw.copy(), gb.copy()) for gw, gb in grads]
    for gw, gb in grads:
        gw[...], gb[...] = 7, 7
    loss_again, again = net.gradients(x, y)
    assert loss_again == loss
    for (gw, gb), (kw, kb) in zip(again, kept):
        assert bits(gw) == bits(kw) and bits(gb) == bits(kb)


# -- saving -------------------------------------------------------------------------------


def adam_trained(dtype):
    x, y = regression_data(dtype)
    net = regressor(dtype)
    net.set_optimizer("adam", 1e-2, beta1=0.8, beta2=0.99, eps=1e-7, weight_decay=1e-3)
    for _ in range(4):
        net.train_step(x, y)
    net.partial_fit(x, y, batch_size=16, seed=0)
    return net, x, y


def save_and_load(net, tmp_path):
    net.save(tmp_path / "net.npz")
    return Network.load(tmp_path / "net.npz")


def pickle_round_trip(net, tmp_path):
    return pickle.loads(pickle.dumps(net))


@pytest.mark.parametrize("round_trip", [save_and_load, pickle_round_trip])
def test_round_trip_restores_everything_bitwise(dtype, tmp_path, round_trip):
    net, _, _ = adam_trained(dtype)
    copy = round_trip(net, tmp_path)
    assert copy.dtype == dtype and repr(copy) == repr(net)
    assert copy._config == net._config
    assert copy.optimizer == net.optimizer and copy.optimizer["optimizer"] == "adam"
    assert bits(copy._core.params) == bits(net._core.params)
    for a, b in zip(copy._core.optimizer_state, net._core.optimizer_state):
        assert a.dtype == dtype and bits(a) == bits(b)
    assert copy._core.optimizer_steps == net._core.optimizer_steps == 7
    assert copy.loss_curve_ == net.loss_curve_


@pytest.mark.parametrize("round_trip", [save_and_load, pickle_round_trip])
def test_training_continues_bitwise_alike_after_a_round_trip(tmp_path, round_trip):
    net, x, y = adam_trained(np.float64)  # float32 adam: see the module docstring
    copy = round_trip(net, tmp_path)
    assert copy.train_step(x, y) == net.train_step(x, y)
    assert bits(copy._core.params) == bits(net._core.params)


def test_saved_file_loads_without_pickle_and_holds_named_arrays_and_json_config(tmp_path):
    net, _, _ = adam_trained(np.float32)
    net.save(tmp_path / "net.npz")
    with np.load(tmp_path / "net.npz", allow_pickle=False) as f:
        assert {"W0", "b0", "W1", "b1", "config"} <= set(f.files)
        np.testing.assert_array_equal(f["W1"], net.weights[1])
        np.testing.assert_array_equal(f["b0"], net.biases[0])
        config = json.loads(str(f["config"]))
    assert config["network"]["sizes"] == [6, 16, 3]
    assert config["optimizer"]["optimizer"] == "adam"


def test_load_finds_what_save_wrote_to_a_path_without_the_npz_suffix(tmp_path):
    net, _, _ = adam_trained(np.float32)
    net.save(tmp_path / "model")
    assert bits(Network.load(tmp_path / "model")._core.params) == bits(net._core.params)


# -- the workspace ------------------------------------------------------------------------


def test_train_steps_reuse_the_workspace_until_a_larger_batch_arrives(rng, dtype):
    net = Network([10, 20, 5], "relu", dtype=dtype, seed=0)
    x, y = randn(rng, dtype, 65, 10), rng.integers(0, 5, 65)
    assert net._core.workspace()[0] == 0
    net.train_step(x[:64], y[:64])
    first = net._core.workspace()
    assert first[0] == 64
    for _ in range(100):
        net.train_step(x[:64], y[:64])
    for batch in (1, 17):
        net.train_step(x[:batch], y[:batch])
        net.gradients(x[:batch], y[:batch])
        net.forward(x[:batch])
    assert net._core.workspace() == first
    net.train_step(x, y)
    assert net._core.workspace()[0] == 65


# -- training loops -----------------------------------------------------------------------


def test_partial_fit_appends_one_loss_and_continues_the_optimizer_state():
    x, y = regression_data(np.float32, n=50)
    net, stepped = regressor(np.float32), regressor(np.float32)
    for n in (net, stepped):
        n.set_optimizer("sgd", 0.01, momentum=0.9)
    for call in (1, 2):
        assert net.partial_fit(x, y, batch_size=16, shuffle=False) is net
        assert len(net.loss_curve_) == call
        assert net._core.optimizer_steps == 4 * call  # ceil(50 / 16) per call
        for start in range(0, 50, 16):  # the same steps, one by one, momentum carried over
            stepped.train_step(x[start : start + 16], y[start : start + 16])
        assert bits(net._core.params) == bits(stepped._core.params)


def test_fit_verbose_prints_one_line_per_epoch(capsys):
    x, y = regression_data(np.float32)
    regressor(np.float32).fit(x, y, epochs=4, verbose=True, seed=0)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4
    assert all(line.startswith(f"epoch {i}/4 ") for i, line in enumerate(lines, 1))


def test_fit_records_one_validation_score_per_epoch():
    x, y = regression_data(np.float32)
    net = regressor(np.float32).fit(x[:30], y[:30], epochs=5, validation_data=(x[30:], y[30:]))
    assert len(net.loss_curve_) == len(net.validation_scores_) == 5
    assert net.validation_scores_[-1] == net.score(x[30:], y[30:])


@pytest.mark.parametrize("validation", [False, True])
def test_early_stopping_stops_when_nothing_improves(validation):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((60, 8)), rng.integers(0, 3, 60)  # random labels
    net = Network([8, 16, 3], "tanh", seed=0)
    val = (x[:20], y[:20]) if validation else None
    net.fit(x, y, epochs=50, lr=1e-7, early_stopping=True, patience=2, validation_data=val)
    assert len(net.loss_curve_) == 3  # the first epoch sets the best, two more fail to beat it


def fit_loss_curve(seed, **kwargs):
    x, y = regression_data(np.float32)
    return regressor(np.float32).fit(x, y, epochs=5, batch_size=8, seed=seed, **kwargs).loss_curve_


def test_fit_reshuffles_from_its_seed():
    assert fit_loss_curve(1) == fit_loss_curve(1)
    assert fit_loss_curve(1) != fit_loss_curve(2)


def test_fit_without_shuffle_is_deterministic():
    assert fit_loss_curve(1, shuffle=False) == fit_loss_curve(2, shuffle=False)


def test_fit_trains_on_the_last_partial_batch():
    x, y = regression_data(np.float32, n=33)
    net = regressor(np.float32).fit(x, y, epochs=3, batch_size=32, optimizer="adam")
    assert net._core.optimizer_steps == 2 * 3


def test_fit_returns_self():
    x, y = regression_data(np.float32)
    net = regressor(np.float32)
    assert net.fit(x, y, epochs=1) is net


# -- progress bar -------------------------------------------------------------------------


def test_progress_bar_draws_when_enabled():
    stream = io.StringIO()
    bar = ProgressBar(3, enabled=True, stream=stream)
    for _ in range(3):
        bar.update("loss 1.0")
    bar.close()
    text = stream.getvalue()
    assert text.startswith("\r[") and "] 3/3 loss 1.0" in text and text.endswith("\n")


def test_progress_bar_is_silent_on_a_stream_that_is_not_a_terminal():
    stream = io.StringIO()
    bar = ProgressBar(3, enabled=None, stream=stream)
    for _ in range(3):
        bar.update("loss 1.0")
    bar.close()
    assert stream.getvalue() == ""


# -- reproducibility ----------------------------------------------------------------------


def test_networks_built_alike_compute_bitwise_alike(dtype):
    """Same seed, data and calls give the same bits wherever the heap puts a network's buffers.

    Networks are built, with spacers of other sizes kept alive between them, until the
    workspace and the parameters have each been seen at both 16-byte offsets modulo 32.
    """
    rng = np.random.default_rng(0)
    x, y = randn(rng, dtype, 37, 10), rng.integers(0, 10, 37)
    outputs, params, offsets, alive = set(), set(), set(), []
    for k in range(1, 65):
        spacer = Network([10, k, 3], dtype=dtype)
        spacer.forward(x[: k % 37 + 1])
        net = Network([10, 24, 10], "sigmoid", dtype=dtype, seed=0)
        alive += [spacer, net]
        outputs.add(bits(net.forward(x)))
        net.set_optimizer("adam", 1e-2)
        for _ in range(3):
            net.train_step(x, y)
        params.add(bits(net._core.params))
        offsets |= {("workspace", net._core.workspace()[1][0] % 32),
                    ("params", net._core.params.ctypes.data % 32)}  # fmt: skip
        if len(offsets) == 4:
            break
    assert len(outputs) == 1, "forward depends on the address of the workspace"
    assert len(params) == 1, "training depends on the addresses of the buffers"
