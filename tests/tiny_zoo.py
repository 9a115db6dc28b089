"""One tiny bundle per policy type, exported at most once per test process, for the suites that must cover
every policy (hostile observations, the non-finite output guard).

A conftest fixture named `<type>_tiny_bundle` wins when one exists (shared with the rest of the suite);
otherwise the checkpoint is written by the policy's layout writer (tests/<type>_layout.py, LeRobot's on-disk
layout) with the same small configs the policy's own tests use. A policy whose writer or runtime is not
there yet is skipped with the reason, so policies that land later are picked up without editing this file
beyond one entry in WRITERS.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

import pytest

# every LeRobot policy type lerobot-edge exports; the suites parametrize over this list
POLICY_TYPES = ("act", "diffusion", "pi0", "pi05", "sac", "tdmpc", "vqbet", "smolvla")
# load_policy keywords: a seed for the policies that draw noise, so a run is reproducible
LOAD_KW = {"act": {}, "sac": {"seed": 0}}
VLA_TYPES = ("pi0", "pi05", "smolvla")

_CACHE: dict[str, Path] = {}


def _pi_tokenizer(root: Path) -> Path:
    from pi_layout import write_tokenizer

    return write_tokenizer(root / "tokenizer")


def _write(name: str, root: Path) -> Path:
    """Write the tiny checkpoint of `name` under `root`; pytest.skip when its writer is not available."""
    d = root / "ckpt"
    if name == "act":
        from lerobot_layout import TINY_ACT, write_act_checkpoint

        return write_act_checkpoint(d, with_type=True, **TINY_ACT)
    if name == "diffusion":
        from lerobot_layout import write_diffusion_checkpoint

        return write_diffusion_checkpoint(d)
    if name in ("pi0", "pi05"):
        from pi_layout import write_pi0_checkpoint

        extra = {"kind": "pi05", "tokenizer_max_length": 64, "seed": 1} if name == "pi05" else {}
        return write_pi0_checkpoint(d, _pi_tokenizer(root), **extra)
    if name == "sac":
        from sac_layout import write_sac_checkpoint

        return write_sac_checkpoint(d, seed=7, cameras={"observation.image": (3, 64, 64)}, num_discrete_actions=3)
    if name == "tdmpc":
        from tdmpc_layout import write_tdmpc_checkpoint

        return write_tdmpc_checkpoint(d, seed=5)
    writer = _layout_writer(name)
    if name == "smolvla":
        vlm = importlib.import_module("smolvla_layout").write_vlm_dir(root / "vlm")
        return writer(d, vlm)
    return writer(d)


def _layout_writer(name: str) -> Callable:
    try:
        module = importlib.import_module(f"{name}_layout")
        return getattr(module, f"write_{name}_checkpoint")
    except (ImportError, AttributeError) as e:
        pytest.skip(f"no tiny {name} checkpoint writer yet (tests/{name}_layout.py: {e})")


def _runtime_ready(name: str) -> None:
    from lerobot_edge.policies import PLANS
    from lerobot_edge.runtime.loader import RUNTIMES

    if name not in PLANS:
        pytest.skip(f"{name}: no export plan registered yet")
    kind = {"pi0": "flow", "pi05": "flow", "smolvla": "flow"}.get(name, name)
    if kind not in RUNTIMES:
        pytest.skip(f"{name}: no runtime registered yet")


def build(name: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Export the tiny bundle of policy type `name` once per process (what a conftest `<type>_tiny_bundle`
    fixture can return, so every module shares one export)."""
    if name not in _CACHE:
        _runtime_ready(name)
        from lerobot_edge import export

        root = tmp_path_factory.mktemp(f"zoo_{name}")
        _CACHE[name] = export(_write(name, root), root / "bundle")
    return _CACHE[name]


def tiny_bundle(name: str, request: pytest.FixtureRequest) -> Path:
    """The tiny bundle of policy type `name`: a conftest fixture `<type>_tiny_bundle` when there is one, else
    `build` (read-only: copy before editing)."""
    try:
        return request.getfixturevalue(f"{name}_tiny_bundle")
    except pytest.FixtureLookupError:
        return build(name, request.getfixturevalue("tmp_path_factory"))


def load(name: str, bundle: Path, **kw):
    from lerobot_edge import load_policy

    return load_policy(bundle, **{**LOAD_KW.get(name, {"seed": 0}), **kw})
