"""What the loop never sends: non-finite actions (check_finite), actions from a rejected observation
(TOLERATED: counted and dropped, not fatal), and, optionally, actions outside limits applied right before
sending: a per-joint clamp to the dataset's action range and a per-tick maximum change (robot units, from the
bundle's stats)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ...errors import BackendUnavailableError, BundleError, NonFiniteActionError, ObservationError

TOLERATED = (ObservationError, NonFiniteActionError)   # counted and dropped; max_rejections in a row stop
# a remote policy server down or too slow: the loop holds, counts the miss and retries (never stops for it)
UNAVAILABLE = (BackendUnavailableError,)


def check_finite(a: np.ndarray) -> None:
    if not np.isfinite(a).all():
        raise NonFiniteActionError("the policy returned NaN/inf actions: not sent")


@dataclass
class ActionLimits:
    """low/high: (A,) clamp bounds or None; max_step: (A,) largest |a_t - a_{t-1}| per tick or None.

    The first action of a run has no predecessor and is only clamped. RTC's leftover is taken before these
    limits (the policy sees what it planned, not what was sent).
    """

    low: np.ndarray | None = None
    high: np.ndarray | None = None
    max_step: np.ndarray | None = None

    @classmethod
    def from_stats(cls, action_stats: Mapping[str, np.ndarray], *, clamp: bool = True,
                   max_step: float | None = None) -> "ActionLimits":
        """From the bundle's `stats()["action"]` (keys min/max): clamp to [min, max]; `max_step` is a
        fraction of the range (max - min) allowed per tick, e.g. 0.05."""
        if (clamp or max_step is not None) and not {"min", "max"} <= set(action_stats):
            raise BundleError("the bundle's stats have no action min/max: clamping and max-step limits need them "
                              f"(action stats present: {sorted(action_stats)})")
        if max_step is not None and not max_step > 0:
            raise ValueError(f"max_step={max_step}: expected a positive fraction of the action range")
        low = np.asarray(action_stats["min"], np.float32).reshape(-1) if clamp else None
        high = np.asarray(action_stats["max"], np.float32).reshape(-1) if clamp else None
        step = None
        if max_step is not None:
            span = (np.asarray(action_stats["max"], np.float32) - np.asarray(action_stats["min"], np.float32))
            step = np.float32(max_step) * span.reshape(-1)
        return cls(low, high, step)

    @property
    def active(self) -> bool:
        return self.low is not None or self.max_step is not None

    def apply(self, action: np.ndarray, previous: np.ndarray | None) -> tuple[np.ndarray, bool]:
        """action (A,) -> (limited action (A,), whether anything was changed). Entries past the stats' A (SAC's
        appended discrete gripper index) are passed through unchanged."""
        action = np.asarray(action, np.float32)
        out = action.copy()
        n = len(self.low) if self.low is not None else len(self.max_step) if self.max_step is not None else 0
        if self.max_step is not None and previous is not None:
            out[:n] = previous[:n] + np.clip(out[:n] - previous[:n], -self.max_step, self.max_step)
        if self.low is not None:
            out[:n] = np.clip(out[:n], self.low, self.high)
        return out, bool(np.any(out != action))

    def describe(self) -> dict:
        return {"clamp": self.low is not None,
                "max_step": None if self.max_step is None else [float(x) for x in self.max_step]}
