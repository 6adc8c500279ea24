"""The fuzz harness (tests/fuzz.py) in a child process: every kernel and Network method with
generated arguments returns a correct result or a clear error, and never crashes.

DENSEPROP_FUZZ_CASES sets the number of cases (default 10,000)."""

import os
import re

import fuzz

# The other variants' reruns (test_variants.py) take a slice, for CI time.
CASES = int(os.environ.get("DENSEPROP_FUZZ_CASES", "10000"))


def test_generated_arguments_give_correct_results_or_clear_errors():
    status, report = fuzz.run(CASES, seed=0)
    assert status == 0, report[-6000:]
    ran = re.search(r"^fuzz: (\d+) cases", report, re.MULTILINE)
    assert ran and int(ran[1]) >= CASES, report[-6000:]
