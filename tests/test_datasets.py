"""The digits shipped with the package are scikit-learn's, value for value, and their licence
travels with them."""

from pathlib import Path

import denseprop
import numpy as np
import pytest
from denseprop.datasets import load_digits


def test_load_digits_returns_scikit_learns_digits():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    x, y = load_digits()
    expected_x, expected_y = sklearn_datasets.load_digits(return_X_y=True)
    assert x.dtype == np.float64 and x.shape == (1797, 64)
    assert y.dtype == np.int64 and y.shape == (1797,)
    np.testing.assert_array_equal(x, expected_x)
    np.testing.assert_array_equal(y, expected_y)


def test_the_digits_come_with_their_source_and_licence():
    data = Path(denseprop.__file__).parent / "data"
    readme = (data / "README.md").read_text(encoding="utf-8")
    assert (data / "digits.npz").is_file()
    assert "Alpaydin" in readme and "CC BY 4.0" in readme
