"""Writes LeRobot checkpoints in LeRobot's exact on-disk layout, without LeRobot installed.

config.json (with or without "type"), model.safetensors, policy_preprocessor.json / policy_postprocessor.json
with their normalizer state files ("<pipeline>_step_<i>_<registry name>.safetensors"), or the legacy layout
with stats as normalize_inputs/unnormalize_outputs buffers inside model.safetensors. Weights are seeded
random values at a scale that keeps activations O(1), so every tensor changes the output.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32).reshape(3, 1, 1)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32).reshape(3, 1, 1)

ACT_DEFAULTS = dict(n_obs_steps=1, chunk_size=100, n_action_steps=100, vision_backbone="resnet18",
                    pretrained_backbone_weights=None, replace_final_stride_with_dilation=False, pre_norm=False,
                    dim_model=512, n_heads=8, dim_feedforward=3200, feedforward_activation="relu",
                    n_encoder_layers=4, n_decoder_layers=1, use_vae=True, latent_dim=32, n_vae_encoder_layers=4,
                    temporal_ensemble_coeff=None, dropout=0.1, kl_weight=10.0)
TINY_ACT = dict(dim_model=32, n_heads=4, dim_feedforward=64, n_encoder_layers=2, n_decoder_layers=1,
                latent_dim=8, n_vae_encoder_layers=1, chunk_size=10, n_action_steps=10)


def random_weights(shapes: dict[str, tuple], seed: int) -> dict[str, np.ndarray]:
    """N(0, 1/fan_in) for matrices and convs, ~1 for norm scales, positive running_var, small biases."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in shapes.items():
        if name.endswith("running_var"):
            v = rng.uniform(0.5, 1.5, shape)
        elif name.endswith("running_mean") or name.endswith("bias"):
            v = rng.normal(0, 0.1, shape)
        elif len(shape) == 1:  # norm weights
            v = 1 + rng.normal(0, 0.1, shape)
        elif "embed" in name:  # position / cls embeddings
            v = rng.normal(0, 1, shape)
        else:
            fan_in = int(np.prod(shape[1:]))
            v = rng.normal(0, 1 / np.sqrt(fan_in), shape)
        out[name] = v.astype(np.float32)
    return out


def random_stats(features: dict[str, dict], seed: int) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed + 1)
    stats = {}
    for key, f in features.items():
        if f["type"] == "VISUAL":
            stats[key] = {"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "min": np.zeros((3, 1, 1), np.float32),
                          "max": np.ones((3, 1, 1), np.float32), "q01": np.full((3, 1, 1), 0.01, np.float32),
                          "q99": np.full((3, 1, 1), 0.99, np.float32)}
            continue
        d = f["shape"][0]
        mean, std = rng.normal(0, 1, d), rng.uniform(0.5, 2, d)
        stats[key] = {k: v.astype(np.float32) for k, v in dict(
            mean=mean, std=std, min=mean - 2 * std, max=mean + 2 * std, q01=mean - 1.8 * std,
            q99=mean + 1.8 * std, q10=mean - 1.2 * std, q90=mean + 1.2 * std).items()}
    return stats


def _save(path: Path, tensors: dict[str, np.ndarray]) -> None:
    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(path))


def write_processors(d: Path, input_features: dict, output_features: dict, norm_map: dict,
                     stats: dict, step_index: int = 3) -> None:
    """policy_preprocessor.json (+ normalizer state) and policy_postprocessor.json (+ unnormalizer state)."""
    flat = {f"{k}.{s}": v for k, st in stats.items() for s, v in st.items()}
    pre_state = f"policy_preprocessor_step_{step_index}_normalizer_processor.safetensors"
    post_state = "policy_postprocessor_step_0_unnormalizer_processor.safetensors"
    before = [{"registry_name": "rename_observations_processor", "config": {"rename_map": {}}},
              {"registry_name": "to_batch_processor", "config": {}},
              {"registry_name": "device_processor", "config": {"device": "cpu", "float_dtype": None}}]
    while len(before) < step_index:
        before.insert(1, {"registry_name": "tokenizer_processor", "config": {}})
    pre = {"name": "policy_preprocessor", "steps": before[:step_index] + [
        {"registry_name": "normalizer_processor",
         "config": {"eps": 1e-8, "features": {**input_features, **output_features}, "norm_map": norm_map},
         "state_file": pre_state}]}
    post = {"name": "policy_postprocessor", "steps": [
        {"registry_name": "unnormalizer_processor",
         "config": {"eps": 1e-8, "features": output_features, "norm_map": norm_map}, "state_file": post_state},
        {"registry_name": "device_processor", "config": {"device": "cpu", "float_dtype": None}}]}
    (d / "policy_preprocessor.json").write_text(json.dumps(pre, indent=2))
    (d / "policy_postprocessor.json").write_text(json.dumps(post, indent=2))
    _save(d / pre_state, flat)
    _save(d / post_state, flat)


def write_act_checkpoint(d: Path, *, cameras: dict[str, tuple] | None = None, state_dim: int = 6,
                         env_dim: int = 0, action_dim: int = 4, norm_map: dict | None = None,
                         layout: str = "0.4", with_type: bool = False, seed: int = 0, **config) -> Path:
    """An ACT checkpoint. layout: "0.4" (processor files, normalizer at step 3), "0.6" (processor files,
    normalizer at another step index), "legacy" (stats inside model.safetensors)."""
    import torch  # the fixture uses our own module only to learn the state-dict shapes

    from lerobot_edge.policies.act.config import ACTConfig
    from lerobot_edge.policies.act.model import ACTPolicyModule

    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    cameras = {"observation.images.top": (3, 48, 64)} if cameras is None else cameras
    inputs = {}
    if state_dim:
        inputs["observation.state"] = {"type": "STATE", "shape": [state_dim]}
    if env_dim:
        inputs["observation.environment_state"] = {"type": "ENV", "shape": [env_dim]}
    inputs.update({k: {"type": "VISUAL", "shape": list(s)} for k, s in cameras.items()})
    outputs = {"action": {"type": "ACTION", "shape": [action_dim]}}
    norm_map = norm_map or {"VISUAL": "MEAN_STD", "STATE": "MEAN_STD", "ENV": "MEAN_STD", "ACTION": "MEAN_STD"}
    cfg = {**ACT_DEFAULTS, **config}
    body = {"n_obs_steps": 1, "input_features": inputs, "output_features": outputs, "device": "cpu",
            "use_amp": False, "push_to_hub": True, "repo_id": None, "private": None, "tags": None,
            "license": None, "normalization_mapping": norm_map, **cfg}
    if with_type:
        body = {"type": "act", **body}
    (d / "config.json").write_text(json.dumps(body, indent=4))

    ours = ACTConfig(state_dim=state_dim, env_state_dim=env_dim, action_dim=action_dim,
                     image_shapes=tuple(tuple(s) for s in cameras.values()),
                     **{k: v for k, v in cfg.items() if k in ACTConfig.__dataclass_fields__})
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in ACTPolicyModule(ours).state_dict().items()}
    weights = random_weights(shapes, seed)
    if "model.vae_encoder_pos_enc" in shapes:
        from lerobot_edge.kernels.sinusoid import sinusoid_table_1d
        weights["model.vae_encoder_pos_enc"] = sinusoid_table_1d(shapes["model.vae_encoder_pos_enc"][1],
                                                                 ours.dim_model)[None]
    stats = random_stats({**inputs, **outputs}, seed)
    if layout == "legacy":
        for key, st in stats.items():
            prefix = "unnormalize_outputs" if key == "action" else "normalize_inputs"
            for s, v in st.items():
                weights[f"{prefix}.buffer_{key.replace('.', '_')}.{s}"] = v
    else:
        write_processors(d, inputs, outputs, norm_map, stats, step_index=3 if layout == "0.4" else 4)
    _save(d / "model.safetensors", weights)
    return d


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
    _save(d / "model.safetensors", weights)
    return d


def _softmax_grid(cfg, cameras) -> np.ndarray:
    """SpatialSoftmax's [-1, 1] grid for the encoder's feature-map size (H*W, 2), x then y."""
    from lerobot_edge.policies.diffusion.config import DiffusionConfig
    from lerobot_edge.policies.diffusion.model import RgbEncoder

    c = DiffusionConfig(image_shape=tuple(next(iter(cameras.values()))), **{
        k: (tuple(v) if isinstance(v, list) else v) for k, v in cfg.items() if k in DiffusionConfig.__dataclass_fields__})
    pool = RgbEncoder(c).pool
    return pool.pos_grid.numpy()
