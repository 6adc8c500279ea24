"""Every kernel and Network method takes what numpy.asarray takes, and objects that only
DLPack describes: read in place when dtype and layout fit, copied otherwise.

Whether a kernel read the caller's memory or a copy is seen through the kernel itself:
`dense_forward` refuses an `out` that overlaps the memory of an input it reads, so an `out`
laid over the source's data pointer is refused exactly when the kernel reads that pointer."""

import subprocess
import sys

import denseprop
import denseprop.reference as ref
import numpy as np
import pytest
from conftest import PROTOCOLS, assert_close, randn


def over(pointer, shape, dtype):
    """A writeable ndarray laid over memory at ``pointer`` (the source's own data)."""

    class Memory:
        def __init__(self):
            self.__array_interface__ = {"data": (pointer, False), "shape": shape,
                                        "typestr": np.dtype(dtype).str, "version": 3}  # fmt: skip

    return np.asarray(Memory())


def torch_tensor(a):
    torch = pytest.importorskip("torch", reason="torch is optional")
    t = torch.from_numpy(a.copy())
    return t, t.data_ptr()


def jax_array(a):
    jax = pytest.importorskip("jax", reason="jax is optional")
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)  # else JAX makes float64 data float32
    j = jnp.asarray(a)
    return j, j.unsafe_buffer_pointer()


def wrapped(protocol):
    def make(a):
        a = a.copy()
        return PROTOCOLS[protocol](a), a.ctypes.data

    return make


SOURCES = {"torch": torch_tensor, "jax": jax_array,
           **{protocol: wrapped(protocol) for protocol in PROTOCOLS}}  # fmt: skip


@pytest.fixture(params=list(SOURCES))
def source(request):
    return SOURCES[request.param]


def square_layer(rng, dtype, n=5):
    """x, w, b with x: (n, n) and w: (n, n), so that `out` may lie over either."""
    return randn(rng, dtype, n, n), randn(rng, dtype, n, n), randn(rng, dtype, n)


@pytest.mark.parametrize("argument", ["x", "w"])
def test_kernels_read_array_likes_in_place(source, rng, dtype, argument):
    x, w, b = square_layer(rng, dtype)
    given = {"x": x, "w": w}[argument]
    obj, pointer = source(given)
    args = {"x": x, "w": w, "b": b, argument: obj}
    out = over(pointer, given.shape, dtype)
    with pytest.raises(ValueError, match=rf"\bout\b.*overlaps the memory of {argument}\b"):
        denseprop.dense_forward(args["x"], args["w"], args["b"], "tanh", out)
    got = denseprop.dense_forward(args["x"], args["w"], args["b"], "tanh")
    assert type(got) is np.ndarray
    assert_close(got, ref.dense_forward(x, w, b, "tanh"), dtype)


def test_strided_tensors_and_lists_are_copied(rng, dtype):
    torch = pytest.importorskip("torch", reason="torch is optional")
    x, w, b = square_layer(rng, dtype)
    base = torch.from_numpy(x.T.copy())  # base.T has x's values, Fortran-ordered
    out = base.numpy()  # C-contiguous over the same memory as base.T
    got = denseprop.dense_forward(base.T, w, b, "sigmoid", out)  # read from a copy: allowed
    assert got is out
    assert_close(out, ref.dense_forward(x, w, b, "sigmoid"), dtype)
    if dtype == np.float64:  # a list of floats reads as float64, as in NumPy
        assert_close(denseprop.dense_forward(x.tolist(), w.tolist(), b.tolist()),
                     ref.dense_forward(x, w, b), dtype)  # fmt: skip


def test_every_kernel_takes_array_likes(source, rng, dtype):
    x, w, b = square_layer(rng, dtype)
    a = ref.dense_forward(x, w, b, "softmax")
    g = randn(rng, dtype, 5, 5)
    labels = np.arange(5) % 5
    wrap = lambda v: source(v)[0]  # noqa: E731
    calls = [
        ("dense_forward", (x, w, b, "relu")),
        ("dense_backward", (x, w, a, g, "softmax")),
        ("sigmoid", (x,)),
        ("sigmoid_backward", (a, g)),
        ("softmax", (x,)),
        ("softmax_backward", (a, g)),
        ("softmax_jacobian", (a,)),
        ("softmax_cross_entropy", (x, labels)),
        ("sigmoid_cross_entropy", (x, a)),
        ("mse", (x, a)),
        ("activation_forward", (x, "tanh")),
        ("activation_backward", (a, g, "tanh")),
        ("activation_jacobian", (a, "relu")),
    ]
    for name, args in calls:
        given = [wrap(v) if isinstance(v, np.ndarray) else v for v in args]
        got = getattr(denseprop, name)(*given)
        want = getattr(ref, name)(*args)
        for got_part, want_part in zip(_parts(got), _parts(want)):
            if isinstance(want_part, np.ndarray):
                assert type(got_part) is np.ndarray, name
            assert_close(got_part, want_part, dtype)


def _parts(result):
    return result if isinstance(result, tuple) else (result,)


def test_network_methods_take_array_likes(source, rng, dtype):
    net = denseprop.Network([5, 4, 3], "tanh", dtype=dtype, seed=0)
    x = randn(rng, dtype, 6, 5)
    y = np.arange(6) % 3
    obj = source(x)[0]
    assert_close(net.forward(obj), net.forward(x), dtype)
    assert net.predict(obj).tolist() == net.predict(x).tolist()
    assert net.score(obj, source(y)[0]) == net.score(x, y)
    loss, grads = net.gradients(obj, y)
    assert loss == net.gradients(x, y)[0]
    assert_close(grads[0][0], net.gradients(x, y)[1][0][0], dtype)
    assert_close(net.jacobian(obj), net.jacobian(x), dtype)
    twin = denseprop.Network([5, 4, 3], "tanh", dtype=dtype, seed=0)
    assert net.train_step(obj, source(y)[0]) == twin.train_step(x, y)
    assert net._core.params.tobytes() == twin._core.params.tobytes()


def test_network_reads_a_tensor_in_place():
    torch = pytest.importorskip("torch", reason="torch is optional")
    net = denseprop.Network([5, 4, 3], dtype="float32", seed=0)
    t = torch.randn(7, 5)
    assert net._x(t).ctypes.data == t.data_ptr()  # what the C++ network then reads in place


def test_estimators_take_array_likes(source, rng):
    pytest.importorskip("sklearn", reason="scikit-learn is optional")
    x = rng.standard_normal((40, 5))
    y = (x[:, 0] > 0).astype(np.int64)
    model = denseprop.MLPClassifier((4,), max_iter=5, random_state=0)
    with pytest.warns(Warning):
        model.fit(source(x)[0], source(y)[0])
    with pytest.warns(Warning):
        twin = denseprop.MLPClassifier((4,), max_iter=5, random_state=0).fit(x, y)
    np.testing.assert_array_equal(model.predict_proba(source(x)[0]), twin.predict_proba(x))


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        ([[1.0, 2.0], [3.0]], ValueError, r"\bz\b.*cannot be read as an array.*list"),
        ([["a", "b"]], TypeError, r"\bz\b.*array-like of numbers, got list"),
        ("abc", TypeError, r"\bz\b.*array-like of numbers, got str"),
        (None, TypeError, r"\bz\b.*array-like of numbers, got NoneType"),
        ({"a": 1}, TypeError, r"\bz\b.*array-like of numbers, got dict"),
        ([[1, 2]], TypeError, r"\bz\b.*float32 or float64, got int64"),
        ([[1j]], TypeError, r"\bz\b.*float32 or float64, got complex128"),
        (np.array([[1.0]], dtype=object), TypeError, r"\bz\b.*float32 or float64, got object"),
    ],
    ids=["ragged", "strings", "str", "None", "dict", "ints", "complex", "object array"],
)
def test_what_does_not_read_as_numbers_is_a_clear_error(value, error, match):
    with pytest.raises(error, match=match):
        denseprop.sigmoid(value)


def test_a_tensor_that_requires_grad_is_a_type_error_naming_the_argument():
    torch = pytest.importorskip("torch", reason="torch is optional")
    with pytest.raises(TypeError, match=r"\bx\b.*cannot be read as an array \(Tensor\).*grad"):
        denseprop.dense_forward(torch.ones(2, 3, requires_grad=True), np.ones((2, 3)),
                                np.ones(2))  # fmt: skip


def test_out_must_still_be_an_ndarray(rng):
    torch = pytest.importorskip("torch", reason="torch is optional")
    x, w, b = square_layer(rng, np.float32)
    for out in (torch.zeros(5, 5), [[0.0] * 5] * 5):
        with pytest.raises(TypeError, match=r"\bout\b.*numpy.ndarray.*got (Tensor|list)"):
            denseprop.dense_forward(x, w, b, "identity", out)


def test_denseprop_imports_neither_torch_nor_onnx(tmp_path):
    code = (
        "import sys, denseprop\n"
        "net = denseprop.Network([3, 2])\n"
        "net.forward([[1.0, 2.0, 3.0]])\n"
        f"net.save({str(tmp_path / 'net.npz')!r})\n"
        f"denseprop.Network.load({str(tmp_path / 'net.npz')!r})\n"
        "loaded = {m.split('.')[0] for m in sys.modules} & {'torch', 'onnx', 'jax', 'sklearn'}\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
