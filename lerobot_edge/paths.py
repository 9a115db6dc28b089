"""Where things go by default: per-user caches (never inside a bundle: downloaded Hub bundles, engines built on
the device) and the bundle directory `export` writes when no output is given."""

from __future__ import annotations

import os
import re
from pathlib import Path


def cache_root() -> Path:
    """$LEROBOT_EDGE_CACHE, else $XDG_CACHE_HOME/lerobot_edge, else ~/.cache/lerobot_edge."""
    if os.environ.get("LEROBOT_EDGE_CACHE"):
        return Path(os.environ["LEROBOT_EDGE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lerobot_edge"


def hub_bundle_dir(repo_id: str, revision: str | None) -> Path:
    """Where a Hub bundle is downloaded as real files (huggingface_hub local_dir, no symlinks)."""
    rev = re.sub(r"[^\w.\-]", "_", revision or "main")
    return cache_root() / "bundles" / repo_id.replace("/", "--") / rev


_HUB_ID = re.compile(r"[\w.\-]+/[\w.\-]+")
_RUN_TIME = re.compile(r"^\d{2}-\d{2}-\d{2}_")  # LeRobot's run dirs: <HH-MM-SS>_<job_name>


def default_output_dir(source: str | Path, target: str, precision: str = "fp32") -> Path:
    """The bundle directory `export` writes when no output is given: ./<name>-<target>[-<precision>].

    <name>: a local directory's name (as checkpoint.resolve_source, a directory wins over a Hub id), else a Hub
    id's repo name (lerobot/act_aloha_sim_insertion_human -> act_aloha_sim_insertion_human). LeRobot's training
    layout outputs/train/<date>/<HH-MM-SS>_<job>/checkpoints/<step>/pretrained_model gives <job>-<step>, with
    the `last` symlink read as the step it points to. The precision is appended unless it is fp32.
    """
    p = Path(source).expanduser()
    if p.is_dir() or not _HUB_ID.fullmatch(str(source)):
        name = _local_name(Path(os.path.abspath(p)))
    else:
        name = str(source).split("/")[1]
    parts = [name, target] + ([precision] if precision != "fp32" else [])
    return Path(re.sub(r"[^\w.\-]", "_", "-".join(parts)))


def _local_name(p: Path) -> str:
    """A checkpoint directory's name; LeRobot's generic .../checkpoints/<step>/pretrained_model -> <job>-<step>."""
    if p.name != "pretrained_model":
        return p.name or "bundle"  # "/" has no name
    step_dir = p.parent
    if step_dir.parent.name != "checkpoints":
        return step_dir.name or p.name
    step = Path(os.readlink(step_dir)).name if step_dir.is_symlink() else step_dir.name  # last -> 010000
    run = _RUN_TIME.sub("", step_dir.parent.parent.name)
    return f"{run}-{step}" if run else step
