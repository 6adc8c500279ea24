"""``python -m denseprop demo`` trains a network and compares its speed with NumPy's;
``python -m denseprop info`` prints what was built."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import Network, _core, _training, build_info, reference
from .datasets import load_digits


def load_data(seed: int) -> tuple[Any, Any, Any, Any, str]:
    """The handwritten digits shipped with the package, pixels scaled to [0, 1], split 3:1 by
    ``seed``: (x_train, x_test, y_train, y_test, name)."""
    x, y = load_digits()
    x = x / 16
    name = "UCI handwritten digits (8x8 images, 10 classes)"
    order = np.random.default_rng(seed).permutation(len(x))
    split = len(x) * 3 // 4
    train, test = order[:split], order[split:]
    return x[train], x[test], y[train], y[test], name


def distributed_fit(net: Network, x: Any, y: Any, epochs: int, seed: int) -> float:
    """What `Network.fit(x, y, epochs, batch_size=32, lr=0.1, seed=seed)` does, over MPI: the same
    shuffled batches of 32, each rank stepping on its part of every batch (``mpiexec -n N``).
    Fills ``net.loss_curve_``; returns the time per epoch in seconds."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    net.set_optimizer("sgd", 0.1)
    shuffles = _training.LOCAL.seed(np.random.default_rng(seed))  # as fit draws its shuffles
    start = time.perf_counter()
    for k in range(epochs):
        order = _core.permutation(len(x), shuffles, k)
        total = 0.0
        for first in range(0, len(x), 32):
            part = np.array_split(order[first : first + 32], comm.size)[comm.rank]
            total += net.train_step(x[part], y[part], comm=comm) * len(order[first : first + 32])
        net.loss_curve_.append(total / len(x))
    return (time.perf_counter() - start) / epochs


def demo(args: argparse.Namespace) -> int:
    """Train on the digits, print accuracy and epoch times; returns 0."""
    if args.distributed:
        return demo_distributed(args)
    x_train, x_test, y_train, y_test, name = load_data(args.seed)
    print(f"data: {name}; {len(x_train)} training and {len(x_test)} test samples")
    net = Network([64, 32, 10], dtype=args.dtype, seed=args.seed)
    print(f"model: {net}")
    progress = True if args.progress else None
    start = time.perf_counter()
    net.fit(x_train, y_train, epochs=args.epochs, batch_size=32, lr=0.1, seed=args.seed,
            progress=progress)  # fmt: skip
    per_epoch = (time.perf_counter() - start) / args.epochs
    print(f"test accuracy: {net.score(x_test, y_test):.4f} after {args.epochs} epochs")

    params = [(w.astype(args.dtype), b.astype(args.dtype)) for w, b in zip(net.weights, net.biases)]
    x = x_train.astype(args.dtype)
    order = np.arange(len(x))
    start = time.perf_counter()
    reference.fit_epoch(params, x, y_train, order, 32, net.activations, net.loss, 0.1)
    numpy_epoch = time.perf_counter() - start
    print(
        f"time per epoch (batch 32): denseprop {per_epoch * 1e3:.2f} ms, "
        f"NumPy reference {numpy_epoch * 1e3:.2f} ms ({numpy_epoch / per_epoch:.1f}x)"
    )
    if args.plot:
        net.plot_loss_curve(args.plot)
        print(f"loss curve saved to {args.plot}")
    return 0


def demo_distributed(args: argparse.Namespace) -> int:
    """`demo` under ``mpiexec -n N``: the same training, each rank computing on its part of
    every batch; rank 0 prints the test accuracy (the one process's) and the time per epoch."""
    try:
        from mpi4py import MPI
    except ImportError:
        print('--distributed needs mpi4py and an MPI library: pip install "denseprop[mpi]"',
              file=sys.stderr)  # fmt: skip
        return 1
    rank, size = MPI.COMM_WORLD.rank, MPI.COMM_WORLD.size
    x_train, x_test, y_train, y_test, name = load_data(args.seed)
    net = Network([64, 32, 10], dtype=args.dtype, seed=args.seed)
    per_epoch = distributed_fit(net, x_train, y_train, args.epochs, args.seed)
    if rank == 0:
        print(f"data: {name}; {len(x_train)} training and {len(x_test)} test samples")
        print(f"model: {net}; {size} ranks, each computing on its part of every batch of 32")
        print(f"test accuracy: {net.score(x_test, y_test):.4f} after {args.epochs} epochs")
        print(f"time per epoch (batch 32 over {size} ranks): {per_epoch * 1e3:.2f} ms")
        if args.plot:
            net.plot_loss_curve(args.plot)
            print(f"loss curve saved to {args.plot}")
    return 0


def info(_args: argparse.Namespace) -> int:
    """Print `build_info()`, one ``key: value`` a line; returns 0."""
    for key, value in build_info().items():
        print(f"{key}: {value}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m denseprop demo|info``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m denseprop", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    d = commands.add_parser("demo", help="train on digits and compare the speed with NumPy")
    d.add_argument("--epochs", type=int, default=100)
    d.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--progress", action="store_true",
                   help="draw the progress bar even when stderr is not a terminal")  # fmt: skip
    d.add_argument("--plot", metavar="PNG", help="save the loss curve (needs matplotlib)")
    d.add_argument("--distributed", action="store_true",
                   help="under mpiexec -n N: each rank steps on part of every batch")  # fmt: skip
    d.set_defaults(run=demo)
    i = commands.add_parser("info", help="print build_info()")
    i.set_defaults(run=info)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
