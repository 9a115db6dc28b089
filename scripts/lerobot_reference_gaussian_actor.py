#!/usr/bin/env python3
"""LeRobot 0.6.1 reference checkpoints and outputs for SAC's actor under its 0.6 name, `gaussian_actor`
(runs ONLY in the LeRobot 0.6 venv; lerobot_edge is never imported). Same files and reference.npz fields as
scripts/lerobot_reference_sac.py (0.4.4), whose actor outputs it reuses, with the same weight redraw, stats and
rsample noise tap (reference_common.py):

    obs.<key>, mean, std, action_mean (post(tanh(mean))), noise + action_sampled (select_action with LeRobot's
    own tapped rsample draws), discrete_q + discrete_action (cases with num_discrete_actions)

0.6 keeps only the policy side (actor + discrete critic; critics, targets and temperature moved to the
algorithm), saving `actor.*`, `discrete_critic.{net,output_layer}.*` and, with separate encoders,
`discrete_critic.encoder.*`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from lerobot_reference_sac import actor_reference, network_kwargs
from reference_common import (cli, lerobot_version, mean_std_stats, offset_generator, policy_features, redraw,
                              reload, save_checkpoint, sha256_file, sources_sha256, write_json, write_reference)

CASES = {
    "ga_image_gripper": {
        "seed": 6101, "batch": 2,
        "inputs": [("observation.state", "STATE", (5,)), ("observation.images.front", "VISUAL", (3, 64, 64)),
                   ("observation.images.wrist", "VISUAL", (3, 64, 64))],
        "action_dim": 3,
        "config": {"latent_dim": 32, "image_encoder_hidden_dim": 16, "image_embedding_pooling_dim": 4,
                   "num_discrete_actions": 3, "actor_network_kwargs": {"hidden_dims": [64, 64]},
                   "discrete_critic_network_kwargs": {"hidden_dims": [48, 48]}}},
    "ga_unshared": {
        "seed": 6102, "batch": 3,
        "inputs": [("observation.images.top", "VISUAL", (3, 48, 48)),
                   ("observation.environment_state", "ENV", (4,)), ("observation.state", "STATE", (3,))],
        "action_dim": 2,
        "config": {"latent_dim": 16, "image_encoder_hidden_dim": 8, "shared_encoder": False,
                   "num_discrete_actions": 2}},
    "ga_state": {"seed": 6103, "batch": 3, "inputs": [("observation.state", "STATE", (6,))], "action_dim": 4,
                 "config": {"latent_dim": 32, "actor_network_kwargs": {"hidden_dims": [64, 64]}}},
}


def make_policy(case: dict, ckpt: Path):
    from lerobot.policies.factory import make_pre_post_processors
    from lerobot.policies.gaussian_actor.configuration_gaussian_actor import (ActorNetworkConfig,
                                                                              CriticNetworkConfig,
                                                                              GaussianActorConfig)
    from lerobot.policies.gaussian_actor.modeling_gaussian_actor import GaussianActorPolicy

    seed = case["seed"]
    input_features, output_features = policy_features(case["inputs"], case["action_dim"])
    cfg = GaussianActorConfig(input_features=input_features, output_features=output_features, device="cpu",
                              **network_kwargs(case["config"], ActorNetworkConfig, CriticNetworkConfig))
    torch.manual_seed(seed)
    policy = GaussianActorPolicy(cfg)
    redraw(policy, offset_generator(seed, "weights"))
    stats = mean_std_stats(case["inputs"], case["action_dim"], offset_generator(seed, "stats"))
    save_checkpoint(ckpt, policy, *make_pre_post_processors(cfg, dataset_stats=stats))  # 0.6 writes "type"
    policy, pre, post = reload(GaussianActorPolicy, ckpt)
    return policy, pre, post, stats


def run_case(name: str, case: dict, out: Path) -> None:
    ckpt = out / name / "checkpoint"
    policy, pre, post, stats = make_policy(case, ckpt)
    assert json.loads((ckpt / "config.json").read_text())["type"] == "gaussian_actor"
    arrays = actor_reference(policy, pre, post, case, stats)
    write_reference(out / name / "reference.npz", arrays)
    meta = {"case": name, "lerobot_version": lerobot_version(), "torch": torch.__version__,
            "weights_sha256": sha256_file(ckpt / "model.safetensors"),
            "script_sha256": sha256_file(Path(__file__)), "sources_sha256": sources_sha256(),
            "std_mean": float(arrays["mean"].std())}
    write_json(out / name / "meta.json", meta)
    print(name, meta)


if __name__ == "__main__":
    sys.exit(cli(CASES, run_case, __doc__))
