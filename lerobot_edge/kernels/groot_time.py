"""GR00T N1.5's two timestep codes of a bucket index (0..num_timestep_buckets-1), on the host in float32: a
bf16/fp16 engine would round `bucket * frequency` (up to 999 rad) before the sin/cos and lose the code entirely
(LeRobot's bf16 autocast keeps these elementwise ops in float32 too). The frequencies are computed at export by
torch exactly as LeRobot computes them and stored in the manifest: a 1-ulp difference in exp() becomes 6e-5 rad
at bucket 999.

- the action encoder's: [sin(t f), cos(t f)], f_i = exp(-i ln(1e4) / (W/2)), i < W/2          -> (B, W)
- the DiT's (diffusers Timesteps(256, flip_sin_to_cos, downscale_freq_shift=1)): [cos(t g), sin(t g)],
  g_i = exp(-ln(1e4) i / 127), i < 128                                                         -> (B, 256)
"""

from __future__ import annotations

import numpy as np


def time_code(bucket: np.ndarray, freqs: np.ndarray, cos_first: bool) -> np.ndarray:
    """bucket (B,) and float32 freqs (F,) -> (B, 2F): [sin, cos] (action encoder) or [cos, sin] (DiT)."""
    arg = bucket.astype(np.float32)[:, None] * np.asarray(freqs, np.float32)[None]
    parts = [np.cos(arg), np.sin(arg)] if cos_first else [np.sin(arg), np.cos(arg)]
    return np.concatenate(parts, axis=-1).astype(np.float32)
