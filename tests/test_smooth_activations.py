"""gelu, gelu_tanh, silu, softplus and mish, the activations whose derivative is read from z: the
kernels against the reference, central finite differences and PyTorch, finite for large |z|; in
a Network, which keeps Z only for the layers that need it; in the trace and the estimators."""

import math
import warnings

import denseprop
import denseprop.reference as ref
import numpy as np
import pytest
from conftest import NEEDS_Z, OUTPUTS, assert_close, network, randn, targets

SMOOTH = ["gelu", "gelu_tanh", "silu", "softplus", "mish"]


def test_these_are_the_activations_that_need_z():
    assert sorted(NEEDS_Z) == sorted(SMOOTH)


@pytest.mark.parametrize("activation", SMOOTH)
@pytest.mark.parametrize(("batch", "n"), [(1, 1), (1, 7), (3, 5), (17, 33), (257, 3)])
def test_kernels_match_the_reference(rng, dtype, activation, batch, n):
    z = 3 * randn(rng, dtype, batch, n)
    g = randn(rng, dtype, batch, n)
    a = denseprop.activation_forward(z, activation)
    assert_close(a, ref.activation_forward(z, activation), dtype)
    grad = denseprop.activation_backward(a, g, activation, z=z)
    assert_close(grad, ref.activation_backward(a, g, activation, z=z), dtype)
    jac = denseprop.activation_jacobian(a, activation, z=z)
    assert_close(jac, ref.activation_jacobian(a, activation, z=z), dtype)


@pytest.mark.parametrize("activation", SMOOTH)
def test_backward_matches_central_finite_differences(rng, activation):
    z = 3 * rng.standard_normal((9, 7))
    r = rng.standard_normal((9, 7))
    a = denseprop.activation_forward(z, activation)
    grad = denseprop.activation_backward(a, r, activation, z=z)
    h = 1e-6
    up = denseprop.activation_forward(z + h, activation)
    down = denseprop.activation_forward(z - h, activation)
    numeric = (up - down) / (2 * h) * r
    np.testing.assert_allclose(grad, numeric, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("activation", SMOOTH)
def test_dense_layer_matches_the_reference_and_finite_differences(rng, activation):
    x, w, b = rng.standard_normal((5, 4)), rng.standard_normal((3, 4)), rng.standard_normal(3)
    r = rng.standard_normal((5, 3))
    z = denseprop.dense_forward(x, w, b)
    a = denseprop.dense_forward(x, w, b, activation)
    grad_x, grad_w, grad_b = denseprop.dense_backward(x, w, a, r, activation, z=z)
    for got, want in zip((grad_x, grad_w, grad_b), ref.dense_backward(x, w, a, r, activation, z=z)):
        assert_close(got, want, np.float64)
    h = 1e-6
    numeric = np.empty_like(w)
    for i in np.ndindex(w.shape):
        step = np.zeros_like(w)
        step[i] = h
        up = np.sum(denseprop.dense_forward(x, w + step, b, activation) * r)
        down = np.sum(denseprop.dense_forward(x, w - step, b, activation) * r)
        numeric[i] = (up - down) / (2 * h)
    np.testing.assert_allclose(grad_w, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("activation", SMOOTH)
def test_large_inputs_give_the_limits_without_nan(dtype, activation):
    big = np.finfo(dtype).max / 4
    z = np.array([[-big, -1e30, -1e4, -200, -40, 40, 200, 1e4, big]], dtype)
    a = denseprop.activation_forward(z, activation)
    grad = denseprop.activation_backward(a, np.ones_like(z), activation, z=z)
    assert np.isfinite(a).all() and np.isfinite(grad).all()
    negative, positive = z[0] < 0, z[0] > 0
    # g(z) → 0 below (softplus: e^z), → z above; g'(z) → 0 below, → 1 above
    np.testing.assert_allclose(a[0, negative], 0, atol=1e-12)
    np.testing.assert_allclose(a[0, positive], z[0, positive], rtol=1e-6)
    np.testing.assert_allclose(grad[0, negative], 0, atol=1e-12)
    np.testing.assert_allclose(grad[0, positive], 1, rtol=1e-6)
    assert_close(a, ref.activation_forward(z, activation), dtype)
    assert_close(grad, ref.activation_backward(a, np.ones_like(z), activation, z=z), dtype)


def test_gelu_is_accurate_in_the_negative_tail():
    # Φ(−10) = 7.62e-24: gelu(−10) = −7.62e-23, which 1 + erf(z/√2) would round to 0
    a = denseprop.activation_forward(np.array([[-10.0]]), "gelu")
    np.testing.assert_allclose(a, -10 * 7.619853024160527e-24, rtol=1e-12)


@pytest.mark.parametrize("z", [-80.0, -30.0, -5.0, 5.0, 30.0])
def test_mish_is_accurate_in_both_tails(dtype, z):
    # mish(z) = z tanh(softplus(z)) ≈ z e^z below, z above; g' = t + z σ(z) (1 − t²)
    t = math.tanh(math.log1p(math.exp(z)))
    sigma = 1 / (1 + math.exp(-z))
    x = np.array([[z]], dtype)
    a = denseprop.activation_forward(x, "mish")
    grad = denseprop.activation_backward(a, np.ones_like(x), "mish", z=x)
    rtol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(a, z * t, rtol=rtol, atol=0)
    np.testing.assert_allclose(grad, t + z * sigma * (1 - t * t), rtol=rtol, atol=0)


torch_functions = {
    "gelu": lambda F, t: F.gelu(t),
    "gelu_tanh": lambda F, t: F.gelu(t, approximate="tanh"),
    "silu": lambda F, t: F.silu(t),
    "softplus": lambda F, t: F.softplus(t),
    "mish": lambda F, t: F.mish(t),
}


@pytest.mark.parametrize("activation", SMOOTH)
def test_activations_match_pytorch(rng, dtype, activation):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    # PyTorch's softplus returns z itself past z = 20 (its threshold); stay below it there
    z = 4 * randn(rng, dtype, 64, 9)
    g = randn(rng, dtype, 64, 9)
    t = torch.from_numpy(z.copy()).requires_grad_(True)
    out = torch_functions[activation](F, t)
    out.backward(torch.from_numpy(g.copy()))
    a = denseprop.activation_forward(z, activation)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-13}
    np.testing.assert_allclose(a, out.detach().numpy(), **tol)
    grad = denseprop.activation_backward(a, g, activation, z=z)
    np.testing.assert_allclose(grad, t.grad.numpy(), **tol)


@pytest.mark.parametrize("activation", SMOOTH)
@pytest.mark.parametrize(("loss", "output"), [*OUTPUTS, ("mse", "gelu"), ("mse", "softplus")])
def test_network_gradients_match_the_reference(rng, dtype, activation, loss, output):
    net = network([6, 9, 5, 3], [activation, "tanh"], loss, output, dtype)
    for batch in (1, 4, 17):
        x = randn(rng, dtype, batch, 6)
        y = targets(rng, loss, batch, 3, dtype)
        value, grads = net.gradients(x, y)
        want, expected = ref.network_loss_and_gradients(
            net.weights, net.biases, x, y, net.activations, net.loss
        )
        assert_close(value, want, dtype)
        for (gw, gb), (ew, eb) in zip(grads, expected):
            assert_close(gw, ew, dtype)
            assert_close(gb, eb, dtype)


@pytest.mark.parametrize("activation", SMOOTH)
def test_network_gradient_matches_central_finite_differences(rng, activation):
    net = network([4, 5, 3], activation, "mse", activation, np.float64)
    x, y = rng.standard_normal((6, 4)), rng.random((6, 3))
    _, grads = net.gradients(x, y)
    w = net.weights[0]
    h = 1e-6
    for i in [(0, 0), (2, 1), (4, 3)]:
        keep = w[i]
        w[i] = keep + h
        up = net.gradients(x, y)[0]
        w[i] = keep - h
        down = net.gradients(x, y)[0]
        w[i] = keep
        np.testing.assert_allclose(grads[0][0][i], (up - down) / (2 * h), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("activation", SMOOTH)
def test_training_steps_match_the_reference_sgd(rng, dtype, activation):
    net = network([6, 8, 3], activation, "cross_entropy", None, dtype)
    net.set_optimizer("sgd", 0.1)
    params = [(w.copy(), b.copy()) for w, b in zip(net.weights, net.biases)]
    for batch in (5, 1, 7):
        x = randn(rng, dtype, batch, 6)
        y = rng.integers(0, 3, batch)
        net.train_step(x, y)
        _, grads = ref.network_loss_and_gradients(
            [w for w, _ in params], [b for _, b in params], x, y, net.activations, net.loss
        )
        ref.sgd_step(params, grads, None, 0.1)
    for (w, b), (ew, eb) in zip(zip(net.weights, net.biases), params):
        assert_close(w, ew, dtype)
        assert_close(b, eb, dtype)


def test_z_is_kept_only_for_the_layers_that_need_it():
    def z_buffer(hidden):
        net = denseprop.Network([8, 6, 5, 3], hidden, seed=0)
        net.train_step(np.ones((4, 8), np.float32), np.zeros(4, np.int64))
        return net._core.workspace()[1][-1]  # the start of the Z buffer

    assert z_buffer(["sigmoid", "relu"]) == 0  # nothing allocated: backward from A
    assert z_buffer(["gelu", "relu"]) != 0


@pytest.mark.parametrize("activation", SMOOTH)
def test_trace_prints_the_tables_equations_and_equals_gradients(rng, activation):
    net = network([5, 6, 3], activation, "cross_entropy", None, np.float64)
    x, y = rng.standard_normal((4, 5)), rng.integers(0, 3, 4)
    trace = net.trace(x, y)
    info = {a["name"]: a for a in denseprop._core.activations()}[activation]
    assert trace["A[1]"].equation == "A[1] = " + info["forward_equation"].replace("{l}", "1")
    assert trace["dZ[1]"].equation == "dZ[1] = " + info["backward_equation"].replace("{l}", "1")
    _, grads = net.gradients(x, y)
    assert_close(trace["dW[1]"].value, grads[0][0], np.float64)
    jac = net.jacobian(x)
    h = 1e-6
    numeric = np.stack(
        [(net.forward(x + h * e) - net.forward(x - h * e)) / (2 * h) for e in np.eye(5)], axis=2
    )
    np.testing.assert_allclose(jac, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("activation", SMOOTH)
def test_estimators_train_with_them(rng, activation):
    pytest.importorskip("sklearn")
    from denseprop import MLPClassifier
    from sklearn.exceptions import ConvergenceWarning

    x = rng.standard_normal((200, 4))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    model = MLPClassifier(
        (8,), activation=activation, learning_rate_init=0.01, max_iter=300, random_state=0
    )
    with warnings.catch_warnings():  # the score is what is asserted, converged or not
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, y)
    assert model.network_.activations[:-1] == [activation]
    assert model.score(x, y) > 0.9


@pytest.mark.parametrize("activation", SMOOTH)
def test_backward_without_z_or_with_a_bad_z_is_refused(dtype, activation):
    a = np.ones((3, 4), dtype)
    with pytest.raises(ValueError, match=rf"^z: {activation}'s derivative is read from its input"):
        denseprop.activation_backward(a, a, activation)
    with pytest.raises(ValueError, match=r"^z: "):
        denseprop.activation_jacobian(a, activation)
    with pytest.raises(ValueError, match=r"^z: "):
        denseprop.dense_backward(np.ones((3, 2), dtype), np.ones((4, 2), dtype), a, a, activation)
    with pytest.raises(ValueError, match=r"^z: expected shape \(3, 4\) to match a"):
        denseprop.activation_backward(a, a, activation, z=np.ones((3, 5), dtype))
    other = np.float64 if dtype == np.float32 else np.float32
    with pytest.raises(TypeError, match=r"^z: dtype"):
        denseprop.activation_backward(a, a, activation, z=np.ones((3, 4), other))
    with pytest.raises(ValueError, match=r"^z: "):
        ref.activation_backward(a, a, activation)
