"""Per-sample gradients and their norms: each sample's gradient equals the reference network's
gradient of that sample alone, they add up to `gradients`, and the norms computed without
forming them equal the norms of the formed ones."""

import denseprop.reference as ref
import numpy as np
import pytest
from conftest import OUTPUTS, assert_close, network, targets

SIZES = [5, 7, 4, 3]


def one_sample_gradients(net, x, y, i):
    """The reference gradient of sample i's own loss (reduction "sum" over a batch of 1)."""
    _, grads = ref.network_loss_and_gradients(
        net.weights, net.biases, x[i : i + 1], y[i : i + 1], net.activations, net.loss,
        reduction="sum",
    )  # fmt: skip
    return grads


def materialised_norms(per_sample):
    squared = sum((gw**2).sum(axis=(1, 2)) + (gb**2).sum(axis=1) for gw, gb in per_sample)
    return np.sqrt(squared)


@pytest.mark.parametrize("loss, output", OUTPUTS)
@pytest.mark.parametrize("batch", [1, 2, 13])
def test_each_sample_gradient_equals_the_reference_on_that_sample(rng, dtype, loss, output, batch):
    net = network(SIZES, "tanh", loss, output, dtype)
    x = rng.standard_normal((batch, SIZES[0])).astype(dtype)
    y = targets(rng, loss, batch, SIZES[-1], dtype)
    per_sample = net.per_sample_gradients(x, y)
    assert len(per_sample) == len(net.weights)
    for (gw, gb), w in zip(per_sample, net.weights):
        assert gw.shape == (batch, *w.shape) and gb.shape == (batch, w.shape[0])
    for i in range(batch):
        for (gw, gb), (ew, eb) in zip(per_sample, one_sample_gradients(net, x, y, i)):
            assert_close(gw[i], ew, dtype)
            assert_close(gb[i], eb, dtype)


@pytest.mark.parametrize("hidden", ["sigmoid", "relu", "leaky_relu"])
@pytest.mark.parametrize("loss, output", OUTPUTS)
def test_sum_and_mean_of_per_sample_gradients_equal_gradients(rng, dtype, hidden, loss, output):
    net = network(SIZES, hidden, loss, output, dtype)
    batch = 9
    x = rng.standard_normal((batch, SIZES[0])).astype(dtype)
    y = targets(rng, loss, batch, SIZES[-1], dtype)
    per_sample = net.per_sample_gradients(x, y)
    _, summed = net.gradients(x, y, reduction="sum")
    _, mean = net.gradients(x, y)
    for (gw, gb), (sw, sb), (mw, mb) in zip(per_sample, summed, mean):
        assert_close(gw.sum(axis=0), sw, dtype, scale=np.abs(gw).sum(axis=0).max())
        assert_close(gb.sum(axis=0), sb, dtype, scale=np.abs(gb).sum(axis=0).max())
        assert_close(gw.mean(axis=0), mw, dtype, scale=np.abs(gw).mean(axis=0).max())
        assert_close(gb.mean(axis=0), mb, dtype, scale=np.abs(gb).mean(axis=0).max())


@pytest.mark.parametrize("loss, output", OUTPUTS)
@pytest.mark.parametrize("batch", [1, 31])
def test_norms_equal_the_norms_of_the_formed_gradients(rng, dtype, loss, output, batch):
    net = network([6, 8, 5, 4], "sigmoid", loss, output, dtype)
    x = rng.standard_normal((batch, 6)).astype(dtype)
    y = targets(rng, loss, batch, 4, dtype)
    norms = net.per_sample_gradient_norms(x, y)
    expected = materialised_norms(net.per_sample_gradients(x, y))
    assert norms.shape == (batch,) and norms.dtype == dtype
    if dtype == np.float64:  # the promise made in the docs: 1e-10
        np.testing.assert_allclose(norms, expected, rtol=1e-10, atol=0)
    else:
        assert_close(norms, expected, dtype)


def test_per_sample_calls_leave_the_network_unchanged(rng):
    net = network(SIZES, "relu", "cross_entropy", "softmax", np.float64)
    x = rng.standard_normal((7, SIZES[0]))
    y = rng.integers(0, SIZES[-1], 7)
    net.gradients(x[:3], y[:3])
    params, grads = net._core.params.copy(), net._core.grads.copy()
    net.per_sample_gradients(x, y)
    net.per_sample_gradient_norms(x, y)
    net.trace(x, y)
    net.jacobian(x)
    np.testing.assert_array_equal(net._core.params, params)
    np.testing.assert_array_equal(net._core.grads, grads)


def test_realistic_size_norms_match(rng):
    """784-256-128-10 at batch 64, float64: the sizes the benchmark runs."""
    net = network([784, 256, 128, 10], "sigmoid", "cross_entropy", "softmax", np.float64)
    x = rng.random((64, 784))
    y = rng.integers(0, 10, 64)
    norms = net.per_sample_gradient_norms(x, y)
    np.testing.assert_allclose(norms, materialised_norms(net.per_sample_gradients(x, y)),
                               rtol=1e-10, atol=0)  # fmt: skip
