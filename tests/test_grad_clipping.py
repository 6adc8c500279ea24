"""Gradient clipping by global norm (``max_grad_norm``): the whole gradient scaled by
c / (‖g‖ + 1e-6) when ‖g‖ > c, then the optimizer's step, as torch.nn.utils.clip_grad_norm_
followed by ``optimizer.step()``; against the NumPy twin in test_optimizer_table.py, over MPI in
mpi_worker.py, bad values in test_network_bad_input.py."""

import math

import denseprop
import numpy as np
import pytest
from conftest import TOLERANCES, assert_unchanged, snapshot
from denseprop import reference

# denseprop's settings and PyTorch's optimizer with the same ones
TORCH_OPTIMIZERS = {
    "sgd": ({"momentum": 0.9}, lambda torch, groups: torch.optim.SGD(groups, lr=0.1,
                                                                     momentum=0.9)),
    "adam": ({"beta1": 0.8, "beta2": 0.95, "eps": 1e-6},
             lambda torch, groups: torch.optim.Adam(groups, lr=0.1, betas=(0.8, 0.95), eps=1e-6)),
    "adamw": ({"beta1": 0.8, "beta2": 0.95, "eps": 1e-6},
              lambda torch, groups: torch.optim.AdamW(groups, lr=0.1, betas=(0.8, 0.95),
                                                      eps=1e-6)),
    "rmsprop": ({"alpha": 0.9, "eps": 1e-6},
                lambda torch, groups: torch.optim.RMSprop(groups, lr=0.1, alpha=0.9, eps=1e-6)),
}  # fmt: skip


def torch_twin(torch, net, dtype):
    """A torch.nn.Sequential of Linear and ReLU holding ``net``'s parameters."""
    layers = []
    for w in net.weights:
        layers += [torch.nn.Linear(w.shape[1], w.shape[0]), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    model = model.to(torch.float32 if dtype == np.float32 else torch.float64)
    with torch.no_grad():
        for linear, w, b in zip(model[::2], net.weights, net.biases):
            linear.weight.copy_(torch.from_numpy(w))
            linear.bias.copy_(torch.from_numpy(b))
    return model


@pytest.mark.parametrize("batch", [5, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("optimizer", list(TORCH_OPTIMIZERS))
def test_clipped_steps_equal_torch_clip_grad_norm_then_step(optimizer, dtype, batch):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    net = denseprop.Network([4, 6, 2], "relu", loss="mse", dtype=dtype, seed=2)
    model = torch_twin(torch, net, dtype)
    settings, make = TORCH_OPTIMIZERS[optimizer]
    net.set_optimizer(optimizer, 0.1, weight_decay=0.01, max_grad_norm=0.5, **settings)
    # denseprop decays weights only: PyTorch's parameter groups say the same
    groups = [{"params": [m.weight for m in model[::2]], "weight_decay": 0.01},
              {"params": [m.bias for m in model[::2]], "weight_decay": 0.0}]  # fmt: skip
    torch_optimizer = make(torch, groups)
    norms = []
    for _ in range(4):
        x = 3 * rng.standard_normal((batch, 4)).astype(dtype)
        y = rng.standard_normal((batch, 2)).astype(dtype)
        net.train_step(x, y)
        torch_optimizer.zero_grad()
        out = model(torch.from_numpy(x))  # denseprop's mse: half the squared error, mean
        (0.5 * ((out - torch.from_numpy(y)) ** 2).sum(dim=1).mean()).backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)))
        torch_optimizer.step()
    assert max(norms) > 0.5  # some steps were clipped
    tolerance = TOLERANCES[np.dtype(dtype)]
    for linear, w, b in zip(model[::2], net.weights, net.biases):
        np.testing.assert_allclose(w, linear.weight.detach().numpy(), **tolerance)
        np.testing.assert_allclose(b, linear.bias.detach().numpy(), **tolerance)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_gradient_below_the_bound_is_not_changed(dtype):
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((8, 5)).astype(dtype), rng.integers(0, 3, 8)
    nets = [denseprop.Network([5, 7, 3], "tanh", dtype=dtype, seed=3) for _ in range(2)]
    nets[0].set_optimizer("adam", 0.01)
    nets[1].set_optimizer("adam", 0.01, max_grad_norm=1e6)
    _, grads = nets[0].gradients(x, y)
    assert reference.clip_grad_norm(grads, 1e6)[1] < 1e6
    for net in nets:
        net.train_step(x, y)
    assert nets[0].params.tobytes() == nets[1].params.tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_plain_sgd_clips_instead_of_fusing_its_step(dtype):
    """Plain SGD's fused step never forms dW: with a finite bound it forms it and clips."""
    rng = np.random.default_rng(7)
    x, y = 4 * rng.standard_normal((6, 5)).astype(dtype), rng.integers(0, 3, 6)
    net = denseprop.Network([5, 7, 3], "tanh", dtype=dtype, seed=3)
    net.set_optimizer("sgd", 0.5, weight_decay=0.1, max_grad_norm=0.05)
    params = [(w.copy(), b.copy()) for w, b in zip(net.weights, net.biases)]
    _, grads = reference.network_loss_and_gradients(
        [w for w, _ in params], [b for _, b in params], x, y, net.activations, net.loss
    )
    clipped, norm = reference.clip_grad_norm(grads, 0.05)
    assert norm > 0.05
    reference.sgd_step(params, clipped, None, 0.5, weight_decay=0.1)
    net.train_step(x, y)
    for (w, b), w_net, b_net in zip(params, net.weights, net.biases):
        np.testing.assert_allclose(w_net, w, **TOLERANCES[np.dtype(dtype)])
        np.testing.assert_allclose(b_net, b, **TOLERANCES[np.dtype(dtype)])


def test_fit_takes_max_grad_norm_as_set_optimizer_does(rng):
    x, y = rng.standard_normal((20, 5)), rng.integers(0, 3, 20)
    nets = [denseprop.Network([5, 7, 3], "tanh", dtype=np.float64, seed=4) for _ in range(2)]
    nets[0].fit(x, y, epochs=2, batch_size=6, optimizer="adam", lr=0.05, shuffle=False,
                max_grad_norm=0.1)  # fmt: skip
    assert nets[0].optimizer["max_grad_norm"] == 0.1
    nets[1].set_optimizer("adam", 0.05, max_grad_norm=0.1)
    for _ in range(2):
        nets[1].partial_fit(x, y, batch_size=6, shuffle=False)
    assert nets[0].params.tobytes() == nets[1].params.tobytes()
    assert denseprop.Network([5, 3]).optimizer["max_grad_norm"] == math.inf


def test_dpsgd_refuses_a_bound_on_the_whole_gradient(rng):
    """DP-SGD clips each sample's gradient to clip_norm (Opacus's max_grad_norm): a bound on
    the privatised mean besides it is refused, naming max_grad_norm; the network unchanged."""
    net = denseprop.Network([5, 7, 3], "tanh", seed=4)
    x, y = rng.standard_normal((20, 5)), rng.integers(0, 3, 20)
    before = snapshot(net)
    match = r"^max_grad_norm: dpsgd clips each sample's gradient to clip_norm"
    with pytest.raises(ValueError, match=match):
        net.set_optimizer("dpsgd", 0.1, max_grad_norm=1.0)
    with pytest.raises(ValueError, match=match):
        net.fit(x, y, epochs=1, optimizer="dpsgd", max_grad_norm=1.0)
    assert_unchanged(net, before)
    assert net.optimizer["optimizer"] == "sgd"
    net.set_optimizer("dpsgd", 0.1, max_grad_norm=math.inf)  # no bound: taken
    assert "max_grad_norm" not in denseprop.optimizers()[2]["settings"]


def test_a_clipped_step_that_overflows_is_undone():
    net = denseprop.Network([3, 4, 2], "identity", loss="mse", dtype=np.float32, seed=0)
    net.set_optimizer("sgd", 1e38, max_grad_norm=10.0)
    before = snapshot(net)
    del before["workspace"]  # the first step sizes it
    x, y = np.full((2, 3), 3.0, np.float32), np.full((2, 2), -5.0, np.float32)
    with pytest.raises(FloatingPointError):
        net.train_step(x, y)
    assert_unchanged(net, before)
