"""`lerobot-edge serve BUNDLE --protocol lerobot`: LeRobot's async-inference gRPC service (`AsyncInference`
of lerobot/transport/services.proto, the stubs LeRobot generated and ships: the `[robots]` extra), answered by
our runtime, so an unmodified LeRobot `robot_client` drives its robot with a bundle.

It does what LeRobot's `policy_server` does (lerobot 0.4.4): Ready resets; SendPolicyInstructions takes the
robot's features, actions_per_chunk and rename map (the policy type must be the bundle's; the checkpoint path
is not loaded: the bundle is); SendObservations keeps the latest observation that must go or differs from the
last one computed (joint-space distance >= 1, never an already predicted timestep); GetActions waits up to
`obs_queue_timeout` for it, computes the chunk (first `actions_per_chunk` actions, timestamps 1/fps apart) and
returns no sooner than `inference_latency`. Like LeRobot's, it serves one robot at a time.
Deliberate differences: the pickles are read by a restricted unpickler (lerobot_pickle.py) instead of
`pickle.loads` of anything; a camera frame of another size than the policy's is resized in float and rounded
(LeRobot resizes the uint8 tensor: within one level of 255 where sizes differ; identical where they match).
"""

from __future__ import annotations

import io
import logging
import queue
import threading
import time
from concurrent import futures
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import BackendUnavailableError, LeRobotEdgeError, ObservationError
from ..kernels.image import resize_bilinear
from ..runtime.loader import load_policy
from . import lerobot_pickle as LP
from .pytriton_server import _stop_on_signals

log = logging.getLogger(__name__)
DEFAULT_FEATURES = ("timestamp", "frame_index", "episode_index", "index", "task_index")
STATE = "observation.state"


def _stubs():
    try:
        import grpc
        from lerobot.transport import services_pb2, services_pb2_grpc
    except ImportError as e:
        raise BackendUnavailableError("--protocol lerobot needs grpcio and LeRobot's generated gRPC stubs "
                                      "(lerobot.transport): pip install 'lerobot-edge[serve,robots]' "
                                      f"({e})") from e
    return grpc, services_pb2, services_pb2_grpc


def lerobot_frame(raw: Mapping[str, Any], features: Mapping[str, dict]) -> dict[str, Any]:
    """LeRobot's build_dataset_frame(features, raw, "observation"): joints by name -> observation.state
    (float32), cameras by name -> observation.images.<name>."""
    frame: dict[str, Any] = {}
    for key, ft in features.items():
        if key in DEFAULT_FEATURES or not key.startswith("observation"):
            continue
        if ft["dtype"] == "float32" and len(ft["shape"]) == 1:
            frame[key] = np.array([raw[name] for name in ft["names"]], dtype=np.float32)
        elif ft["dtype"] in ("image", "video"):
            frame[key] = raw[key.removeprefix("observation.images.")]
    return frame


class AsyncInferenceService:
    """The servicer (LeRobot's AsyncInference methods). One robot at a time, as LeRobot's PolicyServer."""

    def __init__(self, policy, pb2, *, fps: float = 30.0, inference_latency: float | None = None,
                 obs_queue_timeout: float = 2.0):
        self.policy, self.pb2 = policy, pb2
        self.dt = 1.0 / float(fps)
        self.inference_latency = self.dt if inference_latency is None else float(inference_latency)
        self.obs_queue_timeout = float(obs_queue_timeout)
        self.lock = threading.Lock()
        self.specs: LP.RemotePolicyConfig | None = None
        self.chunks = 0
        self._reset()

    def _reset(self) -> None:
        self.observations: queue.Queue = queue.Queue(maxsize=1)
        self.predicted: set[int] = set()
        self.last_processed: LP.TimedObservation | None = None

    # -- LeRobot's RPCs -------------------------------------------------------------------------------
    def Ready(self, request, context):  # noqa: N802
        log.info("client %s connected and ready", context.peer())
        self._reset()
        return self.pb2.Empty()

    def SendPolicyInstructions(self, request, context):  # noqa: N802
        specs = LP.loads(request.data, LP.RemotePolicyConfig)
        if specs.policy_type != self.policy.type:
            context.abort(__import__("grpc").StatusCode.INVALID_ARGUMENT,
                          f"this server serves a {self.policy.type!r} bundle ({self.policy.bundle.path}); the client "
                          f"asked for policy_type {specs.policy_type!r}")
        if int(specs.actions_per_chunk) < 1:
            context.abort(__import__("grpc").StatusCode.INVALID_ARGUMENT, "actions_per_chunk must be >= 1")
        log.info("policy instructions from %s: %s %s, %d actions per chunk (serving the bundle %s)", context.peer(),
                 specs.policy_type, specs.pretrained_name_or_path, specs.actions_per_chunk, self.policy.bundle.path)
        with self.lock:
            self.specs = specs
            self.policy.reset()
        return self.pb2.Empty()

    def SendObservations(self, request_iterator, context):  # noqa: N802
        data = self._receive(request_iterator)
        if data is not None:
            obs = LP.loads(data, LP.TimedObservation)
            self._enqueue(obs)
        return self.pb2.Empty()

    def GetActions(self, request, context):  # noqa: N802
        t0 = time.perf_counter()
        try:
            obs = self.observations.get(timeout=self.obs_queue_timeout)
        except queue.Empty:
            return self.pb2.Empty()
        try:
            self.predicted.add(int(obs.timestep))
            data = self._predict(obs)
        except (LeRobotEdgeError, ValueError, KeyError) as e:   # LeRobot logs and answers Empty
            log.error("observation #%s refused: %s: %s", getattr(obs, "timestep", "?"), type(e).__name__, e)
            return self.pb2.Empty()
        time.sleep(max(0.0, self.inference_latency - (time.perf_counter() - t0)))
        return self.pb2.Actions(data=data)

    # -- the work -----------------------------------------------------------------------------------------
    def _receive(self, request_iterator) -> bytes | None:
        """LeRobot's chunked transfer (TRANSFER_BEGIN / MIDDLE / END) -> the message's bytes."""
        state = self.pb2.TransferState
        buf = io.BytesIO()
        for item in request_iterator:
            if item.transfer_state == state.TRANSFER_BEGIN:
                buf = io.BytesIO()
            if item.transfer_state in (state.TRANSFER_BEGIN, state.TRANSFER_MIDDLE, state.TRANSFER_END):
                buf.write(item.data)
            else:
                raise ObservationError(f"unknown transfer state {item.transfer_state}")
            if item.transfer_state == state.TRANSFER_END:
                return buf.getvalue()
        return None

    def _state(self, obs: LP.TimedObservation) -> np.ndarray | None:
        frame = lerobot_frame(obs.observation, self.specs.lerobot_features) if self.specs else {}
        return frame.get(STATE)

    def _enqueue(self, obs: LP.TimedObservation) -> None:
        last = self.last_processed
        if not (getattr(obs, "must_go", False) or last is None or self._worth_computing(obs, last)):
            return
        if self.observations.full():
            try:
                self.observations.get_nowait()
            except queue.Empty:
                pass
        self.observations.put(obs)

    def _worth_computing(self, obs, last) -> bool:
        if int(obs.timestep) in self.predicted:
            return False
        a, b = self._state(obs), self._state(last)
        return a is None or b is None or not float(np.linalg.norm(a - b)) < 1.0

    def _predict(self, obs: LP.TimedObservation) -> bytes:
        if self.specs is None:
            raise ObservationError("no policy instructions received (SendPolicyInstructions comes first)")
        raw = dict(obs.observation)
        frame = lerobot_frame(raw, self.specs.lerobot_features)
        rename = dict(getattr(self.specs, "rename_map", None) or {})
        x: dict[str, Any] = {}
        for key, value in frame.items():
            key = rename.get(key, key)
            spec = self.policy.observation_spec.get(key)
            if spec is not None and spec["kind"] == "image":
                value = self._frame(key, np.asarray(value), spec["shape"])
            x[key] = np.asarray(value)[None]
        if "task" in raw:
            x["task"] = [str(raw["task"])]
        with self.lock:
            self.last_processed = obs
            chunk = np.asarray(self.policy.predict_action_chunk(x))[0]
            self.chunks += 1
        chunk = chunk[: int(self.specs.actions_per_chunk)]
        return LP.dumps_timed_actions(chunk, float(obs.timestamp), self.dt, int(obs.timestep))

    @staticmethod
    def _frame(key: str, frame: np.ndarray, shape) -> np.ndarray:
        """A camera frame (H, W, 3) at the policy's size, as LeRobot resizes it."""
        c, h, w = (int(d) for d in shape)
        if frame.ndim != 3 or frame.shape[-1] != c:
            raise ObservationError(f"{key}: expected an HWC frame with {c} channels, got {frame.shape}")
        if frame.shape[:2] == (h, w):
            return frame
        chw = frame.transpose(2, 0, 1)[None].astype(np.float32)                          # (1, C, H, W)
        return np.clip(np.rint(resize_bilinear(chw, h, w)[0].transpose(1, 2, 0)), 0, 255).astype(np.uint8)


def serve_lerobot(bundle: str | Path, *, host: str = "127.0.0.1", port: int = 8080, backend: str | None = None,
                  backend_options: Mapping[str, Any] | None = None, fps: float = 30.0,
                  inference_latency: float | None = None, obs_queue_timeout: float = 2.0,
                  allow_unvalidated: bool = False, ready: Callable[[str], None] | None = None,
                  stop: threading.Event | None = None, **load_options) -> None:
    """Serve `bundle` with LeRobot's async-inference protocol until SIGINT/SIGTERM (or `stop`)."""
    grpc, pb2, pb2_grpc = _stubs()
    policy = load_policy(bundle, backend, backend_options=backend_options, allow_unvalidated=allow_unvalidated,
                         **load_options)
    service = AsyncInferenceService(policy, pb2, fps=fps, inference_latency=inference_latency,
                                    obs_queue_timeout=obs_queue_timeout)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb2_grpc.add_AsyncInferenceServicer_to_server(service, server)
    if server.add_insecure_port(f"{host}:{port}") == 0:
        raise BackendUnavailableError(f"cannot bind {host}:{port}")
    stop = stop or threading.Event()
    restore = _stop_on_signals(stop)
    server.start()
    try:
        url = f"{host}:{port}"
        log.info("serving %s (%s, %s) with LeRobot's async-inference protocol on %s", policy.bundle.path,
                 policy.type, policy.backend, url)
        if ready is not None:
            ready(url)
        stop.wait()
    finally:
        server.stop(grace=2.0).wait()
        restore()
