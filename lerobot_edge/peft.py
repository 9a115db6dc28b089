"""LoRA adapters (PEFT checkpoints of LeRobot >= 0.6) merged into the base weights, in numpy.

A PEFT checkpoint has adapter_model.safetensors + adapter_config.json instead of model.safetensors. Keys are
`base_model.model.<policy key of the module>.lora_A.weight` / `.lora_B.weight` (Linear, Conv), `.lora_embedding_A`
/ `.lora_embedding_B` (Embedding), or full tensors of `modules_to_save`. Merging is exact LoRA math:

    W += scale * B @ A              scale = alpha / r  (use_rslora: alpha / sqrt(r)), per-module rank/alpha
    conv:  W[o, i, h, w] += scale * sum_r B[o, r] * A[r, i, h, w]
    embedding: W += scale * (B @ A).T
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np

from .errors import CheckpointError

PREFIX = "base_model.model."
ADAPTER_CONFIG, ADAPTER_WEIGHTS = "adapter_config.json", "adapter_model.safetensors"


def is_peft_checkpoint(path: Path) -> bool:
    return (path / ADAPTER_CONFIG).is_file() and not (path / "model.safetensors").is_file()


def read_adapter_config(path: Path) -> dict:
    try:
        cfg = json.loads((path / ADAPTER_CONFIG).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path / ADAPTER_CONFIG}: cannot read ({e})") from e
    if cfg.get("peft_type") != "LORA":
        raise CheckpointError(f"{path}: PEFT type {cfg.get('peft_type')!r} is not supported (only LORA merges exactly)")
    if cfg.get("use_dora"):
        raise CheckpointError(f"{path}: DoRA adapters are not supported yet; merge with peft's merge_and_unload first")
    return cfg


def _pattern_value(patterns: dict, module: str, default):
    """peft's rank_pattern / alpha_pattern: the first pattern matching the end of the module's name."""
    for pattern, value in patterns.items():
        if re.match(rf"(.*\.)?({pattern})$", module):
            return value
    return default


def _scale(cfg: dict, module: str) -> float:
    r = _pattern_value(cfg.get("rank_pattern") or {}, module, cfg["r"])
    alpha = _pattern_value(cfg.get("alpha_pattern") or {}, module, cfg["lora_alpha"])
    return alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r


def _delta(a: np.ndarray, b: np.ndarray, embedding: bool, fan_in_fan_out: bool) -> np.ndarray:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    if embedding:
        return (b64 @ a64).T                                                 # (num_embeddings, dim)
    if a.ndim == 4:
        return np.einsum("or,rihw->oihw", b64.reshape(b.shape[0], b.shape[1]), a64)  # B (O, r, 1, 1) -> (O, r)
    d = b64 @ a64                                                            # (out, in)
    return d.T if fan_in_fan_out else d


def merge_lora(base: dict[str, np.ndarray], adapter_dir: Path) -> dict[str, np.ndarray]:
    """Base weights (LeRobot keys) with the adapter in `adapter_dir` merged in; every adapter key is used."""
    from safetensors.numpy import load_file

    cfg = read_adapter_config(adapter_dir)
    adapter = load_file(str(adapter_dir / ADAPTER_WEIGHTS))
    out = dict(base)
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for key, value in adapter.items():
        if not key.startswith(PREFIX):
            raise CheckpointError(f"{ADAPTER_WEIGHTS}: unexpected key {key!r} (expected the '{PREFIX}' prefix)")
        name = key[len(PREFIX):]
        m = re.fullmatch(r"(.+)\.(lora_A|lora_B)\.weight|(.+)\.(lora_embedding_A|lora_embedding_B)", name)
        if m:
            module, part = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
            pairs.setdefault(module, {})[part] = value
        elif name in base:  # modules_to_save / trained biases: a full replacement
            if base[name].shape != value.shape:
                raise CheckpointError(f"{name}: adapter shape {value.shape} vs base {base[name].shape}")
            out[name] = value
        else:
            raise CheckpointError(f"{ADAPTER_WEIGHTS}: {name!r} matches no weight of the base checkpoint")
    for module, parts in pairs.items():
        embedding = "lora_embedding_A" in parts
        a, b = (parts.get("lora_embedding_A"), parts.get("lora_embedding_B")) if embedding else \
            (parts.get("lora_A"), parts.get("lora_B"))
        target = f"{module}.weight"
        if a is None or b is None or target not in base:
            raise CheckpointError(f"LoRA {module}: needs A and B and a base weight {target!r}")
        delta = _scale(cfg, module) * _delta(a, b, embedding, bool(cfg.get("fan_in_fan_out")))
        if delta.shape != base[target].shape:
            raise CheckpointError(f"LoRA {module}: delta {delta.shape} does not fit {target} {base[target].shape}")
        out[target] = (base[target].astype(np.float64) + delta).astype(base[target].dtype)
    return out
