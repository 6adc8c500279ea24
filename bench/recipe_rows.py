"""The training recipe's rows of run.py: what a step pays for dropout, label smoothing and
(with ``max_grad_norm``) gradient clipping, at 784-256-128-10 (relu), batch 256, plain SGD,
each beside the plain step, and PyTorch's step with the same recipe beside its own plain one.
Each result's ``vs_plain`` is its time over its own library's plain step."""

import denseprop
import numpy as np
from peers import LR, Missing, initial, torch_mlp
from timing import interleaved

SIZES, BATCH = [784, 256, 128, 10], 256
# (name, Network keywords, set_optimizer keywords): each one ingredient of the recipe
RECIPES = [
    ("plain", {}, {}),
    ("dropout 0.1", {"dropout": 0.1}, {}),
    ("label smoothing 0.1", {"label_smoothing": 0.1}, {}),
    ("max_grad_norm 1.0", {}, {"max_grad_norm": 1.0}),
]


def _denseprop(x, y, params, network, optimizer):
    net = denseprop.Network(SIZES, "relu", dtype=x.dtype, seed=0, **network)
    net.params[...] = np.concatenate([a.ravel() for w, b in params for a in (w, b)])
    net.set_optimizer("sgd", LR, **optimizer)
    return lambda: net.train_step(x, y)


def _torch(x, y, params, network, optimizer):
    import torch

    model, opt = torch_mlp(params, LR, activation="relu")
    p = network.get("dropout", 0.0)
    if p:  # nn.Dropout after each hidden ReLU, as the tabular MLPs put it
        layers = []
        for m in model:
            layers.append(m)
            if isinstance(m, torch.nn.ReLU):
                layers.append(torch.nn.Dropout(p))
        model = torch.nn.Sequential(*layers)
    model.train()
    smoothing = network.get("label_smoothing", 0.0)
    clip = optimizer.get("max_grad_norm")
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(tx), ty, label_smoothing=smoothing)
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()

    return step


def recipe_config(dtype, budget, notes):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, SIZES[0])).astype(dtype)
    y = rng.integers(0, SIZES[-1], BATCH)
    params = initial(SIZES, x.dtype)
    fns = {}
    for name, network, optimizer in RECIPES:
        fns[f"denseprop {name}"] = _denseprop(x, y, params, network, optimizer)
        try:
            fns[f"torch {name}"] = _torch(x, y, params, network, optimizer)
        except (ImportError, Missing):
            notes.add("torch skipped in the recipe rows: torch is not installed")
    timed = interleaved(fns, budget_s=budget)
    results = {}
    for name, t in timed.items():
        library = name.split(" ")[0]
        plain = timed[f"{library} plain"]["median_s"]
        results[name] = {"median_us": t["median_s"] * 1e6, "calls": t["calls"],
                         "vs_plain": t["median_s"] / plain}  # fmt: skip
    return {"kind": "recipe step", "sizes": SIZES, "batch": BATCH,
            "dtype": np.dtype(dtype).name, "results": results}  # fmt: skip
