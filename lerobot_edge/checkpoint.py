"""Read a LeRobot checkpoint (local directory or Hub repo id) without torch.

A checkpoint is `config.json` + `model.safetensors` + (LeRobot >= 0.4) `policy_preprocessor.json` /
`policy_postprocessor.json` whose normalizer steps name their stats file in `"state_file"`. Older
checkpoints keep the stats inside model.safetensors as `normalize_inputs.buffer_<key>.<stat>` buffers.
Everything here is JSON and safetensors: nothing is unpickled, no code from the checkpoint runs.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .bundle import sha256_file
from .errors import CheckpointError, HubUnavailableError
from .kernels.normalize import MODE_STATS

log = logging.getLogger(__name__)

CHECKPOINT_PATTERNS = ["config.json", "model.safetensors", "policy_*processor*.json",
                       "policy_*processor*.safetensors", "adapter_config.json", "adapter_model.safetensors",
                       "README.md", "train_config.json"]
FEATURE_TYPES = ("STATE", "VISUAL", "ENV", "ACTION", "LANGUAGE", "REWARD")
LEGACY_STAT_PREFIXES = ("normalize_inputs.", "normalize_targets.", "unnormalize_outputs.")
_STATE_FILE_RE = re.compile(r"^[A-Za-z0-9_.\-]+\.safetensors$")
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

    def weights_sha256(self) -> str:
        """sha256 of model.safetensors; for a PEFT checkpoint, of the base's and the adapter's digests."""
        digest = sha256_file(self.weights_path)
        if self.base_path is None:
            return digest
        import hashlib

        adapter = sha256_file(self.path / "adapter_model.safetensors")
        return hashlib.sha256(f"{digest}+{adapter}".encode()).hexdigest()

    def load_weights(self, mmap: bool = False) -> dict[str, np.ndarray]:
        """All tensors of model.safetensors as numpy arrays (keys as LeRobot saved them). mmap=True maps them
        from the file (copy-on-write, nothing read until used): how a 13 GB VLA loads in 24 GB without a
        second copy (PEFT checkpoints and dtypes numpy lacks, e.g. bf16, are read into memory)."""
        from safetensors.numpy import load_file

        try:
            if mmap and self.base_path is None:
                mapped = mmap_safetensors(self.weights_path)
                if mapped is not None:
                    return mapped
            weights = load_file(str(self.weights_path))
        except Exception as e:  # safetensors raises its own error types for truncated/corrupt files
            raise CheckpointError(f"{self.weights_path}: cannot read safetensors weights ({e})") from e
        bad = [k for k, v in weights.items() if v.dtype.kind == "f" and not np.isfinite(v).all()]
        if bad:
            raise CheckpointError(f"{self.weights_path}: {len(bad)} weight tensor(s) contain NaN or inf, e.g. {bad[0]}")
        if self.base_path is not None:
            from .peft import merge_lora

            weights = merge_lora(weights, self.path)
        return weights


_MMAP_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32,
                "U8": np.uint8, "I8": np.int8, "BOOL": np.bool_}


def mmap_safetensors(path: Path) -> dict[str, np.ndarray] | None:
    """Copy-on-write memory maps of every tensor of a safetensors file (8-byte header length, JSON header,
    then the data); None when a dtype has no numpy equivalent."""
    import struct

    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    if any(h["dtype"] not in _MMAP_DTYPES for h in header.values()):
        return None
    raw = np.memmap(path, dtype=np.uint8, mode="c", offset=8 + n)
    out = {}
    for name, h in header.items():
        start, end = h["data_offsets"]
        out[name] = raw[start:end].view(_MMAP_DTYPES[h["dtype"]]).reshape(h["shape"])
    return out


# ---------------------------------------------------------------------------------------------- locating


def resolve_source(source: str | Path, revision: str | None = None) -> tuple[Path, dict]:
    """A local directory as is; anything else is a Hub repo id, downloaded (checkpoint files only)."""
    p = Path(source).expanduser()
    if p.is_dir():
        return p.resolve(), {"path": str(p.resolve()), "revision": revision}
    if p.exists():
        raise CheckpointError(f"{source}: is a file; expected a checkpoint directory or a Hub repo id")
    if not re.fullmatch(r"[\w.\-]+/[\w.\-]+", str(source)):
        raise CheckpointError(f"{source}: no such directory, and not a Hub repo id of the form 'user/name'")
    local = hub_download(str(source), revision, CHECKPOINT_PATTERNS)
    return local, {"repo_id": str(source), "revision": revision}


def hub_download(repo_id: str, revision: str | None, allow_patterns: list[str],
                 local_dir: Path | None = None) -> Path:
    """snapshot_download with the Hub's many failure modes folded into one clear error."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import (GatedRepoError, RepositoryNotFoundError,
                                            RevisionNotFoundError)
    except ImportError as e:  # pragma: no cover - a base dependency
        raise HubUnavailableError("huggingface_hub is not installed") from e
    try:
        kw = {"local_dir": str(local_dir)} if local_dir else {}
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=allow_patterns, **kw))
    except GatedRepoError as e:
        raise HubUnavailableError(f"{repo_id}: gated on the Hub; accept its terms and `hf auth login`") from e
    except RevisionNotFoundError as e:
        raise HubUnavailableError(f"{repo_id}: revision {revision!r} not found on the Hub") from e
    except RepositoryNotFoundError as e:
        raise HubUnavailableError(f"{repo_id}: no such repo on the Hub (or it is private)") from e
    except Exception as e:  # offline, DNS, timeouts, proxies: one message
        raise HubUnavailableError(f"{repo_id}: cannot download from the Hugging Face Hub ({type(e).__name__}: "
                                  f"{e}). Pass a local checkpoint directory instead.") from e


# ---------------------------------------------------------------------------------------------- reading


def _read_json(path: Path, what: str) -> dict:
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


def _features(raw: dict, where: str) -> dict[str, Feature]:
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


def _check_config_fields(config: dict, path: Path) -> None:
    for name in POSITIVE_INT_FIELDS:
        v = config.get(name)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise CheckpointError(f"{path}/config.json: {name} must be a positive integer, got {v!r:.40}")


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


def load_checkpoint(source: str | Path, *, policy_type: str | None = None,
                    revision: str | None = None, base: str | Path | None = None) -> Checkpoint:
    """Read config, features and normalization stats of a LeRobot checkpoint (weights stay on disk).

    A PEFT/LoRA checkpoint (adapter_model.safetensors, no model.safetensors) is read on top of its base policy:
    `base`, else the adapter config's base_model_name_or_path; `load_weights` returns the merged weights."""
    path, src = resolve_source(source, revision)
    base_path = _peft_base(path, base)
    config = _read_json(path / "config.json", "the policy config")
    _check_config_fields(config, path)
    ptype = config.get("type") or policy_type
    if not ptype:
        raise CheckpointError(f"{path}/config.json has no \"type\" field (some LeRobot versions omit it): "
                              "pass --policy-type (CLI) or policy_type= (API), e.g. 'act'")
    if policy_type and config.get("type") and policy_type != config["type"]:
        raise CheckpointError(f"policy_type={policy_type!r} disagrees with config.json type {config['type']!r}")
    if not ((base_path or path) / "model.safetensors").is_file():
        raise CheckpointError(f"{base_path or path}: missing model.safetensors (only safetensors weights are read)")
    if "input_features" in config:
        ins = _features(config["input_features"], "input_features")
        outs = _features(config.get("output_features"), "output_features")
        mapping = {str(k).upper(): str(v).upper() for k, v in (config.get("normalization_mapping") or {}).items()}
        modes = {k: mapping.get(f.type, "IDENTITY") for k, f in {**ins, **outs}.items()}
    else:
        ins, outs, modes = _legacy_features(config)
    if "action" not in outs:
        raise CheckpointError(f"{path}/config.json: output_features has no 'action'")
    src["license"] = config.get("license")
    ckpt = Checkpoint(path, config, str(ptype), ins, outs, modes, {}, source=src, base_path=base_path)
    _load_stats(ckpt)
    ckpt.rename_map = _rename_map(path)
    return ckpt


def _peft_base(path: Path, base: str | Path | None) -> Path | None:
    from .peft import is_peft_checkpoint, read_adapter_config

    if not is_peft_checkpoint(path):
        return None
    base = base or read_adapter_config(path).get("base_model_name_or_path")
    if not base:
        raise CheckpointError(f"{path} is a PEFT adapter without base_model_name_or_path: pass --base (CLI) or "
                              "base= (API) with the base policy's checkpoint")
    return resolve_source(base)[0]


# ---------------------------------------------------------------------------------------------- stats


def _processor_step(path: Path, registry_names: tuple[str, ...]) -> dict | None:
    """The normalizer/unnormalizer step of a saved processor pipeline, or None if the file is absent."""
    if not path.is_file():
        return None
    pipeline = _read_json(path, "a processor pipeline")
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


def _rename_map(path: Path) -> dict[str, str]:
    """The rename_observations_processor's map of the saved preprocessor (empty if none)."""
    step = _processor_step(path / "policy_preprocessor.json", ("rename_observations_processor",))
    rename = ((step or {}).get("config") or {}).get("rename_map") or {}
    if not isinstance(rename, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in rename.items()):
        raise CheckpointError(f"{path}/policy_preprocessor.json: rename_map must map strings to strings")
    return dict(rename)


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
        feats = _features(cfg.get("features") or {}, f"{where} features")
        stats = _split_stats(_read_state_file(ckpt.path, step, where), keys)
        for key in keys:
            # the processor's norm_map is what LeRobot applies; a feature it does not list passes through
            ftype = feats[key].type if key in feats else ckpt.feature(key).type
            ckpt.norm_modes[key] = norm_map.get(ftype, "IDENTITY") if key in feats else "IDENTITY"
            if key in stats:
                ckpt.stats[key] = stats[key]
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


def _load_stats(ckpt: Checkpoint) -> None:
    if not _stats_from_processors(ckpt) and not _stats_from_legacy_weights(ckpt):
        if any(m != "IDENTITY" for m in ckpt.norm_modes.values()):
            raise CheckpointError(f"{ckpt.path}: no normalization stats found (neither policy_preprocessor.json/"
                                  "policy_postprocessor.json nor normalize_* buffers in model.safetensors)")
    _check_stats(ckpt)
