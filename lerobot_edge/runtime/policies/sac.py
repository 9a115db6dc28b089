"""SAC on the robot: one actor-graph call per step; the tanh squash, sampling and gripper argmax in numpy.

Modes: deterministic `tanh(mean)` (the deployment default); stochastic `tanh(mean + sqrt(std) * noise)`
(LeRobot passes std as the covariance, see select_action) when
`noise` (B, A) is passed to `select_action`, or, with `seed=` given at load time, with noise drawn from
that seeded generator (LeRobot's own select_action always samples, from torch's global generator).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ...errors import ObservationError
from ..policy import EdgePolicy


class SACEdgePolicy(EdgePolicy):
    """LeRobot's SACPolicy.select_action: actor -> continuous action; with `num_discrete_actions`, the
    discrete critic's argmax is appended as the last column (an index, not unnormalized)."""

    required_graphs = ("sac_actor",)
    optional_graphs = ()

    def configure(self, overrides: dict[str, Any]) -> None:
        self.action_dim = self.setting("action_dim")
        self.num_discrete = self.setting("num_discrete_actions", int, None, nullable=True)
        self.sample = self.setting("sample", str, "mean")
        if self.sample not in ("mean", "noise"):
            raise ValueError(f"runtime.sample={self.sample!r}: expected 'mean' or 'noise'")
        seed = overrides.pop("seed", None)
        self.rng = np.random.default_rng(seed) if seed is not None else None
        extra = sorted(k for k, v in overrides.items() if v is not None)
        if extra:
            raise ValueError(f"{extra} do not apply to SAC bundles")

    def reset(self) -> None:
        """SAC keeps no state between steps (LeRobot's reset is a no-op too)."""

    def _noise(self, noise: np.ndarray | None, batch: int) -> np.ndarray | None:
        if noise is None:
            if self.rng is None and self.sample == "mean":
                return None
            rng = self.rng if self.rng is not None else np.random.default_rng()
            return rng.standard_normal((batch, self.action_dim)).astype(np.float32)
        noise = np.asarray(noise, dtype=np.float32)
        noise = noise[None] if noise.ndim == 1 else noise                    # (A,) -> (1, A)
        if noise.shape != (batch, self.action_dim):
            raise ObservationError(f"noise shape {noise.shape}: expected ({batch}, {self.action_dim})")
        return noise

    def select_action(self, obs: Mapping[str, Any], noise: np.ndarray | None = None) -> np.ndarray:
        """(B, A[+1]) robot units ((A[+1],) unbatched). noise: (B, A) or (A,) standard normal draws, or None."""
        t0 = self._start_call()
        action, batched = self._act(obs, noise)
        self._end_call(t0)
        return action if batched else action[0]

    def predict_action_chunk(self, obs: Mapping[str, Any], noise: np.ndarray | None = None, **kw) -> np.ndarray:
        """A one-action chunk (B, 1, A[+1]) ((1, A[+1]) unbatched). Deliberate difference: LeRobot's SAC raises
        NotImplementedError here; a one-step chunk lets `bench` and chunked control loops run SAC."""
        given = sorted(k for k, v in kw.items() if v is not None)
        if given:
            raise ValueError(f"{given} apply to flow-matching policies (RTC), not to SAC")
        t0 = self._start_call()
        action, batched = self._act(obs, noise)
        self._end_call(t0)
        return action[:, None] if batched else action                        # (B, 1, A) / (1, A)

    def _act(self, obs: Mapping[str, Any], noise: np.ndarray | None) -> tuple[np.ndarray, bool]:
        feed, batched = self.preprocess(obs)
        out = self.run_graph("sac_actor", feed)
        mean, std = out["mean"], out["std"]                                  # (B, A) each, normalized
        with self._stage("sampler"):
            eps = self._noise(noise, mean.shape[0])
            # LeRobot builds MultivariateNormal(mean, diag_embed(std)) with std as the *covariance*, so its
            # samples are mean + sqrt(std) * eps; we match what it does, not what the name says
            pre = mean if eps is None else mean + np.sqrt(std) * eps
            normalized = np.tanh(pre).astype(np.float32)
        action = self.postprocess(normalized)
        if self.num_discrete is not None:
            with self._stage("postprocess"):
                gripper = np.argmax(out["discrete_q"], axis=-1)[:, None].astype(np.float32)   # (B, 1)
                action = np.concatenate([action, gripper], axis=-1)          # (B, A+1)
        return action, batched
