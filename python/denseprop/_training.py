"""A Network's training loop: its epochs in C++ (many per call, or one call each where Python
has work between them), early stopping, and the snapshot that puts the network back as it was
when training fails."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Union

import numpy as np
from numpy.typing import NDArray

from . import _core
from .progress import ProgressBar

Core = Union[_core.NetworkF32, _core.NetworkF64]


def finite(core: Core, loss: float) -> bool:
    """Whether an epoch's loss and the parameters after it are finite."""
    return math.isfinite(loss) and bool(np.isfinite(core.params).all())


@dataclass(frozen=True)
class Snapshot:
    """Everything training changes: parameters, optimizer settings, state and steps, and the
    curves. `restore` puts it back."""

    params: NDArray[Any]
    settings: _core.OptimizerSettings
    first: NDArray[Any]
    second: NDArray[Any]
    steps: int
    loss_curve: list[float]
    validation_scores: list[float]

    @classmethod
    def take(cls, core: Core, loss_curve: list[float], scores: list[float]) -> Snapshot:
        first, second = core.optimizer_state
        return cls(core.params.copy(), core.optimizer, first.copy(), second.copy(),
                   core.optimizer_steps, list(loss_curve), list(scores))  # fmt: skip

    def restore(self, core: Core) -> None:
        """The parameters and the optimizer as they were (the curves are the caller's)."""
        core.params[...] = self.params
        core.set_optimizer(self.settings)
        state = core.optimizer_state
        state[0][...], state[1][...] = self.first, self.second
        core.optimizer_steps = self.steps


@dataclass(frozen=True)
class Schedule:
    """How `run_epochs` trains: the epochs, batches and shuffling, and when it stops early."""

    epochs: int
    batch_size: int
    early_stopping: bool
    patience: int
    tol: float
    shuffle: bool
    verbose: bool
    progress: bool | None


# How many sample indices of epoch orders Network.fit hands to C++ at once (8 MB of int64).
EPOCH_ORDERS = 1 << 20


def diverged(where: str, loss: float, lr: float, state: str) -> FloatingPointError:
    return FloatingPointError(
        f"{where}the training loss became {loss} or the parameters overflowed; the network "
        f"is {state}. Try a smaller learning rate (lr={lr})"
    )


def run_epochs(
    core: Core,
    x: NDArray[Any],
    y: NDArray[Any],
    schedule: Schedule,
    rng: np.random.Generator,
    validation_score: Callable[[], float] | None,
    loss_curve: list[float],
    validation_scores: list[float],
    *,
    epoch: Callable[[NDArray[Any], int], float] | None = None,
    leader: bool = True,
) -> None:
    """Train ``core`` on ``(x, y)`` as ``schedule`` says, appending to the two curves.

    ``x`` and ``y`` must be arrays ``core.check`` accepted: the epochs do not scan them for NaN.

    Each epoch reshuffles from ``rng`` (when ``shuffle``). Without a validation score, early
    stopping, printing or a progress bar, the epochs run in C++ in calls of many epochs
    (`EPOCH_ORDERS` indices at a time); otherwise one call each, with the same shuffles. With
    ``early_stopping``, stops once the validation score (or, without ``validation_score``, the
    training loss) has not improved by ``tol`` for ``patience`` epochs; with a validation score
    the best parameters are put back. A non-finite epoch raises FloatingPointError (the caller
    restores its snapshot).

    ``epoch(order, batch_size)``, the epoch's mean loss, replaces the C++ call (data-parallel
    training: `distributed.epoch`); only the ``leader`` prints.
    """
    s = schedule
    n = x.shape[0]
    order = np.arange(n)
    bar = ProgressBar(s.epochs, enabled=s.progress if leader else False)

    def check(number: int, loss: float) -> None:
        if not finite(core, loss):
            bar.close()
            where, state = f"epoch {number}: ", "restored to what it was before fit"
            raise diverged(where, loss, core.optimizer.lr, state)

    per_epoch_work = validation_score is not None or s.early_stopping or s.verbose or bar.enabled
    if epoch is None and not per_epoch_work:
        chunk = max(1, EPOCH_ORDERS // n)
        for first in range(0, s.epochs, chunk):
            orders = np.empty((min(chunk, s.epochs - first), n), np.int64)
            for row in orders:
                if s.shuffle:
                    rng.shuffle(order)
                row[...] = order
            losses = core.fit_epochs(x, y, orders, s.batch_size, checked=True)
            loss_curve.extend(losses)
            check(first + len(losses), losses[-1])
        return
    best, best_params, stale = -math.inf, None, 0
    for number in range(1, s.epochs + 1):
        start = time.perf_counter()
        if s.shuffle:
            rng.shuffle(order)
        if epoch is None:
            loss = core.fit_epoch(x, y, order, s.batch_size, checked=True)  # checked before
        else:
            loss = epoch(order, s.batch_size)
        check(number, loss)
        loss_curve.append(loss)
        line = f"epoch {number}/{s.epochs}  loss {loss:.6f}"
        if validation_score is not None:
            validation_scores.append(validation_score())
            line += f"  validation {validation_scores[-1]:.4f}"
        bar.update(line)
        if s.verbose and leader:
            bar.write(f"{line}  ({time.perf_counter() - start:.3f} s)")
        if not s.early_stopping:
            continue
        current = validation_scores[-1] if validation_score is not None else -loss
        if current > best + s.tol:
            best, stale = current, 0
            if validation_score is not None:
                best_params = core.params.copy()
        else:
            stale += 1
        if stale >= s.patience:
            if s.verbose and leader:
                bar.write(f"no improvement for {s.patience} epochs: stopping")
            break
    if best_params is not None:
        core.params[...] = best_params
    bar.close()
