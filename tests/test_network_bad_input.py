"""Every bad input to `denseprop.Network` raises a clear error and leaves the network exactly
as it was: parameters, optimizer state and steps, workspace, settings and loss curve."""

import copy
import math
import re

import numpy as np
import pytest
from conftest import assert_unchanged, randn, snapshot
from denseprop import Network

SIZES = [64, 32, 10]


def trained(dtype, loss="cross_entropy"):
    """A network that took a few adam steps (so its optimizer state is not trivial), with a
    batch of valid (x, y) for it; its workspace holds batches of 16."""
    rng = np.random.default_rng(5)
    net = Network(SIZES, "relu", loss, dtype=dtype, seed=0)
    x = randn(rng, dtype, 48, SIZES[0])
    if loss == "cross_entropy":
        y = rng.integers(0, SIZES[-1], 48)
    else:
        y = rng.integers(0, 2, (48, SIZES[-1])).astype(dtype)
    net.set_optimizer("adam", 1e-3)
    net.partial_fit(x, y, batch_size=16, seed=0)
    return net, x, y


@pytest.fixture
def net_xy(dtype):
    return trained(dtype)


def raises_unchanged(net, exception, match, call):
    """``call()`` raises ``exception`` matching ``match`` and changes nothing in ``net``."""
    before = snapshot(net)
    with pytest.raises(exception, match=match):
        call()
    assert_unchanged(net, before)


# Each method that takes data, as a call on (net, x, y).
CALLS = {
    "forward": lambda net, x, y: net.forward(x),
    "gradients": lambda net, x, y: net.gradients(x, y),
    "train_step": lambda net, x, y: net.train_step(x, y),
    "fit": lambda net, x, y: net.fit(x, y, epochs=1),
    "partial_fit": lambda net, x, y: net.partial_fit(x, y),
}
WITH_Y = [name for name in CALLS if name != "forward"]


# -- x and y ------------------------------------------------------------------------------


@pytest.mark.parametrize("call", CALLS)
def test_x_with_the_wrong_number_of_features_is_refused(net_xy, call):
    net, x, y = net_xy
    match = "^" + re.escape("x has 63 features, but the network expects 64") + "$"
    raises_unchanged(net, ValueError, match, lambda: CALLS[call](net, x[:, :63], y))


@pytest.mark.parametrize("label", [-1, 10])
@pytest.mark.parametrize("call", WITH_Y)
def test_labels_outside_the_classes_are_refused(net_xy, call, label):
    net, x, y = net_xy
    y = y.copy()
    y[7] = label
    match = re.escape(f"y: label {label} at index 7 is out of range [0, 10)")
    raises_unchanged(net, ValueError, match, lambda: CALLS[call](net, x, y))


@pytest.mark.parametrize("call", WITH_Y)
def test_float_labels_are_refused(net_xy, call):
    net, x, y = net_xy
    match = r"^y: class labels need an integer dtype, got float64$"
    raises_unchanged(net, TypeError, match, lambda: CALLS[call](net, x, y.astype(float)))


@pytest.mark.parametrize(
    "label_dtype", ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
)
def test_labels_of_every_integer_dtype_are_accepted(net_xy, label_dtype):
    net, x, y = net_xy
    loss, grads = net.gradients(x, y)
    loss_cast, grads_cast = net.gradients(x, y.astype(label_dtype))
    assert loss_cast == loss
    for (gw, gb), (cw, cb) in zip(grads, grads_cast):
        np.testing.assert_array_equal(cw, gw)
        np.testing.assert_array_equal(cb, gb)
    assert math.isfinite(net.train_step(x, y.astype(label_dtype)))


def poison(a, value, row=5, column=3):
    a = a.copy()
    a[row, column] = value
    return a


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("call", CALLS)
def test_nan_or_inf_in_x_is_refused(net_xy, call, value):
    net, x, y = net_xy
    match = rf"^x: contains {value} at row 5, column 3; NaN and inf are not allowed$"
    raises_unchanged(net, ValueError, match, lambda: CALLS[call](net, poison(x, value), y))


@pytest.mark.parametrize("value", [np.nan, np.inf])
@pytest.mark.parametrize("loss", ["cross_entropy", "binary_cross_entropy", "mse", "poisson"])
@pytest.mark.parametrize("call", WITH_Y)
def test_nan_or_inf_in_dense_y_is_refused(dtype, call, loss, value):
    net, x, y = trained(dtype, loss)
    if loss == "cross_entropy":
        y = np.eye(SIZES[-1], dtype=dtype)[y]  # one-hot
    match = rf"^y: contains {value} at row 5, column 3; NaN and inf are not allowed$"
    raises_unchanged(net, ValueError, match, lambda: CALLS[call](net, x, poison(y, value)))


# The calls that read y, for the poisson loss's y >= 0: a training set's, or the validation set's.
POISSON_CALLS = {
    **{name: CALLS[name] for name in WITH_Y},
    "loss_and_gradient": lambda net, x, y: net.loss_and_gradient(net.params, x, y),
    "per_sample_gradients": lambda net, x, y: net.per_sample_gradients(x, y),
    "validation_data": lambda net, x, y: net.fit(x, abs(y), epochs=1, validation_data=(x, y)),
}


@pytest.mark.parametrize("call", POISSON_CALLS)
def test_negative_y_is_refused_by_the_poisson_loss(dtype, call):
    net, x, y = trained(dtype, "poisson")
    prefix = "validation_data: " if call == "validation_data" else ""
    match = rf"^{prefix}y: contains -0.5 at row 5, column 3; the poisson loss needs y >= 0$"
    raises_unchanged(net, ValueError, match, lambda: POISSON_CALLS[call](net, x, poison(y, -0.5)))


@pytest.mark.parametrize("call", WITH_Y)
def test_x_and_y_of_different_batch_sizes_are_refused(net_xy, call):
    net, x, y = net_xy
    match = re.escape("y: expected 48 rows to match x's batch of 48, got shape (47,)")
    raises_unchanged(net, ValueError, match, lambda: CALLS[call](net, x, y[:47]))


@pytest.mark.parametrize("call", WITH_Y)
def test_y_with_the_wrong_number_of_columns_is_refused(net_xy, call):
    net, x, y = net_xy
    one_hot = np.eye(10, dtype=x.dtype)[y][:, :9]
    match = "^" + re.escape("y has 9 columns, but the network has 10 outputs") + "$"
    raises_unchanged(net, ValueError, match, lambda: CALLS[call](net, x, one_hot))


UNSAFE = {
    "complex128": lambda a: a.astype(np.complex128),
    "object": lambda a: a.astype(str).astype(object),
    "str": lambda a: a.astype(str),
}


@pytest.mark.parametrize("kind", UNSAFE)
@pytest.mark.parametrize("call", CALLS)
def test_x_of_a_dtype_that_does_not_cast_safely_is_refused(net_xy, call, kind):
    net, x, y = net_xy
    match = rf"^x: dtype \S+ cannot be cast safely to the network's {x.dtype}$"
    raises_unchanged(net, TypeError, match, lambda: CALLS[call](net, UNSAFE[kind](x), y))


@pytest.mark.parametrize("one_hot", [False, True])
@pytest.mark.parametrize("kind", UNSAFE)
@pytest.mark.parametrize("call", WITH_Y)
def test_y_of_a_dtype_that_does_not_cast_safely_is_refused(net_xy, call, kind, one_hot):
    net, x, y = net_xy
    if one_hot:
        y, match = np.eye(10)[y], r"^y: dtype \S+ cannot be cast safely"
    else:
        match = r"^y: class labels need an integer dtype, got \S+$"
    raises_unchanged(net, TypeError, match, lambda: CALLS[call](net, x, UNSAFE[kind](y)))


def test_float64_and_integer_x_are_cast_to_the_networks_dtype():
    net, x, y = trained(np.float32)
    np.testing.assert_array_equal(net.forward(x.astype(np.float64)), net.forward(x))
    ints = np.arange(48 * 64).reshape(48, 64) % 7 - 3
    np.testing.assert_array_equal(net.forward(ints), net.forward(ints.astype(np.float32)))
    assert net.gradients(ints, y)[0] == net.gradients(ints.astype(np.float32), y)[0]


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ((64,), r"^x: expected a 2-D array \(batch, 64\), got a 1-D one; use x\[None, :\]"),
        ((3,), r"^x: expected a 2-D array \(batch, features\), got 1-D$"),
        ((2, 3, 64), r"^x: expected a 2-D array \(batch, features\), got 3-D$"),
        ((0, 64), r"^x: empty batch, shape \(0, 64\)$"),
    ],
    ids=["1-D sample", "1-D", "3-D", "empty batch"],
)
@pytest.mark.parametrize("call", CALLS)
def test_x_of_the_wrong_rank_or_an_empty_batch_is_refused(net_xy, call, shape, match):
    net, x, y = net_xy
    raises_unchanged(net, ValueError, match, lambda: CALLS[call](net, np.ones(shape, x.dtype), y))


def test_lists_are_accepted_as_x(net_xy):
    net, x, y = net_xy
    np.testing.assert_array_equal(net.forward(x.tolist()), net.forward(x))
    assert net.gradients(x.tolist(), y.tolist())[0] == net.gradients(x, y)[0]


# -- constructor --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "exception", "match"),
    [
        ({"sizes": [64]}, ValueError, r"^sizes: need at least inputs and outputs"),
        ({"sizes": []}, ValueError, r"^sizes: need at least inputs and outputs"),
        ({"sizes": [64, 0, 10]}, ValueError, r"^sizes\[1\]: must be >= 1, got 0$"),
        ({"sizes": [64, 32, -3]}, ValueError, r"^sizes\[2\]: must be >= 1, got -3$"),
        ({"sizes": [64, 32.0, 10]}, TypeError, r"^sizes\[1\]: expected an integer, got float$"),
        ({"sizes": 64}, TypeError, r"^sizes: expected a sequence of ints, got int$"),
        ({"activation": "swish"}, ValueError, r"^activation: unknown 'swish'"),
        ({"loss": "hinge"}, ValueError, r"^loss: unknown 'hinge'"),
        ({"init": "xavier"}, ValueError, r"^init: unknown 'xavier'"),
        ({"dtype": "float16"}, TypeError, r"^dtype: expected float32 or float64, got float16$"),
        ({"output_activation": "sigmoid"}, ValueError,
         r"^output_activation: cross_entropy is computed from softmax outputs, got 'sigmoid'$"),
        ({"sizes": [64, 32, 16, 10], "activation": ["relu"]}, ValueError,
         r"^activation: expected one name or 2 \(one per hidden layer\), got 1$"),
    ],
    ids=["one size", "no sizes", "zero size", "negative size", "float size", "int sizes",
         "activation", "loss", "init", "float16", "output_activation", "hidden count"],
)
def test_bad_constructor_arguments_are_refused_naming_the_argument(kwargs, exception, match):
    kwargs = {"sizes": SIZES, **kwargs}
    with pytest.raises(exception, match=match):
        Network(kwargs.pop("sizes"), **kwargs)


# -- optimizer and fit arguments ----------------------------------------------------------

BAD_OPTIMIZER = [
    ({"lr": 0}, ValueError, r"^lr: must be a finite number in \(0.0, inf\], got 0.0$"),
    ({"lr": -0.1}, ValueError, r"^lr: must be a finite number in \(0.0, inf\], got -0.1$"),
    ({"lr": math.nan}, ValueError, r"^lr: must be a finite number .*, got nan$"),
    ({"lr": "0.1"}, TypeError, r"^lr: expected a number, got str$"),
    ({"momentum": -0.5}, ValueError, r"^momentum: must be a finite number in \[0.0, 1.0\]"),
    ({"optimizer": "lion"}, ValueError, r"^optimizer: unknown 'lion'"),
    ({"nesterov": True}, ValueError, r"^nesterov: needs momentum > 0$"),
    ({"weight_decay": -1e-4}, ValueError, r"^weight_decay: must be a finite number in \[0.0"),
    ({"max_grad_norm": 0}, ValueError, r"^max_grad_norm: must be a number in \(0.0, inf\], got 0"),
    ({"max_grad_norm": -1.0}, ValueError, r"^max_grad_norm: must be a number .*, got -1.0$"),
    ({"max_grad_norm": math.nan}, ValueError, r"^max_grad_norm: must be a number .*, got nan$"),
    ({"max_grad_norm": -math.inf}, ValueError, r"^max_grad_norm: must be a number .*, got -inf$"),
    ({"max_grad_norm": "1"}, TypeError, r"^max_grad_norm: expected a number, got str$"),
]


@pytest.mark.parametrize(("kwargs", "exception", "match"), BAD_OPTIMIZER)
def test_bad_optimizer_arguments_to_set_optimizer_change_nothing(net_xy, kwargs, exception, match):
    net, _, _ = net_xy
    raises_unchanged(net, exception, match, lambda: net.set_optimizer(**{"lr": 0.1, **kwargs}))


BAD_FIT = [
    *BAD_OPTIMIZER,
    ({"epochs": 0}, ValueError, r"^epochs: must be >= 1, got 0$"),
    ({"batch_size": 0}, ValueError, r"^batch_size: must be >= 1, got 0$"),
    ({"batch_size": 1.5}, TypeError, r"^batch_size: expected an integer, got float$"),
    ({"patience": 0}, ValueError, r"^patience: must be >= 1, got 0$"),
    ({"lr_schedule": "step"}, ValueError,
     r"^lr_schedule: unknown 'step', expected one of constant, cosine, linear$"),
    ({"lr_schedule": None}, ValueError, r"^lr_schedule: unknown None"),
    ({"warmup": 1.0}, ValueError, r"^warmup: must be a number in \[0, 1\), got 1.0$"),
    ({"warmup": -0.1}, ValueError, r"^warmup: must be a number in \[0, 1\), got -0.1$"),
    ({"warmup": math.nan}, ValueError, r"^warmup: must be a number in \[0, 1\), got nan$"),
    ({"warmup": "0.1"}, TypeError, r"^warmup: expected a number, got str$"),
]


@pytest.mark.parametrize(("kwargs", "exception", "match"), BAD_FIT)
def test_bad_fit_arguments_change_nothing(net_xy, kwargs, exception, match):
    net, x, y = net_xy
    raises_unchanged(net, exception, match, lambda: net.fit(x, y, **kwargs))


def test_bad_partial_fit_batch_size_changes_nothing(net_xy):
    net, x, y = net_xy
    match = r"^batch_size: must be >= 1, got 0$"
    raises_unchanged(net, ValueError, match, lambda: net.partial_fit(x, y, batch_size=0))


@pytest.mark.parametrize("seed", ["abc", -1])
def test_fit_with_a_bad_seed_changes_nothing(net_xy, seed):
    net, x, y = net_xy
    raises_unchanged(net, (TypeError, ValueError), None, lambda: net.fit(x, y, seed=seed))


@pytest.mark.parametrize(
    ("validation", "exception", "match"),
    [
        (lambda x, y: [x, y], TypeError,
         r"^validation_data: expected a tuple \(x_val, y_val\) or \(x_val, y_val, w_val\)$"),
        (lambda x, y: (x, y, None, y), TypeError, r"^validation_data: expected a tuple"),
        (lambda x, y: (x[:, :63], y), ValueError, r"63 features, but the network expects 64"),
        (lambda x, y: (x, y[:40]), ValueError, r"expected 48 rows"),
        (lambda x, y: (poison(x, np.nan), y), ValueError, r"NaN and inf are not allowed"),
        (lambda x, y: (x, y, -np.ones(48)), ValueError,
         r"^validation_data: sample_weight: weight -1 at index 0 is not a finite number >= 0$"),
        (lambda x, y: (x, y, np.ones(47)), ValueError,
         r"^validation_data: sample_weight: expected 48 rows"),
        (lambda x, y: (x, y, np.zeros(48)), ValueError,
         r"^validation_data: sample_weight: the weights are all 0"),
    ],
    ids=["list", "4-tuple", "63 features", "rows", "nan", "weight -1", "weight rows",
         "weights 0"],
)  # fmt: skip
def test_malformed_validation_data_is_refused_before_any_step(net_xy, validation, exception, match):
    net, x, y = net_xy
    raises_unchanged(
        net, exception, match, lambda: net.fit(x, y, epochs=1, validation_data=validation(x, y))
    )


def test_errors_in_validation_data_name_validation_data(net_xy):
    net, x, y = net_xy
    with pytest.raises(ValueError, match=r"^validation_data.*63 features"):
        net.fit(x, y, epochs=1, validation_data=(x[:, :63], y))


# -- sample weights -----------------------------------------------------------------------

WEIGHTED = {
    "train_step": lambda net, x, y, w: net.train_step(x, y, sample_weight=w),
    "fit": lambda net, x, y, w: net.fit(x, y, epochs=1, sample_weight=w),
    "partial_fit": lambda net, x, y, w: net.partial_fit(x, y, sample_weight=w),
    "score": lambda net, x, y, w: net.score(x, y, sample_weight=w),
}
BAD_WEIGHTS = {
    "length": (lambda n: np.ones(n - 1), ValueError,
               r"^sample_weight: expected 48 rows to match x's batch of 48, got shape \(47,\)$"),
    "2-D": (lambda n: np.ones((n, 1)), ValueError, r"^sample_weight: expected a 1-D array"),
    "negative": (lambda n: np.r_[np.ones(n - 1), -0.5], ValueError,
                 r"^sample_weight: weight -0.5 at index 47 is not a finite number >= 0$"),
    "nan": (lambda n: np.r_[np.nan, np.ones(n - 1)], ValueError,
            r"^sample_weight: weight nan at index 0 is not a finite number >= 0$"),
    "string": (lambda n: ["a"] * n, TypeError,
               r"^sample_weight: expected an array-like of numbers, got list$"),
}  # fmt: skip


@pytest.mark.parametrize("bad", BAD_WEIGHTS)
@pytest.mark.parametrize("call", WEIGHTED)
def test_bad_sample_weights_are_refused_naming_sample_weight(net_xy, call, bad):
    net, x, y = net_xy
    weights, exception, match = BAD_WEIGHTS[bad]
    raises_unchanged(net, exception, match, lambda: WEIGHTED[call](net, x, y, weights(len(x))))


@pytest.mark.parametrize("call", ["fit", "partial_fit", "score"])
def test_sample_weights_all_zero_are_refused_where_they_weigh_the_whole_set(net_xy, call):
    net, x, y = net_xy
    match = r"^sample_weight: the weights are all 0; at least one sample must weigh more$"
    raises_unchanged(net, ValueError, match, lambda: WEIGHTED[call](net, x, y, np.zeros(len(x))))


# -- divergence ---------------------------------------------------------------------------


def diverging_regression(dtype):
    rng = np.random.default_rng(2)
    x = randn(rng, dtype, 40, 5)
    return Network([5, 8, 3], "tanh", "mse", dtype=dtype, seed=0), x, 1e4 * randn(rng, dtype, 40, 3)


def test_divergent_fit_raises_naming_the_epoch_and_restores_the_network(dtype):
    net, x, y = diverging_regression(dtype)
    before = snapshot(net)
    with pytest.raises(FloatingPointError) as error:
        net.fit(x, y, epochs=50, lr=1e6, optimizer="sgd", seed=0)
    match = re.fullmatch(
        r"epoch (\d+): the training loss became (inf|nan|[-\d.e+]+) or the parameters "
        r"overflowed; the network is restored to what it was before fit\. "
        r"Try a smaller learning rate \(lr=1000000\.0\)",
        str(error.value),
    )
    assert match and 1 <= int(match[1]) <= 50, str(error.value)
    before.pop("workspace")  # training ran, so the workspace exists now; all else is restored
    assert_unchanged(net, before)
    assert np.isfinite(net._core.params).all()


# At batch 1 a bound on the update stands in for the copy, until it cannot rule out overflow.
@pytest.mark.parametrize("batch", [1, 40])
def test_train_step_that_overflows_the_weights_raises_and_restores_them(dtype, batch):
    net, x, y = diverging_regression(dtype)
    x, y = x[:batch], y[:batch]
    net.set_optimizer("sgd", float(np.finfo(dtype).max) / 10)  # finite loss, inf weights after
    before = snapshot(net)
    # The C++ step reports the overflow as a NaN loss, after putting everything back.
    match = r"^the training loss became nan or the parameters"
    with pytest.raises(FloatingPointError, match=match):
        net.train_step(x, y)
    before.pop("workspace")
    assert_unchanged(net, before)


def test_fit_whose_last_step_overflows_the_weights_raises_and_restores_them(dtype):
    net, x, y = diverging_regression(dtype)
    before = net._core.params.copy()
    lr = float(np.finfo(dtype).max) / 10  # one step sends the weights to inf; its loss is finite
    with pytest.raises(FloatingPointError, match=r"^epoch 1: "):
        net.fit(x, y, epochs=1, batch_size=40, lr=lr)
    assert net._core.params.tobytes() == before.tobytes()


def test_train_step_with_a_non_finite_loss_raises_and_changes_nothing(net_xy):
    net, x, y = net_xy
    huge = np.full((16, 64), np.finfo(x.dtype).max, x.dtype)  # finite, but the logits overflow
    match = (r"^the training loss became nan or the parameters overflowed; the network is as "
             r"before the step")  # fmt: skip
    raises_unchanged(net, FloatingPointError, match, lambda: net.train_step(huge, y[:16]))


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_batch_size_beyond_any_index_trains_on_the_whole_set(net_xy, method):
    net, x, y = net_xy
    net.set_optimizer("sgd", 0.1)
    whole = copy.deepcopy(net)
    getattr(net, method)(x, y, batch_size=2**64, shuffle=False)
    getattr(whole, method)(x, y, batch_size=len(x), shuffle=False)
    assert net._core.params.tobytes() == whole._core.params.tobytes()
