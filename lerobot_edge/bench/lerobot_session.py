"""LeRobot's own policy as one more bench variant (`--backends lerobot`): what users run today, loaded the way
lerobot-eval / lerobot-record load it (from_pretrained + the checkpoint's pre/post-processors), timed end to
end on the same observations. Needs `lerobot` (and torch) importable in the bench's environment."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import BackendUnavailableError


def _load_lerobot(checkpoint: str, policy_type: str, threads: int | None):
    try:
        import torch
        from lerobot.configs.policies import PreTrainedConfig
        from lerobot.policies.factory import get_policy_class, make_pre_post_processors
    except ImportError as e:
        raise BackendUnavailableError(f"LeRobot is not importable in this environment ({e}); install lerobot "
                                      "beside lerobot-edge to bench it") from e

    if threads:
        torch.set_num_threads(int(threads))
    raw = json.loads((Path(checkpoint) / "config.json").read_text())
    if "type" in raw:
        config = PreTrainedConfig.from_pretrained(checkpoint)
    else:  # a config.json written without "type" (some draccus versions): parse it as the known class
        import draccus

        with draccus.config_type("json"):
            config = draccus.parse(type(PreTrainedConfig.get_choice_class(policy_type)()),
                                   str(Path(checkpoint) / "config.json"), args=[])
    config.device = "cpu"
    policy = get_policy_class(policy_type).from_pretrained(checkpoint, config=config)
    policy.eval()
    pre, post = make_pre_post_processors(config, pretrained_path=checkpoint,
                                         preprocessor_overrides={"device_processor": {"device": "cpu"}})
    return policy, pre, post


class LeRobotPolicyRunner:
    """The bench's view of a LeRobot policy: reset / select_action / predict_action_chunk on numpy
    observations in lerobot-edge's format (uint8 HWC frames, unbatched vectors), `timings["total"]`.

    The noise given is ignored: LeRobot draws its own (timing does not depend on the draw)."""

    def __init__(self, checkpoint: str, manifest: Mapping[str, Any], threads: int | None = None):
        import torch

        self._torch = torch
        self.policy, self.pre, self.post = _load_lerobot(checkpoint, manifest["policy"]["type"], threads)
        self.observation_spec = manifest["observations"]
        self.n_action_steps = int(manifest["runtime"].get("n_action_steps", 1))
        self.timings: dict[str, float] = {}
        self.graph_calls: dict[str, int] = {}

    def _batch(self, obs: Mapping[str, Any]) -> dict:
        """numpy observation → LeRobot's batched torch input (images float CHW in [0, 1])."""
        torch, batch = self._torch, {}
        for key, spec in self.observation_spec.items():
            x = np.asarray(obs[key])
            if spec["kind"] == "image" and x.dtype == np.uint8:
                x = x.transpose(2, 0, 1).astype(np.float32) / 255.0   # HWC uint8 -> CHW float
            batch[key] = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None]
        batch["task"] = [str(obs.get("task", ""))]
        return batch

    def reset(self) -> None:
        self.policy.reset()

    def _timed(self, method: str, obs: Mapping[str, Any]) -> np.ndarray:
        t0 = time.perf_counter()
        with self._torch.inference_mode():
            action = self.post(getattr(self.policy, method)(self.pre(self._batch(obs))))
        self.timings = {"total": time.perf_counter() - t0}
        return action[0].numpy()

    def predict_action_chunk(self, obs: Mapping[str, Any], noise=None) -> np.ndarray:
        """One chunk computed by LeRobot: its select_action on an empty queue (reset first). LeRobot's own
        predict_action_chunk needs the observation queues that only select_action fills (Diffusion, VQ-BeT)
        and TDMPC/SAC have none, so this is the one call that computes a chunk for every policy; it returns
        the first action (A,), the cost is the chunk's plus one queue pop."""
        self.policy.reset()
        return self._timed("select_action", obs)

    def select_action(self, obs: Mapping[str, Any], noise=None) -> np.ndarray:
        return self._timed("select_action", obs)
