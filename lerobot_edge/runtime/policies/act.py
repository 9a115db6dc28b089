"""ACT on the robot: one graph call per chunk; an action queue or temporal ensembling between calls."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..policy import EdgePolicy, same_batch
from ..queues import ActionQueue, TemporalEnsembler


class ACTEdgePolicy(EdgePolicy):
    """LeRobot's ACTPolicy behaviour: with temporal_ensemble_coeff a chunk every step, ensembled; otherwise
    a chunk every n_action_steps, queued."""

    required_graphs = ("act",)
    optional_graphs = ()
    stochastic, noise_kind = False, None

    def configure(self, overrides: dict[str, Any]) -> None:
        self.chunk_size = self.setting("chunk_size", int)
        self.n_action_steps = int(overrides.pop("n_action_steps", None) or self.setting("n_action_steps", int))
        coeff = overrides.pop("temporal_ensemble_coeff", None)
        self.temporal_ensemble_coeff = (self.setting("temporal_ensemble_coeff", (int, float), None, nullable=True)
                                        if coeff is None else coeff)
        inapplicable = sorted(k for k, v in overrides.items() if v is not None)
        if inapplicable:
            raise ValueError(f"{inapplicable} do not apply to ACT bundles")
        if not 1 <= self.n_action_steps <= self.chunk_size:
            raise ValueError(f"n_action_steps={self.n_action_steps}: expected 1..chunk_size ({self.chunk_size})")
        if self.temporal_ensemble_coeff is not None and self.n_action_steps != 1:
            # LeRobot requires it; a chunk is computed every step anyway
            self.n_action_steps = 1
        self.queue = ActionQueue()
        self.ensembler = (TemporalEnsembler(float(self.temporal_ensemble_coeff), self.chunk_size)
                          if self.temporal_ensemble_coeff is not None else None)

    def reset(self) -> None:
        self.queue.clear()
        if self.ensembler is not None:
            self.ensembler.reset()

    def _normalized_chunk(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        return self.run_graph("act", feed)["action"]                      # (B, T, A) normalized

    def predict_action_chunk(self, obs: Mapping[str, Any], noise: np.ndarray | None = None, **kw) -> np.ndarray:
        """(B, chunk_size, A) robot units ((chunk_size, A) for an unbatched observation)."""
        _reject_extra(kw)
        t0 = self._start_call()
        feed, batched = self.preprocess(obs)
        chunk = self.postprocess(self._normalized_chunk(feed))
        self._end_call(t0)
        return chunk if batched else chunk[0]

    def select_action(self, obs: Mapping[str, Any], noise: np.ndarray | None = None) -> np.ndarray:
        """(B, A) robot units ((A,) for an unbatched observation). The observation is always checked, also
        when the action comes from the queue, so a bad frame never passes silently; it is converted and
        normalized only when a chunk is computed."""
        t0 = self._start_call()
        arrays, batched = self.check(obs)
        b = next(iter(arrays.values())).shape[0]
        if self.ensembler is not None:
            held = None if self.ensembler.actions is None else self.ensembler.actions.shape[0]
            same_batch(b, held, "ensembled actions")
            normalized = self._normalized_chunk(self.to_feed(arrays))
            with self._stage("sampler"):
                action = self.ensembler.update(normalized)
            action = self.postprocess(action)
        else:
            action = self.queued_action(
                lambda: self.postprocess(self._normalized_chunk(self.to_feed(arrays))[:, : self.n_action_steps]), b)
        self._end_call(t0)
        return action if batched else action[0]


def _reject_extra(kw: dict) -> None:
    given = sorted(k for k, v in kw.items() if v is not None)
    if given:
        raise ValueError(f"{given} apply to flow-matching policies (RTC), not to ACT")
