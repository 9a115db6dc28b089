"""Per-user cache locations (never inside a bundle): downloaded Hub bundles, engines built on the device."""

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
