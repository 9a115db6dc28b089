"""RemotePolicy: LeRobot's policy interface (reset / select_action / predict_action_chunk) for a policy served
by `lerobot-edge serve` (or a `lerobot-edge triton` repository). The robot side needs numpy and tritonclient
only: no torch, no inference backend, no engine files.

    from lerobot_edge.serving import RemotePolicy
    policy = RemotePolicy("grpc://gpu-box:8001", "act_aloha")   # a model name on the server, or a bundle dir
    policy.reset()
    action = policy.select_action(obs)

What stays on the robot: the action queue and ACT's temporal ensembling (stateless policies: ACT, pi0,
pi05, SmolVLA, SAC), RTC's leftover (the control loop passes it to predict_action_chunk) and, with `seed`,
the noise draws, so a seeded RemotePolicy returns what a seeded load_policy returns. Policies with state
between calls (Diffusion, VQ-BeT: observation history; TDMPC: warm start) keep it on the server, one per
client id: select_action and predict_action_chunk are then one request each, as LeRobot computes them.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import BundleError, ObservationError
from ..registry import runtime_class
from ..runtime.policy import same_batch
from ..runtime.queues import ActionQueue, TemporalEnsembler
from . import protocol as P
from .transport import Backoff, TritonTransport


@dataclass
class RemoteBundle:
    """What a control loop asks of `policy.bundle`: where it is and its (action) stats."""

    path: str
    manifest: dict
    action_stats: dict = field(default_factory=dict)

    def stats(self) -> dict:
        return {self.manifest["action"]["key"]: {k: np.asarray(v, np.float32) for k, v in self.action_stats.items()}}


def _local_manifest(source: str | Path) -> dict | None:
    p = Path(source).expanduser()
    if p.is_dir() and (p / "manifest.json").is_file():
        p = p / "manifest.json"
    if p.is_file():
        try:
            return json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise BundleError(f"{p}: not a readable bundle manifest ({e})") from e
    return None


class RemotePolicy:
    """url: "grpc://host:port" (Triton's gRPC port). bundle_manifest_or_name: a bundle directory or its
    manifest.json (read locally; the model name is the directory's name unless `model` is given), or the
    served model's name (its manifest is fetched from the server's `<name>_info` model).
    timeout: seconds per request; a slower answer is a BackendUnavailableError, like a dead server.
    rtc: whether the served policy takes RTC's leftover (default: what the server says, see supports_rtc).
    n_action_steps / temporal_ensemble_coeff: the robot-side queue settings (default: the checkpoint's)."""

    def __init__(self, url: str, bundle_manifest_or_name: str | Path, *, model: str | None = None,
                 timeout: float = 5.0, seed: int | None = None, n_action_steps: int | None = None,
                 temporal_ensemble_coeff: float | None = None, client_id: str | None = None,
                 rtc: bool | None = None, backoff: Backoff | None = None):
        self.transport = TritonTransport(url, timeout=timeout, backoff=backoff)
        manifest = _local_manifest(bundle_manifest_or_name)
        if manifest is not None:
            self.model = model or P.model_name(Path(bundle_manifest_or_name).expanduser().resolve().parent
                                             if Path(bundle_manifest_or_name).is_file()
                                             else Path(bundle_manifest_or_name).expanduser().resolve())
            stats: dict = {}
            served_rtc = None
        else:
            self.model = model or str(bundle_manifest_or_name)
            info = self.transport.info(self.model)
            manifest, stats, served_rtc = info["manifest"], info.get("action_stats", {}), info.get("supports_rtc")
        self.manifest = manifest
        checkpoint_rtc = bool((manifest["runtime"].get("rtc") or {}).get("enabled"))
        self._rtc = bool(rtc if rtc is not None else served_rtc if served_rtc is not None else checkpoint_rtc)
        self.bundle = RemoteBundle(f"{url}/{self.model}", manifest, stats)
        self.backend = f"remote:{self.transport.address}"
        self.observation_spec: dict[str, dict] = manifest["observations"]
        self.action_key: str = manifest["action"]["key"]
        self.rename_map: dict[str, str] = dict(manifest.get("rename_map") or {})
        self.cls = runtime_class(manifest["runtime"]["kind"])
        self.keyed = bool(self.cls.has_history or self.cls.keeps_state)
        self.takes_task = bool(self.cls.takes_task)
        rt = manifest["runtime"]
        self.n_action_steps = int(n_action_steps or rt.get("n_action_steps") or 1)
        coeff = rt.get("temporal_ensemble_coeff") if temporal_ensemble_coeff is None else temporal_ensemble_coeff
        self.temporal_ensemble_coeff = coeff
        self.n_action_steps = 1 if coeff is not None else self.n_action_steps
        self.client_id = client_id or uuid.uuid4().hex
        self.seed = seed
        self.rng = np.random.default_rng(seed) if seed is not None else None
        self.timings: dict[str, float] = {}
        self.queue = ActionQueue()
        self.ensembler = (TemporalEnsembler(float(coeff), int(rt["chunk_size"]))
                          if coeff is not None and not self.keyed else None)
        self._reset_pending = True

    # -- capabilities, as EdgePolicy's -------------------------------------------------------------------
    @property
    def type(self) -> str:
        return self.manifest["policy"]["type"]

    @property
    def supports_rtc(self) -> bool:
        """Whether predict_action_chunk sends RTC's leftover: `rtc=` if given, else the server's RTC mode (from
        its `<name>_info`), else the checkpoint's rtc_config (a RemotePolicy made from a local manifest)."""
        return self._rtc

    stochastic = property(lambda self: self.cls.stochastic)
    has_history = property(lambda self: self.cls.has_history)

    def close(self) -> None:
        self.transport.close()

    def __repr__(self) -> str:
        return f"<RemotePolicy {self.type} model={self.model} at {self.transport.url}>"

    # -- LeRobot's interface --------------------------------------------------------------------------------
    def reset(self) -> None:
        """Clear the robot-side queue/ensembler; the server-side state of this client is reset with the next
        request."""
        self.queue.clear()
        if self.ensembler is not None:
            self.ensembler.reset()
        self._reset_pending = True

    def predict_action_chunk(self, obs: Mapping[str, Any], noise: np.ndarray | None = None, inference_delay=None,
                             prev_chunk_left_over=None, execution_horizon=None) -> np.ndarray:
        """(B, T, A) robot units ((T, A) unbatched); one request."""
        inputs, batched = self._inputs(obs, noise)
        params = self._params("chunk")
        if prev_chunk_left_over is not None and self.supports_rtc:
            prev = np.asarray(prev_chunk_left_over, np.float32)
            inputs[P.LEFTOVER] = prev if prev.ndim == 3 else prev[None]
            if inference_delay is None:
                raise ValueError("RTC needs inference_delay with prev_chunk_left_over")
            params["inference_delay"] = int(inference_delay)
            if execution_horizon is not None:
                params["execution_horizon"] = int(execution_horizon)
        chunk = self._request(inputs, params)
        if self.keyed and self.cls.chunk_batch_axis:
            chunk = np.swapaxes(chunk, 0, self.cls.chunk_batch_axis)
            return chunk if batched else chunk[:, 0]
        return chunk if batched else chunk[0]

    def select_action(self, obs: Mapping[str, Any], noise: np.ndarray | None = None) -> np.ndarray:
        """(B, A) robot units ((A,) unbatched). A request only when the queue is empty (stateless policies)
        or every step (policies whose history lives on the server)."""
        if self.keyed:
            inputs, batched = self._inputs(obs, noise)
            action = self._request(inputs, self._params("select"))[:, 0]
            return action if batched else action[0]
        t0 = time.perf_counter()
        if self.ensembler is not None:
            chunk = self.predict_action_chunk(obs, noise)
            batched = chunk.ndim == 3
            action = self.ensembler.update(chunk if batched else chunk[None])
        elif len(self.queue) == 0:
            chunk = self.predict_action_chunk(obs, noise)
            batched = chunk.ndim == 3
            self.queue.extend_chunk(chunk if batched else chunk[None], self.n_action_steps)
            action = self.queue.pop()
        else:
            batch, batched = self._check_queued(obs)
            same_batch(batch, self.queue.batch, "queued actions")
            action = self.queue.pop()
        self.timings["total"] = time.perf_counter() - t0
        return action if batched else action[0]

    # -- requests -------------------------------------------------------------------------------------------
    def _params(self, mode: str) -> dict[str, Any]:
        params: dict[str, Any] = {"mode": mode}
        if self.keyed:
            params["client_id"] = self.client_id
            if self.seed is not None:
                params["seed"] = int(self.seed)
            if self._reset_pending:
                params["reset"] = True
        return params

    def _request(self, inputs: dict[str, np.ndarray], params: dict[str, Any]) -> np.ndarray:
        t0 = time.perf_counter()
        out = self.transport.infer(self.model, inputs, params)
        self._reset_pending = False
        err = P.decode_error(np.asarray(out[P.ERROR]).reshape(-1)[0])
        if err is not None:
            raise err
        self.timings = {"remote": time.perf_counter() - t0, "total": time.perf_counter() - t0}
        return np.asarray(out[P.ACTION], np.float32)

    def _inputs(self, obs: Mapping[str, Any], noise: np.ndarray | None) -> tuple[dict[str, np.ndarray], bool]:
        """obs -> request tensors (batched) and whether the caller's obs was batched."""
        if not isinstance(obs, Mapping):
            raise ObservationError(f"observation must be a dict of LeRobot feature keys, got {type(obs).__name__}")
        if self.rename_map:
            obs = {self.rename_map.get(k, k): v for k, v in obs.items()}
        inputs: dict[str, np.ndarray] = {}
        batched = False
        for key, spec in self.observation_spec.items():
            if key not in obs:
                raise ObservationError(f"missing observation {key!r}: expected {spec['kind']} of shape "
                                       f"{tuple(spec['shape'])}")
            if spec["kind"] == "image":
                raw = np.asarray(obs[key]) if not hasattr(obs[key], "detach") else obs[key]
                batched |= np.ndim(raw) == 4
                inputs[key] = P.frame_for_wire(key, raw)
            else:
                a = np.asarray(obs[key], np.float32)
                batched |= a.ndim == len(spec["shape"]) + 1
                inputs[key] = a if a.ndim == len(spec["shape"]) + 1 else a[None]
        b = next(iter(inputs.values())).shape[0]
        if self.takes_task and "task" in obs:
            task = obs["task"]
            tasks = [task] * b if isinstance(task, str) else list(task)
            inputs[P.TASK] = np.array([[t.encode()] for t in tasks], dtype=object)
        noise = self._noise(noise, b)
        if noise is not None:
            inputs[P.NOISE] = noise
        return inputs, batched

    def _noise(self, noise: np.ndarray | None, b: int) -> np.ndarray | None:
        """Given noise passes (with a batch axis); a seeded stateless policy draws its own as load_policy
        would, so the server stays stateless; otherwise the server draws."""
        shape = self.manifest.get("noise_shape")
        if noise is not None:
            n = np.asarray(noise, np.float32)
            return n if shape is None or n.ndim == len(shape) else n[None]
        if self.rng is None or self.keyed or not shape or self.cls.noise_kind != "normal":
            return None
        return self.rng.standard_normal((b, *[int(d) for d in shape[1:]])).astype(np.float32)

    def _check_queued(self, obs: Mapping[str, Any]) -> tuple[int, bool]:
        """The checks of a step served from the queue: keys present, finite; -> (batch, batched)."""
        b, batched = None, False
        for key, spec in self.observation_spec.items():
            key_in = next((k for k, v in self.rename_map.items() if v == key), key)
            if key not in obs and key_in not in obs:
                raise ObservationError(f"missing observation {key!r}: expected {spec['kind']} of shape "
                                       f"{tuple(spec['shape'])}")
            a = np.asarray(obs.get(key, obs.get(key_in)))
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                raise ObservationError(f"{key}: contains NaN or inf")
            ndim = 3 if spec["kind"] == "image" else len(spec["shape"])
            batched |= a.ndim == ndim + 1
            b = a.shape[0] if a.ndim == ndim + 1 else 1
        return int(b or 1), batched
