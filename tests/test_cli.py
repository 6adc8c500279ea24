"""`python -m denseprop demo` trains with a progress bar and reports accuracy and speed;
`info` prints build_info(); `Network.plot_loss_curve` draws and saves the curves."""

import re
import subprocess
import sys

import denseprop
import numpy as np
import pytest
from denseprop.__main__ import main


def test_demo_reports_accuracy_speed_and_saves_the_loss_curve(tmp_path, capsys):
    plot = tmp_path / "loss.png"
    assert main(["demo", "--epochs", "20", "--progress", "--plot", str(plot)]) == 0
    out, err = capsys.readouterr()
    assert "UCI handwritten digits" in out
    accuracy = float(re.search(r"test accuracy: ([0-9.]+) after 20 epochs", out).group(1))
    assert accuracy >= 0.85
    times = re.search(r"denseprop ([0-9.]+) ms, NumPy reference ([0-9.]+) ms", out)
    assert times and float(times.group(1)) > 0 and float(times.group(2)) > 0
    assert "[" + "#" * 30 + "] 20/20" in err  # the progress bar, drawn to the end
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_demo_without_scikit_learn_trains_on_the_shipped_digits(monkeypatch, capsys):
    for name in [m for m in sys.modules if m == "sklearn" or m.startswith("sklearn.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sklearn", None)  # any import of it fails
    assert main(["demo", "--epochs", "5", "--dtype", "float64"]) == 0
    out, err = capsys.readouterr()
    assert "UCI handwritten digits (8x8 images, 10 classes); 1347 training and 450 test" in out
    assert "test accuracy" in out
    assert err == ""  # no bar when stderr is not a terminal


def test_info_prints_build_info():
    out = subprocess.run(
        [sys.executable, "-m", "denseprop", "info"], capture_output=True, text=True, check=True
    ).stdout
    for key, value in denseprop.build_info().items():
        assert f"{key}: {value}" in out


def test_plot_loss_curve_draws_training_and_validation(tmp_path, rng):
    pytest.importorskip("matplotlib")
    x = rng.standard_normal((60, 4))
    y = (x[:, 0] > 0).astype(np.int64)
    net = denseprop.Network([4, 6, 2], seed=0)
    with pytest.raises(ValueError, match="nothing to plot, fit the network first"):
        net.plot_loss_curve()
    net.fit(x[:40], y[:40], epochs=7, lr=0.5, validation_data=(x[40:], y[40:]), seed=0)
    path = tmp_path / "curve.svg"
    fig = net.plot_loss_curve(path)
    loss_axes, score_axes = fig.axes
    np.testing.assert_array_equal(loss_axes.lines[0].get_ydata(), net.loss_curve_)
    np.testing.assert_array_equal(score_axes.lines[0].get_ydata(), net.validation_scores_)
    assert path.read_text().lstrip().startswith("<?xml")
