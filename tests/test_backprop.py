"""Backprop made visible: explicit Jacobians multiply out to the fused kernels' products, the
network Jacobian matches central finite differences and the reference, and `trace` holds every
term of the batched equations with the values of `gradients`."""

import denseprop
import denseprop.reference as ref
import numpy as np
import pytest
from conftest import ACTIVATIONS, HIDDEN, OUTPUTS, assert_close, network, randn, targets


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("batch", [1, 7])
def test_activation_jacobian_times_gradient_is_the_fused_backward(rng, dtype, activation, batch):
    z = randn(rng, dtype, batch, 6)
    a = denseprop.activation_forward(z, activation, negative_slope=0.2)
    g = randn(rng, dtype, batch, 6)
    jac = denseprop.activation_jacobian(a, activation, z=z, negative_slope=0.2)
    assert jac.shape == (batch, 6, 6) and jac.dtype == dtype
    assert_close(jac, ref.activation_jacobian(a, activation, 0.2, z=z), dtype)
    fused = denseprop.activation_backward(a, g, activation, z=z, negative_slope=0.2)
    assert_close(np.einsum("bij,bj->bi", jac, g), fused, dtype)
    assert_close(fused, ref.activation_backward(a, g, activation, 0.2, z=z), dtype)
    if activation != "softmax":  # elementwise: a diagonal Jacobian
        assert not np.any(jac - jac * np.eye(6, dtype=dtype))


def test_the_named_kernels_are_the_products_of_explicit_jacobians(rng, dtype):
    z, g = randn(rng, dtype, 5, 4), randn(rng, dtype, 5, 4)
    s, a = denseprop.softmax(z), denseprop.sigmoid(z)
    assert_close(
        denseprop.softmax_jacobian(s) @ g[:, :, None],
        denseprop.softmax_backward(s, g)[:, :, None],
        dtype,
    )
    assert_close(
        denseprop.activation_jacobian(a, "sigmoid") @ g[:, :, None],
        denseprop.sigmoid_backward(a, g)[:, :, None],
        dtype,
    )
    assert_close(denseprop.activation_forward(z, "softmax"), s, dtype)
    assert_close(denseprop.activation_jacobian(s, "softmax"), denseprop.softmax_jacobian(s), dtype)


def finite_difference_jacobian(net, x, h=1e-6):
    jac = np.empty((x.shape[0], net.sizes[-1], x.shape[1]))
    for j in range(x.shape[1]):
        step = np.zeros_like(x)
        step[:, j] = h
        jac[:, :, j] = (net.forward(x + step) - net.forward(x - step)) / (2 * h)
    return jac


def reference_jacobian(net, x):
    """The chain rule with every Jacobian explicit: J = ∏ J_g(A[l]) W[l]."""
    a = ref.network_forward(net.weights, net.biases, x, net.activations)
    jac = np.broadcast_to(np.eye(x.shape[1]), (x.shape[0], x.shape[1], x.shape[1]))
    for l, (w, b, act) in enumerate(zip(net.weights, net.biases, net.activations), 1):
        z = a[l - 1] @ w.T + b
        jac = ref.activation_jacobian(a[l], act, z=z) @ w @ jac
    return jac


@pytest.mark.parametrize("loss, output", OUTPUTS)
@pytest.mark.parametrize("hidden", ["sigmoid", "tanh", "leaky_relu", "gelu", "silu"])
def test_network_jacobian_matches_finite_differences_and_the_reference(rng, loss, output, hidden):
    net = network([5, 6, 4, 3], hidden, loss, output, np.float64)
    x = rng.standard_normal((3, 5))
    jac = net.jacobian(x)
    assert jac.shape == (3, 3, 5) and jac.dtype == np.float64
    np.testing.assert_allclose(jac, finite_difference_jacobian(net, x), rtol=1e-6, atol=1e-8)
    assert_close(jac, reference_jacobian(net, x), np.float64)


@pytest.mark.parametrize("batch", [1, 9])
def test_network_jacobian_float32_matches_the_reference(rng, batch):
    net = network([6, 5, 4], "relu", "cross_entropy", "softmax", np.float32)
    x = randn(rng, np.float32, batch, 6)
    assert_close(net.jacobian(x), reference_jacobian(net, x), np.float32)


@pytest.mark.parametrize("loss, output", OUTPUTS)
@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_trace_values_equal_gradients(rng, precision, hidden, loss, output, reduction):
    dtype, compute = precision.dtype, precision.compute_dtype
    net = network([5, 7, 4, 3], hidden, loss, output, dtype, compute_dtype=compute)
    for batch in (1, 6):
        x = randn(rng, dtype, batch, 5)
        y = targets(rng, loss, batch, 3, dtype)
        trace = net.trace(x, y, reduction)
        value, grads = net.gradients(x, y, reduction)
        assert_close(trace.loss, value, precision.name)
        for l, (gw, gb) in enumerate(grads, 1):
            assert_close(trace[f"dW[{l}]"].value, gw, precision.name)
            assert_close(trace[f"db[{l}]"].value, gb, precision.name)
        outputs = ref.network_forward(net.weights, net.biases, x, net.activations,
                                      compute_dtype=compute)  # fmt: skip
        for l, a in enumerate(outputs):
            assert_close(trace[f"A[{l}]"].value, a, precision.name)


def test_trace_lists_every_term_in_order_with_shapes_and_equations(rng):
    net = denseprop.Network([64, 32, 10], "sigmoid", seed=0)
    x = rng.random((5, 64)).astype(np.float32)
    y = rng.integers(0, 10, 5)
    trace = net.trace(x, y)
    names = [e.name for e in trace]
    assert names == ["A[0]", "Z[1]", "A[1]", "Z[2]", "A[2]", "dZ[2]", "dW[2]", "db[2]", "dA[1]",
                     "dZ[1]", "dW[1]", "db[1]"]  # fmt: skip
    assert len(trace) == 12
    for entry in trace:
        assert entry.shape == entry.value.shape
        assert entry.equation.startswith(f"{entry.name} = ")
    assert trace["dW[2]"].equation == "dW[2] = dZ[2]ᵀ A[1]" and trace["dW[2]"].shape == (10, 32)
    assert trace["dZ[2]"].equation == "dZ[2] = (A[2] − Y) / batch"
    lines = str(trace).splitlines()
    assert len(lines) == 13 and lines[0].startswith("loss = ")
    row = next(line for line in lines if line.startswith("dW[2] = dZ[2]ᵀ A[1]"))
    assert row.endswith("(10, 32)")
    with pytest.raises(KeyError, match="dW\\[3\\]"):
        trace["dW[3]"]


def test_mse_trace_has_the_output_gradient_before_its_activation(rng):
    net = network([3, 4, 2], "tanh", "mse", "tanh", np.float64)
    trace = net.trace(rng.standard_normal((4, 3)), rng.standard_normal((4, 2)), "sum")
    names = [e.name for e in trace]
    assert names[5:8] == ["dA[2]", "dZ[2]", "dW[2]"]
    assert trace["dA[2]"].equation == "dA[2] = (A[2] − Y)"
    assert trace["dZ[2]"].equation == "dZ[2] = dA[2] ⊙ (1 − A[2]²)"


# -- bad input: the new methods check their arguments before touching the network -----------


def bad_input_network():
    return network([4, 5, 3], "sigmoid", "cross_entropy", "softmax", np.float64)


GOOD_X = np.zeros((2, 4))
GOOD_Y = np.array([0, 2])
METHODS = {
    "per_sample_gradients": lambda net, x, y: net.per_sample_gradients(x, y),
    "per_sample_gradient_norms": lambda net, x, y: net.per_sample_gradient_norms(x, y),
    "trace": lambda net, x, y: net.trace(x, y),
    "jacobian": lambda net, x, y: net.jacobian(x),
}
BAD_X = [
    (np.zeros((2, 5)), ValueError, "x has 5 features"),
    (np.zeros(4), ValueError, "x: expected a 2-D array"),
    (np.zeros((0, 4)), ValueError, "x: empty batch"),
    (np.array([[0.0, np.nan, 0, 0], [0, 0, 0, 0]]), ValueError, "x: contains nan"),
    (np.zeros((2, 4), dtype=np.complex128), TypeError, "x: dtype complex128"),
    ("text", TypeError, "x"),
]
BAD_Y = [
    (np.array([0, 3]), ValueError, "y: label 3"),
    (np.array([0, 1, 2]), ValueError, "y: expected 2 rows"),
    (np.zeros((2, 4)), ValueError, "y has 4 columns"),
    (np.array([[np.inf, 0, 0], [0, 0, 1]]), ValueError, "y: contains inf"),
    (np.array([0.5, 1.0]), TypeError, "y: class labels need an integer dtype"),
]


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("x, error, match", BAD_X)
def test_bad_x_is_refused_and_the_network_unchanged(method, x, error, match):
    net = bad_input_network()
    params = net._core.params.copy()
    with pytest.raises(error, match=match):
        METHODS[method](net, x, GOOD_Y)
    np.testing.assert_array_equal(net._core.params, params)


@pytest.mark.parametrize("method", ["per_sample_gradients", "per_sample_gradient_norms", "trace"])
@pytest.mark.parametrize("y, error, match", BAD_Y)
def test_bad_y_is_refused(method, y, error, match):
    with pytest.raises(error, match=match):
        METHODS[method](bad_input_network(), GOOD_X, y)


def test_trace_refuses_an_unknown_reduction():
    with pytest.raises(ValueError, match="reduction: unknown 'none'"):
        bad_input_network().trace(GOOD_X, GOOD_Y, "none")


jac, backward = denseprop.activation_jacobian, denseprop.activation_backward


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: jac(np.zeros((2, 3)), "swish"), ValueError, "activation"),
        (lambda: jac(np.zeros(3), "tanh"), ValueError, "a: expected a 2-D"),
        (lambda: jac(np.zeros((2, 3), np.int64), "tanh"), TypeError, "a:"),
        (lambda: jac(np.zeros((2, 3)), "leaky_relu", negative_slope=-1), ValueError,
         "negative_slope"),
        (lambda: jac(np.zeros((2, 0)), "tanh"), ValueError, "empty"),
        (lambda: backward(np.zeros((2, 3)), np.zeros((2, 4)), "relu"), ValueError,
         "grad_a: expected shape"),
        (lambda: backward(np.zeros((2, 3)), np.zeros((2, 3), np.float32), "relu"), TypeError,
         "grad_a: dtype float32"),
        (lambda: denseprop.activation_forward(np.zeros((2, 3)), "swish"), ValueError,
         "activation"),
    ],
)  # fmt: skip
def test_activation_kernels_refuse_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()

