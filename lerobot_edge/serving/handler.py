"""ChunkService: one loaded bundle answering batches of chunk requests from many robots (numpy + our runtime).

Used by `lerobot-edge serve` (PyTriton hands it the requests its dynamic batcher collected) and by the
Python-backend model of a `lerobot-edge triton` repository (there the graphs run as Triton models via BLS).

- Stateless policies (ACT, pi0/pi05/SmolVLA, SAC): requests whose tensors have the same shapes and the
  same RTC scalars are stacked into one batched predict_action_chunk call, so the engines see one batch.
  Action queues, temporal ensembling and RTC leftovers stay on each robot (RemotePolicy).
- Policies with state between calls (Diffusion's and VQ-BeT's observation history, TDMPC's warm start):
  one policy per `client_id`, created on its first request with that client's `seed` and sharing the
  loaded engine sessions; `reset` clears it. Robots never share state.
- A refused request (wrong shape, NaN, bad parameter) gets its typed error in its own `error` output; the
  other requests of the batch are computed as if it had not been there.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import LeRobotEdgeError, ObservationError
from ..runtime.policy import EdgePolicy
from . import protocol as P

log = logging.getLogger(__name__)
Request = tuple[Mapping[str, np.ndarray], Mapping[str, Any]]   # (input tensors, request parameters)
Response = dict[str, np.ndarray]


def _rows(inputs: Mapping[str, np.ndarray]) -> int:
    return int(next(iter(inputs.values())).shape[0]) if inputs else 1


def _as_wire_error(err: BaseException) -> BaseException:
    """A ValueError from a request's arguments is the request's fault: an ObservationError on the wire."""
    return err if isinstance(err, LeRobotEdgeError) else ObservationError(str(err))


class ChunkService:
    """policy: a loaded EdgePolicy (its sessions are shared by the per-client copies); overrides: the
    load_policy keywords it was loaded with (n_action_steps, rtc, …), reused for those copies."""

    def __init__(self, policy: EdgePolicy, overrides: Mapping[str, Any] | None = None, *, max_clients: int = 1024):
        self.policy, self.overrides = policy, dict(overrides or {})
        self.cls = type(policy)
        self.keyed = bool(self.cls.has_history or self.cls.keeps_state)
        self.action_dim = int(policy.manifest["action"]["shape"][-1])
        self.max_clients = int(max_clients)
        self.clients: OrderedDict[str, EdgePolicy] = OrderedDict()
        self._lock = threading.Lock()   # one batch at a time: the sessions and the per-client copies are shared

    # -- the entry point -----------------------------------------------------------------------------------
    def handle(self, requests: Sequence[Request]) -> list[Response]:
        """One response per request, in order: {"action": (B, T, A) float32, "error": (B, 1) bytes}."""
        with self._lock:
            out: list[Response | None] = [None] * len(requests)
            ready = []
            for i, (inputs, params) in enumerate(requests):
                try:
                    ready.append((i, dict(inputs), P.check_parameters(params)))
                except LeRobotEdgeError as e:
                    out[i] = self.refused(inputs, e)
            if self.keyed:
                for i, inputs, params in ready:
                    out[i] = self._guarded(lambda: self._keyed(inputs, params), inputs)
            else:
                for group in self._groups(ready):
                    for i, response in self._stateless(group):
                        out[i] = response
            return out   # type: ignore[return-value]

    def refused(self, inputs: Mapping[str, np.ndarray], err: BaseException) -> Response:
        b = _rows(inputs)
        # one NaN step, never an action: zero-size tensors do not cross PyTriton's shared memory
        return {P.ACTION: np.full((b, 1, self.action_dim), np.nan, np.float32),
                P.ERROR: np.full((b, 1), P.encode_error(_as_wire_error(err)), dtype=object)}

    def _ok(self, chunk: np.ndarray) -> Response:
        return {P.ACTION: np.ascontiguousarray(chunk, dtype=np.float32),
                P.ERROR: np.full((chunk.shape[0], 1), b"", dtype=object)}

    def _guarded(self, fn, inputs) -> Response:
        try:
            return self._ok(fn())
        except (LeRobotEdgeError, ValueError) as e:
            return self.refused(inputs, e)

    # -- stateless: stack compatible requests into one call ---------------------------------------------------
    @staticmethod
    def _signature(inputs: Mapping[str, np.ndarray], params: Mapping[str, Any]) -> tuple:
        shapes = tuple(sorted((k, tuple(np.shape(v)[1:]), np.asarray(v).dtype.kind) for k, v in inputs.items()))
        return shapes, params.get("mode", "chunk"), params.get("inference_delay"), params.get("execution_horizon")

    def _groups(self, ready: list) -> list[list]:
        groups: dict[tuple, list] = {}
        for item in ready:
            groups.setdefault(self._signature(item[1], item[2]), []).append(item)
        return list(groups.values())

    def _stateless(self, group: list) -> list[tuple[int, Response]]:
        """Run a group as one batch; when that is refused, each request alone (only the bad ones fail)."""
        if len(group) > 1:
            try:
                chunk = self._call(self.policy, {k: np.concatenate([g[1][k] for g in group]) for k in group[0][1]},
                                   group[0][2])
            except (LeRobotEdgeError, ValueError):
                pass
            else:
                rows = np.cumsum([0] + [_rows(g[1]) for g in group])
                return [(g[0], self._ok(chunk[rows[j]:rows[j + 1]])) for j, g in enumerate(group)]
        return [(i, self._guarded(lambda inputs=inputs, params=params: self._call(self.policy, inputs, params),
                                  inputs)) for i, inputs, params in group]

    def _call(self, policy: EdgePolicy, inputs: Mapping[str, np.ndarray], params: Mapping[str, Any]) -> np.ndarray:
        """One policy call -> (B, T, A) robot units."""
        obs = P.observation_from_inputs(inputs, policy.manifest)
        kw: dict[str, Any] = {}
        if P.NOISE in inputs:
            kw["noise"] = inputs[P.NOISE]
        if P.LEFTOVER in inputs:
            kw.update(prev_chunk_left_over=inputs[P.LEFTOVER], inference_delay=params.get("inference_delay"),
                      execution_horizon=params.get("execution_horizon"))
        if params.get("mode", "chunk") == "select":
            if not self.keyed:
                raise ObservationError("mode 'select' is for policies whose state lives on the server; this one "
                                       "queues actions on the robot (send mode 'chunk')")
            return np.asarray(policy.select_action(obs, kw.get("noise")))[:, None]
        chunk = np.asarray(policy.predict_action_chunk(obs, **kw))
        return np.swapaxes(chunk, 0, policy.chunk_batch_axis) if policy.chunk_batch_axis else chunk

    # -- per-client state --------------------------------------------------------------------------------------
    def _keyed(self, inputs: Mapping[str, np.ndarray], params: Mapping[str, Any]) -> np.ndarray:
        cid = params.get("client_id")
        if not cid:
            raise ObservationError(f"request parameter 'client_id' is required: {self.cls.__name__} keeps an "
                                   "observation history (or plan) per robot")
        policy = self.clients.get(cid)
        if policy is None:
            policy = self.cls(self.policy.bundle, self.policy.backend, self.policy.sessions,
                              self._overrides(params.get("seed")))
            self.clients[cid] = policy
            while len(self.clients) > self.max_clients:
                old, _ = self.clients.popitem(last=False)
                log.warning("dropped the state of idle client %s (more than %d clients)", old, self.max_clients)
        elif params.get("reset"):
            policy.reset()
        self.clients.move_to_end(cid)
        return self._call(policy, inputs, params)

    def _overrides(self, seed: int | None) -> dict[str, Any]:
        keys = ("num_inference_steps", "n_action_steps", "temporal_ensemble_coeff", "rtc", "rtc_options")
        out = {k: self.overrides.get(k) for k in keys}
        if self.cls.stochastic:
            out["seed"] = seed
        return out
