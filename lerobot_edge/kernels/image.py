"""VLA image resizing on the host, numerically like torch's F.interpolate(mode="bilinear",
align_corners=False, antialias=False) in float32, with the padding conventions of openpi (centered, pi0/pi05)
and SmolVLA (top-left)."""

from __future__ import annotations

import numpy as np


def bilinear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights along one axis (torch's area_pixel_compute_source_index, float32)."""
    scale = np.float32(n_in) / np.float32(n_out)                     # float, as torch's opmath_t
    # torch evaluates scale * (dst + 0.5) - 0.5 in double (dst + 0.5 is a double) and rounds once to float
    src = np.maximum(np.float64(scale) * (np.arange(n_out, dtype=np.float64) + 0.5) - 0.5, 0.0).astype(np.float32)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = i0 + (i0 < n_in - 1)
    l1 = np.clip(src - i0.astype(np.float32), 0, 1).astype(np.float32)
    return i0, i1, (np.float32(1) - l1).astype(np.float32), l1


def resize_bilinear(img: np.ndarray, height: int, width: int, out: np.ndarray | None = None) -> np.ndarray:
    """img (B, C, H, W) float32 -> (B, C, height, width). Along the width first, for every source row, then
    along the height (torch's order and float32 operations, so bit-identical to the per-output two-tap
    sums), with np.take and in-place updates: ~5-10x faster than gathering with fancy indices. `out`: a
    (B, C, height, width) float32 array (a view) to write into."""
    if img.shape[-2:] == (height, width):
        if out is None:
            return img.astype(np.float32, copy=False)
        out[...] = img
        return out
    img = np.asarray(img, np.float32)
    h0, h1, hl0, hl1 = bilinear_taps(img.shape[-2], height)
    w0, w1, wl0, wl1 = bilinear_taps(img.shape[-1], width)
    cols = np.take(img, w0, axis=-1)                                               # (B, C, H, width)
    cols *= wl0
    right = np.take(img, w1, axis=-1)
    right *= wl1
    cols += right
    top = np.take(cols, h0, axis=-2)                                               # (B, C, height, width)
    below = np.take(cols, h1, axis=-2)
    below *= hl1[:, None]
    out = np.multiply(top, hl0[:, None], out=top if out is None else out)
    out += below
    return out


def resize_with_pad(img: np.ndarray, size: int, center: bool = True, pad_value: float = 0.0,
                    clamp: bool = True) -> np.ndarray:
    """(B, C, H, W) in [0, 1] -> (B, C, size, size): keep the aspect ratio, pad the rest with `pad_value`
    (centered like openpi; padding on the top and left, image bottom-right, like SmolVLA when center=False)."""
    b, c, h, w = img.shape
    if (h, w) == (size, size):
        return img.astype(np.float32, copy=False)
    rh, rw, top, left = pad_geometry(h, w, size, center)
    padded = np.full((b, c, size, size), pad_value, np.float32)
    window = padded[:, :, top:top + rh, left:left + rw]
    resize_bilinear(img, rh, rw, out=window)
    if clamp:
        np.clip(window, 0.0, 1.0, out=window)   # in place: the padding keeps pad_value
    return padded


def pad_geometry(h: int, w: int, size: int, center: bool = True) -> tuple[int, int, int, int]:
    """(resized height, resized width, top, left) of an (h, w) image resized with pad into a size x size square."""
    ratio = max(w / size, h / size)
    rh, rw = int(h / ratio), int(w / ratio)
    if center:
        return rh, rw, (size - rh) // 2, (size - rw) // 2
    return rh, rw, size - rh, size - rw
