"""LeRobot's normalization modes, in numpy, with its exact formulas (eps = 1e-8, no clipping).

MEAN_STD:   y = (x - mean) / (std + eps)            x = y * std + mean
MIN_MAX:    y = 2 (x - min) / d - 1, d = max - min (d == 0 -> eps)   x = (y + 1) / 2 * d + min
QUANTILES:  as MIN_MAX with (q01, q99); QUANTILE10 with (q10, q90)
IDENTITY:   pass through
Legacy checkpoints (stats stored in model.safetensors) use the older MIN_MAX with `(max - min + eps)`.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-8

# mode -> the two stats it reads (low/center, high/scale)
MODE_STATS = {
    "MEAN_STD": ("mean", "std"),
    "MIN_MAX": ("min", "max"),
    "QUANTILES": ("q01", "q99"),
    "QUANTILE10": ("q10", "q90"),
}


def _span(lo: np.ndarray, hi: np.ndarray, legacy: bool) -> np.ndarray:
    if legacy:
        return hi - lo + EPS
    d = hi - lo
    return np.where(d == 0, np.float32(EPS), d).astype(np.float32)


def normalize(x: np.ndarray, mode: str, stats: dict[str, np.ndarray], legacy: bool = False) -> np.ndarray:
    """Normalize `x` (..., *feature_shape) with `stats` broadcastable to it."""
    if mode == "IDENTITY":
        return x
    a, b = (stats[k] for k in MODE_STATS[mode])
    if mode == "MEAN_STD":
        return (x - a) / (b + np.float32(EPS))
    return np.float32(2.0) * (x - a) / _span(a, b, legacy) - np.float32(1.0)


def unnormalize(y: np.ndarray, mode: str, stats: dict[str, np.ndarray], legacy: bool = False) -> np.ndarray:
    """Inverse of `normalize`."""
    if mode == "IDENTITY":
        return y
    a, b = (stats[k] for k in MODE_STATS[mode])
    if mode == "MEAN_STD":
        return y * b + a
    return (y + np.float32(1.0)) / np.float32(2.0) * _span(a, b, legacy) + a


def action_scale(mode: str, stats: dict[str, np.ndarray]) -> np.ndarray | float:
    """Per-dimension scale that turns a robot-unit error into a normalized one (for tolerances)."""
    if mode == "MEAN_STD":
        return stats["std"]
    if mode in MODE_STATS:
        lo, hi = (stats[k] for k in MODE_STATS[mode])
        return np.maximum((hi - lo) / 2.0, EPS)
    return 1.0
