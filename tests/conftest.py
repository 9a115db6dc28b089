"""Shared fixtures: checkpoints written in LeRobot's on-disk layout, and bundles exported once per session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# CI runs the property tests deterministically (same examples every run); locally they explore new ones
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

sys.path.insert(0, str(Path(__file__).parent))

from lerobot_edge.testing.checkpoints.act import TINY_ACT, write_act_checkpoint  # noqa: E402
from shared import shared  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def _free_module_temp_dirs(tmp_path_factory):
    """Remove the temp dirs a test module made with tmp_path_factory.mktemp once the module is done: a
    full run writes ~11 GB of checkpoints and bundles (CI's disk filled up and its tests failed by the
    hundred). A passing test's own tmp_path goes at its teardown (tmp_path_retention_policy = "failed" in
    pyproject), a failing one's stays; so do `shared` artefacts and every test_* (tmp_path) dir."""
    import shutil

    base = tmp_path_factory.getbasetemp()
    before = set(base.iterdir())
    yield
    for d in set(base.iterdir()) - before:
        if d.is_dir() and not d.name.startswith("test_") and d.name != "shared":
            shutil.rmtree(d, ignore_errors=True)


def reference_dir(pointer: str = "current", env: str = "LEROBOT_EDGE_REFERENCE_DIR") -> Path | None:
    """Where a `make parity-ref*` target put LeRobot's reference outputs: the env var first, then the path
    written in .cache/reference/<pointer> (relative to the repo root or absolute)."""
    if os.environ.get(env):
        return Path(os.environ[env])
    current = REPO / ".cache" / "reference" / pointer
    if current.is_file():
        p = Path(current.read_text().strip())
        return p if p.is_absolute() else REPO / p
    if current.is_dir():
        return current
    return None


@pytest.fixture(scope="session")
def act_tiny_checkpoint(tmp_path_factory) -> Path:
    """One camera 3x48x64, state 6, action 4, tiny transformer, chunk 10, LeRobot 0.4 layout without "type"."""
    return shared("act_tiny_ckpt", lambda d: write_act_checkpoint(d / "act_tiny", **TINY_ACT), tmp_path_factory)


@pytest.fixture(scope="session")
def act_tiny_bundle(act_tiny_checkpoint, tmp_path_factory) -> Path:
    from lerobot_edge import export

    return shared("act_tiny_bundle", lambda d: export(act_tiny_checkpoint, d / "act_tiny", policy_type="act"),
                  tmp_path_factory)


@pytest.fixture(scope="session")
def act_trt_bundle(act_tiny_checkpoint, tmp_path_factory) -> Path:
    """The tiny ACT as a `--target trt` fp16 bundle (ONNX + build plan; the engine is built on a device)."""
    from lerobot_edge import export

    return shared("act_trt_bundle", lambda d: export(act_tiny_checkpoint, d / "b", "trt", policy_type="act",
                                                     precision="fp16"), tmp_path_factory)


@pytest.fixture(scope="session")
def act_multicam_checkpoint(tmp_path_factory) -> Path:
    """Two cameras of different sizes (one with underscores), env_state, pre-norm, gelu, MIN_MAX, 0.6 layout."""
    cams = {"observation.images.left": (3, 40, 56), "observation.images.wrist_right": (3, 32, 48)}
    return shared("act_multicam_ckpt", lambda d: write_act_checkpoint(
        d / "act_multicam", cameras=cams, state_dim=5, env_dim=3, action_dim=5,
        norm_map={"VISUAL": "MEAN_STD", "STATE": "MIN_MAX", "ENV": "MIN_MAX", "ACTION": "MIN_MAX"},
        layout="0.6", with_type=True, seed=1, pre_norm=True, feedforward_activation="gelu",
        **{**TINY_ACT, "n_decoder_layers": 2, "n_action_steps": 4}), tmp_path_factory)


@pytest.fixture(scope="session")
def act_multicam_bundle(act_multicam_checkpoint, tmp_path_factory) -> Path:
    from lerobot_edge import export

    return shared("act_multicam_bundle", lambda d: export(act_multicam_checkpoint, d / "act_multicam"),
                  tmp_path_factory)
