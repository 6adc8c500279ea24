"""ONNX export: a `Network`, or a fitted estimator, as a standard ONNX graph.

Each layer is one ``Gemm`` (``x Wᵀ + b``, the weights as stored, ``transB=1``) and its
activation's op; the graph's input ``x`` is ``(batch, inputs)`` and its output ``output``
``(batch, outputs)``, both of the network's dtype (float32 or float64), the batch dimension
free. The opset is 17, or the newest one an activation needs. Needs the onnx package
(``pip install "denseprop[onnx]"``), imported only when a model is exported.

`ACTIVATIONS` says how each activation is written in ONNX, built from the activations' table
(``denseprop.activations()``, "onnx" and "onnx_opset"), where each entry spells its nodes as
one expression of ONNX ops over ``z`` (the layer's input) and ``slope`` (leaky_relu's
negative_slope, a constant of the graph's dtype), attributes by name: ``"Relu(z)"``,
``"Softmax(z, axis=1)"``, ``"Mul(z, Sigmoid(z))"``. An activation without one is refused by
name.
"""

from __future__ import annotations

import ast
import os
from typing import Any, Callable, NamedTuple, Union

import numpy as np
from numpy.typing import NDArray

from ._seam import seam_of
from ._tables import ACTIVATIONS as _TABLE

__all__ = ["ACTIVATIONS", "OPSET", "estimator_to_onnx", "network_to_onnx"]

OPSET = 17  # the oldest opset written: Softmax over one axis, Gemm with an optional bias


class _Graph:
    """Nodes and constants of one graph as they are added; each value gets a fresh name."""

    def __init__(self, onnx: Any, dtype: np.dtype[Any]) -> None:
        self.onnx, self.dtype = onnx, dtype
        self.nodes: list[Any] = []
        self.constants: list[Any] = []
        self.opset = OPSET

    def constant(self, name: str, value: NDArray[Any]) -> str:
        self.constants.append(self.onnx.numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, *inputs: str, **attributes: Any) -> str:
        output = f"{op.lower()}_{len(self.nodes)}"
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), [output], **attributes))
        return output


class Activation(NamedTuple):
    """How an activation is written: ``build(graph, z, negative_slope)`` adds its nodes and
    returns the name of ``a``; ``opset`` is the oldest opset that has them."""

    build: Callable[[_Graph, str, float], str]
    opset: int = OPSET


class _Op(NamedTuple):
    """One node of a spelling: the ONNX op, its inputs (nodes, "z" or "slope"), its attributes."""

    op: str
    inputs: list[_Term]
    attributes: dict[str, Any]


_Term = Union[_Op, str]


def _term(node: ast.expr, spelling: str) -> _Term:
    if isinstance(node, ast.Name) and node.id in ("z", "slope"):
        return node.id
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args:
        inputs = [_term(arg, spelling) for arg in node.args]
        attributes = {str(k.arg): ast.literal_eval(k.value) for k in node.keywords}
        return _Op(node.func.id, inputs, attributes)
    msg = f"ONNX spelling {spelling!r}: expected Op(inputs, attribute=value) over z and slope"
    raise ValueError(msg)


def _activation(spelling: str, opset: int) -> Activation:
    """The entry of an activation whose table spells its ONNX nodes so (see the module's doc)."""
    root = _term(ast.parse(spelling, mode="eval").body, spelling)

    def build(g: _Graph, z: str, slope: float) -> str:
        def value(term: _Term) -> str:
            if isinstance(term, _Op):
                inputs = [value(t) for t in term.inputs]  # their nodes first, in order
                return g.node(term.op, *inputs, **term.attributes)
            if term == "slope":
                return g.constant(f"slope_{len(g.nodes)}", np.array(slope, g.dtype))
            return z

        return value(root)

    return Activation(build, max(opset, OPSET))


# Every activation denseprop has: how ONNX writes it, or None where ONNX has no op for it.
ACTIVATIONS: dict[str, Activation | None] = {
    name: None if a["onnx"] is None else _activation(a["onnx"], a["onnx_opset"])
    for name, a in _TABLE.items()
}


def _onnx() -> Any:
    try:
        import onnx
        import onnx.numpy_helper
    except ImportError as e:
        msg = 'ONNX export needs the onnx package: pip install "denseprop[onnx]"'
        raise ImportError(msg) from e
    return onnx


def _layers(net: Any, graph: _Graph) -> str:
    """The network's layers on the graph's input ``x``; returns the name of their output."""
    a, slope = "x", float(seam_of(net).config["negative_slope"])
    for l, (w, b, name) in enumerate(zip(net.weights, net.biases, net.activations)):
        entry = ACTIVATIONS.get(name)
        if entry is None:
            msg = f"to_onnx: activation {name!r} (layer {l}) has no ONNX op to export it as"
            raise ValueError(msg)
        graph.opset = max(graph.opset, entry.opset)
        z = graph.node("Gemm", a, graph.constant(f"W{l}", w), graph.constant(f"b{l}", b),
                       transB=1)  # fmt: skip
        a = entry.build(graph, z, slope)
    return a


def _write(graph: _Graph, inputs: int, width: int | None, path: Any, name: str) -> Any:
    """The graph as a checked ModelProto, written to ``path`` when given. Its last node's value
    is the graph's output, renamed "output"."""
    onnx = graph.onnx
    graph.nodes[-1].output[0] = "output"
    element = onnx.helper.np_dtype_to_tensor_dtype(graph.dtype)
    shape_out: list[Any] = ["batch"] + ([width] if width is not None else [])
    model = onnx.helper.make_model(
        onnx.helper.make_graph(
            graph.nodes,
            name,
            [onnx.helper.make_tensor_value_info("x", element, ["batch", inputs])],
            [onnx.helper.make_tensor_value_info("output", element, shape_out)],
            graph.constants,
        ),
        opset_imports=[onnx.helper.make_opsetid("", graph.opset)],
        producer_name="denseprop",
    )
    model.ir_version = onnx.helper.find_min_ir_version_for(list(model.opset_import))
    onnx.checker.check_model(model, full_check=True)
    if path is not None:
        onnx.save_model(model, os.fspath(path))
    return model


def network_to_onnx(net: Any, path: str | os.PathLike[str] | None = None) -> Any:
    """``net`` as an ONNX model computing `Network.forward`; see `Network.to_onnx`."""
    onnx = _onnx()
    with seam_of(net).lock:
        graph = _Graph(onnx, net.dtype)
        _layers(net, graph)
        return _write(graph, net.sizes[0], net.sizes[-1], path, "denseprop_network")


def estimator_to_onnx(estimator: Any, path: str | os.PathLike[str] | None = None) -> Any:
    """A fitted MLPClassifier as an ONNX model computing ``predict_proba`` (output
    ``(samples, classes)``), an MLPRegressor computing ``predict`` (``(samples,)`` for one
    output, else ``(samples, outputs)``)."""
    onnx = _onnx()
    net = estimator.network_
    with seam_of(net).lock:
        graph = _Graph(onnx, net.dtype)
        out = _layers(net, graph)
        width: int | None = net.sizes[-1]
        if hasattr(estimator, "classes_") and width == 1:  # binary: predict_proba's 2 columns
            one = graph.constant("one", np.ones((1, 1), net.dtype))
            graph.node("Concat", graph.node("Sub", one, out), out, axis=1)
            width = 2
        elif not hasattr(estimator, "classes_") and estimator.n_outputs_ == 1:
            graph.node("Squeeze", out, graph.constant("axis", np.array([1], np.int64)))
            width = None
        return _write(graph, net.sizes[0], width, path, f"denseprop_{type(estimator).__name__}")
