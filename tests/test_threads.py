"""Large products are split over threads; every thread count gives the reference's result."""

import subprocess
import sys

import denseprop
import denseprop.reference as ref
import numpy as np
import pytest
from conftest import assert_close, randn


# Sizes large enough to be split: columns (batch 300 > 256 outputs) and rows (batch 40), with
# a thread count that does not divide them evenly.
@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("batch", [40, 300])
def test_dense_layer_matches_reference_on_any_thread_count(
    restore_threads, n_threads, batch, dtype
):
    denseprop.set_num_threads(n_threads)
    rng = np.random.default_rng(batch)
    x, w, b = randn(rng, dtype, batch, 301), randn(rng, dtype, 257, 301), randn(rng, dtype, 257)
    a = denseprop.dense_forward(x, w, b, "sigmoid")
    assert_close(a, ref.dense_forward(x, w, b, "sigmoid"), dtype)
    grad_a = randn(rng, dtype, *a.shape)
    for got, want in zip(
        denseprop.dense_backward(x, w, a, grad_a, "sigmoid"),
        ref.dense_backward(x, w, a, grad_a, "sigmoid"),
    ):
        assert_close(got, want, dtype)


@pytest.mark.parametrize("n_threads", [1, 3])
def test_training_step_matches_reference_on_any_thread_count(restore_threads, n_threads, dtype):
    denseprop.set_num_threads(n_threads)
    rng = np.random.default_rng(5)
    net = denseprop.Network([300, 260, 10], dtype=dtype, seed=1)
    params = [(w.copy(), b.copy()) for w, b in zip(net.weights, net.biases)]
    x, y = randn(rng, dtype, 200, 300), rng.integers(0, 10, 200)
    net.set_optimizer("sgd", 0.5)
    net.train_step(x, y)
    weights, biases = [w for w, _ in params], [b for _, b in params]
    acts = ["sigmoid", "softmax"]
    _, grads = ref.network_loss_and_gradients(weights, biases, x, y, acts, "cross_entropy")
    ref.sgd_step(params, grads, None, 0.5)
    for (w, b), (w_ref, b_ref) in zip(zip(net.weights, net.biases), params):
        assert_close(w, w_ref, dtype)
        assert_close(b, b_ref, dtype)


def test_forked_child_starts_its_own_workers():
    # The parent's workers do not exist in a fork()ed child (multiprocessing's default on
    # Linux); the child must not wait for them.
    code = """
import os
import numpy as np
import subprocess
import sys

import denseprop
x, w = np.ones((300, 301), np.float32), np.ones((257, 301), np.float32)
b = np.zeros(257, np.float32)
denseprop.dense_forward(x, w, b)
pid = os.fork()
if pid == 0:
    a = denseprop.dense_forward(x, w, b)
    os._exit(0 if (a == 301).all() else 1)
_, status = os.waitpid(pid, 0)
raise SystemExit(os.waitstatus_to_exitcode(status))
"""
    result = subprocess.run(
        [sys.executable, "-W", "ignore::DeprecationWarning", "-c", code], timeout=120
    )
    assert result.returncode == 0
