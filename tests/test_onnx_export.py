"""ONNX export: the exported graph, run by ONNX Runtime, computes what `forward` (and the
estimators' predict_proba / predict) compute, for every activation ONNX has an op for."""

import sys

import denseprop
import denseprop.reference as ref
import numpy as np
import pytest
from conftest import HIDDEN, TOLERANCES, assert_close, randn
from denseprop import onnx_export

onnx = pytest.importorskip("onnx", reason='onnx is optional: pip install "denseprop[onnx]"')
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is optional")


# Where ONNX Runtime's own float64 kernels fall short of the ONNX ops (the graph is the same
# standard one in both dtypes): no float64 Softplus, nor Erf, which its exact Gelu uses; the
# tanh Gelu computed to about 1e-8 in float64, float32's tolerance.
ORT_FLOAT64 = {"gelu": None, "softplus": None, "gelu_tanh": "float32"}


def run(model, x):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (out,) = session.run(["output"], {"x": x})
    return out


def test_every_activation_has_an_entry():
    """A new activation must say how ONNX writes it, or that it cannot (None)."""
    assert set(onnx_export.ACTIVATIONS) == set(ref.ACTIVATIONS)


@pytest.mark.parametrize("activation", HIDDEN)
@pytest.mark.parametrize("batch", [1, 13])
def test_hidden_and_output_activations_match_forward(tmp_path, rng, dtype, activation, batch):
    if onnx_export.ACTIVATIONS[activation] is None:
        pytest.skip(f"ONNX has no op for {activation}")
    net = denseprop.Network([7, 5, 4, 3], activation, "mse", output_activation=activation,
                            dtype=dtype, seed=0, negative_slope=0.2)  # fmt: skip
    x = randn(rng, dtype, batch, 7)
    path = tmp_path / "net.onnx"
    model = net.to_onnx(path)
    assert path.exists() and onnx.load(path) == model
    if dtype == np.float64 and ORT_FLOAT64.get(activation, "float64") is None:
        pytest.skip(f"onnxruntime has no float64 kernel for the nodes of {activation}")
    out = run(model, x)
    assert out.dtype == dtype and out.shape == (batch, 3)
    tolerance = ORT_FLOAT64.get(activation, dtype) if dtype == np.float64 else dtype
    np.testing.assert_allclose(out, net.forward(x), **TOLERANCES[np.dtype(tolerance)])


@pytest.mark.parametrize("batch", [1, 13])
def test_softmax_probabilities_match_forward(rng, dtype, batch):
    net = denseprop.Network([7, 5, 3], "tanh", dtype=dtype, seed=0)
    x = randn(rng, dtype, batch, 7)
    model = net.to_onnx()
    assert [n.op_type for n in model.graph.node] == ["Gemm", "Tanh", "Gemm", "Softmax"]
    assert model.opset_import[0].version >= 17
    assert_close(run(model, x), net.forward(x), dtype)


def test_the_nodes_are_the_tables_spelling(dtype):
    ops, slopes = {}, {}
    for a in denseprop.activations():
        if a["hidden"]:
            net = denseprop.Network([3, 4, 2], a["name"], "mse", dtype=dtype, negative_slope=0.2)
            model = net.to_onnx()
            types = [n.op_type for n in model.graph.node]
            ops[a["name"]] = types[1 : types.index("Gemm", 1)]  # between the two Gemms
            slopes[a["name"]] = [onnx.numpy_helper.to_array(t) for t in model.graph.initializer
                                 if t.name.startswith("slope")]  # fmt: skip
            assert model.opset_import[0].version == max(17, a["onnx_opset"])
    assert ops["silu"] == ["Sigmoid", "Mul"] and ops["leaky_relu"] == ["PRelu"]
    assert ops["gelu_tanh"] == ["Gelu"] and ops["mish"] == ["Mish"]
    (slope,) = slopes["leaky_relu"]  # a constant of the network's dtype, not a float32 attribute
    assert slope.dtype == dtype and slope == dtype.type(0.2)


def test_an_activation_without_an_op_is_named(monkeypatch):
    monkeypatch.setitem(onnx_export.ACTIVATIONS, "tanh", None)
    net = denseprop.Network([3, 4, 2], "tanh")
    with pytest.raises(ValueError, match=r"activation 'tanh' \(layer 0\) has no ONNX op"):
        net.to_onnx()


def test_without_onnx_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r'pip install "denseprop\[onnx\]"'):
        denseprop.Network([3, 2]).to_onnx()


@pytest.fixture
def data(rng):
    x = rng.standard_normal((60, 6))
    return x, x[:, 0] + 2 * x[:, 1] > 0


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("kind", ["multiclass", "binary", "multilabel"])
def test_classifier_exports_predict_proba(tmp_path, data, kind, dtype):
    pytest.importorskip("sklearn", reason="scikit-learn is optional")
    x, positive = data
    y = {"multiclass": positive.astype(int) + (x[:, 2] > 1),
         "binary": np.where(positive, "yes", "no"),
         "multilabel": np.stack([positive, x[:, 3] > 0], axis=1).astype(int)}[kind]  # fmt: skip
    x = x.astype(dtype)
    model = denseprop.MLPClassifier((5,), max_iter=20, random_state=0, dtype=dtype.name).fit(x, y)
    exported = model.to_onnx(tmp_path / "model.onnx")
    got = run(exported, x[:17])
    assert got.shape == model.predict_proba(x[:17]).shape
    assert_close(got, model.predict_proba(x[:17]), dtype)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("outputs", [1, 2])
def test_regressor_exports_predict(data, outputs, dtype):
    pytest.importorskip("sklearn", reason="scikit-learn is optional")
    x, _ = data
    y = x[:, :outputs] * 3 + 1
    x = x.astype(dtype)
    model = denseprop.MLPRegressor(
        hidden_layer_sizes=(5,), max_iter=20, random_state=0, dtype=dtype.name
    ).fit(x, y.ravel() if outputs == 1 else y)
    got = run(model.to_onnx(), x[:1])
    assert got.shape == model.predict(x[:1]).shape
    assert_close(got, model.predict(x[:1]), dtype)


def test_an_unfitted_estimator_cannot_be_exported():
    sklearn = pytest.importorskip("sklearn", reason="scikit-learn is optional")
    with pytest.raises(sklearn.exceptions.NotFittedError):
        denseprop.MLPRegressor().to_onnx()


def test_a_bf16_network_exports_its_float32_model(rng):
    """compute_dtype="bfloat16" is how the network multiplies, not what it holds: the file
    has its float32 weights and computes the float32 forward."""
    net = denseprop.Network([6, 9, 3], "relu", seed=0, compute_dtype="bfloat16")
    twin = denseprop.Network([6, 9, 3], "relu", seed=0)
    x = rng.standard_normal((5, 6)).astype(np.float32)
    got = run(net.to_onnx(), x)
    assert got.dtype == np.float32
    assert_close(got, twin.forward(x), np.float32)
