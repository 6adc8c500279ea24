"""A one-line progress bar for long fits, drawn on stderr only when it is a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """``update(text)`` after each of ``total`` steps; ``write(line)`` prints above the bar.

    ``enabled=None`` draws only when stderr is a terminal, so logs and pipes stay clean.
    """

    width = 30
    interval = 0.1  # seconds between redraws, so fast epochs do not wait on the terminal

    def __init__(self, total: int, enabled: bool | None = None, stream: TextIO | None = None):
        self.total = total
        self.stream = sys.stderr if stream is None else stream
        self.enabled = self.stream.isatty() if enabled is None else bool(enabled)
        self.done = 0
        self.start = self._last = time.perf_counter()
        self._drawn = False

    def update(self, text: str = "") -> None:
        """Count one step done and redraw the bar with ``text``, at most every `interval`."""
        self.done += 1
        now = time.perf_counter()
        if not self.enabled or (now - self._last < self.interval and self.done < self.total):
            return
        self._last = now
        filled = self.width * self.done // self.total
        bar = "#" * filled + "." * (self.width - filled)
        elapsed = now - self.start
        eta = elapsed / self.done * (self.total - self.done)
        self.stream.write(f"\r[{bar}] {self.done}/{self.total} {text}  eta {eta:.0f}s\x1b[K")
        self.stream.flush()
        self._drawn = True

    def write(self, line: str) -> None:
        """Print ``line`` to stdout, clearing the bar first; it is redrawn on the next update."""
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self._drawn = False
        print(line, flush=True)

    def close(self) -> None:
        """End the bar's line, if one was drawn."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
