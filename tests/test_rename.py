"""--rename-map: cameras named differently on the robot than in training (LeRobot's rename step)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lerobot_edge import export, load_policy


def test_rename_map_is_recorded_and_applied(act_tiny_checkpoint, act_tiny_bundle, tmp_path):
    b = export(act_tiny_checkpoint, tmp_path / "b", policy_type="act",
               rename_map={"observation.images.cam_high": "observation.images.top"})
    assert json.loads((b / "manifest.json").read_text())["rename_map"] == {
        "observation.images.cam_high": "observation.images.top"}
    frame = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    state = np.ones(6, np.float32)
    got = load_policy(b).predict_action_chunk({"observation.images.cam_high": frame, "observation.state": state})
    want = load_policy(act_tiny_bundle).predict_action_chunk({"observation.images.top": frame,
                                                              "observation.state": state})
    np.testing.assert_array_equal(got, want)


def test_rename_to_a_non_feature_is_refused(act_tiny_checkpoint, tmp_path):
    with pytest.raises(ValueError, match="not observation features"):
        export(act_tiny_checkpoint, tmp_path / "b", policy_type="act", rename_map={"a": "observation.images.side"})


def test_checkpoint_rename_step_is_carried(act_tiny_checkpoint, tmp_path):
    import shutil

    ckpt = tmp_path / "c"
    shutil.copytree(act_tiny_checkpoint, ckpt)
    pre = json.loads((ckpt / "policy_preprocessor.json").read_text())
    pre["steps"][0]["config"]["rename_map"] = {"observation.images.front": "observation.images.top"}
    (ckpt / "policy_preprocessor.json").write_text(json.dumps(pre))
    b = export(ckpt, tmp_path / "b", policy_type="act")
    assert load_policy(b).rename_map == {"observation.images.front": "observation.images.top"}
