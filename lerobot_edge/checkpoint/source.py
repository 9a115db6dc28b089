"""Where a checkpoint is: a local directory as is, anything else a Hub repo id (checkpoint files only)."""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import CheckpointError
from ..hub import hub_download

CHECKPOINT_PATTERNS = ["config.json", "model.safetensors", "policy_*processor*.json",
                       "policy_*processor*.safetensors", "adapter_config.json", "adapter_model.safetensors",
                       "README.md", "train_config.json"]


def resolve_source(source: str | Path, revision: str | None = None) -> tuple[Path, dict]:
    """A local directory as is; anything else is a Hub repo id, downloaded (checkpoint files only).
    Returns the directory and the source record (path or repo_id, revision) for the manifest."""
    p = Path(source).expanduser()
    if p.is_dir():
        return p.resolve(), {"path": str(p.resolve()), "revision": revision}
    if p.exists():
        raise CheckpointError(f"{source}: is a file; expected a checkpoint directory or a Hub repo id")
    if not re.fullmatch(r"[\w.\-]+/[\w.\-]+", str(source)):
        raise CheckpointError(f"{source}: no such directory, and not a Hub repo id of the form 'user/name'")
    local = hub_download(str(source), revision, CHECKPOINT_PATTERNS)
    return local, {"repo_id": str(source), "revision": revision}


def peft_base(path: Path, base: str | Path | None) -> Path | None:
    """The base policy's directory of a PEFT adapter checkpoint (`base`, else the adapter config's
    base_model_name_or_path); None for a plain checkpoint."""
    from ..peft import is_peft_checkpoint, read_adapter_config

    if not is_peft_checkpoint(path):
        return None
    base = base or read_adapter_config(path).get("base_model_name_or_path")
    if not base:
        raise CheckpointError(f"{path} is a PEFT adapter without base_model_name_or_path: pass --base (CLI) or "
                              "base= (API) with the base policy's checkpoint")
    return resolve_source(base)[0]
