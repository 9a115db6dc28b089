"""Standard benchmark configurations: checkpoints with random weights in LeRobot's on-disk layout, at the sizes
users run (timing does not depend on trained weights). Which configs exist, and which writer makes each, is
`registry.POLICIES[<type>].bench` (writers in lerobot_edge.testing.checkpoints); `tables.py` and the
pytest-benchmark suite both use them. Full-size VLAs are exported by their own scripts (one process per graph
and backend: see README). TINY: one `<type>_tiny` config per policy with the tests' tiny checkpoint (a smoke run
of the tables in seconds, never a figure to publish)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from lerobot_edge.registry import POLICIES, load

CONFIGS: dict[str, Callable[[Path], Path]] = {
    name: load(ref) for spec in POLICIES.values() for name, ref in spec.bench.items()}
TINY: dict[str, Callable[[Path], Path]] = {
    f"{t}_tiny": load(spec.tiny) for t, spec in POLICIES.items() if spec.tiny}
POLICY_OF: dict[str, str] = {**{name: t for t, spec in POLICIES.items() for name in spec.bench},
                             **{f"{t}_tiny": t for t, spec in POLICIES.items() if spec.tiny}}


def select(policies: list[str] | None, tiny: bool = False) -> list[str]:
    """Config names for policy types `policies` (all when None), in registry order; an unknown type is an error."""
    pool = TINY if tiny else CONFIGS
    if policies:
        unknown = sorted(set(policies) - set(POLICIES))
        if unknown:
            raise ValueError(f"--policies {unknown}: expected policy types among {sorted(POLICIES)}")
    return [n for n in pool if not policies or POLICY_OF[n] in policies]


def write(name: str, root: Path) -> Path:
    """The checkpoint of config `name` under `root` (written once, reused when present)."""
    d = Path(root) / name
    if not (d / "model.safetensors").is_file():
        {**CONFIGS, **TINY}[name](d)
    return d
