"""Label smoothing: the kernel and the network against PyTorch's cross_entropy(label_smoothing=),
the NumPy twin and finite differences; refused for the other losses and outside [0, 1)."""

import denseprop
import denseprop.reference as ref
import numpy as np
import pytest
from conftest import TOLERANCES, assert_close

EPS = [0.0, 0.1, 0.35]


def logits_and_targets(rng, batch, n, dtype, labels):
    z = (3 * rng.standard_normal((batch, n))).astype(dtype)
    if labels:
        return z, rng.integers(0, n, batch)
    p = rng.random((batch, n)).astype(dtype)
    return z, p / p.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("labels", [True, False], ids=["labels", "probabilities"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("eps", EPS)
@pytest.mark.parametrize("batch", [1, 7])
def test_the_kernel_is_its_twin(rng, dtype, labels, reduction, eps, batch):
    z, y = logits_and_targets(rng, batch, 5, dtype, labels)
    loss, grad = denseprop.softmax_cross_entropy(z, y, reduction, label_smoothing=eps)
    twin_loss, twin_grad = ref.softmax_cross_entropy(z, y, reduction, label_smoothing=eps)
    np.testing.assert_allclose(loss, twin_loss, **TOLERANCES[np.dtype(dtype)])
    assert_close(grad, twin_grad, dtype)


@pytest.mark.parametrize("labels", [True, False], ids=["labels", "probabilities"])
@pytest.mark.parametrize("eps", EPS)
def test_the_kernel_equals_pytorchs_cross_entropy(rng, dtype, labels, eps):
    torch = pytest.importorskip("torch")
    z, y = logits_and_targets(rng, 9, 6, dtype, labels)
    zt = torch.tensor(z, requires_grad=True)
    target = torch.tensor(y)  # labels (int64) or probabilities
    expected = torch.nn.functional.cross_entropy(zt, target, label_smoothing=eps)
    expected.backward()
    loss, grad = denseprop.softmax_cross_entropy(z, y, label_smoothing=eps)
    tol = TOLERANCES[np.dtype(dtype)]
    np.testing.assert_allclose(loss, expected.item(), **tol)
    np.testing.assert_allclose(grad, zt.grad.numpy(), **tol)


@pytest.mark.parametrize("eps", [0.1, 0.4])
def test_the_networks_loss_and_gradients_are_the_twins_and_pytorchs(rng, dtype, eps):
    net = denseprop.Network([5, 7, 4], "tanh", dtype=dtype, seed=3, label_smoothing=eps)
    x = rng.standard_normal((11, 5)).astype(dtype)
    y = rng.integers(0, 4, 11)
    loss, grads = net.gradients(x, y)
    twin_loss, twin = ref.network_loss_and_gradients(net.weights, net.biases, x, y,
                                                     net.activations, net.loss,
                                                     label_smoothing=eps)  # fmt: skip
    np.testing.assert_allclose(loss, twin_loss, **TOLERANCES[np.dtype(dtype)])
    for (gw, gb), (tw, tb) in zip(grads, twin):
        assert_close(gw, tw, dtype)
        assert_close(gb, tb, dtype)
    trace = net.trace(x, y)
    for l, (gw, _) in enumerate(grads, 1):
        assert_close(trace[f"dW[{l}]"].value, gw, dtype)
    torch = pytest.importorskip("torch")
    h = torch.tanh(torch.tensor(x) @ torch.tensor(net.weights[0]).T + torch.tensor(net.biases[0]))
    out = h @ torch.tensor(net.weights[1]).T + torch.tensor(net.biases[1])
    expected = torch.nn.functional.cross_entropy(out, torch.tensor(y), label_smoothing=eps)
    np.testing.assert_allclose(loss, expected.item(), **TOLERANCES[np.dtype(dtype)])


def test_the_gradient_is_the_losss_derivative_by_finite_differences(rng):
    net = denseprop.Network([4, 5, 3], "sigmoid", dtype=np.float64, seed=1, label_smoothing=0.2)
    x, y = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
    _, grads = net.gradients(x, y)
    w = net.weights[0]
    for i, j in [(0, 0), (2, 3), (4, 1)]:
        h = 1e-6
        w[i, j] += h
        up = net.gradients(x, y)[0]
        w[i, j] -= 2 * h
        down = net.gradients(x, y)[0]
        w[i, j] += h
        np.testing.assert_allclose(grads[0][0][i, j], (up - down) / (2 * h), rtol=1e-6, atol=1e-9)


def test_training_steps_take_the_smoothed_gradient(rng, dtype):
    net = denseprop.Network([5, 6, 3], "relu", dtype=dtype, seed=2, label_smoothing=0.15)
    net.set_optimizer("sgd", 0.1)
    x, y = rng.standard_normal((8, 5)).astype(dtype), rng.integers(0, 3, 8)
    params = [(w.copy(), b.copy()) for w, b in zip(net.weights, net.biases)]
    twin_loss, grads = ref.network_loss_and_gradients([w for w, _ in params],
                                                      [b for _, b in params], x, y,
                                                      net.activations, net.loss,
                                                      label_smoothing=0.15)  # fmt: skip
    ref.sgd_step(params, grads, None, 0.1)
    np.testing.assert_allclose(net.train_step(x, y), twin_loss, **TOLERANCES[np.dtype(dtype)])
    for (w, b), w_net, b_net in zip(params, net.weights, net.biases):
        assert_close(w_net, w, dtype)
        assert_close(b_net, b, dtype)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"loss": "mse", "label_smoothing": 0.1}, ValueError,
         r"^label_smoothing: the mse loss takes none; cross_entropy does$"),
        ({"loss": "binary_cross_entropy", "label_smoothing": 0.1}, ValueError, "label_smoothing"),
        ({"label_smoothing": 1.0}, ValueError, r"^label_smoothing: must be in \[0, 1\), got 1.0$"),
        ({"label_smoothing": -0.1}, ValueError, "label_smoothing: must be in"),
        ({"label_smoothing": float("nan")}, ValueError, "label_smoothing: must be in"),
        ({"label_smoothing": "0.1"}, TypeError, "^label_smoothing: expected a number, got str$"),
    ],
)
def test_bad_label_smoothing_is_refused_by_name(kwargs, error, match):
    with pytest.raises(error, match=match):
        denseprop.Network([3, 4, 2], **kwargs)


def test_the_kernel_refuses_bad_smoothing():
    with pytest.raises(ValueError, match=r"^label_smoothing: must be in \[0, 1\), got 1.5$"):
        denseprop.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 1]), label_smoothing=1.5)


def test_the_model_file_keeps_it_and_an_older_file_means_none(tmp_path, rng):
    net = denseprop.Network([3, 4, 2], seed=0, label_smoothing=0.25)
    net.save(tmp_path / "net.npz")
    loaded = denseprop.Network.load(tmp_path / "net.npz")
    x, y = rng.standard_normal((5, 3)), rng.integers(0, 2, 5)
    assert loaded.gradients(x, y)[0] == net.gradients(x, y)[0]
    assert "label_smoothing=0.25" in repr(loaded)
