"""Standard benchmark configurations: checkpoints with random weights in LeRobot's on-disk layout, at the sizes
users run (timing does not depend on trained weights). Which configs exist, and which writer makes each, is
`registry.POLICIES[<type>].bench` (writers in lerobot_edge.testing.checkpoints); `tables.py` and the
pytest-benchmark suite both use them. Full-size VLAs are exported by their own scripts (one process per graph
and backend: see README)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from lerobot_edge.registry import POLICIES, load

CONFIGS: dict[str, Callable[[Path], Path]] = {
    name: load(ref) for spec in POLICIES.values() for name, ref in spec.bench.items()}


def write(name: str, root: Path) -> Path:
    """The checkpoint of config `name` under `root` (written once, reused when present)."""
    d = Path(root) / name
    if not (d / "model.safetensors").is_file():
        CONFIGS[name](d)
    return d
