"""A bar chart of each implementation's speed relative to NumPy, per configuration."""

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure

COLOURS = {"denseprop": "C0", "denseprop bf16": "C9", "numpy": "C7", "torch": "C1",
           "torch autocast bf16": "C3", "jax": "C2", "scikit-learn": "C4",
           "gemm floor": "C8"}  # fmt: skip
# The kinds of configuration whose results have a speed-up over NumPy to draw.
KINDS = {"train": "step", "inference": "infer", "digits epoch": "epoch"}


def draw(report, path):
    """One panel per dtype; one group of bars per configuration; log scale, NumPy = 1."""
    drawn = [c for c in report["configs"] if c["kind"] in KINDS]
    dtypes = sorted({c["dtype"] for c in drawn})
    fig = Figure(figsize=(13, 3.6 * len(dtypes)), layout="constrained")
    for row, dtype in enumerate(dtypes, 1):
        ax = fig.add_subplot(len(dtypes), 1, row)
        configs = [c for c in drawn if c["dtype"] == dtype]
        names = [n for n in COLOURS if any(n in c["results"] for c in configs)]
        width = 0.8 / len(names)
        for k, name in enumerate(names):
            xs, ys = [], []
            for i, c in enumerate(configs):
                if name in c["results"]:
                    xs.append(i + (k - (len(names) - 1) / 2) * width)
                    ys.append(c["results"][name]["speedup_vs_numpy"])
            ax.bar(xs, ys, width, label=name, color=COLOURS[name])
        ax.axhline(1, color="black", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_ylabel(f"speed vs NumPy ({dtype})")
        ax.set_xticks(range(len(configs)), [_label(c) for c in configs], fontsize=7)
        ax.legend(fontsize=8, ncol=len(names), loc="upper right")
        ax.grid(axis="y", alpha=0.3)
    fig.savefig(path, dpi=110)
    return path


def _label(c):
    sizes = "-".join(map(str, c["sizes"][:2])) + "\n-" + "-".join(map(str, c["sizes"][2:]))
    kind = KINDS[c["kind"]]
    return f"{kind}\n{sizes}\nbatch {c['batch']}"
