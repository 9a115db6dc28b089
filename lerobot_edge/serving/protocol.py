"""The wire contract between a served bundle and its robots, shared by the server (PyTriton `serve`, the
Python-backend model of `lerobot-edge triton`) and the robot side (RemotePolicy). numpy only.

One request = one chunk (or, for policies whose state lives on the server, one select_action step).
Tensors, each with a leading batch axis B (a robot sends B = 1 per observation, or its own batch):
- one input per observation feature, named by its LeRobot key: camera frames UINT8 (B, H, W, 3) HWC RGB,
  vectors FP32 (B, D);
- `task` BYTES (B, 1) for policies that read an instruction; `noise` FP32 (B, *noise_shape[1:]) optional;
  `prev_chunk_left_over` FP32 (B, T, A) optional (RTC, robot units);
- outputs `action` FP32 (B, T, A) robot units, `error` BYTES (B, 1): empty, or "<ErrorType>: message" when
  this request was refused (the other requests of a batch are unaffected).
Scalars travel as Triton request parameters: `client_id` (str), `reset` (bool), `seed` (int), `mode`
("chunk" | "select"), `inference_delay` and `execution_horizon` (int, RTC).
A second model `<name>_info` returns the manifest and the action stats as JSON (input `request` INT32 (1,)).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .. import errors

ACTION, ERROR, TASK, NOISE, LEFTOVER = "action", "error", "task", "noise", "prev_chunk_left_over"
INFO_SUFFIX, INFO_INPUT, INFO_OUTPUT = "_info", "request", "info"
MODES = ("chunk", "select")
# request parameters a client may send, with their types (anything else is refused by the server)
PARAMETERS = {"client_id": str, "reset": bool, "seed": int, "mode": str, "inference_delay": int,
              "execution_horizon": int}
# errors that travel back by name; an unknown name arrives as LeRobotEdgeError
WIRE_ERRORS = {c.__name__: c for c in (errors.ObservationError, errors.NonFiniteActionError, errors.BundleError,
                                       errors.ValidationError, errors.BackendUnavailableError,
                                       errors.LeRobotEdgeError)}


@dataclass(frozen=True)
class TensorSpec:
    """One Triton tensor: dims without the batch axis (-1 = any size); dtype a numpy dtype."""

    name: str
    dtype: Any
    dims: tuple[int, ...]
    optional: bool = False


def model_name(bundle: str | Path, name: str | None = None) -> str:
    """Triton model names allow letters, digits, '_', '.', '-': the bundle directory's name by default."""
    raw = name or Path(str(bundle).rstrip("/")).name or "policy"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", raw)


def chunk_inputs(manifest: Mapping[str, Any], takes_task: bool, supports_rtc: bool) -> list[TensorSpec]:
    """The chunk model's inputs for a bundle (see the module docstring)."""
    out = []
    for key, spec in manifest["observations"].items():
        if spec["kind"] == "image":
            out.append(TensorSpec(key, np.uint8, (-1, -1, -1)))       # HWC frames; the runtime checks the size
        else:
            out.append(TensorSpec(key, np.float32, tuple(int(d) for d in spec["shape"])))
    if takes_task:
        out.append(TensorSpec(TASK, np.bytes_, (1,), optional=True))
    noise = manifest.get("noise_shape")
    if noise:
        out.append(TensorSpec(NOISE, np.float32, tuple(-1 if isinstance(d, str) else int(d) for d in noise[1:]),
                              optional=True))
    if supports_rtc:
        out.append(TensorSpec(LEFTOVER, np.float32, (-1, int(manifest["action"]["shape"][-1])), optional=True))
    return out


def chunk_outputs(manifest: Mapping[str, Any]) -> list[TensorSpec]:
    return [TensorSpec(ACTION, np.float32, (-1, int(manifest["action"]["shape"][-1]))),
            TensorSpec(ERROR, np.bytes_, (1,))]


def info_payload(manifest: Mapping[str, Any], action_stats: Mapping[str, np.ndarray],
                 supports_rtc: bool | None = None) -> bytes:
    """What `<name>_info` returns: the manifest, the action stats (the robot side's clamp limits) and whether
    the served policy takes RTC's leftover (the server's RTC mode, which may differ from the checkpoint's)."""
    stats = {k: np.asarray(v, np.float64).reshape(-1).tolist() for k, v in action_stats.items()
             if k in ("min", "max", "mean", "std")}
    return json.dumps({"manifest": manifest, "action_stats": stats, "supports_rtc": supports_rtc}).encode()


def encode_error(err: BaseException) -> bytes:
    name = type(err).__name__ if type(err).__name__ in WIRE_ERRORS else "LeRobotEdgeError"
    return f"{name}: {err}".encode()


def decode_error(raw: bytes | str) -> errors.LeRobotEdgeError | None:
    """`error` output -> the typed error it names (None when empty)."""
    text = raw.decode(errors="replace") if isinstance(raw, (bytes, bytearray)) else str(raw)
    if not text:
        return None
    name, _, message = text.partition(": ")
    cls = WIRE_ERRORS.get(name, errors.LeRobotEdgeError)
    err = cls(message if name in WIRE_ERRORS else text)
    return err


def check_parameters(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Request parameters -> a checked dict; an unknown name or a wrong type is an ObservationError."""
    out: dict[str, Any] = {}
    for k, v in dict(params or {}).items():
        kind = PARAMETERS.get(k)
        if kind is None:
            raise errors.ObservationError(f"request parameter {k!r} unknown; accepted: {sorted(PARAMETERS)}")
        if kind is int and isinstance(v, bool) or not isinstance(v, kind):
            raise errors.ObservationError(f"request parameter {k!r}: expected {kind.__name__}, got {v!r:.40}")
        out[k] = v
    if out.get("mode", "chunk") not in MODES:
        raise errors.ObservationError(f"request parameter 'mode': expected one of {MODES}, got {out['mode']!r}")
    return out


def observation_from_inputs(inputs: Mapping[str, np.ndarray], manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Request tensors -> the observation dict a policy takes (batched; `task` as a list of str)."""
    obs: dict[str, Any] = {k: v for k, v in inputs.items() if k in manifest["observations"]}
    if TASK in inputs:
        obs["task"] = [t.decode() if isinstance(t, (bytes, bytearray)) else str(t)
                       for t in np.asarray(inputs[TASK]).reshape(-1)]
    return obs


def frame_for_wire(key: str, value: Any) -> np.ndarray:
    """A camera observation -> uint8 HWC (B, H, W, 3) for the wire. uint8 frames pass; float CHW images in
    [0, 1] are sent as the uint8 frame they came from when they are exactly k/255, else refused (the wire
    carries camera frames, not resized float images)."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.dtype == np.uint8:
        return arr if arr.ndim == 4 else arr[None]
    if arr.dtype.kind != "f" or arr.ndim not in (3, 4):
        raise errors.ObservationError(f"{key}: expected a uint8 HWC camera frame or a float CHW image, got "
                                      f"{arr.dtype} {arr.shape}")
    arr = arr if arr.ndim == 4 else arr[None]
    q = np.rint(arr.astype(np.float32) * 255.0)
    if not np.isfinite(arr).all() or np.any(q < 0) or np.any(q > 255) or \
            not np.array_equal((q / 255.0).astype(np.float32), arr.astype(np.float32)):
        raise errors.ObservationError(f"{key}: a remote policy takes camera frames (uint8 HWC); this float image "
                                      "is not a uint8 frame divided by 255")
    return np.ascontiguousarray(q.astype(np.uint8).transpose(0, 2, 3, 1))
