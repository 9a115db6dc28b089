"""Diffusion Policy exported with `fuse_loop=True`: one `denoise_loop` call per chunk (the DDIM loop is in the
graph, its step count fixed at export). History, action queue, noise and outputs as `DiffusionEdgePolicy`."""

from __future__ import annotations

from typing import Any

import numpy as np

from .diffusion import DiffusionEdgePolicy


class FusedDiffusionEdgePolicy(DiffusionEdgePolicy):
    required_graphs = ("denoise_loop",)

    def configure(self, overrides: dict[str, Any]) -> None:
        fixed = self.setting("num_inference_steps")
        steps = overrides.get("num_inference_steps")
        if steps is not None and steps != fixed:
            raise ValueError(f"num_inference_steps={steps}: this bundle's DDIM loop is fused at {fixed} steps; "
                             "re-export without fuse_loop to choose the step count at load time")
        overrides.pop("num_inference_steps", None)
        super().configure(overrides)

    def _sample(self, noise: np.ndarray | None) -> np.ndarray:
        """Normalized actions (B, n_action_steps, A) from the current history: one engine call."""
        feed = {k: np.stack(q, axis=1) for k, q in self.history.items()}          # (B, S, …) per input
        x = self._noise(noise, next(iter(feed.values())).shape[0])                # (B, horizon, A)
        sample = self.run_graph("denoise_loop", {**feed, "noise": x})["sample"]
        start = self.n_obs_steps - 1
        return sample[:, start:start + self.n_action_steps]
