"""LeRobot's pre/post-processing in numpy: per-feature normalization from the bundle's stats."""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import BundleError
from ..kernels.normalize import MODE_STATS, normalize, normalize_frames, unnormalize


class Normalizer:
    """Normalizes observation features and unnormalizes actions with LeRobot's formulas.

    modes: feature key -> MEAN_STD | MIN_MAX | QUANTILES | QUANTILE10 | IDENTITY.
    stats: feature key -> stat -> array (image stats shaped (3, 1, 1) so they broadcast over H, W).
    """

    def __init__(self, modes: dict[str, str], stats: dict[str, dict[str, np.ndarray]], legacy: bool = False,
                 image_keys: tuple[str, ...] = ()):
        self._fwd: dict[str, Callable] = {}
        self._frames: dict[str, Callable] = {}
        self._inv: dict[str, Callable] = {}
        for key, mode in modes.items():
            if mode == "IDENTITY":
                continue
            if mode not in MODE_STATS:
                raise BundleError(f"normalization of {key!r}: unknown mode {mode!r}")
            s = stats.get(key)
            if s is None or any(n not in s for n in MODE_STATS[mode]):
                raise BundleError(f"stats.safetensors lacks {MODE_STATS[mode]} for {key!r} ({mode})")
            s = {n: (v.reshape(-1, 1, 1) if key in image_keys and v.ndim == 1 else v) for n, v in s.items()}
            self._fwd[key] = lambda x, m=mode, s=s: normalize(x, m, s, legacy)
            self._inv[key] = lambda y, m=mode, s=s: unnormalize(y, m, s, legacy)
            if key in image_keys:
                self._frames[key] = lambda f, m=mode, s=s: normalize_frames(f, m, s, legacy)

    def normalize(self, key: str, x: np.ndarray) -> np.ndarray:
        f = self._fwd.get(key)
        return x if f is None else f(x).astype(np.float32, copy=False)

    def normalize_frames(self, key: str, frames: np.ndarray) -> np.ndarray:
        """uint8 camera frames (..., H, W, C) -> normalized float32 (..., C, H, W), as normalize(frames / 255)."""
        f = self._frames.get(key)
        return normalize_frames(frames, "IDENTITY", {}) if f is None else f(frames)

    def unnormalize(self, key: str, y: np.ndarray) -> np.ndarray:
        f = self._inv.get(key)
        return y if f is None else f(y).astype(np.float32, copy=False)
