"""EdgePolicy: LeRobot's policy interface (reset / select_action / predict_action_chunk) over a bundle.

Subclasses (one per runtime kind in the manifest) implement the sampler and queue logic; this base owns the
observation checks, normalization, the output guard and the stage timings.
"""

from __future__ import annotations

import time
import warnings
from abc import ABC, abstractmethod
from contextlib import contextmanager
from typing import Any, Callable, Mapping

import numpy as np

from ..backends import Session
from ..bundle import Bundle
from ..errors import BundleError, LeRobotEdgeError, NonFiniteActionError, ObservationError
from .observations import check_observation, check_raw_cameras
from .processors import Normalizer


class EdgePolicy(ABC):
    """A bundle loaded with one backend. Actions come out in robot units as float32 numpy arrays.

    `timings` holds seconds per stage of the last call: "preprocess", one per graph, "sampler",
    "postprocess", "total".
    """

    required_graphs: tuple[str, ...] = ()   # graph names this runtime kind calls
    # graphs it may call besides those; None: not declared (any extra graph is tolerated)
    optional_graphs: tuple[str, ...] | None = None
    # capabilities of the runtime kind, asked of the policy (or its class) instead of comparing names
    stochastic: bool = True                 # it draws noise or samples: seed= makes runs reproducible
    noise_kind: str | None = "normal"       # what `noise=` holds: "normal" draws, "uniform" ones, None: none
    has_history: bool = False               # it keeps an observation history (n_obs_steps > 1 possible)
    takes_task: bool = False                # it reads a language instruction (obs["task"])
    default_task: str | None = None         # the task used when obs has none (None: a task is required)
    task_per_row: bool = True               # a task list gives one per batch row (False: its first serves all)
    # predict_action_chunk reads state that earlier calls left besides the action queue (a warm-started plan);
    # has_history implies it. A server keeps one policy per robot for these (serving/).
    keeps_state: bool = False
    chunk_batch_axis: int = 0               # the batch axis of predict_action_chunk's (B, T, A) output

    def __init__(self, bundle: Bundle, backend: str, sessions: dict[str, Session], overrides: Mapping[str, Any]):
        missing = [g for g in self.required_graphs if g not in sessions]
        if missing:
            raise BundleError(f"bundle has no graph(s) {missing}, which a {type(self).__name__} runs "
                              f"(graphs present: {sorted(sessions)})")
        if self.optional_graphs is not None:   # + the frames graphs of a preprocess_in_graph bundle
            frames = {c["graph"] for c in (bundle.manifest.get("preprocess") or {}).get("cameras", {}).values()}
            extra = sorted(set(sessions) - set(self.required_graphs) - set(self.optional_graphs) - frames)
            if extra:
                raise BundleError(f"bundle has graph(s) {extra} that a {type(self).__name__} never runs "
                                  f"(it runs {sorted({*self.required_graphs, *self.optional_graphs})})")
        self.bundle = bundle
        self.manifest = bundle.manifest
        self.backend = backend
        self.sessions = sessions
        self.observation_spec: dict[str, dict] = self.manifest["observations"]
        self.action_key: str = self.manifest["action"]["key"]
        self.rename_map: dict[str, str] = dict(self.manifest.get("rename_map") or {})
        check_raw_cameras(self.manifest)   # preprocess_in_graph: uint8 graph inputs where the spec says so
        images = tuple(k for k, s in self.observation_spec.items() if s["kind"] == "image")
        stats = bundle.stats()
        _check_stat_shapes(self.manifest, stats)
        self.normalizer = Normalizer(self.manifest["normalization"], stats,
                                     legacy=bool(self.manifest["policy"].get("legacy_stats")), image_keys=images)
        self.timings: dict[str, float] = {}
        self.graph_calls: dict[str, int] = {}   # engine calls per graph in the last call
        self.graph_rows: dict[str, int] = {}    # batch rows per graph in the last call (FLOPs scale with them)
        self.graph_bytes: dict[str, int] = {}   # bytes of host arrays fed per graph in the last call
        self._batch_axis = {g["name"]: _batch_axis(g) for g in self.manifest["graphs"]}
        try:
            self.configure(dict(overrides))
        except (ValueError, TypeError, KeyError) as e:
            # with no load-time override given, a bad value can only come from the manifest's runtime section
            if isinstance(e, LeRobotEdgeError) or any(v is not None for v in overrides.values()):
                raise
            raise BundleError(f"malformed manifest runtime settings: {type(e).__name__}: {e}") from e
        self.reset()

    @classmethod
    def skip_graphs(cls, manifest: Mapping[str, Any], overrides: Mapping[str, Any]) -> tuple[str, ...]:
        """Graphs of the bundle that a load with `overrides` never calls, so load_policy leaves them unloaded."""
        return ()

    # -- to implement per runtime kind -------------------------------------------------------------
    @abstractmethod
    def configure(self, overrides: dict[str, Any]) -> None:
        """Apply load-time overrides (n_action_steps, …); unknown or inapplicable ones raise ValueError."""

    @abstractmethod
    def reset(self) -> None:
        """Clear queues and histories; call at the start of every episode."""

    @abstractmethod
    def select_action(self, obs: Mapping[str, Any], noise: np.ndarray | None = None) -> np.ndarray:
        """One action (B, A), or (A,) for an unbatched observation."""

    @abstractmethod
    def predict_action_chunk(self, obs: Mapping[str, Any], noise: np.ndarray | None = None, **kw) -> np.ndarray:
        """A full chunk (B, T, A), or (T, A) for an unbatched observation."""

    def setting(self, key: str, kind: type | tuple = int, default: Any = ..., nullable: bool = False) -> Any:
        """A value of the manifest's runtime section, type-checked (a malformed bundle is a BundleError)."""
        rt = self.manifest["runtime"]
        if key not in rt:
            if default is ...:
                raise BundleError(f"malformed manifest: runtime.{key}: missing")
            return default
        value = rt[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if (value is None and nullable) or (isinstance(value, kinds) and not isinstance(value, bool)):
            return value
        raise BundleError(f"malformed manifest: runtime.{key}: expected {' or '.join(k.__name__ for k in kinds)}"
                          f"{' or null' if nullable else ''}, got {value!r:.40}")

    # -- shared stages -----------------------------------------------------------------------------
    @property
    def type(self) -> str:
        return self.manifest["policy"]["type"]

    @property
    def supports_rtc(self) -> bool:
        """Whether predict_action_chunk uses RTC's inference_delay / prev_chunk_left_over (the control loop
        asks this to choose RTC merging). False unless a runtime kind says otherwise."""
        return False

    @contextmanager
    def _stage(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t0

    def _start_call(self) -> float:
        self.timings = {"preprocess": 0.0, **{g: 0.0 for g in self.sessions}, "sampler": 0.0,
                        "postprocess": 0.0}
        self.graph_calls = {g: 0 for g in self.sessions}
        self.graph_rows = {g: 0 for g in self.sessions}
        self.graph_bytes = {g: 0 for g in self.sessions}
        return time.perf_counter()

    def _end_call(self, t0: float) -> None:
        self.timings["total"] = time.perf_counter() - t0

    def preprocess(self, obs: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], bool]:
        """-> graph feed keyed by graph input name (normalized float32, batched; raw cameras of a
        preprocess_in_graph bundle: uint8 frames), and whether obs was batched."""
        arrays, batched = self.check(obs)
        return self.to_feed(arrays), batched

    def check(self, obs: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], bool]:
        """The observation checked (every typed error of `preprocess`), nothing large converted: -> batched
        arrays keyed by feature (uint8 frames as given, see observations.check_observation), batched? What
        a call served from the action queue pays; `to_feed` converts when an inference needs the data."""
        with self._stage("preprocess"):
            if self.rename_map and isinstance(obs, Mapping):  # robot key -> policy key, as LeRobot's rename step
                obs = {self.rename_map.get(k, k): v for k, v in obs.items()}
            return check_observation(obs, self.observation_spec)

    def to_feed(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Checked arrays (`check`) -> the graph feed: normalized float32 (uint8 frames converted and
        normalized in one pass, (B, H, W, 3) -> (B, 3, H, W)); raw cameras stay uint8 frames."""
        with self._stage("preprocess"):
            spec, norm = self.observation_spec, self.normalizer
            return {spec[k]["graph_input"]: (v if spec[k].get("frame") else norm.normalize_frames(k, v)
                                             if v.dtype == np.uint8 else norm.normalize(k, v))
                    for k, v in arrays.items()}

    def run_graph(self, name: str, feed: Mapping[str, Any], keep: tuple[str, ...] = (),
                  finite: bool = True) -> dict[str, Any]:
        """One engine call. With `finite`, a NaN/inf in any output returned as numpy raises
        NonFiniteActionError here, before a sampler or planner can turn it into a finite-looking action."""
        self.graph_calls[name] = self.graph_calls.get(name, 0) + 1
        where = self._batch_axis.get(name)
        x = feed.get(where[0]) if where else None
        rows = x.shape[where[1]] if isinstance(x, np.ndarray) and x.ndim > where[1] else 1
        self.graph_rows[name] = self.graph_rows.get(name, 0) + int(rows)
        self.graph_bytes[name] = self.graph_bytes.get(name, 0) + sum(
            v.nbytes for v in feed.values() if isinstance(v, np.ndarray))   # host arrays; device handles stay
        with self._stage(name):
            out = self.sessions[name].run(feed, keep=keep)
        if finite:
            bad = [k for k, v in out.items() if isinstance(v, np.ndarray) and v.dtype.kind == "f"
                   and not np.isfinite(v).all()]
            if bad:
                raise NonFiniteActionError(f"the {self.backend} engine produced NaN/inf in graph {name!r} "
                                           f"output(s) {bad}; nothing returned")
        return out

    def queued_action(self, make_chunk: Callable[[], np.ndarray], batch: int | None = None) -> np.ndarray:
        """The next action (B, A) of the queue; when it is empty, refill it with the first n_action_steps of
        `make_chunk()` (B, T, A), as LeRobot's queue-based select_action does. `batch`: the caller's B,
        refused when it differs from the queued actions' (LeRobot would return another batch's action)."""
        if batch is not None:
            same_batch(batch, self.queue.batch, "queued actions")
        if len(self.queue) == 0:
            chunk = make_chunk()
            with self._stage("sampler"):
                self.queue.extend_chunk(chunk, self.n_action_steps)
        with self._stage("sampler"):
            return self.queue.pop()

    def postprocess(self, normalized: np.ndarray) -> np.ndarray:
        """Normalized actions (…, A) -> robot units; refuses non-finite engine output."""
        with self._stage("postprocess"):
            dim = self.manifest["action"]["shape"][-1]
            if normalized.shape[-1] != dim:
                raise BundleError(f"the bundle's graphs produce actions of size {normalized.shape[-1]}, its "
                                  f"manifest says {dim}")
            if not np.isfinite(normalized).all():
                raise NonFiniteActionError(f"the {self.backend} engine produced NaN/inf actions; nothing returned")
            action = self.normalizer.unnormalize(self.action_key, normalized)
            if not np.isfinite(action).all():   # finite in, inf out: an overflow in the unnormalization
                raise NonFiniteActionError("unnormalized actions overflow to inf; nothing returned")
            return action

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.type} backend={self.backend} bundle={self.bundle.path}>"


def _batch_axis(graph: Mapping[str, Any]) -> tuple[str, int] | None:
    """(input name, axis) of a graph's first dynamic axis: a call's batch rows (the planner of TDMPC runs its
    value graph on hundreds of samples at once; the manifest's FLOPs are per row)."""
    for i in graph["inputs"]:
        for axis, dim in enumerate(i["shape"]):
            if isinstance(dim, str):
                return i["name"], axis
    return None


def same_batch(batch: int, held: int | None, what: str) -> None:
    """Refuse a call whose batch size differs from the one `what` (queue, history) was computed for."""
    if held is not None and batch != held:
        raise ObservationError(f"observation batch size {batch} differs from the {held} of the {what}: call "
                               "reset() when the number of robots changes")


def inference_steps(checkpoint: int, override: Any) -> int:
    """The number of denoising steps: the checkpoint's, or an override (>= 1) that warns when it differs, since
    the actions then differ from LeRobot's with the checkpoint's settings."""
    if override is None:
        return checkpoint
    if int(override) < 1:
        raise ValueError(f"num_inference_steps={override}: expected >= 1")
    if int(override) != checkpoint:
        warnings.warn(f"num_inference_steps={override} overrides the checkpoint's {checkpoint}: actions will differ "
                      "from LeRobot's with the checkpoint's settings", stacklevel=4)
    return int(override)


def _check_stat_shapes(manifest: Mapping[str, Any], stats: dict[str, dict[str, np.ndarray]]) -> None:
    """Each normalized feature's stats must broadcast to its shape (images: (C,), (C, 1, 1) or (C, H, W))."""
    shapes = {k: tuple(s["shape"]) for k, s in manifest["observations"].items()}
    shapes[manifest["action"]["key"]] = tuple(manifest["action"]["shape"])
    for key, mode in manifest["normalization"].items():
        if mode == "IDENTITY" or key not in shapes:
            continue
        for stat, v in stats.get(key, {}).items():
            v = v.reshape(-1, 1, 1) if len(shapes[key]) == 3 and v.ndim == 1 else v
            try:
                ok = np.broadcast_shapes(v.shape, shapes[key]) == shapes[key]
            except ValueError:
                ok = False
            if not ok:
                raise BundleError(f"stats.safetensors: {key}.{stat} has shape {list(v.shape)}, which does not fit "
                                  f"the feature's shape {list(shapes[key])}")
