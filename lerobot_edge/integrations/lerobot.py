"""LeRobotPolicy: an EdgePolicy behind the interface LeRobot's record / eval loops call.

Those loops run ``preprocessor -> policy.select_action -> postprocessor`` on torch tensors. The bundle's
runtime already normalizes and unnormalizes, so the wrapper takes the raw batch and returns robot units, and
`processors()` returns pass-through pre/post-processors. Two lines in a LeRobot script::

    policy = LeRobotPolicy.from_bundle("act-edge/")
    preprocessor, postprocessor = policy.processors()

Tensors in, tensors out (same device as the input); numpy in, numpy out. torch is imported only when a
tensor is seen, so the wrapper also works in torch-free code.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Mapping

import numpy as np

from ..runtime import EdgePolicy, load_policy


class _PassThrough:
    """Stands in for LeRobot's PolicyProcessorPipeline: the bundle's runtime does that work."""

    def __call__(self, data: Any) -> Any:
        return data

    def reset(self) -> None:
        pass


class LeRobotPolicy:
    """`select_action(batch)`, `predict_action_chunk(batch)`, `reset()` with LeRobot's tensor conventions."""

    name = "lerobot_edge"

    def __init__(self, policy: EdgePolicy):
        self.policy = policy
        m = policy.manifest
        features = {k: SimpleNamespace(type=o["kind"].upper(), shape=tuple(o["shape"]))
                    for k, o in m["observations"].items()}
        self.config = SimpleNamespace(type=m["policy"]["type"], device="cpu", use_amp=False,
                                      input_features=features, n_action_steps=m["runtime"].get("n_action_steps"),
                                      chunk_size=m["runtime"].get("chunk_size"))

    @classmethod
    def from_bundle(cls, bundle: str, backend: str | None = None, **kwargs) -> "LeRobotPolicy":
        return cls(load_policy(bundle, backend, **kwargs))

    def processors(self) -> tuple[_PassThrough, _PassThrough]:
        return _PassThrough(), _PassThrough()

    def reset(self) -> None:
        self.policy.reset()

    def eval(self) -> "LeRobotPolicy":  # LeRobot calls policy.eval(); nothing to switch here
        return self

    def to(self, *args, **kwargs) -> "LeRobotPolicy":
        return self

    def select_action(self, batch: Mapping[str, Any], noise: Any = None) -> Any:
        obs, like = self._numpy(batch)
        return _like(self.policy.select_action(obs, noise=_np(noise)), like)

    def predict_action_chunk(self, batch: Mapping[str, Any], noise: Any = None, **kw) -> Any:
        obs, like = self._numpy(batch)
        return _like(self.policy.predict_action_chunk(obs, noise=_np(noise), **kw), like)

    def _numpy(self, batch: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
        """LeRobot's batch as numpy; a preprocess_in_graph bundle's cameras back to the uint8 HWC frames
        LeRobot divided by 255 (exact: k / 255 in float32 times 255 rounds back to k)."""
        obs, like = _to_numpy(batch)
        for k, s in self.policy.observation_spec.items():
            v = obs.get(k)
            if (s.get("frame") and isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.ndim in (3, 4)
                    and np.isfinite(v).all()):   # a NaN frame stays float: the runtime refuses it, naming the key
                obs[k] = np.rint(np.moveaxis(v, -3, -1) * 255.0).clip(0, 255).astype(np.uint8)   # CHW -> HWC
        return obs, like


def _np(x: Any) -> Any:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else x


def _to_numpy(batch: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    """Tensors -> numpy (LeRobot batches: float CHW images in [0, 1], batch first); remember a tensor to mimic."""
    like, out = None, {}
    for k, v in batch.items():
        if hasattr(v, "detach"):
            like = like if like is not None else v
            out[k] = v.detach().cpu().numpy()
        else:
            out[k] = v
    return out, like


def _like(action: np.ndarray, like: Any) -> Any:
    if like is None:
        return action
    import torch

    return torch.from_numpy(np.ascontiguousarray(action)).to(like.device)
