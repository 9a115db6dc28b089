"""The CLI's progress display: library progress (lerobot_edge.progress.Progress) drawn with rich on stderr, and
log records routed above it. Nothing in the library imports this.

On a terminal: the running phases live at the bottom (spinner, seconds, description; counted work with a bar
and n/total), and each one that ends is printed above them as a fixed row with its time, ✓ or ✗. Elsewhere (CI
logs, pipes, the CLI's subprocess tests) the same fixed rows only, one line each, without colour or animation.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Iterator

import rich
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TaskID, TextColumn
from rich.progress import Progress as Display
from rich.table import Column
from rich.text import Text

from ..progress import Advance, Progress


class _Bar(BarColumn):
    def render(self, task):
        return super().render(task) if task.total is not None else Text()


class _Count(MofNCompleteColumn):
    def render(self, task):
        return super().render(task) if task.total is not None else Text()


class RichProgress(Progress):
    """Steps and counted tasks as rich.progress rows; `close()` ends what is still running (✗ when failed)."""

    def __init__(self, console: Console):
        self.console = console
        description = Column(no_wrap=True, overflow="ellipsis", ratio=1)  # the one that gives way
        self.display = Display(SpinnerColumn(), TextColumn("{task.elapsed:5.1f}s"),
                               TextColumn("{task.description}", table_column=description), _Bar(bar_width=20),
                               _Count(), console=console, transient=True, expand=True, disable=not console.is_terminal)
        self._lock = threading.Lock()
        self._step: TaskID | None = None

    def step(self, message: str) -> None:
        with self._lock:
            self._end_step()
            self._step = self._add(message, None)

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Advance]:
        with self._lock:
            self._end_step()
            tid = self._add(description, total)
        ok = False
        try:
            yield lambda n=1: self.display.advance(tid, n)
            ok = True
        except GeneratorExit:  # a track() its caller left early
            ok = True
            raise
        finally:
            with self._lock:
                self._end_step()
                self._end(tid, ok)

    def close(self, failed: bool = False) -> None:
        with self._lock:
            self._end_step(ok=not failed)
            for t in list(self.display.tasks):
                self._end(t.id, ok=not failed)
            if self.display.live.is_started:
                self.display.stop()

    def _add(self, description: str, total: int | None) -> TaskID:
        self.display.start()
        return self.display.add_task(description, total=total)

    def _end_step(self, ok: bool = True) -> None:
        if self._step is not None:
            self._end(self._step, ok)
            self._step = None

    def _end(self, tid: TaskID, ok: bool) -> None:
        """Drop the row from the live ones and print it above them (or as a log line): ✓/✗, time, description,
        count (no bar: the count says it)."""
        task = next((t for t in self.display.tasks if t.id == tid), None)
        if task is None:
            return
        self.display.stop_task(tid)
        self.display.remove_task(tid)
        self.display.refresh()  # shrink the live rows before printing above them
        count = f" {task.completed:.0f}/{task.total:.0f}" if task.total is not None else ""
        self.console.print(Text.assemble(("✓", "green") if ok else ("✗", "red"), f" {task.elapsed:5.1f}s ",
                                         task.description, count), soft_wrap=True)


class ConsoleLog(logging.Handler):
    """Log records printed through the progress console, so that they appear above the live rows, not through
    them; with -q (a quiet console) through a plain one: -q silences progress, never warnings."""

    def __init__(self, console: Console):
        super().__init__()
        self.console = Console(stderr=True) if console.quiet else console
        self.setFormatter(logging.Formatter("%(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.console.print(self.format(record), markup=False, highlight=False, emoji=False, soft_wrap=True)
        except Exception:
            self.handleError(record)


def make_progress(quiet: bool = False) -> RichProgress:
    """Progress on rich's global console, set to stderr: libraries that draw their own rich bars (NNCF's
    calibration) then draw them on stderr among ours, and -q silences them too."""
    rich.reconfigure(stderr=True, quiet=quiet)
    return RichProgress(rich.get_console())
