"""PyTorch bridge: dense layers whose forward and backward run in denseprop's kernels.

    import denseprop.torch as dpt
    from torch import nn

    model = dpt.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    optimizer = torch.optim.Adam(model.parameters())
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()

`Sequential` is an ``nn.Sequential`` of ``nn.Linear`` layers, each followed by at most one
activation module: the same modules, Parameters and ``state_dict`` as PyTorch's, so any torch
optimizer steps them and a model moves between the two classes with ``load_state_dict``. Its
forward pass is one autograd node whose forward and backward call `dense_forward` and
`dense_backward` layer by layer, reading and writing the tensors' memory without copies.
`dense` is the same node for one layer. A step through it costs about what PyTorch eager's
costs (the autograd engine, the loss and the optimizer stay PyTorch's); for speed on small
networks, `from_network` shares a `Network`'s parameters with torch, whose ``train_step`` takes
the whole step in one C++ call (bench/bench_torch_bridge.py).

CPU tensors of float32 or float64 only, the same dtype for the input and the parameters.
Importing this module imports torch; ``import denseprop`` does not.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from . import _core
from ._seam import seam_of
from ._tables import ACTIVATIONS as _TABLE
from .network import Network

__all__ = ["ACTIVATIONS", "MODULES", "Exp", "Sequential", "dense", "from_network"]


class Exp(nn.Module):
    """``torch.exp`` as a module, which PyTorch does not have: denseprop's "exp", the output of a
    network with the poisson loss (the inverse of its log link)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(x)


def _softplus(m: Any) -> tuple[str, float]:
    if m.beta != 1:
        msg = f"Softplus(beta={m.beta}): denseprop's softplus has beta=1"
        raise ValueError(msg)
    return "softplus", 0.0


# Each activation module the bridge runs -> (denseprop's name, negative_slope), read from it.
ACTIVATIONS: dict[type[nn.Module], Callable[[Any], tuple[str, float]]] = {
    nn.Identity: lambda m: ("identity", 0.0),
    nn.Sigmoid: lambda m: ("sigmoid", 0.0),
    nn.Tanh: lambda m: ("tanh", 0.0),
    nn.ReLU: lambda m: ("relu", 0.0),
    nn.LeakyReLU: lambda m: ("leaky_relu", float(m.negative_slope)),
    nn.Softmax: lambda m: ("softmax", 0.0),  # over the features: Sequential checks dim
    nn.GELU: lambda m: ("gelu_tanh" if m.approximate == "tanh" else "gelu", 0.0),
    nn.SiLU: lambda m: ("silu", 0.0),
    nn.Softplus: _softplus,  # exact, where PyTorch's is x above its threshold (20)
    Exp: lambda m: ("exp", 0.0),
}
# And back, for `from_network`: denseprop's name -> the module, given negative_slope.
MODULES: dict[str, Callable[[float], nn.Module]] = {
    "identity": lambda s: nn.Identity(),
    "sigmoid": lambda s: nn.Sigmoid(),
    "tanh": lambda s: nn.Tanh(),
    "relu": lambda s: nn.ReLU(),
    "leaky_relu": nn.LeakyReLU,
    "softmax": lambda s: nn.Softmax(dim=-1),
    "gelu": lambda s: nn.GELU(),
    "gelu_tanh": lambda s: nn.GELU(approximate="tanh"),
    "silu": lambda s: nn.SiLU(),
    "softplus": lambda s: nn.Softplus(),
    "exp": lambda s: Exp(),
}

_Layers = tuple[tuple[str, float, bool], ...]  # per layer: activation, negative_slope, has bias


def _array(t: torch.Tensor) -> np.ndarray[Any, Any]:
    """The tensor's memory as an ndarray (the kernels copy it only if it is strided)."""
    a: np.ndarray[Any, Any] = t.detach().numpy()
    return a


class _DenseStack(torch.autograd.Function):
    """``a[l+1] = act_l(a[l] W[l]ᵀ + b[l])`` for every layer, as one autograd node.

    Inputs ``(x, layers, W0, b0, W1, b1, ...)`` (``b[l]`` None for a layer without bias).
    Backward runs `dense_backward` from the last layer to the first on NumPy views of ``x``,
    the weights and every layer's output, kept from the forward pass; ``x``, the weights and
    the output are also saved as tensors, so that autograd refuses a backward after any of
    them was changed in place.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, layers: _Layers, *params: Any) -> torch.Tensor:
        a = _array(x)
        arrays, weights, zs = [a], [], []
        for l, (activation, slope, _) in enumerate(layers):
            w, b = _array(params[2 * l]), params[2 * l + 1]
            bias = np.zeros(w.shape[0], a.dtype) if b is None else _array(b)
            z = None
            if _TABLE[activation]["needs_z"]:  # its backward reads z: keep it
                z = _core.dense_forward(a, w, bias)
                a = _core.activation_forward(z, activation, negative_slope=slope)
            else:
                a = _core.dense_forward(a, w, bias, activation, negative_slope=slope)
            arrays.append(a)
            weights.append(w)
            zs.append(z)
        out = torch.from_numpy(a)
        ctx.layers, ctx.arrays, ctx.weights, ctx.zs = layers, arrays, weights, zs
        ctx.save_for_backward(x, *params[0::2], out)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable  # type: ignore[untyped-decorator]
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        ctx.saved_tensors  # noqa: B018 (raises if x, a weight or the output changed in place)
        layers: _Layers = ctx.layers
        arrays, weights = ctx.arrays, ctx.weights
        needs = ctx.needs_input_grad
        grads: list[Any] = [None] * (2 * len(layers))
        g: Any = _array(grad)
        for l in reversed(range(len(layers))):
            activation, slope, has_bias = layers[l]
            g_x, g_w, g_b = _core.dense_backward(arrays[l], weights[l], arrays[l + 1], g,
                                                 activation, l > 0 or needs[0], z=ctx.zs[l],
                                                 negative_slope=slope)  # fmt: skip
            grads[2 * l] = torch.from_numpy(g_w) if needs[2 + 2 * l] else None
            grads[2 * l + 1] = torch.from_numpy(g_b) if has_bias and needs[3 + 2 * l] else None
            g = g_x
        return (torch.from_numpy(g) if needs[0] else None, None, *grads)


def _check(x: torch.Tensor, params: list[Any]) -> None:
    for name, t in [("x", x), *((f"parameter {i}", p) for i, p in enumerate(params))]:
        if t is not None and not t.is_cpu:
            msg = f"{name}: denseprop runs on the CPU, got a tensor on {t.device}"
            raise TypeError(msg)


def dense(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
          activation: str = "identity", negative_slope: float = 0.01) -> torch.Tensor:  # fmt: skip
    """``activation(x @ weight.T + bias)`` with denseprop's kernels, differentiable.

    ``x: (batch, in)``, ``weight: (out, in)``, ``bias: (out,)`` or None -> ``(batch, out)``.
    """
    _check(x, [weight, bias])
    layers = ((activation, float(negative_slope), bias is not None),)
    out: torch.Tensor = _DenseStack.apply(x, layers, weight, bias)
    return out


class Sequential(nn.Sequential):
    """``nn.Sequential(nn.Linear, activation, nn.Linear, ...)`` run by denseprop.

    Each ``nn.Linear`` may be followed by one of the activation modules in `ACTIVATIONS`
    (Identity, Sigmoid, Tanh, ReLU, LeakyReLU, Softmax over the last dimension, GELU, SiLU,
    Softplus with beta 1, and this module's `Exp`); a Linear
    followed by another Linear has none. The modules and their Parameters are PyTorch's own.
    Input ``(*, in_features)`` -> ``(*, out_features)``, as ``nn.Linear``.
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._cache: tuple[tuple[nn.Module, ...], Any] | None = None
        self._plan()

    def _plan(self) -> tuple[list[nn.Linear], list[tuple[str, nn.Module | None]]]:
        """The Linear layers and, for each, its activation's name and module (None for
        identity); refuses any other module. Kept until the modules change."""
        modules = tuple(self._modules.values())
        if self._cache is not None and self._cache[0] == modules:
            plan: Any = self._cache[1]
            return plan  # type: ignore[no-any-return]
        linears: list[nn.Linear] = []
        activations: list[tuple[str, nn.Module | None]] = []
        for i, m in enumerate(modules):
            if isinstance(m, nn.Linear):
                linears.append(m)
                activations.append(("identity", None))
                continue
            read = ACTIVATIONS.get(type(m))
            if read is None or not linears or activations[-1][1] is not None:
                what = "not a Linear layer or an activation denseprop runs" if read is None \
                    else "an activation that does not follow a Linear layer"  # fmt: skip
                msg = f"Sequential: module {i} ({type(m).__name__}) is {what}"
                raise TypeError(msg)
            if isinstance(m, nn.Softmax) and m.dim not in (-1, 1):
                msg = f"Sequential: module {i} (Softmax) must be over dim=-1, got dim={m.dim}"
                raise ValueError(msg)
            activations[-1] = (read(m)[0], m)
        if not linears:
            msg = "Sequential: needs at least one nn.Linear"
            raise ValueError(msg)
        self._cache = (modules, (linears, activations))
        return linears, activations

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        linears, activations = self._plan()
        params: list[Any] = []
        layers = []
        for linear, (name, module) in zip(linears, activations):
            if isinstance(module, nn.Softmax) and module.dim == 1 and x.dim() != 2:
                msg = f"Softmax(dim=1) on a {x.dim()}-D input: use dim=-1"
                raise ValueError(msg)
            slope = ACTIVATIONS[type(module)](module)[1] if module is not None else 0.0
            weight, bias = linear._parameters["weight"], linear._parameters["bias"]
            layers.append((name, slope, bias is not None))
            params += (weight, bias)
        _check(x, params)
        if x.dim() == 2:
            out: torch.Tensor = _DenseStack.apply(x, tuple(layers), *params)
            return out
        if x.dim() == 0:
            msg = "x: expected (*, in_features), got a 0-D tensor"
            raise ValueError(msg)
        out = _DenseStack.apply(x.reshape(-1, x.shape[-1]), tuple(layers), *params)
        return out.reshape(*x.shape[:-1], out.shape[-1])


def from_network(net: Network) -> Sequential:
    """A `Sequential` computing ``net.forward`` over the network's own parameters: its
    Parameters are views of the C++ buffer, no copy. A torch optimizer trains it through the
    bridge, or ``net.train_step(x, y)`` takes a whole step in one C++ call with the network's
    loss and optimizer (reading the tensors in place); either changes the same weights.
    """
    slope = float(seam_of(net).config["negative_slope"])
    modules: list[nn.Module] = []
    for w, b, name in zip(net.weights, net.biases, net.activations):
        linear = nn.Linear(w.shape[1], w.shape[0], device="meta")  # no storage of its own
        linear.weight = nn.Parameter(torch.from_numpy(w))
        linear.bias = nn.Parameter(torch.from_numpy(b))
        modules += [linear] if name == "identity" else [linear, MODULES[name](slope)]
    return Sequential(*modules)
