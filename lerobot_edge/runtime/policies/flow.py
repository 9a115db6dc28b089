"""Flow-matching VLAs on the robot (pi0, pi05, SmolVLA): host preprocessing, the prefix once per
chunk with its KV cache kept on the backend, N Euler steps of the denoise graph, RTC guidance in numpy.

Graphs: `vision` (one camera per call) -> `prefix` (-> k_cache, v_cache, kept as device handles) ->
`denoise` (x_t, t, k_cache, v_cache, prefix_mask[, state] -> v_t), called num_inference_steps times.
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping

import numpy as np

from ...errors import BundleError, ObservationError
from ...kernels import rtc as rtc_kernels
from ...kernels.flow_time import flow_time_embedding
from ...kernels.image import PadResize
from ..observations import _vector
from ..policy import EdgePolicy, inference_steps, same_batch
from ..queues import ActionQueue
from .vla_inputs import Tokenizer, camera_images, pi05_prompts, task_list

RTC_MODES = ("guided", "exact", "off")
EXACT_GRAPH = "denoise_rtc"   # exported with rtc_exact=True: (denoise inputs, time, prev, rtc_weights) -> v_t, correction


class FlowMatchingEdgePolicy(EdgePolicy):
    """LeRobot's PI0Policy / PI05Policy behaviour (`select_action` queues n_action_steps of each chunk;
    `predict_action_chunk` takes RTC's inference_delay / prev_chunk_left_over / execution_horizon)."""

    required_graphs = ("vision", "prefix", "denoise")
    optional_graphs = ("denoise_rtc",)   # bundles exported with rtc_exact=True
    takes_task = True

    @classmethod
    def skip_graphs(cls, manifest: Mapping[str, Any], overrides: Mapping[str, Any]) -> tuple[str, ...]:
        """Graphs load_policy need not load: the exact-RTC graph (a second copy of the expert's weights) unless
        rtc="exact" was asked for."""
        return () if overrides.get("rtc") == "exact" else (EXACT_GRAPH,)

    def configure(self, overrides: dict[str, Any]) -> None:
        self.chunk_size = self.setting("chunk_size", int)
        self.max_action_dim = self.setting("max_action_dim", int)
        self.max_state_dim = self.setting("max_state_dim", int, 0)
        self.image_size = self.setting("image_size", int)
        rt = self.manifest["runtime"]
        padding = rt.get("padding", "center")  # openpi centres the resized image; SmolVLA pads top and left
        if padding not in ("center", "top_left"):
            raise BundleError(f"malformed manifest: runtime.padding {padding!r}; expected 'center' or 'top_left'")
        self.center, self.clamp = padding == "center", bool(rt.get("clamp", True))
        # SmolVLA: the normalized state is the prefix's last token (a prefix graph input and one mask column)
        self.state_token = bool(rt.get("state_token", False))
        self.n_action_steps = int(overrides.pop("n_action_steps", None) or self.setting("n_action_steps", int))
        if not 1 <= self.n_action_steps <= self.chunk_size:
            raise ValueError(f"n_action_steps={self.n_action_steps}: expected 1..chunk_size ({self.chunk_size})")
        self.num_steps = inference_steps(self.setting("num_inference_steps", int),
                                         overrides.pop("num_inference_steps", None))
        self._configure_rtc(overrides.pop("rtc", None), overrides.pop("rtc_options", None))
        seed = overrides.pop("seed", None)
        self.rng = np.random.default_rng(seed)
        if overrides.pop("temporal_ensemble_coeff", None) is not None:
            raise ValueError("temporal_ensemble_coeff applies to ACT, not to flow-matching policies")
        self.state_key = next((k for k, s in self.observation_spec.items() if s["kind"] == "state"), None)
        self.cameras = [k for k, s in self.observation_spec.items() if s["kind"] == "image"]
        # one per camera: each keeps its resize buffers (and returns them) between chunks
        self._resize = {k: PadResize(self.image_size, self.center, clamp=self.clamp, signed=True)
                        for k in self.cameras}
        self._configure_frames()
        tok = self.setting("tokenizer", dict)
        self.tokenizer = Tokenizer(self.bundle.verified_file(tok["file"]), int(tok["max_length"]),
                                   int(tok.get("pad_id", 0)), tok.get("padding_side", "right"))
        self.append_newline = bool(self.manifest["runtime"].get("append_newline", False))
        self.state_in_prompt = bool(self.manifest["runtime"].get("state_in_prompt", False))
        if self.state_token and self.state_key is None:
            raise BundleError("malformed manifest: runtime.state_token without a state observation")
        if self.state_in_prompt and self.state_key is None:
            raise BundleError("malformed manifest: runtime.state_in_prompt without a state observation")
        self._configure_embedding(self.manifest["runtime"].get("embedding"))
        self.denoise_inputs = {i.name: i for i in self.bundle.graphs["denoise"].inputs}
        if "time_emb" not in self.denoise_inputs:
            raise BundleError(f"graph 'denoise' has no 'time_emb' input (inputs: {sorted(self.denoise_inputs)})")
        self.time_dim = int(self.denoise_inputs["time_emb"].shape[1])
        self.min_period = float(self.setting("min_period", (int, float)))
        self.max_period = float(self.setting("max_period", (int, float)))
        self.queue = ActionQueue()

    def _configure_frames(self) -> None:
        """preprocess_in_graph bundles: camera -> its frames graph (uint8 frame -> the vision input, kept on the
        backend), and the frame shapes fixed at export; host bundles: none (frames are resized here)."""
        cams = (self.manifest.get("preprocess") or {}).get("cameras", {})
        self.frame_graphs: dict[str, dict] = {}
        for key in self.cameras:
            if self.observation_spec[key].get("frame"):
                entry = cams.get(key)
                if entry is None or entry["graph"] not in self.sessions or "output" not in entry:
                    raise BundleError(f"malformed manifest: camera {key!r} is taken raw but preprocess.cameras "
                                      f"names no loaded frames graph for it ({entry})")
                self.frame_graphs[key] = entry
        self.raw_shapes = {k: tuple(self.observation_spec[k]["shape"]) for k in self.frame_graphs}

    def _configure_rtc(self, mode: str | None, options: Mapping[str, Any] | None) -> None:
        saved = self.manifest["runtime"].get("rtc") or {}
        if mode is None:
            mode = "guided" if saved.get("enabled") else "off"
        if mode == "trained":
            raise ValueError("rtc='trained' (hard inpainting for checkpoints trained with training-time RTC) waits "
                             "for a LeRobot release that ships training-time RTC; use 'guided' or 'exact'")
        if mode not in RTC_MODES:
            raise ValueError(f"rtc={mode!r}: expected one of {RTC_MODES}")
        if mode == "exact" and EXACT_GRAPH not in self.bundle.graphs:
            raise ValueError("rtc='exact' needs a bundle exported with rtc_exact=True (lerobot-edge export "
                             f"--rtc-exact); this bundle has graphs {sorted(self.bundle.graphs)}")
        self.rtc_mode = mode
        base = {k: saved[k] for k in ("prefix_attention_schedule", "max_guidance_weight", "execution_horizon")
                if k in saved}
        opts = dict(options or {})
        if "schedule" in opts:
            opts["prefix_attention_schedule"] = opts.pop("schedule")
        unknown = sorted(set(opts) - {"prefix_attention_schedule", "max_guidance_weight", "execution_horizon"})
        if unknown:
            raise ValueError(f"rtc_options {unknown} unknown; accepted: schedule, max_guidance_weight, "
                             "execution_horizon")
        self.rtc = rtc_kernels.RTCOptions(**{**base, **opts})

    @property
    def supports_rtc(self) -> bool:
        """True unless loaded with rtc="off" (which ignores a given leftover)."""
        return self.rtc_mode != "off"

    def _configure_embedding(self, emb: Mapping[str, Any] | None) -> None:
        """pi0/pi05: the language embedding table is a bundle file, memory-mapped (only the rows a prompt uses
        are ever read) and gathered here; the prefix graph takes `lang_embeds`."""
        self.embed_table = None
        if not emb:
            return
        try:
            self.embed_table = np.load(self.bundle.verified_file(emb["file"]), mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as e:  # a pickled or corrupt .npy is never unpickled
            raise BundleError(f"{emb['file']}: not a readable .npy table without pickles ({e})") from e
        self.embed_scale = np.float32(emb["scale"])
        if self.embed_table.ndim != 2 or self.embed_table.dtype != np.float32:
            raise BundleError(f"{emb['file']}: expected a float32 (vocab, width) table, got "
                              f"{self.embed_table.dtype} {self.embed_table.shape}")

    def _embed(self, ids: np.ndarray) -> np.ndarray:
        """(B, L) token ids -> (B, L, W) float32 embeddings * sqrt(W), as the VLM's embed_tokens would."""
        if ids.size and (ids.min() < 0 or ids.max() >= self.embed_table.shape[0]):
            raise BundleError(f"token id {int(ids.max())} outside the bundle's embedding table "
                              f"({self.embed_table.shape[0]} rows): tokenizer and table do not match")
        return np.asarray(self.embed_table[ids], dtype=np.float32) * self.embed_scale

    def reset(self) -> None:
        self.queue.clear()
        self._time_rows: dict[float, np.ndarray] = {}   # flow time -> its embedding (1, time_dim)

    # -- host preprocessing ------------------------------------------------------------------------
    def _prepare(self, obs: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], bool]:
        """-> {"images": [(B,3,S,S) in [-1,1]] present cameras first, "image_mask": (B, C), "state": (B, Smax),
        "lang_tokens", "lang_mask": (B, L)}, batched?"""
        with self._stage("preprocess"):
            if not isinstance(obs, Mapping):
                raise ObservationError(f"observation must be a dict of LeRobot feature keys, got {type(obs).__name__}")
            if self.rename_map:
                obs = {self.rename_map.get(k, k): v for k, v in obs.items()}
            images, mask, batched = camera_images(obs, self.cameras, self.raw_shapes)
            b = images[0].shape[0]
            present = [k for k in self.cameras if k in obs]
            images = [x if k in self.frame_graphs else self._resize[k](x)   # raw frames: their frames graph
                      for k, x in zip(present, images)] + images[len(present):]
            out = {"images": images, "image_mask": np.repeat(mask[None], b, axis=0), "cameras": present}
            if self.state_key is not None:
                state, sb = self._state(obs, b)
                batched = batched or sb
                state = self.normalizer.normalize(self.state_key, state)
                out["state"] = np.pad(state, ((0, 0), (0, self.max_state_dim - state.shape[1])))
            task = obs.get("task")
            if self.state_in_prompt:  # pi05: the normalized state goes into the prompt, not into a graph
                task = pi05_prompts(task, state)
            out["lang_tokens"], out["lang_mask"] = self.tokenizer(task, b, self.append_newline)
        return out, batched

    def _state(self, obs: Mapping[str, Any], b: int) -> tuple[np.ndarray, bool]:
        """The observation's state as (B, state_dim) float32, checked against the cameras' batch B; batched?"""
        if self.state_key not in obs:
            raise ObservationError(f"missing observation {self.state_key!r}")
        state, batched = _vector(self.state_key, obs[self.state_key], tuple(self.observation_spec[self.state_key]["shape"]))
        if state.shape[0] != b:
            raise ObservationError(f"{self.state_key}: batch {state.shape[0]} != cameras' batch {b}")
        return state, batched

    def _check(self, obs: Mapping[str, Any]) -> tuple[int, bool]:
        """Every check of `_prepare` (cameras, state, task), nothing resized, normalized or tokenized: what a
        select_action served from the queue pays. -> batch size B, batched?"""
        with self._stage("preprocess"):
            if not isinstance(obs, Mapping):
                raise ObservationError(f"observation must be a dict of LeRobot feature keys, got {type(obs).__name__}")
            if self.rename_map:
                obs = {self.rename_map.get(k, k): v for k, v in obs.items()}
            images, _, batched = camera_images(obs, self.cameras, self.raw_shapes, convert=False)
            b = images[0].shape[0]
            if self.state_key is not None:
                state, sb = self._state(obs, b)
                batched = batched or sb
            task_list(obs.get("task"), b)
        return b, batched

    # -- graphs ------------------------------------------------------------------------------------
    def _prefix(self, x: dict[str, np.ndarray]) -> tuple[Any, Any, np.ndarray]:
        """Vision per present camera (missing ones are masked: their tokens are never attended, which is also
        what LeRobot's SmolVLA gets by dropping them), then the prefix graph. -> k_cache, v_cache (device handles), prefix_mask (B, P)."""
        spec = {i.name: i for i in self.bundle.graphs["prefix"].inputs}
        n_tok = self.bundle.graphs["vision"].outputs[0].shape[1]
        tokens = []
        for i, (img, present) in enumerate(zip(x["images"], x["image_mask"][0])):
            if present:
                frames = self.frame_graphs.get(x["cameras"][i])
                if frames is not None:   # uint8 frame -> the vision input, left on the backend
                    out = frames["output"]
                    img = self.run_graph(frames["graph"], {frames["input"]: img}, keep=(out,))[out]
                tokens.append(self.run_graph("vision", {"image": img})["image_tokens"])
            else:
                tokens.append(np.zeros_like(tokens[0]))
        feed = {"image_tokens": np.concatenate(tokens, axis=1), "image_mask": x["image_mask"].astype(np.float32),
                "lang_tokens": x["lang_tokens"], "lang_mask": x["lang_mask"].astype(np.float32)}
        masks = [np.repeat(x["image_mask"], n_tok, axis=1), x["lang_mask"]]
        if self.state_token:
            feed["state"] = x["state"]
            masks.append(np.ones((x["lang_mask"].shape[0], 1), bool))
        if "lang_embeds" in spec:
            with self._stage("preprocess"):
                feed["lang_embeds"] = self._embed(x["lang_tokens"])
        feed = {k: v for k, v in feed.items() if k in spec}
        out = self.run_graph("prefix", feed, keep=("k_cache", "v_cache"))
        prefix_mask = np.concatenate(masks, axis=1)
        return out["k_cache"], out["v_cache"], prefix_mask.astype(np.float32)

    def _noise(self, noise: np.ndarray | None, b: int) -> np.ndarray:
        shape = (b, self.chunk_size, self.max_action_dim)
        if noise is None:
            return self.rng.standard_normal(shape).astype(np.float32)
        noise = np.asarray(noise, dtype=np.float32)
        noise = noise[None] if noise.ndim == 2 else noise
        if noise.shape != shape:
            raise ObservationError(f"noise: expected shape {shape} (B, chunk_size, max_action_dim), got {noise.shape}")
        return noise

    def _leftover(self, prev, b: int, delay, horizon) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Robot-unit leftover -> (normalized, zero-padded (B, T, Amax), prefix weights (T,)), or (None, None)."""
        if prev is None:
            return None, None
        if self.rtc_mode == "off":
            warnings.warn("prev_chunk_left_over is ignored with rtc='off' (as LeRobot ignores it when RTC is "
                          "disabled)", stacklevel=3)
            return None, None
        if delay is None:
            raise ValueError("RTC needs inference_delay with prev_chunk_left_over")
        try:
            prev = np.asarray(prev, dtype=np.float32)
        except (TypeError, ValueError) as e:
            raise ObservationError(f"prev_chunk_left_over: expected a numeric array ({e})") from e
        if not np.isfinite(prev).all():
            raise ObservationError("prev_chunk_left_over: contains NaN or inf")
        if prev.ndim not in (2, 3) or prev.shape[-1] != self.manifest["action"]["shape"][0]:
            raise ObservationError(f"prev_chunk_left_over: expected (T, A) or (B, T, A) with A = "
                                   f"{self.manifest['action']['shape'][0]} robot units, got {prev.shape}")
        norm = self.normalizer.normalize(self.action_key, prev)
        horizon = self.rtc.execution_horizon if horizon is None else int(horizon)
        horizon = min(horizon, norm.shape[-2])
        w = rtc_kernels.prefix_weights(int(delay), horizon, self.chunk_size, self.rtc.prefix_attention_schedule)
        return rtc_kernels.pad_leftover(norm, b, self.chunk_size, self.max_action_dim), w

    def _sample(self, x: dict, noise: np.ndarray, prev, weights) -> np.ndarray:
        """Euler from t=1 to 0: x <- x + dt * v (dt = -1/N), v guided by RTC when a leftover is given."""
        k, v, prefix_mask = self._prefix(x)
        dt = -1.0 / self.num_steps
        x_t = noise
        for step in range(self.num_steps):
            time = 1.0 + step * dt
            with self._stage("sampler"):
                time_emb = self._time_embedding(time, x_t.shape[0])
            feed = {"x_t": x_t, "time_emb": time_emb, "k_cache": k, "v_cache": v, "prefix_mask": prefix_mask}
            if "state" in self.denoise_inputs:
                feed["state"] = x["state"]
            if prev is not None and self.rtc_mode == "exact":
                v_t = self._exact_velocity(feed, time, prev, weights)
            else:
                v_t = self.run_graph("denoise", feed)["v_t"]
            with self._stage("sampler"):
                if prev is not None and self.rtc_mode == "guided":
                    v_t = rtc_kernels.guide(x_t, v_t, time, prev, weights, self.rtc.max_guidance_weight)
                x_t = (x_t + np.float32(dt) * v_t).astype(np.float32)
        return x_t

    def _time_embedding(self, time: float, b: int) -> np.ndarray:
        """(B, time_dim) float32 for flow time `time`: one row computed once per step time, then repeated (the
        same N step times every chunk)."""
        row = self._time_rows.get(time)
        if row is None:
            row = self._time_rows[time] = flow_time_embedding(np.full((1,), time, np.float32), self.time_dim,
                                                              self.min_period, self.max_period)
        return np.repeat(row, b, axis=0)

    def _exact_velocity(self, feed: dict, time: float, prev: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """RTC "exact": v - gw(t) * err^T d(x1)/d(x_t) from the `denoise_rtc` graph (fixed batch, see its spec)."""
        batch = self.bundle.graphs[EXACT_GRAPH].inputs[0].shape[0]
        if feed["x_t"].shape[0] != batch:
            raise ObservationError(f"rtc='exact': the {EXACT_GRAPH} graph runs batch {batch}, got batch "
                                   f"{feed['x_t'].shape[0]} (use rtc='guided' for batched observations)")
        out = self.run_graph(EXACT_GRAPH, {**feed, "time": np.full((batch,), time, np.float32), "prev": prev,
                                           "rtc_weights": weights})
        with self._stage("sampler"):
            return rtc_kernels.apply_correction(out["v_t"], out["correction"], time, self.rtc.max_guidance_weight)

    # -- LeRobot's interface -----------------------------------------------------------------------
    def predict_action_chunk(self, obs: Mapping[str, Any], noise: np.ndarray | None = None, inference_delay=None,
                             prev_chunk_left_over=None, execution_horizon=None) -> np.ndarray:
        """(B, chunk_size, A) robot units ((chunk_size, A) unbatched). `prev_chunk_left_over` in robot units."""
        t0 = self._start_call()
        x, batched = self._prepare(obs)
        b = x["images"][0].shape[0]
        prev, weights = self._leftover(prev_chunk_left_over, b, inference_delay, execution_horizon)
        chunk = self._sample(x, self._noise(noise, b), prev, weights)
        chunk = self.postprocess(chunk[:, :, : self.manifest["action"]["shape"][0]])
        self._end_call(t0)
        return chunk if batched else chunk[0]

    def select_action(self, obs: Mapping[str, Any], noise: np.ndarray | None = None) -> np.ndarray:
        """(B, A) robot units ((A,) unbatched); a new chunk (using `noise`) only when the queue is empty. The
        observation is checked on every call, also when the action comes from the queue."""
        if len(self.queue) == 0:
            chunk = self.predict_action_chunk(obs, noise)
            batched = chunk.ndim == 3
            chunk = chunk if batched else chunk[None]
            self.queue.extend_chunk(chunk[:, : self.n_action_steps], self.n_action_steps)
            return self.queue.pop() if batched else self.queue.pop()[0]
        t0 = self._start_call()
        b, batched = self._check(obs)
        same_batch(b, self.queue.batch, "queued actions")
        with self._stage("sampler"):
            action = self.queue.pop()
        self._end_call(t0)
        return action if batched else action[0]

