"""Interleaved timing: implementations of one configuration take turns in short chunks, so
they all see the same machine noise; medians of single calls are what is reported.

Between chunks the process sleeps for ``settle_s``: OpenBLAS's worker threads keep spinning
for about 0.1 s after NumPy's last matrix product (measured here: one core stays busy), and
on 2 cores they would steal a core from whichever implementation runs next. The pause lets
every library's threads go idle, so each chunk measures its implementation alone.
"""

import time

import numpy as np


def _chunk_size(fn, target_s):
    """How many calls of ``fn`` fill about ``target_s`` seconds (at least 1), after a warm-up."""
    fn()
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    return max(1, int(target_s / once))


def interleaved(fns, budget_s=1.0, chunk_s=0.1, min_calls=5, settle_s=0.15):
    """Median seconds per call of each function in ``fns`` ({name: callable}).

    The functions run in rounds; in each round every one runs a chunk of about ``chunk_s``
    seconds, in an order that rotates between rounds, with a pause of ``settle_s`` before
    each chunk (its first call is a warm-up and is not counted). Rounds continue until ``budget_s``
    has passed and every function has at least ``min_calls`` timed calls.
    Returns {name: {"median_s", "calls"}}.
    """
    names = list(fns)
    chunks = {n: _chunk_size(fns[n], chunk_s) for n in names}
    samples = {n: [] for n in names}
    start = time.perf_counter()
    round_ = 0
    while True:
        order = names[round_ % len(names):] + names[: round_ % len(names)]
        for n in order:
            fn, out = fns[n], samples[n]
            time.sleep(settle_s)
            fn()
            for _ in range(chunks[n]):
                t = time.perf_counter()
                fn()
                out.append(time.perf_counter() - t)
        round_ += 1
        enough = all(len(s) >= min_calls for s in samples.values())
        if enough and round_ >= 2 and time.perf_counter() - start >= budget_s:
            break
    return {n: {"median_s": float(np.median(s)), "calls": len(s)} for n, s in samples.items()}
