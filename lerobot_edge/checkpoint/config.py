"""config.json: the policy type, input/output features and their normalization modes, field sanity checks.

Read as JSON only (NaN/Infinity and absurd nesting refused); nothing from the checkpoint is imported or run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import CheckpointError

FEATURE_TYPES = ("STATE", "VISUAL", "ENV", "ACTION", "LANGUAGE", "REWARD")
# config fields that are positive counts in every LeRobot policy that has them (a string or a negative value
# there would otherwise fail deep inside a policy's config class)
POSITIVE_INT_FIELDS = ("chunk_size", "n_action_steps", "n_obs_steps", "horizon", "dim_model", "n_heads",
                       "dim_feedforward", "n_encoder_layers", "n_decoder_layers", "tokenizer_max_length",
                       "max_state_dim", "max_action_dim", "num_inference_steps")


@dataclass(frozen=True)
class Feature:
    """One LeRobot policy feature: its type (STATE, VISUAL, ENV, ACTION…) and shape without batch."""

    type: str
    shape: tuple[int, ...]


def read_json(path: Path, what: str) -> dict:
    """A JSON object from a checkpoint file; `what` names the file's role in the missing-file error."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except FileNotFoundError as e:
        raise CheckpointError(f"{path.parent}: missing {path.name} ({what})") from e
    except (ValueError, RecursionError) as e:  # bad JSON or UTF-8, NaN/Infinity, absurd nesting
        raise CheckpointError(f"{path}: not valid JSON ({str(e)[:200]})") from e
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def read_config(path: Path) -> dict:
    """config.json of the checkpoint directory, its positive-count fields checked."""
    config = read_json(path / "config.json", "the policy config")
    for name in POSITIVE_INT_FIELDS:
        v = config.get(name)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise CheckpointError(f"{path}/config.json: {name} must be a positive integer, got {v!r:.40}")
    return config


def policy_type_of(config: dict, policy_type: str | None, path: Path) -> str:
    """config.json's "type", else the caller's `policy_type`; the two must agree when both are given."""
    ptype = config.get("type") or policy_type
    if not ptype:
        raise CheckpointError(f"{path}/config.json has no \"type\" field (some LeRobot versions omit it): "
                              "pass --policy-type (CLI) or policy_type= (API), e.g. 'act'")
    if policy_type and config.get("type") and policy_type != config["type"]:
        raise CheckpointError(f"policy_type={policy_type!r} disagrees with config.json type {config['type']!r}")
    return str(ptype)


def config_features(config: dict, path: Path) -> tuple[dict[str, Feature], dict[str, Feature], dict[str, str]]:
    """(input features, output features, feature key -> normalization mode) of config.json."""
    if "input_features" in config:
        ins = parse_features(config["input_features"], "input_features")
        outs = parse_features(config.get("output_features"), "output_features")
        mapping = {str(k).upper(): str(v).upper() for k, v in (config.get("normalization_mapping") or {}).items()}
        modes = {k: mapping.get(f.type, "IDENTITY") for k, f in {**ins, **outs}.items()}
    else:
        ins, outs, modes = _legacy_features(config)
    if "action" not in outs:
        raise CheckpointError(f"{path}/config.json: output_features has no 'action'")
    return ins, outs, modes


def parse_features(raw: dict, where: str) -> dict[str, Feature]:
    """{key: {"type", "shape"}} -> {key: Feature}; `where` names the field in errors."""
    if not isinstance(raw or {}, dict):
        raise CheckpointError(f"config.json {where}: expected an object of feature key -> {{type, shape}}")
    out = {}
    for key, f in (raw or {}).items():
        try:
            out[key] = Feature(str(f["type"]).upper(), tuple(int(s) for s in f["shape"]))
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"config.json {where}[{key!r}]: expected {{'type', 'shape'}}, got {f!r}") from e
        if any(s < 1 for s in out[key].shape):
            raise CheckpointError(f"config.json {where}[{key!r}]: shape {list(out[key].shape)} must be positive")
    return out


def _legacy_features(config: dict) -> tuple[dict, dict, dict]:
    """Configs from before `input_features` existed: `input_shapes` + `*_normalization_modes` per key."""
    def kind(key: str) -> str:
        if key.startswith("observation.image"):
            return "VISUAL"
        if key == "observation.environment_state":
            return "ENV"
        return "ACTION" if key == "action" else "STATE"

    ins = {k: Feature(kind(k), tuple(v)) for k, v in config.get("input_shapes", {}).items()}
    outs = {k: Feature(kind(k), tuple(v)) for k, v in config.get("output_shapes", {}).items()}
    modes = {**config.get("input_normalization_modes", {}), **config.get("output_normalization_modes", {})}
    modes = {k: str(m).upper() for k, m in modes.items()}
    return ins, outs, modes
