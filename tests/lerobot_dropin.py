"""Runs inside the LeRobot 0.4.4 venv (see tests/test_lerobot_dropin.py): LeRobot's own `predict_action`
(the function lerobot-record calls every tick) drives both LeRobot's ACTPolicy with its processors and a
lerobot-edge bundle wrapped in LeRobotPolicy with pass-through processors, on the same robot observations.

usage: python lerobot_dropin.py CHECKPOINT_DIR BUNDLE_DIR STEPS   -> prints the max abs difference
"""

import sys

import numpy as np
import torch
from lerobot.policies.act.modeling_act import ACTPolicy
from lerobot.policies.factory import make_pre_post_processors
from lerobot.utils.control_utils import predict_action

from lerobot_edge.integrations.lerobot import LeRobotPolicy

ckpt, bundle, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
reference = ACTPolicy.from_pretrained(ckpt)
pre, post = make_pre_post_processors(reference.config, pretrained_path=ckpt,
                                     preprocessor_overrides={"device_processor": {"device": "cpu"}})
edge = LeRobotPolicy.from_bundle(bundle)
edge_pre, edge_post = edge.processors()   # the two lines a user changes
reference.reset()
edge.reset()
rng = np.random.default_rng(0)
worst = 0.0
for _ in range(steps):
    obs = {}  # what a LeRobot robot hands predict_action: uint8 HWC frames and float state vectors
    for key, f in reference.config.input_features.items():
        if f.type.name == "VISUAL":
            c, h, w = f.shape
            obs[key] = rng.integers(0, 256, (h, w, c), dtype=np.uint8)
        else:
            obs[key] = rng.normal(0, 1, f.shape).astype(np.float32)
    device = torch.device("cpu")
    want = predict_action(obs, reference, device, pre, post, False, task="", robot_type="sim")
    got = predict_action(obs, edge, device, edge_pre, edge_post, False, task="", robot_type="sim")
    assert isinstance(got, torch.Tensor) and got.shape == want.shape, (type(got), got.shape, want.shape)
    worst = max(worst, float((got - want).abs().max()))
print(worst)
