"""bfloat16 products (compute_dtype="bfloat16"): each kernel against a float64 product of the
rounded operands, the rounding itself, determinism over thread counts, the Network and the
estimators trained in bf16 against float32, the kernel's choice, and bad input.

The AMX kernel's code is also run over a software model of the tile instructions
("amx_model"), so that its blocking, packing and tile bookkeeping are tested on every CPU; the
tests of the real AMX and AVX512_BF16 instructions skip where the CPU lacks them."""

import os
import subprocess
import sys

import denseprop
import denseprop.reference as ref
import numpy as np
import pytest
from conftest import assert_close, assert_unchanged, network, snapshot
from denseprop import _core, _native

KERNELS = ["emulated", "amx_model", "avx512_bf16", "amx"]


def unavailable(kernel):
    """Why this CPU cannot run ``kernel`` (None when it can)."""
    if kernel == "avx512_bf16" and "avx512_bf16" not in _native.cpu_features:
        return "this CPU lacks avx512_bf16"
    if kernel == "amx":
        if not {"amx_tile", "amx_bf16"} <= _native.cpu_features:
            return "this CPU lacks AMX (amx_tile, amx_bf16)"
        return _core._request_amx() or None
    return None


@pytest.fixture(params=KERNELS)
def kernel(request):
    why = unavailable(request.param)
    if why:
        pytest.skip(why)
    return request.param


@pytest.fixture
def process_kernel(kernel):
    """``kernel`` made the process's bf16 kernel for the test, then the chosen one again."""
    before = _core._bf16_kernel()
    _core._set_bf16_kernel(kernel)
    yield kernel
    _core._set_bf16_kernel(before)


def product_bound(a, b, alpha=1.0):
    """How far a bf16 product may lie from the exact product of the rounded operands: each of
    at most k float32 additions rounds by at most 2⁻²⁴ of the partial sum, so the error is at
    most k 2⁻²⁴ Σ|ã b̃| (first order), plus the final scaling's half ulp. The one statement of
    the kernels' tolerance."""
    k = a.shape[1]
    magnitude = np.abs(ref.round_bf16(a)).astype(np.float64) @ np.abs(ref.round_bf16(b))
    return abs(alpha) * (k * 2.0**-24 * magnitude) + 2.0**-24 * abs(alpha) * magnitude + 1e-30


def exact(a, b):
    return ref.round_bf16(a).astype(np.float64) @ ref.round_bf16(b).astype(np.float64)


# -- the rounding ------------------------------------------------------------------------------


def test_round_bf16_is_round_to_nearest_even():
    half = 2**-8  # half a bfloat16 ulp at 1
    values = [1, 1 + half, 1 + 3 * half, 1 + half + 2**-20, -1 - half, np.finfo(np.float32).max,
              -0.0, np.inf, -np.inf]  # fmt: skip
    expected = [1, 1, 1 + 4 * half, 1 + 2 * half, -1, np.inf, -0.0, np.inf, -np.inf]
    got = ref.round_bf16(np.array(values, np.float32))
    np.testing.assert_array_equal(got, np.array(expected, np.float32))
    assert np.signbit(got[6])
    assert np.isnan(ref.round_bf16(np.array([np.nan], np.float32))).all()


def test_round_bf16_equals_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal(10000).astype(np.float32) * 100
    expected = torch.from_numpy(x).bfloat16().float().numpy()
    np.testing.assert_array_equal(ref.round_bf16(x), expected)


def test_each_kernel_rounds_its_operands_to_nearest_even(rng, kernel):
    """x times the identity is x rounded: one exact product per value, nothing to sum."""
    x = rng.standard_normal((37, 45)).astype(np.float32)
    x[0, :4] = [1 + 2**-8, 1 + 3 * 2**-8, -1 - 2**-8, 1 + 2**-8 + 2**-20]  # ties and past them
    eye = np.eye(45, dtype=np.float32)
    np.testing.assert_array_equal(_core._bf16_matmul(x, eye, kernel=kernel), ref.round_bf16(x))
    np.testing.assert_array_equal(_core._bf16_matmul(eye, x.T.copy(), kernel=kernel),
                                  ref.round_bf16(x.T))  # fmt: skip


# -- the products ------------------------------------------------------------------------------

# (m, k, n): single values, every edge of the 32 × 32 blocks and 16-column panels, k past a run
# of 1024 (the kernels' blocking of k), m and n past 256 (their blocking of C).
SHAPES = [(1, 1, 1), (3, 5, 7), (33, 65, 31), (32, 32, 32), (64, 96, 48), (100, 300, 17),
          (17, 1100, 40), (290, 40, 20), (20, 40, 530)]  # fmt: skip


@pytest.mark.parametrize(("m", "k", "n"), SHAPES)
@pytest.mark.parametrize("transpose_a", [False, True])
@pytest.mark.parametrize("transpose_b", [False, True])
def test_product_is_within_its_bound(rng, kernel, m, k, n, transpose_a, transpose_b):
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    got = _core._bf16_matmul(
        a.T.copy() if transpose_a else a, b.T.copy() if transpose_b else b, kernel=kernel,
        transpose_a=transpose_a, transpose_b=transpose_b,
    )  # fmt: skip
    assert got.dtype == np.float32 and got.shape == (m, n)
    assert (np.abs(got - exact(a, b)) <= product_bound(a, b)).all()


@pytest.mark.parametrize(("m", "k", "n"), [(3, 5, 7), (33, 65, 31), (64, 96, 48)])
@pytest.mark.parametrize("alpha", [1.0, -0.25])
def test_product_scaled_and_added(rng, kernel, m, k, n, alpha):
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    c = rng.standard_normal((m, n)).astype(np.float32)
    got = _core._bf16_matmul(a, b, kernel=kernel, alpha=alpha, c=c)
    expected = c + alpha * exact(a, b)
    bound = product_bound(a, b, alpha) + 2.0**-23 * (np.abs(c) + np.abs(expected))
    assert (np.abs(got - expected) <= bound).all()


def test_results_are_bitwise_the_same_for_any_thread_count(rng, kernel, restore_threads):
    """Products are split over blocks of rows or columns, never over k."""
    a = rng.standard_normal((512, 384)).astype(np.float32)
    b = rng.standard_normal((384, 288)).astype(np.float32)
    results = []
    for threads in (1, 2, 3):
        denseprop.set_num_threads(threads)
        results.append(_core._bf16_matmul(a, b, kernel=kernel))
        results.append(_core._bf16_matmul(b.T.copy(), a.T.copy(), kernel=kernel))
    for r in results[2:]:
        assert r.tobytes() in (results[0].tobytes(), results[1].tobytes())
    assert results[2].tobytes() == results[0].tobytes()
    assert results[3].tobytes() == results[1].tobytes()


def test_amx_model_is_the_amx_kernel_within_the_bound(rng):
    """The real tiles and the model of them give results within the product's bound of each
    other (the hardware orders its float32 sums its own way)."""
    why = unavailable("amx")
    if why:
        pytest.skip(why)
    a = rng.standard_normal((70, 200)).astype(np.float32)
    b = rng.standard_normal((200, 50)).astype(np.float32)
    real = _core._bf16_matmul(a, b, kernel="amx")
    model = _core._bf16_matmul(a, b, kernel="amx_model")
    assert (np.abs(real - model) <= 2 * product_bound(a, b)).all()


# -- the network -------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [1, 17, 64])
def test_network_on_each_kernel_equals_the_reference(rng, process_kernel, batch):
    net = network([20, 33, 18, 5], "tanh", "cross_entropy", None, np.float32,
                  compute_dtype="bfloat16")  # fmt: skip
    x = rng.standard_normal((batch, 20)).astype(np.float32)
    y = rng.integers(0, 5, batch)
    loss, grads = net.gradients(x, y)
    expected_loss, expected = ref.network_loss_and_gradients(
        net.weights, net.biases, x, y, net.activations, net.loss, compute_dtype="bfloat16"
    )
    assert_close(loss, expected_loss, "bfloat16")
    for (gw, gb), (ew, eb) in zip(grads, expected):
        assert_close(gw, ew, "bfloat16")
        assert_close(gb, eb, "bfloat16")
    outputs = ref.network_forward(net.weights, net.biases, x, net.activations,
                                  compute_dtype="bfloat16")  # fmt: skip
    assert_close(net.forward(x), outputs[-1], "bfloat16")


def test_bf16_differs_from_float32_as_rounding_does(rng):
    """The bf16 network is not the float32 one: its products see rounded operands."""
    net = network([30, 40, 3], "relu", "cross_entropy", None, np.float32, compute_dtype="bfloat16")
    twin = network([30, 40, 3], "relu", "cross_entropy", None, np.float32)
    x = rng.standard_normal((50, 30)).astype(np.float32)
    difference = np.abs(net.forward(x) - twin.forward(x)).max()
    assert 1e-5 < difference < 0.05


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_training_steps_are_bitwise_the_same_for_any_thread_count(rng, optimizer,
                                                                  restore_threads):  # fmt: skip
    x = rng.standard_normal((300, 200)).astype(np.float32)
    y = rng.integers(0, 10, 300)
    params = []
    for threads in (1, 2):
        denseprop.set_num_threads(threads)
        net = denseprop.Network([200, 256, 10], "relu", seed=3, compute_dtype="bfloat16")
        net.fit(x, y, epochs=2, batch_size=150, optimizer=optimizer, lr=0.01, seed=0)
        params.append(net.params.tobytes())
    assert params[0] == params[1]


def test_sgd_step_equals_the_reference_step(rng):
    """Plain SGD's fused update (W -= η dZ Aᵀ inside the product) on bf16 operands."""
    net = network([12, 16, 4], "sigmoid", "mse", "identity", np.float32, compute_dtype="bfloat16")
    x = rng.standard_normal((40, 12)).astype(np.float32)
    y = rng.standard_normal((40, 4)).astype(np.float32)
    weights = [w.copy() for w in net.weights]
    biases = [b.copy() for b in net.biases]
    _, grads = ref.network_loss_and_gradients(weights, biases, x, y, net.activations, "mse",
                                              compute_dtype="bfloat16")  # fmt: skip
    net.set_optimizer("sgd", 0.1)
    net.train_step(x, y)
    for w, w0, (gw, _) in zip(net.weights, weights, grads):
        assert_close(w, w0 - np.float32(0.1) * gw, "bfloat16")


@pytest.mark.parametrize("optimizer", ["dpsgd", "adamw"])
def test_every_optimizer_trains_in_bf16(rng, optimizer):
    """DP-SGD keeps float32 products for its per-sample sums, over the bf16 forward and
    backward; the others as float32 does."""
    net = denseprop.Network([8, 16, 3], "relu", seed=0, compute_dtype="bfloat16")
    x = rng.standard_normal((90, 8)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0)
    net.fit(x, y, epochs=30, batch_size=30, optimizer=optimizer, lr=0.2, seed=0,
            noise_multiplier=0.1, clip_norm=5.0)  # fmt: skip
    assert net.score(x, y) > 0.8
    grads = net.per_sample_gradients(x[:5], y[:5])
    _, summed = net.gradients(x[:5], y[:5], reduction="sum")
    for (gw, gb), (sw, sb) in zip(grads, summed):
        assert_close(gw.sum(axis=0), sw, "bfloat16")
        assert_close(gb.sum(axis=0), sb, "bfloat16")


def digits():
    datasets = pytest.importorskip("sklearn.datasets")
    x, y = datasets.load_digits(return_X_y=True)
    x = (x / 16).astype(np.float32)
    return x[:1347], y[:1347], x[1347:], y[1347:]


def test_training_reaches_float32_accuracy():
    """On the digits, the same seeds: bf16 within half a point of float32's test accuracy."""
    x, y, x_test, y_test = digits()
    scores = {}
    for compute in (None, "bfloat16"):
        net = denseprop.Network([64, 64, 10], "relu", seed=0, compute_dtype=compute)
        net.fit(x, y, epochs=40, batch_size=32, optimizer="adam", lr=1e-3, seed=0)
        scores[compute] = net.score(x_test, y_test)
    assert scores[None] > 0.9
    assert scores["bfloat16"] >= scores[None] - 0.005


@pytest.mark.parametrize("estimator", ["MLPClassifier", "MLPRegressor"])
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_estimators_score_as_float32_does(estimator):
    x, y, x_test, y_test = digits()
    cls = getattr(denseprop, estimator)
    scores = [
        cls(hidden_layer_sizes=(64,), max_iter=60, random_state=0, compute_dtype=compute)
        .fit(x, y)
        .score(x_test, y_test)
        for compute in (None, "bfloat16")
    ]  # fmt: skip
    assert abs(scores[1] - scores[0]) <= 0.02


# -- the settings, the file, the choice ------------------------------------------------------


def test_compute_dtype_can_be_switched(rng):
    """A float32-trained network infers on bf16 products, and back, its parameters untouched."""
    net = denseprop.Network([10, 16, 4], "relu", seed=0)
    x = rng.standard_normal((9, 10)).astype(np.float32)
    float32 = net.forward(x)
    net.compute_dtype = "bfloat16"
    twin = ref.network_forward(net.weights, net.biases, x, net.activations,
                               compute_dtype="bfloat16")[-1]  # fmt: skip
    assert_close(net.forward(x), twin, "bfloat16")
    assert "compute_dtype='bfloat16'" in repr(net)
    net.compute_dtype = None
    np.testing.assert_array_equal(net.forward(x), float32)
    wide = denseprop.Network([3, 2], dtype="float64")
    with pytest.raises(ValueError, match="need a float32 network"):
        wide.compute_dtype = "bfloat16"
    assert wide.compute_dtype is None


def test_compute_dtype_is_kept_by_files_and_pickles(tmp_path, rng):
    import pickle

    net = denseprop.Network([6, 9, 3], "relu", seed=0, compute_dtype="bfloat16")
    x = rng.standard_normal((5, 6)).astype(np.float32)
    net.save(tmp_path / "net.npz")
    for same in (denseprop.Network.load(tmp_path / "net.npz"), pickle.loads(pickle.dumps(net))):
        assert same.compute_dtype == "bfloat16"
        np.testing.assert_array_equal(same.forward(x), net.forward(x))


def test_a_file_from_before_compute_dtype_loads_as_float32_products(tmp_path):
    import json

    net = denseprop.Network([4, 3], seed=0)
    net.save(tmp_path / "net.npz")
    with np.load(tmp_path / "net.npz") as f:
        arrays = dict(f)
    config = json.loads(str(arrays["config"]))
    del config["network"]["compute_dtype"]
    arrays["config"] = np.array(json.dumps(config))
    np.savez(tmp_path / "old.npz", **arrays)
    assert denseprop.Network.load(tmp_path / "old.npz").compute_dtype is None


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"dtype": "float64", "compute_dtype": "bfloat16"}, ValueError,
         r"^compute_dtype: bfloat16 products need a float32 network, got float64$"),
        ({"compute_dtype": "float16"}, ValueError,
         r"^compute_dtype: expected None or 'bfloat16', got 'float16'$"),
        ({"compute_dtype": 16}, TypeError,
         r"^compute_dtype: expected None or 'bfloat16', got int$"),
    ],
)  # fmt: skip
def test_network_refuses_bad_compute_dtype(kwargs, error, match):
    with pytest.raises(error, match=match):
        denseprop.Network([3, 2], **kwargs)


def test_kernels_refuse_bf16_on_float64(rng):
    x, w, b = np.ones((2, 3)), np.ones((4, 3)), np.ones(4)
    match = r"^compute_dtype: bfloat16 products need float32 arrays, got float64$"
    with pytest.raises(ValueError, match=match):
        denseprop.dense_forward(x, w, b, compute_dtype="bfloat16")
    a = np.ones((2, 4))
    with pytest.raises(ValueError, match=match):
        denseprop.dense_backward(x, w, a, a, compute_dtype="bfloat16")


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_estimators_refuse_bf16_on_float64():
    x, y = np.random.default_rng(0).standard_normal((20, 3)), np.arange(20) % 2
    with pytest.raises(ValueError, match=r"compute_dtype: bfloat16 products need dtype='float32'"):
        denseprop.MLPClassifier((4,), dtype="float64", compute_dtype="bfloat16").fit(x, y)
    with pytest.raises(ValueError, match="compute_dtype"):
        denseprop.MLPClassifier((4,), compute_dtype="float16").fit(x, y)
    est = denseprop.MLPClassifier((4,), max_iter=5, compute_dtype="bfloat16").fit(x, y)
    assert est.network_.dtype == np.float32 and est.network_.compute_dtype == "bfloat16"


def test_a_refused_step_leaves_the_bf16_network_unchanged(rng):
    net = denseprop.Network([4, 5, 2], seed=0, compute_dtype="bfloat16")
    before = snapshot(net)
    with pytest.raises(ValueError, match="x has 3 features"):
        net.train_step(np.ones((2, 3), np.float32), [0, 1])
    assert_unchanged(net, before)


def test_product_refuses_bad_arguments():
    a = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"^kernel: expected one of .*got 'tpu'$"):
        _core._bf16_matmul(a, a.T, kernel="tpu")
    with pytest.raises(ValueError, match="b: expected 4 rows of k"):
        _core._bf16_matmul(a, a, kernel="emulated")
    with pytest.raises(ValueError, match=r"c: expected shape \(3, 3\)"):
        _core._bf16_matmul(a, a.T, kernel="emulated", c=np.ones((2, 2), np.float32))
    with pytest.raises(ValueError, match="kernel: expected one of"):
        _core._set_bf16_kernel("fast")
    for kernel in ("avx512_bf16", "amx"):
        why = unavailable(kernel)
        if why:  # refused with the reason, never run
            with pytest.raises(ValueError, match=f"kernel: {kernel} cannot run here"):
                _core._bf16_matmul(a, a.T, kernel=kernel)


AMX = frozenset({"amx_tile", "amx_bf16", "avx512_bf16", "avx512f", "zmm_state"})


@pytest.mark.parametrize(
    ("features", "forced", "permission", "chosen"),
    [
        (AMX, None, "", "amx"),
        (AMX, None, "the kernel refused", "avx512_bf16"),
        (AMX - {"amx_bf16"}, None, "", "avx512_bf16"),
        (frozenset({"avx2"}), None, "", "emulated"),
        (AMX, "emulated", "", "emulated"),
        (AMX, "avx512_bf16", "", "avx512_bf16"),
    ],
)  # fmt: skip
def test_the_choice_of_kernel(features, forced, permission, chosen):
    name, reason = _native.choose_bf16(features, forced, lambda: permission)
    assert name == chosen
    assert reason == (f"DENSEPROP_BF16_KERNEL={forced}" if forced else
                      "the best bf16 kernel this CPU and OS run")  # fmt: skip


@pytest.mark.parametrize(
    ("features", "forced", "permission", "match"),
    [
        (frozenset({"avx2"}), "amx", "", r"DENSEPROP_BF16_KERNEL='amx': this CPU lacks amx_bf16, "
         "amx_tile"),
        (AMX, "amx", "the kernel refused", r"DENSEPROP_BF16_KERNEL='amx': the kernel refused"),
        (AMX, "gpu", "", r"DENSEPROP_BF16_KERNEL='gpu': expected one of amx, avx512_bf16, "
         "emulated"),
    ],
)  # fmt: skip
def test_a_forced_kernel_this_cpu_cannot_run_is_an_import_error(features, forced, permission,
                                                                match):  # fmt: skip
    with pytest.raises(ImportError, match=match):
        _native.choose_bf16(features, forced, lambda: permission)


def test_the_environment_forces_a_kernel():
    env = {**os.environ, "DENSEPROP_BF16_KERNEL": "emulated"}
    code = ("import denseprop; i = denseprop.build_info(); "
            "print(i['bf16_kernel'], i['bf16_chosen_by'])")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout  # fmt: skip
    assert out.split() == ["emulated", "DENSEPROP_BF16_KERNEL=emulated"]
