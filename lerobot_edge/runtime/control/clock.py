"""ControlLoop: a fixed-rate control clock that keeps its rate however long inference takes.

sync:  each tick observe -> policy.select_action -> send. A tick whose work runs past the next tick's due
       time is an overrun (counted, logged at debug level).
async: a background thread (inference.py) computes a new chunk with policy.predict_action_chunk whenever
       the queue falls to `queue_threshold`; the control thread (the caller's) sends one action per tick.
       Chunks merge by control step (chunks.py); with RTC the policy also gets `prev_chunk_left_over` (the
       unexecuted leftover, robot units, before any clamping) and `inference_delay = ceil(max_latency * fps)`.

A tick with no fresh action is a miss: the last action is held (default) or `on_miss(step, last)` decides.
A rejected observation (ObservationError) or a non-finite chunk is counted and never produces an action;
`max_rejections` of them in a row, or any other error in either thread, stops the loop and is raised to
the caller with its own type. A remote policy server that is down or too slow (BackendUnavailableError) is
counted as `unavailable` and retried after its backoff; the loop holds meanwhile and never stops for it. Ticks are slots of the clock: a tick late by a whole period or more skips
the slots it missed (counted) instead of sending a burst of catch-up actions.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import warnings
from typing import Any, Callable

import numpy as np

from ...errors import ObservationError
from .chunks import ChunkBuffer, LatencyTracker, Merge, check_merge
from .inference import InferenceThread
from .robots import CAPTURE_TIME, Robot
from .safety import TOLERATED, UNAVAILABLE, ActionLimits, check_finite
from .timing import TimingRecord

log = logging.getLogger(__name__)

OnMiss = Callable[[int, "np.ndarray | None"], "np.ndarray | None"]


def supports_rtc(policy: Any) -> bool:
    """Whether the loop passes RTC's kwargs and merges with "rtc": the policy's `supports_rtc` (EdgePolicy: a
    flow-matching policy loaded with rtc != "off"); False for an object without that attribute."""
    return bool(getattr(policy, "supports_rtc", False))


def _add_note(err: BaseException, note: str) -> None:
    if hasattr(err, "add_note"):   # Python >= 3.11
        err.add_note(note)


class ControlLoop:
    """Drive `robot` with `policy` at `fps`. Use `run(duration)`, or `with loop: loop.run(...)`.

    policy: an EdgePolicy (or any object with reset/select_action/predict_action_chunk, numpy in/out).
    robot: the `Robot` protocol; the loop never connects or disconnects it.
    merge: "replace" (default; = "latest_only") | "append" | "weighted_average" | "average" |
        "conservative" | callable(old (n, A), new (n, A)) -> (n, A); forced to "rtc" when RTC applies.
    queue_threshold: a float is a fraction of the chunk length, an int a number of actions.
    rtc: None = auto (`supports_rtc`), True/False to force.
    limits: ActionLimits applied to every sent action (ActionLimits.from_stats(policy.bundle.stats()["action"])).
    status: called with a one-line status every `status_interval` seconds (from the control thread).
    """

    def __init__(self, policy: Any, robot: Robot, fps: float = 30.0, mode: str = "async", *,
                 merge: Merge = "replace", queue_threshold: float | int = 0.5, actions_per_chunk: int | None = None,
                 rtc: bool | None = None, on_miss: str | OnMiss = "hold", limits: ActionLimits | None = None,
                 max_observation_age: float | None = None, max_rejections: int = 10, latency_window: int = 100,
                 max_records: int = 100_000, status: Callable[[str], None] | None = None,
                 status_interval: float = 1.0, reset_policy: bool = True, startup_timeout: float = 120.0,
                 stop_timeout: float = 30.0):
        _check_args(mode, fps, on_miss, queue_threshold)
        self.policy, self.robot, self.fps, self.mode = policy, robot, float(fps), mode
        self.rtc = supports_rtc(policy) if rtc is None else bool(rtc)
        self.merge = "rtc" if self.rtc else check_merge(merge)
        self.queue_threshold, self.actions_per_chunk = queue_threshold, actions_per_chunk
        self.on_miss, self.limits = on_miss, limits
        self.max_observation_age, self.max_rejections = max_observation_age, max_rejections
        self.status, self.status_interval = status, status_interval
        self.reset_policy, self.startup_timeout, self.stop_timeout = reset_policy, startup_timeout, stop_timeout
        self.buffer = ChunkBuffer(self.merge)
        self.tracker = LatencyTracker(latency_window)
        self.record = TimingRecord(fps, max_records)
        self._robot_lock = (contextlib.nullcontext() if getattr(robot, "thread_safe", False)
                            else threading.RLock())
        self._stop = threading.Event()
        self.inference = InferenceThread(self)   # started in async mode only
        self._error: BaseException | None = None
        self._started = self._stopped = False
        self._t0 = self._t_end = None
        self._last_action: np.ndarray | None = None
        self._rejected_in_row = 0
        self._episode = getattr(robot, "episode_index", 0)
        self.stopped_by: str | None = None
        self.leaked_threads = 0
        if mode == "async" and getattr(policy, "temporal_ensemble_coeff", None) is not None:
            warnings.warn("temporal ensembling belongs to select_action (sync mode); in async mode chunks merge "
                          f"with merge={self.merge!r}", stacklevel=2)

    # -- lifecycle -----------------------------------------------------------------------------------
    def __enter__(self) -> "ControlLoop":
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.stop(raise_pending=exc_type is None)

    def start(self) -> None:
        """Reset the policy; in async mode start the inference thread and wait for the first chunk (its
        latency is not tracked: the clock starts after it)."""
        if self._started:
            raise RuntimeError("a ControlLoop runs once; make a new one")
        self._started = True
        if self.reset_policy:
            self.policy.reset()
        if self.mode == "async":
            self.inference.start()
            try:
                self._wait_first_chunk()
            except BaseException:
                self.stop(raise_pending=False)
                raise
        self._t0 = time.perf_counter()

    def _wait_first_chunk(self) -> None:
        deadline = time.perf_counter() + self.startup_timeout
        while not self.inference.first.wait(0.05):
            if self._error is not None:
                self._raise_pending()
            if time.perf_counter() > deadline:
                raise TimeoutError(f"no first action chunk within {self.startup_timeout:g} s")

    def request_stop(self) -> None:
        """Ask the loop to stop after the current tick (thread-safe; safe from a signal handler)."""
        self.stopped_by = self.stopped_by or "request"
        self._stop.set()
        self.inference.wake()

    def stop(self, raise_pending: bool = True) -> None:
        """Stop the clock and join the inference thread (waiting up to stop_timeout for a running inference;
        its chunk is never merged). Raises an error the inference thread met, unless raise_pending=False."""
        if not self._stopped:
            self._stopped = True
            self._stop.set()
            self.inference.wake()
            self._t_end = self._t_end or time.perf_counter()
            if self.inference.join(self.stop_timeout):
                self.leaked_threads = 1
                warnings.warn(f"the inference thread is still running {self.stop_timeout:g} s after stop "
                              "(a stuck backend call); it is a daemon thread", stacklevel=2)
        if raise_pending:
            self._raise_pending()

    def _raise_pending(self) -> None:
        err, self._error = self._error, None
        if err is not None:
            raise err

    def _fail(self, err: BaseException, where: str) -> None:
        _add_note(err, f"(raised in the control loop's {where})")
        if self._error is None:
            self._error = err
        self._stop.set()
        self.inference.wake()

    # -- the clock -------------------------------------------------------------------------------------
    def run(self, duration: float | None = None) -> dict:
        """Tick until `duration` seconds have passed (None: until request_stop()), then return the report.
        Starts and stops the loop itself unless it was started already (context manager)."""
        owns = not self._started
        if owns:
            self.start()
        try:
            self._clock(duration)
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                self.stopped_by = "interrupt"
            self.stopped_by = self.stopped_by or "error"  # e.g. the robot raising in the control thread
            self._t_end = self._t_end or time.perf_counter()
            if owns:
                self.stop(raise_pending=False)
            raise
        if owns:
            self.stop()
        else:
            self._raise_pending()
        return self.report()

    def _clock(self, duration: float | None) -> None:
        period, t0, step = 1.0 / self.fps, self._t0, 0
        next_status = t0 + self.status_interval
        while not self._stop.is_set():
            end = duration is not None and step * period >= duration - 1e-9
            target = t0 + (duration if end else step * period)
            while (rem := target - time.perf_counter()) > 0 and not self._stop.wait(rem):
                pass
            if end:
                self.stopped_by = self.stopped_by or "duration"
            if end or self._stop.is_set():
                break
            late = time.perf_counter() - target
            if late >= period:                          # missed whole slots: skip them, no catch-up burst
                skip = int(late // period)
                self.record.add("skipped_ticks", skip)
                step, target = step + skip, target + skip * period
            (self._tick_sync if self.mode == "sync" else self._tick_async)(step, target)
            self._check_episode()
            step += 1
            if self.status is not None and time.perf_counter() >= next_status:
                self.status(self.record.status_line(time.perf_counter() - t0))
                next_status += self.status_interval
        self.stopped_by = self.stopped_by or ("error" if self._error is not None else "request")
        self._t_end = time.perf_counter()

    def _check_episode(self) -> None:
        episode = getattr(self.robot, "episode_index", 0)
        if episode != self._episode:   # a new episode: no action planned in the old one is sent
            self._episode = episode
            if self.mode == "sync":
                self.policy.reset()
            else:
                self.buffer.clear()
                self.inference.reset_pending = True

    # -- ticks ---------------------------------------------------------------------------------------------
    def _tick_async(self, step: int, target: float) -> None:
        item = self.buffer.pop(step)
        chunk = index = -1
        if item is None:
            action, source = self._fallback(step)
        else:
            (action, chunk, index), source = item, "chunk"
        sent, limited = self._send(action)
        queue = self.buffer.remaining()
        if queue <= self.inference.threshold():
            self.inference.wake()
        self.record.tick(step=step, scheduled=target - self._t0, sent=sent - self._t0, source=source,
                         queue=queue, chunk=chunk, index=index, limited=limited)

    def _tick_sync(self, step: int, target: float) -> None:
        t_req = time.perf_counter()
        with self._robot_lock:
            obs = self.robot.get_observation()
        t_call = time.perf_counter()
        age = t_call - float(obs.get(CAPTURE_TIME, t_req))
        try:
            self._check_age(age)
            action, source = np.asarray(self.policy.select_action(obs), np.float32), "policy"
            check_finite(action)
            self._rejected_in_row = 0
        except UNAVAILABLE as e:                       # a remote server down: hold, count, go on
            self.record.add("unavailable")
            log.debug("tick %d: %s", step, e)
            action, source = self._fallback(step)
        except TOLERATED as e:
            self._reject(e)
            action, source = self._fallback(step)
        latency = time.perf_counter() - t_call
        sent, limited = self._send(action)
        overrun = sent - target > 1.0 / self.fps
        if overrun:
            log.debug("tick %d overran: %.1f ms after its due time", step, (sent - target) * 1e3)
        self.record.tick(step=step, scheduled=target - self._t0, sent=sent - self._t0, source=source,
                         obs_age=age, latency=latency, overrun=overrun, limited=limited)

    def _fallback(self, step: int) -> tuple[np.ndarray | None, str]:
        if self.on_miss == "hold":
            return self._last_action, ("hold" if self._last_action is not None else "none")
        action = self.on_miss(step, None if self._last_action is None else self._last_action.copy())
        return (None, "none") if action is None else (np.asarray(action, np.float32), "callback")

    def _send(self, action: np.ndarray | None) -> tuple[float, bool]:
        """Apply the limits and send; -> (time sent, whether the limits changed the action)."""
        limited = False
        if action is not None:
            if self.limits is not None and self.limits.active:
                action, limited = self.limits.apply(action, self._last_action)
            with self._robot_lock:
                self.robot.send_action(action)
            self._last_action = action
        return time.perf_counter(), limited

    def _check_age(self, age: float) -> None:
        if self.max_observation_age is not None and age > self.max_observation_age:
            raise ObservationError(f"the observation is {age * 1e3:.1f} ms old (limit "
                                   f"{self.max_observation_age * 1e3:.1f} ms): not used")

    def _reject(self, err: Exception) -> None:
        """A rejected observation or non-finite output: counted; too many in a row stop the loop."""
        self._rejected_in_row += 1
        if self.mode == "sync":
            self.record.add("rejected")
        log.warning("rejected (%d in a row): %s: %s", self._rejected_in_row, type(err).__name__, err)
        if self._rejected_in_row >= self.max_rejections:
            raise err

    # -- report ----------------------------------------------------------------------------------------------
    def report(self) -> dict:
        """{"config", "summary", "robot", "stopped_by", "duration_s", "leaked_threads", "ticks", "inferences"}."""
        end = self._t_end or time.perf_counter()
        elapsed = None if self._t0 is None else end - self._t0
        stats = getattr(self.robot, "stats", None)
        return {"config": self.config(), "summary": self.record.summary(elapsed=elapsed),
                "robot": stats() if callable(stats) else None, "stopped_by": self.stopped_by,
                "duration_s": None if elapsed is None else round(elapsed, 4),
                "leaked_threads": self.leaked_threads, "ticks": list(self.record.ticks),
                "inferences": list(self.record.inferences)}

    def config(self) -> dict:
        bundle = getattr(self.policy, "bundle", None)
        return {"fps": self.fps, "mode": self.mode, "rtc": self.rtc,
                "merge": self.merge if isinstance(self.merge, str) else getattr(self.merge, "__name__", "callable"),
                "queue_threshold": self.queue_threshold, "actions_per_chunk": self.actions_per_chunk,
                "on_miss": self.on_miss if isinstance(self.on_miss, str) else "callback",
                "limits": None if self.limits is None else self.limits.describe(),
                "max_observation_age": self.max_observation_age, "policy": getattr(self.policy, "type", None),
                "backend": getattr(self.policy, "backend", None),
                "bundle": str(bundle.path) if bundle is not None else None}


def _check_args(mode: str, fps: float, on_miss: Any, queue_threshold: Any) -> None:
    if mode not in ("sync", "async"):
        raise ValueError(f"mode={mode!r}: expected 'sync' or 'async'")
    if not fps > 0:
        raise ValueError(f"fps={fps}: expected > 0")
    if on_miss != "hold" and not callable(on_miss):
        raise ValueError(f"on_miss={on_miss!r}: expected 'hold' or a callable (step, last_action) -> action")
    bad_fraction = isinstance(queue_threshold, float) and not 0 <= queue_threshold <= 1
    if bad_fraction or isinstance(queue_threshold, int) and queue_threshold < 0:
        raise ValueError(f"queue_threshold={queue_threshold}: a fraction in [0, 1] or a count >= 0")
