"""Whole fits of denseprop's MLPClassifier/MLPRegressor against scikit-learn's, same data, same
parameters, side by side in one run.

Every stochastic fit runs exactly ``max_iter`` epochs (``tol=0``, ``n_iter_no_change=inf``),
so both do the same work; L-BFGS fits take the same path (same start, same objective) and
their iteration counts are printed. Timings are medians of ``--repeat`` fits taken in turns.

    python bench/bench_sklearn.py             # about 2 minutes on 2 cores
    python bench/bench_sklearn.py --quick     # one repeat, fewer epochs
"""

import argparse
import statistics
import time
import warnings

import denseprop
import numpy as np
import scipy.sparse
from sklearn import neural_network
from sklearn.datasets import load_digits, make_classification


def digits():
    x, y = load_digits(return_X_y=True)
    return x / 16, y


def small():
    """300 samples, 20 features, 3 classes: a set where per-epoch overhead dominates."""
    return make_classification(300, 20, n_informative=10, n_classes=3, random_state=0)


def tfidf_like(n=5000, features=20_000, density=0.005, classes=10):
    """Rows of non-negative, L2-normalised sparse counts (CSR), labels from a linear model."""
    rng = np.random.default_rng(0)
    x = scipy.sparse.random(n, features, density=density, format="csr", random_state=0,
                            data_rvs=lambda k: rng.exponential(1.0, k))  # fmt: skip
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1))).ravel()
    x = scipy.sparse.diags(1 / np.maximum(norms, 1e-12)) @ x
    y = np.asarray(x @ rng.standard_normal((features, classes))).argmax(axis=1)
    return x.tocsr(), y


def timed(fit, repeat):
    """Median seconds of ``repeat`` calls of ``fit``, and its last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fit()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def compare(name, make, x, y, repeat, peers):
    """Fit each of ``peers`` ({label: x for it}) with ``make(module)`` in turns."""
    results = {}
    for _ in range(repeat):
        for label, (module, data) in peers.items():
            t, model = timed(lambda m=module, d=data: make(m).fit(d, y), 1)
            results.setdefault(label, ([], model))[0].append(t)
    base = statistics.median(results["scikit-learn"][0])
    cells = []
    for label, (times, model) in results.items():
        t = statistics.median(times)
        iters = f", {model.n_iter_} it" if model.solver == "lbfgs" else ""
        cells.append(f"{label} {t * 1e3:.1f} ms ({base / t:.1f}×{iters})")
    print(f"| {name} | " + " | ".join(cells) + " |")


def network_fit(data, epochs, repeat):
    """Network.fit against scikit-learn's adam fit of the same network and epochs."""
    x, y = data
    sizes = [x.shape[1], 100, len(np.unique(y))]
    times = {"Network.fit": [], "scikit-learn": []}
    for _ in range(repeat):
        net = denseprop.Network(sizes, "relu", dtype="float64", seed=0)
        start = time.perf_counter()
        net.fit(x, y, epochs=epochs, batch_size=200, optimizer="adam", lr=1e-3, seed=0)
        times["Network.fit"].append(time.perf_counter() - start)
        sk = neural_network.MLPClassifier(max_iter=epochs, tol=0.0, n_iter_no_change=np.inf,
                                          alpha=0.0, random_state=0)  # fmt: skip
        start = time.perf_counter()
        sk.fit(x, y)
        times["scikit-learn"].append(time.perf_counter() - start)
    ours, theirs = (statistics.median(times[k]) for k in times)
    print(f"| {len(x)}×{x.shape[1]}, Network.fit adam, {epochs} epochs | Network.fit "
          f"{ours * 1e3:.1f} ms ({theirs / ours:.1f}×) | scikit-learn {theirs * 1e3:.1f} ms |")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat
    scale = 0.2 if args.quick else 1.0
    warnings.simplefilter("ignore")
    print(f"denseprop {denseprop.__version__} ({denseprop.build_info()['module']}), "
          f"threads {denseprop.get_num_threads()}")  # fmt: skip
    print("| fit | denseprop (speed-up) | scikit-learn |")
    print("| --- | --- | --- |")
    stochastic = dict(tol=0.0, n_iter_no_change=np.inf, random_state=0)
    for data_name, (x, y), epochs in [("digits 1,797×64", digits(), 50),
                                      ("300×20, 3 classes", small(), 300)]:  # fmt: skip
        epochs = max(2, int(epochs * scale))
        for solver in ("sgd", "adam"):
            settings = dict(solver=solver, max_iter=epochs, **stochastic)
            compare(
                f"{data_name}, (100,), {solver}, {epochs} epochs",
                lambda m, s=settings: m.MLPClassifier(**s),
                x, y, repeat,
                {"denseprop": (denseprop, x), "scikit-learn": (neural_network, x)},
            )  # fmt: skip
        iters = max(5, int(100 * scale))
        compare(
            f"{data_name}, (100,), lbfgs, max_iter={iters}",
            lambda m, n=iters: m.MLPClassifier(solver="lbfgs", max_iter=n, random_state=0),
            x, y, repeat,
            {"denseprop": (denseprop, x), "scikit-learn": (neural_network, x)},
        )  # fmt: skip
    network_fit(small(), max(2, int(300 * scale)), repeat)
    x, y = tfidf_like()
    epochs = 2
    compare(
        f"TF-IDF-like 5,000×20,000 CSR (0.5%), 10 classes, (100,), adam, {epochs} epochs",
        lambda m: m.MLPClassifier(max_iter=epochs, **stochastic),
        x, y, repeat,
        {"denseprop": (denseprop, x), "denseprop densified": (denseprop, x.toarray()),
         "scikit-learn": (neural_network, x)},
    )  # fmt: skip


if __name__ == "__main__":
    main()
