"""Synthetic Diffusion Policy checkpoints in LeRobot 0.4's layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .layout import random_stats, random_weights, save_safetensors, write_processors

# LeRobot's PushT settings: 1 camera 3x96x96 (crop 84), state 2, horizon 16, 2 obs steps, default U-Net
PUSHT = dict(n_obs_steps=2, horizon=16, n_action_steps=8, crop_shape=[84, 84], crop_is_random=True,
             down_dims=[512, 1024, 2048], kernel_size=5, n_groups=8, diffusion_step_embed_dim=128,
             spatial_softmax_num_keypoints=32, num_train_timesteps=100)
DIFFUSION_TINY = dict(n_obs_steps=2, horizon=8, n_action_steps=4, crop_shape=[28, 28], crop_is_random=False,
                      down_dims=[16, 32], kernel_size=3, n_groups=4, diffusion_step_embed_dim=16,
                      spatial_softmax_num_keypoints=8, noise_scheduler_type="DDIM", num_inference_steps=5,
                      num_train_timesteps=100, beta_schedule="squaredcos_cap_v2", prediction_type="epsilon",
                      clip_sample=True, clip_sample_range=1.0, use_group_norm=True, use_film_scale_modulation=True,
                      use_separate_rgb_encoder_per_camera=False, vision_backbone="resnet18", beta_start=1e-4,
                      beta_end=0.02)


def write_diffusion_checkpoint(d: Path, *, cameras: dict[str, tuple] | None = None, state_dim: int = 3,
                               action_dim: int = 2, seed: int = 0, **config) -> Path:
    """A Diffusion Policy checkpoint in LeRobot 0.4's layout (MIN_MAX state/action, MEAN_STD images)."""
    import torch

    from lerobot_edge.policies.diffusion.config import DiffusionConfig
    from lerobot_edge.policies.diffusion.model import DiffusionPolicyModule

    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    cameras = {"observation.image": (3, 32, 32)} if cameras is None else cameras
    inputs = {"observation.state": {"type": "STATE", "shape": [state_dim]},
              **{k: {"type": "VISUAL", "shape": list(s)} for k, s in cameras.items()}}
    outputs = {"action": {"type": "ACTION", "shape": [action_dim]}}
    norm_map = {"VISUAL": "MEAN_STD", "STATE": "MIN_MAX", "ACTION": "MIN_MAX"}
    cfg = {**DIFFUSION_TINY, **config}
    body = {"type": "diffusion", "input_features": inputs, "output_features": outputs, "device": "cpu",
            "normalization_mapping": norm_map, "pretrained_backbone_weights": None, **cfg}
    (d / "config.json").write_text(json.dumps(body, indent=4))
    ours = DiffusionConfig(state_dim=state_dim, action_dim=action_dim, image_shape=tuple(next(iter(cameras.values()))),
                           n_cameras=len(cameras), **{k: (tuple(v) if isinstance(v, list) else v)
                                                      for k, v in cfg.items() if k in DiffusionConfig.__dataclass_fields__})
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in DiffusionPolicyModule(ours).state_dict().items()}
    weights = random_weights(shapes, seed)
    for k in shapes:
        if k.endswith("pos_grid"):  # a fixed grid, not a weight
            weights[k] = _softmax_grid(cfg, cameras)
        if k.endswith("num_batches_tracked"):
            weights[k] = np.zeros((), np.int64)
    write_processors(d, inputs, outputs, norm_map, random_stats({**inputs, **outputs}, seed))
    save_safetensors(d / "model.safetensors", weights)
    return d


def _softmax_grid(cfg, cameras) -> np.ndarray:
    """SpatialSoftmax's [-1, 1] grid for the encoder's feature-map size (H*W, 2), x then y."""
    from lerobot_edge.policies.diffusion.config import DiffusionConfig
    from lerobot_edge.policies.common.rgb_encoder import RgbEncoder

    c = DiffusionConfig(image_shape=tuple(next(iter(cameras.values()))), **{
        k: (tuple(v) if isinstance(v, list) else v) for k, v in cfg.items() if k in DiffusionConfig.__dataclass_fields__})
    pool = RgbEncoder(c).pool
    return pool.pos_grid.numpy()


def tiny(d: Path) -> Path:
    """The suites' tiny Diffusion Policy (one camera 3x32x32, state 3, action 2, DDIM 5 steps)."""
    return write_diffusion_checkpoint(d)


def _pusht(d: Path, scheduler: str, steps: int) -> Path:
    return write_diffusion_checkpoint(d, cameras={"observation.image": (3, 96, 96)}, state_dim=2, action_dim=2,
                                      **PUSHT, noise_scheduler_type=scheduler, num_inference_steps=steps)


def pusht_ddim10(d: Path) -> Path:
    """Diffusion Policy at LeRobot's PushT size, DDIM 10 steps."""
    return _pusht(d, "DDIM", 10)


def pusht_ddpm100(d: Path) -> Path:
    """Diffusion Policy at LeRobot's PushT size, DDPM 100 steps."""
    return _pusht(d, "DDPM", 100)
