"""Logits of +-1e4 give finite, exact results: no overflow, no log(0), no warning."""

import denseprop
import denseprop.reference as ref
import numpy as np
import pytest
from conftest import assert_close

pytestmark = pytest.mark.filterwarnings("error")

BIG = 1e4
# Rows with a winner far ahead, and one with two near winners far ahead of a third.
LOGITS = [[BIG, -BIG, 0.0], [-BIG, -BIG, BIG], [BIG, BIG - 1, -BIG]]
E1 = np.exp(-1.0)
SOFTMAX = [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [1 / (1 + E1), E1 / (1 + E1), 0.0]]
# Each label sits on a logit 1e4 or 2e4 below the row's maximum: its probability is 0.
LABELS = [1, 0, 2]
CROSS_ENTROPY = [2 * BIG, 2 * BIG, 2 * BIG + np.log1p(E1)]


def test_softmax(impl, dtype):
    assert_close(impl.softmax(np.array(LOGITS, dtype)), np.array(SOFTMAX, dtype), dtype)


@pytest.mark.parametrize("one_hot", [False, True], ids=["labels", "probabilities"])
def test_softmax_cross_entropy_of_a_vanishing_probability(impl, dtype, one_hot):
    y = np.eye(3, dtype=dtype)[LABELS] if one_hot else np.array(LABELS)
    loss, grad = impl.softmax_cross_entropy(np.array(LOGITS, dtype), y, "none")
    assert_close(loss, np.array(CROSS_ENTROPY, dtype), dtype)
    assert_close(grad, np.array(SOFTMAX, dtype) - np.eye(3, dtype=dtype)[LABELS], dtype)


def test_compiled_cross_entropy_equals_reference(dtype):
    logits = np.array(LOGITS, dtype)
    for reduction in ref.REDUCTIONS:
        loss, grad = denseprop.softmax_cross_entropy(
            logits, np.array(LABELS), reduction
        )
        want_loss, want_grad = ref.softmax_cross_entropy(
            logits, np.array(LABELS), reduction
        )
        assert_close(loss, want_loss, dtype)
        assert_close(grad, want_grad, dtype)


def test_sigmoid(impl, dtype):
    assert_close(
        impl.sigmoid(np.array([[BIG, -BIG]], dtype)),
        np.array([[1.0, 0.0]], dtype),
        dtype,
    )


def test_sigmoid_cross_entropy(impl, dtype):
    z = np.array([[BIG, -BIG], [-BIG, BIG]], dtype)
    y = np.array([[0.0, 1.0], [0.0, 1.0]], dtype)
    # Row 0 is wrong by 1e4 on both units; row 1 is right with certainty.
    loss, grad = impl.sigmoid_cross_entropy(z, y, "none")
    assert_close(loss, np.array([2 * BIG, 0.0], dtype), dtype)
    assert_close(grad, np.array([[1.0, -1.0], [0.0, 0.0]], dtype), dtype)


@pytest.mark.parametrize(
    ("activation", "expected"),
    [("sigmoid", [1.0, 0.0]), ("tanh", [1.0, -1.0]), ("softmax", [1.0, 0.0])],
)
def test_dense_forward_saturates(impl, dtype, activation, expected):
    x = np.ones((1, 1), dtype)
    w = np.array([[BIG], [-BIG]], dtype)
    a = impl.dense_forward(x, w, np.zeros(2, dtype), activation)
    assert_close(a, np.array([expected], dtype), dtype)


def test_exp_underflows_to_zero_and_overflows_to_inf(impl, dtype):
    a = impl.activation_forward(np.array([[-BIG, 0.0, BIG]], dtype), "exp")
    np.testing.assert_array_equal(a, np.array([[0.0, 1.0, np.inf]], dtype))


def test_half_poisson_deviance_far_from_the_targets(impl, dtype):
    """exp(z) underflowing to 0 gives the exact, finite loss; overflowing, inf, never NaN."""
    z = np.array([[-BIG, -BIG], [BIG, BIG]], dtype)
    y = np.array([[0.0, 2.0], [0.0, 1.0]], dtype)
    loss, grad = impl.half_poisson_deviance(z, y, "none")
    assert_close(loss[:1], np.array([2 * BIG + 2 * np.log(2) - 2], dtype), dtype)
    assert np.isposinf(loss[1])
    np.testing.assert_array_equal(grad, np.array([[0.0, -2.0], [np.inf, np.inf]], dtype))
