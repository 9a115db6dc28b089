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
    y = _apply(np.subtract, x, a)   # a fresh array: the rest in place, the formulas' operations and order
    if mode == "MEAN_STD":
        _apply(np.divide, y, b + np.float32(EPS), out=y)
        return y
    y *= np.float32(2.0)
    _apply(np.divide, y, _span(a, b, legacy), out=y)
    y -= np.float32(1.0)
    return y


def _apply(op, x: np.ndarray, v: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """op(x, v) (into `out`). Per-channel image stats (C, 1, 1) go one channel plane at a time as scalars:
    numpy's broadcast of a (C, 1, 1) operand over (B, C, H, W) runs ~6x slower than a loop of scalar ops."""
    v = np.asarray(v)
    if not (x.ndim >= 3 and v.ndim == 3 and v.shape[1:] == (1, 1) and x.shape[-3] == v.shape[0]
            and x.dtype == v.dtype == np.float32):
        return op(x, v, out=out)
    out = np.empty(x.shape, np.float32) if out is None else out
    for c in range(v.shape[0]):
        op(x[..., c, :, :], v[c, 0, 0], out=out[..., c, :, :])
    return out


def unnormalize(y: np.ndarray, mode: str, stats: dict[str, np.ndarray], legacy: bool = False) -> np.ndarray:
    """Inverse of `normalize`."""
    if mode == "IDENTITY":
        return y
    a, b = (stats[k] for k in MODE_STATS[mode])
    if mode == "MEAN_STD":
        return y * b + a
    return (y + np.float32(1.0)) / np.float32(2.0) * _span(a, b, legacy) + a


def normalize_frames(frames: np.ndarray, mode: str, stats: dict[str, np.ndarray], legacy: bool = False
                     ) -> np.ndarray:
    """uint8 camera frames (..., H, W, C) -> normalized float32 (..., C, H, W): `normalize(frames / 255)` with
    the same float32 operations in the same order (bit-identical), computed in place one channel plane at a
    time into one output array: no float temporaries of the whole image, and the plane stays in cache.
    `stats`: (C, 1, 1) or (C, H, W) float32 per stat."""
    *lead, h, w, c = frames.shape
    out = np.empty((*lead, c, h, w), np.float32)
    if mode != "IDENTITY":
        a, b = (np.asarray(stats[k], np.float32) for k in MODE_STATS[mode])
        den = (b + np.float32(EPS)) if mode == "MEAN_STD" else _span(a, b, legacy).astype(np.float32)
    for ch in range(c):
        o = out[..., ch, :, :]
        np.divide(frames[..., ch], np.float32(255.0), out=o)
        if mode == "IDENTITY":
            continue
        o -= a[ch] if a[ch].size > 1 else a[ch].reshape(-1)[0]   # a scalar: see _inplace
        if mode != "MEAN_STD":
            o *= np.float32(2.0)
        o /= den[ch] if den[ch].size > 1 else den[ch].reshape(-1)[0]
        if mode != "MEAN_STD":
            o -= np.float32(1.0)
    return out


def action_scale(mode: str, stats: dict[str, np.ndarray]) -> np.ndarray | float:
    """Per-dimension scale that turns a robot-unit error into a normalized one (for tolerances)."""
    if mode == "MEAN_STD":
        return stats["std"]
    if mode in MODE_STATS:
        lo, hi = (stats[k] for k in MODE_STATS[mode])
        return np.maximum((hi - lo) / 2.0, EPS)
    return 1.0
