"""Action chunks keyed by control step: the buffer the control thread pops from and the inference thread
merges into, the merge strategies, and the latency tracker RTC's `inference_delay` comes from.

Steps are tick slots of the control clock (step k is due at t0 + k / fps). A chunk computed from an
observation taken when step `s` was next is meant for steps s, s+1, …: when it arrives at step m > s, its
first m - s actions are in the past and are never sent.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from typing import Callable, Union

import numpy as np

Aggregate = Callable[[np.ndarray, np.ndarray], np.ndarray]   # (old (n, A), new (n, A)) -> (n, A)

# LeRobot's async client names (lerobot/async_inference/configs.py), old/new weights included
AGGREGATES: dict[str, Aggregate] = {
    "weighted_average": lambda old, new: 0.3 * old + 0.7 * new,
    "average": lambda old, new: 0.5 * old + 0.5 * new,
    "conservative": lambda old, new: 0.7 * old + 0.3 * new,
}
# "replace": the newest chunk wins from the step it arrives at (= LeRobot's "latest_only" and RTC's merge)
# "append": the queue runs out first; the new chunk only supplies the steps after it
MERGES = ("replace", "latest_only", "append", "rtc", *AGGREGATES)
Merge = Union[str, Aggregate]


def check_merge(merge: Merge) -> Merge:
    if callable(merge) or merge in MERGES:
        return merge
    raise ValueError(f"merge={merge!r}: expected one of {list(MERGES)} or a callable (old, new) -> merged")


def delay_steps(latency: float, fps: float) -> int:
    """Ticks that pass during `latency` seconds: ceil(latency * fps), as LeRobot's RTC computes it."""
    return max(0, math.ceil(latency * fps - 1e-9))


class LatencyTracker:
    """Inference latencies (seconds) over a sliding window; `max()` feeds RTC's inference_delay."""

    def __init__(self, window: int = 100):
        self._values: deque[float] = deque(maxlen=window)
        self._lock = threading.Lock()

    def add(self, latency: float) -> None:
        if latency >= 0:
            with self._lock:
                self._values.append(float(latency))

    def max(self) -> float:
        with self._lock:
            return max(self._values, default=0.0)

    def __len__(self) -> int:
        return len(self._values)


class ChunkBuffer:
    """Thread-safe actions for steps next_step, next_step+1, … (robot units, before any clamping).

    Holds `actions` (n, A) for the steps [start, start + n), with the id of the chunk each came from and
    its index inside that chunk (provenance for the timing record and the tests).
    """

    def __init__(self, merge: Merge = "replace"):
        self.merge_kind = check_merge(merge)
        self.lock = threading.Lock()
        self.next_step = 0
        self.generation = 0          # grows with every clear(): a chunk started before it is not merged
        self._empty()

    def _empty(self) -> None:
        self.start = self.next_step
        self.actions: np.ndarray | None = None          # (n, A)
        self.chunk_ids = np.zeros(0, np.int64)          # (n,)
        self.indices = np.zeros(0, np.int64)            # (n,) index inside the source chunk

    def clear(self) -> None:
        """Forget every queued action (a new episode); the step counter keeps running."""
        with self.lock:
            self.generation += 1
            self._empty()

    def _drop_before(self, step: int) -> None:
        """Discard actions for steps < step (caller holds the lock)."""
        if self.actions is not None and step > self.start:
            cut = min(step - self.start, len(self.actions))
            self.actions, self.chunk_ids, self.indices = (self.actions[cut:], self.chunk_ids[cut:],
                                                          self.indices[cut:])
            self.start += cut
        if self.actions is None or len(self.actions) == 0:
            self.start = max(self.start, step)

    def pop(self, step: int) -> tuple[np.ndarray, int, int] | None:
        """The action for `step` as (action (A,), chunk id, index in chunk), or None when there is none.
        Steps before `step` are dropped and `step` counts as consumed either way."""
        with self.lock:
            self._drop_before(step)
            self.next_step = step + 1
            if self.actions is None or len(self.actions) == 0 or self.start != step:
                return None
            item = (self.actions[0].copy(), int(self.chunk_ids[0]), int(self.indices[0]))
            self._drop_before(step + 1)
            return item

    def remaining(self) -> int:
        """Actions queued for steps >= next_step."""
        with self.lock:
            if self.actions is None:
                return 0
            return max(0, self.start + len(self.actions) - max(self.start, self.next_step))

    def snapshot(self) -> tuple[int, np.ndarray | None, int]:
        """(next_step, leftover (n, A) for steps >= next_step or None, generation): taken atomically before
        an inference."""
        with self.lock:
            self._drop_before(self.next_step)
            left = None if self.actions is None or len(self.actions) == 0 else self.actions.copy()
            return self.next_step, left, self.generation

    def merge(self, chunk: np.ndarray, obs_step: int, chunk_id: int, generation: int | None = None) -> dict:
        """Merge `chunk` (T, A), computed from an observation taken when `obs_step` was next (and the buffer
        was at `generation`, when given: a chunk from before a clear() is dropped as stale).

        Returns {"at_step": next step at merge time, "delay": steps already past (never sent),
        "merged": actions now queued from this chunk, "stale": True when nothing of it can be used}.
        """
        with self.lock:
            self._drop_before(self.next_step)
            now = self.next_step
            delay = max(0, now - obs_step)
            old_gen = generation is not None and generation != self.generation
            info = {"at_step": now, "delay": delay, "merged": 0, "stale": old_gen or delay >= len(chunk)}
            if info["stale"]:
                return info
            new = np.asarray(chunk[delay:], dtype=np.float32)
            new_ids = np.full(len(new), chunk_id, np.int64)
            new_idx = np.arange(delay, len(chunk), dtype=np.int64)
            old_n = 0 if self.actions is None else len(self.actions)
            if self.merge_kind in ("replace", "latest_only", "rtc") or old_n == 0:
                self.actions, self.chunk_ids, self.indices = new, new_ids, new_idx
            elif self.merge_kind == "append":
                self.actions = np.concatenate([self.actions, new[old_n:]])
                self.chunk_ids = np.concatenate([self.chunk_ids, new_ids[old_n:]])
                self.indices = np.concatenate([self.indices, new_idx[old_n:]])
            else:
                fn = AGGREGATES[self.merge_kind] if isinstance(self.merge_kind, str) else self.merge_kind
                n = min(old_n, len(new))                         # overlapping steps [now, now + n)
                mixed = np.asarray(fn(self.actions[:n], new[:n]), dtype=np.float32)
                self.actions = np.concatenate([mixed, new[n:]])  # LeRobot drops old steps the new chunk lacks
                self.chunk_ids, self.indices = new_ids, new_idx
            self.start = now
            info["merged"] = int(len(new) if self.merge_kind != "append" else len(self.actions) - old_n)
            return info
