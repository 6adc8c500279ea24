"""scikit-learn's own MLP tests, run against denseprop's estimators.

The installed scikit-learn's ``sklearn/neural_network/tests/test_mlp.py`` is copied at run time
with its import of ``MLPClassifier, MLPRegressor`` rewritten to denseprop's, so a newer
scikit-learn's file is used as it comes. Only the tests that read or set scikit-learn's private
attributes are deselected; docs/guide/scikit-learn.md lists them with the reason for each.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

sklearn = pytest.importorskip("sklearn")

SOURCE = Path(sklearn.__file__).parent / "neural_network" / "tests" / "test_mlp.py"
IMPORT = "from sklearn.neural_network import MLPClassifier, MLPRegressor"

# test -> the private attribute of scikit-learn's implementation it needs (or what is missing)
DESELECTED = {
    "test_fit": "sets _coef_grads, _intercept_velocity, _no_improvement_count ... before fitting",
    "test_gradient": "calls _loss_grad_lbfgs with scikit-learn's per-layer work arrays",
    "test_learning_rate_warmstart": "reads _optimizer.learning_rate",
    "test_adaptive_learning_rate": "reads _optimizer.learning_rate",
}


def test_deselected_tests_exist():
    """The list names tests of the file, so a renamed test is not silently run or skipped."""
    names = set(re.findall(r"^def (test_\w+)", SOURCE.read_text(), re.MULTILINE))
    assert set(DESELECTED) <= names


def test_scikit_learns_mlp_tests_pass_on_denseprop(tmp_path):
    text = SOURCE.read_text()
    assert IMPORT in text, "scikit-learn's test file no longer imports the estimators this way"
    (tmp_path / "test_mlp_denseprop.py").write_text(
        text.replace(IMPORT, "from denseprop import MLPClassifier, MLPRegressor")
    )
    # scikit-learn's fixtures (global_random_seed) come from its conftest, loaded as a plugin;
    # an empty ini keeps this repository's pytest settings out of the copied file's run.
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    deselect = [f"--deselect=test_mlp_denseprop.py::{name}" for name in DESELECTED]
    env = {**os.environ, "SKLEARN_SKIP_NETWORK_TESTS": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "sklearn.conftest", "-p", "no:cacheprovider",
         "test_mlp_denseprop.py", *deselect],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and " failed" not in run.stdout
