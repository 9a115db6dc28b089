"""Antialiased bicubic resize (a = -0.5, PIL's and torch's `antialias=True` filter) in numpy, separable.

GR00T's Eagle image processor resizes uint8 frames with torchvision (bicubic, antialias) to its tile size. torch's
uint8 path is reproduced here: a horizontal pass then a vertical one (only those whose size changes), each with its
weights quantized to int16 at the largest precision that fits, integer accumulation from half an LSB, and the
result shifted back and clipped to uint8 between the passes. Frames already at the tile size are not resized
(neither does torchvision).
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


def _int16(w: np.ndarray) -> tuple[np.ndarray, int]:
    """torch's _compute_index_ranges_int16_weights: (round-half-away(w * 2^p) as int64, p), p the largest < 22
    with round(max(w) * 2^(p+1)) < 2^15."""
    p, top = 0, float(w.max())
    while p < 22 and int(0.5 + top * (1 << (p + 1))) < (1 << 15):
        p += 1
    v = w * (1 << p)
    return np.where(v < 0, np.trunc(v - 0.5), np.trunc(v + 0.5)).astype(np.int64), p


def _pass(x: np.ndarray, w: np.ndarray, axis: int) -> np.ndarray:
    """One separable pass over `axis` of int64 pixels x, in fixed point -> uint8-valued int64."""
    wi, p = _int16(w)
    acc = np.tensordot(np.moveaxis(x, axis, -1), wi.T, axes=1) + (1 << (p - 1))
    return np.moveaxis(np.clip(acc >> p, 0, 255), -1, axis)


def resize_bicubic_u8(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """img (B, C, H, W) uint8-valued float32 -> (B, C, height, width) uint8-valued float32."""
    if img.shape[-2:] == (height, width):
        return img
    x = img.astype(np.int64)
    if x.shape[-1] != width:
        x = _pass(x, _weights(x.shape[-1], width), -1)
    if x.shape[-2] != height:
        x = _pass(x, _weights(x.shape[-2], height), -2)
    return x.astype(np.float32)
