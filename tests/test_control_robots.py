"""Robots for the control loop: the simulated robot, the gymnasium and LeRobot adapters (with stand-ins:
neither library is needed here), output limits, and the robot side running with torch absent."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
from control_fakes import STATE_SPEC, ChunkPolicy

from lerobot_edge import load_policy
from lerobot_edge.errors import BackendUnavailableError, BundleError
from lerobot_edge.runtime.control.adapters import GymEnvRobot, LeRobotRobot, gym_observation, make_robot
from lerobot_edge.runtime.control.clock import ControlLoop
from lerobot_edge.runtime.control.robots import Robot, SimRobot
from lerobot_edge.runtime.control.safety import ActionLimits

SPEC = {"observation.state": {"kind": "state", "shape": [6]},
        "observation.images.top": {"kind": "image", "shape": [3, 48, 64]}}


# -- SimRobot --------------------------------------------------------------------------------------------
def test_sim_robot_is_deterministic_and_records_actions():
    a, b = SimRobot(SPEC, 4, seed=1), SimRobot(SPEC, 4, seed=1)
    for i in range(3):
        oa, ob = a.get_observation(), b.get_observation()
        assert oa["frame_index"] == i and oa["observation.images.top"].shape == (48, 64, 3)
        assert oa["observation.images.top"].dtype == np.uint8 and oa["observation.state"].dtype == np.float32
        for key in SPEC:
            np.testing.assert_array_equal(oa[key], ob[key])
            np.testing.assert_array_equal(oa[key], a.observation(i)[key])
    assert not np.array_equal(a.observation(0)["observation.state"], a.observation(1)["observation.state"])
    assert not np.array_equal(SimRobot(SPEC, 4, seed=2).observation(0)["observation.state"],
                              a.observation(0)["observation.state"])
    action = np.arange(4, dtype=np.float32)
    a.send_action(action)
    action[:] = 9                                                       # the robot kept a copy
    assert a.actions[0][1].tolist() == [0, 1, 2, 3] and a.stats() == {"observations": 3, "actions_received": 1}
    with pytest.raises(ValueError, match=r"\(4,\)"):
        a.send_action(np.zeros(5))
    assert isinstance(a, Robot)


def test_sim_camera_latency_and_seeded_jitter_age_the_observations():
    delays = []
    for _ in range(2):
        r = SimRobot(STATE_SPEC, 2, camera_latency=0.01, camera_jitter=0.01, seed=7)
        for _ in range(5):
            r.get_observation()
        delays.append([d for _, _, d in r.observations])
    assert delays[0] == delays[1] and all(0.01 <= d <= 0.02 for d in delays[0]) and len(set(delays[0])) == 5
    robot = SimRobot(STATE_SPEC, 2, camera_latency=0.02)
    report = ControlLoop(ChunkPolicy(), robot, fps=30, mode="sync").run(duration=0.5)
    age = report["summary"]["obs_age_ms"]
    assert 20 <= age["p50"] and age["max"] < 200                         # capture time is when the call began


# -- gymnasium adapter -------------------------------------------------------------------------------------------
class FakeEnv:
    """gymnasium's reset/step API; an episode ends every `length` steps; observations as gym-aloha's."""

    def __init__(self, length: int = 15):
        self.length, self.t, self.episode, self.closed = length, 0, 0, False
        self.steps: list[int] = []                                       # episode of every step() call
        self.rng = np.random.default_rng(0)

    def _obs(self):
        return {"agent_pos": self.rng.normal(size=6).astype(np.float64),
                "pixels": {"top": self.rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)}}

    def reset(self, seed=None):
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        assert np.asarray(action).shape == (4,)
        self.steps.append(self.episode)
        self.t += 1
        done = self.t >= self.length
        self.episode += done
        return self._obs(), 1.0, done, False, {}

    def close(self):
        self.closed = True


class CountResets:
    def __init__(self, policy):
        self.policy, self.resets = policy, 0

    def __getattr__(self, name):
        return getattr(self.policy, name)

    def reset(self):
        self.resets += 1
        self.policy.reset()


def test_gym_observation_maps_like_lerobot():
    img = np.zeros((4, 5, 3), np.uint8)
    assert set(gym_observation({"pixels": img, "agent_pos": [1, 2]})) == {"observation.image", "observation.state"}
    got = gym_observation({"pixels": {"a": img, "b_c": img}, "environment_state": np.ones(3)})
    assert set(got) == {"observation.images.a", "observation.images.b_c", "observation.environment_state"}
    assert got["observation.images.a"].dtype == np.uint8
    assert gym_observation(np.ones(3))["observation.state"].dtype == np.float32


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_gym_env_episodes_reset_the_policy_and_drop_old_plans(act_tiny_bundle, mode):
    env = FakeEnv(length=15)
    robot = GymEnvRobot(env)
    robot.connect()
    policy = CountResets(load_policy(act_tiny_bundle))
    loop = ControlLoop(policy, robot, fps=50, mode=mode)
    report = loop.run(duration=1.2)
    robot.disconnect()
    assert env.closed and robot.episode_index >= 3 and report["robot"]["episodes"] == robot.episode_index
    if mode == "sync":
        assert policy.resets == 1 + robot.episode_index                # at start and after every episode
    else:                                                              # before the first inference of each
        assert robot.episode_index <= policy.resets <= 1 + robot.episode_index
    assert report["robot"]["episode_rewards"][:2] == [15.0, 15.0]
    if mode == "async":   # every chunk action was planned from an observation of the episode it ran in
        starts = {}
        for i, (tick, episode) in enumerate(zip(report["ticks"], env.steps)):
            starts.setdefault(episode, tick["step"])
            if tick["source"] == "chunk":
                obs_step = next(r["obs_step"] for r in report["inferences"] if r["id"] == tick["chunk"])
                assert obs_step >= starts[episode], (i, tick)


def test_gym_id_needs_gymnasium():
    if importlib.util.find_spec("gymnasium") is not None:
        pytest.skip("gymnasium is installed here")
    with pytest.raises(BackendUnavailableError, match="gymnasium"):
        GymEnvRobot("CartPole-v1")


# -- LeRobot adapter ----------------------------------------------------------------------------------------------
class FakeLeRobotRobot:
    """The part of lerobot.robots.Robot the adapter uses (as SO-101 declares its features)."""

    observation_features = {"shoulder_pan.pos": float, "elbow_flex.pos": float, "gripper.pos": float,
                             "front": (48, 64, 3)}
    action_features = {"shoulder_pan.pos": float, "elbow_flex.pos": float, "gripper.pos": float}

    def __init__(self):
        self.is_connected, self.connects, self.sent = False, 0, []

    def connect(self, calibrate: bool = True):
        self.is_connected, self.connects = True, self.connects + 1

    def disconnect(self):
        self.is_connected = False

    def get_observation(self):
        return {"elbow_flex.pos": 2.0, "front": np.full((48, 64, 3), 7, np.uint8), "gripper.pos": 3.0,
                "shoulder_pan.pos": 1.0}

    def send_action(self, action):
        self.sent.append(action)
        return action


def test_lerobot_robot_maps_features_in_order():
    raw = FakeLeRobotRobot()
    robot = LeRobotRobot(raw, rename={"front": "top"})
    robot.connect()
    robot.connect()
    assert raw.connects == 1
    obs = robot.get_observation()
    assert obs["observation.state"].tolist() == [1.0, 2.0, 3.0] and obs["observation.state"].dtype == np.float32
    assert obs["observation.images.top"].shape == (48, 64, 3) and obs["observation.images.top"].dtype == np.uint8
    robot.send_action(np.array([0.5, -1, 2], np.float32))
    assert list(raw.sent[0].items()) == [("shoulder_pan.pos", 0.5), ("elbow_flex.pos", -1.0), ("gripper.pos", 2.0)]
    assert all(type(v) is float for v in raw.sent[0].values())
    with pytest.raises(ValueError, match="3 action values"):
        robot.send_action(np.zeros(4))
    robot.disconnect()
    assert not raw.is_connected


def test_make_robot_specs():
    policy = ChunkPolicy()
    assert isinstance(make_robot("sim", policy, {"seed": 3}), SimRobot)
    sim = SimRobot(STATE_SPEC, 2)
    assert make_robot(sim, policy) is sim
    with pytest.raises(ValueError, match="get_observation"):
        make_robot(object(), policy)
    for bad in ("toaster", "lerobot:", "sim:x"):
        with pytest.raises(ValueError, match="expected 'sim'"):
            make_robot(bad, policy)
    if importlib.util.find_spec("lerobot") is None:
        with pytest.raises(BackendUnavailableError, match="robots"):
            make_robot("lerobot:so101_follower", policy, {"port": "/dev/null"})


# -- output limits -------------------------------------------------------------------------------------------------
def test_action_limits_clamp_and_max_step():
    stats = {"min": np.array([0.0, -1.0]), "max": np.array([1.0, 1.0])}
    lim = ActionLimits.from_stats(stats, clamp=True, max_step=0.1)        # 0.1 and 0.2 per tick
    out, changed = lim.apply(np.array([2.0, 0.0], np.float32), None)
    assert out.tolist() == [1.0, 0.0] and changed
    out, changed = lim.apply(np.array([0.0, 1.0], np.float32), np.array([1.0, 0.0], np.float32))
    assert out == pytest.approx([0.9, 0.2]) and changed
    assert lim.apply(np.array([0.5, 0.5], np.float32), np.array([0.5, 0.45], np.float32))[1] is False
    with pytest.raises(BundleError, match="min/max"):
        ActionLimits.from_stats({"mean": np.zeros(2), "std": np.ones(2)})
    with pytest.raises(ValueError, match="max_step"):
        ActionLimits.from_stats(stats, max_step=0)


def test_limits_apply_to_sent_actions_not_to_the_rtc_leftover():
    policy = ChunkPolicy(chunk_size=10, rtc=True, latency=0.03)          # chunk k = [k, index]
    robot = SimRobot(STATE_SPEC, 2)
    limits = ActionLimits(low=np.array([0, 0], np.float32), high=np.array([1, 3], np.float32))
    report = ControlLoop(policy, robot, fps=50, mode="async", limits=limits).run(duration=1.0)
    sent = np.stack([a for _, a in robot.actions])
    assert sent[:, 0].max() <= 1 and sent[:, 1].max() <= 3 and report["summary"]["limited"] > 0
    leftovers = [c["prev"] for c in policy.calls if c["prev"] is not None]
    assert leftovers and max(p[:, 1].max() for p in leftovers) > 3      # the policy sees what it planned


# -- torch absent ----------------------------------------------------------------------------------------------------
SCRIPT = """
import sys
for m in ("torch", "lerobot", "gymnasium"):
    sys.modules[m] = None
from lerobot_edge.runtime.control.runner import run_policy
from lerobot_edge.runtime.control.adapters import GymEnvRobot
from lerobot_edge.errors import BackendUnavailableError
for mode in ("sync", "async"):
    r = run_policy(sys.argv[1], "sim", fps=50, duration=0.5, mode=mode)
    assert r["summary"]["ticks"] >= 20, r["summary"]
try:
    GymEnvRobot("CartPole-v1")
except BackendUnavailableError:
    pass
else:
    raise AssertionError("no error without gymnasium")
mods = [m for m in sys.modules if m.startswith(("torch", "lerobot.", "gymnasium")) and sys.modules[m] is not None]
assert not mods, mods
print("ok")
"""


def test_control_loop_runs_without_torch(act_tiny_bundle):
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(act_tiny_bundle)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
