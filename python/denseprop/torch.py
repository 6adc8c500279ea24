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

import ast
from typing import Any, Callable, NamedTuple

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


_SLOPE = object()  # `slope` in a spelling: the activation's negative_slope
_AXIS = "dim"  # built with, not read: Sequential checks the axis against the input's shape


class _Row(NamedTuple):
    """One activation's PyTorch module, from the table's ``torch`` spelling,
    ``"Class(attribute=value, ...)"`` (see `denseprop.activations`)."""

    name: str
    module: type[nn.Module]
    attributes: dict[str, Any]  # literals, or _SLOPE


def _row(name: str, spelling: str) -> _Row:
    node = ast.parse(spelling, mode="eval").body
    call = node if isinstance(node, ast.Call) else ast.Call(node, [], [])
    module = None
    if isinstance(call.func, ast.Name) and not call.args:  # torch.nn's class, or ours (Exp)
        module = getattr(nn, call.func.id, None)
        if module is None:
            module = globals().get(call.func.id)
    # found (its being an nn.Module class is tested: the docs build reads this over a mock)
    if not callable(module):
        msg = f"{name}: torch module {spelling!r} is not 'Class(attribute=value, ...)'"
        raise ValueError(msg)
    attributes = {
        str(k.arg): _SLOPE if isinstance(k.value, ast.Name) and k.value.id == "slope"
        else ast.literal_eval(k.value)
        for k in call.keywords
    }  # fmt: skip
    return _Row(name, module, attributes)


def _reader(rows: list[_Row]) -> Callable[[Any], tuple[str, float]]:
    """Reads a module of one class as the row whose attributes it has, the row naming the most
    attributes first; a module that has no row's attributes is refused, naming them."""
    rows = sorted(rows, key=lambda row: -len(row.attributes))

    def read(m: Any) -> tuple[str, float]:
        for row in rows:
            checked = {k: v for k, v in row.attributes.items() if k != _AXIS}
            if all(v is _SLOPE or getattr(m, k) == v for k, v in checked.items()):
                slopes = [float(getattr(m, k)) for k, v in checked.items() if v is _SLOPE]
                return row.name, slopes[0] if slopes else 0.0
        row = rows[-1]
        wrong = [k for k, v in row.attributes.items() if v is not _SLOPE and k != _AXIS]
        have = ", ".join(f"{k}={getattr(m, k)!r}" for k in wrong)
        want = ", ".join(f"{k}={row.attributes[k]!r}" for k in wrong)
        msg = f"{type(m).__name__}({have}): denseprop's {row.name} has {want}"
        raise ValueError(msg)

    return read


def _builder(row: _Row) -> Callable[[float], nn.Module]:
    def build(slope: float) -> nn.Module:
        values = {k: slope if v is _SLOPE else v for k, v in row.attributes.items()}
        module: nn.Module = row.module(**values)
        return module

    return build


_ROWS = [_row(name, a["torch"]) for name, a in _TABLE.items() if a["torch"]]
# Each activation module the bridge runs -> (denseprop's name, negative_slope), read from it as
# the table spells it: GELU(approximate='tanh') is gelu_tanh, any other GELU gelu; a Softplus
# whose beta is not 1 is refused.
ACTIVATIONS: dict[type[nn.Module], Callable[[Any], tuple[str, float]]] = {
    module: _reader([row for row in _ROWS if row.module is module])
    for module in dict.fromkeys(row.module for row in _ROWS)
}
# And back, for `from_network`: denseprop's name -> the module, given negative_slope.
MODULES: dict[str, Callable[[float], nn.Module]] = {row.name: _builder(row) for row in _ROWS}

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

    Each ``nn.Linear`` may be followed by one of the activation modules in `ACTIVATIONS`, the
    modules the activations' table names (``denseprop.activations()``, "torch": ReLU, GELU,
    Softplus with beta 1, Softmax over the last dimension, this module's `Exp`, ...); a Linear
    followed by another Linear has none. Then an ``nn.Dropout`` may follow: the layers between
    two dropouts run as one denseprop stack, and each dropout is PyTorch's own (its masks, its
    ``train()``/``eval()``). The modules and their Parameters are PyTorch's own.
    Input ``(*, in_features)`` -> ``(*, out_features)``, as ``nn.Linear``.
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._cache: tuple[tuple[nn.Module, ...], Any] | None = None
        self._plan()

    def _plan(self) -> tuple[list[nn.Linear], list[tuple[str, nn.Module | None]],
                             list[nn.Dropout | None]]:  # fmt: skip
        """The Linear layers and, for each, its activation's name and module (None for
        identity) and the dropout after it (or None); refuses any other module. Kept until the
        modules change."""
        modules = tuple(self._modules.values())
        if self._cache is not None and self._cache[0] == modules:
            plan: Any = self._cache[1]
            return plan  # type: ignore[no-any-return]
        linears: list[nn.Linear] = []
        activations: list[tuple[str, nn.Module | None]] = []
        drops: list[nn.Dropout | None] = []
        for i, m in enumerate(modules):
            if isinstance(m, nn.Linear):
                linears.append(m)
                activations.append(("identity", None))
                drops.append(None)
                continue
            if isinstance(m, nn.Dropout):
                if not linears or drops[-1] is not None:
                    msg = f"Sequential: module {i} (Dropout) must follow a Linear layer (or its "
                    msg += "activation)"
                    raise TypeError(msg)
                drops[-1] = m
                continue
            read = ACTIVATIONS.get(type(m))
            if read is None or not linears or activations[-1][1] is not None or drops[-1]:
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
        self._cache = (modules, (linears, activations, drops))
        return linears, activations, drops

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        linears, activations, drops = self._plan()
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
        if x.dim() == 0:
            msg = "x: expected (*, in_features), got a 0-D tensor"
            raise ValueError(msg)
        out = x.reshape(-1, x.shape[-1]) if x.dim() != 2 else x
        first = 0
        for l, drop in enumerate(drops):  # one denseprop stack between two dropouts
            if drop is None and l < len(drops) - 1:
                continue
            out = _DenseStack.apply(out, tuple(layers[first : l + 1]),
                                    *params[2 * first : 2 * (l + 1)])  # fmt: skip
            if drop is not None:
                out = drop(out)
            first = l + 1
        return out if x.dim() == 2 else out.reshape(*x.shape[:-1], out.shape[-1])


def from_network(net: Network) -> Sequential:
    """A `Sequential` computing ``net.forward`` over the network's own parameters (its
    ``eval()`` does; a network with dropout gets an ``nn.Dropout`` after each such hidden
    layer, PyTorch's own in ``train()``): its Parameters are views of the C++ buffer, no copy.
    A torch optimizer trains it through the bridge, or ``net.train_step(x, y)`` takes a whole
    step in one C++ call with the network's loss and optimizer (reading the tensors in place);
    either changes the same weights.
    """
    config = seam_of(net).config
    slope = float(config["negative_slope"])
    modules: list[nn.Module] = []
    dropouts = [*config["dropout"], 0.0]  # the hidden layers', then the output layer's none
    for w, b, name, p in zip(net.weights, net.biases, net.activations, dropouts):
        linear = nn.Linear(w.shape[1], w.shape[0], device="meta")  # no storage of its own
        linear.weight = nn.Parameter(torch.from_numpy(w))
        linear.bias = nn.Parameter(torch.from_numpy(b))
        modules += [linear] if name == "identity" else [linear, MODULES[name](slope)]
        modules += [nn.Dropout(p)] if p else []
    return Sequential(*modules)
