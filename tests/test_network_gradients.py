"""Network.gradients equals a NumPy network built from the reference kernels and central
finite differences, for 1-4 layers and every activation/loss pair."""

import denseprop.reference as ref
import numpy as np
import pytest
from conftest import HIDDEN, OUTPUTS, assert_close, network, targets

SHAPES = {1: [5, 3], 2: [5, 7, 3], 3: [6, 9, 4, 3], 4: [4, 5, 7, 5, 3]}


def reference_gradients(net, x, y, reduction="mean"):
    return ref.network_loss_and_gradients(
        net.weights, net.biases, x, y, net.activations, net.loss, reduction=reduction,
        compute_dtype=net.compute_dtype,
    )  # fmt: skip


@pytest.mark.parametrize("depth", sorted(SHAPES))
@pytest.mark.parametrize("loss, output", OUTPUTS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_gradients_equal_the_reference_network(rng, precision, depth, hidden, loss, output):
    dtype = precision.dtype
    net = network(SHAPES[depth], hidden, loss, output, dtype,
                  compute_dtype=precision.compute_dtype)  # fmt: skip
    for batch in (1, 17):
        x = rng.standard_normal((batch, net.sizes[0])).astype(dtype)
        y = targets(rng, loss, batch, net.sizes[-1], dtype)
        loss_value, grads = net.gradients(x, y)
        expected_loss, expected = reference_gradients(net, x, y)
        assert_close(loss_value, expected_loss, precision.name)
        for (gw, gb), (ew, eb) in zip(grads, expected):
            assert_close(gw, ew, precision.name)
            assert_close(gb, eb, precision.name)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_one_hot_and_probability_targets_match_the_reference(rng, dtype, reduction):
    net = network([6, 8, 4], "tanh", "cross_entropy", None, dtype)
    x = rng.standard_normal((9, 6)).astype(dtype)
    for y in (targets(rng, "cross_entropy", 9, 4, dtype, labels=False),
              np.eye(4, dtype=dtype)[rng.integers(0, 4, 9)]):  # fmt: skip
        loss_value, grads = net.gradients(x, y, reduction=reduction)
        expected_loss, expected = reference_gradients(net, x, y, reduction)
        assert_close(loss_value, expected_loss, dtype)
        for (gw, gb), (ew, eb) in zip(grads, expected):
            assert_close(gw, ew, dtype)
            assert_close(gb, eb, dtype)


def test_sum_reduction_is_batch_times_mean(rng):
    net = network([5, 7, 3], "sigmoid", "cross_entropy", None, np.float64)
    x, y = rng.standard_normal((13, 5)), rng.integers(0, 3, 13)
    mean_loss, mean_grads = net.gradients(x, y)
    sum_loss, sum_grads = net.gradients(x, y, reduction="sum")
    assert sum_loss == pytest.approx(13 * mean_loss, rel=1e-13)
    for (mw, mb), (sw, sb) in zip(mean_grads, sum_grads):
        np.testing.assert_allclose(sw, 13 * mw, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(sb, 13 * mb, rtol=1e-12, atol=1e-14)


def finite_difference(net, x, y, param, h=1e-6):
    """Central differences of the mean loss with respect to every entry of ``param``."""
    grad = np.empty_like(param)
    for i in np.ndindex(param.shape):
        saved = param[i]
        param[i] = saved + h
        up, _ = net.gradients(x, y)
        param[i] = saved - h
        down, _ = net.gradients(x, y)
        param[i] = saved
        grad[i] = (up - down) / (2 * h)
    return grad


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("loss, output", OUTPUTS)
@pytest.mark.parametrize("hidden", ["sigmoid", "tanh", "identity"])
def test_gradients_equal_central_finite_differences(rng, depth, hidden, loss, output):
    sizes = [*SHAPES[depth][:-1], 3]
    net = network(sizes, hidden, loss, output, np.float64)
    x = rng.standard_normal((3, sizes[0]))
    y = targets(rng, loss, 3, sizes[-1], np.float64)
    _, grads = net.gradients(x, y)
    for l, (gw, gb) in enumerate(grads):
        np.testing.assert_allclose(gw, finite_difference(net, x, y, net.weights[l]),
                                   rtol=1e-6, atol=1e-8)  # fmt: skip
        np.testing.assert_allclose(gb, finite_difference(net, x, y, net.biases[l]),
                                   rtol=1e-6, atol=1e-8)  # fmt: skip


@pytest.mark.parametrize("hidden", ["relu", "leaky_relu"])
def test_piecewise_linear_gradients_equal_finite_differences_away_from_kinks(rng, hidden):
    net = network([4, 6, 3], hidden, "cross_entropy", None, np.float64)
    x = rng.standard_normal((5, 4))
    z = x @ net.weights[0].T + net.biases[0]
    assert np.abs(z).min() > 1e-4, "a pre-activation sits on the kink; pick another seed"
    y = rng.integers(0, 3, 5)
    _, grads = net.gradients(x, y)
    for l, (gw, gb) in enumerate(grads):
        np.testing.assert_allclose(gw, finite_difference(net, x, y, net.weights[l], h=1e-7),
                                   rtol=1e-6, atol=1e-8)  # fmt: skip
        np.testing.assert_allclose(gb, finite_difference(net, x, y, net.biases[l], h=1e-7),
                                   rtol=1e-6, atol=1e-8)  # fmt: skip
