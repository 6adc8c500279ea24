"""Each kernel against its NumPy twin at a small, a medium and a large size, in one run.

    python bench/bench_kernels.py [--dtype float32] [--budget 0.5]

Prints the median per call of both and the speed-up of the compiled kernel.
"""

import argparse

import denseprop
import denseprop.reference as ref
import numpy as np
from timing import interleaved

# (batch, in, out) per size
SIZES = {"small": (1, 64, 32), "medium": (64, 784, 256), "large": (1024, 784, 256)}


def cases(dtype, batch, n_in, n_out):
    """{kernel: lambda impl: call} for the arrays of one size."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, n_in)).astype(dtype)
    w = (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    a = ref.sigmoid(x @ w.T + b)
    g = rng.standard_normal((batch, n_out)).astype(dtype)
    s = ref.softmax(g)
    labels = rng.integers(0, n_out, batch)
    targets = rng.random((batch, n_out)).astype(dtype)
    return {
        "dense_forward sigmoid": lambda m: m.dense_forward(x, w, b, "sigmoid"),
        "dense_backward sigmoid": lambda m: m.dense_backward(x, w, a, g, "sigmoid"),
        "sigmoid": lambda m: m.sigmoid(g),
        "sigmoid_backward": lambda m: m.sigmoid_backward(a, g),
        "softmax": lambda m: m.softmax(g),
        "softmax_backward": lambda m: m.softmax_backward(s, g),
        "softmax_cross_entropy": lambda m: m.softmax_cross_entropy(g, labels),
        "sigmoid_cross_entropy": lambda m: m.sigmoid_cross_entropy(g, targets),
        "mse": lambda m: m.mse(g, targets),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dtype", nargs="+", default=["float32", "float64"])
    parser.add_argument("--budget", type=float, default=0.4, help="seconds per comparison")
    args = parser.parse_args(argv)
    print("| kernel | dtype | size (batch, in, out) | denseprop | NumPy | speed-up |")
    print("| --- | --- | --- | --- | --- | --- |")
    for dtype in args.dtype:
        for size, shape in SIZES.items():
            for kernel, call in cases(dtype, *shape).items():
                # the lambdas run inside this iteration, so they see this iteration's call
                pair = {"denseprop": lambda: call(denseprop), "numpy": lambda: call(ref)}  # noqa: B023
                timed = interleaved(pair, budget_s=args.budget, chunk_s=0.05, settle_s=0.05)
                d, n = timed["denseprop"]["median_s"], timed["numpy"]["median_s"]
                print(f"| {kernel} | {dtype} | {size} {shape} | {d * 1e6:.1f} µs | "
                      f"{n * 1e6:.1f} µs | {n / d:.2f}× |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
