"""Every optimizer of the table against its NumPy twin (`reference.OPTIMIZER_STEPS`), each
setting it reads away from its default: an optimizer added to optimizers.hpp with its twin is
tested here without a line of its own. (DP-SGD, per-sample, is tested in test_dpsgd.py.)"""

import denseprop
import numpy as np
import pytest
from conftest import TOLERANCES
from denseprop import reference
from denseprop._tables import OPTIMIZER_SETTINGS, OPTIMIZERS

# A value inside each setting's range other than its default; a setting added later is tested
# at its default until it gets one here.
# (max_grad_norm: small enough that every step below is clipped.)
AWAY_FROM_DEFAULT = {"lr": 0.05, "weight_decay": 0.01, "momentum": 0.9, "nesterov": True,
                     "beta1": 0.8, "beta2": 0.95, "eps": 1e-6, "alpha": 0.9,
                     "max_grad_norm": 0.05}  # fmt: skip
BATCHED = [name for name, o in OPTIMIZERS.items() if not o["per_sample"]]


def test_every_batched_optimizer_has_a_twin():
    assert set(BATCHED) == set(reference.OPTIMIZER_STEPS)


def test_every_setting_has_a_default_in_its_range():
    for name, s in OPTIMIZER_SETTINGS.items():
        if s["flag"]:
            assert isinstance(s["default"], bool), name
            continue
        low_ok = s["default"] > s["low"] if s["low_open"] else s["default"] >= s["low"]
        assert low_ok and s["default"] <= s["high"] and s["help"], name


def test_every_batched_optimizer_reads_max_grad_norm():
    assert all("max_grad_norm" in OPTIMIZERS[name]["settings"] for name in BATCHED)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("optimizer", BATCHED)
def test_three_steps_equal_the_twin(optimizer, dtype):
    rng = np.random.default_rng(3)
    sizes, batch = [5, 7, 3], 9
    net = denseprop.Network(sizes, "tanh", dtype=dtype, seed=1)
    read = OPTIMIZERS[optimizer]["settings"]
    settings = {k: AWAY_FROM_DEFAULT.get(k, OPTIMIZER_SETTINGS[k]["default"]) for k in read}
    net.set_optimizer(optimizer, **settings)
    params = [(w.copy(), b.copy()) for w, b in zip(net.weights, net.biases)]
    state = tuple([(np.zeros_like(w), np.zeros_like(b)) for w, b in params] for _ in range(2))
    for t in range(1, 4):
        x = rng.standard_normal((batch, sizes[0])).astype(dtype)
        y = rng.integers(0, sizes[-1], batch)
        net.train_step(x, y)
        _, grads = reference.network_loss_and_gradients(
            [w for w, _ in params], [b for _, b in params], x, y, net.activations, net.loss
        )
        if "max_grad_norm" in settings:
            assert reference.clip_grad_norm(grads, settings["max_grad_norm"])[1] > 0.05
        reference.OPTIMIZER_STEPS[optimizer](params, grads, state, t, **settings)
    tolerance = TOLERANCES[np.dtype(dtype)]
    for (w, b), w_net, b_net in zip(params, net.weights, net.biases):
        np.testing.assert_allclose(w_net, w, **tolerance)
        np.testing.assert_allclose(b_net, b, **tolerance)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rmsprop_steps_as_torch_does(dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    net = denseprop.Network([4, 6, 2], "relu", loss="mse", dtype=dtype, seed=2)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 2))
    model = model.to(torch.float32 if dtype == np.float32 else torch.float64)
    with torch.no_grad():
        for linear, w, b in zip(model[::2], net.weights, net.biases):
            linear.weight.copy_(torch.from_numpy(w))
            linear.bias.copy_(torch.from_numpy(b))
    settings = {"lr": 0.02, "alpha": 0.9, "eps": 1e-6}
    net.set_optimizer("rmsprop", weight_decay=0.01, **settings)
    # denseprop decays weights only: PyTorch's parameter groups say the same
    groups = [{"params": [m.weight for m in model[::2]], "weight_decay": 0.01},
              {"params": [m.bias for m in model[::2]], "weight_decay": 0.0}]  # fmt: skip
    torch_optimizer = torch.optim.RMSprop(groups, **settings)
    for _ in range(3):
        x, y = rng.standard_normal((5, 4)).astype(dtype), rng.standard_normal((5, 2)).astype(dtype)
        net.train_step(x, y)
        torch_optimizer.zero_grad()
        # denseprop's mse is half the squared error, averaged over the batch
        out = model(torch.from_numpy(x))
        (0.5 * ((out - torch.from_numpy(y)) ** 2).sum(dim=1).mean()).backward()
        torch_optimizer.step()
    tolerance = TOLERANCES[np.dtype(dtype)]
    for linear, w, b in zip(model[::2], net.weights, net.biases):
        np.testing.assert_allclose(w, linear.weight.detach().numpy(), **tolerance)
        np.testing.assert_allclose(b, linear.bias.detach().numpy(), **tolerance)


def test_each_optimizer_lists_the_settings_it_reads_once():
    reads = {name: o["settings"] for name, o in OPTIMIZERS.items()}
    assert reads["sgd"] == ["lr", "weight_decay", "max_grad_norm", "momentum", "nesterov"]
    assert reads["dpsgd"] == ["lr", "weight_decay", "clip_norm", "noise_multiplier"]
    for name, settings in reads.items():
        assert len(set(settings)) == len(settings), name
        assert set(settings) <= set(OPTIMIZER_SETTINGS), name
