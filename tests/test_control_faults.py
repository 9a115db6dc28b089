"""Fault injection in the control loop with the real tiny ACT bundle: the robot raising on get_observation,
frames arriving late or twice, a NaN frame in async mode, the inference thread raising, a backend session
failing mid-run, SIGINT during inference in a real `lerobot-edge run` process. The loop holds (rejected
observations) or stops and raises (everything else), reports, and never sends an action computed from a
rejected observation. (send_action raising: tests/test_control_e2e.py.)"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from control_fakes import FaultyRobot, SlowPolicy, inference_threads

from lerobot_edge import load_policy
from lerobot_edge.runtime.control.clock import ControlLoop
from lerobot_edge.runtime.control.robots import CAPTURE_TIME, FRAME_INDEX, SimRobot


class GlitchyRobot(SimRobot):
    """A SimRobot whose frames in `late` were captured `lateness` s before the read (a camera that stalled)
    and whose frames in `twice` repeat the previous frame (index and capture time included), as a driver that
    re-delivers its last buffer does."""

    def __init__(self, *a, late: tuple = (), twice: tuple = (), lateness: float = 0.2, **kw):
        super().__init__(*a, **kw)
        self.late, self.twice, self.lateness = set(late), set(twice), lateness
        self.reads = 0
        self.previous: dict | None = None
        self.delivered: list[int] = []            # frame index of each observation handed out, in order

    def get_observation(self) -> dict:
        k, self.reads = self.reads, self.reads + 1
        if k in self.twice and self.previous is not None:
            obs = dict(self.previous)
        else:
            obs = super().get_observation()
            if k in self.late:
                obs[CAPTURE_TIME] -= self.lateness
        self.previous = obs
        self.delivered.append(obs[FRAME_INDEX])
        return obs


class FailingSession:
    """A real backend session that raises on its `fail_at`-th run (a GPU falling off the bus, a driver reset)."""

    def __init__(self, session, fail_at: int):
        self.session, self.graph, self.fail_at, self.calls = session, session.graph, fail_at, 0

    def run(self, inputs, *, keep=()):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("backend session failed: device lost")
        return self.session.run(inputs, keep=keep)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_robot_raising_on_get_observation_stops_and_raises(act_tiny_bundle, mode):
    policy = load_policy(act_tiny_bundle)
    robot = FaultyRobot(policy.observation_spec, 4, fail_observe_at=12)
    loop = ControlLoop(policy, robot, fps=50, mode=mode)
    with pytest.raises(ConnectionError, match="camera unplugged"):
        loop.run(duration=5.0)
    assert not inference_threads()
    report = loop.report()
    assert report["stopped_by"] == "error" and report["summary"]["ticks"] >= 1
    if mode == "sync":                                   # one action per frame read before the failure
        assert len(robot.actions) == 12


def test_late_and_repeated_frames_sync_hold_and_are_never_used(act_tiny_bundle):
    """max_observation_age 25 ms at 20 Hz: a stalled frame (200 ms old) and a re-delivered one (about a tick,
    50 ms, old) are rejected; the tick holds the previous action; the others are what a fresh policy gives. A
    frame the loaded test machine itself delivered late (seen: 35 ms on 2 busy cores) is rejected as well: any
    hold besides the glitches must be such a frame, older than the limit."""
    policy = load_policy(act_tiny_bundle)
    robot = GlitchyRobot(policy.observation_spec, 4, seed=2, late=(5, 17), twice=(9, 10))
    loop = ControlLoop(policy, robot, fps=20, mode="sync", max_observation_age=0.025)
    report = loop.run(duration=1.2)
    sources = [t["source"] for t in report["ticks"]]
    held = [i for i, s in enumerate(sources) if s == "hold"]
    extra = [i for i in held if i not in (5, 9, 10, 17)]
    assert {5, 9, 10, 17} <= set(held), sources
    assert all(report["ticks"][i]["obs_age"] > 0.025 for i in extra), [report["ticks"][i] for i in extra]
    assert report["summary"]["rejected"] == len(held)
    reference, sent = load_policy(act_tiny_bundle), [a for _, a in robot.actions]
    for i, (frame, src) in enumerate(zip(robot.delivered, sources)):
        if src == "policy":
            np.testing.assert_allclose(sent[i], reference.select_action(robot.observation(frame)), atol=1e-6)
        else:
            np.testing.assert_array_equal(sent[i], sent[i - 1])


def test_late_frame_and_nan_frame_async_never_make_a_chunk(act_tiny_bundle):
    policy = SlowPolicy(load_policy(act_tiny_bundle), delay=0.0)
    robot = FaultyRobot(policy.observation_spec, 4, seed=3, nan_frames=(2, 3, 6))
    loop = ControlLoop(policy, robot, fps=50, mode="async")
    report = loop.run(duration=1.5)
    bad = [r for r in report["inferences"] if "error" in r]
    assert len(bad) == 3 and all("NaN" in r["error"] for r in bad)
    used = {t["chunk"] for t in report["ticks"] if t["source"] == "chunk"}
    assert used and not used & {r["id"] for r in bad}    # no tick ever used a chunk from a rejected frame
    assert len(policy.chunks) - (len(report["inferences"]) - 3) in (0, 1)   # + a late chunk dropped at stop
    assert report["summary"]["ticks"] == len(robot.actions)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_backend_session_failing_mid_run_stops_and_raises(act_tiny_bundle, mode):
    policy = load_policy(act_tiny_bundle)
    policy.sessions["act"] = FailingSession(policy.sessions["act"], fail_at=3)
    robot = SimRobot.from_policy(policy)
    loop = ControlLoop(policy, robot, fps=50, mode=mode)
    with pytest.raises(RuntimeError, match="device lost") as e:
        loop.run(duration=10.0)
    assert not inference_threads()
    assert loop.report()["duration_s"] < 5
    if mode == "async":
        assert any("inference thread" in note for note in getattr(e.value, "__notes__", []))
    # two chunks of 10 were computed: nothing sent can come from a third
    assert 1 <= len(robot.actions) <= 20


def test_inference_thread_raising_stops_the_loop_and_sends_nothing_after(act_tiny_bundle):
    class Exploding(SlowPolicy):
        def predict_action_chunk(self, obs, **kw):
            if len(self.chunks) == 2:
                raise MemoryError("inference thread blew up")
            return super().predict_action_chunk(obs, **kw)

    policy = Exploding(load_policy(act_tiny_bundle), delay=0.0)
    robot = SimRobot.from_policy(policy)
    loop = ControlLoop(policy, robot, fps=50, mode="async", queue_threshold=2)
    with pytest.raises(MemoryError):
        loop.run(duration=10.0)
    assert not inference_threads() and loop.report()["stopped_by"] == "error"
    ticks = [t for t in loop.report()["ticks"] if t["source"] == "chunk"]
    assert {t["chunk"] for t in ticks} <= {0, 1} and len(robot.actions) <= 20


def test_sigint_during_inference_stops_cleanly_and_reports(act_tiny_bundle, tmp_path):
    """A real `lerobot-edge run` whose inference thread spends most of its time in a 150 ms camera read:
    Ctrl-C stops it after the current tick, joins the thread, writes the report, exits 130."""
    out = tmp_path / "r.json"
    proc = subprocess.Popen([sys.executable, "-m", "lerobot_edge", "run", str(act_tiny_bundle), "--fps", "50",
                             "--duration", "60", "--mode", "async", "--camera-latency", "0.15", "--report", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line, deadline = "", time.monotonic() + 90
        while "latency" not in line and time.monotonic() < deadline and proc.poll() is None:
            line = proc.stderr.readline()                 # the live status line: the clock is running
        assert "latency" in line, "the run never started"
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    report = json.loads(out.read_text())
    assert report["stopped_by"] == "interrupt" and report["leaked_threads"] == 0
    assert "interrupt" in stdout and report["summary"]["ticks"] == report["robot"]["actions_received"]
