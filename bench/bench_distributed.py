"""Data-parallel training on one machine: time per epoch of an MNIST-sized set (60,000 × 784,
784-256-128-10, sigmoid, float32, SGD, batch 128 per rank) for 1 rank × 2 threads and 2 ranks ×
1 thread, and the share of each step spent in Allreduce.

    python bench/bench_distributed.py [--samples 60000] [--epochs 1] [--json PATH]

launches itself under mpiexec for each configuration (``--worker`` marks such a run) and
prints a Markdown table. ``--samples`` trains on a subset and scales the epoch time to 60,000
samples (the steps of an epoch are alike). Per configuration it reports:

- epoch: the time of one epoch, scaled to 60,000 samples, per-rank batch 128 (so the 2-rank
  epoch has half the steps, each on 256 samples);
- step: its median step, and the share of the step spent inside the two Allreduce calls (the
  small one of loss, count and error flag, and the gradient buffer's), waiting for the slower
  rank included;
- without MPI (1 rank only): the epoch of `Network.fit` without a communicator, scaled alike;
- allreduce alone: the median of the gradient buffer's Allreduce timed back to back after a
  barrier, the communication without the waiting.
"""

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np

SIZES = [784, 256, 128, 10]
BATCH = 128
FULL = 60_000
CONFIGS = [(1, 2), (2, 1), (1, 1)]  # (ranks, threads per rank); 1 × 1: one rank's compute


class TimedComm:
    """An mpi4py communicator whose Allreduce calls add their time to ``seconds``."""

    def __init__(self, comm):
        self._comm, self.seconds, self.calls = comm, 0.0, 0

    def Allreduce(self, *args, **kwargs):
        start = time.perf_counter()
        self._comm.Allreduce(*args, **kwargs)
        self.seconds += time.perf_counter() - start
        self.calls += 1

    def __getattr__(self, name):
        return getattr(self._comm, name)


def worker(samples, epochs):
    """One configuration, every rank running this; rank 0 returns its figures."""
    import denseprop
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    rng = np.random.default_rng(comm.rank)  # each rank its own shard
    n = samples // comm.size
    x = rng.random((n, SIZES[0]), dtype=np.float32)
    y = rng.integers(0, SIZES[-1], n)
    net = denseprop.Network(SIZES, "sigmoid", seed=0)
    timed = TimedComm(comm)
    net.fit(x[: 4 * BATCH], y[: 4 * BATCH], epochs=1, batch_size=BATCH, comm=comm)  # warm-up
    steps = []

    class StepClock(TimedComm):
        def Allreduce(self, *args, **kwargs):
            super().Allreduce(*args, **kwargs)
            if self.calls % 2 == 0:  # the gradient buffer's: a step ended
                steps.append(time.perf_counter())

    clock = StepClock(comm)
    comm.Barrier()
    start = time.perf_counter()
    net.fit(x, y, epochs=epochs, batch_size=BATCH, lr=0.05, seed=0, comm=clock)
    elapsed = time.perf_counter() - start
    step_times = np.diff(steps)
    allreduce_share = clock.seconds / elapsed

    grads = net._core.gradient_buffer
    comm.Barrier()
    alone = []
    for _ in range(50):
        t = time.perf_counter()
        timed.Allreduce(MPI.IN_PLACE, grads, op=MPI.SUM)
        alone.append(time.perf_counter() - t)
    alone_fit = None
    if comm.size == 1:  # the same epochs without a communicator: the C++ epoch loop
        start = time.perf_counter()
        net.fit(x, y, epochs=epochs, batch_size=BATCH, lr=0.05, seed=0)
        alone_fit = (time.perf_counter() - start) / epochs * FULL / n
    if comm.rank:
        return None
    steps_per_epoch = -(-(FULL // comm.size) // BATCH)
    return {
        "ranks": comm.size,
        "threads": denseprop.get_num_threads(),
        "samples_trained": n * comm.size,
        "epoch_s": elapsed / epochs * FULL / (n * comm.size),
        "median_step_epoch_s": float(np.median(step_times)) * steps_per_epoch,
        "step_ms": float(np.median(step_times)) * 1e3,
        "allreduce_share": allreduce_share,
        "allreduce_alone_ms": float(np.median(alone)) * 1e3,
        "parameter_bytes": int(grads.nbytes),
        "epoch_without_comm_s": alone_fit,
    }


def launch(ranks, threads, samples, epochs):
    mpiexec = pathlib.Path(sys.executable).with_name("mpiexec")
    mpiexec = str(mpiexec) if mpiexec.exists() else shutil.which("mpiexec")
    env = {**os.environ, "DENSEPROP_NUM_THREADS": str(threads), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [mpiexec, "-n", str(ranks), sys.executable, __file__, "--worker",
         "--samples", str(samples), "--epochs", str(epochs)],
        env=env, capture_output=True, text=True, check=True, timeout=3600,
    ).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=FULL)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        result = worker(args.samples, args.epochs)
        if result is not None:
            print(json.dumps(result))
        return
    import denseprop

    print(f"{'-'.join(map(str, SIZES))}, float32, batch {BATCH} per rank, "
          f"{denseprop.build_info()['module']} module; trained on {args.samples} samples × "
          f"{args.epochs} epochs, epoch times scaled to {FULL}")  # fmt: skip
    print("| ranks × threads | epoch (60,000) | without MPI | step | in Allreduce | "
          "Allreduce alone |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- |")
    results = []
    for ranks, threads in CONFIGS:
        r = launch(ranks, threads, args.samples, args.epochs)
        results.append(r)
        without = "" if r["epoch_without_comm_s"] is None else f"{r['epoch_without_comm_s']:.2f} s"
        print(f"| {ranks} × {threads} | {r['epoch_s']:.2f} s | {without} | {r['step_ms']:.2f} ms | "
              f"{r['allreduce_share']:.1%} | {r['allreduce_alone_ms']:.3f} ms |")  # fmt: skip
    mb = results[0]["parameter_bytes"] / 1e6
    step = results[-1]["step_ms"] / 1e3  # one thread's step: a machine's compute per rank
    print(f"parameters: {mb:.2f} MB; a ring all-reduce over N machines moves 2(N-1)/N × that "
          f"per step; that takes as long as one thread's step ({step * 1e3:.2f} ms) at "
          f"{2 * mb / step:.0f} MB/s (large N)")  # fmt: skip
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
