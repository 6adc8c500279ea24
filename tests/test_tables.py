"""Each family is declared once, in the compiled module's tables: the NumPy reference (written by
hand, the oracle) covers each table exactly, and the package's names, messages and defaults
follow the tables."""

import re

import denseprop
import denseprop.reference as ref
import numpy as np
import pytest
from conftest import ACTIVATIONS, HIDDEN, NEEDS_Z
from denseprop import _core


def test_the_reference_covers_the_activation_table_exactly():
    assert ref.ACTIVATIONS == tuple(ACTIVATIONS)
    assert set(ref.FROM_INPUT) == set(NEEDS_Z)


def test_the_reference_covers_the_loss_table_exactly():
    table = [loss["name"] for loss in _core.losses()]
    assert ref.LOSSES == tuple(table)
    for loss in _core.losses():  # each loss's kernel has its twin
        assert hasattr(ref, loss["kernel"]) and hasattr(_core, loss["kernel"])


def test_the_reference_covers_the_optimizer_table_exactly():
    table = {o["name"] for o in _core.optimizers()}
    steps = {name[: -len("_step")] for name in ref.__all__ if name.endswith("_step")}
    assert steps == table


def test_every_activation_entry_says_what_the_rest_reads():
    for a in _core.activations():
        assert a["init"] in ("glorot", "he")
        assert "{l}" in a["forward_equation"] and "{l}" in a["backward_equation"]
        # the backward reads z exactly when its equation is written in Z
        assert a["needs_z"] == ("Z[{l}]" in a["backward_equation"])
    assert {"softmax", "exp"} <= set(ACTIVATIONS) and not {"softmax", "exp"} & set(HIDDEN)


@pytest.mark.parametrize("activation", HIDDEN)
def test_network_takes_every_hidden_activation_and_initialises_by_its_family(activation):
    net = denseprop.Network([30, 40, 3], activation, seed=0, dtype=np.float64)
    he = {a["name"]: a["init"] == "he" for a in _core.activations()}[activation]
    # He normal has variance 2 / in = 1/15; Glorot uniform 2 / (in + out) = 1/35
    variance = float(net.weights[0].var())
    assert abs(variance - (1 / 15 if he else 1 / 35)) < 0.3 * (1 / 15 if he else 1 / 35)


def test_unknown_names_are_refused_listing_the_table():
    def listing(argument, value, table):
        names = ", ".join(e["name"] for e in table)
        return "^" + re.escape(f"{argument}: unknown '{value}', expected one of {names}") + "$"

    activations = _core.activations()
    with pytest.raises(ValueError, match=listing("activation", "swish", activations)):
        denseprop.activation_forward(np.zeros((2, 3)), "swish")
    with pytest.raises(ValueError, match=listing("output_activation", "swish", activations)):
        denseprop.Network([3, 2], loss="mse", output_activation="swish")
    with pytest.raises(ValueError, match=listing("loss", "hinge", _core.losses())):
        denseprop.Network([3, 2], loss="hinge")
    with pytest.raises(ValueError, match=listing("optimizer", "lion", _core.optimizers())):
        denseprop.Network([3, 2]).set_optimizer("lion")


@pytest.mark.parametrize("activation", ["softmax", "exp"])
def test_output_only_activations_are_refused_in_a_hidden_layer(activation):
    message = rf"^activation: {activation} can only be output_activation, not a hidden layer's$"
    with pytest.raises(ValueError, match=message):
        denseprop.Network([3, 4, 2], activation, loss="mse")


def test_the_estimators_take_every_hidden_activation():
    params = pytest.importorskip("denseprop._estimator_params")
    assert set(params._ACTIVATIONS) == {"logistic", *HIDDEN}


def test_optimizer_settings_are_bound_by_name_and_checked_where_declared():
    s = _core.OptimizerSettings(optimizer="adam", lr=0.5, beta1=0.8, beta2=0.9, eps=1e-6)
    assert (s.optimizer, s.lr, s.beta1, s.beta2, s.eps) == ("adam", 0.5, 0.8, 0.9, 1e-6)
    assert s.as_dict()["seed"] is None
    with pytest.raises(TypeError, match=r"^lr: expected a number, got str$"):
        _core.OptimizerSettings(lr="1")
    with pytest.raises(TypeError, match=r"^momentum: expected a number, got bool$"):
        _core.OptimizerSettings(momentum=True)
    message = r"^eps: must be a finite number in \(0.0, inf\], got 0.0$"
    with pytest.raises(ValueError, match=message):
        _core.OptimizerSettings(eps=0.0)
    with pytest.raises(ValueError, match=r"^beta1, beta2: must be < 1"):
        _core.OptimizerSettings(optimizer="adam", beta2=1.0)
    with pytest.raises(TypeError):
        _core.OptimizerSettings("sgd", 0.1)  # by name only


def test_fit_takes_every_optimizer_setting_by_name(rng):
    x = rng.standard_normal((40, 5))
    y = rng.integers(0, 3, 40)
    kwargs = {"beta1": 0.5, "beta2": 0.9, "eps": 1e-4, "weight_decay": 0.01}
    fitted = denseprop.Network([5, 4, 3], dtype=np.float64, seed=0)
    fitted.fit(x, y, epochs=2, batch_size=8, optimizer="adam", lr=0.01, shuffle=False, **kwargs)
    assert {k: fitted.optimizer[k] for k in kwargs} == kwargs
    stepped = denseprop.Network([5, 4, 3], dtype=np.float64, seed=0)
    stepped.set_optimizer("adam", 0.01, **kwargs)
    for _ in range(2):
        for start in range(0, 40, 8):
            stepped.train_step(x[start : start + 8], y[start : start + 8])
    np.testing.assert_array_equal(fitted._core.params, stepped._core.params)


def test_the_parameter_layout_is_the_compiled_one(rng):
    net = denseprop.Network([4, 3, 2], seed=0)
    buffer = np.arange(net._core.params.size, dtype=np.float32)
    layers = net._core.layers(buffer)
    assert [(w.shape, b.shape) for w, b in layers] == [((3, 4), (3,)), ((2, 3), (2,))]
    assert layers[0][1][0] == 12 and layers[1][0][0, 0] == 15  # W0, b0, W1, b1 in turn
    assert np.shares_memory(layers[1][1], buffer)
    with pytest.raises(ValueError, match=r"^buffer: expected shape \(23,\)"):
        net._core.layers(buffer[:-1])
