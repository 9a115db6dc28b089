"""What the control loop drives: the `Robot` protocol, and a simulated robot for tests and demos.

A robot returns observations keyed by the policy's LeRobot feature names (camera frames uint8 HWC RGB,
state vectors float) and takes one action vector (A,) in robot units. Two optional keys help the timing
record: `capture_time` (time.perf_counter() seconds when the sensors were read; observation age is
measured from it) and `frame_index`. Policies ignore keys that are not features.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Mapping, Protocol, runtime_checkable

import numpy as np

CAPTURE_TIME = "capture_time"
FRAME_INDEX = "frame_index"


@runtime_checkable
class Robot(Protocol):
    """get_observation() -> {feature key: array}; send_action(action (A,)) -> None.

    Optional: connect(), disconnect() (called by whoever made the robot, never by the loop);
    `thread_safe = True` when get_observation and send_action may run concurrently from two threads (the
    loop serializes them otherwise); `episode_index` (int) that grows when an episode ends (the loop then
    resets the policy and drops queued actions); `stats() -> dict` merged into the run report.
    """

    def get_observation(self) -> dict[str, Any]: ...

    def send_action(self, action: np.ndarray) -> None: ...


class SimRobot:
    """Deterministic observations at the policy's shapes; records every action with its timestamp.

    Observation i (the i-th call of get_observation) is `observation(i)`: each camera a fixed seeded random
    frame rolled by i pixels, the state `base + 0.1 * sin(0.1 * i + j)`. A camera latency (plus a uniform
    jitter in [0, camera_jitter] from a seeded RNG) makes get_observation block that long, the frame being
    captured when the call started (`capture_time`), so the observation's age includes it. `keep`: how many
    of the latest actions/observations the record holds (None: all; a soak of hours wants a bound).
    """

    thread_safe = True

    def __init__(self, observation_spec: Mapping[str, dict], action_dim: int, *, seed: int = 0,
                 camera_latency: float = 0.0, camera_jitter: float = 0.0, keep: int | None = None):
        if camera_latency < 0 or camera_jitter < 0:
            raise ValueError("camera_latency and camera_jitter must be >= 0 seconds")
        self.spec = {k: dict(v) for k, v in observation_spec.items()}
        self.action_dim = int(action_dim)
        self.camera_latency, self.camera_jitter = float(camera_latency), float(camera_jitter)
        self._rng = np.random.default_rng([seed, 1])
        base = np.random.default_rng([seed, 0])
        self._base = {k: (base.integers(0, 256, (s["shape"][1], s["shape"][2], s["shape"][0]), dtype=np.uint8)
                          if s["kind"] == "image" else base.standard_normal(s["shape"]).astype(np.float32))
                      for k, s in self.spec.items()}
        self._lock = threading.Lock()
        self._count = 0
        # (perf_counter time, action (A,)) and (frame index, capture time, simulated delay), oldest first
        self.actions: list[tuple[float, np.ndarray]] = [] if keep is None else deque(maxlen=keep)
        self.observations: list[tuple[int, float, float]] = [] if keep is None else deque(maxlen=keep)
        self._sent = 0
        self.connected = False

    @classmethod
    def from_policy(cls, policy: Any, **kw) -> "SimRobot":
        """Shapes from `policy.observation_spec` and the manifest's action shape."""
        return cls(policy.observation_spec, int(policy.manifest["action"]["shape"][-1]), **kw)

    def connect(self) -> None:
        self.connected = True

    def disconnect(self) -> None:
        self.connected = False

    def observation(self, index: int) -> dict[str, np.ndarray]:
        """The index-th observation, recomputed (pure): uint8 (H, W, 3) frames, float32 state vectors."""
        out = {}
        for key, s in self.spec.items():
            b = self._base[key]
            if s["kind"] == "image":
                out[key] = np.roll(b, index, axis=1)
            else:
                phase = 0.1 * index + np.arange(b.size, dtype=np.float32).reshape(b.shape)
                out[key] = (b + 0.1 * np.sin(phase)).astype(np.float32)
        return out

    def get_observation(self) -> dict[str, Any]:
        t_capture = time.perf_counter()
        with self._lock:
            index = self._count
            self._count += 1
            jitter = float(self._rng.uniform(0.0, self.camera_jitter)) if self.camera_jitter else 0.0
            delay = self.camera_latency + jitter
            self.observations.append((index, t_capture, delay))
        if delay:
            time.sleep(delay)
        return {**self.observation(index), CAPTURE_TIME: t_capture, FRAME_INDEX: index}

    def send_action(self, action: np.ndarray) -> None:
        a = np.array(action, dtype=np.float32)   # a copy: the caller may reuse its buffer
        if a.shape != (self.action_dim,):
            raise ValueError(f"SimRobot: expected an action of shape ({self.action_dim},), got {a.shape}")
        with self._lock:
            self.actions.append((time.perf_counter(), a))
            self._sent += 1

    def stats(self) -> dict:
        with self._lock:
            return {"observations": self._count, "actions_received": self._sent}
