"""run_policy: what `lerobot-edge run` calls: a bundle, a robot, a rate, a duration -> the loop's report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from ..loader import load_policy
from .loop import ControlLoop
from .robot import SimRobot


def make_robot(spec: str, policy, camera_latency: float = 0.0):
    if spec == "sim":
        return SimRobot(policy.observation_spec, camera_latency=camera_latency)
    raise ValueError(f"--robot {spec!r}: this build drives 'sim' (LeRobot robots and gym envs are not wired yet)")


def run_policy(bundle: str | Path, robot: str = "sim", *, fps: float = 30, duration: float = 10, mode: str = "async",
               backend: str | None = None, report: str | Path | None = None, camera_latency: float = 0.0,
               clamp: bool = False, status: Callable[[dict], None] | None = None, stop_event=None) -> dict:
    policy = load_policy(bundle, backend)
    loop = ControlLoop(policy, make_robot(robot, policy, camera_latency), fps, mode, clamp=clamp)
    if stop_event is not None:
        stop_event.append(loop.stop)
    result = {"bundle": str(bundle), "policy": policy.type, "backend": policy.backend, "robot": robot,
              **loop.run(duration=duration, status=status)}
    if report:
        Path(report).write_text(json.dumps(result, indent=2))
    return result
