"""Diffusion Policy on the robot: observation history, one `encoder` call per chunk, then N `denoise` calls
with the DDPM/DDIM update in numpy; global_cond stays on the backend between steps."""

from __future__ import annotations

import warnings
from collections import deque
from typing import Any, Mapping

import numpy as np

from ...errors import ObservationError
from ...kernels.schedulers import Scheduler, SchedulerConfig
from ..policy import EdgePolicy, same_batch
from ..queues import ActionQueue


class DiffusionEdgePolicy(EdgePolicy):
    """LeRobot's DiffusionPolicy behaviour: a history of n_obs_steps observations (the first call fills it
    with copies), a chunk of `horizon` actions sampled when the action queue is empty, of which
    n_action_steps starting at n_obs_steps - 1 are executed."""

    required_graphs = ("encoder", "denoise")
    optional_graphs = ()
    has_history = True

    def configure(self, overrides: dict[str, Any]) -> None:
        self.n_obs_steps = self.setting("n_obs_steps")
        self.horizon = self.setting("horizon")
        self.action_dim = self.setting("action_dim")
        self.n_action_steps = int(overrides.pop("n_action_steps", None) or self.setting("n_action_steps"))
        if not 1 <= self.n_action_steps <= self.horizon - self.n_obs_steps + 1:
            raise ValueError(f"n_action_steps={self.n_action_steps}: expected 1..horizon - n_obs_steps + 1")
        self.scheduler = Scheduler(SchedulerConfig(**self.setting("scheduler", dict)))
        trained = self.setting("num_inference_steps")
        steps = overrides.pop("num_inference_steps", None)
        if steps is not None and steps != trained:
            warnings.warn(f"num_inference_steps {steps} instead of the checkpoint's {trained}: the actions change "
                          "(accuracy against the trained sampler is not validated)", stacklevel=3)
        self.scheduler.set_timesteps(int(steps or trained))
        self.rng = np.random.default_rng(overrides.pop("seed", None))
        extra = sorted(k for k, v in overrides.items() if v is not None)
        if extra:
            raise ValueError(f"{extra} do not apply to Diffusion bundles")
        self.history: dict[str, deque] = {}
        self.queue = ActionQueue()

    def reset(self) -> None:
        self.history = {}
        self.queue.clear()

    def _push(self, feed: dict[str, np.ndarray]) -> None:
        """Append one observation (B, …) per input; a batch size other than the history's is refused first."""
        held = next(iter(self.history.values()))[0].shape[0] if self.history else None
        same_batch(next(iter(feed.values())).shape[0], held, "observation history")
        for name, x in feed.items():
            q = self.history.setdefault(name, deque(maxlen=self.n_obs_steps))
            while len(q) < self.n_obs_steps - 1:  # first call: fill with copies, as LeRobot does
                q.append(x)
            q.append(x)

    def _noise(self, noise: np.ndarray | None, batch: int) -> np.ndarray:
        shape = (batch, self.horizon, self.action_dim)
        if noise is None:
            return self.rng.standard_normal(shape).astype(np.float32)
        noise = np.asarray(noise, dtype=np.float32)
        noise = noise if noise.ndim == 3 else noise[None]
        if noise.shape != shape:
            raise ObservationError(f"noise: expected shape {shape} (or without the batch axis), got {noise.shape}")
        return noise

    def _sample(self, noise: np.ndarray | None) -> np.ndarray:
        """Normalized actions (B, n_action_steps, A) from the current history."""
        feed = {k: np.stack(q, axis=1) for k, q in self.history.items()}          # (B, S, …) per input
        cond = self.run_graph("encoder", feed, keep=("global_cond",))["global_cond"]
        sample = self._noise(noise, next(iter(feed.values())).shape[0])
        for t in self.scheduler.timesteps:
            timestep = np.full(sample.shape[:1], t, dtype=np.float32)
            out = self.run_graph("denoise", {"sample": sample, "timestep": timestep, "global_cond": cond})
            with self._stage("sampler"):
                step_noise = self.rng.standard_normal(sample.shape).astype(np.float32) if \
                    self.scheduler.cfg.kind == "DDPM" and t > 0 else None
                sample = self.scheduler.step(out["model_output"], int(t), sample, step_noise)
        start = self.n_obs_steps - 1
        return sample[:, start:start + self.n_action_steps]

    def predict_action_chunk(self, obs: Mapping[str, Any], noise: np.ndarray | None = None, **kw) -> np.ndarray:
        """Pushes `obs` into the history as select_action would, then samples: (B, n_action_steps, A)."""
        if any(v is not None for v in kw.values()):
            raise ValueError(f"{sorted(kw)} apply to flow-matching policies (RTC), not to Diffusion")
        t0 = self._start_call()
        feed, batched = self.preprocess(obs)
        noise_arr = None if noise is None else self._noise(noise, next(iter(feed.values())).shape[0])
        self._push(feed)
        chunk = self.postprocess(self._sample(noise_arr))
        self._end_call(t0)
        return chunk if batched else chunk[0]

    def select_action(self, obs: Mapping[str, Any], noise: np.ndarray | None = None) -> np.ndarray:
        t0 = self._start_call()
        feed, batched = self.preprocess(obs)
        noise_arr = None if noise is None else self._noise(noise, next(iter(feed.values())).shape[0])
        self._push(feed)
        action = self.queued_action(lambda: self.postprocess(self._sample(noise_arr)))
        self._end_call(t0)
        return action if batched else action[0]
