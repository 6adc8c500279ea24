"""Every compiled kernel gives the result of its NumPy twin, for both dtypes."""

import denseprop
import denseprop.reference as ref
import numpy as np
import pytest
from conftest import ACTIVATIONS, assert_close, randn

BATCHES = [1, 2, 3, 17, 64, 257]
LAYER_SHAPES = [(5, 7), (7, 1), (1, 5)]  # (in, out)
FEATURES = [1, 5, 7]
LABEL_DTYPES = [np.int8, np.int32, np.int64, np.uint8]
LOSSES = ["softmax_cross_entropy", "sigmoid_cross_entropy", "mse", "half_poisson_deviance"]


def layer(rng, dtype, batch, n_in, n_out):
    return (
        randn(rng, dtype, batch, n_in),
        randn(rng, dtype, n_out, n_in),
        randn(rng, dtype, n_out),
    )


def assert_loss_close(actual, expected, dtype, reduction):
    """Compare ``(loss, grad)`` pairs; a reduced loss must be a Python float."""
    if reduction != "none":
        assert type(actual[0]) is float
    assert_close(actual[0], expected[0], dtype)
    assert_close(actual[1], expected[1], dtype)


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize(("n_in", "n_out"), LAYER_SHAPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_dense_forward(rng, precision, batch, n_in, n_out, activation):
    dtype, compute = precision.dtype, {"compute_dtype": precision.compute_dtype}
    x, w, b = layer(rng, dtype, batch, n_in, n_out)
    expected = ref.dense_forward(x, w, b, activation, **compute)
    assert_close(denseprop.dense_forward(x, w, b, activation, **compute), expected, precision.name)

    out = np.full((batch, n_out), np.nan, dtype)
    assert denseprop.dense_forward(x, w, b, activation, out, **compute) is out
    assert_close(out, expected, precision.name)


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize(("n_in", "n_out"), LAYER_SHAPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_dense_backward(rng, precision, batch, n_in, n_out, activation):
    dtype, compute = precision.dtype, {"compute_dtype": precision.compute_dtype}
    x, w, b = layer(rng, dtype, batch, n_in, n_out)
    z = ref.dense_forward(x, w, b)  # read only by the activations whose derivative needs it
    a = ref.dense_forward(x, w, b, activation)
    grad_a = randn(rng, dtype, batch, n_out)
    expected = ref.dense_backward(x, w, a, grad_a, activation, z=z, **compute)
    for actual, want in zip(
        denseprop.dense_backward(x, w, a, grad_a, activation, z=z, **compute), expected
    ):
        assert_close(actual, want, precision.name)

    grad_x, grad_w, grad_b = denseprop.dense_backward(
        x, w, a, grad_a, activation, False, z=z, **compute
    )
    assert grad_x is None
    assert_close(grad_w, expected[1], precision.name)
    assert_close(grad_b, expected[2], precision.name)


@pytest.mark.parametrize("negative_slope", [0.0, 0.2, 1.5])
def test_leaky_relu_uses_the_given_slope(rng, dtype, negative_slope):
    x, w, b = layer(rng, dtype, 17, 5, 7)
    a = denseprop.dense_forward(x, w, b, "leaky_relu", negative_slope=negative_slope)
    assert_close(
        a,
        ref.dense_forward(x, w, b, "leaky_relu", negative_slope=negative_slope),
        dtype,
    )

    grad_a = randn(rng, dtype, 17, 7)
    actual = denseprop.dense_backward(
        x, w, a, grad_a, "leaky_relu", negative_slope=negative_slope
    )
    expected = ref.dense_backward(
        x, w, a, grad_a, "leaky_relu", negative_slope=negative_slope
    )
    for got, want in zip(actual, expected):
        assert_close(got, want, dtype)


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("n", FEATURES)
def test_sigmoid_and_softmax(rng, dtype, batch, n):
    z = 3 * randn(rng, dtype, batch, n)
    assert_close(denseprop.sigmoid(z), ref.sigmoid(z), dtype)
    assert_close(denseprop.softmax(z), ref.softmax(z), dtype)


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("n", FEATURES)
def test_activation_backwards(rng, dtype, batch, n):
    z, g = randn(rng, dtype, batch, n), randn(rng, dtype, batch, n)
    a = ref.sigmoid(z)
    assert_close(denseprop.sigmoid_backward(a, g), ref.sigmoid_backward(a, g), dtype)
    s = ref.softmax(z)
    assert_close(denseprop.softmax_backward(s, g), ref.softmax_backward(s, g), dtype)
    assert_close(denseprop.softmax_jacobian(s), ref.softmax_jacobian(s), dtype)


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("reduction", ref.REDUCTIONS)
@pytest.mark.parametrize("label_dtype", LABEL_DTYPES)
def test_softmax_cross_entropy_with_labels(rng, dtype, batch, reduction, label_dtype):
    logits = randn(rng, dtype, batch, 7)
    y = rng.integers(0, 7, batch).astype(label_dtype)
    assert_loss_close(
        denseprop.softmax_cross_entropy(logits, y, reduction),
        ref.softmax_cross_entropy(logits, y, reduction),
        dtype,
        reduction,
    )


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("reduction", ref.REDUCTIONS)
@pytest.mark.parametrize("normalised", [True, False], ids=["probabilities", "weights"])
def test_softmax_cross_entropy_with_targets(rng, dtype, batch, reduction, normalised):
    logits = randn(rng, dtype, batch, 7)
    # Targets that do not sum to 1 exercise the general gradient p * sum(y) - y.
    y = (
        ref.softmax(randn(rng, dtype, batch, 7))
        if normalised
        else rng.random((batch, 7)).astype(dtype)
    )
    assert_loss_close(
        denseprop.softmax_cross_entropy(logits, y, reduction),
        ref.softmax_cross_entropy(logits, y, reduction),
        dtype,
        reduction,
    )


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("reduction", ref.REDUCTIONS)
@pytest.mark.parametrize("loss", ["sigmoid_cross_entropy", "mse", "half_poisson_deviance"])
def test_elementwise_losses(rng, dtype, batch, reduction, loss):
    z, y = randn(rng, dtype, batch, 5), rng.random((batch, 5)).astype(dtype)
    assert_loss_close(
        getattr(denseprop, loss)(z, y, reduction),
        getattr(ref, loss)(z, y, reduction),
        dtype,
        reduction,
    )


@pytest.mark.parametrize("loss", LOSSES)
def test_loss_reduction_defaults_to_mean(rng, dtype, loss):
    z, y = randn(rng, dtype, 4, 3), ref.softmax(randn(rng, dtype, 4, 3))
    assert_loss_close(
        getattr(denseprop, loss)(z, y), getattr(ref, loss)(z, y, "mean"), dtype, "mean"
    )


def test_kernels_leave_their_inputs_unchanged(rng, dtype):
    x, w, b = layer(rng, dtype, 9, 5, 4)
    s = ref.softmax(randn(rng, dtype, 9, 4))
    g = randn(rng, dtype, 9, 4)
    labels = rng.integers(0, 4, 9)
    calls = {
        "dense_forward": (x, w, b, "softmax"),
        "dense_backward": (x, w, s, g, "softmax"),
        "sigmoid": (g,),
        "sigmoid_backward": (s, g),
        "softmax": (g,),
        "softmax_backward": (s, g),
        "softmax_jacobian": (s,),
        "softmax_cross_entropy": (g, labels),
        "sigmoid_cross_entropy": (g, s),
        "mse": (g, s),
        "half_poisson_deviance": (g, s),
    }
    for name, args in calls.items():
        before = [arg.copy() for arg in args if isinstance(arg, np.ndarray)]
        getattr(denseprop, name)(*args)
        after = [arg for arg in args if isinstance(arg, np.ndarray)]
        for old, new in zip(before, after):
            np.testing.assert_array_equal(new, old, err_msg=name)
