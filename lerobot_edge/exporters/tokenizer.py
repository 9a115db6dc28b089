"""The tokenizer that goes into a VLA bundle (tokenizer.json, read on the robot with the `tokenizers` package).

Source, in order: `--tokenizer PATH_OR_ID` (a directory or a tokenizer.json file, or a Hub repo id), else the
name the checkpoint's saved preprocessor records (a local directory, or a Hub id such as the gated
`google/paligemma-3b-pt-224`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..errors import CheckpointError, HubUnavailableError


def _local(p: Path) -> Path | None:
    if p.is_file() and p.name.endswith(".json"):
        return p
    if (p / "tokenizer.json").is_file():
        return p / "tokenizer.json"
    return None


def resolve_tokenizer(override: str | None, recorded: str) -> Path:
    """-> path of a tokenizer.json; a clear CheckpointError saying how to provide one otherwise."""
    name = override or recorded
    found = _local(Path(name).expanduser())
    if found:
        return found
    try:
        from ..hub import hub_download

        d = hub_download(name, None, ["tokenizer.json", "tokenizer_config.json"])
        found = _local(Path(d))
    except (HubUnavailableError, CheckpointError, OSError, ValueError):
        found = None
    if found is None:
        raise CheckpointError(
            f"tokenizer {name!r} is not available (the PaliGemma tokenizer is gated on the Hub): pass "
            "--tokenizer PATH_OR_ID (API: tokenizer=...) with a directory or file holding tokenizer.json, "
            "e.g. a local copy of google/paligemma-3b-pt-224 after accepting its license")
    return found


def pad_id(tokenizer_json: Path) -> int:
    """The pad token's id: tokenizer_config.json's pad_token beside the file, else '<pad>', else 0."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_json))
    cfg = tokenizer_json.with_name("tokenizer_config.json")
    name = "<pad>"
    if cfg.is_file():
        pad = json.loads(cfg.read_text()).get("pad_token")
        name = pad.get("content", name) if isinstance(pad, dict) else (pad or name)
    found = tok.token_to_id(name)
    return 0 if found is None else int(found)


def add_tokenizer(writer, plan, override: str | None) -> None:
    """Copy the plan's tokenizer into the bundle (common file set) and record its pad id in the runtime."""
    spec = plan.runtime.get("tokenizer")
    if not spec:
        if override:
            raise ValueError(f"--tokenizer given, but a {plan.policy_type} bundle has no tokenizer")
        return
    src = resolve_tokenizer(override, spec.get("source", ""))
    shutil.copyfile(src, writer.abspath(spec["file"]))
    writer.add(spec["file"])
    spec["pad_id"] = pad_id(src)
    spec["source"] = str(override or spec.get("source"))
