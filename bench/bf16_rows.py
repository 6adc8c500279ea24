"""The bfloat16 rows of run.py that are not single steps: the GEMM alone against
``torch.matmul`` on bf16 tensors, and an MNIST-sized epoch against a PyTorch loop under
autocast, with the test accuracy each reaches beside float32's."""

import denseprop
import numpy as np
from denseprop import _core
from peers import Missing
from timing import interleaved

# (m, k, n) of the MLPs' products: 784-256 at batch 256 and 4096, 1024-1024, 4096-4096.
GEMMS = [(256, 784, 256), (4096, 784, 256), (1024, 1024, 1024), (512, 4096, 4096)]
MNIST = {"samples": 60000, "test": 10000, "sizes": [784, 256, 128, 10], "batch": 512}


def gemm_config(m, k, n, budget, notes):
    """denseprop's product from float32 arrays (rounding and packing included, as a step does)
    against torch.matmul on tensors already in bf16."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    kernel = _core._bf16_kernel()
    fns = {f"denseprop ({kernel})": lambda: _core._bf16_matmul(a, b, kernel=kernel)}
    try:
        import torch

        ta, tb = torch.from_numpy(a).bfloat16(), torch.from_numpy(b).bfloat16()
        fns["torch.matmul bf16"] = lambda: torch.matmul(ta, tb)
        fa, fb = torch.from_numpy(a), torch.from_numpy(b)
        fns["torch.matmul float32"] = lambda: torch.matmul(fa, fb)
    except ImportError:
        notes.add("torch skipped in the bf16 GEMM rows: torch is not installed")
    timed = interleaved(fns, budget_s=budget)
    work = 2.0 * m * n * k
    return {"kind": "bf16 gemm", "sizes": [m, k, n], "batch": m, "dtype": "bfloat16",
            "results": {name: {"median_us": t["median_s"] * 1e6, "calls": t["calls"],
                               "gflops": work / t["median_s"] / 1e9}
                        for name, t in timed.items()}}  # fmt: skip


def mnist_like(seed=0):
    """60,000 + 10,000 samples of 784 features in 10 classes: each a class's random mean plus
    noise that makes the classes overlap (a 784-256-128-10 network reaches about 95%)."""
    rng = np.random.default_rng(seed)
    n = MNIST["samples"] + MNIST["test"]
    means = rng.standard_normal((10, 784)).astype(np.float32) * 0.12
    y = rng.integers(0, 10, n)
    x = means[y] + rng.standard_normal((n, 784), dtype=np.float32)
    cut = MNIST["samples"]
    return x[:cut], y[:cut], x[cut:], y[cut:]


def _denseprop(x, y, compute_dtype):
    """(one epoch of Network.fit, the test accuracy)."""
    net = denseprop.Network(MNIST["sizes"], "relu", seed=0, compute_dtype=compute_dtype)

    def epoch():
        net.fit(x, y, epochs=1, batch_size=MNIST["batch"], optimizer="adam", lr=1e-3, seed=0)

    return epoch, net.score


def _torch(x, y, autocast):
    """The loop a PyTorch user writes: a shuffled order, batches gathered by index, the
    forward and loss under autocast, Adam; and the test accuracy."""
    try:
        import torch
    except ImportError as e:
        msg = "torch is not installed"
        raise Missing(msg) from e
    torch.manual_seed(0)
    sizes = MNIST["sizes"]
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        layers.append(torch.nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def cast():
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast)

    def epoch():
        for idx in torch.randperm(len(tx)).split(MNIST["batch"]):
            opt.zero_grad(set_to_none=True)
            with cast():
                loss = torch.nn.functional.cross_entropy(model(tx[idx]), ty[idx])
            loss.backward()
            opt.step()

    def accuracy(xs, ys):
        with torch.no_grad(), cast():
            return float((model(torch.from_numpy(xs)).argmax(1).numpy() == ys).mean())

    return epoch, accuracy


def mnist_config(budget, notes, epochs_for_accuracy=3):
    """One epoch (60,000 × 784, 784-256-128-10 relu, Adam, batch 512) of each, timed; then
    each trained afresh for a few epochs and scored on the 10,000 held out."""
    x, y, x_test, y_test = mnist_like()
    makers = {
        "denseprop bf16": lambda: _denseprop(x, y, "bfloat16"),
        "torch autocast bf16": lambda: _torch(x, y, autocast=True),
        "denseprop": lambda: _denseprop(x, y, None),
        "torch": lambda: _torch(x, y, autocast=False),
    }
    epochs = {}
    for name, make in makers.items():
        try:
            epochs[name] = make()[0]
        except Missing as e:
            notes.add(f"{name} skipped in the MNIST-sized epoch: {e}")
    timed = interleaved(epochs, budget_s=budget, chunk_s=0.5, min_calls=3)
    accuracy = {}
    for name in epochs:
        epoch, score = makers[name]()
        for _ in range(epochs_for_accuracy):
            epoch()
        accuracy[name] = score(x_test, y_test)
    return {"kind": "mnist epoch", "sizes": MNIST["sizes"], "batch": MNIST["batch"],
            "dtype": "bfloat16", "epochs_before_test": epochs_for_accuracy,
            "results": {name: {"median_us": t["median_s"] * 1e6, "calls": t["calls"],
                               "test_accuracy": accuracy[name]}
                        for name, t in timed.items()}}  # fmt: skip
