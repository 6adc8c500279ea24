"""What per-sample gradients cost: a DP-SGD step against a plain SGD step, and the per-sample
gradient norms against one `gradients` call, interleaved (see timing.py).

    python bench/bench_per_sample.py [--dtype float32 float64] [--batch 256] [--budget 2]
                                     [--threads N]

Prints the median per call and the ratios; the targets are DP-SGD ≤ ~1.5× SGD and
norms ≈ 1× gradients.
"""

import argparse

import denseprop
import numpy as np
from timing import interleaved

SIZES = [784, 256, 128, 10]


def networks(dtype, batch):
    rng = np.random.default_rng(0)
    x = rng.random((batch, SIZES[0])).astype(dtype)
    y = rng.integers(0, SIZES[-1], batch)
    sgd = denseprop.Network(SIZES, "sigmoid", dtype=dtype, seed=0).set_optimizer("sgd", 0.01)
    dp = denseprop.Network(SIZES, "sigmoid", dtype=dtype, seed=0)
    dp.set_optimizer("dpsgd", 0.01, clip_norm=1.0, noise_multiplier=1.1, seed=0)
    return x, y, sgd, dp


def time_calls(x, y, sgd, dp, budget_s):
    """Median milliseconds of each call, taking turns."""
    t = interleaved(
        {
            "dpsgd": lambda: dp.train_step(x, y),
            "sgd": lambda: sgd.train_step(x, y),
            "norms": lambda: sgd.per_sample_gradient_norms(x, y),
            "gradients": lambda: sgd.gradients(x, y),
        },
        budget_s=budget_s,
    )
    return {name: r["median_s"] * 1e3 for name, r in t.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dtype", nargs="+", default=["float32", "float64"])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--budget", type=float, default=2.0, help="seconds per comparison")
    parser.add_argument("--threads", type=int, help="threads of the matrix products")
    args = parser.parse_args(argv)
    if args.threads:
        denseprop.set_num_threads(args.threads)
    module, threads = denseprop.build_info()["module"], denseprop.get_num_threads()
    print(f"{'-'.join(map(str, SIZES))}, batch {args.batch}, {module} module, {threads} threads")
    print("| dtype | dpsgd step | sgd step | ratio | norms | gradients | ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for dtype in args.dtype:
        ms = time_calls(*networks(dtype, args.batch), args.budget)
        print(f"| {dtype} | {ms['dpsgd']:.2f} ms | {ms['sgd']:.2f} ms | "
              f"{ms['dpsgd'] / ms['sgd']:.2f}× | {ms['norms']:.2f} ms | "
              f"{ms['gradients']:.2f} ms | {ms['norms'] / ms['gradients']:.2f}× |",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
