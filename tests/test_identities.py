"""Identities between kernels that must hold whatever the implementation."""

import numpy as np
import pytest
from conftest import ACTIVATIONS, LOSS_TARGETS, assert_close, loss_target, randn

BATCH = 6


def test_softmax_jacobian_times_gradient_is_softmax_backward(impl, rng, dtype):
    s = impl.softmax(randn(rng, dtype, BATCH, 5))
    g = randn(rng, dtype, BATCH, 5)
    jacobian_product = np.einsum("bij,bj->bi", impl.softmax_jacobian(s), g)
    assert_close(impl.softmax_backward(s, g), jacobian_product, dtype)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_batch_gradients_are_sums_of_per_sample_gradients(impl, rng, dtype, activation):
    x, w, b = randn(rng, dtype, BATCH, 4), randn(rng, dtype, 3, 4), randn(rng, dtype, 3)
    z = impl.dense_forward(x, w, b)
    a = impl.dense_forward(x, w, b, activation)
    grad_a = randn(rng, dtype, BATCH, 3)
    grad_x, grad_w, grad_b = impl.dense_backward(x, w, a, grad_a, activation, z=z)

    rows = [slice(i, i + 1) for i in range(BATCH)]
    per_sample = [
        impl.dense_backward(x[i], w, a[i], grad_a[i], activation, z=z[i]) for i in rows
    ]
    # With one sample, grad_b is that sample's grad_z.
    assert_close(grad_b, sum(p[2] for p in per_sample), dtype)
    assert_close(grad_w, sum(p[1] for p in per_sample), dtype)
    assert_close(grad_x, np.concatenate([p[0] for p in per_sample]), dtype)


@pytest.mark.parametrize(("loss", "kind"), LOSS_TARGETS)
def test_reductions_agree(impl, rng, dtype, loss, kind):
    z = randn(rng, dtype, BATCH, 4)
    y = loss_target(rng, dtype, kind, BATCH, 4)
    f = getattr(impl, loss)
    mean_loss, mean_grad = f(z, y, "mean")
    sum_loss, sum_grad = f(z, y, "sum")
    none_loss, none_grad = f(z, y, "none")

    assert_close(sum_loss, BATCH * mean_loss, dtype)
    assert_close(sum_grad, BATCH * mean_grad, dtype)
    assert_close(none_loss.sum(dtype=np.float64), sum_loss, dtype)
    assert_close(none_grad, sum_grad, dtype)
