"""Robots the loop drives: a small protocol, and a simulated robot for tests and demos."""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..observations import random_observation


@runtime_checkable
class Robot(Protocol):
    def get_observation(self) -> dict[str, Any]: ...

    def send_action(self, action: np.ndarray) -> None: ...


class SimRobot:
    """Deterministic observations at a policy's shapes (seeded by tick), optional camera latency and jitter;
    records every action sent with its timestamp."""

    def __init__(self, observation_spec: dict[str, dict], *, seed: int = 0, camera_latency: float = 0.0,
                 jitter: float = 0.0, fail_after: int | None = None):
        self.spec, self.seed = observation_spec, seed
        self.camera_latency, self.jitter, self.fail_after = camera_latency, jitter, fail_after
        self._rng = np.random.default_rng(seed + 1)
        self._lock = threading.Lock()
        self.observations = 0
        self.actions: list[tuple[float, np.ndarray]] = []

    def observation(self, index: int) -> dict[str, np.ndarray]:
        """The observation the robot returns on its `index`-th read (reproducible)."""
        return random_observation(self.spec, np.random.default_rng((self.seed, index)))

    def get_observation(self) -> dict[str, np.ndarray]:
        with self._lock:
            i = self.observations
            self.observations += 1
        if self.fail_after is not None and i >= self.fail_after:
            raise RuntimeError(f"simulated robot fault at observation {i}")
        delay = self.camera_latency + (self._rng.uniform(0, self.jitter) if self.jitter else 0.0)
        if delay:
            time.sleep(delay)
        return self.observation(i)

    def send_action(self, action: np.ndarray) -> None:
        self.actions.append((time.perf_counter(), np.asarray(action).copy()))
