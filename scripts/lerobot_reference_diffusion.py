"""LeRobot 0.4.4 reference for Diffusion Policy (runs in the LeRobot venv, like lerobot_reference.py).

For each case: build a DiffusionPolicy, redraw every weight (seeded, activations O(1)), save it with its
processors, reload everything from disk, then run LeRobot's preprocessor -> select_action(noise=…) ->
postprocessor over several chunks with injected initial noise (DDIM: no other randomness; DDPM's per-step
noise is drawn by a monkeypatched randn_tensor and recorded, see run_case). Writes DIR/<case>/checkpoint/,
DIR/<case>/reference.npz (obs.<i>.<key>, noise.<i>, step_noise.<k>, actions, n_steps), meta.json.

usage: python scripts/lerobot_reference_diffusion.py --out DIR [--cases a,b]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from reference_common import (RecordedNormal, cli, full_stats, generator, lerobot_version, observations, patched,
                              policy_features, redraw, reload, save_checkpoint, sha256_file, snapshot,
                              sources_sha256, write_json, write_reference)

CASES = {
    "pusht": dict(inputs=[("observation.image", "VISUAL", (3, 96, 96)), ("observation.state", "STATE", (2,))],
                  action_dim=2, batch=2, n_steps=20, seed=11,
                  config=dict(crop_shape=(84, 84), crop_is_random=False, down_dims=(32, 64, 128), kernel_size=5,
                              n_groups=8, diffusion_step_embed_dim=32, spatial_softmax_num_keypoints=16,
                              horizon=16, n_obs_steps=2, n_action_steps=8, noise_scheduler_type="DDIM",
                              num_inference_steps=10)),
    "twocam_separate": dict(
        inputs=[("observation.images.left", "VISUAL", (3, 64, 64)), ("observation.images.wrist_right", "VISUAL",
                                                                      (3, 64, 64)),
                ("observation.state", "STATE", (3,)), ("observation.environment_state", "ENV", (4,))],
        action_dim=3, batch=2, n_steps=9, seed=12,
        config=dict(crop_shape=(56, 56), crop_is_random=False, use_separate_rgb_encoder_per_camera=True,
                    use_group_norm=False, down_dims=(32, 64), kernel_size=3, n_groups=8,
                    diffusion_step_embed_dim=32, spatial_softmax_num_keypoints=8, horizon=8, n_obs_steps=2,
                    n_action_steps=4, use_film_scale_modulation=False, prediction_type="sample",
                    beta_schedule="linear", noise_scheduler_type="DDIM", num_inference_steps=8)),
    # resize (antialiased downscale) + crop_ratio, 3 observation steps: the resize is a graph constant
    "resize": dict(inputs=[("observation.images.top", "VISUAL", (3, 60, 80)), ("observation.state", "STATE", (4,))],
                   action_dim=4, batch=1, n_steps=9, seed=13,
                   config=dict(resize_shape=(48, 64), crop_ratio=0.875, crop_is_random=False, down_dims=(32, 64),
                               kernel_size=5, n_groups=8, diffusion_step_embed_dim=32, spatial_softmax_num_keypoints=16,
                               horizon=8, n_obs_steps=3, n_action_steps=4, clip_sample_range=1.5,
                               noise_scheduler_type="DDIM", num_inference_steps=10)),
    # DDPM, 100 steps: LeRobot's per-step noise is recorded (step_noise.<k>, in draw order) and fed to ours
    "ddpm": dict(inputs=[("observation.image", "VISUAL", (3, 48, 48)), ("observation.state", "STATE", (2,))],
                 action_dim=2, batch=2, n_steps=9, seed=14,
                 config=dict(crop_shape=(40, 40), crop_is_random=False, down_dims=(32, 64), kernel_size=5, n_groups=8,
                             diffusion_step_embed_dim=32, spatial_softmax_num_keypoints=16, horizon=8, n_obs_steps=2,
                             n_action_steps=4, beta_schedule="linear", noise_scheduler_type="DDPM")),
}


def run_case(name: str, case: dict, out: Path) -> None:
    from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig
    from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy
    from lerobot.policies.factory import make_pre_post_processors

    seed, ckpt = case["seed"], out / name / "checkpoint"
    input_features, output_features = policy_features(case["inputs"], case["action_dim"])
    cfg = DiffusionConfig(input_features=input_features, output_features=output_features,
                          pretrained_backbone_weights=None, device="cpu", **case["config"])
    torch.manual_seed(seed)
    policy = DiffusionPolicy(cfg)
    redraw(policy, generator(seed, "weights"))
    expected = snapshot(policy)
    stats = full_stats(case["inputs"], case["action_dim"], generator(seed, "stats"))
    save_checkpoint(ckpt, policy, *make_pre_post_processors(cfg, dataset_stats=stats), "diffusion")
    policy, pre, post = reload(DiffusionPolicy, ckpt, expected)  # everything below uses what is on disk
    obs_steps = observations(case["inputs"], case["batch"], case["n_steps"], stats, generator(seed, "observations"))
    g = generator(seed, "noise")
    arrays = {"n_steps": np.array(case["n_steps"])}
    actions = []
    import diffusers.schedulers.scheduling_ddpm as ddpm_module

    # DDPM's per-step noise, which LeRobot draws from torch's global RNG inside diffusers, comes from a seeded
    # generator and is recorded in order
    tap = RecordedNormal(generator(seed, "step_noise"))
    with patched(ddpm_module, randn_tensor=tap), torch.no_grad():
        for i, obs in enumerate(obs_steps):
            noise = torch.randn((case["batch"], cfg.horizon, case["action_dim"]), generator=g)
            actions.append(post(policy.select_action(pre(obs), noise=noise)).numpy())
            arrays[f"noise.{i}"] = noise.numpy()
            arrays.update({f"obs.{i}.{k}": v.numpy() for k, v in obs.items()})
    arrays.update({f"step_noise.{k}": d for k, d in enumerate(tap.draws)})
    arrays["actions"] = np.stack(actions)
    write_reference(out / name / "reference.npz", arrays)
    meta = {"case": name, "lerobot_version": lerobot_version(), "torch": torch.__version__,
            "weights_sha256": sha256_file(ckpt / "model.safetensors"), "sources_sha256": sources_sha256(),
            "std_actions": float(arrays["actions"].std())}
    write_json(out / name / "meta.json", meta)
    print(name, meta)


if __name__ == "__main__":
    sys.exit(cli(CASES, run_case, __doc__))
