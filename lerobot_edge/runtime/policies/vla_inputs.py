"""VLA inputs at the runtime's door: camera frames of any size (resized later on the host) with LeRobot's
missing-camera rule, and the task prompt tokenized with the bundle's tokenizer.json (`tokenizers` package).
A preprocess_in_graph bundle takes uint8 frames of exactly the size recorded at export instead (its frames
graphs resize them), so another size is refused here rather than inside an engine."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ...errors import BundleError, ObservationError
from ..observations import IMAGE_PREFIX, _as_array, _checked, raw_frame


def _frame(key: str, value: Any, convert: bool = True) -> tuple[np.ndarray, bool]:
    """uint8 HWC RGB frame or float CHW in [0, 1], any size -> (B, 3, H, W) float32, batched? With
    convert=False a uint8 frame is only checked and comes back as (B, H, W, 3) uint8 (a queued call)."""
    arr = _as_array(key, value)
    if arr.dtype == np.uint8:
        if arr.ndim not in (3, 4) or arr.shape[-1] != 3:
            raise ObservationError(f"{key}: a uint8 image must be an HWC RGB frame (H, W, 3) or (B, H, W, 3), "
                                   f"got {arr.shape}")
        if 0 in arr.shape[-3:-1]:
            raise ObservationError(f"{key}: an image of size {arr.shape[-3:-1]} has no pixels")
        batched = arr.ndim == 4
        arr = arr if batched else arr[None]
        if not convert:
            return _checked(key, arr, batched)
        chw = np.empty((arr.shape[0], 3, *arr.shape[1:3]), np.float32)   # C-contiguous: the resize reads rows
        np.divide(arr.transpose(0, 3, 1, 2), np.float32(255.0), out=chw)     # (B,H,W,C)->(B,C,H,W), as x / 255
        return _checked(key, chw, batched)
    if arr.dtype.kind != "f" or arr.ndim not in (3, 4) or arr.shape[-3] != 3:
        raise ObservationError(f"{key}: images must be uint8 HWC frames or float CHW (3, H, W) / (B, 3, H, W) "
                               f"in [0, 1], got {arr.dtype} {arr.shape}")
    if 0 in arr.shape[-2:]:
        raise ObservationError(f"{key}: an image of size {arr.shape[-2:]} has no pixels")
    batched = arr.ndim == 4
    return _checked(key, np.asarray(arr if batched else arr[None], dtype=np.float32), batched)


def camera_images(obs: Mapping[str, Any], cameras: list[str], raw: Mapping[str, tuple] | None = None,
                  convert: bool = True) -> tuple[list[np.ndarray], np.ndarray, bool]:
    """-> images (present cameras in feature order, then one zero placeholder per missing camera), mask (C,)
    1 for present / 0 for missing, batched? At least one camera must be present (as in LeRobot). `raw`:
    camera -> feature shape (C, H, W) of the cameras taken as uint8 frames (B, H, W, 3) of exactly that size.
    convert=False: every check, uint8 frames left as given (see _frame)."""
    stray = sorted(k for k in obs if isinstance(k, str) and k.startswith(IMAGE_PREFIX) and k not in cameras)
    if stray:
        raise ObservationError(f"{stray[0]}: this policy has no such camera; its cameras are {cameras}")
    present = [k for k in cameras if k in obs]
    if not present:
        raise ObservationError(f"no camera image in the observation; expected at least one of {cameras}")
    raw = raw or {}
    frames = [raw_frame(k, obs[k], raw[k]) if k in raw else _frame(k, obs[k], convert) for k in present]
    sizes = {k: f.shape[0] for k, (f, _) in zip(present, frames)}
    if len(set(sizes.values())) > 1:
        raise ObservationError(f"cameras disagree on the batch size: {sizes}")
    missing = len(cameras) - len(present)
    images = [f for f, _ in frames] + [np.zeros_like(frames[0][0]) for _ in range(missing)]
    mask = np.array([1] * len(present) + [0] * missing, dtype=bool)
    return images, mask, any(b for _, b in frames)


def task_list(task: Any, batch: int) -> list[str]:
    """The instruction of each batch row: a string (for every row) or a list / tuple of `batch` strings."""
    if task is None:
        raise ObservationError("missing 'task': a VLA needs the task instruction (a string, or one per batch row)")
    tasks = [task] * batch if isinstance(task, str) else list(task) if isinstance(task, (list, tuple)) else []
    if len(tasks) != batch or not all(isinstance(t, str) for t in tasks):
        raise ObservationError(f"task: expected a string or a list of {batch} strings, got {type(task).__name__}")
    return tasks


class Tokenizer:
    """LeRobot's TokenizerProcessorStep with padding="max_length", truncation=True, in `tokenizers`."""

    def __init__(self, path: Path, max_length: int, pad_id: int, padding_side: str = "right"):
        try:
            from tokenizers import Tokenizer as _Tok
        except ImportError as e:  # a base dependency
            raise BundleError("this bundle needs the `tokenizers` package: pip install tokenizers") from e
        try:
            self.tok = _Tok.from_file(str(path))
        except Exception as e:  # the tokenizers library raises its own exception type for a bad file
            raise BundleError(f"{path.name}: not a readable tokenizer.json ({e})") from e
        self.max_length, self.pad_id, self.side = max_length, pad_id, padding_side

    def __call__(self, task: Any, batch: int, append_newline: bool) -> tuple[np.ndarray, np.ndarray]:
        """task: str or list of B str -> ids (B, L) int64, mask (B, L) bool."""
        tasks = task_list(task, batch)
        ids = np.full((batch, self.max_length), self.pad_id, np.int64)
        mask = np.zeros((batch, self.max_length), bool)
        for i, text in enumerate(tasks):
            if append_newline and not text.endswith("\n"):
                text += "\n"
            toks = self.tok.encode(text).ids
            if len(toks) > self.max_length:
                warnings.warn(f"task prompt of {len(toks)} tokens truncated to {self.max_length}", stacklevel=4)
                toks = toks[: self.max_length]
            n = len(toks)
            sl = slice(0, n) if self.side == "right" else slice(self.max_length - n, self.max_length)
            ids[i, sl], mask[i, sl] = toks, True
        return ids, mask


def pi05_prompts(task: Any, state: np.ndarray) -> list[str]:
    """LeRobot's Pi05PrepareStateTokenizerProcessorStep: the normalized state (B, S), unpadded, in 256 bins
    over [-1, 1] written into "Task: …, State: …;\nAction: "."""
    tasks = task_list(task, state.shape[0])
    bins = np.digitize(state, bins=np.linspace(-1, 1, 256 + 1)[:-1]) - 1
    return [f"Task: {t.strip().replace('_', ' ').replace(chr(10), ' ')}, State: {' '.join(map(str, b))};\nAction: "
            for t, b in zip(tasks, bins)]
