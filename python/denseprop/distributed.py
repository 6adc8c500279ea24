"""Data-parallel training over MPI: each process (rank) steps on its own shard of the data and
every rank holds bitwise the same parameters after every step.

A step on a rank's batch, as Horovod and PyTorch's DDP take it (C++: distributed.hpp):

1. C++ forms the gradient of the batch's *summed* loss in the network's gradient buffer (for
   DP-SGD the sum of the per-sample gradients, each clipped); an empty batch contributes 0.
2. One small ``Allreduce`` of (loss, samples, weight), then one of the gradient buffer in place
   (a NumPy view of the C++ buffer, no copy): `_Reduction`, called back from C++.
3. The optimizer step on the sum divided by the global sample count (with sample weights, the
   global sum of the weights), the same on every rank (DP-SGD adds its seeded noise once, the
   same on every rank, so it is one process's noise).

Arguments are checked before the first collective, and an error on any rank is raised on every
rank. `Strategy` hands these steps to the one training loop that `Network.fit` runs.

So a step equals one process's step on the concatenated batches, weighted by their true sizes.
This module is imported only when a communicator is passed: ``import denseprop`` never imports
mpi4py. Use it through ``Network.train_step(x, y, comm=...)`` and ``Network.fit(..., comm=...)``.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Callable

import numpy as np
from mpi4py import MPI
from numpy.typing import ArrayLike, NDArray

from . import _checks
from ._metrics import check_targets, r2, weighted_hits
from ._seam import seam_of
from ._tables import LOSSES
from ._training import diverged

__all__ = ["Agreement", "Strategy", "broadcast_parameters", "score", "train_step"]

# Errors raised on every rank with their own type; any other becomes a RuntimeError.
_ERRORS: dict[str, type[Exception]] = {
    e.__name__: e for e in (TypeError, ValueError, FloatingPointError, MemoryError, OverflowError)
}

_Report = tuple[int, str, str]  # rank, exception type, message


def _raise_agreed(reports: Sequence[_Report | None], cause: BaseException | None) -> None:
    """Raise, on every rank, the error of the first rank that reported one."""
    rank, kind, message = next(r for r in reports if r is not None)
    if kind in _ERRORS:
        msg = f"rank {rank}: {message}"
        raise _ERRORS[kind](msg) from cause
    msg = f"rank {rank}: {kind}: {message}"
    raise RuntimeError(msg) from cause


def _report(comm: MPI.Comm, error: BaseException | None) -> _Report | None:
    return None if error is None else (comm.rank, type(error).__name__, str(error))


class Agreement:
    """``with Agreement(comm, undo) as agreed: ...; agreed.settings = {...}``: an exception
    inside the block on any rank is raised on every rank, as are settings that differ between
    ranks; ``undo`` runs first on each. No collective may run inside the block (a rank that
    failed would not reach it); the one at its end is reached by every rank."""

    def __init__(self, comm: MPI.Comm, undo: Callable[[], None]) -> None:
        self.comm, self.undo = comm, undo
        self.settings: dict[str, Any] = {}
        # For seed=None: fresh entropy, drawn once and the same on every rank.
        self.seed: int = comm.bcast(np.random.SeedSequence().entropy, root=0)

    def __enter__(self) -> Agreement:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if error is not None and not isinstance(error, Exception):
            return  # KeyboardInterrupt, SystemExit: not a bad argument, let it end the process
        everyone = self.comm.allgather((_report(self.comm, error), self.settings))
        reports = [report for report, _ in everyone]
        if any(r is not None for r in reports):
            self.undo()
            _raise_agreed(reports, error)
        for key, value in everyone[0][1].items():
            values = [settings.get(key) for _, settings in everyone]
            if any(v != value for v in values):
                self.undo()
                msg = f"{key}: must be the same on every rank, got {values} on ranks 0.."
                raise ValueError(msg)


def broadcast_parameters(net: Any, comm: MPI.Comm, root: int = 0) -> None:
    """Copy the parameters and the optimizer's state of rank ``root`` to every rank.

    Every rank must call it, with networks of the same sizes and dtype.
    """
    core = seam_of(net).core
    first, second = core.optimizer_state
    for buffer in (core.params, first, second):
        comm.Bcast(buffer, root=root)
    core.optimizer_steps = comm.bcast(core.optimizer_steps, root=root)


def _expect_same_parameters(net: Any, comm: MPI.Comm) -> None:
    """Raise on every rank if the ranks' parameters are not bitwise the same (checksums)."""
    sums = comm.allgather(zlib.crc32(net.params.tobytes()))
    if len(set(sums)) > 1:
        msg = (
            "the ranks' parameters differ (CRC-32 per rank: "
            f"{', '.join(f'{s:08x}' for s in sums)}); the MPI library's Allreduce did not give "
            "every rank the same sum"
        )
        raise RuntimeError(msg)


def train_step(
    net: Any, x: ArrayLike, y: ArrayLike, comm: MPI.Comm, sample_weight: ArrayLike | None = None
) -> float:
    """`Network.train_step` with ``comm``: one step on the union of every rank's batch, each
    rank's ``sample_weight`` its own samples'; returns its (weighted) mean loss. The ranks must
    hold the same network and parameters (see `broadcast_parameters`); networks of different
    sizes make the gradients' Allreduce fail, which MPI reports by ending the job (fit checks
    the networks agree before it starts)."""
    seam = seam_of(net)
    core = seam.core
    core.dropout_stream = comm.rank + 1  # each rank's own dropout masks
    failure: Exception | None = None
    xa: Any = None
    ya: Any = None
    try:  # the step's own checks, before any collective a failed rank would not reach
        xa, ya = seam.inputs(x), seam.targets(y)
        if (xa.shape[0] if xa.ndim else 0) == 0:  # no samples here in this step: it adds 0
            _expect_empty(net, xa, ya, sample_weight)
            xa = ya = sample_weight = None
        else:
            core.check(xa, ya, sample_weight)
    except Exception as e:
        failure = e
    if comm.allreduce(failure is not None, op=MPI.LOR):
        _raise_agreed(comm.allgather(_report(comm, failure)), failure)
    loss, count = core.distributed_step(xa, ya, _Reduction(core, comm), sample_weight)
    mean = float(loss / count)
    if not math.isfinite(mean):
        where, state = "", "as before the step"
        raise diverged(where, mean, core.optimizer.lr, state)
    return mean


class _Reduction:
    """A step's sum over the ranks, in place: its (loss, samples, weight), then the gradient
    buffer."""

    def __init__(self, core: Any, comm: MPI.Comm) -> None:
        self.grads, self.comm = core.gradient_buffer, comm

    def __call__(self, loss: float, samples: int, weight: float) -> tuple[float, int, float]:
        stats = np.array([loss, samples, weight], dtype=np.float64)
        self.comm.Allreduce(MPI.IN_PLACE, stats, op=MPI.SUM)
        self.comm.Allreduce(MPI.IN_PLACE, self.grads, op=MPI.SUM)
        return float(stats[0]), int(stats[1]), float(stats[2])


def _expect_empty(net: Any, x: NDArray[Any], y: NDArray[Any], sample_weight: Any) -> None:
    """An empty batch must still have the shapes of a batch: x (0, inputs), y (and
    ``sample_weight``, if given) with 0 rows."""
    if x.shape != (0, net.sizes[0]):
        msg = f"x: expected shape (batch, {net.sizes[0]}), got {x.shape}"
        raise ValueError(msg)
    if y.shape[:1] != (0,):
        msg = f"y: expected 0 rows to match x's batch of 0, got shape {y.shape}"
        raise ValueError(msg)
    if sample_weight is not None and np.shape(sample_weight) != (0,):
        shape = np.shape(sample_weight)
        msg = f"sample_weight: expected shape (0,) to match x's batch of 0, got {shape}"
        raise ValueError(msg)


class Strategy:
    """The one training loop's steps over MPI (`_training.Strategy`): each rank reshuffles its
    own shard from one seed, every epoch takes as many steps on every rank (the most batches of
    any shard; a rank whose shard ran out steps with empty batches), each step summed over the
    ranks; after each epoch the ranks' parameters are checked to be the same. Only rank 0
    prints."""

    def __init__(self, net: Any, comm: MPI.Comm) -> None:
        self.comm: MPI.Comm = comm
        self.leader = comm.rank == 0
        self.prechecks = True
        core = seam_of(net).core
        core.dropout_stream = comm.rank + 1  # each rank's own dropout masks
        self.reduce = _Reduction(core, comm)
        self.after_epoch: Callable[[], None] | None = lambda: _expect_same_parameters(net, comm)

    def agreement(self, undo: Callable[[], None]) -> Agreement:
        return Agreement(self.comm, undo)

    def batching(self, n: int, batch_size: Any, seed: Any,
                 fresh_seed: int | None) -> tuple[int, np.random.Generator]:  # fmt: skip
        """``batch_size`` per rank, and the generator of ``seed``: an int, the same on every
        rank, or None for ``fresh_seed``, drawn once for all ranks."""
        batch_size = _checks.count(batch_size, "batch_size")
        if seed is None:
            return batch_size, _checks.generator(fresh_seed)
        return batch_size, _checks.generator(_checks.count(seed, "seed", low=0))

    def start(self, net: Any) -> None:
        """Rank 0's parameters and optimizer state on every rank."""
        broadcast_parameters(net, self.comm)

    def score(self, net: Any, x: NDArray[Any], y: NDArray[Any], sample_weight: Any) -> float:
        return score(net, x, y, self.comm, sample_weight)

    def seed(self, rng: np.random.Generator) -> int:
        """This rank's own, drawn from ``rng`` (the same on every rank)."""
        return int(np.random.default_rng([int(rng.integers(2**63)), self.comm.rank])
                   .integers(2**63))  # fmt: skip

    def steps(self, n: int, batch_size: int) -> int:
        return int(self.comm.allreduce(-(-n // batch_size), op=MPI.MAX))


def score(
    net: Any, x: NDArray[Any], y: NDArray[Any], comm: MPI.Comm, sample_weight: Any = None
) -> float:
    """`Network.score` of the union of every rank's ``(x, y)``, each rank's samples weighted by
    its ``sample_weight`` (a rank's may sum to 0): accuracy, or R² (the mean over outputs), from
    sums reduced over the ranks; the same value on every rank."""
    seam = seam_of(net)
    x, y = seam.inputs(x), np.asarray(y)
    labels = bool(LOSSES[net.loss]["labels"]) and y.ndim == 1
    check_targets(y, x.shape[0] if x.ndim else 0, net.sizes[-1], labels)
    if sample_weight is not None:
        seam.core.check(x, seam.targets(y), sample_weight)  # the weights as a step takes them
        sample_weight = np.asarray(sample_weight, dtype=np.float64)
    out = net.forward(x)
    if net.is_classifier:
        hits = comm.allreduce(np.array(weighted_hits(net.loss, out, y, sample_weight)))
        return float(hits[0] / hits[1])
    out = out.astype(np.float64)
    t = y.reshape(out.shape).astype(np.float64)
    w = np.ones((1, len(t))) if sample_weight is None else sample_weight[None, :]
    sums = comm.allreduce(np.concatenate([w.sum(axis=1), (w * t.T).sum(axis=1)]))
    mean = sums[1:] / sums[0]
    squares = np.stack([(w * (t - out).T ** 2).sum(axis=1), (w * (t - mean).T ** 2).sum(axis=1)])
    return r2(*comm.allreduce(squares))
