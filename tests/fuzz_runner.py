"""What the fuzz harnesses (fuzz.py, fuzz_model_file.py) share: their cases run in a child
process that logs each case before running it, so a crash names the case that caused it."""

from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
from typing import Callable


def run(script: str, cases: int, seed: int, timeout: float | None = None) -> tuple[int, str]:
    """``script --child`` over ``cases`` cases from ``seed``: its exit status and its output,
    with the case it was running if a signal killed it."""
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "case")
        result = subprocess.run(
            [sys.executable, script, "--child", "--cases", str(cases), "--seed", str(seed),
             "--log", log],
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        report = result.stdout + result.stderr
        if result.returncode < 0:
            last = pathlib.Path(log).read_text().strip() if os.path.exists(log) else "?"
            report += f"\nfuzz: the child died of signal {-result.returncode} running:\n{last}\n"
        return result.returncode, report


def main(
    doc: str,
    default_cases: int,
    child: Callable[[int, int, str], None],
    run: Callable[[int, int], tuple[int, str]],
) -> None:
    """The harness's command line: ``--cases N --seed S``, or a child's ``--child --log F``."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--cases", type=int, default=default_cases)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--log", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child(options.cases, options.seed, options.log)
        return
    status, report = run(options.cases, options.seed)
    print(report)
    sys.exit(status and 1)
