"""Dropout: a training step equals its NumPy twin over the twin's masks (reference.dropout_mask),
the evaluation model is the network without dropout, the masks drop the fraction asked for and
scale the rest by 1/(1 - p), the same for any thread count and seed, different per step, layer
and MPI stream; the file, the exports, the bridge and the bad values."""

import pickle

import denseprop
import denseprop.reference as ref
import numpy as np
import pytest
from conftest import TOLERANCES, assert_close

SIZES = [5, 9, 7, 3]
P = [0.3, 0.5]


def network(dtype, p=P, seed=4, **kwargs):
    return denseprop.Network(SIZES, "tanh", dtype=dtype, seed=seed, dropout=p, **kwargs)


def masks(net, batch, step, stream=0):
    seed, dtype = net._core.dropout_seed, net.dtype
    return [ref.dropout_mask(p, (batch, n), seed, step, l, stream, dtype) if p else None
            for l, (p, n) in enumerate(zip(net._core.dropout[:-1], SIZES[1:-1]))] + [None]


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "dpsgd"])
@pytest.mark.parametrize("batch", [1, 6, 13])
def test_training_steps_equal_the_twin_over_its_masks(rng, dtype, optimizer, batch):
    net = network(dtype)
    settings = {"clip_norm": 0.5, "noise_multiplier": 0.0} if optimizer == "dpsgd" else {}
    net.set_optimizer(optimizer, 0.1, **settings)
    params = [(w.copy(), b.copy()) for w, b in zip(net.weights, net.biases)]
    state = tuple([(np.zeros_like(w), np.zeros_like(b)) for w, b in params] for _ in range(2))
    tol = TOLERANCES[np.dtype(dtype)]
    for step in range(3):
        x = rng.standard_normal((batch, SIZES[0])).astype(dtype)
        y = rng.integers(0, SIZES[-1], batch)
        m = masks(net, batch, step)
        weights, biases = [w for w, _ in params], [b for _, b in params]
        if optimizer == "dpsgd":  # each sample's gradient, over its own row of the masks
            per = [ref.network_loss_and_gradients(weights, biases, x[i : i + 1], y[i : i + 1],
                                                  net.activations, net.loss, reduction="sum",
                                                  masks=[None if k is None else k[i : i + 1]
                                                         for k in m])
                   for i in range(batch)]  # fmt: skip
            loss = sum(v for v, _ in per) / batch
            stacked = [(np.stack([g[l][0] for _, g in per]), np.stack([g[l][1] for _, g in per]))
                       for l in range(len(params))]  # fmt: skip
            noise = [(np.zeros_like(w), np.zeros_like(b)) for w, b in params]
            ref.dpsgd_step(params, stacked, noise, 0.1, 0.5, 0.0)
        else:
            loss, grads = ref.network_loss_and_gradients(weights, biases, x, y, net.activations,
                                                         net.loss, masks=m)  # fmt: skip
            ref.OPTIMIZER_STEPS[optimizer](params, grads, state, step + 1, lr=0.1)
        np.testing.assert_allclose(net.train_step(x, y), loss, **tol)
        for (w, b), w_net, b_net in zip(params, net.weights, net.biases):
            assert_close(w_net, w, dtype)
            assert_close(b_net, b, dtype)


def test_the_evaluation_model_has_no_dropout(rng, dtype):
    dropping, plain = network(dtype), network(dtype, p=0.0)
    dropping.train_step(rng.standard_normal((4, 5)).astype(dtype), rng.integers(0, 3, 4))
    plain.params[...] = dropping.params
    x, y = rng.standard_normal((10, 5)).astype(dtype), rng.integers(0, 3, 10)
    np.testing.assert_array_equal(dropping.forward(x), plain.forward(x))
    np.testing.assert_array_equal(dropping.predict(x), plain.predict(x))
    assert dropping.score(x, y) == plain.score(x, y)
    for (gw, gb), (pw, pb) in zip(dropping.gradients(x, y)[1], plain.gradients(x, y)[1]):
        np.testing.assert_array_equal(gw, pw)
        np.testing.assert_array_equal(gb, pb)
    np.testing.assert_array_equal(dropping.per_sample_gradient_norms(x, y),
                                  plain.per_sample_gradient_norms(x, y))  # fmt: skip
    np.testing.assert_array_equal(dropping.jacobian(x), plain.jacobian(x))


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_the_masks_drop_p_and_scale_the_rest(p):
    mask = ref.dropout_mask(p, (400, 250), seed=12, step=3, layer=1)
    dropped = (mask == 0).mean()
    sigma = np.sqrt(p * (1 - p) / mask.size)
    assert abs(dropped - p) < 5 * sigma
    np.testing.assert_array_equal(np.unique(mask), [0.0, 1 / (1 - p)])


def test_one_layers_mask_scales_its_kept_units_by_one_over_one_minus_p(rng):
    """A network whose first hidden layer drops: its second layer reads A[1] ⊙ mask; with the
    mask known, the step's loss is the twin's, and every kept value is scaled by 1/(1 - p)."""
    net = denseprop.Network([3, 8, 2], "identity", loss="mse", dtype="float64", seed=0,
                            dropout=0.25)  # fmt: skip
    x, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    mask = ref.dropout_mask(0.25, (5, 8), net._core.dropout_seed, 0, 0)
    a = x @ net.weights[0].T + net.biases[0]
    out = (a * mask) @ net.weights[1].T + net.biases[1]
    expected = 0.5 * ((out - y) ** 2).sum(axis=1).mean()
    np.testing.assert_allclose(net.train_step(x, y), expected, rtol=1e-14)
    assert set(np.unique(mask)) == {0.0, 4 / 3}


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_the_masks_are_the_twins_for_any_thread_count(rng, restore_threads, threads):
    """Products large enough to be split over the threads: the step's masks are drawn in one
    sequence whatever the split, so every thread count takes the twin's masks (a mask that
    differed would move the result by far more than the products' rounding)."""
    denseprop.set_num_threads(threads)
    sizes = [64, 512, 256, 3]
    net = denseprop.Network(sizes, "relu", dtype="float64", seed=0, dropout=0.4)
    x, y = rng.standard_normal((300, 64)), rng.integers(0, 3, 300)
    m = [ref.dropout_mask(0.4, (300, n), net._core.dropout_seed, 0, l)
         for l, n in enumerate(sizes[1:-1])] + [None]  # fmt: skip
    params = [(w.copy(), b.copy()) for w, b in zip(net.weights, net.biases)]
    weights, biases = [w for w, _ in params], [b for _, b in params]
    loss, grads = ref.network_loss_and_gradients(weights, biases, x, y, net.activations,
                                                 net.loss, masks=m)  # fmt: skip
    ref.sgd_step(params, grads, None, 0.05)
    net.set_optimizer("sgd", 0.05)
    np.testing.assert_allclose(net.train_step(x, y), loss, rtol=1e-13)
    for (w, b), w_net, b_net in zip(params, net.weights, net.biases):
        np.testing.assert_allclose(w_net, w, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(b_net, b, rtol=1e-12, atol=1e-14)


def test_masks_differ_by_step_layer_stream_and_seed():
    base = ref.dropout_mask(0.5, (20, 20), seed=1, step=0, layer=0)
    for other in (
        ref.dropout_mask(0.5, (20, 20), seed=1, step=1, layer=0),
        ref.dropout_mask(0.5, (20, 20), seed=1, step=0, layer=1),
        ref.dropout_mask(0.5, (20, 20), seed=1, step=0, layer=0, stream=1),
        ref.dropout_mask(0.5, (20, 20), seed=2, step=0, layer=0),
    ):
        assert (base != other).mean() > 0.3


def test_fits_are_reproducible_from_the_seed_and_differ_between_seeds(rng):
    x, y = rng.standard_normal((40, 5)), rng.integers(0, 3, 40)
    runs = {}
    for seed in (1, 1, 2):
        net = network(np.float64, seed=0)
        net.fit(x, y, epochs=3, batch_size=8, lr=0.1, seed=seed)
        runs.setdefault(seed, []).append(net.params.copy())
    np.testing.assert_array_equal(runs[1][0], runs[1][1])
    assert not np.array_equal(runs[1][0], runs[2][0])


def test_partial_fit_continues_the_stream_a_saved_network_too(tmp_path, rng):
    x, y = rng.standard_normal((20, 5)), rng.integers(0, 3, 20)
    net = network(np.float64)
    net.partial_fit(x, y, batch_size=5, seed=0)
    net.save(tmp_path / "net.npz")
    copy = denseprop.Network.load(tmp_path / "net.npz")
    unpickled = pickle.loads(pickle.dumps(net))
    for other in (net, copy, unpickled):
        other.partial_fit(x, y, batch_size=5, seed=1)
    np.testing.assert_array_equal(copy.params, net.params)
    np.testing.assert_array_equal(unpickled.params, net.params)
    assert "dropout=[0.3, 0.5]" in repr(copy)


def test_an_older_file_loads_without_dropout(tmp_path):
    import json

    net = network(np.float64, p=0.0)
    net.save(tmp_path / "net.npz")
    arrays = dict(np.load(tmp_path / "net.npz"))
    config = json.loads(str(arrays["config"]))
    for key in ("dropout", "label_smoothing", "dropout_seed"):
        del config["network"][key]
    arrays["config"] = np.array(json.dumps(config))
    np.savez(tmp_path / "old.npz", **arrays)
    old = denseprop.Network.load(tmp_path / "old.npz")
    assert old._core.dropout == [0.0, 0.0, 0.0] and old._core.label_smoothing == 0.0


def test_onnx_writes_the_evaluation_model(rng):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    net = network(np.float32)
    net.train_step(rng.standard_normal((4, 5)).astype(np.float32), rng.integers(0, 3, 4))
    model = net.to_onnx()
    session = ort.InferenceSession(model.SerializeToString())
    x = rng.standard_normal((6, 5)).astype(np.float32)
    np.testing.assert_allclose(session.run(None, {"x": x})[0], net.forward(x), rtol=1e-5,
                               atol=1e-6)  # fmt: skip


def test_the_torch_bridge_maps_dropout(rng):
    torch = pytest.importorskip("torch")
    import denseprop.torch as dpt

    net = network(np.float64)
    model = dpt.from_network(net)
    assert [type(m).__name__ for m in model] == ["Linear", "Tanh", "Dropout", "Linear", "Tanh",
                                                 "Dropout", "Linear", "Softmax"]  # fmt: skip
    assert [m.p for m in model if isinstance(m, torch.nn.Dropout)] == P
    x = rng.standard_normal((7, 5))
    model.eval()
    np.testing.assert_allclose(model(torch.tensor(x)).detach().numpy(), net.forward(x),
                               rtol=1e-12)  # fmt: skip
    model.train()
    torch.manual_seed(0)
    trained = model(torch.tensor(x)).detach().numpy()
    assert not np.allclose(trained, net.forward(x))  # PyTorch's own masks, in train()


@pytest.mark.parametrize(
    ("dropout", "error", "match"),
    [
        (1.0, ValueError, r"^dropout: each hidden layer's must be in \[0, 1\), got 1.0$"),
        (-0.1, ValueError, "dropout: "),
        (float("nan"), ValueError, "dropout: "),
        ([0.1], ValueError, r"^dropout: expected one probability per hidden layer \(2\), got 1$"),
        ([0.1, 1.5], ValueError, "dropout: each hidden layer's must be in"),
        ("0.1", TypeError, "^dropout: expected a number or one per hidden layer, got str$"),
        ([0.1, "a"], TypeError, "^dropout: expected a number, got str$"),
    ],
)
def test_bad_dropout_is_refused_by_name(dropout, error, match):
    with pytest.raises(error, match=match):
        denseprop.Network(SIZES, dropout=dropout)
