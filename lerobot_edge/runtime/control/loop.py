"""ControlLoop: one action per tick at a fixed rate, whatever inference costs.

sync:  observe -> select_action -> send, every tick; a tick whose work overruns the period is counted.
async: the control thread sends one queued action per tick and hands the latest observation to an inference
       thread, which computes a new chunk when the queue falls to `refill_at`. A chunk computed from the
       observation of tick k and ready at tick k + d starts at its d-th action (those before are in the past),
       so no action is sent twice and none from an older chunk after a newer one arrived.
When no action is ready at a tick, the last one is held (or `on_miss(tick)` decides); every such tick counts.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ...errors import LeRobotEdgeError, ObservationError


class LoopError(LeRobotEdgeError):
    """The robot or the inference thread failed; the original exception is the __cause__."""


@dataclass
class Record:
    ticks: int = 0
    misses: int = 0
    overruns: int = 0
    rejected_observations: int = 0
    chunks: int = 0
    tick_work: list[float] = field(default_factory=list)
    inference: list[float] = field(default_factory=list)
    observation_age: list[float] = field(default_factory=list)
    queue_depth: list[int] = field(default_factory=list)

    def summary(self, wall: float) -> dict:
        def pct(xs):
            if not xs:
                return None
            a = np.asarray(xs, dtype=np.float64) * 1e3
            return {"p50_ms": float(np.percentile(a, 50)), "p95_ms": float(np.percentile(a, 95)),
                    "max_ms": float(a.max())}
        return {"ticks": self.ticks, "achieved_hz": self.ticks / wall if wall else 0.0, "misses": self.misses,
                "overruns": self.overruns, "rejected_observations": self.rejected_observations,
                "chunks": self.chunks, "tick_work": pct(self.tick_work), "inference": pct(self.inference),
                "observation_age": pct(self.observation_age),
                "queue_depth_mean": float(np.mean(self.queue_depth)) if self.queue_depth else None}


class ControlLoop:
    def __init__(self, policy, robot, fps: float, mode: str = "sync", *, refill_at: int | None = None,
                 on_miss: Callable[[int], np.ndarray | None] | None = None, clamp: bool = False,
                 max_step: float | None = None):
        if mode not in ("sync", "async"):
            raise ValueError(f"mode {mode!r}: expected 'sync' or 'async'")
        self.policy, self.robot, self.fps, self.mode = policy, robot, float(fps), mode
        self.period = 1.0 / self.fps
        self.refill_at = refill_at
        self.on_miss, self.max_step = on_miss, max_step
        self.bounds = _action_bounds(policy) if clamp else None
        self.record = Record()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self.last_action: np.ndarray | None = None

    # -- public ----------------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def __enter__(self) -> "ControlLoop":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def run(self, duration: float | None = None, ticks: int | None = None,
            status: Callable[[dict], None] | None = None) -> dict:
        """Run until `duration` seconds, `ticks` ticks or stop(); returns the summary. Raises LoopError."""
        self.policy.reset()
        self._stop.clear()
        t0 = time.perf_counter()
        body = self._sync_tick if self.mode == "sync" else self._async_tick
        worker = None
        if self.mode == "async":
            self._async_init()
            worker = threading.Thread(target=self._inference_worker, name="lerobot-edge-inference", daemon=True)
            worker.start()
        try:
            k = 0
            while not self._stop.is_set() and (ticks is None or k < ticks) and \
                    (duration is None or time.perf_counter() - t0 < duration):
                deadline = t0 + (k + 1) * self.period
                start = time.perf_counter()
                body(k)
                self._raise_if_failed()
                work = time.perf_counter() - start
                self.record.tick_work.append(work)
                self.record.ticks += 1
                if status and k % max(1, int(self.fps)) == 0:
                    status(self.record.summary(time.perf_counter() - t0))
                late = time.perf_counter() - deadline
                if late > 0:
                    self.record.overruns += 1
                    k += 1 + int(late // self.period)  # ticks whose slot passed are skipped, not bunched
                else:
                    time.sleep(-late)
                    k += 1
        finally:
            self._stop.set()
            if worker is not None:
                with self._cond:
                    self._cond.notify_all()
                worker.join(timeout=30)
        self._raise_if_failed()
        return {"mode": self.mode, "fps": self.fps, **self.record.summary(time.perf_counter() - t0)}

    # -- shared ----------------------------------------------------------------------------------------
    def _send(self, action: np.ndarray) -> None:
        if self.bounds is not None:
            action = np.clip(action, *self.bounds)
        if self.max_step is not None and self.last_action is not None:
            action = self.last_action + np.clip(action - self.last_action, -self.max_step, self.max_step)
        try:
            self.robot.send_action(action)
        except Exception as e:
            raise LoopError(f"robot.send_action failed: {e}") from e
        self.last_action = action

    def _miss(self, k: int) -> None:
        self.record.misses += 1
        action = self.on_miss(k) if self.on_miss else self.last_action
        if action is not None:
            self._send(action)

    def _observe(self) -> dict:
        try:
            return self.robot.get_observation()
        except Exception as e:
            raise LoopError(f"robot.get_observation failed: {e}") from e

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise LoopError(f"inference failed: {type(err).__name__}: {err}") from err

    # -- sync ------------------------------------------------------------------------------------------
    def _sync_tick(self, k: int) -> None:
        obs = self._observe()
        try:
            action = self.policy.select_action(obs)
        except ObservationError:
            self.record.rejected_observations += 1
            return self._miss(k)
        if self.policy.timings.get("total"):
            self.record.inference.append(self.policy.timings["total"])
        self._send(action)

    # -- async -----------------------------------------------------------------------------------------
    def _async_init(self) -> None:
        self._cond = threading.Condition()
        self._queue: list[np.ndarray] = []
        self._latest: tuple[int, float, dict] | None = None
        self._tick = 0
        n = int(getattr(self.policy, "n_action_steps", 1) or 1)
        self._refill = self.refill_at if self.refill_at is not None else max(1, n // 2)

    def _async_tick(self, k: int) -> None:
        obs = self._observe()
        with self._cond:
            self._tick = k
            self._latest = (k, time.perf_counter(), obs)
            action = self._queue.pop(0) if self._queue else None
            self.record.queue_depth.append(len(self._queue))
            if len(self._queue) <= self._refill:
                self._cond.notify()
        if action is None:
            self._miss(k)
        else:
            self._send(action)

    def _inference_worker(self) -> None:
        try:
            while not self._stop.is_set():
                with self._cond:
                    while not self._stop.is_set() and (self._latest is None or len(self._queue) > self._refill):
                        self._cond.wait(timeout=0.1)
                    if self._stop.is_set():
                        return
                    k0, t_obs, obs = self._latest
                    self._latest = None
                self._infer(k0, t_obs, obs)
        except BaseException as e:  # surfaced by the control thread, never swallowed
            self._error = e
            self._stop.set()

    def _infer(self, k0: int, t_obs: float, obs: dict) -> None:
        start = time.perf_counter()
        try:
            chunk = np.asarray(self.policy.predict_action_chunk(obs))
        except ObservationError:
            self.record.rejected_observations += 1
            return
        self.record.inference.append(time.perf_counter() - start)
        self.record.observation_age.append(time.perf_counter() - t_obs)
        chunk = chunk.reshape(-1, chunk.shape[-1])                                  # (T, A)
        n = int(getattr(self.policy, "n_action_steps", len(chunk)) or len(chunk))
        with self._cond:
            # actions for ticks that passed while inferring are in the past: start at the current tick
            delay = self._tick + 1 - k0
            self._queue = list(chunk[delay:n]) if delay < n else []
            self.record.chunks += 1


def _action_bounds(policy) -> tuple[np.ndarray, np.ndarray] | None:
    stats = policy.bundle.stats().get(policy.action_key, {})
    if "min" in stats and "max" in stats:
        return stats["min"], stats["max"]
    return None

