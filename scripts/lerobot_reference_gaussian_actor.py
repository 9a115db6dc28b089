#!/usr/bin/env python3
"""LeRobot 0.6.1 reference checkpoints and outputs for SAC's actor under its 0.6 name, `gaussian_actor`
(runs ONLY in the LeRobot 0.6 venv; lerobot_edge is never imported). Same files and reference.npz fields as
scripts/lerobot_reference_sac.py (0.4.4), whose weight redraw, stats and rsample noise tap it reuses:

    obs.<key>, mean, std, action_mean (post(tanh(mean))), noise + action_sampled (select_action with LeRobot's
    own tapped rsample draws), discrete_q + discrete_action (cases with num_discrete_actions)

0.6 keeps only the policy side (actor + discrete critic; critics, targets and temperature moved to the
algorithm), saving `actor.*`, `discrete_critic.{net,output_layer}.*` and, with separate encoders,
`discrete_critic.encoder.*`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lerobot_reference_sac import NoiseTap, generator, make_stats, redraw, sha256_file  # noqa: E402

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
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.factory import make_pre_post_processors
    from lerobot.policies.gaussian_actor.configuration_gaussian_actor import (ActorNetworkConfig,
                                                                              CriticNetworkConfig,
                                                                              GaussianActorConfig)
    from lerobot.policies.gaussian_actor.modeling_gaussian_actor import GaussianActorPolicy

    seed, A = case["seed"], case["action_dim"]
    kw = dict(case["config"])
    if "actor_network_kwargs" in kw:
        kw["actor_network_kwargs"] = ActorNetworkConfig(**kw["actor_network_kwargs"])
    if "discrete_critic_network_kwargs" in kw:
        kw["discrete_critic_network_kwargs"] = CriticNetworkConfig(**kw["discrete_critic_network_kwargs"])
    cfg = GaussianActorConfig(
        input_features={k: PolicyFeature(type=FeatureType(t), shape=s) for k, t, s in case["inputs"]},
        output_features={"action": PolicyFeature(type=FeatureType.ACTION, shape=(A,))}, device="cpu", **kw)
    torch.manual_seed(seed)
    policy = GaussianActorPolicy(cfg)
    redraw(policy, generator(seed, "weights"))
    stats = make_stats(case, generator(seed, "stats"))
    pre, post = make_pre_post_processors(cfg, dataset_stats=stats)
    for obj in (policy, pre, post):
        obj.save_pretrained(ckpt)
    policy = GaussianActorPolicy.from_pretrained(str(ckpt)).eval()
    pre, post = make_pre_post_processors(policy.config, pretrained_path=str(ckpt),
                                         preprocessor_overrides={"device_processor": {"device": "cpu"}})
    return policy, pre, post, stats


def run_case(name: str, case: dict, out: Path) -> None:
    import torch.distributions.multivariate_normal as mvn

    ckpt = out / name / "checkpoint"
    policy, pre, post, stats = make_policy(case, ckpt)
    assert json.loads((ckpt / "config.json").read_text())["type"] == "gaussian_actor"
    seed, B, A = case["seed"], case["batch"], case["action_dim"]
    g = generator(seed, "observations")
    obs = {k: (torch.rand((B, *s), generator=g) if t == "VISUAL" else
               stats[k]["mean"] + stats[k]["std"] * torch.randn((B, *s), generator=g)) for k, t, s in case["inputs"]}
    tap, orig = NoiseTap(generator(seed, "noise")), mvn._standard_normal
    mvn._standard_normal = tap
    try:
        with torch.no_grad():
            batch = {k: v for k, v in pre(dict(obs)).items() if k.startswith("observation.")}
            _, _, mean = policy.actor(batch, None)
            h = policy.actor.network(policy.actor.encoder(batch))
            std = torch.clamp(torch.exp(policy.actor.std_layer(h)), policy.actor.std_min, policy.actor.std_max)
            tap.draws.clear()
            action = policy.select_action(batch)                             # (B, A[+1]) normalized
            arrays = {f"obs.{k}": v.numpy() for k, v in obs.items()}
            arrays.update(mean=mean.numpy(), std=std.numpy(), noise=tap.draws[0],
                          action_mean=post(torch.tanh(mean)).numpy(), action_sampled=post(action[:, :A]).numpy())
            if policy.config.num_discrete_actions is not None:
                arrays["discrete_q"] = policy.discrete_critic(batch, None).numpy()
                arrays["discrete_action"] = action[:, A].long().numpy()
    finally:
        mvn._standard_normal = orig
    assert len(tap.draws) == 1 and tap.draws[0].shape == (B, A), [d.shape for d in tap.draws]
    np.savez(out / name / "reference.npz", **arrays)
    meta = {"case": name, "lerobot_version": __import__("lerobot").__version__, "torch": torch.__version__,
            "weights_sha256": sha256_file(ckpt / "model.safetensors"),
            "script_sha256": sha256_file(Path(__file__)), "std_mean": float(arrays["mean"].std())}
    (out / name / "meta.json").write_text(json.dumps(meta, indent=2))
    print(name, meta)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--cases", default=",".join(CASES))
    args = ap.parse_args()
    for name in args.cases.split(","):
        run_case(name, CASES[name], Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
