"""Normalization stats of a checkpoint: LeRobot >= 0.4 processor files (normalizer steps naming their
`state_file`) or, before that, `normalize_inputs.buffer_<key>.<stat>` buffers inside model.safetensors.
Also the preprocessor's rename map. Every stat is checked against its mode and its feature's shape."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import CheckpointError
from ..kernels.normalize import MODE_STATS
from .config import parse_features, read_json

if TYPE_CHECKING:
    from . import Checkpoint

log = logging.getLogger(__name__)

LEGACY_STAT_PREFIXES = ("normalize_inputs.", "normalize_targets.", "unnormalize_outputs.")
_STATE_FILE_RE = re.compile(r"^[A-Za-z0-9_.\-]+\.safetensors$")


GROOT_STEPS = ("groot_pack_inputs_v3", "groot_action_unpack_unnormalize_v1")


def load_stats(ckpt: Checkpoint) -> None:
    """Fill ckpt.stats (feature key -> stat name -> float32 array) and, from processor files, ckpt.norm_modes."""
    if (not _stats_from_processors(ckpt) and not _stats_from_groot_processors(ckpt)
            and not _stats_from_legacy_weights(ckpt)):
        if any(m != "IDENTITY" for m in ckpt.norm_modes.values()):
            raise CheckpointError(f"{ckpt.path}: no normalization stats found (neither policy_preprocessor.json/"
                                  "policy_postprocessor.json nor normalize_* buffers in model.safetensors)")
    _check_stats(ckpt)


def rename_map(path: Path) -> dict[str, str]:
    """The rename_observations_processor's map of the saved preprocessor (empty if none)."""
    step = _processor_step(path / "policy_preprocessor.json", ("rename_observations_processor",))
    rename = ((step or {}).get("config") or {}).get("rename_map") or {}
    if not isinstance(rename, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in rename.items()):
        raise CheckpointError(f"{path}/policy_preprocessor.json: rename_map must map strings to strings")
    return dict(rename)


def _processor_step(path: Path, registry_names: tuple[str, ...]) -> dict | None:
    """The normalizer/unnormalizer step of a saved processor pipeline, or None if the file is absent."""
    if not path.is_file():
        return None
    pipeline = read_json(path, "a processor pipeline")
    steps = pipeline.get("steps", [])
    if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
        raise CheckpointError(f"{path}: \"steps\" must be a list of objects")
    for step in steps:
        cls = step.get("class", "")
        if step.get("registry_name") in registry_names or (isinstance(cls, str) and cls.endswith(
                ("NormalizerProcessorStep", "UnnormalizerProcessorStep"))):
            if not isinstance(step.get("config", {}), dict):
                raise CheckpointError(f"{path}: step {step.get('registry_name')!r}: \"config\" must be an object")
            return step
    return None


def _read_state_file(ckpt_dir: Path, step: dict, where: str) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    name = step.get("state_file")
    if not name:
        raise CheckpointError(f"{where}: normalizer step has no \"state_file\"")
    if not _STATE_FILE_RE.match(name):  # a path in it could read outside the checkpoint
        raise CheckpointError(f"{where}: state_file {name!r} must be a plain file name")
    f = ckpt_dir / name
    if not f.is_file():
        raise CheckpointError(f"{where}: state_file {name} is missing from {ckpt_dir}")
    try:
        return load_file(str(f))
    except Exception as e:
        raise CheckpointError(f"{f}: cannot read safetensors stats ({e})") from e


def _split_stats(flat: dict[str, np.ndarray], keys) -> dict[str, dict[str, np.ndarray]]:
    """{'observation.state.mean': a} -> {'observation.state': {'mean': a}} for the wanted feature keys."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for name, arr in flat.items():
        key, _, stat = name.rpartition(".")
        if key in keys:
            out.setdefault(key, {})[stat] = np.asarray(arr, dtype=np.float32)
    return out


def _stats_from_processors(ckpt: Checkpoint) -> bool:
    pre = _processor_step(ckpt.path / "policy_preprocessor.json", ("normalizer_processor",))
    post = _processor_step(ckpt.path / "policy_postprocessor.json", ("unnormalizer_processor",))
    if pre is None and post is None:
        return False
    for step, keys, where in ((pre, ckpt.input_features, "policy_preprocessor.json"),
                              (post, ckpt.output_features, "policy_postprocessor.json")):
        if step is None:
            raise CheckpointError(f"{ckpt.path}: {where} is missing or has no (un)normalizer step")
        cfg = step.get("config", {})
        if not isinstance(cfg.get("norm_map") or {}, dict):
            raise CheckpointError(f"{ckpt.path}/{where}: norm_map must map feature types to modes")
        norm_map = {str(k).upper(): str(v).upper() for k, v in (cfg.get("norm_map") or {}).items()}
        feats = parse_features(cfg.get("features") or {}, f"{where} features")
        stats = _split_stats(_read_state_file(ckpt.path, step, where), keys)
        for key in keys:
            # the processor's norm_map is what LeRobot applies; a feature it does not list passes through
            ftype = feats[key].type if key in feats else ckpt.feature(key).type
            ckpt.norm_modes[key] = norm_map.get(ftype, "IDENTITY") if key in feats else "IDENTITY"
            if key in stats:
                ckpt.stats[key] = stats[key]
    return True


def _stats_from_groot_processors(ckpt: Checkpoint) -> bool:
    """LeRobot's groot: its pack-inputs step (state) and action-unpack step (action) hold min/max state files and
    apply MIN_MAX when `normalize_min_max` (config.json's normalization_mapping is not what runs); images and
    every other feature pass through."""
    pre = _processor_step(ckpt.path / "policy_preprocessor.json", GROOT_STEPS[:1])
    post = _processor_step(ckpt.path / "policy_postprocessor.json", GROOT_STEPS[1:])
    if pre is None and post is None:
        return False
    if pre is None or post is None:
        raise CheckpointError(f"{ckpt.path}: a groot checkpoint needs both {GROOT_STEPS[0]} (policy_preprocessor."
                              f"json) and {GROOT_STEPS[1]} (policy_postprocessor.json)")
    ckpt.norm_modes.update({k: "IDENTITY" for k in ckpt.norm_modes})
    for step, key, where in ((pre, "observation.state", "policy_preprocessor.json"),
                             (post, "action", "policy_postprocessor.json")):
        if not (step.get("config") or {}).get("normalize_min_max", True) or not step.get("state_file"):
            continue
        stats = _split_stats(_read_state_file(ckpt.path, step, where), (key,)).get(key)
        if stats and key in ckpt.norm_modes:
            ckpt.stats[key] = stats
            ckpt.norm_modes[key] = "MIN_MAX"
    return True


def _stats_from_legacy_weights(ckpt: Checkpoint) -> bool:
    """Stats stored as buffers of normalize_inputs / unnormalize_outputs in model.safetensors."""
    from safetensors import safe_open

    with safe_open(str(ckpt.weights_path), framework="numpy") as f:
        names = [k for k in f.keys() if k.startswith(LEGACY_STAT_PREFIXES)]
        if not names:
            return False
        for key in {**ckpt.input_features, **ckpt.output_features}:
            # buffer names are derived from feature keys ('.' -> '_'); never the other way round, since
            # camera names contain underscores themselves
            prefix = ("unnormalize_outputs." if key in ckpt.output_features else "normalize_inputs.")
            prefix += "buffer_" + key.replace(".", "_") + "."
            stats = {n[len(prefix):]: f.get_tensor(n).astype(np.float32) for n in names if n.startswith(prefix)}
            if stats:
                ckpt.stats[key] = stats
    ckpt.legacy_stats = True
    return True


def _check_stats(ckpt: Checkpoint) -> None:
    for key, mode in ckpt.norm_modes.items():
        if mode == "IDENTITY":
            continue
        if mode not in MODE_STATS:
            raise CheckpointError(f"{key}: unknown normalization mode {mode!r}; expected one of "
                                  f"{sorted(MODE_STATS) + ['IDENTITY']}")
        need = MODE_STATS[mode]
        have = ckpt.stats.get(key, {})
        missing = [s for s in need if s not in have]
        if missing:
            raise CheckpointError(f"{key}: normalization {mode} needs stats {list(need)}, missing {missing}")
        for s in need:
            if not np.all(np.isfinite(have[s])):
                raise CheckpointError(f"{key}.{s}: stats contain NaN or inf")
        shape = ckpt.feature(key).shape
        for s in need:
            v = have[s].reshape(-1, 1, 1) if len(shape) == 3 and have[s].ndim == 1 else have[s]
            try:
                fits = np.broadcast_shapes(v.shape, shape) == shape
            except ValueError:
                fits = False
            if not fits:
                raise CheckpointError(f"{key}.{s}: stats of shape {list(have[s].shape)} do not fit the feature's "
                                      f"shape {list(shape)} (config.json)")
        if mode == "MEAN_STD" and np.any(have["std"] == 0):
            log.warning("%s: std has zeros; LeRobot divides by (std + 1e-8) there, as lerobot-edge does", key)
