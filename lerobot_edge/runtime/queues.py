"""Action queue and ACT's temporal ensembling, as LeRobot computes them (numpy)."""

from __future__ import annotations

from collections import deque

import numpy as np


class ActionQueue:
    """FIFO of per-step actions (B, A); refilled with the first n_action_steps of each chunk."""

    def __init__(self) -> None:
        self._q: deque[np.ndarray] = deque()

    def __len__(self) -> int:
        return len(self._q)

    @property
    def batch(self) -> int | None:
        """Batch size B of the queued actions (None when empty)."""
        return self._q[0].shape[0] if self._q else None

    def clear(self) -> None:
        self._q.clear()

    def extend_chunk(self, chunk: np.ndarray, n: int) -> None:
        """chunk (B, T, A): queue chunk[:, 0], …, chunk[:, n-1]."""
        self._q.extend(np.ascontiguousarray(chunk[:, i]) for i in range(min(n, chunk.shape[1])))

    def pop(self) -> np.ndarray:
        return self._q.popleft()


class TemporalEnsembler:
    """Online weighted mean over overlapping chunks with w_i = exp(-coeff * i), i = 0 for the oldest chunk.

    Keeps for each future step the running mean and how many chunks contributed to it, exactly as
    LeRobot's ACTTemporalEnsembler does (including its cumulative-weight update).
    """

    def __init__(self, coeff: float, chunk_size: int):
        self.weights = np.exp(-coeff * np.arange(chunk_size, dtype=np.float32)).astype(np.float32)
        self.cumsum = np.cumsum(self.weights).astype(np.float32)
        self.reset()

    def reset(self) -> None:
        self.actions: np.ndarray | None = None   # (B, T', A) running means for steps not yet executed
        self.counts: np.ndarray | None = None    # (T', 1) chunks contributing to each step

    def update(self, chunk: np.ndarray) -> np.ndarray:
        """chunk (B, T, A) -> the ensembled action for this step (B, A)."""
        if self.actions is None:
            self.actions = chunk.astype(np.float32, copy=True)
            self.counts = np.ones((chunk.shape[1], 1), dtype=np.int64)
        else:
            c = self.counts
            avg = self.actions * self.cumsum[c - 1]
            avg += chunk[:, :-1] * self.weights[c]
            avg /= self.cumsum[c]
            self.counts = np.concatenate([np.minimum(c + 1, len(self.weights)), np.ones_like(c[-1:])])
            self.actions = np.concatenate([avg, chunk[:, -1:]], axis=1)
        action, self.actions, self.counts = self.actions[:, 0], self.actions[:, 1:], self.counts[1:]
        return action
