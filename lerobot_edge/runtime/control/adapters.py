"""Robots from the libraries users already have, imported lazily: a gymnasium environment, or a LeRobot
robot (`lerobot.robots.Robot`, the `[robots]` extra). Both become the loop's `Robot` protocol.

A missing library is a BackendUnavailableError (exit code 3) naming what to install.
"""

from __future__ import annotations

import importlib
import pkgutil
import time
from typing import Any, Mapping

import numpy as np

from ...errors import BackendUnavailableError
from .robots import CAPTURE_TIME, Robot, SimRobot


def _require(module: str, what: str, install: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise BackendUnavailableError(f"{what} needs `{module}`, which is not installed here: {install}") from e


# -- gymnasium -----------------------------------------------------------------------------------------------
def gym_observation(obs: Any) -> dict[str, Any]:
    """A gym observation -> LeRobot feature keys, as LeRobot's `preprocess_observation` maps them, but
    keeping camera frames uint8 HWC: pixels (array) -> observation.image; pixels {name: array} ->
    observation.images.<name>; agent_pos -> observation.state; environment_state ->
    observation.environment_state; a plain array -> observation.state; "observation.*" keys pass through."""
    if not isinstance(obs, Mapping):
        return {"observation.state": np.asarray(obs, np.float32)}
    out: dict[str, Any] = {k: v for k, v in obs.items() if isinstance(k, str) and k.startswith("observation.")}
    pixels = obs.get("pixels")
    if isinstance(pixels, Mapping):
        out.update({f"observation.images.{k}": np.asarray(v) for k, v in pixels.items()})
    elif pixels is not None:
        out["observation.image"] = np.asarray(pixels)
    if "environment_state" in obs:
        out["observation.environment_state"] = np.asarray(obs["environment_state"], np.float32)
    if "agent_pos" in obs:
        out["observation.state"] = np.asarray(obs["agent_pos"], np.float32)
    return out


class GymEnvRobot:
    """A gymnasium env as a robot: connect() resets, send_action() steps, get_observation() returns the
    latest observation. An episode that terminates or truncates is reset at once and `episode_index` grows.

    env: a gymnasium.Env, or an id for `gymnasium.make` ("module:EnvId" imports the env's package first,
    e.g. "gym_pusht:gym_pusht/PushT-v0"). Stepping is synchronous, so get_observation never blocks.
    """

    thread_safe = False

    def __init__(self, env: Any, *, seed: int | None = 0, **make_kwargs):
        if isinstance(env, str):
            gym = _require("gymnasium", f"--env {env}", "pip install gymnasium (and the env's package)")
            env = gym.make(env, **make_kwargs)
        self.env, self.seed = env, seed
        self.episode_index = 0
        self.episode_rewards: list[float] = []
        self._reward = 0.0
        self._obs: Any = None

    def connect(self) -> None:
        self._obs, _ = self.env.reset(seed=self.seed)

    def disconnect(self) -> None:
        close = getattr(self.env, "close", None)
        if close is not None:
            close()

    def get_observation(self) -> dict[str, Any]:
        if self._obs is None:
            self.connect()
        return gym_observation(self._obs)

    def send_action(self, action: np.ndarray) -> None:
        obs, reward, terminated, truncated, _ = self.env.step(np.asarray(action))
        self._reward += float(reward)
        if terminated or truncated:
            self.episode_rewards.append(self._reward)
            self._reward = 0.0
            self.episode_index += 1
            obs, _ = self.env.reset()
        self._obs = obs

    def stats(self) -> dict:
        return {"episodes": self.episode_index, "episode_rewards": list(self.episode_rewards),
                "current_episode_reward": self._reward}


# -- LeRobot ---------------------------------------------------------------------------------------------------
class LeRobotRobot:
    """A LeRobot robot (`lerobot.robots.Robot`) mapped the way LeRobot's record loop maps it: joints
    (observation_features whose value is `float`, in their order) -> observation.state (D,) float32; cameras
    (features whose value is a shape tuple) -> observation.images.<name> uint8 HWC; an action vector (A,) ->
    {name: float} in `action_features` order. `rename`: camera name on the robot -> name in the policy.
    """

    thread_safe = False   # one serial bus: LeRobot robots are not safe to read and write concurrently

    def __init__(self, robot: Any, *, rename: Mapping[str, str] | None = None):
        self.robot = robot
        feats = dict(robot.observation_features)
        self.joints = [k for k, v in feats.items() if v is float]
        self.cameras = [k for k, v in feats.items() if isinstance(v, tuple)]
        self.action_names = [k for k, v in dict(robot.action_features).items() if v is float]
        self.rename = dict(rename or {})

    @classmethod
    def from_type(cls, robot_type: str, config: Mapping[str, Any] | None = None, **kw) -> "LeRobotRobot":
        """Build LeRobot's robot `robot_type` (e.g. "so101_follower") from a config dict decoded with draccus,
        as `lerobot-record --robot.type=... --robot.port=...` would (cameras as {name: {"type": "opencv",
        …}})."""
        robots = _require("lerobot.robots", f"--robot lerobot:{robot_type}", "pip install 'lerobot-edge[robots]'")
        draccus = _require("draccus", "a LeRobot robot config", "pip install 'lerobot-edge[robots]'")
        import lerobot.cameras as cameras

        for pkg in (robots, cameras):   # register every robot and camera config type that imports here
            for m in pkgutil.iter_modules(pkg.__path__):
                try:
                    importlib.import_module(f"{pkg.__name__}.{m.name}")
                except Exception:   # noqa: BLE001  (an optional hardware SDK is missing)
                    pass
        known = sorted(robots.RobotConfig.get_known_choices())
        if robot_type not in known:
            raise ValueError(f"LeRobot has no robot type {robot_type!r} here; known: {known}")
        cfg = draccus.decode(robots.RobotConfig.get_choice_class(robot_type), dict(config or {}))
        try:
            robot = robots.make_robot_from_config(cfg)
        except ImportError as e:   # the motor bus / camera SDK of this robot type
            raise BackendUnavailableError(f"LeRobot robot {robot_type!r} needs {e.name or e}, which is not "
                                          "installed here (e.g. pip install 'lerobot[feetech]')") from e
        return cls(robot, **kw)

    def connect(self) -> None:
        if not self.robot.is_connected:
            self.robot.connect()

    def disconnect(self) -> None:
        if self.robot.is_connected:
            self.robot.disconnect()

    def get_observation(self) -> dict[str, Any]:
        t = time.perf_counter()
        raw = self.robot.get_observation()
        out: dict[str, Any] = {CAPTURE_TIME: t}
        if self.joints:
            out["observation.state"] = np.array([float(raw[j]) for j in self.joints], dtype=np.float32)
        for cam in self.cameras:
            out[f"observation.images.{self.rename.get(cam, cam)}"] = np.asarray(raw[cam])
        return out

    def send_action(self, action: np.ndarray) -> None:
        a = np.asarray(action, dtype=np.float32).reshape(-1)
        if a.shape != (len(self.action_names),):
            raise ValueError(f"the robot takes {len(self.action_names)} action values {self.action_names}, "
                             f"the policy gave {a.shape}")
        self.robot.send_action({n: float(v) for n, v in zip(self.action_names, a)})


def make_robot(spec: str | Robot, policy: Any, options: Mapping[str, Any] | None = None) -> Robot:
    """"sim" | "lerobot:<type>" | "gym:<env id>" | a Robot object -> a Robot (not yet connected)."""
    options = dict(options or {})
    if not isinstance(spec, str):
        if not isinstance(spec, Robot):
            raise ValueError(f"robot {spec!r}: expected 'sim', 'lerobot:<type>', 'gym:<id>' or an object with "
                             "get_observation() and send_action(action)")
        return spec
    kind, _, name = spec.partition(":")
    if kind == "sim" and not name:
        return SimRobot.from_policy(policy, **options)
    if kind == "lerobot" and name:
        rename = options.pop("rename", None)
        return LeRobotRobot.from_type(name, options, rename=rename)
    if kind == "gym" and name:
        return GymEnvRobot(name, **options)
    raise ValueError(f"robot {spec!r}: expected 'sim', 'lerobot:<type>' (e.g. lerobot:so101_follower) or "
                     "'gym:<env id>'")
