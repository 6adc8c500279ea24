"""Python threads calling kernels and Networks at once get bitwise the results of running the
same calls one after another; threads training one Network take turns, whole call by call."""

import os
import pathlib
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import denseprop
import numpy as np
import pytest
from conftest import randn

THREADS = 8


def workload(seed, dtype=np.float32):
    """Every kind of kernel call and a Network's training, from ``seed``: a tuple of arrays."""
    rng = np.random.default_rng(seed)
    x, w, b = randn(rng, dtype, 33, 40), randn(rng, dtype, 24, 40), randn(rng, dtype, 24)
    a = denseprop.dense_forward(x, w, b, "sigmoid")
    grads = denseprop.dense_backward(x, w, a, randn(rng, dtype, 33, 24), "sigmoid")
    labels = rng.integers(0, 24, 33)
    loss, grad_logits = denseprop.softmax_cross_entropy(a, labels, "none")
    net = Network(dtype, seed)
    net.set_optimizer("adam", 1e-3)
    net.partial_fit(x, labels % 10, batch_size=8, seed=seed)
    net.fit(x, labels % 10, epochs=2, batch_size=16, seed=seed)
    return (a, *grads, loss, grad_logits, denseprop.softmax(a), net.forward(x), *net.weights)


def Network(dtype, seed):
    return denseprop.Network([40, 16, 10], "tanh", dtype=dtype, seed=seed)


def run_together(fn, args):
    """``fn(arg)`` for each arg, each in its own thread, all released at once."""
    start = threading.Barrier(len(args))

    def call(arg):
        start.wait()
        return fn(arg)

    with ThreadPoolExecutor(len(args)) as pool:
        return list(pool.map(call, args))


def assert_bitwise_equal(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        assert g.tobytes() == w.tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_threads_on_separate_data_match_a_serial_run_bitwise(dtype):
    seeds = range(THREADS)
    serial = [workload(s, dtype) for s in seeds]
    for _ in range(3):
        for got, want in zip(run_together(lambda s: workload(s, dtype), seeds), serial):
            assert_bitwise_equal(got, want)


def test_two_threads_stepping_one_network_take_turns():
    rng = np.random.default_rng(1)
    x, y = randn(rng, np.float32, 64, 40), rng.integers(0, 10, 64)
    shared, serial = Network(np.float32, 0), Network(np.float32, 0)
    for net in (shared, serial):
        net.set_optimizer("sgd", 0.05, momentum=0.9)
    # Every step takes the same batch, so any order of 2 × 40 whole steps ends at the same weights.
    run_together(lambda _: [shared.train_step(x, y) for _ in range(40)], range(2))
    for _ in range(80):
        serial.train_step(x, y)
    assert_bitwise_equal(shared.weights + shared.biases, serial.weights + serial.biases)
    assert shared._core.optimizer_steps == 80


def test_two_threads_fitting_one_network_take_turns_whole_fits():
    rng = np.random.default_rng(2)
    x, y = randn(rng, np.float64, 50, 40), rng.integers(0, 10, 50)
    shared, serial = Network(np.float64, 0), Network(np.float64, 0)

    def fit(net):
        return net.fit(x, y, epochs=3, batch_size=8, optimizer="adam", lr=1e-3, seed=4)

    def gradients(net):
        return net.gradients(x[:9], y[:9])

    # fit restarts the optimizer and reshuffles from its seed, so two whole fits in either order
    # are the same; interleaved epochs would not be. gradients alongside must see whole states.
    results = run_together(lambda job: job(shared), [fit, fit, gradients, gradients])
    fit(serial)
    fit(serial)
    assert_bitwise_equal(shared.weights + shared.biases, serial.weights + serial.biases)
    assert shared.loss_curve_ == serial.loss_curve_
    for loss, grads in results[2:]:
        assert np.isfinite(loss)
        for gw, gb in grads:
            assert np.isfinite(gw).all() and np.isfinite(gb).all()


def rerun(env, extra=""):
    """This module's in-process tests in a child process with ``env`` added."""
    code = f"{extra}\nimport sys, pytest\nsys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', "
    code += f"'-k', 'not child', {__file__!r}]))"
    result = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True,
        cwd=pathlib.Path(__file__).parent,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
    return result.stdout


def test_in_a_child_with_one_openmp_thread():
    rerun({"OMP_NUM_THREADS": "1"})


def test_in_a_child_with_torch_imported_first():
    pytest.importorskip("torch")
    # torch first: its OpenMP runtime and thread pool are set up before denseprop's GEMMs run.
    rerun({}, "import torch, numpy\ntorch.ones(64, 64) @ torch.ones(64, 64)")
