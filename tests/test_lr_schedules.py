"""`Network.fit`'s per-step learning-rate schedules (``lr_schedule``, ``warmup``): the rates
against PyTorch's schedulers and the NumPy twin (`reference.learning_rate`), and a fit against
`train_step`s over the same shuffled batches at the twin's rates. Over MPI in mpi_worker.py,
bad values in test_network_bad_input.py."""

import denseprop
import numpy as np
import pytest
from denseprop import reference
from denseprop._tables import LR_SCHEDULES

SCHEDULES = list(LR_SCHEDULES)


def test_the_schedules_are_declared_once_in_the_compiled_module():
    assert SCHEDULES == ["constant", "cosine", "linear"]
    assert all(s["equation"] for s in denseprop._core.lr_schedules())


def torch_rates(torch, total, warmup_steps, schedule, lr):
    """PyTorch's rates of ``total`` steps: LinearLR from lr/W to lr over the W warmup steps,
    then CosineAnnealingLR or LinearLR to 0 (or ConstantLR at 1) over the rest, chained by
    SequentialLR and stepped after each step."""
    sched = torch.optim.lr_scheduler
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=lr)
    rest = total - warmup_steps
    make = {"constant": lambda: sched.ConstantLR(opt, factor=1.0, total_iters=0),
             "cosine": lambda: sched.CosineAnnealingLR(opt, T_max=rest),
             "linear": lambda: sched.LinearLR(opt, 1.0, 0.0, total_iters=rest)}  # fmt: skip
    after = make[schedule]()
    if warmup_steps:
        warm = sched.LinearLR(opt, 1 / warmup_steps, 1.0, total_iters=warmup_steps - 1)
        chain = sched.SequentialLR(opt, [warm, after], milestones=[warmup_steps])
    else:
        chain = after
    rates = []
    for _ in range(total):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        chain.step()
    return rates


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize(("total", "warmup"), [(40, 0.0), (40, 0.1), (37, 0.25), (12, 0.5)])
def test_rates_equal_torch_schedulers(schedule, total, warmup):
    """Within 1e-12 · lr: torch's CosineAnnealingLR and LinearLR step by a recurrence (each rate
    from the one before), whose rounding differs from the closed form's in the last digits."""
    torch = pytest.importorskip("torch")
    import warnings

    w = round(warmup * total)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # SequentialLR's epoch argument
        expected = torch_rates(torch, total, w, schedule, 0.3)
    ours = [reference.learning_rate(t, total, 0.3, schedule, warmup) for t in range(total)]
    np.testing.assert_allclose(ours, expected, rtol=0, atol=0.3e-12)


def test_the_twins_rates_and_the_warmup_rounding():
    lr = 0.2
    assert reference.learning_rate(0, 10, lr, "cosine", 0.0) == lr
    assert reference.learning_rate(5, 10, lr, "linear", 0.0) == pytest.approx(lr / 2)
    assert reference.learning_rate(9, 10, lr, "linear", 0.0) == pytest.approx(lr / 10)
    # W = round(0.25 * 10) = round(2.5) = 2: halves to even, as Python's round
    assert [reference.learning_rate(t, 10, lr, "constant", 0.25) for t in range(3)] == [
        lr / 2, lr, lr]  # fmt: skip
    # W = round(0.35 * 10) = round(3.5) = 4
    assert reference.learning_rate(3, 10, lr, "cosine", 0.35) == pytest.approx(lr)
    assert reference.learning_rate(4, 10, lr, "cosine", 0.35) == lr


def manual_fit(net, x, y, fit_seed, epochs, batch_size, lr, schedule, warmup, stop_after=None):
    """What fit(seed=fit_seed, lr_schedule=schedule, warmup=warmup) does, by train_steps over
    epoch k's permutation at reference.learning_rate's rate of each step. Returns the losses."""
    n = x.shape[0]
    per_epoch = -(-n // batch_size)
    total = epochs * per_epoch
    shuffles = int(np.random.default_rng(fit_seed).integers(2**63))
    losses = []
    for k in range(epochs if stop_after is None else stop_after):
        order = reference.permutation(n, shuffles, k)
        loss = 0.0
        for j in range(per_epoch):
            rows = order[j * batch_size : (j + 1) * batch_size]
            net.set_learning_rate(reference.learning_rate(k * per_epoch + j, total, lr,
                                                          schedule, warmup))  # fmt: skip
            loss += net.train_step(x[rows], y[rows]) * len(rows)
        losses.append(loss / n)
    return losses


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("schedule", "warmup", "batch_size"),
                         [("cosine", 0.2, 6), ("linear", 0.0, 6), ("constant", 0.3, 6),
                          ("cosine", 0.9, 6), ("linear", 0.25, 1)])  # fmt: skip
def test_fit_with_a_schedule_is_train_steps_at_the_twins_rates(dtype, schedule, warmup,
                                                               batch_size, rng):  # fmt: skip
    """(cosine, 0.9): W = round(0.9 · 12) = 11 of 12 steps; with 4 epochs of 3 steps the
    rates then climb to lr at the last step but one."""
    x, y = rng.standard_normal((17, 5)).astype(dtype), rng.integers(0, 3, 17)
    nets = [denseprop.Network([5, 7, 3], "tanh", dtype=dtype, seed=2) for _ in range(2)]
    nets[0].fit(x, y, epochs=4, batch_size=batch_size, optimizer="adam", lr=0.05, seed=11,
                lr_schedule=schedule, warmup=warmup)  # fmt: skip
    nets[1].set_optimizer("adam", 0.05)
    losses = manual_fit(nets[1], x, y, 11, 4, batch_size, 0.05, schedule, warmup)
    assert nets[0].params.tobytes() == nets[1].params.tobytes()
    assert nets[0].loss_curve_ == losses
    assert nets[0].optimizer["lr"] == 0.05  # the rate the fit was given, afterwards


def test_the_last_warmup_step_is_the_last_step_when_w_equals_t(rng):
    """W = T: every step warms up, the last at lr; no division by T − W = 0."""
    x, y = rng.standard_normal((9, 5)), rng.integers(0, 3, 9)
    nets = [denseprop.Network([5, 7, 3], "tanh", dtype=np.float64, seed=2) for _ in range(2)]
    assert round(0.9 * 3) == 3  # 1 epoch of 3 steps
    nets[0].fit(x, y, epochs=1, batch_size=3, lr=0.1, seed=1, lr_schedule="cosine",
                warmup=0.9)  # fmt: skip
    nets[1].set_optimizer("sgd", 0.1)
    manual_fit(nets[1], x, y, 1, 1, 3, 0.1, "cosine", 0.9)
    assert nets[0].params.tobytes() == nets[1].params.tobytes()
    rates = [reference.learning_rate(t, 3, 0.1, "cosine", 0.9) for t in range(3)]
    assert rates == pytest.approx([0.1 / 3, 0.1 * 2 / 3, 0.1], rel=1e-15)


def test_early_stopping_cuts_a_schedule_short(rng):
    """Stopped after e epochs of E, the fit took the first e epochs' steps of the E-epoch
    schedule, not a schedule squeezed into e epochs."""
    x, y = rng.standard_normal((30, 5)), rng.integers(0, 3, 30)
    net = denseprop.Network([5, 7, 3], "tanh", dtype=np.float64, seed=2)
    net.fit(x, y, epochs=50, batch_size=10, optimizer="adam", lr=0.01, seed=3,
            lr_schedule="cosine", warmup=0.1, early_stopping=True, patience=2,
            tol=10.0)  # fmt: skip
    stopped = len(net.loss_curve_)
    assert stopped == 3  # the first epoch improves, the next two do not by tol
    twin = denseprop.Network([5, 7, 3], "tanh", dtype=np.float64, seed=2)
    twin.set_optimizer("adam", 0.01)
    losses = manual_fit(twin, x, y, 3, 50, 10, 0.01, "cosine", 0.1, stop_after=stopped)
    assert net.params.tobytes() == twin.params.tobytes()
    assert net.loss_curve_ == losses


def test_constant_without_warmup_is_the_fit_of_before(rng):
    """lr_schedule="constant", warmup=0: the rate set once per epoch, as before schedules."""
    x, y = rng.standard_normal((23, 4)), rng.integers(0, 3, 23)
    nets = [denseprop.Network([4, 5, 3], "tanh", dtype=np.float64, seed=1) for _ in range(2)]
    nets[0].fit(x, y, epochs=3, batch_size=5, lr=0.1, seed=9)
    nets[1].fit(x, y, epochs=3, batch_size=5, lr=0.1, seed=9, lr_schedule="constant",
                warmup=0.0)  # fmt: skip
    assert nets[0].params.tobytes() == nets[1].params.tobytes()


def test_partial_fit_keeps_the_optimizers_rate(rng):
    x, y = rng.standard_normal((12, 4)), rng.integers(0, 3, 12)
    net = denseprop.Network([4, 5, 3], "tanh", dtype=np.float64, seed=1)
    net.fit(x, y, epochs=2, batch_size=4, lr=0.1, seed=1, lr_schedule="linear")
    twin = denseprop.Network([4, 5, 3], "tanh", dtype=np.float64, seed=1)
    twin._core.params[...] = net._core.params
    twin.set_optimizer("sgd", 0.1)
    net.partial_fit(x, y, batch_size=4, shuffle=False)
    twin.partial_fit(x, y, batch_size=4, shuffle=False)
    assert net.params.tobytes() == twin.params.tobytes()


def test_the_loop_refuses_a_per_step_schedule_beside_a_per_epoch_one(rng):
    """run_epochs takes one rate rule at a time: scikit-learn's per-epoch schedules (the
    estimators') or fit's per-step ones, each named in the message."""
    net = denseprop.Network([4, 5, 3], "tanh", dtype=np.float64, seed=1)
    x, y = rng.standard_normal((8, 4)), rng.integers(0, 3, 8)
    state = denseprop._core.TrainingState()
    with pytest.raises(ValueError, match=r"^lr_schedule: .*needs schedule='constant'$"):
        net._core.run_epochs(x, y, state=state, max_epochs=1, batch_size=4,
                             schedule="invscaling", lr_schedule="cosine")  # fmt: skip
    with pytest.raises(ValueError, match=r"^lr_schedule: unknown 'step', expected one of"):
        net._core.run_epochs(x, y, state=state, max_epochs=1, batch_size=4, lr_schedule="step")
    with pytest.raises(ValueError, match=r"^warmup: must be a number in \[0, 1\), got 1.0$"):
        net._core.run_epochs(x, y, state=state, max_epochs=1, batch_size=4, warmup=1.0)
