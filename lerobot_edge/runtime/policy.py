"""EdgePolicy: LeRobot's policy interface (reset / select_action / predict_action_chunk) over a bundle.

Subclasses (one per runtime kind in the manifest) implement the sampler and queue logic; this base owns the
observation checks, normalization, the output guard and the stage timings.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from contextlib import contextmanager
from typing import Any, Callable, Mapping

import numpy as np

from ..backends import Session
from ..bundle import Bundle
from ..errors import BundleError, NonFiniteActionError
from .observations import prepare_observation
from .processors import Normalizer


class EdgePolicy(ABC):
    """A bundle loaded with one backend. Actions come out in robot units as float32 numpy arrays.

    `timings` holds seconds per stage of the last call: "preprocess", one per graph, "sampler",
    "postprocess", "total".
    """

    required_graphs: tuple[str, ...] = ()   # graph names this runtime kind calls

    def __init__(self, bundle: Bundle, backend: str, sessions: dict[str, Session], overrides: Mapping[str, Any]):
        missing = [g for g in self.required_graphs if g not in sessions]
        if missing:
            raise BundleError(f"bundle has no graph(s) {missing}, which a {type(self).__name__} runs "
                              f"(graphs present: {sorted(sessions)})")
        self.bundle = bundle
        self.manifest = bundle.manifest
        self.backend = backend
        self.sessions = sessions
        self.observation_spec: dict[str, dict] = self.manifest["observations"]
        self.action_key: str = self.manifest["action"]["key"]
        self.rename_map: dict[str, str] = dict(self.manifest.get("rename_map") or {})
        images = tuple(k for k, s in self.observation_spec.items() if s["kind"] == "image")
        self.normalizer = Normalizer(self.manifest["normalization"], bundle.stats(),
                                     legacy=bool(self.manifest["policy"].get("legacy_stats")), image_keys=images)
        self.timings: dict[str, float] = {}
        self.graph_calls: dict[str, int] = {}   # engine calls per graph in the last call
        self.configure(dict(overrides))
        self.reset()

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
        return time.perf_counter()

    def _end_call(self, t0: float) -> None:
        self.timings["total"] = time.perf_counter() - t0

    def preprocess(self, obs: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], bool]:
        """-> graph feed keyed by graph input name (normalized float32, batched), and whether obs was batched."""
        with self._stage("preprocess"):
            if self.rename_map and isinstance(obs, Mapping):  # robot key -> policy key, as LeRobot's rename step
                obs = {self.rename_map.get(k, k): v for k, v in obs.items()}
            arrays, batched = prepare_observation(obs, self.observation_spec)
            feed = {self.observation_spec[k]["graph_input"]: self.normalizer.normalize(k, v)
                    for k, v in arrays.items()}
        return feed, batched

    def run_graph(self, name: str, feed: Mapping[str, Any], keep: tuple[str, ...] = ()) -> dict[str, Any]:
        self.graph_calls[name] = self.graph_calls.get(name, 0) + 1
        with self._stage(name):
            return self.sessions[name].run(feed, keep=keep)

    def queued_action(self, make_chunk: Callable[[], np.ndarray]) -> np.ndarray:
        """The next action (B, A) of the queue; when it is empty, refill it with the first n_action_steps of
        `make_chunk()` (B, T, A), as LeRobot's queue-based select_action does."""
        if len(self.queue) == 0:
            chunk = make_chunk()
            with self._stage("sampler"):
                self.queue.extend_chunk(chunk, self.n_action_steps)
        with self._stage("sampler"):
            return self.queue.pop()

    def postprocess(self, normalized: np.ndarray) -> np.ndarray:
        """Normalized actions (…, A) -> robot units; refuses non-finite engine output."""
        with self._stage("postprocess"):
            if not np.isfinite(normalized).all():
                raise NonFiniteActionError(f"the {self.backend} engine produced NaN/inf actions; nothing returned")
            return self.normalizer.unnormalize(self.action_key, normalized)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.type} backend={self.backend} bundle={self.bundle.path}>"
