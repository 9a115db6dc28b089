"""`fuse_loop=True`: the whole DDIM loop, its step count fixed at export, unrolled into one graph
(`denoise_loop`: observation history + initial noise -> final sample). One engine call per chunk instead of
1 + N, which pays where per-call launch and host copies cost (GPUs, TensorRT).

The scheduler math is in the graph as constants taken from the runtime's numpy scheduler
(kernels/schedulers.py), computed in the same float32 order, so the fused chunk equals the stepped one to
float rounding. DDIM with LeRobot's settings (eta 0) is deterministic; DDPM needs per-step noise and is not
fused.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ...bundle import IOSpec
from ...kernels.schedulers import Scheduler, SchedulerConfig
from ..plan import GraphPlan

GRAPH = "denoise_loop"
TOLERANCE = {"sample": {"atol": 1e-4, "min_cosine": 0.99999}}   # normalized action units, full chunk


def ddim_constants(scheduler: dict, num_inference_steps: int) -> list[tuple[float, ...]]:
    """Per step (t, sqrt(a_t), sqrt(1 - a_t), sqrt(a_prev), sqrt(1 - a_prev)), float32 values as the numpy
    DDIM step computes them (a_prev of the last step: 1, diffusers' set_alpha_to_one)."""
    sched = Scheduler(SchedulerConfig(**scheduler))
    sched.set_timesteps(num_inference_steps)
    ac, ratio = sched.alphas_cumprod, sched.cfg.num_train_timesteps // num_inference_steps
    out = []
    for t in sched.timesteps:
        a_t = ac[t]
        a_prev = ac[t - ratio] if t - ratio >= 0 else np.float32(1.0)
        out.append(tuple(float(v) for v in (np.float32(t), a_t ** 0.5, (1 - a_t) ** 0.5, a_prev ** 0.5,
                                            (1 - a_prev) ** 0.5)))
    return out


class FusedDDIMLoop(nn.Module):
    """inputs: the encoder graph's inputs, then noise (B, horizon, A) -> the sampled chunk (B, horizon, A)."""

    def __init__(self, encoder: nn.Module, denoise: nn.Module, steps: list[tuple[float, ...]], prediction: str,
                 clip_range: float | None):
        super().__init__()
        if prediction not in ("epsilon", "sample"):
            raise ValueError(f"fuse_loop: prediction_type {prediction!r} is not supported (epsilon, sample)")
        self.encoder, self.denoise = encoder, denoise
        self.steps, self.prediction, self.clip_range = steps, prediction, clip_range

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        *obs, x = inputs
        cond = self.encoder(*obs)                                                  # (B, G)
        for t, sa, sb, sap, sbp in self.steps:
            out = self.denoise(x, torch.full_like(x[:, 0, 0], t), cond)            # (B, T, A)
            if self.prediction == "epsilon":
                x0, eps = (x - sb * out) / sa, out
            else:  # epsilon from the unclipped x0 prediction, as diffusers does
                x0, eps = out, (x - sa * out) / sb
            if self.clip_range is not None:
                x0 = x0.clamp(-self.clip_range, self.clip_range)
            x = sap * x0 + sbp * eps
        return x


def fused_graph(encoder: GraphPlan, denoise: GraphPlan, runtime: dict) -> GraphPlan:
    """The `denoise_loop` GraphPlan from the stepped graphs and the plan's runtime section (DDIM only)."""
    sch = runtime["scheduler"]
    if sch.get("kind") != "DDIM":
        raise ValueError(f"fuse_loop unrolls DDIM; this checkpoint samples with {sch.get('kind')} (per-step "
                         "noise): export it without fuse_loop")
    steps = ddim_constants(sch, runtime["num_inference_steps"])
    module = FusedDDIMLoop(encoder.module, denoise.module, steps, sch["prediction_type"],
                           float(sch["clip_sample_range"]) if sch["clip_sample"] else None)
    noise = IOSpec("noise", denoise.inputs[0].shape)                                # ("batch", horizon, A)

    def sample(rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
        x = encoder.sample_inputs(rng, batch)
        x["noise"] = rng.standard_normal((batch, *noise.shape[1:])).astype(np.float32)
        return x
    return GraphPlan(GRAPH, module, [*encoder.inputs, noise], [IOSpec("sample", noise.shape)], TOLERANCE, sample)
