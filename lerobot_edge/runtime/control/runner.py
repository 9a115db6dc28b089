"""run_policy: bundle + robot spec -> a timed control run -> report dict (what `lerobot-edge run` calls)."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from pathlib import Path
from typing import Any, Callable, Mapping

from ..loader import load_policy
from .adapters import make_robot
from .chunks import Merge
from .clock import ControlLoop
from .robots import Robot
from .safety import ActionLimits


@contextlib.contextmanager
def _graceful_sigint(loop: ControlLoop, enabled: bool):
    """First Ctrl-C: stop the loop cleanly after the current tick; a second one: KeyboardInterrupt."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        signal.signal(signal.SIGINT, signal.default_int_handler)
        loop.stopped_by = "interrupt"
        loop.request_stop()

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_policy(bundle: str | Path, robot: str | Robot = "sim", fps: float = 30, duration: float | None = 10,
               mode: str = "async", backend: str | None = None, report: str | Path | None = None, *,
               env: str | None = None, robot_options: Mapping[str, Any] | None = None,
               backend_options: Mapping[str, Any] | None = None, rtc: str | None = None,
               merge: Merge = "replace", queue_threshold: float | int = 0.5, clamp: bool = False,
               max_step: float | None = None, max_observation_age: float | None = None,
               status: Callable[[str], None] | None = None, handle_sigint: bool = False,
               allow_unvalidated: bool = False, **loop_options) -> dict:
    """Load `bundle` (or take a policy object: a RemotePolicy, an EdgePolicy already loaded), drive `robot` at `fps` for `duration` seconds (None or 0: until stopped) and return
    the report (ControlLoop.report(); also written to `report` as JSON, partial with "error" on failure).

    robot: "sim" | "lerobot:<type>" | "gym:<id>" | a Robot object; `env` (a gymnasium id) replaces it.
    robot_options: SimRobot keywords (camera_latency, camera_jitter, seed), a LeRobot robot config (port,
        cameras, id, … plus "rename"), or gymnasium.make keywords.
    rtc: "guided" | "exact" | "off" for flow-matching bundles (passed to load_policy).
    clamp / max_step: ActionLimits from the bundle's action stats (max_step: fraction of the range per tick).
    The robot is connected before and disconnected after the run when it has connect/disconnect.
    """
    if hasattr(bundle, "predict_action_chunk"):
        policy = bundle
    else:
        policy = load_policy(bundle, backend, backend_options=backend_options, allow_unvalidated=allow_unvalidated,
                             **({"rtc": rtc} if rtc is not None else {}))
    rob = make_robot(f"gym:{env}" if env else robot, policy, robot_options)
    limits = None
    if clamp or max_step is not None:
        limits = ActionLimits.from_stats(policy.bundle.stats().get("action", {}), clamp=clamp, max_step=max_step)
    loop = ControlLoop(policy, rob, fps, mode, merge=merge, queue_threshold=queue_threshold, limits=limits,
                       max_observation_age=max_observation_age, status=status, **loop_options)
    connect, disconnect = getattr(rob, "connect", None), getattr(rob, "disconnect", None)
    if callable(connect):
        connect()
    try:
        with _graceful_sigint(loop, handle_sigint):
            result = loop.run(duration or None)
    except BaseException as e:
        if report is not None:
            _write(report, {**loop.report(), "error": f"{type(e).__name__}: {e}"})
        raise
    finally:
        if callable(disconnect):
            disconnect()
    if report is not None:
        _write(report, result)
    return result


def _write(path: str | Path, report: dict) -> None:
    Path(path).write_text(json.dumps(report, indent=1, default=_jsonable) + "\n")


def _jsonable(x: Any) -> Any:
    return x.tolist() if hasattr(x, "tolist") else str(x)


def format_summary(report: Mapping[str, Any]) -> str:
    """A few lines for the end of `lerobot-edge run`."""
    s, c = report["summary"], report["config"]

    def ms(d: Mapping | None) -> str:
        return "-" if not d else f"p50 {d['p50']:.1f} / p95 {d['p95']:.1f} / max {d['max']:.1f} ms"

    hz = "-" if s["achieved_hz"] is None else f"{s['achieved_hz']:.2f} Hz"
    src = s["sources"]
    overruns = f", overruns {s['overruns']}" if c["mode"] == "sync" else ""
    lines = [f"{c['policy']} on {c['backend']}, {c['mode']} at {c['fps']:g} Hz for {report['duration_s']} s "
             f"(stopped by {report['stopped_by']})",
             f"  achieved rate      {hz}  ({s['ticks']} ticks, {s['skipped_ticks']} skipped)",
             f"  misses             {s['misses']}  (hold {src['hold']}, callback {src['callback']}, "
             f"nothing sent {src['none']}){overruns}",
             f"  inference latency  {ms(s['latency_ms'])}",
             f"  observation age    {ms(s['obs_age_ms'])}",
             f"  tick lateness      {ms(s['lateness_ms'])}",
             f"  rejected / stale   {s['rejected']} observations / {s['stale_chunks']} chunks"]
    if s.get("unavailable"):
        lines.append(f"  server unavailable {s['unavailable']} requests (the last action was held)")
    if c["mode"] == "async":
        q = s["queue"]
        depth = "-" if not q else f"p50 {q['p50']:g}, min {q['min']}, max {q['max']}"
        lines.append(f"  queue depth        {depth}  ({s['inferences']} chunks)")
    if report.get("robot"):
        lines.append(f"  robot              {json.dumps(report['robot'])}")
    return "\n".join(lines)
