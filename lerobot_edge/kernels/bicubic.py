"""Antialiased bicubic resize (a = -0.5, PIL's and torch's `antialias=True` filter) in numpy, separable.

GR00T's Eagle image processor resizes uint8 frames with torchvision (bicubic, antialias) to its tile size; torch's
uint8 path uses fixed-point weights, this one float64 weights rounded to uint8 at the end, so a pixel may differ by
one level where the exact value sits on a rounding boundary. Frames already at the tile size are not resized
(neither does torchvision), which is the exact path.
"""

from __future__ import annotations

import numpy as np


def _cubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    x = np.abs(x)
    return np.where(x < 1, ((a + 2) * x - (a + 3)) * x * x + 1,
                    np.where(x < 2, (((x - 5) * x + 8) * x - 4) * a, 0.0))


def _weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) row-normalized interpolation matrix."""
    scale = n_in / n_out
    support = 2.0 * max(scale, 1.0)
    inv = 1.0 / max(scale, 1.0)
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        center = scale * (i + 0.5)
        lo, hi = max(int(center - support + 0.5), 0), min(int(center + support + 0.5), n_in)
        j = np.arange(lo, hi)
        w = _cubic((j - center + 0.5) * inv)
        m[i, lo:hi] = w / w.sum()
    return m


def resize_bicubic_u8(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """img (B, C, H, W) uint8-valued float32 -> (B, C, height, width), rounded and clipped to [0, 255]."""
    if img.shape[-2:] == (height, width):
        return img
    wy, wx = _weights(img.shape[-2], height), _weights(img.shape[-1], width)
    out = np.einsum("oh,bchw,pw->bcop", wy, img.astype(np.float64), wx)
    return np.clip(np.rint(out), 0, 255).astype(np.float32)
