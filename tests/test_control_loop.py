"""The control loop with real threads and real timing (generous bounds: CI has 2 loaded cores)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from lerobot_edge import load_policy
from lerobot_edge.errors import ObservationError
from lerobot_edge.runtime.control import ControlLoop, LoopError, SimRobot


class Slow:
    """Wraps a policy: every chunk takes `delay` seconds longer; optionally fails or rejects."""

    def __init__(self, policy, delay: float, fail_at: int | None = None, reject_at: int | None = None):
        self.policy, self.delay, self.fail_at, self.reject_at, self.calls = policy, delay, fail_at, reject_at, 0

    def __getattr__(self, name):
        return getattr(self.policy, name)

    def predict_action_chunk(self, obs, **kw):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("engine lost")
        if self.calls == self.reject_at:
            raise ObservationError("observation.state: NaN")
        time.sleep(self.delay)
        chunk = self.policy.predict_action_chunk(obs, **kw)
        # tag every action with its chunk number and index so the test can read the merge order back
        tagged = np.zeros_like(chunk)
        tagged[:, 0], tagged[:, 1] = self.calls, np.arange(len(chunk))
        return tagged


def test_sync_keeps_the_rate_and_equals_select_action(act_tiny_bundle):
    policy = load_policy(act_tiny_bundle)
    robot = SimRobot(policy.observation_spec, seed=3)
    report = ControlLoop(policy, robot, fps=50, mode="sync").run(duration=2.0)
    assert report["ticks"] >= 90 and abs(report["achieved_hz"] - 50) < 5
    sent = np.stack([a for _, a in robot.actions])
    reference = load_policy(act_tiny_bundle)
    want = np.stack([reference.select_action(robot.observation(i)) for i in range(len(sent))])
    np.testing.assert_allclose(sent, want, atol=1e-6)


def test_async_keeps_the_rate_with_slow_inference_and_merges_in_order(act_tiny_bundle):
    slow = Slow(load_policy(act_tiny_bundle), delay=0.09)      # ~5 ticks at 50 Hz per chunk of 10
    robot = SimRobot(slow.observation_spec)
    report = ControlLoop(slow, robot, fps=50, mode="async", refill_at=6).run(duration=2.5)
    assert abs(report["achieved_hz"] - 50) < 5 and report["chunks"] >= 3
    assert report["misses"] >= 1 and report["inference"]["p50_ms"] >= 90
    sent = [(int(a[0]), int(a[1])) for _, a in robot.actions]
    holds = sum(1 for a, b in zip(sent, sent[1:]) if a == b)   # a miss re-sends the last action
    assert 0 < holds < report["misses"]                         # the first misses had nothing to hold yet
    tags = [t for i, t in enumerate(sent) if i == 0 or t != sent[i - 1]]
    chunks = [c for c, _ in tags]
    assert chunks == sorted(chunks)                 # never an older chunk after a newer one
    assert len(set(tags)) == len(tags)              # no action sent twice
    for c in set(chunks):                           # within a chunk: consecutive, starting after the delay
        idx = [i for cc, i in tags if cc == c]
        assert idx == list(range(idx[0], idx[0] + len(idx))) and idx[0] >= 1


def test_inference_exception_is_surfaced(act_tiny_bundle):
    slow = Slow(load_policy(act_tiny_bundle), delay=0.0, fail_at=2)
    loop = ControlLoop(slow, SimRobot(slow.observation_spec), fps=50, mode="async")
    with pytest.raises(LoopError, match="engine lost"):
        loop.run(duration=5)
    assert not [t for t in threading.enumerate() if t.name == "lerobot-edge-inference"]


def test_rejected_observation_sends_nothing_from_it(act_tiny_bundle):
    slow = Slow(load_policy(act_tiny_bundle), delay=0.0, reject_at=1)
    robot = SimRobot(slow.observation_spec)
    report = ControlLoop(slow, robot, fps=50, mode="async").run(duration=0.5)
    assert report["rejected_observations"] == 1
    assert all(int(a[0]) != 1 for _, a in robot.actions)   # chunk 1 was rejected: none of it went out


def test_robot_fault_and_stop(act_tiny_bundle):
    policy = load_policy(act_tiny_bundle)
    with pytest.raises(LoopError, match="get_observation failed"):
        ControlLoop(policy, SimRobot(policy.observation_spec, fail_after=10), fps=50).run(duration=5)
    loop = ControlLoop(Slow(policy, delay=0.3), SimRobot(policy.observation_spec), fps=50, mode="async")
    threading.Timer(0.2, loop.stop).start()             # stop during an inference
    t0 = time.perf_counter()
    loop.run(duration=10)
    assert time.perf_counter() - t0 < 2.0


def test_cli_run(act_tiny_bundle, tmp_path):
    r = subprocess.run([sys.executable, "-m", "lerobot_edge", "run", str(act_tiny_bundle), "--robot", "sim",
                        "--fps", "30", "--duration", "1.5", "--mode", "async", "--report", str(tmp_path / "r.json")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["mode"] == "async" and report["ticks"] >= 40 and "achieved" in r.stdout
