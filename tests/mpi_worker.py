"""Run by tests/test_distributed.py under ``mpiexec -n N``: each case trains over MPI and
checks, on every rank, the result against one process training on the concatenated data.

Every rank prints ``ok <case>`` for each case it passed; a failed check prints the traceback
and aborts every rank, so the launch ends with a non-zero status rather than waiting.
"""

import sys
import traceback

import denseprop
import numpy as np
from denseprop.distributed import broadcast_parameters
from mpi4py import MPI

comm = MPI.COMM_WORLD
rank, size = comm.rank, comm.size
CASES = {}


def case(f):
    CASES[f.__name__] = f
    return f


def network(dtype=np.float64, loss="cross_entropy", sizes=(5, 7, 3), seed=1, compute_dtype=None):
    return denseprop.Network(list(sizes), "tanh", loss, dtype=dtype, seed=seed,
                             compute_dtype=compute_dtype)  # fmt: skip


def data(n, dtype=np.float64, loss="cross_entropy", seed=0):
    """The same n samples on every rank: (x (n, 5), y) for a 5-7-3 network."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 5)).astype(dtype)
    if loss == "cross_entropy":
        return x, rng.integers(0, 3, n)
    return x, rng.standard_normal((n, 3)).astype(dtype)


def parts(n):
    """Unequal sizes of each rank's part of n samples (rank r gets more than rank r + 1), as
    (start, stop) ranges that tile [0, n)."""
    weights = np.arange(size, 0, -1, dtype=np.float64)
    stops = np.round(np.cumsum(weights) / weights.sum() * n).astype(int)
    starts = np.concatenate([[0], stops[:-1]])
    return list(zip(starts, stops))


def mine(n):
    start, stop = parts(n)[rank]
    return slice(start, stop)


def assert_ranks_bitwise_equal(net):
    every = comm.allgather(net._core.params.tobytes())
    assert all(p == every[0] for p in every), "ranks hold different parameters"


def assert_close(actual, expected, dtype):
    rtol = 1e-12 if np.dtype(dtype) == np.float64 else 1e-5
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol)


def steps_match_one_process(dtype, **optimizer):
    """Several steps on batches split unequally over the ranks equal one process's steps on the
    whole batches, to the dtype's tolerance; the losses too; every rank bitwise the same."""
    x, y = data(5 * 11, dtype)
    alone, shared = network(dtype), network(dtype)
    alone.set_optimizer(**optimizer)
    shared.set_optimizer(**optimizer)
    for step in range(5):
        batch = slice(step * 11, (step + 1) * 11)
        expected = alone.train_step(x[batch], y[batch])
        here = mine(11)
        loss = shared.train_step(x[batch][here], y[batch][here], comm=comm)
        assert_close(loss, expected, dtype)
    assert_close(shared._core.params, alone._core.params, dtype)
    assert_close(shared._core.optimizer_state[0], alone._core.optimizer_state[0], dtype)
    assert shared._core.optimizer_steps == alone._core.optimizer_steps == 5
    assert_ranks_bitwise_equal(shared)


@case
def bf16_steps_match_one_process():
    """compute_dtype="bfloat16": each rank's products on bf16 operands, its float32 gradient
    all-reduced, equal one process's bf16 steps on the whole batches to bfloat16's tolerance
    (conftest.TOLERANCES: the batch's sum is split differently); every rank bitwise the same."""
    x, y = data(5 * 11, np.float32)
    alone = network(np.float32, compute_dtype="bfloat16")
    shared = network(np.float32, compute_dtype="bfloat16")
    for net in (alone, shared):
        net.set_optimizer("adam", 0.01)
    for step in range(5):
        batch = slice(step * 11, (step + 1) * 11)
        expected = alone.train_step(x[batch], y[batch])
        loss = shared.train_step(x[batch][mine(11)], y[batch][mine(11)], comm=comm)
        np.testing.assert_allclose(loss, expected, rtol=4e-3, atol=4e-3)
    np.testing.assert_allclose(shared._core.params, alone._core.params, rtol=4e-3, atol=4e-3)
    assert_ranks_bitwise_equal(shared)


@case
def sgd_with_momentum_float64():
    steps_match_one_process(np.float64, optimizer="sgd", lr=0.3, momentum=0.9, nesterov=True,
                            weight_decay=0.01)  # fmt: skip


@case
def plain_sgd_float32():
    steps_match_one_process(np.float32, optimizer="sgd", lr=0.3)


@case
def adam_float64():
    steps_match_one_process(np.float64, optimizer="adam", lr=0.01, weight_decay=0.001)


@case
def dpsgd_noise_added_once_float64():
    steps_match_one_process(np.float64, optimizer="dpsgd", lr=0.2, clip_norm=0.5,
                            noise_multiplier=1.1, seed=7)  # fmt: skip


@case
def clipped_adam_float64():
    """max_grad_norm bounds the step's whole gradient, the mean over every rank's samples: the
    clipped steps over unequal shards are one process's (0.05 clips every step here)."""
    norm = np.sqrt(sum((g**2).sum() for pair in network().gradients(*data(11))[1] for g in pair))
    assert norm > 0.05
    steps_match_one_process(np.float64, optimizer="adam", lr=0.01, weight_decay=0.001,
                            max_grad_norm=0.05)  # fmt: skip


@case
def clipped_sgd_float32():
    steps_match_one_process(np.float32, optimizer="sgd", lr=0.3, momentum=0.9, max_grad_norm=0.05)


@case
def fit_with_a_schedule_equals_steps_at_its_rates():
    """lr_schedule over MPI: T counts the ranks' common steps per epoch (the most batches of
    any shard), each step's rate the twin's, the same on every rank."""
    from denseprop import reference

    n = 13 * size
    x, y = data(n)
    bounds = parts(n)
    alone, shared = network(), network()
    alone.set_optimizer("adam", 0.01, max_grad_norm=0.05)
    per_epoch = -(-max(b - a for a, b in bounds) // 4)
    for epoch in range(3):
        for k in range(per_epoch):
            t = epoch * per_epoch + k
            alone.set_learning_rate(reference.learning_rate(t, 3 * per_epoch, 0.01, "cosine", 0.2))
            rows = np.concatenate([np.arange(a, b)[4 * k : 4 * k + 4] for a, b in bounds])
            alone.train_step(x[rows], y[rows])
    shared.fit(x[mine(n)], y[mine(n)], epochs=3, batch_size=4, optimizer="adam", lr=0.01,
               shuffle=False, lr_schedule="cosine", warmup=0.2, max_grad_norm=0.05,
               comm=comm)  # fmt: skip
    assert_close(shared._core.params, alone._core.params, np.float64)
    assert shared.optimizer["lr"] == 0.01
    assert_ranks_bitwise_equal(shared)


@case
def a_rank_with_an_empty_batch_takes_part():
    x, y = data(4)
    alone, shared = network(), network()
    expected = alone.train_step(x[:1], y[:1])
    here = slice(0, 1) if rank == size - 1 else slice(0, 0)
    assert_close(shared.train_step(x[here], y[here], comm=comm), expected, np.float64)
    assert_close(shared._core.params, alone._core.params, np.float64)


def epochs_on_the_ranks_batches(alone, x, y, bounds, w=None, epochs=3, batch=4):
    """One process's epochs of steps on the concatenation of every rank's k-th batch of
    ``batch`` (ranks whose rows ran out add none), weighted by ``w`` if given: what a fit
    without shuffling over the ranks' shards ``bounds`` takes. Returns the epochs' losses."""
    losses = []
    for _ in range(epochs):
        total = 0.0
        for k in range(-(-max(b - a for a, b in bounds) // batch)):
            rows = np.concatenate([np.arange(a, b)[batch * k : batch * (k + 1)]
                                   for a, b in bounds])  # fmt: skip
            weights = None if w is None else w[rows]
            total += alone.train_step(x[rows], y[rows], sample_weight=weights) * len(rows)
        losses.append(total / len(x))
    return losses


@case
def fit_without_shuffling_equals_steps_on_the_ranks_batches():
    """fit's epochs, per-rank batch 4 over unequal shards (partial last batches, ranks that
    run out early), are one process's steps on the concatenation of the ranks' k-th batches."""
    n = 13 * size
    x, y = data(n)
    bounds = parts(n)
    alone, shared = network(), network(seed=1 if rank == 0 else 100 + rank)  # rank 0's win
    alone.set_optimizer("adam", 0.01)
    losses = epochs_on_the_ranks_batches(alone, x, y, bounds)
    shared.fit(x[mine(n)], y[mine(n)], epochs=3, batch_size=4, optimizer="adam", lr=0.01,
               shuffle=False, comm=comm)  # fmt: skip
    assert_close(shared._core.params, alone._core.params, np.float64)
    assert_close(shared.loss_curve_, losses, np.float64)
    assert_ranks_bitwise_equal(shared)


@case
def weighted_fit_equals_weighted_steps_on_the_ranks_batches():
    """fit with each rank's own sample weights, over unequal shards, is one process's weighted
    steps on the concatenation of the ranks' k-th batches and their weights (each step's mean
    Σ w ℓ / Σ w over the union; some batches weigh nothing on a rank); the weighted validation
    score, accuracy and R², that of the whole set."""
    n = 13 * size
    x, y = data(n)
    w = np.random.default_rng(3).random(n) * 2
    w[:6] = 0
    bounds = parts(n)
    alone, shared = network(), network()
    alone.set_optimizer("adam", 0.01)
    losses = epochs_on_the_ranks_batches(alone, x, y, bounds, w)
    here = mine(n)
    shared.fit(x[here], y[here], epochs=3, batch_size=4, optimizer="adam", lr=0.01,
               shuffle=False, sample_weight=w[here], validation_data=(x[here], y[here], w[here]),
               comm=comm)  # fmt: skip
    assert_close(shared._core.params, alone._core.params, np.float64)
    assert_close(shared.loss_curve_, losses, np.float64)
    assert_close(shared.validation_scores_[-1], alone.score(x, y, sample_weight=w), np.float64)
    assert_ranks_bitwise_equal(shared)
    xr, yr = data(n, loss="mse")
    regression = network(loss="mse")
    score = denseprop.distributed.score(regression, xr[here], yr[here], comm, w[here])
    assert_close(score, regression.score(xr, yr, sample_weight=w), np.float64)


@case
def partial_fit_continues_with_the_optimizer_state():
    """partial_fit's epoch over unequal shards, after a fit, is one process's steps on the
    concatenated k-th batches, with the Adam moments the fit left."""
    n = 7 * size + 2
    x, y = data(n)
    bounds = parts(n)
    alone, shared = network(), network()
    alone.set_optimizer("adam", 0.01)
    for _ in range(2):  # fit's epoch, then partial_fit's
        for k in range(-(-max(b - a for a, b in bounds) // 3)):
            alone.train_step(*zip(*[(x[r], y[r]) for a, b in bounds
                                    for r in range(a, b)[3 * k : 3 * k + 3]]))  # fmt: skip
    shared.fit(x[mine(n)], y[mine(n)], epochs=1, batch_size=3, optimizer="adam", lr=0.01,
               shuffle=False, comm=comm)  # fmt: skip
    shared.partial_fit(x[mine(n)], y[mine(n)], batch_size=3, shuffle=False, comm=comm)
    assert_close(shared._core.params, alone._core.params, np.float64)
    assert shared._core.optimizer_steps == alone._core.optimizer_steps
    assert len(shared.loss_curve_) == 2
    assert_ranks_bitwise_equal(shared)


@case
def fit_with_shuffling_and_early_stopping_agrees_across_ranks():
    n = 40 * size + 3
    x, y = data(n, seed=rank)  # each rank its own data
    xv, yv = data(9 + rank, seed=100 + rank)
    net = network(seed=rank)
    net.fit(x, y, epochs=60, batch_size=8, lr=0.5, momentum=0.9, validation_data=(xv, yv),
            early_stopping=True, patience=3, seed=11, comm=comm)  # fmt: skip
    assert len(net.loss_curve_) < 60, "early stopping never stopped"
    every = comm.allgather((net.loss_curve_, net.validation_scores_))
    assert all(e == every[0] for e in every), "ranks disagree on the curves"
    assert_ranks_bitwise_equal(net)
    # The validation score is the accuracy on the union of the ranks' validation shards.
    all_xv = np.concatenate(comm.allgather(xv))
    all_yv = np.concatenate(comm.allgather(yv))
    one = network()
    one._core.params[...] = net._core.params
    # early stopping restored the best parameters: their score is the best one
    assert one.score(all_xv, all_yv) == max(net.validation_scores_)
    # Reproducible: the same seed gives the same run.
    again = network(seed=rank)
    again.fit(x, y, epochs=60, batch_size=8, lr=0.5, momentum=0.9, validation_data=(xv, yv),
              early_stopping=True, patience=3, seed=11, comm=comm)  # fmt: skip
    assert again.loss_curve_ == net.loss_curve_
    assert again._core.params.tobytes() == net._core.params.tobytes()


@case
def regression_score_is_r2_of_all_shards():
    x, y = data(6 + 2 * rank, loss="mse", seed=rank)
    net = network(loss="mse")
    net.fit(x, y, epochs=2, batch_size=3, lr=0.05, validation_data=(x, y), seed=3, comm=comm)
    one = network(loss="mse")
    one._core.params[...] = net._core.params
    expected = one.score(np.concatenate(comm.allgather(x)), np.concatenate(comm.allgather(y)))
    np.testing.assert_allclose(net.validation_scores_[-1], expected, rtol=1e-12)


def raises_on_every_rank(call, kind, match):
    try:
        call()
    except kind as e:
        message = str(e)
        assert match in message, message
    else:
        msg = f"no {kind.__name__} on rank {rank}"
        raise AssertionError(msg)
    every = comm.allgather(message)
    assert all(m == every[0] for m in every), every


@case
def a_bad_shard_on_one_rank_raises_the_same_error_on_every_rank():
    x, y = data(8)
    net = network()
    net.set_optimizer("sgd", 0.1, momentum=0.5)
    before = net._core.params.copy()
    bad = size - 1
    wide = np.zeros((8, 6)) if rank == bad else x
    raises_on_every_rank(lambda: net.train_step(wide, y, comm=comm), ValueError,
                         f"rank {bad}: x has 6 features, but the network expects 5")  # fmt: skip
    nan = x.copy()
    if rank == bad:
        nan[2, 3] = np.nan
    raises_on_every_rank(lambda: net.fit(nan, y, epochs=2, comm=comm), ValueError,
                         f"rank {bad}: x: contains nan at row 2, column 3")  # fmt: skip
    label = y.copy()
    if rank == bad:
        label[5] = 3
    raises_on_every_rank(lambda: net.train_step(x, label, comm=comm), ValueError, f"rank {bad}")
    raises_on_every_rank(lambda: net.fit(x, y, epochs=1, lr=0.1 * (1 + (rank == bad)), comm=comm),
                         ValueError, "optimizer: must be the same on every rank")  # fmt: skip
    seed = np.random.default_rng(0) if rank == bad else 0
    raises_on_every_rank(lambda: net.fit(x, y, epochs=1, seed=seed, comm=comm), TypeError,
                         f"rank {bad}: seed: expected an integer, got Generator")  # fmt: skip
    assert net._core.params.tobytes() == before.tobytes()
    assert net.optimizer["momentum"] == 0.5
    # ... and the ranks carry on together.
    net.train_step(x[mine(8)], y[mine(8)], comm=comm)
    assert_ranks_bitwise_equal(net)


@case
def a_step_that_overflows_is_undone_on_every_rank():
    x, y = data(6, loss="mse")
    y *= 1e10  # gradients of 1e10 take steps of 1e310
    net = network(loss="mse")
    before = net._core.params.copy()
    net.set_optimizer("sgd", 1e300)
    raises_on_every_rank(lambda: net.train_step(x[mine(6)], y[mine(6)], comm=comm),
                         FloatingPointError, "the parameters overflowed")  # fmt: skip
    assert net._core.params.tobytes() == before.tobytes()
    raises_on_every_rank(lambda: net.fit(x[mine(6)], y[mine(6)], epochs=2, lr=1e300, comm=comm),
                         FloatingPointError, "epoch 1: the training loss became nan")  # fmt: skip
    assert net._core.params.tobytes() == before.tobytes()
    assert net.optimizer["lr"] == 1e300  # fit put back the optimizer it found


@case
def broadcast_parameters_copies_rank_0s_network():
    x, y = data(6)
    net = network(seed=rank)
    net.set_optimizer("adam", 0.01)
    net.train_step(x, y)  # a different state on every rank
    broadcast_parameters(net, comm)
    every = comm.allgather((net._core.params.tobytes(), net._core.optimizer_state[1].tobytes(),
                            net._core.optimizer_steps))  # fmt: skip
    assert all(e == every[0] for e in every)


@case
def dropout_steps_take_each_ranks_own_masks():
    """With dropout each rank draws its own masks (stream rank + 1): a step equals the NumPy
    twin's step on the union of the ranks' parts, each part through its rank's masks; every
    rank ends bitwise the same, and a fit agrees across ranks."""
    import denseprop.reference as ref

    x, y = data(11)
    net = denseprop.Network([5, 7, 3], "tanh", dtype=np.float64, seed=1, dropout=0.4)
    net.set_optimizer("sgd", 0.2)
    weights, biases = [w.copy() for w in net.weights], [b.copy() for b in net.biases]
    total = None
    for r, (start, stop) in enumerate(parts(11)):
        mask = ref.dropout_mask(0.4, (stop - start, 7), net._core.dropout_seed, 0, 0, r + 1)
        _, grads = ref.network_loss_and_gradients(weights, biases, x[start:stop],
                                                  y[start:stop], net.activations, net.loss,
                                                  reduction="sum", masks=[mask, None])  # fmt: skip
        total = grads if total is None else [(a + c, b + d) for (a, b), (c, d) in
                                             zip(total, grads)]  # fmt: skip
    params = list(zip(weights, biases))
    ref.sgd_step(params, [(gw / 11, gb / 11) for gw, gb in total], None, 0.2)
    net.train_step(x[mine(11)], y[mine(11)], comm=comm)
    assert net._core.dropout_stream == rank + 1
    for (w, b), w_net, b_net in zip(params, net.weights, net.biases):
        assert_close(w_net, w, np.float64)
        assert_close(b_net, b, np.float64)
    assert_ranks_bitwise_equal(net)
    x, y = data(40)
    net.fit(x[mine(40)], y[mine(40)], epochs=3, batch_size=4, lr=0.1, seed=2, comm=comm)
    assert_ranks_bitwise_equal(net)


def main():
    for name in sys.argv[1:] or CASES:
        try:
            CASES[name]()
        except BaseException:
            say(f"rank {rank}: FAILED {name}\n{traceback.format_exc()}")
            comm.Abort(1)
        else:
            say(f"rank {rank}: ok {name}")


def say(line):
    """One write per line, so the ranks' lines do not interleave on the shared output."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
