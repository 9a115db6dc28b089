"""Real-Time Chunking guidance in numpy, exactly as LeRobot 0.6's RTCProcessor computes it ("guided" mode).

LeRobot computes its correction with autograd, but its velocity `v` is computed before `x_t` requires grad,
so d(x1)/d(x_t) is the identity and the correction equals the weighted error itself. This module does that
arithmetic directly (float32, the same order of operations), so any backend's denoise graph can be guided.
"exact" mode gets its correction (the true VJP) from the bundle's `denoise_rtc` graph and applies it with
`apply_correction`, the same guidance weight and prefix schedule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SCHEDULES = ("ZEROS", "ONES", "LINEAR", "EXP")


@dataclass
class RTCOptions:
    prefix_attention_schedule: str = "LINEAR"
    max_guidance_weight: float = 10.0
    execution_horizon: int = 10

    def __post_init__(self):
        self.prefix_attention_schedule = str(self.prefix_attention_schedule).upper()
        if self.prefix_attention_schedule not in SCHEDULES:
            raise ValueError(f"RTC schedule {self.prefix_attention_schedule!r}: expected one of {SCHEDULES}")
        if self.max_guidance_weight <= 0:
            raise ValueError(f"RTC max_guidance_weight must be positive, got {self.max_guidance_weight}")
        if int(self.execution_horizon) < 0:
            raise ValueError(f"RTC execution_horizon must be >= 0, got {self.execution_horizon}")


def _linweights(start: int, end: int, total: int) -> np.ndarray:
    steps = total - max(total - end, 0) - start
    if end <= start or steps <= 0:
        return np.zeros(0, np.float32)
    return np.linspace(1, 0, steps + 2, dtype=np.float32)[1:-1]


def prefix_weights(start: int, end: int, total: int, schedule: str) -> np.ndarray:
    """(total,) float32 weights over the chunk: 1 on the frozen prefix [0, start), decaying to 0 at `end`."""
    start = min(start, end)
    if schedule == "ZEROS":
        w = np.zeros(total, np.float32)
        w[:start] = 1.0
        return w
    if schedule == "ONES":
        w = np.ones(total, np.float32)
        w[end:] = 0.0
        return w
    lin = _linweights(start, end, total)
    if schedule == "EXP":
        lin = (lin * (np.expm1(lin) / np.float32(math.e - 1))).astype(np.float32)
    parts = [np.ones(max(min(start, total), 0), np.float32), lin, np.zeros(max(total - end, 0), np.float32)]
    return np.concatenate(parts).astype(np.float32)


def guidance_weight(time: float, max_weight: float) -> np.float32:
    """min((t² + (1-t)²) / (t (1-t)), max) in LeRobot's float32 form (tau = 1 - t; inf -> max)."""
    tau = np.float32(1 - time)
    one = np.float32(1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_r2 = ((one - tau) ** 2 + tau ** 2) / ((one - tau) ** 2)
        c = (one - tau) / tau
        c = np.float32(max_weight) if np.isinf(c) else c
        gw = c * inv_r2
    gw = np.float32(max_weight) if not np.isfinite(gw) else gw
    return np.float32(min(gw, np.float32(max_weight)))


def guide(x_t: np.ndarray, v_t: np.ndarray, time: float, prev: np.ndarray, weights: np.ndarray,
          max_weight: float) -> np.ndarray:
    """Guided velocity. x_t, v_t, prev: (B, T, A) normalized (prev zero-padded); weights (T,); time in (0, 1]."""
    x1 = x_t - np.float32(time) * v_t
    err = (prev - x1) * weights[None, :, None]
    return apply_correction(v_t, err, time, max_weight)


def apply_correction(v_t: np.ndarray, correction: np.ndarray, time: float, max_weight: float) -> np.ndarray:
    """v - gw(t) * correction, (B, T, A) float32; "guided" passes err, "exact" the VJP err^T d(x1)/d(x_t)."""
    return (v_t - guidance_weight(time, max_weight) * correction).astype(np.float32)


def pad_leftover(prev: np.ndarray, batch: int, chunk: int, dim: int) -> np.ndarray:
    """(T', A') or (B, T', A') -> (B, chunk, dim) zero-padded, as LeRobot pads the leftover."""
    prev = prev[None] if prev.ndim == 2 else prev
    if prev.shape[1] > chunk or prev.shape[2] > dim:
        raise ValueError(f"prev_chunk_left_over {prev.shape} is larger than the chunk ({chunk}, {dim})")
    out = np.zeros((batch, chunk, dim), np.float32)
    out[:, : prev.shape[1], : prev.shape[2]] = prev
    return out
