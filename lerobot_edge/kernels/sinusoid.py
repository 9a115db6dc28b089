"""Sinusoidal position tables used by ACT (and later policies), in numpy so the host and the exported graph
use the same numbers: they are constants of a bundle, computed once at export."""

from __future__ import annotations

import math

import numpy as np


def sinusoid_table_1d(num_positions: int, dim: int) -> np.ndarray:
    """(num_positions, dim): even channels sin(p / 10000^(2(i//2)/dim)), odd channels cos (ACT's VAE table)."""
    pos = np.arange(num_positions, dtype=np.float64)[:, None]
    inv = np.power(10000.0, 2 * (np.arange(dim) // 2) / dim)[None, :]
    table = pos / inv  # (P, dim)
    table[:, 0::2] = np.sin(table[:, 0::2])
    table[:, 1::2] = np.cos(table[:, 1::2])
    return table.astype(np.float32)


def sinusoid_table_2d(height: int, width: int, dim: int, temperature: float = 10000.0) -> np.ndarray:
    """(2*dim, H, W) DETR-style 2-D embedding: `dim` channels for y then `dim` for x, positions normalized to
    (0, 2π] (ACT's camera-token embedding; eps 1e-6 as in ACT, computed in float32 as ACT does)."""
    two_pi, eps = np.float32(2 * math.pi), np.float32(1e-6)
    y = np.arange(1, height + 1, dtype=np.float32)
    x = np.arange(1, width + 1, dtype=np.float32)
    y = y / (y[-1] + eps) * two_pi
    x = x / (x[-1] + eps) * two_pi
    exponent = np.float32(2) * (np.arange(dim, dtype=np.float32) // 2) / np.float32(dim)
    inv = np.power(np.float32(temperature), exponent).astype(np.float32)
    def embed(r: np.ndarray) -> np.ndarray:  # (N,) -> (N, dim), interleaved sin/cos
        a = r[:, None] / inv
        return np.stack([np.sin(a[:, 0::2]), np.cos(a[:, 1::2])], axis=-1).reshape(len(r), dim)
    ey = np.broadcast_to(embed(y)[:, None, :], (height, width, dim))
    ex = np.broadcast_to(embed(x)[None, :, :], (height, width, dim))
    return np.concatenate([ey, ex], axis=-1).transpose(2, 0, 1).astype(np.float32)  # (H, W, 2d) -> (2d, H, W)
