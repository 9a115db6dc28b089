"""The flow-matching time embedding of openpi / LeRobot (pi0, pi05, SmolVLA), computed on the host.

sin/cos of t·2π/period for periods spaced geometrically in [min_period, max_period], in float64 as LeRobot
computes it on CPU. It stays out of the graphs on purpose: arguments reach 2π/min_period ≈ 1571 rad, where
float32 arithmetic (what OpenVINO and fp16 engines turn float64 into) is off by ~1e-4.
"""

from __future__ import annotations

import math

import numpy as np


def flow_time_embedding(t: np.ndarray, dim: int, min_period: float, max_period: float) -> np.ndarray:
    """t (B,) float32 -> (B, dim) float32 [sin | cos]."""
    if dim % 2:
        raise ValueError(f"time embedding dimension {dim} must be even")
    fraction = np.linspace(0.0, 1.0, dim // 2, dtype=np.float64)
    period = min_period * (max_period / min_period) ** fraction
    arg = (1.0 / period * 2 * math.pi)[None, :] * np.asarray(t, np.float32).astype(np.float64)[:, None]  # (B, d/2)
    return np.concatenate([np.sin(arg), np.cos(arg)], axis=1).astype(np.float32)
