"""validate --dataset: recorded observations of a LeRobot v3 dataset replayed through the bundle and through
eager PyTorch; the action error against PyTorch is the gate, against the recorded actions a sanity figure."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("av", reason="dataset replay needs PyAV (pip install 'lerobot-edge[dataset]')")
pytest.importorskip("pyarrow", reason="dataset replay needs pyarrow (pip install 'lerobot-edge[dataset]')")

from lerobot_edge.testing.dataset import write_v3_dataset  # noqa: E402

from lerobot_edge.dataset import LeRobotDataset  # noqa: E402
from lerobot_edge.errors import CheckpointError  # noqa: E402


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_v3_dataset(tmp_path_factory.mktemp("ds") / "sim_insert", cameras={"observation.images.top": (48, 64)},
                            state_dim=6, action_dim=4, episode_lengths=[12, 9, 7])


def test_reader_returns_frames_at_the_episode_times(dataset):
    ds = LeRobotDataset(dataset)
    assert ds.fps == 10 and ds.video_keys == ["observation.images.top"] and sorted(ds.episodes) == [0, 1, 2]
    frames = list(ds.frames(ds.episode(1)))
    assert len(frames) == 9
    obs, action = frames[0]
    assert obs["observation.images.top"].shape == (48, 64, 3) and obs["observation.images.top"].dtype == np.uint8
    assert obs["observation.state"].shape == (6,) and action.shape == (4,)
    with pytest.raises(CheckpointError, match="episode 7 not in the dataset"):
        ds.episode(7)


def test_validate_dataset_cli(dataset, act_tiny_bundle, act_tiny_checkpoint, tmp_path):
    r = subprocess.run([sys.executable, "-m", "lerobot_edge", "validate", str(act_tiny_bundle), "--dataset",
                        str(dataset), "--episodes", "0,2", "--against", str(act_tiny_checkpoint), "--plot",
                        str(tmp_path / "p.png"), "--json", str(tmp_path / "r.json")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert [e["episode"] for e in report["episodes"]] == [0, 2] and report["passed"] is True
    assert all(e["vs_reference_max"] <= 1e-4 for e in report["episodes"])
    assert [e["frames"] for e in report["episodes"]] == [12, 7]
    assert "episode 0: 12 frames" in r.stdout and (tmp_path / "p.png").stat().st_size > 1000
