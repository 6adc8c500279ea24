"""denseprop against NumPy, PyTorch, JAX and scikit-learn, side by side in one run.

    python bench/run.py                 # everything, about 8 minutes on 2 cores
    python bench/run.py --quick         # shorter budgets, same configurations
    python bench/run.py --dtype bfloat16   # the bf16 rows alone

Writes bench/results/<name>.json and a chart of each implementation's speed relative to
NumPy; prints a Markdown table. Peers that are not installed are skipped with a note.
"""

import argparse
import json
import pathlib
import platform
import resource
import sys
import time

import bf16_rows
import denseprop
import epochs
import numpy as np
import recipe_rows
from peers import BF16_PEERS, PEERS, Missing, gemm_floor, initial
from timing import interleaved

HERE = pathlib.Path(__file__).parent
TRAIN = [
    ([64, 32, 10], [1, 32, 256]),
    ([784, 256, 128, 10], [1, 16, 64, 256, 1024, 4096]),
    ([1024, 1024, 1024, 10], [256]),
]
INFER = [([784, 256, 128, 10], [1, 256, 4096])]
EPOCH_BATCHES = [32, 200]
# bfloat16 products (relu, beside PyTorch's autocast): the shapes, batch >= 256.
BF16_TRAIN = [
    ([784, 256, 128, 10], [256, 1024, 4096]),
    ([1024, 1024, 1024, 10], [256, 1024]),
    ([4096, 4096, 10], [512]),
]
BF16_INFER = [([784, 256, 128, 10], [256, 4096]), ([1024, 1024, 1024, 10], [256]),
              ([4096, 4096, 10], [512])]  # fmt: skip


def flops(sizes, batch, train):
    """Multiply-adds ×2 of the matrix products: forward, and for training dW and dA (l > 0)."""
    products = [i * o for i, o in zip(sizes, sizes[1:])]
    total = sum(products) if not train else 2 * sum(products) + sum(products[1:])
    return 2.0 * batch * total


def data(sizes, batch, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, sizes[0])).astype(dtype), rng.integers(0, sizes[-1], batch)


def step_config(sizes, batch, dtype, train, budget, notes):
    """One step (or inference) of each peer; "bfloat16" runs BF16_PEERS on float32 data."""
    bf16 = dtype == "bfloat16"
    x, y = data(sizes, batch, np.float32 if bf16 else dtype)
    params = initial(sizes, x.dtype)
    fns = {}
    for name, make in (BF16_PEERS if bf16 else PEERS).items():
        try:
            fns[name] = make(sizes, x, y, params, train=train)
        except Missing as e:
            notes.add(f"{name} skipped: {e}")
    if train and not bf16:
        fns["gemm floor"] = gemm_floor(sizes, x, params)
    timed = interleaved(fns, budget_s=budget)
    base = timed["numpy"]["median_s"]
    work = flops(sizes, batch, train)
    results = {}
    for name, t in timed.items():
        s = t["median_s"]
        results[name] = {
            "median_us": s * 1e6, "calls": t["calls"], "samples_per_s": batch / s,
            "gflops": work / s / 1e9, "speedup_vs_numpy": base / s,
        }  # fmt: skip
    config = {"kind": "train" if train else "inference", "sizes": sizes, "batch": batch,
              "dtype": "bfloat16" if bf16 else np.dtype(dtype).name,
              "results": results}  # fmt: skip
    if bf16:
        config["bf16_kernel"] = denseprop.build_info()["bf16_kernel"]
    elif train:
        config["efficiency_vs_gemm_floor"] = (
            timed["gemm floor"]["median_s"] / timed["denseprop"]["median_s"]
        )
    return config


def epoch_config(dtype, batch_size, budget, notes):
    try:
        fns = epochs.runners(dtype, batch_size)
    except ImportError:
        notes.add("digits epochs skipped: scikit-learn is not installed")
        return None
    if "torch" not in fns:
        notes.add("torch skipped in the digits epochs: torch is not installed")
    timed = interleaved(fns, budget_s=budget, chunk_s=0.2, min_calls=3)
    base = timed["numpy"]["median_s"]
    return {"kind": "digits epoch", "sizes": [64, 32, 10], "batch": batch_size,
            "dtype": np.dtype(dtype).name,
            "results": {n: {"median_us": t["median_s"] * 1e6, "calls": t["calls"],
                            "speedup_vs_numpy": base / t["median_s"]}
                        for n, t in timed.items()}}  # fmt: skip


def memory(dtype, steps=100):
    """RSS growth and minor page faults per step over ``steps`` steps of 784-256-128-10 at
    batch 256, after 5 warm-up steps, for each implementation in turn."""
    sizes, batch = [784, 256, 128, 10], 256
    x, y = data(sizes, batch, dtype)
    params = initial(sizes, dtype)
    out = {}
    for name, make in PEERS.items():
        try:
            step = make(sizes, x, y, params)
        except Missing:
            continue
        for _ in range(5):
            step()
        rss0, faults0 = _rss(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(steps):
            step()
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0
        out[name] = {
            "rss_growth_kib": (_rss() - rss0) / 1024,
            "minor_faults_per_step": faults / steps,
        }
    return out


def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def machine():
    info = {"python": platform.python_version(), "numpy": np.__version__,
            "denseprop": denseprop.__version__, "build": denseprop.build_info(),
            "cpu": _cpu_name(), "date": time.strftime("%Y-%m-%d %H:%M")}  # fmt: skip
    for lib in ("torch", "jax", "sklearn"):
        try:
            info[lib] = __import__(lib).__version__
        except ImportError:
            pass
    try:  # which kernels NumPy's BLAS runs (OPENBLAS_CORETYPE can hold it to an older one)
        from threadpoolctl import threadpool_info

        keys = ("internal_api", "version", "architecture", "num_threads")
        info["blas"] = [{k: lib.get(k) for k in keys} for lib in threadpool_info()]
    except ImportError:
        pass
    return info


def _cpu_name():
    """The model name, with family and model numbers (a virtual machine's name can be bare)."""
    fields = {}
    try:
        for line in open("/proc/cpuinfo"):
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.processor()
    name = fields.get("model name", platform.processor())
    if "cpu family" in fields:
        name += f" (family {fields['cpu family']}, model {fields.get('model', '?')})"
    return name


def markdown(report):
    """A table per kind: median per call and the speed-up over NumPy of each implementation."""
    lines = []
    for kind in ("train", "inference", "digits epoch", "bf16 gemm", "mnist epoch", "recipe step"):
        for bf16 in (False, True):
            configs = [c for c in report["configs"]
                       if c["kind"] == kind and (c["dtype"] == "bfloat16") == bf16]  # fmt: skip
            if configs:
                lines += ["", *_table(kind, configs)]
    return "\n".join(lines)


def _table(kind, configs):
    """Each configuration's median per call and, beside it, the speed-up over NumPy, the
    GFLOP/s (a GEMM) or the test accuracy (the MNIST-sized epoch)."""
    names = list(dict.fromkeys(n for c in configs for n in c["results"]))
    floor = "efficiency_vs_gemm_floor" in configs[0]
    head = f"| {kind} | dtype | batch | " + " | ".join(names)
    lines = [head + (" | vs GEMM floor |" if floor else " |"),
             "|" + " --- |" * (len(names) + 3 + floor)]  # fmt: skip
    for c in configs:
        cells = []
        for n in names:
            r = c["results"].get(n)
            if r is None:
                cells.append("–")
            elif "gflops" in r and kind == "bf16 gemm":
                cells.append(f"{_time(r['median_us'])} ({r['gflops']:.0f} GFLOP/s)")
            elif "vs_plain" in r:
                cells.append(f"{_time(r['median_us'])} ({r['vs_plain']:.2f}× plain)")
            elif "test_accuracy" in r:
                cells.append(f"{_time(r['median_us'])} ({r['test_accuracy']:.1%})")
            else:
                cells.append(f"{_time(r['median_us'])} ({r['speedup_vs_numpy']:.2f}×)")
        row = f"| {'-'.join(map(str, c['sizes']))} | {c['dtype']} | {c['batch']} | "
        row += " | ".join(cells)
        if floor:
            row += f" | {c['efficiency_vs_gemm_floor']:.0%}"
        lines.append(row + " |")
    return lines


def _time(us):
    return f"{us:.1f} µs" if us < 1000 else f"{us / 1000:.2f} ms"


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a quarter of the time budget")
    parser.add_argument("--dtype", nargs="+", default=["float32", "float64", "bfloat16"],
                        choices=["float32", "float64", "bfloat16"])  # fmt: skip
    parser.add_argument("--name", default="latest", help="results file: bench/results/NAME.json")
    parts = ["train", "inference", "epochs", "memory", "gemm", "recipe"]
    parser.add_argument("--only", nargs="+", choices=parts)
    args = parser.parse_args(argv)
    budget = 0.3 if args.quick else 1.2
    only = set(args.only or parts)
    notes = set()
    report = {"machine": machine(), "configs": [], "notes": []}
    plan = []
    for dtype in args.dtype:
        bf16 = dtype == "bfloat16"
        if "train" in only:
            plan += [(step_config, (s, b, dtype, True))
                     for s, bs in (BF16_TRAIN if bf16 else TRAIN) for b in bs]  # fmt: skip
        if "inference" in only:
            plan += [(step_config, (s, b, dtype, False))
                     for s, bs in (BF16_INFER if bf16 else INFER) for b in bs]  # fmt: skip
        if "gemm" in only and bf16:
            plan += [(bf16_rows.gemm_config, shape) for shape in bf16_rows.GEMMS]
        if "epochs" in only and bf16:
            plan.append((bf16_rows.mnist_config, ()))
        elif "epochs" in only:
            plan += [(epoch_config, (dtype, b)) for b in EPOCH_BATCHES]
        if "recipe" in only and not bf16:
            plan.append((recipe_rows.recipe_config, (dtype,)))
    for i, (fn, fn_args) in enumerate(plan, 1):
        print(f"[{i}/{len(plan)}] {fn.__name__}{fn_args}", file=sys.stderr, flush=True)
        longer = fn in (epoch_config, bf16_rows.mnist_config)
        config = fn(*fn_args, budget=budget * (3 if longer else 1), notes=notes)
        if config is not None:
            report["configs"].append(config)
    if "memory" in only:
        report["memory"] = {d: memory(d) for d in args.dtype if d != "bfloat16"}
    if "epochs" in only and "float32" in args.dtype:
        try:
            report["digits_accuracy_200_epochs"] = epochs.accuracies("float32", 200)
        except ImportError:
            pass
    report["notes"] = sorted(notes)
    path = HERE / "results" / f"{args.name}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(report, indent=1))
    print(markdown(report))
    for note in report["notes"]:
        print(f"note: {note}")
    print(f"\nresults: {path}")
    try:
        import chart
    except ImportError:
        print("no chart: matplotlib is not installed")
    else:
        print(f"chart: {chart.draw(report, path.with_suffix('.png'))}")


if __name__ == "__main__":
    main()
