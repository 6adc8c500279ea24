"""What an epoch costs beyond its steps: Network.fit and MLPClassifier.fit on 8 samples of the
300×20 set, batch 8, a 20-2-3 network (one adam step of a few hundred flops an epoch), so that
an epoch's time is its loop's own cost plus one tiny step. Prints the median µs per epoch of
``--repeat`` fits of ``--epochs`` epochs each, as JSON, so that two builds can be run
alternately and compared:

    python bench/epoch_cost.py --repeat 5
"""

import argparse
import json
import statistics
import time
import warnings

import denseprop
import numpy as np
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning


def network_epoch(x, y, epochs):
    net = denseprop.Network([20, 2, 3], "relu", dtype="float64", seed=0)
    start = time.perf_counter()
    net.fit(x, y, epochs=epochs, batch_size=8, optimizer="adam", lr=1e-3, seed=0)
    return (time.perf_counter() - start) / epochs * 1e6


def estimator_epoch(x, y, epochs):
    clf = denseprop.MLPClassifier((2,), max_iter=epochs, tol=0, n_iter_no_change=np.inf,
                                  batch_size=8, random_state=0)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        clf.fit(x, y)
    return (time.perf_counter() - start) / epochs * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=4000)
    args = parser.parse_args()
    x, y = make_classification(300, 20, n_informative=10, n_classes=3, random_state=0)
    x, y = x[:8], y[:8]
    medians = {}
    for name, epoch in (("Network.fit", network_epoch), ("MLPClassifier", estimator_epoch)):
        epoch(x, y, args.epochs)  # warm-up
        medians[name] = statistics.median(epoch(x, y, args.epochs) for _ in range(args.repeat))
    print(json.dumps(medians))


if __name__ == "__main__":
    main()
