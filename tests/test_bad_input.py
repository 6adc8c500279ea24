"""Bad arguments raise TypeError or ValueError naming the argument; odd layouts just work."""

import denseprop
import denseprop.reference as ref
import numpy as np
import pytest
from conftest import assert_close, randn

F64 = np.float64


def layer(batch=3, n_in=5, n_out=7, dtype=F64):
    rng = np.random.default_rng(7)
    return (
        randn(rng, dtype, batch, n_in),
        randn(rng, dtype, n_out, n_in),
        randn(rng, dtype, n_out),
    )


@pytest.mark.parametrize(
    ("x", "w", "b", "match"),
    [
        (np.ones(5), np.ones((7, 5)), np.ones(7), r"\bx\b.*2-D.*1-D"),
        (np.ones((2, 3, 5)), np.ones((7, 5)), np.ones(7), r"\bx\b.*2-D.*3-D"),
        (np.ones((3, 5)), np.ones(5), np.ones(7), r"\bw\b.*2-D.*1-D"),
        (np.ones((3, 5)), np.ones((7, 5)), np.ones((7, 1)), r"\bb\b.*1-D.*2-D"),
    ],
    ids=["x-1d", "x-3d", "w-1d", "b-2d"],
)
def test_wrong_rank(x, w, b, match):
    with pytest.raises(ValueError, match=match):
        denseprop.dense_forward(x, w, b)


def test_wrong_rank_of_activation_input():
    with pytest.raises(ValueError, match=r"\bz\b.*1-D"):
        denseprop.sigmoid(np.ones(4))
    with pytest.raises(ValueError, match=r"\bs\b.*3-D"):
        denseprop.softmax_jacobian(np.ones((2, 3, 4)))


def test_mismatched_layer_shapes():
    x, w, b = layer()
    with pytest.raises(ValueError, match=r"\bw\b.*\(7, 4\)"):
        denseprop.dense_forward(x, w[:, :4].copy(), b)
    with pytest.raises(ValueError, match=r"\bb\b.*\(6,\)"):
        denseprop.dense_forward(x, w, b[:6].copy())


def test_mismatched_backward_shapes():
    x, w, b = layer()
    a = ref.dense_forward(x, w, b)
    with pytest.raises(ValueError, match=r"\ba\b.*\(3, 6\)"):
        denseprop.dense_backward(x, w, a[:, :6].copy(), a[:, :6].copy())
    with pytest.raises(ValueError, match=r"\ba\b.*\(2, 7\)"):
        denseprop.dense_backward(x, w, a[:2].copy(), a[:2].copy())
    with pytest.raises(ValueError, match=r"grad_a.*\(3, 6\)"):
        denseprop.dense_backward(x, w, a, a[:, :6].copy())
    with pytest.raises(ValueError, match=r"grad_s.*\(3, 6\)"):
        denseprop.softmax_backward(a, a[:, :6].copy())


@pytest.mark.parametrize(
    ("loss", "y", "match"),
    [
        ("softmax_cross_entropy", np.zeros(2, np.int64), r"\by\b.*\(2,\)"),
        ("softmax_cross_entropy", np.zeros((3, 4)), r"\by\b.*\(3, 4\)"),
        ("softmax_cross_entropy", np.zeros((3, 7, 1)), r"\by\b.*3-D"),
        ("sigmoid_cross_entropy", np.zeros((3, 4)), r"\by\b.*\(3, 4\)"),
        ("mse", np.zeros((2, 7)), r"\btarget\b.*\(2, 7\)"),
    ],
)
def test_mismatched_loss_shapes(loss, y, match):
    with pytest.raises(ValueError, match=match):
        getattr(denseprop, loss)(np.zeros((3, 7)), y)


def test_mixed_float_dtypes():
    x, w, b = layer(dtype=np.float32)
    with pytest.raises(TypeError, match=r"\bw\b.*float64.*float32"):
        denseprop.dense_forward(x, w.astype(F64), b)
    with pytest.raises(TypeError, match=r"\bb\b.*float64.*float32"):
        denseprop.dense_forward(x, w, b.astype(F64))
    a = ref.dense_forward(x, w, b)
    with pytest.raises(TypeError, match=r"grad_a.*float64"):
        denseprop.dense_backward(x, w, a, a.astype(F64))
    with pytest.raises(TypeError, match=r"\by\b.*float64"):
        denseprop.sigmoid_cross_entropy(a, a.astype(F64))
    with pytest.raises(TypeError, match=r"\btarget\b.*float64"):
        denseprop.mse(a, a.astype(F64))


@pytest.mark.parametrize(
    "bad_dtype", [np.int64, np.int32, bool, object, np.float16, np.complex128]
)
def test_non_float_arrays(bad_dtype):
    x, w, b = layer()
    name = np.dtype(bad_dtype).name
    with pytest.raises(TypeError, match=rf"\bx\b.*{name}"):
        denseprop.dense_forward(x.astype(bad_dtype), w, b)
    with pytest.raises(TypeError, match=rf"\bw\b.*{name}"):
        denseprop.dense_forward(x, w.astype(bad_dtype), b)
    with pytest.raises(TypeError, match=rf"\bz\b.*{name}"):
        denseprop.softmax(x.astype(bad_dtype))
    with pytest.raises(TypeError, match=rf"\blogits\b.*{name}"):
        denseprop.softmax_cross_entropy(x.astype(bad_dtype), np.zeros(3, np.int64))


def test_float_labels():
    with pytest.raises(TypeError, match=r"\by\b.*integer"):
        denseprop.softmax_cross_entropy(np.zeros((3, 4)), np.zeros(3))


def test_python_lists_read_as_numpy_reads_them():
    np.testing.assert_array_equal(denseprop.dense_forward([[1.0, 2.0]], [[1.0, 2.0]], [0.5]),
                                  [[5.5]])  # fmt: skip
    assert denseprop.sigmoid([[0.0]]).tolist() == [[0.5]]
    loss, _ = denseprop.softmax_cross_entropy(np.zeros((2, 3)), [0, 1])
    assert loss == pytest.approx(np.log(3))
    with pytest.raises(TypeError, match=r"\bw\b.*float64 does not match x's float32"):
        denseprop.dense_forward(np.ones((1, 2), np.float32), [[1.0, 2.0]], [0.0])
    with pytest.raises(TypeError, match=r"\bz\b.*float32 or float64, got int64"):
        denseprop.sigmoid([[1, 2]])


LAYOUTS = {
    "strided": lambda a: np.repeat(a, 2, axis=-1)[..., ::2],
    "fortran": np.asfortranarray,
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_non_contiguous_and_fortran_inputs_work(dtype, layout):
    arrange = LAYOUTS[layout]
    x, w, b = layer(batch=4, dtype=dtype)
    a = ref.dense_forward(x, w, b, "softmax")
    labels = np.arange(4) % 7
    y = ref.softmax(a)
    xs, ws, bs, as_, ys = (arrange(v) for v in (x, w, b, a, y))
    assert not (xs.flags.c_contiguous and ws.flags.c_contiguous)

    assert_close(denseprop.dense_forward(xs, ws, bs, "softmax"), a, dtype)
    for got, want in zip(
        denseprop.dense_backward(xs, ws, as_, ys, "softmax"),
        ref.dense_backward(x, w, a, y, "softmax"),
    ):
        assert_close(got, want, dtype)
    assert_close(denseprop.softmax(xs), ref.softmax(x), dtype)
    assert_close(denseprop.softmax_backward(as_, ys), ref.softmax_backward(a, y), dtype)
    for got, want in zip(
        denseprop.softmax_cross_entropy(as_, np.repeat(labels, 2)[::2], "none"),
        ref.softmax_cross_entropy(a, labels, "none"),
    ):
        assert_close(got, want, dtype)
    for got, want in zip(denseprop.mse(as_, ys, "none"), ref.mse(a, y, "none")):
        assert_close(got, want, dtype)


def test_out_that_cannot_take_the_result():
    x, w, b = layer()
    read_only = np.empty((3, 7))
    read_only.flags.writeable = False
    cases = [
        (read_only, ValueError, r"\bout\b.*writeable"),
        (np.empty((3, 6)), ValueError, r"\bout\b.*\(3, 6\)"),
        (np.empty((7, 3)).T, ValueError, r"\bout\b.*contiguous"),
        (np.empty((3, 14))[:, ::2], ValueError, r"\bout\b.*contiguous"),
        (np.empty((3, 7), np.float32), TypeError, r"\bout\b.*float32"),
        ([[0.0] * 7] * 3, TypeError, r"\bout\b.*numpy.ndarray.*list"),
    ]
    for out, error, match in cases:
        with pytest.raises(error, match=match):
            denseprop.dense_forward(x, w, b, "identity", out)


def test_out_that_overlaps_an_input():
    x, w, b = layer(n_in=7)
    with pytest.raises(ValueError, match=r"\bout\b.*overlaps.*\bx\b"):
        denseprop.dense_forward(x, w, b, "identity", x)


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (np.array([0, 10, 1]), r"\by\b.*label 10\b.*\[0, 10\)"),
        (np.array([0, -1, 1], np.int8), r"\by\b.*label -1\b"),
        (np.array([255, 0, 1], np.uint8), r"\by\b.*label 255\b"),
    ],
)
def test_labels_out_of_range(impl, labels, match):
    with pytest.raises(ValueError, match=match):
        impl.softmax_cross_entropy(np.zeros((3, 10)), labels)


EMPTY_BATCH = {
    "dense_forward": ("x", np.ones((0, 5)), np.ones((7, 5)), np.ones(7)),
    "dense_backward": (
        "x",
        np.ones((0, 5)),
        np.ones((7, 5)),
        np.ones((0, 7)),
        np.ones((0, 7)),
    ),
    "sigmoid": ("z", np.ones((0, 3))),
    "softmax_backward": ("s", np.ones((0, 3)), np.ones((0, 3))),
    "mse": ("pred", np.ones((0, 3)), np.ones((0, 3))),
    "softmax_cross_entropy": ("logits", np.ones((0, 3)), np.ones(0, np.int64)),
}


@pytest.mark.parametrize("kernel", EMPTY_BATCH)
def test_empty_batch(kernel):
    name, *args = EMPTY_BATCH[kernel]
    with pytest.raises(ValueError, match=rf"\b{name}\b.*empty batch"):
        getattr(denseprop, kernel)(*args)


def test_zero_features():
    with pytest.raises(ValueError, match=r"\bz\b.*\(3, 0\)"):
        denseprop.softmax(np.ones((3, 0)))
    with pytest.raises(ValueError, match=r"\bw\b.*\(0, 5\)"):
        denseprop.dense_forward(np.ones((3, 5)), np.ones((0, 5)), np.ones(0))


def test_unknown_activation(impl):
    x, w, b = layer()
    match = r"activation.*'foo'.*identity.*leaky_relu.*softmax"
    with pytest.raises(ValueError, match=match):
        impl.dense_forward(x, w, b, "foo")
    with pytest.raises(ValueError, match=match):
        impl.dense_backward(x, w, np.ones((3, 7)), np.ones((3, 7)), "foo")


@pytest.mark.parametrize(
    "loss", ["softmax_cross_entropy", "sigmoid_cross_entropy", "mse", "half_poisson_deviance"]
)
def test_unknown_reduction(impl, loss):
    with pytest.raises(ValueError, match=r"reduction.*'foo'.*mean.*sum.*none"):
        getattr(impl, loss)(np.zeros((3, 4)), np.zeros((3, 4)), "foo")


@pytest.mark.parametrize("slope", [-1.0, float("nan")])
def test_negative_slope_must_be_non_negative(impl, slope):
    x, w, b = layer()
    with pytest.raises(ValueError, match=r"negative_slope.*>= 0"):
        impl.dense_forward(x, w, b, "leaky_relu", negative_slope=slope)
    with pytest.raises(ValueError, match=r"negative_slope.*>= 0"):
        impl.dense_backward(
            x, w, np.ones((3, 7)), np.ones((3, 7)), "leaky_relu", negative_slope=slope
        )
