"""Data-parallel training over MPI: tests/mpi_worker.py under ``mpiexec -n 2`` and ``-n 3``
(unequal shards), a child process with a timeout, so a hang fails instead of stalling the
suite. Each case passes when every rank reports it passed; the worker's docstrings say what
each checks against one process."""

import ast
import contextlib
import functools
import importlib.util
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import sysconfig

import denseprop
import numpy as np
import pytest

WORKER = pathlib.Path(__file__).with_name("mpi_worker.py")
TIMEOUT = 120  # seconds for one launch of every case; they take a few seconds here


def mpiexec():
    """The mpiexec beside this Python (where the mpich wheel puts it in a venv), else on PATH."""
    beside = pathlib.Path(sysconfig.get_path("scripts")) / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def cases():
    tree = ast.parse(WORKER.read_text())
    marked = [f for f in tree.body if isinstance(f, ast.FunctionDef) and f.decorator_list]
    return [f.name for f in marked if getattr(f.decorator_list[0], "id", None) == "case"]


pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("mpi4py") is None,
        reason='needs mpi4py (pip install "denseprop[mpi]")',
    ),
    pytest.mark.skipif(mpiexec() is None, reason="needs mpiexec (the mpich wheel brings one)"),
]


def run(*command, timeout=TIMEOUT):
    """(return code, stdout and stderr) of ``command``, one thread per process (the ranks
    already share the cores). Past ``timeout`` the code is None: the whole process group is
    ended, mpiexec and the ranks it started, so nothing is left spinning in a collective."""
    env = {**os.environ, "DENSEPROP_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, start_new_session=True)  # fmt: skip
    try:
        out = child.communicate(timeout=timeout)[0]
        return child.returncode, out
    except subprocess.TimeoutExpired:
        pass
    os.killpg(child.pid, signal.SIGTERM)  # mpiexec passes it on to the ranks
    try:
        out = child.communicate(timeout=5)[0]
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        out = child.communicate()[0]
    with contextlib.suppress(ProcessLookupError):  # a rank that outlived mpiexec
        os.killpg(child.pid, signal.SIGKILL)
    return None, f"timed out after {timeout} s (a hang?)\n{out}"


@functools.cache
def launch(ranks):
    """Every case once under ``mpiexec -n ranks``: (return code, output)."""
    return run(mpiexec(), "-n", str(ranks), sys.executable, str(WORKER))


@pytest.mark.parametrize("ranks", [2, 3])
@pytest.mark.parametrize("name", cases())
def test_case_passes_on_every_rank(ranks, name):
    _, output = launch(ranks)
    passed = {int(r) for r in re.findall(rf"rank (\d+): ok {name}\b", output)}
    assert passed == set(range(ranks)), output[-4000:]


@pytest.mark.parametrize("ranks", [2, 3])
def test_launch_ends_cleanly(ranks):
    code, output = launch(ranks)
    assert code == 0, output[-4000:]


def test_demo_distributed_prints_the_one_process_accuracy():
    demo = (sys.executable, "-m", "denseprop", "demo", "--epochs", "5")
    code, one = run(*demo)
    assert code == 0, one
    code, many = run(mpiexec(), "-n", "3", *demo, "--distributed")
    assert code == 0, many

    def accuracy(out):
        return [line for line in out.splitlines() if line.startswith("test accuracy")]

    assert accuracy(many) == accuracy(one) != []  # printed once, by rank 0
    assert "3 ranks" in many


def test_a_hang_is_ended_by_the_timeout():
    """The guard itself: a rank waits in a collective the other never joins; the launch is
    ended at the timeout with every process of it."""
    stuck = "from mpi4py import MPI; c = MPI.COMM_WORLD; c.rank and c.barrier()"
    code, out = run(mpiexec(), "-n", "2", sys.executable, "-c", stuck, timeout=5)
    assert code is None, out
    assert "timed out after 5 s" in out


def test_import_denseprop_does_not_import_mpi4py():
    code = "import sys, denseprop; denseprop.Network([2, 2]); print('mpi4py' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    assert out.strip() == "False"


def test_compiled_modules_do_not_link_mpi():
    lib = pathlib.Path(denseprop._core.__file__)
    ldd = shutil.which("ldd")
    if ldd is None:
        pytest.skip("needs ldd")
    for module in lib.parent.glob("_core_*"):
        linked = subprocess.run([ldd, str(module)], capture_output=True, text=True).stdout
        assert "mpi" not in linked.lower(), linked


def test_gradient_buffer_is_a_writable_view_of_the_gradients(rng):
    net = denseprop.Network([3, 4, 2], dtype="float64", seed=0)
    x, y = rng.standard_normal((5, 3)), rng.integers(0, 2, 5)
    buffer = net._core.gradient_buffer
    net._core.loss_and_gradients(x, y, "sum")
    np.testing.assert_array_equal(buffer, net._core.grads)
    buffer[...] = 0
    assert not net._core.grads.any()


def test_a_step_of_one_process_is_train_step(rng):
    """distributed_step with a reduce that adds nothing (one process) is train_step; a step
    empty on every process is refused, and a reduce that fails leaves the network as it was."""
    nets = [denseprop.Network([3, 4, 2], dtype="float64", seed=0) for _ in range(2)]
    x, y = rng.standard_normal((5, 3)), rng.integers(0, 2, 5)
    for net in nets:
        net.set_optimizer("adam", 0.1)
    loss, count = nets[0]._core.distributed_step(x, y, lambda loss, n, weight: (loss, n, weight))
    assert count == 5
    np.testing.assert_allclose(loss / count, nets[1].train_step(x, y), rtol=1e-14)
    np.testing.assert_allclose(nets[0].params, nets[1].params, rtol=1e-13, atol=1e-15)
    with pytest.raises(ValueError, match="x: the batch is empty on every rank"):
        nets[0]._core.distributed_step(None, None, lambda loss, n, weight: (loss, n, weight))
    before = nets[0].params.copy()

    def failing(loss, n, weight):
        msg = "the network is down"
        raise OSError(msg)

    with pytest.raises(OSError, match="the network is down"):
        nets[0]._core.distributed_step(x, y, failing)
    np.testing.assert_array_equal(nets[0].params, before)
