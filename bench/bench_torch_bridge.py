"""The PyTorch bridge against PyTorch eager: one full training step of the same model, with
the same loss and optimizer, its layers run by PyTorch (nn.Sequential) or by denseprop
(denseprop.torch.Sequential, the same modules and Parameters), interleaved (see timing.py).
Beside them, the same step as one call into C++: `Network.train_step` on the same tensors
(read in place), with denseprop's own loss and optimizer instead of PyTorch's.

    python bench/bench_torch_bridge.py [--dtype float32 float64] [--budget 2] [--threads N]

A step is ``zero_grad``, forward, ``F.cross_entropy``, backward and ``optimizer.step()``
(SGD, or Adam with --optimizer adam). Prints the median per step of each and PyTorch's time
over each of denseprop's (above 1: denseprop is faster).
"""

import argparse
import copy

import denseprop
import denseprop.torch as dpt
import numpy as np
import torch
from timing import interleaved
from torch import nn

CONFIGS = [([64, 32, 10], 1), ([64, 32, 10], 32), ([64, 32, 10], 64), ([784, 256, 128, 10], 64)]


def models(sizes, dtype):
    """PyTorch's model and the bridge's over copies of the same modules (ReLU hidden layers)."""
    torch.manual_seed(0)
    modules = []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        modules.append(nn.Linear(n_in, n_out, dtype=dtype))
        if i < len(sizes) - 2:
            modules.append(nn.ReLU())
    theirs = nn.Sequential(*modules)
    ours = dpt.Sequential(*copy.deepcopy(modules))
    return theirs, ours


def network_of(model, sizes, dtype, optimizer):
    """A denseprop Network with the model's weights and the same optimizer."""
    net = denseprop.Network(sizes, "relu", dtype=dtype)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    for w, b, linear in zip(net.weights, net.biases, linears):
        w[...], b[...] = linear.weight.detach().numpy(), linear.bias.detach().numpy()
    return net.set_optimizer(optimizer, 0.01 if optimizer == "sgd" else 1e-3)


def step_of(model, x, y, optimizer):
    make = {"sgd": lambda p: torch.optim.SGD(p, lr=0.01),
            "adam": lambda p: torch.optim.Adam(p, lr=1e-3)}[optimizer]  # fmt: skip
    opt = make(model.parameters())

    def step():
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    return step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dtype", nargs="+", default=["float32", "float64"])
    parser.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"])
    parser.add_argument("--budget", type=float, default=2.0, help="seconds per comparison")
    parser.add_argument("--threads", type=int, help="threads of denseprop and of PyTorch")
    args = parser.parse_args(argv)
    if args.threads:
        denseprop.set_num_threads(args.threads)
        torch.set_num_threads(args.threads)
    print(f"{denseprop.build_info()['module']} module, denseprop {denseprop.get_num_threads()} "
          f"threads, torch {torch.__version__} {torch.get_num_threads()} threads, "
          f"{args.optimizer}")  # fmt: skip
    print(f"| step, {args.optimizer} | dtype | batch | PyTorch eager | bridge | speed-up | "
          "Network.train_step | speed-up |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    rng = np.random.default_rng(0)
    for dtype in args.dtype:
        torch_dtype = getattr(torch, dtype)
        for sizes, batch in CONFIGS:
            theirs, ours = models(sizes, torch_dtype)
            x = torch.from_numpy(rng.standard_normal((batch, sizes[0])).astype(dtype))
            y = torch.from_numpy(rng.integers(0, sizes[-1], batch))
            net = network_of(theirs, sizes, dtype, args.optimizer)
            t = interleaved({"torch": step_of(theirs, x, y, args.optimizer),
                             "bridge": step_of(ours, x, y, args.optimizer),
                             "network": lambda net=net, x=x, y=y: net.train_step(x, y)},
                            budget_s=args.budget)  # fmt: skip
            eager, bridge, fused = (t[k]["median_s"] * 1e6 for k in ("torch", "bridge", "network"))
            print(f"| {'-'.join(map(str, sizes))} | {dtype} | {batch} | {eager:.1f} µs | "
                  f"{bridge:.1f} µs | {eager / bridge:.2f}× | {fused:.1f} µs | "
                  f"{eager / fused:.2f}× |")  # fmt: skip


if __name__ == "__main__":
    main()
