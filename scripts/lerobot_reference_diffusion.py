"""LeRobot 0.4.4 reference for Diffusion Policy (runs in the LeRobot venv, like lerobot_reference.py).

For each case: build a DiffusionPolicy, redraw every weight (seeded, activations O(1)), save it with its
processors, reload everything from disk, then run LeRobot's preprocessor -> select_action(noise=…) ->
postprocessor over several chunks with injected initial noise (DDIM: no other randomness; DDPM's per-step
noise is drawn by a monkeypatched randn_tensor and recorded, see StepNoiseTap). Writes DIR/<case>/checkpoint/,
DIR/<case>/reference.npz (obs.<i>.<key>, noise.<i>, step_noise.<k>, actions, n_steps), meta.json.

usage: python scripts/lerobot_reference_diffusion.py --out DIR
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from lerobot_reference import generator, make_observations, make_stats, sha256_file  # noqa: E402

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


class StepNoiseTap:
    """Replaces diffusers' randn_tensor inside scheduling_ddpm (this script only): DDPM's per-step noise,
    which LeRobot draws from torch's global RNG, comes from a seeded generator and is recorded in order."""

    def __init__(self, g: torch.Generator):
        self.g, self.draws = g, []

    def __call__(self, shape, generator=None, device=None, dtype=None, layout=None):
        x = torch.randn(tuple(shape), generator=self.g, dtype=torch.float32)
        self.draws.append(x.numpy().copy())
        return x


@torch.no_grad()
def redraw(policy: torch.nn.Module, g: torch.Generator) -> None:
    def normal_(t, std, mean=0.0):
        t.copy_(mean + std * torch.randn(t.shape, generator=g))
    for name, mod in policy.named_modules():
        if isinstance(mod, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.ConvTranspose1d, torch.nn.Linear)):
            fan_in = mod.weight[0].numel() if not isinstance(mod, torch.nn.ConvTranspose1d) else \
                mod.weight.shape[0] * mod.weight.shape[2]
            normal_(mod.weight, 1.0 / math.sqrt(fan_in))
            if mod.bias is not None:
                normal_(mod.bias, 0.1)
        elif isinstance(mod, (torch.nn.GroupNorm, torch.nn.BatchNorm2d)):
            normal_(mod.weight, 0.1, 1.0)
            normal_(mod.bias, 0.1)
            if isinstance(mod, torch.nn.BatchNorm2d):
                normal_(mod.running_mean, 0.1)
                mod.running_var.copy_(0.5 + torch.rand(mod.running_var.shape, generator=g))


def run_case(name: str, case: dict, out: Path) -> None:
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig
    from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy
    from lerobot.policies.factory import make_pre_post_processors

    seed = case["seed"]
    cfg = DiffusionConfig(
        input_features={k: PolicyFeature(type=FeatureType(t), shape=s) for k, t, s in case["inputs"]},
        output_features={"action": PolicyFeature(type=FeatureType.ACTION, shape=(case["action_dim"],))},
        pretrained_backbone_weights=None, device="cpu", **case["config"])
    torch.manual_seed(seed)
    policy = DiffusionPolicy(cfg)
    redraw(policy, generator(seed, "weights"))
    stats = make_stats(case, generator(seed, "stats"))
    pre, post = make_pre_post_processors(cfg, dataset_stats=stats)
    ckpt = out / name / "checkpoint"
    policy.save_pretrained(ckpt)
    pre.save_pretrained(ckpt)
    post.save_pretrained(ckpt)
    conf = json.loads((ckpt / "config.json").read_text())
    (ckpt / "config.json").write_text(json.dumps({"type": "diffusion", **conf}, indent=4))
    # everything below uses what is on disk
    policy = DiffusionPolicy.from_pretrained(str(ckpt)).eval()
    pre, post = make_pre_post_processors(policy.config, pretrained_path=str(ckpt),
                                         preprocessor_overrides={"device_processor": {"device": "cpu"}})
    obs_steps = make_observations(case, stats, generator(seed, "observations"))
    g = generator(seed, "noise")
    arrays = {"n_steps": np.array(case["n_steps"])}
    actions = []
    import diffusers.schedulers.scheduling_ddpm as ddpm_module

    tap, drawn_by_diffusers = StepNoiseTap(generator(seed, "step_noise")), ddpm_module.randn_tensor
    ddpm_module.randn_tensor = tap
    try:
        with torch.no_grad():
            for i, obs in enumerate(obs_steps):
                noise = torch.randn((case["batch"], cfg.horizon, case["action_dim"]), generator=g)
                actions.append(post(policy.select_action(pre(obs), noise=noise)).numpy())
                arrays[f"noise.{i}"] = noise.numpy()
                arrays.update({f"obs.{i}.{k}": v.numpy() for k, v in obs.items()})
    finally:
        ddpm_module.randn_tensor = drawn_by_diffusers
    arrays.update({f"step_noise.{k}": d for k, d in enumerate(tap.draws)})
    arrays["actions"] = np.stack(actions)
    np.savez(out / name / "reference.npz", **arrays)
    meta = {"case": name, "lerobot_version": __import__("lerobot").__version__, "torch": torch.__version__,
            "weights_sha256": sha256_file(ckpt / "model.safetensors"), "std_actions": float(arrays["actions"].std())}
    (out / name / "meta.json").write_text(json.dumps(meta, indent=2))
    print(name, meta)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    for name, case in CASES.items():
        run_case(name, case, Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
