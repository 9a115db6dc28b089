"""Diffusion Policy settings from a LeRobot config.json (the saved config decides: defaults differ between
LeRobot releases)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from ...checkpoint import Checkpoint
from ...errors import CheckpointError


@dataclass
class DiffusionConfig:
    state_dim: int = 0
    env_state_dim: int = 0
    action_dim: int = 0
    image_shape: tuple = ()             # (3, H, W), shared by every camera
    n_cameras: int = 0
    n_obs_steps: int = 2
    horizon: int = 16
    n_action_steps: int = 8
    vision_backbone: str = "resnet18"
    resize_shape: tuple | None = None
    crop_ratio: float = 1.0
    crop_shape: tuple | None = None
    use_group_norm: bool = True
    spatial_softmax_num_keypoints: int = 32
    use_separate_rgb_encoder_per_camera: bool = False
    down_dims: tuple = (512, 1024, 2048)
    kernel_size: int = 5
    n_groups: int = 8
    diffusion_step_embed_dim: int = 128
    use_film_scale_modulation: bool = True
    noise_scheduler_type: str = "DDPM"
    num_train_timesteps: int = 100
    beta_schedule: str = "squaredcos_cap_v2"
    beta_start: float = 1e-4
    beta_end: float = 0.02
    prediction_type: str = "epsilon"
    clip_sample: bool = True
    clip_sample_range: float = 1.0
    num_inference_steps: int | None = None

    @classmethod
    def from_checkpoint(cls, ckpt: Checkpoint) -> "DiffusionConfig":
        names = {f.name for f in fields(cls)}
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in ckpt.config.items() if k in names}
        feats = ckpt.input_features
        if "observation.state" not in feats:
            raise CheckpointError("Diffusion Policy needs observation.state (LeRobot builds its conditioning from it)")
        kw["state_dim"] = ckpt.dim("observation.state")
        kw["env_state_dim"] = ckpt.dim("observation.environment_state")
        kw["action_dim"] = ckpt.action_feature.shape[0]
        shapes = {feats[k].shape for k in ckpt.image_keys}
        if len(shapes) > 1:
            raise CheckpointError(f"Diffusion Policy needs every camera at the same shape, got {sorted(shapes)}")
        kw["image_shape"] = next(iter(shapes)) if shapes else ()
        kw["n_cameras"] = len(ckpt.image_keys)
        cfg = cls(**kw)
        if cfg.resize_shape is not None:  # LeRobot's __post_init__: with a resize, crop_ratio alone sets the crop
            r = cfg.crop_ratio
            cfg.crop_shape = (int(cfg.resize_shape[0] * r), int(cfg.resize_shape[1] * r)) if r < 1.0 else None
        fit = cfg.resize_shape or cfg.image_shape[1:]
        if cfg.crop_shape is not None and fit and (cfg.crop_shape[0] > fit[0] or cfg.crop_shape[1] > fit[1]):
            raise CheckpointError(f"Diffusion Policy crop_shape {cfg.crop_shape} does not fit the image {tuple(fit)}")
        if not cfg.n_cameras and not cfg.env_state_dim:
            raise CheckpointError("Diffusion Policy needs at least one camera or observation.environment_state")
        if cfg.n_action_steps > cfg.horizon - cfg.n_obs_steps + 1:
            raise CheckpointError("Diffusion Policy needs n_action_steps <= horizon - n_obs_steps + 1")
        return cfg
