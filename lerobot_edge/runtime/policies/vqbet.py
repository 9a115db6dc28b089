"""VQ-BeT on the robot: observation history, one `policy` call (code logits + offsets of the current step),
the residual-VQ code draw in numpy, one `decode` call, offsets added, and LeRobot's action queue.

The draw: LeRobot samples each code with torch.multinomial(softmax(logits / temperature)). Here each code is
the inverse CDF of one U[0, 1) number, so draws can be injected (`noise`, shape (B, G): one per residual-VQ
layer, primary then secondary) or come from a generator seeded at load time; `sampling = "greedy"` takes the
argmax instead.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Mapping

import numpy as np

from ...errors import ObservationError
from ..policy import EdgePolicy
from ..queues import ActionQueue

SAMPLING = ("sample", "greedy")


def softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    """(…, K) -> probabilities (…, K), float64 (the inverse CDF below compares against them)."""
    z = logits.astype(np.float64) / temperature
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def inverse_cdf(probs: np.ndarray, u: np.ndarray) -> np.ndarray:
    """probs (…, K), u (…) in [0, 1) -> index (…): the first k with cumsum(probs)[k] > u * total."""
    cdf = np.cumsum(probs, axis=-1)
    idx = (cdf <= u[..., None] * cdf[..., -1:]).sum(axis=-1)
    return np.minimum(idx, probs.shape[-1] - 1)


def pick(logits: np.ndarray, u: np.ndarray | None, temperature: float) -> np.ndarray:
    """logits (…, K), uniforms (…) -> codes (…): the inverse-CDF draw at the temperature, or argmax (u None)."""
    if u is None:
        return np.argmax(logits, axis=-1)
    return inverse_cdf(softmax(logits, temperature), u)


def draw_codes(out: Mapping[str, np.ndarray], u: np.ndarray | None, temperature: float) -> np.ndarray:
    """Engine outputs + uniforms (B, G) (None: greedy) -> codes (B, G) int64 (primary, secondary)."""
    if "code_logits" in out:                                             # (B, G, K): layers drawn independently
        return pick(out["code_logits"], u, temperature).astype(np.int64)
    primary = pick(out["primary_logits"], None if u is None else u[:, 0], temperature)           # (B,)
    rows = out["secondary_logits"][np.arange(primary.shape[0]), primary]  # (B, K, K) -> (B, K) given the primary
    secondary = pick(rows, None if u is None else u[:, 1], temperature)
    return np.stack([primary, secondary], axis=1).astype(np.int64)       # (B, G)


class VQBeTEdgePolicy(EdgePolicy):
    """LeRobot's VQBeTPolicy behaviour: a history of n_obs_steps observations (the first call fills it with
    copies), and when the action queue is empty a new chunk of action_chunk_size actions, all of which are
    queued. `sampling`: "sample" (LeRobot's, the default) or "greedy"; settable after loading."""

    required_graphs = ("policy", "decode")
    optional_graphs = ()
    noise_kind, has_history = "uniform", True   # noise=: the code draws' uniforms (B, 2)

    def configure(self, overrides: dict[str, Any]) -> None:
        self.n_obs_steps = self.setting("n_obs_steps")
        self.chunk_size = self.setting("action_chunk_size")
        self.n_action_steps = self.chunk_size   # LeRobot queues the whole chunk
        self.action_dim = self.setting("action_dim")
        self.n_codes = self.setting("n_codes")
        self.n_layers = self.setting("n_vq_layers")
        self.temperature = float(self.setting("temperature", (float, int)))
        self.sampling = self.setting("sampling", str, "sample")
        self.rng = np.random.default_rng(overrides.pop("seed", None))
        extra = sorted(k for k, v in overrides.items() if v is not None)
        if extra:
            raise ValueError(f"{extra} do not apply to VQ-BeT bundles")
        self.history: dict[str, deque] = {}
        self.queue = ActionQueue()

    @property
    def sampling(self) -> str:
        return self._sampling

    @sampling.setter
    def sampling(self, mode: str) -> None:
        if mode not in SAMPLING:
            raise ValueError(f"sampling={mode!r}: expected one of {SAMPLING}")
        self._sampling = mode

    def reset(self) -> None:
        self.history = {}
        self.queue.clear()

    def _push(self, feed: dict[str, np.ndarray]) -> None:
        """Append one observation (B, …) per input. A batch size other than the history's is refused before
        anything changes (the queued actions were drawn for that batch too)."""
        batch = next(iter(feed.values())).shape[0]
        held = next(iter(self.history.values()))[0].shape[0] if self.history else None
        if held is not None and batch != held:
            raise ObservationError(f"observation batch size {batch} differs from the {held} of the observation "
                                   "history: call reset() when the number of robots changes")
        for name, x in feed.items():
            q = self.history.setdefault(name, deque(maxlen=self.n_obs_steps))
            while len(q) < self.n_obs_steps - 1:  # first call: fill with copies, as LeRobot's populate_queues
                q.append(x)
            q.append(x)

    def _uniforms(self, noise: np.ndarray | None, batch: int) -> np.ndarray | None:
        if self.sampling == "greedy":
            return None
        if noise is None:
            return self.rng.random((batch, self.n_layers))
        u = np.asarray(noise, dtype=np.float64)
        u = u[None] if u.ndim == 1 else u                                  # (G,) -> (1, G)
        if u.shape != (batch, self.n_layers) or not ((u >= 0) & (u < 1)).all():
            raise ObservationError(f"noise: expected uniforms in [0, 1) of shape ({batch}, {self.n_layers}) "
                                   f"(or ({self.n_layers},) unbatched), got shape {u.shape}")
        return u

    def _chunk(self, noise: np.ndarray | None) -> np.ndarray:
        """Normalized actions (B, action_chunk_size, A) from the current history."""
        feed = {k: np.stack(q, axis=1) for k, q in self.history.items()}      # (B, S, …) per input
        out = self.run_graph("policy", feed)
        b = out["offsets"].shape[0]
        with self._stage("sampler"):
            codes = draw_codes(out, self._uniforms(noise, b), self.temperature)   # (B, G)
            onehot = np.eye(self.n_codes, dtype=np.float32)[codes]             # (B, G, K)
            # the offsets of the chosen code in each layer, summed over the layers: (B, W, A)
            offsets = out["offsets"][np.arange(b)[:, None], np.arange(self.n_layers)[None], codes].sum(axis=1)
        decoded = self.run_graph("decode", {"codes_onehot": onehot})["decoded"]   # (B, W, A)
        with self._stage("sampler"):
            self.last_codes = codes
            return (decoded + offsets).astype(np.float32)

    def predict_action_chunk(self, obs: Mapping[str, Any], noise: np.ndarray | None = None, **kw) -> np.ndarray:
        """Pushes `obs` into the history as select_action would, then samples: (B, action_chunk_size, A)."""
        if any(v is not None for v in kw.values()):
            raise ValueError(f"{sorted(kw)} apply to flow-matching policies (RTC), not to VQ-BeT")
        t0 = self._start_call()
        feed, batched = self.preprocess(obs)
        self._push(feed)
        chunk = self.postprocess(self._chunk(noise))
        self._end_call(t0)
        return chunk if batched else chunk[0]

    def select_action(self, obs: Mapping[str, Any], noise: np.ndarray | None = None) -> np.ndarray:
        """(B, A) robot units ((A,) unbatched). noise: uniforms (B, G), used only when a new chunk is drawn."""
        t0 = self._start_call()
        feed, batched = self.preprocess(obs)
        self._push(feed)
        action = self.queued_action(lambda: self.postprocess(self._chunk(noise)))
        self._end_call(t0)
        return action if batched else action[0]
