"""DDPM and DDIM in numpy, step for step as diffusers computes them with LeRobot's settings
(timestep_spacing "leading", steps_offset 0, DDPM variance "fixed_small", DDIM eta 0 and set_alpha_to_one).

Randomness is explicit: DDPM's per-step noise comes from the caller (a seeded generator or injected arrays).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def _linspace_f32(start: float, end: float, n: int) -> np.ndarray:
    """torch.linspace(start, end, n, dtype=float32) bit for bit: a float32 step, each value from the nearer end
    (DDPM at small t divides by 1 - alpha_cumprod, which amplifies a one-ulp difference in the betas)."""
    step = np.float64((np.float32(end) - np.float32(start)) / np.float32(n - 1))
    i = np.arange(n, dtype=np.float64)
    v = np.where(i < n // 2, np.float64(np.float32(start)) + step * i, np.float64(np.float32(end)) - step * (n - 1 - i))
    return v.astype(np.float32)


def betas_for(schedule: str, num_train_timesteps: int, beta_start: float, beta_end: float) -> np.ndarray:
    """(T,) float32 betas for diffusers' beta_schedule names."""
    t = num_train_timesteps
    if schedule == "linear":
        return _linspace_f32(beta_start, beta_end, t)
    if schedule == "scaled_linear":
        return _linspace_f32(beta_start ** 0.5, beta_end ** 0.5, t) ** 2
    if schedule == "squaredcos_cap_v2":
        def alpha_bar(x: float) -> float:
            return math.cos((x + 0.008) / 1.008 * math.pi / 2) ** 2
        return np.array([min(1 - alpha_bar((i + 1) / t) / alpha_bar(i / t), 0.999) for i in range(t)], np.float32)
    raise ValueError(f"beta_schedule {schedule!r}: expected linear, scaled_linear or squaredcos_cap_v2")


@dataclass
class SchedulerConfig:
    kind: str = "DDPM"                  # DDPM | DDIM
    num_train_timesteps: int = 100
    beta_schedule: str = "squaredcos_cap_v2"
    beta_start: float = 1e-4
    beta_end: float = 0.02
    prediction_type: str = "epsilon"    # epsilon | sample
    clip_sample: bool = True
    clip_sample_range: float = 1.0


class Scheduler:
    """`set_timesteps(n)` then `step(model_output, t, sample, noise)` for t in `timesteps`."""

    def __init__(self, cfg: SchedulerConfig):
        if cfg.kind not in ("DDPM", "DDIM"):
            raise ValueError(f"noise scheduler {cfg.kind!r}: expected DDPM or DDIM")
        if cfg.prediction_type not in ("epsilon", "sample"):
            raise ValueError(f"prediction_type {cfg.prediction_type!r}: expected epsilon or sample")
        self.cfg = cfg
        betas = betas_for(cfg.beta_schedule, cfg.num_train_timesteps, cfg.beta_start, cfg.beta_end)
        # torch accumulates the float32 cumprod in higher precision; so do we, to match it bit for bit
        self.alphas_cumprod = np.cumprod((np.float32(1.0) - betas).astype(np.float64)).astype(np.float32)
        self.timesteps = np.arange(cfg.num_train_timesteps)[::-1].copy()
        self.num_inference_steps = cfg.num_train_timesteps

    def set_timesteps(self, n: int) -> None:
        if not 1 <= n <= self.cfg.num_train_timesteps:
            raise ValueError(f"num_inference_steps {n}: expected 1..{self.cfg.num_train_timesteps}")
        ratio = self.cfg.num_train_timesteps // n
        self.timesteps = (np.arange(n) * ratio).round()[::-1].astype(np.int64)
        self.num_inference_steps = n

    def _alpha_prev(self, t: int) -> tuple[np.float32, int]:
        prev = t - self.cfg.num_train_timesteps // self.num_inference_steps
        return (self.alphas_cumprod[prev] if prev >= 0 else np.float32(1.0)), prev

    def _x0(self, out: np.ndarray, sample: np.ndarray, a_t: np.float32) -> np.ndarray:
        if self.cfg.prediction_type == "epsilon":
            x0 = (sample - (1 - a_t) ** 0.5 * out) / a_t ** 0.5
        else:
            x0 = out
        if self.cfg.clip_sample:
            r = self.cfg.clip_sample_range
            x0 = np.clip(x0, -r, r)
        return x0

    def step(self, out: np.ndarray, t: int, sample: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
        """x_t -> x_{t-1}. out, sample, noise: (B, horizon, A) float32. DDPM needs `noise` for t > 0."""
        a_t = self.alphas_cumprod[t]
        a_prev, _ = self._alpha_prev(t)
        x0 = self._x0(out, sample, a_t)
        if self.cfg.kind == "DDIM":
            # diffusers derives epsilon from the unclipped x0 prediction
            eps = out if self.cfg.prediction_type == "epsilon" else (sample - a_t ** 0.5 * out) / (1 - a_t) ** 0.5
            return (a_prev ** 0.5 * x0 + (1 - a_prev) ** 0.5 * eps).astype(np.float32)
        beta_t, beta_prev = 1 - a_t, 1 - a_prev
        cur_alpha = a_t / a_prev
        cur_beta = 1 - cur_alpha
        prev = (a_prev ** 0.5 * cur_beta / beta_t) * x0 + (cur_alpha ** 0.5 * beta_prev / beta_t) * sample
        if t > 0:
            if noise is None:
                raise ValueError("DDPM steps with t > 0 need noise (pass a generator or the draws)")
            variance = max(beta_prev / beta_t * cur_beta, np.float32(1e-20))
            prev = prev + variance ** 0.5 * noise
        return prev.astype(np.float32)
