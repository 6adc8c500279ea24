"""Network.fit's and partial_fit's side of the one training loop (``run_epochs`` in C++,
training.hpp): what to hand it (the plan, the shuffles' seed, the steps' `Strategy`) and the
Python work between its epochs (a validation score, verbose lines, the progress bar), the one
divergence message, and the snapshot that puts the network back when training fails."""

from __future__ import annotations

import contextlib
import time
import types
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Union

import numpy as np
from numpy.typing import NDArray

from . import _checks, _core
from .progress import ProgressBar

Core = Union[_core.NetworkF32, _core.NetworkF64]


def diverged(where: str, loss: float, lr: float, state: str) -> FloatingPointError:
    """The one message of a step or epoch whose loss or parameters stopped being finite."""
    return FloatingPointError(
        f"{where}the training loss became {loss} or the parameters overflowed; the network "
        f"is {state}. Try a smaller learning rate (lr={lr})"
    )


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


class Strategy(Protocol):
    """How a Network trains: by this process alone (`LOCAL`) or by several together
    (`denseprop.distributed.Strategy`, MPI). `Network.fit` and `partial_fit` hand theirs to
    the loop instead of branching on ``comm``."""

    leader: bool  # prints
    # a fit's arrays are checked before it starts (else the loop checks them as it starts): over
    # MPI an error must be agreed on before the first collective
    prechecks: bool

    @property
    def reduce(self) -> Callable[[float, int, float], tuple[float, int, float]] | None:
        """Sums a step's gradient and (loss, samples, weight) over the processes; None
        alone."""

    @property
    def after_epoch(self) -> Callable[[], None] | None:
        """The strategy's own Python work after each epoch, if any."""

    def agreement(self, undo: Callable[[], None]) -> AbstractContextManager[Any]:
        """The block of a fit's argument checks: ``as agreed``, with ``agreed.settings`` (to
        be the same everywhere) and ``agreed.seed`` (a fresh seed shared by every process)."""

    def batching(self, n: int, batch_size: Any, seed: Any,
                 fresh_seed: int | None) -> tuple[int, np.random.Generator]:  # fmt: skip
        """``batch_size`` checked, and the generator of ``seed``."""

    def start(self, net: Any) -> None:
        """Before a fit's first epoch."""

    def score(self, net: Any, x: NDArray[Any], y: NDArray[Any], sample_weight: Any) -> float:
        """`Network.score` of the validation data."""

    def seed(self, rng: np.random.Generator) -> int:
        """The seed of this process's reshuffles."""

    def steps(self, n: int, batch_size: int) -> int:
        """Steps per epoch over ``n`` samples (0: as many as its batches)."""


class _Local:
    """A process training alone."""

    leader = True
    prechecks = False
    reduce = None
    after_epoch = None

    def agreement(self, undo: Callable[[], None]) -> AbstractContextManager[Any]:
        return contextlib.nullcontext(types.SimpleNamespace(settings={}, seed=None))

    def batching(self, n: int, batch_size: Any, seed: Any,
                 fresh_seed: int | None) -> tuple[int, np.random.Generator]:  # fmt: skip
        """Any ``batch_size`` past ``n`` is ``n``."""
        return min(_checks.count(batch_size, "batch_size"), n), _checks.generator(seed)

    def start(self, net: Any) -> None:
        pass

    def score(self, net: Any, x: NDArray[Any], y: NDArray[Any], sample_weight: Any) -> float:
        return float(net.score(x, y, sample_weight))

    def seed(self, rng: np.random.Generator) -> int:
        return int(rng.integers(2**63))

    def steps(self, n: int, batch_size: int) -> int:
        return 0


LOCAL: Strategy = _Local()


@dataclass(frozen=True)
class Plan:
    """What `run` trains: the epochs, batches and shuffling, when it stops early, and each
    step's learning rate (``lr_schedule`` and ``warmup``: see `Network.fit`)."""

    epochs: int
    batch_size: int
    shuffle: bool
    early_stopping: bool = False
    patience: int = 10
    tol: float = 1e-4
    verbose: bool = False
    progress: bool | None = False
    lr_schedule: str = "constant"
    warmup: float = 0.0


def run(
    core: Core,
    x: Any,
    y: NDArray[Any],
    sample_weight: NDArray[Any] | None,
    plan: Plan,
    seed: int,
    strategy: Strategy,
    validation_score: Callable[[], float] | None,
    loss_curve: list[float],
    validation_scores: list[float],
    where: str,
    state_after: str,
) -> None:
    """Train ``core`` on ``(x, y)`` weighted by ``sample_weight`` (arrays ``core.check``
    accepted: x and y not scanned for NaN again) as ``plan`` says, appending to the two
    curves.

    With ``early_stopping``, stops once the validation score (or, without
    ``validation_score``, the training loss) has not improved by ``tol`` for ``patience``
    epochs; with a validation score the best parameters are put back (the loop's "patience"
    rule). A non-finite epoch raises `diverged` with ``where`` ("{epoch}" its number) and
    ``state_after`` (the caller restores its snapshot). Python runs between epochs only when
    there is Python work to do.
    """
    bar = ProgressBar(plan.epochs, enabled=plan.progress if strategy.leader else False)
    printing = plan.verbose and strategy.leader
    started = [time.perf_counter()]

    def after_epoch(epoch: int, loss: float) -> float | None:
        if strategy.after_epoch is not None:
            strategy.after_epoch()
        line = f"epoch {epoch}/{plan.epochs}  loss {loss:.6f}"
        score = None
        if validation_score is not None:
            score = validation_score()
            line += f"  validation {score:.4f}"
        bar.update(line)
        if printing:
            now = time.perf_counter()
            bar.write(f"{line}  ({now - started[0]:.3f} s)")
            started[0] = now
        return score

    work = validation_score is not None or printing or bar.enabled or strategy.after_epoch
    scored = validation_score is not None
    state = _core.TrainingState()
    state.seed, state.lr = seed, float(core.optimizer.lr)
    try:
        losses, scores, stop, _ = core.run_epochs(
            x, y, sample_weight, state=state, max_epochs=plan.epochs, batch_size=plan.batch_size,
            shuffle=plan.shuffle, stop="patience" if plan.early_stopping else "none",
            tol=plan.tol, n_iter_no_change=float(plan.patience), lr_init=state.lr,
            lr_schedule=plan.lr_schedule, warmup=plan.warmup,
            after_epoch=after_epoch if work else None, scored=scored,
            best_params=core.params.copy() if scored and plan.early_stopping else None,
            reduce=strategy.reduce, steps=strategy.steps(x.shape[0], plan.batch_size),
            checked=strategy.prechecks,
        )  # fmt: skip
    finally:
        bar.close()
    if stop == "diverged":
        raise diverged(where.format(epoch=len(losses)), losses[-1], state.lr, state_after)
    loss_curve.extend(losses)
    validation_scores.extend(scores)
    if stop == "converged" and printing:
        print(f"no improvement for {plan.patience} epochs: stopping")
