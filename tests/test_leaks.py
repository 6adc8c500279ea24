"""The resident memory stays flat over many kernel calls and Network lifetimes: no call keeps
a reference, a buffer or a workspace it should have let go.

DENSEPROP_LONG_LEAK_RUN=1 runs the long version: 1,000,000 kernel calls and 10,000 Networks.
"""

import os
import resource

import denseprop
import numpy as np
import pytest
from conftest import PROTOCOLS, randn

LONG = os.environ.get("DENSEPROP_LONG_LEAK_RUN", "") not in ("", "0")
KERNEL_CALLS = 1_000_000 if LONG else 100_000
NETWORKS = 10_000 if LONG else 1_000
# A leaked result array (the smallest here is 2 KiB) or a leaked Network workspace would grow
# the process by hundreds of MiB over these runs; the allocator's own drift stays far below.
GROWTH_BOUND = 16 * 2**20

pytestmark = pytest.mark.skipif(
    os.environ.get("DENSEPROP_SANITIZED", "") == "1",
    reason="AddressSanitizer's quarantine holds freed memory back on purpose",
)


def rss():
    """Resident set size of this process, in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def kernel_calls(rng):
    """One call of each kernel (and one of each error path) on arrays of at least 2 KiB."""
    x, w = randn(rng, np.float32, 32, 24), randn(rng, np.float32, 16, 24)
    b = randn(rng, np.float32, 16)
    a = denseprop.dense_forward(x, w, b, "sigmoid")
    out = np.empty_like(a)
    labels = rng.integers(0, 16, 32)
    calls = [
        lambda: denseprop.dense_forward(x, w, b, "tanh", out),
        lambda: denseprop.dense_backward(x, w, a, a, "sigmoid"),
        lambda: denseprop.sigmoid(x),
        lambda: denseprop.sigmoid_backward(a, a),
        lambda: denseprop.softmax(a),
        lambda: denseprop.softmax_backward(a, a),
        lambda: denseprop.softmax_jacobian(a[:2]),
        lambda: denseprop.softmax_cross_entropy(a, labels, "none"),
        lambda: denseprop.sigmoid_cross_entropy(a, a),
        lambda: denseprop.mse(a, a, "sum"),
        lambda: denseprop.activation_forward(x, "leaky_relu"),
        lambda: denseprop.activation_backward(a, a, "tanh"),
        lambda: denseprop.activation_jacobian(a[:2], "sigmoid"),
        lambda: denseprop.dense_forward(x[:, ::2], w[:, ::2], b),  # strided inputs are copied
        lambda: denseprop.dense_forward(x.tolist(), w.astype(np.float64), b.astype(np.float64)),
        *(lambda wrap=wrap: denseprop.dense_forward(wrap(x), w, b) for wrap in PROTOCOLS.values()),
    ]
    failing = [
        lambda: denseprop.dense_forward(x, w.T, b),
        lambda: denseprop.dense_forward(a, w[:, :16].copy(), b, "identity", a),  # aliased out
        lambda: denseprop.softmax_cross_entropy(a, labels + 16),
        lambda: denseprop.mse(a, x),
        lambda: denseprop.sigmoid([[1.0, 2.0], [3.0]]),  # ragged: numpy's error, chained
        lambda: denseprop.sigmoid("text"),
    ]
    return calls, failing


def test_kernel_calls_do_not_grow_memory():
    calls, failing = kernel_calls(np.random.default_rng(0))
    every = calls + failing

    def run(n):
        for i in range(n):
            try:
                every[i % len(every)]()
            except (TypeError, ValueError):
                pass

    run(5_000)  # allocator pools and NumPy's caches reach their steady size
    before = rss()
    run(KERNEL_CALLS)
    growth = rss() - before
    assert growth < GROWTH_BOUND, f"{growth / 2**20:.1f} MiB over {KERNEL_CALLS} calls"


def test_network_lifetimes_do_not_grow_memory():
    rng = np.random.default_rng(1)
    x, y = randn(rng, np.float64, 64, 20), rng.integers(0, 5, 64)

    def lifetimes(n):
        for i in range(n):
            net = denseprop.Network([20, 32, 5], "relu", dtype=np.float64, seed=i)
            net.set_optimizer("adam", 1e-3)
            net.train_step(x, y)
            net.partial_fit(x, y, batch_size=16, seed=i)
            net.forward(x)
            net.per_sample_gradients(x[:8], y[:8])
            net.per_sample_gradient_norms(x, y)
            net.set_optimizer("dpsgd", 1e-3, clip_norm=1.0, noise_multiplier=1.0, seed=i)
            net.train_step(x, y)

    lifetimes(100)
    before = rss()
    lifetimes(NETWORKS)
    growth = rss() - before
    assert growth < GROWTH_BOUND, f"{growth / 2**20:.1f} MiB over {NETWORKS} Networks"
