"""What long library calls report while they work, free of any UI (the CLI draws it with rich: cli/progress.py).

    progress.step("reading checkpoint …")                  # a phase begins (the previous one ends)
    for g in progress.track(graphs, "exporting graphs"):   # counted work: a bar from 0 to len(graphs)
        ...
    with progress.task("building engine", total=n) as advance:   # counted work driven by callbacks
        advance(1)

Library functions take `progress: Progress | Callable[[str], None] | None` and call `as_progress(progress)`: a
plain callable (what callers passed before) receives each phase's and each counted task's message; None is silent.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
Advance = Callable[..., None]  # advance(n=1): n more units of a task's total done


class Progress:
    """The reporter interface, and its no-op default. Renderers override `step` and `task`; `track` is `task`
    around an iterable. Calls may come from several threads (TensorRT reports from its builder threads)."""

    def step(self, message: str) -> None:
        """A phase of unknown length begins; it ends when the next step or task begins, when the task around it
        ends, or when the call returns."""

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Advance]:
        """Counted work of `total` units (None: unknown); the body calls the yielded advance(n=1)."""
        yield lambda n=1: None

    def track(self, iterable: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
        """Yield the items of `iterable`, advancing a task of `total` (default: len(iterable)) per item."""
        if total is None and hasattr(iterable, "__len__"):
            total = len(iterable)
        with self.task(description, total) as advance:
            for item in iterable:
                yield item
                advance()


class _Callback(Progress):
    """A plain `Callable[[str], None]`: one call per phase and one per counted task (its description)."""

    def __init__(self, fn: Callable[[str], None]):
        self.fn = fn

    def step(self, message: str) -> None:
        self.fn(message)

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Advance]:
        self.fn(description)
        yield lambda n=1: None


ProgressLike = Progress | Callable[[str], None] | None


def as_progress(progress: ProgressLike) -> Progress:
    """A Progress for what the caller passed: itself, a callable wrapped, None -> silent."""
    if isinstance(progress, Progress):
        return progress
    return Progress() if progress is None else _Callback(progress)
