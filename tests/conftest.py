import denseprop
import denseprop.reference as ref
import numpy as np
import pytest

# The one statement of how closely a kernel must match the reference, per dtype, and for
# float32 arrays whose products take bfloat16 operands ("bfloat16"). atol is multiplied by the
# magnitude of the values being compared (see assert_close). bfloat16 keeps 8 significant
# bits: where the kernel's float32 value of an operand and the twin's lie on either side of a
# rounding tie, that operand differs by 2⁻⁸ of itself, and so does its term of a product; 4e-3
# (> 2⁻⁸) of the largest value bounds it (seen: 5e-5 at most over the network tests). A single
# product of the same rounded operands is held to its summation's bound: see test_bf16.py.
TOLERANCES = {
    np.dtype(np.float32): {"rtol": 1e-5, "atol": 1e-6},
    np.dtype(np.float64): {"rtol": 1e-12, "atol": 1e-12},
    "bfloat16": {"rtol": 4e-3, "atol": 4e-3},
}


def assert_close(actual, expected, dtype, scale=None):
    """Assert ``actual`` matches ``expected`` within the tolerance of ``dtype``.

    Arrays must also agree in shape, and ``actual`` must have ``dtype``. ``scale``
    (default: the largest ``|expected|``, at least 1) multiplies atol, so values
    that come out near zero from large terms are judged against the size of
    those terms; pass a larger scale where cancellation is expected.
    """
    tol = TOLERANCES["bfloat16" if dtype == "bfloat16" else np.dtype(dtype)]
    dtype = np.dtype(np.float32 if dtype == "bfloat16" else dtype)
    if isinstance(actual, np.ndarray):
        assert actual.dtype == dtype, f"dtype {actual.dtype}, expected {dtype}"
        assert actual.shape == np.shape(expected), f"shape {actual.shape}"
    if scale is None:
        scale = max(1.0, float(np.max(np.abs(expected))))
    np.testing.assert_allclose(
        actual, expected, rtol=tol["rtol"], atol=tol["atol"] * scale
    )


def randn(rng, dtype, *shape):
    """Standard normal samples of ``shape`` in ``dtype``."""
    return rng.standard_normal(shape).astype(dtype)


@pytest.fixture
def restore_threads():
    """Puts the thread count back as it was after a test that sets it."""
    before = denseprop.get_num_threads()
    yield
    denseprop.set_num_threads(before)


@pytest.fixture
def rng():
    return np.random.default_rng(20240601)


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request):
    return np.dtype(request.param)


class Precision:
    """How a kernel or network computes: its arrays' dtype and its products' compute_dtype;
    `name` keys TOLERANCES."""

    def __init__(self, name, dtype, compute_dtype):
        self.name, self.dtype, self.compute_dtype = name, np.dtype(dtype), compute_dtype

    def __repr__(self):
        return self.name


PRECISIONS = [Precision("float32", np.float32, None), Precision("float64", np.float64, None),
              Precision("bfloat16", np.float32, "bfloat16")]  # fmt: skip


@pytest.fixture(params=PRECISIONS, ids=[p.name for p in PRECISIONS])
def precision(request):
    """float32, float64, and float32 with bfloat16 products: the tests parametrised by the
    tables run in each."""
    return request.param


@pytest.fixture(params=[denseprop, ref], ids=["compiled", "reference"])
def impl(request):
    """The compiled kernels and their NumPy twins: properties both must have."""
    return request.param


# Each loss with each kind of target it accepts.
LOSS_TARGETS = [
    ("softmax_cross_entropy", "labels"),
    ("softmax_cross_entropy", "targets"),
    ("sigmoid_cross_entropy", "targets"),
    ("mse", "targets"),
    ("half_poisson_deviance", "targets"),
]


def loss_target(rng, dtype, kind, batch, n):
    """Integer labels ``(batch,)`` in ``[0, n)``, or targets ``(batch, n)`` in ``[0, 1)``."""
    if kind == "labels":
        return rng.integers(0, n, batch)
    return rng.random((batch, n)).astype(dtype)


# The activations and losses as the compiled module declares them: the parametrisations follow
# the table (tests/test_tables.py checks that the reference covers it exactly).
ACTIVATIONS = [a["name"] for a in denseprop._core.activations()]
HIDDEN = [a["name"] for a in denseprop._core.activations() if a["hidden"]]
NEEDS_Z = [a["name"] for a in denseprop._core.activations() if a["needs_z"]]

# (loss, output activation): the fused pairs, softmax meeting mse through its JVP, and exp
# (the poisson loss's output) meeting mse through its derivative.
OUTPUTS = [
    ("cross_entropy", "softmax"),
    ("binary_cross_entropy", "sigmoid"),
    ("mse", "identity"),
    ("poisson", "exp"),
    ("mse", "softmax"),
    ("mse", "tanh"),
    ("mse", "exp"),
]


def targets(rng, loss, batch, n, dtype, labels=True):
    """Labels (cross-entropy, ``labels``), probabilities (cross-entropy), else ``[0, 1)`` (also
    counts' rates for poisson)."""
    if loss == "cross_entropy" and labels:
        return rng.integers(0, n, batch)
    if loss == "cross_entropy":
        return rng.dirichlet(np.ones(n), batch).astype(dtype)
    return rng.random((batch, n)).astype(dtype)


def network(sizes, hidden, loss, output, dtype, seed=1, compute_dtype=None):
    """A Network with non-zero biases, so their gradients are tested through the forward."""
    net = denseprop.Network(
        sizes, hidden, loss, output_activation=output, dtype=dtype, seed=seed,
        compute_dtype=compute_dtype,
    )  # fmt: skip
    for b in net.biases:
        b[...] = np.random.default_rng(seed).standard_normal(b.shape) * 0.3
    return net


def snapshot(net):
    """Copies of everything a failed call must leave as it was."""
    first, second = net._core.optimizer_state
    capacity, addresses = net._core.workspace()
    return {
        "params": net._core.params.copy(),
        "optimizer_first": first.copy(),
        "optimizer_second": second.copy(),
        "optimizer_steps": net._core.optimizer_steps,
        "workspace": (capacity, list(addresses)),
        "optimizer": net.optimizer,
        "loss_curve": list(net.loss_curve_),
    }


def assert_unchanged(net, before):
    """Everything ``snapshot`` took is as it was (only the keys in ``before``)."""
    after = snapshot(net)
    for key, value in before.items():
        if isinstance(value, np.ndarray):
            assert after[key].tobytes() == value.tobytes(), key
        else:
            assert after[key] == value, key


class ArrayLike:
    """An array behind one protocol only, as a tensor or another library's array offers it."""

    def __init__(self, a):
        self.array = a

    def __repr__(self):
        return f"{type(self).__name__}({self.array.dtype}{self.array.shape})"


class WithArray(ArrayLike):
    def __array__(self, dtype=None, copy=None):
        return self.array


class WithInterface(ArrayLike):
    @property
    def __array_interface__(self):
        return self.array.__array_interface__


class WithDLPack(ArrayLike):
    def __dlpack__(self, **kwargs):
        return self.array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.array.__dlpack_device__()


# Each protocol an array-like may offer alone, and a class that offers only it.
PROTOCOLS = {"__array__": WithArray, "__array_interface__": WithInterface,
             "__dlpack__": WithDLPack}  # fmt: skip
