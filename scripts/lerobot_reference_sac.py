#!/usr/bin/env python3
"""LeRobot 0.4.4 reference checkpoints and outputs for SAC (runs ONLY in the LeRobot venv; lerobot_edge is
never imported). For every case it writes OUT/<case>/checkpoint/ (saved by LeRobot, reloaded with
from_pretrained before anything is computed), OUT/<case>/reference.npz and OUT/<case>/meta.json:

    obs.<key>        float32 (B, …) robot units / images in [0, 1], fed to LeRobot's pre-processor
    mean, std        float32 (B, A) the actor's outputs (normalized units)
    action_mean      float32 (B, A) robot units: post(tanh(mean))      (the deterministic mode)
    noise            float32 (B, A) the standard-normal draws LeRobot's rsample used (tapped, seeded)
    action_sampled   float32 (B, A) robot units: post(policy.select_action(pre(obs)))[:, :A] with that noise
    discrete_q       float32 (B, N) discrete critic Q-values (cases with num_discrete_actions)
    discrete_action  int64   (B,)   argmax, the column LeRobot appends
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from reference_common import (RecordedNormal, cli, lerobot_version, mean_std_stats, observation_batch,
                              observations, offset_generator, patched, policy_features, redraw, reload,
                              save_checkpoint, sha256_file, snapshot, sources_sha256, write_json, write_reference)

# Every case keeps LeRobot's defaults except the sizes it names; in particular use_torch_compile stays on (its
# default), so the critic ensemble and its target are saved under `critic_*._orig_mod.*` as real training runs
# save them. The sac_default_* cases set nothing at all; sac_state_eager is the one deliberate compile-off case.
CASES = {
    "sac_default_state": {"seed": 2104, "batch": 3, "inputs": [("observation.state", "STATE", (6,))],
                          "action_dim": 4, "config": {}},
    "sac_default_image": {
        "seed": 2105, "batch": 2,
        "inputs": [("observation.state", "STATE", (5,)), ("observation.image", "VISUAL", (3, 128, 128))],
        "action_dim": 3, "config": {}},
    "sac_state_eager": {"seed": 2106, "batch": 3, "inputs": [("observation.state", "STATE", (6,))], "action_dim": 4,
                        "config": {"latent_dim": 32, "actor_network_kwargs": {"hidden_dims": [64, 64]},
                                   "use_torch_compile": False}},
    "sac_state": {"seed": 2101, "batch": 3, "inputs": [("observation.state", "STATE", (6,))], "action_dim": 4,
                  "config": {"latent_dim": 32, "actor_network_kwargs": {"hidden_dims": [64, 64]}}},
    "sac_image_gripper": {
        "seed": 2102, "batch": 2,
        "inputs": [("observation.state", "STATE", (5,)), ("observation.images.front", "VISUAL", (3, 64, 64)),
                   ("observation.images.wrist", "VISUAL", (3, 64, 64))],
        "action_dim": 3,
        "config": {"latent_dim": 32, "image_encoder_hidden_dim": 16, "image_embedding_pooling_dim": 4,
                   "num_discrete_actions": 3, "actor_network_kwargs": {"hidden_dims": [64, 64]},
                   "discrete_critic_network_kwargs": {"hidden_dims": [48, 48]}}},
    "sac_unshared": {
        "seed": 2103, "batch": 2,
        "inputs": [("observation.images.top", "VISUAL", (3, 48, 48)),
                   ("observation.environment_state", "ENV", (4,))],
        "action_dim": 2,
        "config": {"latent_dim": 16, "image_encoder_hidden_dim": 8, "shared_encoder": False,
                   "num_discrete_actions": 2}},
}


def saved_key_groups(path: Path) -> dict[str, int]:
    """Key count per top-level group as saved (`critic_ensemble._orig_mod.critics`, `log_alpha`, ...)."""
    from safetensors import safe_open

    groups: dict[str, int] = {}
    with safe_open(str(path), "pt") as f:
        for k in f.keys():
            parts = k.split(".")
            head = ".".join(parts[:3] if parts[1:2] == ["_orig_mod"] else parts[:2] if len(parts) > 1 else parts)
            groups[head] = groups.get(head, 0) + 1
    return groups


def actor_reference(policy, pre, post, case: dict, stats: dict) -> dict:
    """The reference.npz arrays (module docstring) of LeRobot's actor (SAC 0.4.4, gaussian_actor 0.6.1) on the
    case's observations; rsample's standard-normal draws come from a seeded generator and are recorded."""
    import torch.distributions.multivariate_normal as mvn

    seed, B, A = case["seed"], case["batch"], case["action_dim"]
    obs = observations(case["inputs"], B, 1, stats, offset_generator(seed, "observations"))[0]
    tap = RecordedNormal(offset_generator(seed, "noise"))
    with patched(mvn, _standard_normal=tap), torch.no_grad():
        batch = observation_batch(pre, obs)
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
    assert len(tap.draws) == 1 and tap.draws[0].shape == (B, A), [d.shape for d in tap.draws]
    return arrays


def network_kwargs(config: dict, actor_cfg, critic_cfg) -> dict:
    """The case's config with its network dicts as LeRobot's ActorNetworkConfig / CriticNetworkConfig."""
    kw = dict(config)
    if "actor_network_kwargs" in kw:
        kw["actor_network_kwargs"] = actor_cfg(**kw["actor_network_kwargs"])
    if "discrete_critic_network_kwargs" in kw:
        kw["discrete_critic_network_kwargs"] = critic_cfg(**kw["discrete_critic_network_kwargs"])
    return kw


def run_case(name: str, case: dict, out: Path) -> None:
    from lerobot.policies.factory import make_pre_post_processors
    from lerobot.policies.sac.configuration_sac import ActorNetworkConfig, CriticNetworkConfig, SACConfig
    from lerobot.policies.sac.modeling_sac import SACPolicy

    seed, ckpt = case["seed"], out / name / "checkpoint"
    input_features, output_features = policy_features(case["inputs"], case["action_dim"])
    cfg = SACConfig(input_features=input_features, output_features=output_features, device="cpu",
                    **network_kwargs(case["config"], ActorNetworkConfig, CriticNetworkConfig))
    torch.manual_seed(seed)
    policy = SACPolicy(cfg)
    redraw(policy, offset_generator(seed, "weights"))  # LeRobot's init_final=0.05 hides the heads
    expected = snapshot(policy)
    stats = mean_std_stats(case["inputs"], case["action_dim"], offset_generator(seed, "stats"))
    save_checkpoint(ckpt, policy, *make_pre_post_processors(cfg, dataset_stats=stats), "sac")
    policy, pre, post = reload(SACPolicy, ckpt, expected)
    arrays = actor_reference(policy, pre, post, case, stats)
    write_reference(out / name / "reference.npz", arrays)
    meta = {"case": name, "lerobot_version": lerobot_version(), "torch": torch.__version__,
            "weights_sha256": sha256_file(ckpt / "model.safetensors"),
            "script_sha256": sha256_file(Path(__file__)), "sources_sha256": sources_sha256(),
            "std_mean": float(arrays["mean"].std()),
            "use_torch_compile": cfg.use_torch_compile, "saved_keys": saved_key_groups(ckpt / "model.safetensors")}
    # the layout a default training run saves, checked here so a reference can never silently lose it
    assert cfg.use_torch_compile == any("._orig_mod." in k for k in meta["saved_keys"]), meta["saved_keys"]
    write_json(out / name / "meta.json", meta)
    print(name, meta)


if __name__ == "__main__":
    sys.exit(cli(CASES, run_case, __doc__))
