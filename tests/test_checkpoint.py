"""Reading LeRobot checkpoints in every layout we meet: 0.4 / 0.6 processor files, legacy in-weights stats."""

from __future__ import annotations

import json

import numpy as np
import pytest
from lerobot_edge.testing.checkpoints.act import TINY_ACT, write_act_checkpoint
from safetensors.numpy import load_file, save_file

from lerobot_edge.checkpoint import load_checkpoint
from lerobot_edge.errors import CheckpointError, HubUnavailableError
from lerobot_edge.kernels.normalize import normalize, unnormalize


@pytest.fixture
def ckpt_dir(tmp_path):
    return write_act_checkpoint(tmp_path / "c", **TINY_ACT)


def test_config_without_type_needs_policy_type(ckpt_dir):
    with pytest.raises(CheckpointError, match="policy-type"):
        load_checkpoint(ckpt_dir)
    ck = load_checkpoint(ckpt_dir, policy_type="act")
    assert ck.policy_type == "act"
    assert ck.image_keys == ["observation.images.top"]
    assert ck.norm_modes == {"observation.state": "MEAN_STD", "observation.images.top": "MEAN_STD",
                             "action": "MEAN_STD"}
    assert ck.stats["observation.images.top"]["mean"].shape == (3, 1, 1)


def test_state_file_is_read_from_the_step_not_its_index(tmp_path):
    d = write_act_checkpoint(tmp_path / "c06", layout="0.6", with_type=True, **TINY_ACT)
    pre = json.loads((d / "policy_preprocessor.json").read_text())
    assert pre["steps"][-1]["state_file"].startswith("policy_preprocessor_step_4_")
    ck = load_checkpoint(d)
    assert set(ck.stats) == {"observation.state", "observation.images.top", "action"}


def test_legacy_stats_in_weights_match_processor_stats(tmp_path):
    a = load_checkpoint(write_act_checkpoint(tmp_path / "new", **TINY_ACT), policy_type="act")
    b = load_checkpoint(write_act_checkpoint(tmp_path / "old", layout="legacy", **TINY_ACT), policy_type="act")
    assert b.legacy_stats and not a.legacy_stats
    for key in a.stats:
        np.testing.assert_array_equal(a.stats[key]["mean"], b.stats[key]["mean"])


def test_legacy_buffers_for_cameras_with_underscores(tmp_path):
    cams = {"observation.images.wrist_left": (3, 32, 32)}
    ck = load_checkpoint(write_act_checkpoint(tmp_path / "c", cameras=cams, layout="legacy", **TINY_ACT),
                         policy_type="act")
    assert "observation.images.wrist_left" in ck.stats


def test_processor_norm_map_filters_features(tmp_path):
    d = write_act_checkpoint(tmp_path / "c", norm_map={"VISUAL": "IDENTITY", "STATE": "MIN_MAX",
                                                       "ACTION": "QUANTILES"}, **TINY_ACT)
    ck = load_checkpoint(d, policy_type="act")
    assert ck.norm_modes["observation.images.top"] == "IDENTITY"
    assert ck.norm_modes["observation.state"] == "MIN_MAX"
    assert ck.norm_modes["action"] == "QUANTILES"


@pytest.mark.parametrize("edit,match", [
    (lambda d: (d / "model.safetensors").unlink(), "model.safetensors"),
    (lambda d: (d / "config.json").write_text("{not json"), "not valid JSON"),
    (lambda d: (d / "policy_postprocessor.json").unlink(), "policy_postprocessor.json"),
])
def test_broken_checkpoints_are_named(ckpt_dir, edit, match):
    edit(ckpt_dir)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(ckpt_dir, policy_type="act")


def test_state_file_with_a_path_is_refused(ckpt_dir):
    p = ckpt_dir / "policy_preprocessor.json"
    pre = json.loads(p.read_text())
    pre["steps"][-1]["state_file"] = "../../etc/stats.safetensors"
    p.write_text(json.dumps(pre))
    with pytest.raises(CheckpointError, match="plain file name"):
        load_checkpoint(ckpt_dir, policy_type="act")


def test_nan_stats_are_refused_zero_std_only_warns(ckpt_dir, caplog):
    name = next(ckpt_dir.glob("policy_postprocessor_step_*.safetensors"))
    stats = load_file(str(name))
    stats["action.std"] = np.zeros_like(stats["action.std"])
    save_file(stats, str(name))
    load_checkpoint(ckpt_dir, policy_type="act")
    assert "std has zeros" in caplog.text
    stats["action.mean"] = np.full_like(stats["action.mean"], np.nan)
    save_file(stats, str(name))
    with pytest.raises(CheckpointError, match="action.mean: stats contain NaN"):
        load_checkpoint(ckpt_dir, policy_type="act")


def test_unknown_source_and_unreachable_hub(tmp_path):
    with pytest.raises(CheckpointError, match="no such directory"):
        load_checkpoint(str(tmp_path / "nope" / "deeper" / "x"))
    with pytest.raises(HubUnavailableError, match="Hub"):
        load_checkpoint("lerobot-edge-tests/definitely-not-a-repo-xyz")


def test_normalization_formulas_match_lerobot():
    x = np.array([0.0, 1.0, 3.0], np.float32)
    st = {"mean": np.float32([1, 1, 1]), "std": np.float32([2, 0, 1]), "min": np.float32([0, 1, 1]),
          "max": np.float32([2, 1, 5]), "q01": np.float32([0, 0, 0]), "q99": np.float32([4, 4, 4])}
    np.testing.assert_allclose(normalize(x, "MEAN_STD", st), (x - 1) / (st["std"] + 1e-8))
    # MIN_MAX with max == min: LeRobot replaces the span by eps
    np.testing.assert_allclose(normalize(x, "MIN_MAX", st), [-1, 2 * 0 / 1e-8 - 1, 2 * 2 / 4 - 1])
    np.testing.assert_allclose(normalize(x, "QUANTILES", st), 2 * x / 4 - 1)
    for mode in ("MEAN_STD", "QUANTILES"):
        np.testing.assert_allclose(unnormalize(normalize(x, mode, st), mode, st), x, atol=1e-6)
    assert normalize(x, "IDENTITY", st) is x
