"""Read a LeRobot checkpoint (local directory or Hub repo id) without torch.

A checkpoint is `config.json` + `model.safetensors` + (LeRobot >= 0.4) `policy_preprocessor.json` /
`policy_postprocessor.json` whose normalizer steps name their stats file in `"state_file"`. Older
checkpoints keep the stats inside model.safetensors as `normalize_inputs.buffer_<key>.<stat>` buffers.
Everything here is JSON and safetensors: nothing is unpickled, no code from the checkpoint runs.

One module per concern: `source` (directory or Hub id), `config` (config.json, features, field checks),
`stats` (processor files, legacy in-weights stats, stat checks), `weights` (safetensors, mmap).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import CheckpointError
from .config import FEATURE_TYPES, POSITIVE_INT_FIELDS, Feature, config_features, policy_type_of, read_config
from .source import CHECKPOINT_PATTERNS, peft_base, resolve_source
from .stats import LEGACY_STAT_PREFIXES, load_stats, rename_map
from .weights import mmap_safetensors, read_weights, weights_sha256

__all__ = ["CHECKPOINT_PATTERNS", "FEATURE_TYPES", "LEGACY_STAT_PREFIXES", "POSITIVE_INT_FIELDS", "Checkpoint",
           "Feature", "load_checkpoint", "mmap_safetensors", "resolve_source"]


@dataclass
class Checkpoint:
    """A LeRobot checkpoint read from disk: config, features, normalization and where the weights are."""

    path: Path
    config: dict
    policy_type: str
    input_features: dict[str, Feature]
    output_features: dict[str, Feature]
    norm_modes: dict[str, str]                      # feature key -> MEAN_STD | MIN_MAX | … | IDENTITY
    stats: dict[str, dict[str, np.ndarray]]          # feature key -> stat name -> float32 array
    legacy_stats: bool = False
    source: dict = field(default_factory=dict)      # repo_id / revision / path, license
    rename_map: dict[str, str] = field(default_factory=dict)  # robot key -> policy key (preprocessor step)
    base_path: Path | None = None   # PEFT checkpoints: the base policy whose weights the adapter modifies

    @property
    def weights_path(self) -> Path:
        return (self.base_path or self.path) / "model.safetensors"

    @property
    def image_keys(self) -> list[str]:
        """Camera feature keys in config order (LeRobot's order of `config.image_features`)."""
        return [k for k, f in self.input_features.items() if f.type == "VISUAL"]

    @property
    def action_feature(self) -> Feature:
        return self.output_features["action"]

    def dim(self, key: str) -> int:
        """Size of a 1-D input feature (observation.state, observation.environment_state); 0 when absent."""
        f = self.input_features.get(key)
        return f.shape[0] if f else 0

    def feature(self, key: str) -> Feature:
        return self.input_features.get(key) or self.output_features[key]

    @property
    def _adapter_dir(self) -> Path | None:
        return self.path if self.base_path is not None else None

    def weights_sha256(self) -> str:
        """sha256 of model.safetensors; for a PEFT checkpoint, of the base's and the adapter's digests."""
        return weights_sha256(self.weights_path, self._adapter_dir)

    def load_weights(self, mmap: bool = False) -> dict[str, np.ndarray]:
        """All tensors of model.safetensors as numpy arrays (keys as LeRobot saved them), LoRA merged for a
        PEFT checkpoint; mmap=True maps them from the file (see weights.read_weights)."""
        return read_weights(self.weights_path, adapter_dir=self._adapter_dir, mmap=mmap)


def load_checkpoint(source: str | Path, *, policy_type: str | None = None,
                    revision: str | None = None, base: str | Path | None = None) -> Checkpoint:
    """Read config, features and normalization stats of a LeRobot checkpoint (weights stay on disk).

    A PEFT/LoRA checkpoint (adapter_model.safetensors, no model.safetensors) is read on top of its base policy:
    `base`, else the adapter config's base_model_name_or_path; `load_weights` returns the merged weights."""
    path, src = resolve_source(source, revision)
    base_path = peft_base(path, base)
    config = read_config(path)
    ptype = policy_type_of(config, policy_type, path)
    if not ((base_path or path) / "model.safetensors").is_file():
        raise CheckpointError(f"{base_path or path}: missing model.safetensors (only safetensors weights are read)")
    ins, outs, modes = config_features(config, path)
    src["license"] = config.get("license")
    ckpt = Checkpoint(path, config, ptype, ins, outs, modes, {}, source=src, base_path=base_path)
    load_stats(ckpt)
    ckpt.rename_map = rename_map(path)
    return ckpt
