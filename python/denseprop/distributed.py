"""Data-parallel training over MPI: each process (rank) steps on its own shard of the data and
every rank holds bitwise the same parameters after every step.

A step on a rank's batch, as Horovod and PyTorch's DDP take it:

1. C++ forms the gradient of the batch's *summed* loss in the network's gradient buffer (for
   DP-SGD the sum of the per-sample gradients, each clipped); an empty batch contributes 0.
2. One small ``Allreduce`` of (loss, samples, failed): the ranks agree on whether any of them
   failed before the collective that could block; if one did, every rank raises its error.
3. One ``Allreduce`` of the gradient buffer in place (a NumPy view of the C++ buffer, no copy).
4. The optimizer step on the sum divided by the global sample count, the same on every rank
   (DP-SGD adds its seeded noise once, the same on every rank, so it is one process's noise).

So a step equals one process's step on the concatenated batches, weighted by their true sizes.
This module is imported only when a communicator is passed: ``import denseprop`` never imports
mpi4py. Use it through ``Network.train_step(x, y, comm=...)`` and ``Network.fit(..., comm=...)``.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
from mpi4py import MPI
from numpy.typing import ArrayLike, NDArray

from ._metrics import r2
from ._tables import OPTIMIZERS

if TYPE_CHECKING:
    from .network import Network

__all__ = ["Agreement", "broadcast_parameters", "epoch", "score", "train_step"]

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


def broadcast_parameters(net: Network, comm: MPI.Comm, root: int = 0) -> None:
    """Copy the parameters and the optimizer's state of rank ``root`` to every rank.

    Every rank must call it, with networks of the same sizes and dtype.
    """
    core = net._core
    first, second = core.optimizer_state
    for buffer in (core.params, first, second):
        comm.Bcast(buffer, root=root)
    core.optimizer_steps = comm.bcast(core.optimizer_steps, root=root)


def _expect_same_parameters(net: Network, comm: MPI.Comm) -> None:
    """Raise on every rank if the ranks' parameters are not bitwise the same (checksums)."""
    sums = comm.allgather(zlib.crc32(net._core.params.tobytes()))
    if len(set(sums)) > 1:
        msg = (
            "the ranks' parameters differ (CRC-32 per rank: "
            f"{', '.join(f'{s:08x}' for s in sums)}); the MPI library's Allreduce did not give "
            "every rank the same sum"
        )
        raise RuntimeError(msg)


def _step(net: Network, x: ArrayLike, y: ArrayLike, comm: MPI.Comm,
          undoable: bool) -> tuple[float, int]:  # fmt: skip
    """One step on every rank's batch: (the global summed loss, the global sample count).

    The loss is NaN, and nothing is updated, if any rank's loss was not finite; it is NaN
    after the update if that overflowed a parameter (then undone when ``undoable``).
    """
    core = net._core
    grads = core.gradient_buffer
    loss, count, failure = 0.0, 0, None
    try:
        xa, ya = net._x(x), net._y(y)
        count = xa.shape[0] if xa.ndim else 0
        if count == 0:  # this rank has no samples in this step: it adds nothing
            _expect_empty(net, xa, ya)
            grads[...] = 0
        elif OPTIMIZERS[core.optimizer.optimizer]["per_sample"]:  # DP-SGD
            loss = core.clipped_gradient_sum(xa, ya)
        else:
            loss = core.loss_and_gradients(xa, ya, "sum")
    except Exception as e:  # reported to every rank below, so none waits on this one
        failure, loss, count = e, 0.0, 0
    stats = np.array([loss, count, failure is not None], dtype=np.float64)
    comm.Allreduce(MPI.IN_PLACE, stats, op=MPI.SUM)
    if stats[2]:
        _raise_agreed(comm.allgather(_report(comm, failure)), failure)
    comm.Allreduce(MPI.IN_PLACE, grads, op=MPI.SUM)
    loss, count = float(stats[0]), int(stats[1])
    if count == 0:
        msg = "x: the batch is empty on every rank"
        raise ValueError(msg)
    if math.isfinite(loss) and not core.apply_gradient_sum(count, undoable):
        loss = math.nan
    return loss, count


def _expect_empty(net: Network, x: NDArray[Any], y: NDArray[Any]) -> None:
    """An empty batch must still have the shapes of a batch: x (0, inputs), y with 0 rows."""
    if x.shape != (0, net.sizes[0]):
        msg = f"x: expected shape (batch, {net.sizes[0]}), got {x.shape}"
        raise ValueError(msg)
    if y.shape[:1] != (0,):
        msg = f"y: expected 0 rows to match x's batch of 0, got shape {y.shape}"
        raise ValueError(msg)


def train_step(net: Network, x: ArrayLike, y: ArrayLike, comm: MPI.Comm) -> float:
    """`Network.train_step` with ``comm``: one step on the union of every rank's batch; returns
    its mean loss. The ranks must hold the same network and parameters (see
    `broadcast_parameters`); networks of different sizes make the gradients' Allreduce fail,
    which MPI reports by ending the job (fit checks the networks agree before it starts)."""
    loss, count = _step(net, x, y, comm, undoable=True)
    mean = loss / count
    if not math.isfinite(mean):
        msg = (
            f"the loss became {mean} or the parameters overflowed; the network is as before "
            f"the step. Try a smaller learning rate (lr={net._core.optimizer.lr})"
        )
        raise FloatingPointError(msg)
    return mean


def epoch(net: Network, x: NDArray[Any], y: NDArray[Any], order: NDArray[Any],
          batch_size: int, comm: MPI.Comm) -> float:  # fmt: skip
    """One epoch over this rank's ``x[order]`` in batches of ``batch_size``, the other ranks
    stepping alongside on theirs; returns the global mean per-sample loss, or NaN at the first
    step that was not finite, where it stops. A rank whose samples ran out takes its part in the
    remaining steps with empty batches. Steps are not undone (the caller restores a failed fit).
    """
    steps = comm.allreduce(-(-x.shape[0] // batch_size), op=MPI.MAX)
    total, count = 0.0, 0
    for k in range(steps):
        batch = order[k * batch_size : (k + 1) * batch_size]
        loss, n = _step(net, x[batch], y[batch], comm, undoable=False)
        if not math.isfinite(loss):
            return math.nan
        total, count = total + loss, count + n
    _expect_same_parameters(net, comm)
    return total / count


def score(net: Network, x: NDArray[Any], y: NDArray[Any], comm: MPI.Comm) -> float:
    """`Network.score` of the union of every rank's ``(x, y)``: accuracy, or R² (the mean over
    outputs), from sums reduced over the ranks; the same value on every rank."""
    if net.is_classifier:
        scored = y.size if net.loss == "binary_cross_entropy" else x.shape[0]
        correct = round(net.score(x, y) * scored)
        right, total = comm.allreduce(np.array([correct, scored], dtype=np.float64))
        return float(right / total)
    out = net.forward(x).astype(np.float64)
    t = y.reshape(out.shape).astype(np.float64)
    sums = comm.allreduce(np.concatenate([[len(t)], t.sum(axis=0)]))
    mean = sums[1:] / sums[0]
    squares = np.stack([((t - out) ** 2).sum(axis=0), ((t - mean) ** 2).sum(axis=0)])
    return r2(*comm.allreduce(squares))


def rank_generator(rng: np.random.Generator, comm: MPI.Comm) -> np.random.Generator:
    """A generator of this rank's own, drawn from ``rng`` (the same on every rank): shuffles
    per rank that are reproducible from one seed."""
    return np.random.default_rng([int(rng.integers(2**63)), comm.rank])
