"""Observation checks and conversion at the runtime's door: every problem is an ObservationError naming the
key and what was expected, before any engine sees the data.

Images: uint8 -> a camera frame, HWC RGB ((H, W, 3) or (B, H, W, 3)); float -> LeRobot's layout, CHW in
[0, 1] ((3, H, W) or (B, 3, H, W)). State vectors: (D,) or (B, D). All keys share B; an input without a
batch axis gives an output without one.

Cameras a bundle exported with preprocess_in_graph marks raw (spec "frame": "uint8_hwc") go to the graph as
the camera gave them: only uint8 HWC frames of exactly the recorded size are accepted, nothing is converted.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..errors import BundleError, ObservationError

IMAGE_PREFIX = "observation.image"
RAW_FRAME = "uint8_hwc"   # observation spec "frame": the graph takes the camera frame itself


def _as_array(key: str, value: Any) -> np.ndarray:
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value)
    except Exception as e:
        raise ObservationError(f"{key}: cannot be read as an array ({type(value).__name__})") from e
    if arr.dtype.kind not in "fiu" or arr.dtype == np.bool_:
        raise ObservationError(f"{key}: expected a numeric array, got dtype {arr.dtype}")
    return arr


def _checked(key: str, arr: np.ndarray, batched: bool) -> tuple[np.ndarray, bool]:
    """A batch of at least one row, all finite (a NaN from a glitching driver never reaches an engine)."""
    if arr.shape[0] == 0:
        raise ObservationError(f"{key}: empty batch (batch size 0)")
    if arr.dtype.kind == "f" and not all_finite(arr):
        raise ObservationError(f"{key}: contains NaN or inf")
    return arr, batched


def all_finite(arr: np.ndarray) -> bool:
    """Whether a float array holds no NaN/inf, at the cost of one read: a finite sum proves every element
    finite (NaN and inf propagate through a sum); only a non-finite sum (which finite values can also give by
    overflowing) pays for the element-wise check."""
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.add.reduce(arr, axis=None)
    return bool(np.isfinite(total)) or bool(np.isfinite(arr).all())


def _image(key: str, value: Any, shape: tuple[int, ...]) -> tuple[np.ndarray, bool]:
    """Checked, not converted: -> uint8 frames (B, H, W, 3) as given, or float32 CHW (B, 3, H, W); batched?"""
    arr = _as_array(key, value)
    c, h, w = shape
    if arr.dtype == np.uint8:
        if arr.shape[-3:] != (h, w, c) or arr.ndim not in (3, 4):
            raise ObservationError(f"{key}: a uint8 image must be an HWC RGB camera frame of shape ({h}, {w}, {c}) "
                                   f"(optionally with a batch axis), got {arr.shape}")
        batched = arr.ndim == 4
        return _checked(key, arr if batched else arr[None], batched)
    if arr.dtype.kind != "f":
        raise ObservationError(f"{key}: images must be uint8 HWC frames or float CHW in [0, 1], got {arr.dtype}")
    if arr.shape[-3:] != (c, h, w) or arr.ndim not in (3, 4):
        raise ObservationError(f"{key}: a float image must be CHW of shape ({c}, {h}, {w}) in [0, 1] "
                               f"(optionally with a batch axis), got {arr.shape}")
    batched = arr.ndim == 4
    return _checked(key, np.asarray(arr if batched else arr[None], dtype=np.float32), batched)


def frames_to_float(frames: np.ndarray) -> np.ndarray:
    """uint8 camera frames (..., H, W, C) -> float32 (..., C, H, W) in [0, 1] (x / 255, as LeRobot)."""
    return np.moveaxis(frames, -1, -3).astype(np.float32) / np.float32(255.0)


def raw_frame(key: str, value: Any, shape: tuple[int, ...]) -> tuple[np.ndarray, bool]:
    """A camera a preprocess_in_graph bundle takes raw: uint8 (H, W, C) or (B, H, W, C) of the recorded size
    -> (B, H, W, C) uint8 (C-contiguous, uncopied when it already is), batched?"""
    arr = _as_array(key, value)
    c, h, w = shape
    if arr.dtype != np.uint8:
        raise ObservationError(f"{key}: this bundle was exported with preprocess_in_graph, so its graphs take the "
                               f"uint8 HWC RGB camera frame ({h}, {w}, {c}) itself; got {arr.dtype} {arr.shape} "
                               "(re-export without --preprocess-in-graph to pass float CHW images)")
    if arr.shape[-3:] != (h, w, c) or arr.ndim not in (3, 4):
        raise ObservationError(f"{key}: this bundle's graphs take camera frames of exactly ({h}, {w}, {c}) (fixed "
                               f"at export with preprocess_in_graph; optionally with a batch axis), got {arr.shape}")
    batched = arr.ndim == 4
    return _checked(key, np.ascontiguousarray(arr if batched else arr[None]), batched)


def _vector(key: str, value: Any, shape: tuple[int, ...]) -> tuple[np.ndarray, bool]:
    arr = _as_array(key, value)
    if arr.shape[-len(shape):] != tuple(shape) or arr.ndim not in (len(shape), len(shape) + 1):
        raise ObservationError(f"{key}: expected shape {tuple(shape)} or (B, {', '.join(map(str, shape))}), "
                               f"got {arr.shape}")
    batched = arr.ndim == len(shape) + 1
    return _checked(key, np.asarray(arr if batched else arr[None], dtype=np.float32), batched)


def check_observation(obs: Mapping[str, Any], spec: Mapping[str, dict]) -> tuple[dict[str, np.ndarray], bool]:
    """Check `obs` against the bundle's observation spec (keys, dtypes, shapes, batch sizes, finiteness) at the
    cost of a read, converting nothing that is large: -> batched arrays (uint8 camera frames (B, H, W, 3) as
    the caller gave them, views of the caller's data; float images (B, 3, H, W) and vectors (B, D) float32) and
    whether the input had a batch axis. `spec`: key -> {"kind": "image"|"state"|"env_state", "shape": […][,
    "frame": "uint8_hwc"]}. What a queued select_action pays: the conversion waits for an inference."""
    if not isinstance(obs, Mapping):
        raise ObservationError(f"observation must be a dict of LeRobot feature keys, got {type(obs).__name__}")
    stray = sorted(k for k in obs if isinstance(k, str) and k.startswith(IMAGE_PREFIX) and k not in spec)
    if stray:
        cams = [k for k, s in spec.items() if s["kind"] == "image"]
        raise ObservationError(f"{stray[0]}: this policy has no such camera; its cameras are {cams}")
    out, batched_keys, sizes = {}, {}, {}
    for key, s in spec.items():
        if key not in obs:
            raise ObservationError(f"missing observation {key!r}: expected {s['kind']} of shape {tuple(s['shape'])}")
        conv = raw_frame if s.get("frame") == RAW_FRAME else _image if s["kind"] == "image" else _vector
        arr, batched = conv(key, obs[key], tuple(s["shape"]))
        out[key], batched_keys[key], sizes[key] = arr, batched, arr.shape[0]
    if len(set(sizes.values())) > 1:
        raise ObservationError(f"observations disagree on the batch size: {sizes}")
    return out, any(batched_keys.values())


def prepare_observation(obs: Mapping[str, Any], spec: Mapping[str, dict]) -> tuple[dict[str, np.ndarray], bool]:
    """check_observation, then float32 everywhere: images (B, 3, H, W) in [0, 1] (raw cameras of a
    preprocess_in_graph bundle stay uint8 frames (B, H, W, 3))."""
    arrays, batched = check_observation(obs, spec)
    return {k: (frames_to_float(v) if v.dtype == np.uint8 and spec[k].get("frame") != RAW_FRAME else v)
            for k, v in arrays.items()}, batched


def check_raw_cameras(manifest: Mapping[str, Any]) -> None:
    """A camera the spec marks raw must name, in `preprocess.cameras`, a graph input that takes uint8 frames
    of its shape, and no other camera may reach a uint8 input: a manifest that disagrees is a BundleError at
    load, never a dtype error inside an engine."""
    graphs = {g["name"]: {i["name"]: i for i in g["inputs"]} for g in manifest["graphs"]}
    cams = (manifest.get("preprocess") or {}).get("cameras", {})
    for key, s in manifest["observations"].items():
        if s["kind"] != "image":
            continue
        if s.get("frame") != RAW_FRAME:
            bad = [g for g, ins in graphs.items() if ins.get(s["graph_input"], {}).get("dtype") == "uint8"]
            if bad:
                raise BundleError(f"malformed manifest: camera {key!r} is preprocessed on the host but graph(s) "
                                  f"{bad} take {s['graph_input']!r} as uint8 frames")
            continue
        entry = cams.get(key)
        io = graphs.get(entry["graph"], {}).get(entry["input"]) if entry else None
        c, h, w = s["shape"]
        if io is None or io.get("dtype") != "uint8" or list(io["shape"][-3:]) != [h, w, c]:
            raise BundleError(f"malformed manifest: camera {key!r} is taken raw (uint8 {h}x{w}x{c}) but "
                              f"preprocess.cameras names no graph input of that dtype and shape ({entry}, {io})")


def random_observation(spec: Mapping[str, dict], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """An unbatched observation the bundle accepts: uint8 HWC camera frames, N(0, 1) vectors (smoke tests,
    benchmarks; timing does not depend on the values)."""
    return {k: (rng.integers(0, 256, (s["shape"][1], s["shape"][2], s["shape"][0]), dtype=np.uint8)
                if s["kind"] == "image" else rng.standard_normal(s["shape"]).astype(np.float32))
            for k, s in spec.items()}


def random_batch(spec: Mapping[str, dict], rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
    """`batch` random observations stacked: camera frames (B, H, W, 3) uint8, vectors (B, D)."""
    frames = [random_observation(spec, rng) for _ in range(batch)]
    return {k: np.stack([f[k] for f in frames]) for k in spec}
