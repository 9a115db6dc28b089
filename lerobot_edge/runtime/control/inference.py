"""The async mode's inference thread: woken by the control clock when the queue falls to the threshold, it
observes, calls policy.predict_action_chunk (with RTC's `inference_delay` and `prev_chunk_left_over` when RTC
applies) and merges the chunk into the loop's ChunkBuffer by control step (chunks.py).

A rejected observation or a non-finite chunk is counted by the loop and merges nothing; any other error is
handed to the loop, which stops and raises it to the caller.
"""

from __future__ import annotations

import math
import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from .chunks import delay_steps
from .robots import CAPTURE_TIME
from .safety import TOLERATED, UNAVAILABLE, check_finite

if TYPE_CHECKING:
    from .clock import ControlLoop

THREAD_NAME = "lerobot-edge-inference"


class InferenceThread:
    """The background thread of one ControlLoop (started in async mode only).

    The loop owns the policy, the robot and its lock, the buffer, the records, the stop event and the
    rejection count; this owns the wake-up (`want`), the first-chunk signal (`first`), the chunk ids, the
    chunk length the threshold counts from and the pending policy reset of a new episode.
    """

    def __init__(self, loop: "ControlLoop"):
        self.loop = loop
        self.want, self.first = threading.Event(), threading.Event()
        self.thread: threading.Thread | None = None
        self.chunk_id = 0
        self.chunk_len = 0              # length of the first chunk (after actions_per_chunk)
        self.reset_pending = False      # a new episode: reset the policy before the next chunk

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
        self.thread.start()
        self.want.set()

    def wake(self) -> None:
        self.want.set()

    def join(self, timeout: float) -> bool:
        """Wait up to `timeout` s for the thread to end; -> whether it is still running (a stuck backend call)."""
        if self.thread is None:
            return False
        self.thread.join(timeout)
        return self.thread.is_alive()

    def threshold(self) -> int:
        """The queue length at or below which a new chunk is computed (a float: a fraction of the chunk)."""
        q = self.loop.queue_threshold
        if isinstance(q, float):
            return math.ceil(q * self.chunk_len) if self.chunk_len else 0
        return int(q)

    def _run(self) -> None:
        loop = self.loop
        try:
            while not loop._stop.is_set():
                self.want.wait(0.05)
                if loop._stop.is_set():
                    break
                self.want.clear()
                if loop.buffer.remaining() <= self.threshold():
                    self._infer_once()
        except BaseException as e:  # noqa: BLE001  (surfaced to the caller by stop()/run())
            loop._fail(e, "inference thread")

    def _infer_once(self) -> None:
        loop = self.loop
        if self.reset_pending:
            self.reset_pending = False
            loop.policy.reset()
        obs_step, leftover, generation = loop.buffer.snapshot()
        chunk_id, self.chunk_id = self.chunk_id, self.chunk_id + 1    # one id per attempt
        rec: dict[str, Any] = {"id": chunk_id, "obs_step": obs_step,
                               "leftover": 0 if leftover is None else len(leftover)}
        kwargs = {}
        if loop.rtc:
            kwargs = {"inference_delay": delay_steps(loop.tracker.max(), loop.fps), "prev_chunk_left_over": leftover}
            rec["inference_delay"] = kwargs["inference_delay"]
        t_req = time.perf_counter()
        try:
            chunk = self._observe_and_predict(rec, t_req, kwargs)
        except UNAVAILABLE as e:
            # the server is down: the clock holds the last action; retry after the policy's backoff
            loop.record.inference({**rec, "latency": time.perf_counter() - t_req, "unavailable": True,
                                   "error": f"{type(e).__name__}: {e}"})
            loop._stop.wait(min(1.0, max(0.01, float(getattr(e, "retry_after", 0.1)))))
            self.want.set()
            return
        except TOLERATED as e:
            loop.record.inference({**rec, "latency": time.perf_counter() - t_req,
                                   "error": f"{type(e).__name__}: {e}"})
            loop._reject(e)
            if not self.first.is_set():
                self.want.set()                        # the clock waits for a first chunk: try again now
            return
        loop._rejected_in_row = 0
        rec["latency"] = time.perf_counter() - t_req
        if loop._stop.is_set():
            return                                     # stopping: a late chunk is never merged
        rec.update(loop.buffer.merge(chunk, obs_step, chunk_id, generation))
        rec["stages"] = dict(getattr(loop.policy, "timings", None) or {})
        if self.first.is_set():
            loop.tracker.add(rec["latency"])           # the first chunk ran before the clock started
        loop.record.inference(rec)
        self.first.set()

    def _observe_and_predict(self, rec: dict, t_req: float, kwargs: dict) -> np.ndarray:
        loop = self.loop
        with loop._robot_lock:
            obs = loop.robot.get_observation()
        rec["obs_age"] = time.perf_counter() - float(obs.get(CAPTURE_TIME, t_req))
        loop._check_age(rec["obs_age"])
        return self._as_chunk(loop.policy.predict_action_chunk(obs, **kwargs))

    def _as_chunk(self, chunk: Any) -> np.ndarray:
        """-> (T, A) float32; a batch of one is unwrapped, anything else is an error."""
        a = np.asarray(chunk, np.float32)
        if a.ndim == 3 and a.shape[0] == 1:
            a = a[0]
        if a.ndim != 2 or a.shape[0] == 0:
            raise ValueError(f"predict_action_chunk returned shape {a.shape}: the loop needs (T, A) for one robot")
        check_finite(a)
        if self.loop.actions_per_chunk:
            a = a[: self.loop.actions_per_chunk]
        self.chunk_len = self.chunk_len or len(a)
        return a
