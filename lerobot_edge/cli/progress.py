"""A plain progress display on stderr: one line per step with the time the previous step took."""

from __future__ import annotations

import sys
import time


class Steps:
    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self._t = time.perf_counter()
        self._open = False

    def __call__(self, message: str) -> None:
        if self.quiet:
            return
        now = time.perf_counter()
        if self._open:
            sys.stderr.write(f" ({now - self._t:.1f}s)\n")
        sys.stderr.write(f"• {message}…")
        sys.stderr.flush()
        self._t, self._open = now, True

    def done(self) -> None:
        if self._open and not self.quiet:
            sys.stderr.write(f" ({time.perf_counter() - self._t:.1f}s)\n")
            sys.stderr.flush()
        self._open = False
