"""One tiny bundle per policy type, exported at most once per test process, for the suites that must cover
every policy (hostile observations, the non-finite output guard).

The policy types and their tiny checkpoints come from lerobot_edge.registry.POLICIES (each entry's `tiny`
writer, in lerobot_edge.testing.checkpoints): a policy added to the registry with a tiny writer is covered here
without editing this file. A conftest fixture named `<type>_tiny_bundle` wins when one exists (shared with the
rest of the suite).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lerobot_edge import registry
from shared import shared
from lerobot_edge.registry import POLICIES, runtime_class

# every LeRobot policy type lerobot-edge exports with a tiny checkpoint; the suites parametrize over this list
POLICY_TYPES = tuple(name for name, spec in POLICIES.items() if spec.tiny)
_CACHE: dict[str, Path] = {}


def runtime(name: str) -> type:
    """The runtime class of policy type `name` (its capabilities: takes_task, noise_kind, stochastic, …)."""
    return runtime_class(next(iter(POLICIES[name].runtimes)))


def takes_task(name: str) -> bool:
    return runtime(name).takes_task


def build(name: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Export the tiny bundle of policy type `name` once per test run, also across pytest-xdist workers (what a
    conftest `<type>_tiny_bundle` fixture can return, so every module shares one export). Its checkpoint is
    `<bundle>/../ckpt`."""
    if name not in _CACHE:
        from lerobot_edge import export

        def make(root: Path) -> Path:
            return export(registry.load(POLICIES[name].tiny)(root / "ckpt"), root / "bundle")

        _CACHE[name] = shared(f"zoo_{name}", make, tmp_path_factory)
    return _CACHE[name]


def tiny_bundle(name: str, request: pytest.FixtureRequest) -> Path:
    """The tiny bundle of policy type `name`: a conftest fixture `<type>_tiny_bundle` when there is one, else
    `build` (read-only: copy before editing)."""
    try:
        return request.getfixturevalue(f"{name}_tiny_bundle")
    except pytest.FixtureLookupError:
        return build(name, request.getfixturevalue("tmp_path_factory"))


def load(bundle: Path, **kw):
    """load_policy with a seed, so a run of a policy that draws noise is reproducible (ignored by the others)."""
    from lerobot_edge import load_policy

    return load_policy(bundle, **{"seed": 0, **kw})
