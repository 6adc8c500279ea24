"""Hypothesis: kernels match the reference, and keep their invariants, on random shapes and
values."""

import denseprop
import denseprop.reference as ref
import numpy as np
from conftest import ACTIVATIONS, assert_close
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

SETTINGS = settings(max_examples=50, deadline=None)
BOUND = 10.0

dtypes = st.sampled_from([np.dtype(np.float32), np.dtype(np.float64)])
sizes = {"batch": st.integers(1, 40), "features": st.integers(1, 20)}


def arrays(draw, dtype, *shape):
    elements = st.floats(-BOUND, BOUND, width=8 * dtype.itemsize)
    return draw(hnp.arrays(dtype, shape, elements=elements))


@st.composite
def layers(draw):
    """x: (batch, in), w: (out, in), b: (out,), grad_a: (batch, out) of one dtype."""
    dtype = draw(dtypes)
    batch, n_in, n_out = (
        draw(sizes["batch"]),
        draw(sizes["features"]),
        draw(sizes["features"]),
    )
    x, w = arrays(draw, dtype, batch, n_in), arrays(draw, dtype, n_out, n_in)
    return x, w, arrays(draw, dtype, n_out), arrays(draw, dtype, batch, n_out)


@st.composite
def matrix_pairs(draw):
    """Two (batch, n) arrays of one dtype, the second in [0, 1] to serve as targets."""
    dtype = draw(dtypes)
    batch, n = draw(sizes["batch"]), draw(sizes["features"])
    return arrays(draw, dtype, batch, n), np.abs(arrays(draw, dtype, batch, n)) / BOUND


def abs_product(a, b):
    """``|a| @ |b|`` in float64: the size of the terms a matrix product sums, which sets its
    rounding error."""
    return np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64))


activations = st.sampled_from(ACTIVATIONS)


def within_exp_range(layer, activation):
    """The layer, for exp with W and b scaled so that |z| <= 20: past z ≈ 88 exp overflows
    float32, and overflow is test_extreme_values' subject, not this comparison's."""
    x, w, b, grad_a = layer
    if activation != "exp":
        return layer
    shrink = max(1.0, float((abs_product(x, w.T) + np.abs(b)).max()) / 20)
    return x, w / shrink, b / shrink, grad_a


@SETTINGS
@given(layers(), activations)
def test_dense_forward_matches_reference(layer, activation):
    x, w, b, _ = within_exp_range(layer, activation)
    scale = 1 + float((abs_product(x, w.T) + np.abs(b)).max())
    expected = ref.dense_forward(x, w, b, activation)
    assert_close(denseprop.dense_forward(x, w, b, activation), expected, x.dtype, scale)


@SETTINGS
@given(layers(), activations)
def test_dense_backward_matches_reference(layer, activation):
    x, w, b, grad_a = within_exp_range(layer, activation)
    z = ref.dense_forward(x, w, b)
    a = ref.dense_forward(x, w, b, activation)
    # |grad_z| <= 2 |grad_a| for every activation here (softmax's is the largest) but exp,
    # whose derivative is its output.
    grad_z_bound = np.abs(grad_a) * (np.abs(a.astype(np.float64)) if activation == "exp" else 2)
    scale = 1 + max(
        float(abs_product(grad_z_bound, w).max()),
        float(abs_product(grad_z_bound.T, x).max()),
        float(grad_z_bound.sum(axis=0).max()),
    )
    actual = denseprop.dense_backward(x, w, a, grad_a, activation, z=z)
    for got, want in zip(actual, ref.dense_backward(x, w, a, grad_a, activation, z=z)):
        assert_close(got, want, x.dtype, scale)


@SETTINGS
@given(matrix_pairs())
def test_softmax_rows_are_probabilities(pair):
    z, _ = pair
    s = denseprop.softmax(z)
    assert ((s >= 0) & (s <= 1)).all()
    np.testing.assert_allclose(
        s.sum(axis=1), 1, rtol=0, atol=2 * z.shape[1] * np.finfo(z.dtype).eps
    )
    assert_close(s, ref.softmax(z), z.dtype)


@SETTINGS
@given(matrix_pairs())
def test_sigmoid_is_in_the_unit_interval(pair):
    z, _ = pair
    a = denseprop.sigmoid(z)
    assert ((a >= 0) & (a <= 1)).all()
    assert_close(a, ref.sigmoid(z), z.dtype)


@SETTINGS
@given(
    matrix_pairs(),
    st.sampled_from(["softmax_cross_entropy", "sigmoid_cross_entropy", "mse"]),
    st.sampled_from(ref.REDUCTIONS),
)
def test_losses_match_reference(pair, loss, reduction):
    z, y = pair
    actual = getattr(denseprop, loss)(z, y, reduction)
    expected = getattr(ref, loss)(z, y, reduction)
    # Each loss term is at most about BOUND per element, and the sum may cancel down to near 0.
    terms = BOUND * z.size if reduction == "sum" else BOUND * z.shape[1]
    assert_close(actual[0], expected[0], z.dtype, scale=terms)
    assert_close(actual[1], expected[1], z.dtype)


@SETTINGS
@given(matrix_pairs(), st.data())
def test_softmax_cross_entropy_with_labels_is_non_negative(pair, data):
    z, _ = pair
    labels = data.draw(
        hnp.arrays(np.int64, z.shape[0], elements=st.integers(0, z.shape[1] - 1))
    )
    loss, grad = denseprop.softmax_cross_entropy(z, labels, "none")
    assert (loss >= 0).all()
    # Each row of p - onehot sums to 0.
    np.testing.assert_allclose(
        grad.sum(axis=1), 0, atol=4 * z.shape[1] * np.finfo(z.dtype).eps
    )
    expected_loss, expected_grad = ref.softmax_cross_entropy(z, labels, "none")
    assert_close(loss, expected_loss, z.dtype)
    assert_close(grad, expected_grad, z.dtype)
