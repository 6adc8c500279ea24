"""The PyTorch bridge: denseprop.torch's layers give PyTorch's own values and gradients, pass
torch.autograd.gradcheck, and train with a torch optimizer."""

import copy

import denseprop
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is optional")
import denseprop.torch as dpt  # noqa: E402
from conftest import assert_close  # noqa: E402
from torch import nn  # noqa: E402

TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}

ACTIVATION_MODULES = {
    "identity": nn.Identity,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.1),
    "softmax": lambda: nn.Softmax(dim=-1),
    "gelu": nn.GELU,
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
    "silu": nn.SiLU,
    "softplus": nn.Softplus,
    "mish": nn.Mish,
    "exp": dpt.Exp,  # PyTorch has no module for exp: the bridge's own, torch.exp
}


def test_every_activation_of_the_table_has_a_module():
    from conftest import ACTIVATIONS

    assert set(ACTIVATION_MODULES) == set(ACTIVATIONS) == set(dpt.MODULES)
    assert {read(m())[0] for m, read in dpt.ACTIVATIONS.items()} | {"gelu_tanh"} == set(
        ACTIVATIONS
    )


def test_the_modules_are_built_and_read_as_the_table_spells_them():
    for a in denseprop.activations():
        module = dpt.MODULES[a["name"]](0.3)
        assert dpt.ACTIVATIONS[type(module)](module) == (
            a["name"], 0.3 if a["name"] == "leaky_relu" else 0.0
        )  # fmt: skip
        assert a["torch"].startswith(type(module).__name__)
    assert dpt.MODULES["softmax"](0.0).dim == -1
    assert dpt.MODULES["gelu_tanh"](0.0).approximate == "tanh"
    gelu = dpt.ACTIVATIONS[nn.GELU]
    assert gelu(nn.GELU()) == ("gelu", 0.0) and gelu(nn.GELU("tanh")) == ("gelu_tanh", 0.0)
    assert dpt.ACTIVATIONS[nn.Softmax](nn.Softmax(dim=1)) == ("softmax", 0.0)  # dim: Sequential's


def pair(sizes, activation, dtype, last=None):
    """PyTorch's nn.Sequential and denseprop's, with the same initial parameters."""
    torch.manual_seed(0)
    modules = []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        modules.append(nn.Linear(n_in, n_out, dtype=TORCH_DTYPES[dtype]))
        name = activation if i < len(sizes) - 2 else last
        if name is not None:
            modules.append(ACTIVATION_MODULES[name]())
    theirs = nn.Sequential(*modules)
    ours = dpt.Sequential(*copy.deepcopy(modules))
    return theirs, ours


def compare(ours, theirs, dtype):
    for (name, a), (_, b) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert a.grad is not None, name
        assert_close(a.grad.numpy(), b.grad.numpy(), dtype)


def test_the_same_gradients_as_pytorch_for_every_activation(dtype, rng):
    for activation in ACTIVATION_MODULES:
        for batch in (1, 17):
            last = "softmax" if activation == "softmax" else activation
            hidden = "tanh" if activation == "softmax" else activation
            theirs, ours = pair([7, 5, 3, 4], hidden, dtype, last)
            x = torch.from_numpy(rng.standard_normal((batch, 7)).astype(dtype))
            xs = [x.clone().requires_grad_(True) for _ in range(2)]
            weight = torch.from_numpy(rng.standard_normal((batch, 4)).astype(dtype))
            outs = [model(v) for model, v in zip((ours, theirs), xs)]
            assert_close(outs[0].detach().numpy(), outs[1].detach().numpy(), dtype)
            for out in outs:
                (out * weight).sum().backward()
            compare(ours, theirs, dtype)
            assert_close(xs[0].grad.numpy(), xs[1].grad.numpy(), dtype)


def test_gradcheck_in_float64():
    torch.manual_seed(0)
    x = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, requires_grad=True)
    for activation in ACTIVATION_MODULES:
        assert torch.autograd.gradcheck(
            lambda x, w, b, a=activation: dpt.dense(x, w, b, a, negative_slope=0.3), (x, w, b)
        )
    model = dpt.Sequential(nn.Linear(5, 4, dtype=torch.float64), nn.Tanh(),
                           nn.Linear(4, 3, dtype=torch.float64), nn.Softmax(dim=-1))  # fmt: skip
    assert torch.autograd.gradcheck(model, (x,))
    assert torch.autograd.gradcheck(lambda x, w: dpt.dense(x, w, None, "sigmoid"), (x, w))


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_torch_optimizer_trains_it_as_pytorch(dtype, rng, optimizer):
    theirs, ours = pair([9, 6, 3], "relu", dtype)
    make = {"sgd": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
            "adam": lambda p: torch.optim.Adam(p, lr=0.01)}[optimizer]  # fmt: skip
    optimizers = [make(m.parameters()) for m in (ours, theirs)]
    x = torch.from_numpy(rng.standard_normal((11, 9)).astype(dtype))
    y = torch.from_numpy(rng.integers(0, 3, 11))
    for _ in range(5):
        for model, opt in zip((ours, theirs), optimizers):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert_close(a.detach().numpy(), b.detach().numpy(), dtype)


def test_state_dicts_move_between_the_two(dtype):
    theirs, ours = pair([4, 3, 2], "sigmoid", dtype)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    fresh = dpt.Sequential(nn.Linear(4, 3, dtype=TORCH_DTYPES[dtype]), nn.Sigmoid(),
                           nn.Linear(3, 2, dtype=TORCH_DTYPES[dtype]))  # fmt: skip
    fresh.load_state_dict(theirs.state_dict())
    x = torch.ones(2, 4, dtype=TORCH_DTYPES[dtype])
    assert_close(fresh(x).detach().numpy(), theirs(x).detach().numpy(), dtype)


def test_inputs_of_any_leading_shape_and_without_grad(dtype):
    theirs, ours = pair([4, 3], None, dtype, last="tanh")
    x = torch.randn(2, 5, 4, dtype=TORCH_DTYPES[dtype])
    assert_close(ours(x).detach().numpy(), theirs(x).detach().numpy(), dtype)
    assert_close(ours(x[0, 0]).detach().numpy(), theirs(x[0, 0]).detach().numpy(), dtype)
    with torch.no_grad():
        assert not ours(x).requires_grad


def test_strided_input_and_gradient():
    theirs, ours = pair([4, 3], None, np.dtype(np.float64), last="sigmoid")
    x = torch.randn(4, 6, dtype=torch.float64)[:, ::2].T.requires_grad_(True)  # (3, 4) strided
    ours(x).sum().backward()  # sum's gradient is an expanded, stride-0 tensor
    grad = x.grad.clone()
    x.grad = None
    theirs(x).sum().backward()
    assert_close(grad.numpy(), x.grad.numpy(), np.float64)


@pytest.mark.parametrize(
    ("modules", "error", "match"),
    [
        ([nn.Dropout(), nn.Linear(3, 2)], TypeError, r"module 0 \(Dropout\) must follow a Linear"),
        ([nn.Linear(3, 2), nn.Dropout(), nn.Dropout()], TypeError, r"module 2 \(Dropout\)"),
        ([nn.Linear(3, 2), nn.Dropout(), nn.ReLU()], TypeError, r"module 2 \(ReLU\) is an act"),
        ([nn.ReLU(), nn.Linear(3, 2)], TypeError, r"module 0 \(ReLU\) is an activation that"),
        ([nn.Linear(3, 2), nn.ReLU(), nn.Tanh()], TypeError, r"module 2 \(Tanh\)"),
        ([nn.Linear(3, 2), nn.Softmax(dim=0)], ValueError, r"dim=-1, got dim=0"),
        (
            [nn.Linear(3, 2), nn.Softplus(beta=2)],
            ValueError,
            r"^Softplus\(beta=2\): denseprop's softplus has beta=1$",
        ),
        ([], ValueError, "needs at least one nn.Linear"),
    ],
    ids=["leading dropout", "two dropouts", "activation after dropout", "leading activation",
         "two activations", "softmax dim", "beta", "empty"],
)
def test_modules_it_cannot_run_are_refused(modules, error, match):
    with pytest.raises(error, match=match):
        dpt.Sequential(*modules)


def test_mixed_dtypes_are_a_type_error():
    model = dpt.Sequential(nn.Linear(3, 2))
    with pytest.raises(TypeError, match=r"\bw\b.*float32.*float64"):
        model(torch.ones(1, 3, dtype=torch.float64))


def test_from_network_shares_the_parameters(dtype, rng):
    import denseprop

    net = denseprop.Network([6, 5, 4, 3], ["leaky_relu", "sigmoid"], dtype=dtype, seed=0,
                            negative_slope=0.2)  # fmt: skip
    model = dpt.from_network(net)
    assert [type(m) for m in model] == [nn.Linear, nn.LeakyReLU, nn.Linear, nn.Sigmoid,
                                        nn.Linear, nn.Softmax]  # fmt: skip
    assert model[0].weight.data_ptr() == net.weights[0].ctypes.data
    x = torch.from_numpy(rng.standard_normal((9, 6)).astype(dtype))
    y = torch.from_numpy(rng.integers(0, 3, 9))
    assert_close(model(x).detach().numpy(), net.forward(x), dtype)
    net.set_optimizer("sgd", 0.1).train_step(x, y)  # one C++ step moves the torch Parameters
    assert_close(model(x).detach().numpy(), net.forward(x), dtype)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    nn.functional.nll_loss(torch.log(model(x)), y).backward()
    optimizer.step()  # and a torch step moves the network's
    assert_close(net.weights[2], model[4].weight.detach().numpy(), dtype)
    assert_close(model(x).detach().numpy(), net.forward(x), dtype)


def test_tensors_off_the_cpu_are_a_type_error_naming_them():
    model = dpt.Sequential(nn.Linear(3, 2))
    with pytest.raises(TypeError, match=r"\bx\b: denseprop runs on the CPU, got a tensor on meta"):
        model(torch.ones(1, 3, device="meta"))
