"""Small stand-ins for the control-loop tests: EdgePolicy-like fakes whose chunks say where they came from,
a wrapper that makes a real policy slow, and robots that misbehave."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import numpy as np

from lerobot_edge.errors import ObservationError
from lerobot_edge.runtime.control.robots import SimRobot

STATE_SPEC = {"observation.state": {"kind": "state", "shape": [3], "graph_input": "observation.state"}}


class ChunkPolicy:
    """EdgePolicy-like: call k returns chunk k, (T, A) with [:, 0] = k and [:, 1] = index in the chunk.

    latency: seconds (or k -> seconds) slept per call; rtc: whether it takes RTC's kwargs; fail_on /
    reject_on: call numbers that raise RuntimeError / ObservationError. Every call's kwargs are kept.
    """

    def __init__(self, chunk_size: int = 10, action_dim: int = 2, latency: float | Callable[[int], float] = 0.0,
                 rtc: bool = False, fail_on: tuple = (), reject_on: tuple = (), block: threading.Event | None = None):
        self.observation_spec = STATE_SPEC
        self.manifest = {"action": {"key": "action", "shape": [action_dim]}, "runtime": {"kind": "fake"}}
        self.type, self.backend = "fake", "numpy"
        self.supports_rtc = rtc
        self.chunk_size, self.action_dim = chunk_size, action_dim
        self.latency, self.fail_on, self.reject_on, self.block = latency, fail_on, reject_on, block
        self.calls: list[dict] = []
        self.resets = 0
        self.timings: dict[str, float] = {}

    def reset(self) -> None:
        self.resets += 1

    def chunk(self, k: int) -> np.ndarray:
        c = np.zeros((self.chunk_size, self.action_dim), np.float32)
        c[:, 0], c[:, 1] = k, np.arange(self.chunk_size)
        return c

    def predict_action_chunk(self, obs: dict, noise=None, inference_delay=None, prev_chunk_left_over=None,
                             execution_horizon=None) -> np.ndarray:
        k = len(self.calls)
        self.calls.append({"k": k, "inference_delay": inference_delay, "frame": obs.get("frame_index"),
                           "prev": None if prev_chunk_left_over is None else np.array(prev_chunk_left_over)})
        if k > 0 and self.block is not None:
            self.block.wait(5.0)
        lat = self.latency(k) if callable(self.latency) else self.latency
        if lat:
            time.sleep(lat)
        if k in self.fail_on:
            raise RuntimeError(f"boom in call {k}")
        if k in self.reject_on:
            raise ObservationError(f"bad frame in call {k}")
        return self.chunk(k)

    def select_action(self, obs: dict, noise=None) -> np.ndarray:
        return self.predict_action_chunk(obs)[0]


class SlowPolicy:
    """A real EdgePolicy made slow: sleeps `delay` s before every chunk, and keeps every chunk it returned."""

    def __init__(self, policy: Any, delay: float):
        self.policy, self.delay = policy, delay
        self.chunks: list[np.ndarray] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.policy, name)

    def predict_action_chunk(self, obs: dict, **kw) -> np.ndarray:
        time.sleep(self.delay)
        chunk = self.policy.predict_action_chunk(obs, **kw)
        self.chunks.append(np.array(chunk))
        return chunk


class FaultyRobot(SimRobot):
    """A SimRobot whose n-th send_action / get_observation raises, or whose state is NaN on some frames."""

    def __init__(self, *a, fail_send_at: int | None = None, fail_observe_at: int | None = None,
                 nan_frames: tuple = (), **kw):
        super().__init__(*a, **kw)
        self.fail_send_at, self.fail_observe_at, self.nan_frames = fail_send_at, fail_observe_at, set(nan_frames)

    def get_observation(self) -> dict:
        obs = super().get_observation()
        if obs["frame_index"] == self.fail_observe_at:
            raise ConnectionError("camera unplugged")
        if obs["frame_index"] in self.nan_frames:
            obs["observation.state"] = np.full_like(obs["observation.state"], np.nan)
        return obs

    def send_action(self, action: np.ndarray) -> None:
        if len(self.actions) == self.fail_send_at:
            raise ConnectionError("motor bus timeout")
        super().send_action(action)


def inference_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "lerobot-edge-inference" and t.is_alive()]
