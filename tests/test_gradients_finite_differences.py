"""Every backward is the derivative of its forward, checked by central differences in float64."""

import denseprop.reference as ref
import numpy as np
import pytest
from conftest import ACTIVATIONS, LOSS_TARGETS, loss_target

STEP = 1e-6
# Central differences in float64 are good to about 1e-9 at this step.
FD_TOLERANCE = {"rtol": 1e-6, "atol": 1e-7}
BATCH, N_IN, N_OUT = 3, 4, 5


def numerical_gradient(f, v):
    """Central-difference gradient of the scalar function ``f`` at the array ``v``."""
    grad = np.zeros_like(v)
    for index in np.ndindex(v.shape):
        step = np.zeros_like(v)
        step[index] = STEP
        grad[index] = (f(v + step) - f(v - step)) / (2 * STEP)
    return grad


def assert_gradient(analytic, f, v):
    np.testing.assert_allclose(analytic, numerical_gradient(f, v), **FD_TOLERANCE)


def layer_away_from_kinks(rng):
    """x, w, b whose pre-activations all lie at least 0.1 from 0, where relu bends."""
    while True:
        x = rng.standard_normal((BATCH, N_IN))
        w = rng.standard_normal((N_OUT, N_IN))
        b = rng.standard_normal(N_OUT)
        if np.abs(x @ w.T + b).min() > 0.1:
            return x, w, b


@pytest.mark.parametrize(
    ("activation", "negative_slope"),
    [(name, 0.01) for name in ACTIVATIONS] + [("leaky_relu", 0.3)],
)
def test_dense_backward(impl, rng, activation, negative_slope):
    x, w, b = layer_away_from_kinks(rng)
    # With L = sum(a * r) the gradient flowing into the layer's output is r.
    r = rng.standard_normal((BATCH, N_OUT))

    def loss(x, w, b):
        return np.sum(
            impl.dense_forward(x, w, b, activation, negative_slope=negative_slope) * r
        )

    a = impl.dense_forward(x, w, b, activation, negative_slope=negative_slope)
    z = impl.dense_forward(x, w, b)
    grad_x, grad_w, grad_b = impl.dense_backward(
        x, w, a, r, activation, z=z, negative_slope=negative_slope
    )
    assert_gradient(grad_x, lambda v: loss(v, w, b), x)
    assert_gradient(grad_w, lambda v: loss(x, v, b), w)
    assert_gradient(grad_b, lambda v: loss(x, w, v), b)


@pytest.mark.parametrize(
    ("forward", "backward"),
    [("sigmoid", "sigmoid_backward"), ("softmax", "softmax_backward")],
)
def test_activation_backward(impl, rng, forward, backward):
    z, r = rng.standard_normal((BATCH, N_OUT)), rng.standard_normal((BATCH, N_OUT))
    grad_z = getattr(impl, backward)(getattr(impl, forward)(z), r)
    assert_gradient(grad_z, lambda v: np.sum(getattr(impl, forward)(v) * r), z)


@pytest.mark.parametrize(("loss", "kind"), LOSS_TARGETS)
@pytest.mark.parametrize("reduction", ref.REDUCTIONS)
def test_loss_gradient(impl, rng, loss, kind, reduction):
    z = 2 * rng.standard_normal((BATCH, N_OUT))
    y = loss_target(rng, np.float64, kind, BATCH, N_OUT)
    f = getattr(impl, loss)
    # Sample i's loss depends on row i alone, so for "none" the gradient is that of the total.
    assert_gradient(f(z, y, reduction)[1], lambda v: np.sum(f(v, y, reduction)[0]), z)
