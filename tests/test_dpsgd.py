"""DP-SGD: the fused C++ step equals the same step computed in NumPy from
`per_sample_gradients`, its noise is reproducible from the seed and has the advertised
distribution, and bad hyper-parameters are refused."""

import pickle

import denseprop
import denseprop.reference as ref
import numpy as np
import pytest
from conftest import OUTPUTS, assert_close, network, targets


def copies(net):
    return [(w.copy(), b.copy()) for w, b in zip(net.weights, net.biases)]


def zero_noise(params):
    return [(np.zeros_like(w), np.zeros_like(b)) for w, b in params]


@pytest.mark.parametrize("loss, output", OUTPUTS)
@pytest.mark.parametrize("batch", [1, 2, 11])
@pytest.mark.parametrize("clip_norm", [1e-3, 0.5, 1e6])  # every sample clipped ... none
def test_noiseless_step_equals_numpy_from_per_sample_gradients(
    rng, dtype, loss, output, batch, clip_norm
):
    net = network([5, 7, 4, 3], "tanh", loss, output, dtype)
    x = rng.standard_normal((batch, 5)).astype(dtype)
    y = targets(rng, loss, batch, 3, dtype)
    params = copies(net)
    ref.dpsgd_step(params, net.per_sample_gradients(x, y), zero_noise(params), lr=0.3,
                   clip_norm=clip_norm, noise_multiplier=0.0, weight_decay=0.01)  # fmt: skip
    net.set_optimizer("dpsgd", 0.3, clip_norm=clip_norm, noise_multiplier=0.0, weight_decay=0.01)
    expected_loss, _ = net.gradients(x, y)
    assert_close(net.train_step(x, y), expected_loss, dtype)
    for (w, b), (ew, eb) in zip(zip(net.weights, net.biases), params):
        assert_close(w, ew, dtype)
        assert_close(b, eb, dtype)


def test_clipping_bounds_each_sample_contribution(rng):
    """With one sample and no noise, the update has norm lr · min(‖g‖, C)."""
    net = network([5, 7, 3], "sigmoid", "cross_entropy", "softmax", np.float64)
    x, y = rng.standard_normal((1, 5)), np.array([2])
    norm = net.per_sample_gradient_norms(x, y)[0]
    before = net._core.params.copy()
    net.set_optimizer("dpsgd", 0.1, clip_norm=norm / 4, noise_multiplier=0.0)
    net.train_step(x, y)
    step = np.linalg.norm(net._core.params - before)
    np.testing.assert_allclose(step, 0.1 * norm / 4, rtol=1e-12)


def trained(dtype, seed, steps=3, noise=1.0):
    rng = np.random.default_rng(5)
    net = network([20, 16, 4], "relu", "cross_entropy", "softmax", dtype)
    net.set_optimizer("dpsgd", 0.05, clip_norm=0.7, noise_multiplier=noise, seed=seed)
    for _ in range(steps):
        net.train_step(rng.standard_normal((8, 20)).astype(dtype), rng.integers(0, 4, 8))
    return net


def test_same_seed_gives_bitwise_same_weights_and_different_seeds_differ(dtype):
    a, b, c = trained(dtype, 7), trained(dtype, 7), trained(dtype, 8)
    np.testing.assert_array_equal(a._core.params, b._core.params)
    assert not np.array_equal(a._core.params, c._core.params)


def test_save_load_and_pickle_continue_the_noise_stream(tmp_path, dtype):
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((8, 20)).astype(dtype), rng.integers(0, 4, 8)
    net = trained(dtype, 11)
    net.save(tmp_path / "net.npz")
    loaded = denseprop.Network.load(tmp_path / "net.npz")
    unpickled = pickle.loads(pickle.dumps(net))
    assert loaded.optimizer == net.optimizer and loaded.optimizer["seed"] == 11
    for other in (loaded, unpickled):
        other.train_step(x, y)
    net.train_step(x, y)
    np.testing.assert_array_equal(loaded._core.params, net._core.params)
    np.testing.assert_array_equal(unpickled._core.params, net._core.params)


def test_a_fresh_seed_is_drawn_and_kept_when_none_is_given():
    net = network([4, 3], "identity", "cross_entropy", "softmax", np.float32)
    net.set_optimizer("dpsgd", 0.1)
    seed = net.optimizer["seed"]
    assert isinstance(seed, int) and 0 <= seed < 2**63
    assert net.optimizer["noise_multiplier"] == 1.0 and net.optimizer["clip_norm"] == 1.0


def test_noise_has_mean_zero_and_std_sigma_c_lr_over_batch():
    """One step with and without noise from the same weights: the difference is the noise,
    -lr σ C z / batch with z ~ N(0, 1) for each of the 5 386 parameters. Bounds: the sample
    mean is within 5 standard errors of 0, the sample std within 5 of its own standard error
    (√(1/2n)) of the target, and the share within one std near Φ(1) − Φ(−1)."""
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((16, 40)), rng.integers(0, 10, 16)
    lr, sigma, clip, batch = 0.5, 1.3, 0.8, 16
    nets = []
    for noise in (0.0, sigma):
        net = network([40, 100, 10], "tanh", "cross_entropy", "softmax", np.float64)
        net.set_optimizer("dpsgd", lr, clip_norm=clip, noise_multiplier=noise, seed=2024)
        net.train_step(x, y)
        nets.append(net)
    diff = nets[0]._core.params - nets[1]._core.params
    n, target = diff.size, lr * sigma * clip / batch
    z = diff / target
    assert abs(z.mean()) < 5 / np.sqrt(n)
    assert abs(z.std() - 1) < 5 / np.sqrt(2 * n)
    inside = np.mean(np.abs(z) < 1)
    assert abs(inside - 0.6827) < 5 * np.sqrt(0.6827 * 0.3173 / n)


def test_fit_with_dpsgd_learns_and_is_reproducible(rng):
    x = rng.standard_normal((200, 6))
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    fits = []
    for _ in range(2):
        net = network([6, 8, 2], "tanh", "cross_entropy", "softmax", np.float64)
        net.fit(x, y, epochs=15, batch_size=20, optimizer="dpsgd", lr=0.5, clip_norm=1.0,
                noise_multiplier=0.5, seed=4)  # fmt: skip
        fits.append(net)
    np.testing.assert_array_equal(fits[0]._core.params, fits[1]._core.params)
    assert fits[0].optimizer["optimizer"] == "dpsgd"
    assert fits[0].loss_curve_[-1] < fits[0].loss_curve_[0]
    assert fits[0].score(x, y) > 0.8


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"clip_norm": 0.0}, ValueError, "clip_norm"),
        ({"clip_norm": -1.0}, ValueError, "clip_norm"),
        ({"clip_norm": float("nan")}, ValueError, "clip_norm"),
        ({"noise_multiplier": -0.1}, ValueError, "noise_multiplier"),
        ({"noise_multiplier": float("inf")}, ValueError, "noise_multiplier"),
        ({"noise_multiplier": "1"}, TypeError, "noise_multiplier"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 2**64}, ValueError, "seed"),
        ({"seed": 1.5}, TypeError, "seed"),
        ({"momentum": 0.9}, ValueError, "momentum"),
    ],
)
def test_bad_hyper_parameters_are_refused_and_change_nothing(kwargs, error, match):
    net = network([4, 3], "identity", "cross_entropy", "softmax", np.float32)
    net.set_optimizer("adam", 0.01)
    before = net.optimizer
    with pytest.raises(error, match=match):
        net.set_optimizer("dpsgd", 0.1, **kwargs)
    assert net.optimizer == before
    if "seed" in kwargs:  # fit's seed shuffles too, and takes any numpy seed
        return
    params = net._core.params.copy()
    with pytest.raises(error, match=match):
        net.fit(np.zeros((4, 4)), np.zeros(4, np.int64), epochs=1, optimizer="dpsgd", **kwargs)
    np.testing.assert_array_equal(net._core.params, params)


def test_dpsgd_step_allocates_nothing_after_the_first(rng):
    net = network([10, 8, 3], "relu", "cross_entropy", "softmax", np.float32)
    net.set_optimizer("dpsgd", 0.1, seed=1)
    x, y = rng.standard_normal((16, 10)).astype(np.float32), rng.integers(0, 3, 16)
    net.train_step(x, y)
    workspace = net._core.workspace()
    net.train_step(x, y)
    assert net._core.workspace() == workspace
