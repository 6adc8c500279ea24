"""Network learns from scipy.sparse rows (CSR, CSC, int32 or int64 indices) as from the same
rows dense: train_step, partial_fit, fit with validation, gradients and score. The sparse
first layer sums its non-zeros in another order than the dense GEMM, so the two agree to the
dtype's tolerance, not bitwise."""

import numpy as np
import pytest
import scipy.sparse
from conftest import assert_close
from denseprop import Network

FORMATS = {
    "csr": scipy.sparse.csr_matrix,
    "csc": scipy.sparse.csc_matrix,
    "csr_array": scipy.sparse.csr_array,
    "csr int64": lambda x: wide(scipy.sparse.csr_matrix(x)),
}


def wide(m):
    m.indices, m.indptr = m.indices.astype(np.int64), m.indptr.astype(np.int64)
    return m


@pytest.fixture
def rows(rng, dtype):
    """37 samples of 30 features, 85% zeros, 4 classes."""
    x = rng.standard_normal((37, 30)) * (rng.random((37, 30)) < 0.15)
    return x.astype(dtype), rng.integers(0, 4, 37)


def twins(dtype, optimizer="sgd", **settings):
    nets = [Network([30, 9, 4], "tanh", dtype=dtype, seed=0) for _ in range(2)]
    for net in nets:
        net.set_optimizer(optimizer, 0.1, **settings)
    return nets


def assert_same_parameters(a, b, dtype):
    for wa, wb in zip(a.weights + a.biases, b.weights + b.biases):
        assert_close(wa, wb, dtype)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_train_steps_on_sparse_rows_match_dense(rows, dtype, fmt, optimizer):
    x, y = rows
    sparse, dense = twins(dtype, optimizer)
    for batch in (slice(0, 1), slice(1, 18), slice(18, 37)):  # batch 1 and odd sizes
        got = sparse.train_step(FORMATS[fmt](x[batch]), y[batch])
        assert_close(got, dense.train_step(x[batch], y[batch]), dtype)
    assert_same_parameters(sparse, dense, dtype)


@pytest.mark.parametrize("fmt", FORMATS)
def test_fit_on_sparse_rows_matches_dense(rows, dtype, fmt):
    x, y = rows
    sparse, dense = twins(dtype)
    val = (FORMATS[fmt](x[:10]), y[:10])
    sparse.fit(FORMATS[fmt](x), y, epochs=6, batch_size=8, optimizer="adam", lr=0.01, seed=3,
               validation_data=val)  # fmt: skip
    dense.fit(x, y, epochs=6, batch_size=8, optimizer="adam", lr=0.01, seed=3,
              validation_data=(x[:10], y[:10]))  # fmt: skip
    assert_close(np.array(sparse.loss_curve_, dtype), np.array(dense.loss_curve_, dtype), dtype)
    assert sparse.validation_scores_ == dense.validation_scores_
    assert_same_parameters(sparse, dense, dtype)
    sparse.partial_fit(FORMATS[fmt](x), y, batch_size=8, seed=4)
    dense.partial_fit(x, y, batch_size=8, seed=4)
    assert_close(sparse.loss_curve_[-1], dense.loss_curve_[-1], dtype)
    assert_same_parameters(sparse, dense, dtype)
    assert sparse.score(FORMATS[fmt](x), y) == dense.score(x, y)


def test_gradients_of_sparse_rows_match_dense(rows, dtype):
    x, y = rows
    net = Network([30, 9, 4], "relu", dtype=dtype, seed=1)
    for reduction in ("mean", "sum"):
        loss, grads = net.gradients(scipy.sparse.csr_matrix(x), y, reduction)
        expected_loss, expected = net.gradients(x, y, reduction)
        assert_close(loss, expected_loss, dtype)
        for (gw, gb), (ew, eb) in zip(grads, expected):
            assert_close(gw, ew, dtype)
            assert_close(gb, eb, dtype)


def test_bad_sparse_training_input_is_refused_and_changes_nothing(rows, dtype):
    x, y = rows
    net = Network([30, 9, 4], dtype=dtype, seed=0)
    before = net.params.copy()
    bad = scipy.sparse.csr_matrix(x)
    bad.data[0] = np.nan
    with pytest.raises(ValueError, match="x: contains NaN or inf"):
        net.train_step(bad, y)
    with pytest.raises(ValueError, match="x: contains NaN or inf"):
        net.fit(bad, y, epochs=2)
    with pytest.raises(ValueError, match="x has 29 features, but the network expects 30"):
        net.fit(scipy.sparse.csr_matrix(x[:, :29]), y, epochs=2)
    with pytest.raises(ValueError, match="y"):
        net.train_step(scipy.sparse.csr_matrix(x), y[:-1])
    net.set_optimizer("dpsgd", 0.1)
    with pytest.raises(ValueError, match="x: dpsgd needs dense inputs, got a sparse matrix"):
        net.train_step(scipy.sparse.csr_matrix(x), y)
    np.testing.assert_array_equal(net.params, before)
