import denseprop
import denseprop.reference as ref
import numpy as np
import pytest

# The one statement of how closely a kernel must match the reference, per dtype.
# atol is multiplied by the magnitude of the values being compared (see assert_close).
TOLERANCES = {
    np.dtype(np.float32): {"rtol": 1e-5, "atol": 1e-6},
    np.dtype(np.float64): {"rtol": 1e-12, "atol": 1e-12},
}


def assert_close(actual, expected, dtype, scale=None):
    """Assert ``actual`` matches ``expected`` within the tolerance of ``dtype``.

    Arrays must also agree in shape, and ``actual`` must have ``dtype``. ``scale``
    (default: the largest ``|expected|``, at least 1) multiplies atol, so values
    that come out near zero from large terms are judged against the size of
    those terms; pass a larger scale where cancellation is expected.
    """
    dtype = np.dtype(dtype)
    if isinstance(actual, np.ndarray):
        assert actual.dtype == dtype, f"dtype {actual.dtype}, expected {dtype}"
        assert actual.shape == np.shape(expected), f"shape {actual.shape}"
    if scale is None:
        scale = max(1.0, float(np.max(np.abs(expected))))
    tol = TOLERANCES[dtype]
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
]


def loss_target(rng, dtype, kind, batch, n):
    """Integer labels ``(batch,)`` in ``[0, n)``, or targets ``(batch, n)`` in ``[0, 1)``."""
    if kind == "labels":
        return rng.integers(0, n, batch)
    return rng.random((batch, n)).astype(dtype)


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
