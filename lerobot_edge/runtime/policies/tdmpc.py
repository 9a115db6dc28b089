"""TDMPC on the robot: the encoder graph, then LeRobot's MPPI/CEM planner in numpy (one `value` graph call
per CEM iteration for all samples), or pi directly when the checkpoint has use_mpc=False.

Every random draw (pi exploration noise, Gaussian samples, the terminal pi noise, the Q pair, the final
pick) comes from one generator seeded with `seed=` at load time.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Mapping

import numpy as np

from ..policy import EdgePolicy, same_batch

NUM = (int, float)


class TDMPCEdgePolicy(EdgePolicy):
    """LeRobot's TDMPCPolicy.select_action: a plan (horizon, B, A) when the queue is empty; with
    n_action_repeats > 1 its first action repeated, otherwise its first n_action_steps queued."""

    required_graphs = ("encoder", "pi")
    optional_graphs = ("pi_rollout", "value")   # the MPC planner's
    noise_kind = None   # every draw comes from the seeded generator
    keeps_state, chunk_batch_axis = True, 1   # the plan's mean warm-starts the next one; plans are (H, B, A)

    def configure(self, overrides: dict[str, Any]) -> None:
        s = self.setting
        self.mpc = s("planner", str) == "mpc"
        self.A, self.H = s("action_dim"), s("horizon")
        self.n_action_steps, self.repeats = s("n_action_steps"), s("n_action_repeats")
        self.iters, self.Ng, self.Np, self.n_elites = (s("cem_iterations"), s("n_gaussian_samples"),
                                                       s("n_pi_samples"), s("n_elites"))
        self.Q = s("q_ensemble_size")
        self.max_std, self.min_std = float(s("max_std", NUM)), float(s("min_std", NUM))
        self.temperature = float(s("elite_weighting_temperature", NUM))
        self.momentum, self.discount = float(s("gaussian_mean_momentum", NUM)), float(s("discount", NUM))
        self.unc = float(s("uncertainty_regularizer_coeff", NUM))
        self.rng = np.random.default_rng(overrides.pop("seed", None))
        extra = sorted(k for k, v in overrides.items() if v is not None)
        if extra:
            raise ValueError(f"{extra} do not apply to TDMPC bundles")
        if self.mpc and not {"pi_rollout", "value"} <= set(self.sessions):
            raise ValueError("TDMPC bundle with planner 'mpc' lacks the pi_rollout/value graphs")

    def reset(self) -> None:
        self.queue: deque = deque(maxlen=max(self.n_action_steps, self.repeats))
        self.prev_mean: np.ndarray | None = None

    def _chunk(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        """Normalized plan (H, B, A) (or (1, B, A) with pi), clamped to [-1, 1] as LeRobot."""
        z = self.run_graph("encoder", feed)["z"]                             # (B, D)
        if self.mpc:
            # "sampler" = the planner's numpy work only: its graph calls are timed under their own names
            graphs0, t0 = sum(self.timings.get(g, 0.0) for g in self.sessions), time.perf_counter()
            actions = self._plan(z)
            graph_s = sum(self.timings.get(g, 0.0) for g in self.sessions) - graphs0
            self.timings["sampler"] += time.perf_counter() - t0 - graph_s
        else:
            actions = self.run_graph("pi", {"z": z})["action"][None]          # (1, B, A)
        return np.clip(actions, -1, 1)

    def _pi_actions(self, z: np.ndarray) -> np.ndarray:
        B = z.shape[0]
        if self.Np == 0:
            return np.zeros((self.H, 0, B, self.A), np.float32)
        zr = np.tile(z, (self.Np, 1))                                        # (Np*B, D), sample-major
        noise = self.rng.standard_normal((self.H, self.Np, B, self.A)).astype(np.float32)
        out = self.run_graph("pi_rollout", {"z": zr, "noise": noise.reshape(self.H, self.Np * B, self.A)})
        return out["actions"].reshape(self.H, self.Np, B, self.A)            # (H, Np*B, A) -> (H, Np, B, A)

    def _value(self, z_all: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Trajectory values (N, B) of actions (H, N, B, A): LeRobot's estimate_value + nan_to_num(0)."""
        H, N, B, A = actions.shape
        noise = self.rng.standard_normal((N * B, A)).astype(np.float32)
        out = self.run_graph("value", {"z": z_all, "actions": actions.reshape(H, N * B, A), "noise": noise})
        G = out["G"].reshape(N, B)                                           # (N*B,) -> (N, B)
        tq = out["terminal_q"].reshape(self.Q, N, B)                         # (Q, N*B) -> (Q, N, B)
        pair = tq[self.rng.integers(0, self.Q, size=2)] if self.Q > 2 else tq
        disc = self.discount ** H
        value = G + disc * pair.min(0)
        if self.unc > 0:
            value = value - disc * self.unc * tq.std(0, ddof=1)
        return np.nan_to_num(value, nan=0.0)

    def _plan(self, z: np.ndarray) -> np.ndarray:
        """LeRobot's TDMPCPolicy.plan: z (B, D) -> actions (H, B, A)."""
        B = z.shape[0]
        pi_actions = self._pi_actions(z)                                     # (H, Np, B, A)
        z_all = np.tile(z, (self.Ng + self.Np, 1))                           # (N*B, D)
        mean = np.zeros((self.H, B, self.A), np.float32)
        if self.prev_mean is not None and self.prev_mean.shape == mean.shape:   # warm start (a new batch size
            mean[:-1] = self.prev_mean[1:]                                       # starts cold)
        std = np.full_like(mean, self.max_std)
        for _ in range(self.iters):
            eps = self.rng.standard_normal((self.H, self.Ng, B, self.A)).astype(np.float32)
            gauss = np.clip(mean[:, None] + std[:, None] * eps, -1, 1)      # (H, Ng, B, A)
            actions = np.concatenate([gauss, pi_actions], axis=1)            # (H, N, B, A)
            value = self._value(z_all, actions)                              # (N, B)
            idx = np.argsort(-value, axis=0, kind="stable")[: self.n_elites]  # (n_elites, B)
            elite_value = np.take_along_axis(value, idx, axis=0)
            elite_actions = np.take_along_axis(actions, idx[None, :, :, None], axis=1)   # (H, ne, B, A)
            score = np.exp(self.temperature * (elite_value - elite_value.max(0, keepdims=True)))
            score = score / score.sum(0, keepdims=True)                      # (ne, B)
            w = score[None, :, :, None]                                      # (1, ne, B, 1)
            new_mean = (w * elite_actions).sum(1)                            # (H, B, A)
            new_std = np.sqrt((w * (elite_actions - new_mean[:, None]) ** 2).sum(1))
            mean = self.momentum * mean + (1 - self.momentum) * new_mean
            std = np.clip(new_std, self.min_std, self.max_std)
        self.prev_mean = mean
        pick = np.array([self.rng.choice(self.n_elites, p=score[:, b] / score[:, b].sum()) for b in range(B)])
        return elite_actions[:, pick, np.arange(B)].astype(np.float32)       # (H, B, A)

    def predict_action_chunk(self, obs: Mapping[str, Any], noise: np.ndarray | None = None, **kw) -> np.ndarray:
        """(horizon, B, A) robot units with the planner ((1, B, A) with pi); (horizon, A) unbatched."""
        if any(v is not None for v in kw.values()) or noise is not None:
            raise ValueError("TDMPC takes no noise/RTC arguments (its draws come from the seeded generator)")
        t0 = self._start_call()
        feed, batched = self.preprocess(obs)
        chunk = self.postprocess(self._chunk(feed))
        self._end_call(t0)
        return chunk if batched else chunk[:, 0]

    def select_action(self, obs: Mapping[str, Any], noise: np.ndarray | None = None) -> np.ndarray:
        """(B, A) robot units ((A,) unbatched)."""
        if noise is not None:
            raise ValueError("TDMPC takes no noise (its draws come from the seeded generator)")
        t0 = self._start_call()
        arrays, batched = self.check(obs)                                    # converted only to plan
        same_batch(next(iter(arrays.values())).shape[0], self.queue[0].shape[0] if self.queue else None,
                   "queued actions")
        if len(self.queue) == 0:
            actions = self._chunk(self.to_feed(arrays))                                    # (H, B, A) normalized
            with self._stage("sampler"):
                if self.repeats > 1:
                    self.queue.extend([actions[0]] * self.repeats)
                else:
                    self.queue.extend(actions[: self.n_action_steps])
        with self._stage("sampler"):
            normalized = self.queue.popleft()                                # (B, A)
        action = self.postprocess(normalized)
        self._end_call(t0)
        return action if batched else action[0]
