"""Progress: the library reports through a small UI-free interface (a plain callable still works); the CLI draws
it with rich — live rows on a terminal, one plain line per finished phase elsewhere."""

from __future__ import annotations

import io
import subprocess
import sys
import types
from contextlib import contextmanager

import pytest
from rich.console import Console

from lerobot_edge.progress import Progress, as_progress


class Recorder(Progress):
    """Every call, in order: ("step", msg), ("task", description, total), ("advance", description, n), ("end", …)."""

    def __init__(self):
        self.events = []

    def step(self, message):
        self.events.append(("step", message))

    @contextmanager
    def task(self, description, total=None):
        self.events.append(("task", description, total))
        yield lambda n=1: self.events.append(("advance", description, n))
        self.events.append(("end", description))


def test_a_callable_gets_every_phase_and_task_message_and_none_is_silent():
    got = []
    p = as_progress(got.append)
    p.step("reading")
    assert list(p.track(range(3), "counting")) == [0, 1, 2]
    with p.task("building", 5) as advance:
        advance(2)
    assert got == ["reading", "counting", "building"]
    assert list(as_progress(None).track([1, 2], "x")) == [1, 2] and as_progress(None).step("x") is None
    rec = Recorder()
    assert as_progress(rec) is rec


def test_track_counts_items_and_takes_the_total_from_len():
    rec = Recorder()
    assert list(rec.track(["a", "b"], "graphs")) == ["a", "b"]
    assert list(rec.track(iter("xyz"), "frames", total=3)) == ["x", "y", "z"]
    assert rec.events == [("task", "graphs", 2), ("advance", "graphs", 1), ("advance", "graphs", 1), ("end", "graphs"),
                          ("task", "frames", 3), *[("advance", "frames", 1)] * 3, ("end", "frames")]


def _plain_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=False, width=80), out


def test_cli_rows_are_plain_lines_when_not_a_terminal():
    from lerobot_edge.cli.progress import RichProgress

    console, out = _plain_console()
    p = RichProgress(console)
    p.step("reading checkpoint")
    for _ in p.track(range(4), "exporting graphs"):
        p.step("tracing graph")
    for i in p.track(range(10), "replaying episode 0", total=10):
        if i == 9:
            break  # a caller that leaves early still ends its row
    with pytest.raises(RuntimeError):
        with p.task("validating", 3) as advance:
            advance()
            raise RuntimeError("boom")
    p.step("writing")
    p.close(failed=True)
    lines = [line.split(maxsplit=2) for line in out.getvalue().splitlines()]
    assert [(mark, text) for mark, _, text in lines] == [
        ("✓", "reading checkpoint"), *[("✓", "tracing graph")] * 4, ("✓", "exporting graphs 4/4"),
        ("✓", "replaying episode 0 9/10"), ("✗", "validating 1/3"), ("✗", "writing")]
    assert all(t.endswith("s") and float(t[:-1]) >= 0 for _, t, _ in lines)
    assert "\x1b" not in out.getvalue()


def test_cli_rows_on_a_terminal_end_as_fixed_rows():
    from lerobot_edge.cli.progress import RichProgress

    out = io.StringIO()
    p = RichProgress(Console(file=out, force_terminal=True, width=60))
    with p.task("validating 1 graph(s) with onnxruntime against PyTorch (3 seeded trials)", 3) as advance:
        for _ in range(3):
            advance()
    p.close()
    assert "validating 1 graph(s)" in out.getvalue() and "3/3" in out.getvalue() and "✓" in out.getvalue()
    assert not p.display.tasks and not p.display.live.is_started


def test_tensorrt_builder_phases_become_nested_tasks_and_never_raise():
    from lerobot_edge.backends.tensorrt import progress_monitor

    assert progress_monitor(types.SimpleNamespace(), Recorder()) is None  # TensorRT < 10: no monitor
    rec = Recorder()
    monitor = progress_monitor(types.SimpleNamespace(IProgressMonitor=object), rec)
    monitor.phase_start("Building engine", None, 2)
    monitor.phase_start("Tactic selection", "Building engine", 3)
    assert monitor.step_complete("Tactic selection", 0) is True
    monitor.phase_finish("Tactic selection")
    assert monitor.step_complete("Building engine", 0) is True
    monitor.phase_finish("Building engine")
    assert rec.events == [("task", "Building engine", 2), ("task", "  Tactic selection", 3),
                          ("advance", "  Tactic selection", 1), ("end", "  Tactic selection"),
                          ("advance", "Building engine", 1), ("end", "Building engine")]

    class Broken(Progress):
        def task(self, description, total=None):
            raise RuntimeError("a renderer bug")
    monitor = progress_monitor(types.SimpleNamespace(IProgressMonitor=object), Broken())
    monitor.phase_start("Building engine", None, 2)  # logged, not raised into TensorRT's C++
    assert monitor.step_complete("Building engine", 0) is True
    monitor.phase_finish("Building engine")


def test_selftest_reports_its_graphs_to_a_progress(act_tiny_bundle):
    from lerobot_edge.selftest import selftest

    rec = Recorder()
    selftest(str(act_tiny_bundle), "onnxruntime", iterations=5, progress=rec)
    assert rec.events[0] == ("step", "loading graph 'act' with onnxruntime")
    assert rec.events[1] == ("task", "timing graph 'act' (5 runs)", 5)
    assert sum(e[0] == "advance" for e in rec.events) == 5


def test_cli_progress_on_stderr_is_plain_when_piped_and_silent_with_q(act_tiny_bundle):
    cmd = [sys.executable, "-m", "lerobot_edge", "selftest", str(act_tiny_bundle), "--backend", "onnxruntime",
           "--iterations", "3"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "✓" in r.stderr and "timing graph 'act' (3 runs) 3/3" in r.stderr and "\x1b" not in r.stderr
    assert r.stdout.startswith("ok   act.action")
    r = subprocess.run([*cmd, "-q"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stderr == "" and r.stdout.startswith("ok   act.action")
