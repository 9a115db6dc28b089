"""GR00T N1.5 (LeRobot's `groot`) on the robot: LeRobot's groot processors in numpy, the backbone once per chunk
with its features kept on the backend, num_inference_timesteps Euler steps of the denoise graph.

What LeRobot's GrootPackInputsStep / GrootEagleEncodeStep / GrootEagleCollateStep / GrootActionUnpack do, here:
- cameras: the present `observation.images.*` keys in sorted order (a missing camera is simply left out of the
  prompt, as LeRobot does); float images are quantized to uint8 as LeRobot does ((x.clamp(0, 1) * 255) truncated),
  resized to the Eagle tile size when they are not that size (torchvision's uint8 bicubic antialiased resize,
  reproduced in fixed point: kernels/bicubic.py), then (u - 127.5) / 127.5; LeRobot stacks the cameras, so it
  needs them of one size, this runtime resizes each;
- the prompt: the Eagle chat template (rendered at export for 1..N images) with str([task]) as the text, each
  "<image-i>" placeholder expanded to "<image i><img>" + <IMG_CONTEXT> x tokens_per_image + "</img>"; a batch uses
  its first task for every row (LeRobot does), an absent task is "Perform the task.";
- state: min/max to [-1, 1] (a zero range maps to 0), zero-padded to max_state_dim; actions: the first A dims of
  the chunk, back from [-1, 1] (a zero range gives min);
- the flow: x_0 = noise (B, horizon, max_action_dim), t_k = k / N, bucket int(t_k * num_timestep_buckets) whose
  sinusoidal codes are computed here in float32 (kernels/groot_time.py), x <- x + v / N;
- the queue: LeRobot's deque(maxlen=n_action_steps) fed the whole chunk keeps its LAST n_action_steps actions.
RTC: LeRobot's groot has no RTC (its predict_action_chunk takes no leftover); rtc= other than "off" is refused.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import numpy as np

from ...errors import BundleError, ObservationError
from ...kernels.bicubic import resize_bicubic_u8
from ...kernels.groot_time import time_code
from ..observations import _vector
from ..policy import EdgePolicy, inference_steps, same_batch
from ..queues import ActionQueue
from .vla_inputs import camera_images

PLACEHOLDER = re.compile(r"<(image|video)-(\d+)>")


class GrootEdgePolicy(EdgePolicy):
    required_graphs = ("vision", "backbone", "denoise")
    optional_graphs = ()
    takes_task = True
    default_task = "Perform the task."     # LeRobot's GrootPackInputsStep when the task is absent or empty
    task_per_row = False                   # ... and it takes the first task of a list for the whole batch

    def configure(self, overrides: dict[str, Any]) -> None:
        self.horizon = self.setting("action_horizon", int)
        self.max_action_dim = self.setting("max_action_dim", int)
        self.max_state_dim = self.setting("max_state_dim", int)
        self.buckets = self.setting("num_timestep_buckets", int)
        self.embodiment_id = self.setting("embodiment_id", int)
        self.image_size = self.setting("image_size", int)
        self.tokens_per_image = self.setting("tokens_per_image", int)
        self.prompts = self.setting("prompts", dict)
        self.marker = self.setting("task_marker", str)
        self.n_action_steps = int(overrides.pop("n_action_steps", None) or self.setting("n_action_steps", int))
        if self.n_action_steps < 1:
            raise ValueError(f"n_action_steps={self.n_action_steps}: expected >= 1")
        self.num_steps = inference_steps(self.setting("num_inference_steps", int),
                                         overrides.pop("num_inference_steps", None))
        rtc = overrides.pop("rtc", None)
        overrides.pop("rtc_options", None)
        if rtc not in (None, "off"):
            raise ValueError(f"rtc={rtc!r}: LeRobot's groot policy has no real-time chunking; only rtc='off'")
        if overrides.pop("temporal_ensemble_coeff", None) is not None:
            raise ValueError("temporal_ensemble_coeff applies to ACT, not to groot")
        self.rng = np.random.default_rng(overrides.pop("seed", None))
        self.cameras = sorted(k for k, s in self.observation_spec.items() if s["kind"] == "image")
        self.state_key = next((k for k, s in self.observation_spec.items() if s["kind"] == "state"), None)
        stats = self.bundle.stats()
        self.state_range = self._range(stats, self.state_key) if self.state_key else None
        self.action_range = self._range(stats, self.action_key)
        self.tokenizer = self._tokenizer()
        self.freqs = self._freqs(self.setting("time_freqs", dict))
        self.queue = ActionQueue()

    def _range(self, stats: dict, key: str) -> tuple[np.ndarray, np.ndarray] | None:
        if self.manifest["normalization"].get(key, "IDENTITY") != "MIN_MAX":
            return None
        st = stats.get(key) or {}
        if "min" not in st or "max" not in st:
            raise BundleError(f"malformed bundle: {key} is MIN_MAX but stats.safetensors has no min/max for it")
        return st["min"].astype(np.float32).ravel(), st["max"].astype(np.float32).ravel()

    def _freqs(self, spec: dict) -> dict[str, np.ndarray]:
        """The timestep codes' float32 frequencies from the bundle's checksummed .npz (never unpickled), checked
        against the denoise graph's code widths."""
        try:
            with np.load(self.bundle.verified_file(spec["file"]), allow_pickle=False) as z:
                freqs = {k: np.asarray(z[k], np.float32) for k in ("action", "dit")}
        except BundleError:
            raise
        except (KeyError, TypeError, ValueError, OSError) as e:
            raise BundleError(f"malformed bundle: runtime.time_freqs {spec.get('file') if isinstance(spec, dict) else spec!r}: "
                              f"{type(e).__name__}: {e}") from e
        inputs = {i.name: i for i in self.bundle.graphs["denoise"].inputs}
        want = ({"action": int(inputs["action_time"].shape[1]) // 2, "dit": int(inputs["dit_time"].shape[1]) // 2}
                if {"action_time", "dit_time"} <= set(inputs) else None)
        if want is None or any(freqs[k].shape != (n,) for k, n in want.items()):
            raise BundleError(f"malformed bundle: runtime.time_freqs do not fit graph 'denoise' (inputs {sorted(inputs)})")
        return freqs

    def _tokenizer(self):
        try:
            from tokenizers import Tokenizer
        except ImportError as e:  # a base dependency
            raise BundleError("this bundle needs the `tokenizers` package: pip install tokenizers") from e
        spec = self.setting("tokenizer", dict)
        try:
            return Tokenizer.from_file(str(self.bundle.verified_file(spec["file"])))
        except BundleError:
            raise
        except Exception as e:  # the tokenizers library raises its own exception type for a bad file
            raise BundleError(f"{spec.get('file')}: not a readable tokenizer.json ({e})") from e

    def reset(self) -> None:
        self.queue.clear()

    # -- host preprocessing ------------------------------------------------------------------------
    def _pixels(self, x: np.ndarray) -> np.ndarray:
        """(B, 3, H, W) float in [0, 1] -> (B, 3, S, S) as the Eagle processor gives them to SigLIP."""
        u8 = np.floor(np.clip(x, 0.0, 1.0) * np.float32(255.0)).astype(np.float32)
        u8 = resize_bicubic_u8(u8, self.image_size, self.image_size)
        mean = np.asarray(self.setting("image_mean", list), np.float32).reshape(1, 3, 1, 1) * np.float32(255.0)
        std = np.asarray(self.setting("image_std", list), np.float32).reshape(1, 3, 1, 1) * np.float32(255.0)
        return ((u8 - mean) / std).astype(np.float32)

    def prompt_ids(self, task: Any, n_images: int) -> np.ndarray:
        """The Eagle prompt's token ids (L,) for `n_images` cameras and the task (the first of a list)."""
        if isinstance(task, (list, tuple)):
            task = task[0] if task else None
        if task is not None and not isinstance(task, str):
            raise ObservationError(f"task: expected a string or a list of strings, got {type(task).__name__}")
        task = str(task or self.setting("default_task", str))   # str(): a numpy str_ would repr as np.str_(...)
        tpl = self.prompts.get(str(n_images))
        if tpl is None:
            raise BundleError(f"malformed manifest: runtime.prompts has no entry for {n_images} image(s)")
        tok, start, end = (self.setting(k, str) for k in ("image_token", "image_start", "image_end"))
        text = tpl.replace(self.marker, str([task]))
        text = PLACEHOLDER.sub(lambda m: f"<image {m.group(2)}>{start}{tok * self.tokens_per_image}{end}", text)
        return np.asarray(self.tokenizer.encode(text).ids, np.int64)

    def _normalize_state(self, state: np.ndarray) -> np.ndarray:
        if self.state_range is not None:
            lo, hi = self.state_range
            d = hi - lo
            state = np.where(d != 0, 2 * (state - lo) / np.where(d != 0, d, 1) - 1, 0).astype(np.float32)
        return np.pad(state, ((0, 0), (0, self.max_state_dim - state.shape[1])))[:, None]   # (B, 1, Smax)

    def _prepare(self, obs: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        with self._stage("preprocess"):
            if not isinstance(obs, Mapping):
                raise ObservationError(f"observation must be a dict of LeRobot feature keys, got {type(obs).__name__}")
            if self.rename_map:
                obs = {self.rename_map.get(k, k): v for k, v in obs.items()}
            images, _, batched = camera_images(obs, self.cameras)
            present = [k for k in self.cameras if k in obs]
            b = images[0].shape[0]
            out = {"images": [self._pixels(x) for x in images[:len(present)]]}
            state = np.zeros((b, 0), np.float32)
            if self.state_key is not None:
                if self.state_key not in obs:
                    raise ObservationError(f"missing observation {self.state_key!r}")
                state, sb = _vector(self.state_key, obs[self.state_key],
                                    tuple(self.observation_spec[self.state_key]["shape"]))
                if state.shape[0] != b:
                    raise ObservationError(f"{self.state_key}: batch {state.shape[0]} != cameras' batch {b}")
                batched = batched or sb
            out["state"] = self._normalize_state(state)
            out["input_ids"] = np.repeat(self.prompt_ids(obs.get("task"), len(present))[None], b, axis=0)
        return out, batched

    # -- graphs ------------------------------------------------------------------------------------
    def _sample(self, x: dict, noise: np.ndarray) -> np.ndarray:
        b = noise.shape[0]
        tokens = [self.run_graph("vision", {"image": img})["image_tokens"] for img in x["images"]]
        emb = np.full((b,), self.embodiment_id, np.int64)
        feats = self.run_graph("backbone", {"input_ids": x["input_ids"], "image_tokens": np.concatenate(tokens, 1),
                                            "state": x["state"], "embodiment_id": emb},
                               keep=("vl_features", "state_features"))
        x_t, dt = noise, np.float32(1.0 / self.num_steps)
        for step in range(self.num_steps):
            bucket = int(step / float(self.num_steps) * self.buckets)
            with self._stage("sampler"):
                buckets = np.full((b,), bucket, np.int64)
                codes = {"action_time": time_code(buckets, self.freqs["action"], cos_first=False),
                         "dit_time": time_code(buckets, self.freqs["dit"], cos_first=True)}
            v = self.run_graph("denoise", {"x_t": x_t, **codes,
                                           "vl_features": feats["vl_features"],
                                           "state_features": feats["state_features"], "embodiment_id": emb})
            with self._stage("sampler"):
                x_t = (x_t + dt * v["velocity"]).astype(np.float32)
        return x_t

    def _noise(self, noise: np.ndarray | None, b: int) -> np.ndarray:
        shape = (b, self.horizon, self.max_action_dim)
        if noise is None:
            return self.rng.standard_normal(shape).astype(np.float32)
        noise = np.asarray(noise, dtype=np.float32)
        noise = noise[None] if noise.ndim == 2 else noise
        if noise.shape != shape:
            raise ObservationError(f"noise: expected shape {shape} (B, action_horizon, max_action_dim), got {noise.shape}")
        if not np.isfinite(noise).all():
            raise ObservationError("noise: contains NaN or inf")
        return noise

    def postprocess(self, normalized: np.ndarray) -> np.ndarray:
        """LeRobot's groot unnormalization: (y + 1) / 2 * (max - min) + min, min where max == min."""
        with self._stage("postprocess"):
            if not np.isfinite(normalized).all():
                from ...errors import NonFiniteActionError

                raise NonFiniteActionError(f"the {self.backend} engine produced NaN/inf actions; nothing returned")
            if self.action_range is None:
                return normalized
            lo, hi = self.action_range
            d = hi - lo
            return np.where(d != 0, (normalized + 1.0) * 0.5 * np.where(d != 0, d, 1) + lo, lo).astype(np.float32)

    # -- LeRobot's interface -----------------------------------------------------------------------
    def predict_action_chunk(self, obs: Mapping[str, Any], noise: np.ndarray | None = None, **rtc) -> np.ndarray:
        """(B, action_horizon, A) robot units ((action_horizon, A) unbatched)."""
        if any(v is not None for v in rtc.values()):
            raise ValueError(f"{sorted(rtc)}: LeRobot's groot policy has no real-time chunking")
        t0 = self._start_call()
        x, batched = self._prepare(obs)
        chunk = self._sample(x, self._noise(noise, x["state"].shape[0]))
        chunk = self.postprocess(chunk[:, :, : self.manifest["action"]["shape"][0]])
        self._end_call(t0)
        return chunk if batched else chunk[0]

    def select_action(self, obs: Mapping[str, Any], noise: np.ndarray | None = None) -> np.ndarray:
        """(B, A) robot units ((A,) unbatched); a new chunk only when the queue is empty, queued as LeRobot's
        bounded deque keeps it (the chunk's last n_action_steps actions)."""
        if len(self.queue) == 0:
            chunk = self.predict_action_chunk(obs, noise)
            batched = chunk.ndim == 3
            chunk = chunk if batched else chunk[None]
            self.queue.extend_chunk(chunk[:, max(0, chunk.shape[1] - self.n_action_steps):], self.n_action_steps)
            return self.queue.pop() if batched else self.queue.pop()[0]
        t0 = self._start_call()
        x, batched = self._prepare(obs)
        same_batch(x["state"].shape[0], self.queue.batch, "queued actions")
        with self._stage("sampler"):
            action = self.queue.pop()
        self._end_call(t0)
        return action if batched else action[0]
