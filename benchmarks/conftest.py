"""Benchmark fixtures: full-size configs with random weights in LeRobot's layout (timing does not depend on
trained weights), exported once per session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from lerobot_layout import write_act_checkpoint  # noqa: E402


@pytest.fixture(scope="session")
def act_aloha_checkpoint(tmp_path_factory) -> Path:
    """ACT at the aloha sim insertion config: 1 camera 3x480x640, state 14, chunk 100, LeRobot's defaults."""
    return write_act_checkpoint(tmp_path_factory.mktemp("ckpt") / "act_aloha",
                                cameras={"observation.images.top": (3, 480, 640)}, state_dim=14, action_dim=14,
                                with_type=True)
