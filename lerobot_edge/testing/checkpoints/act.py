"""Synthetic ACT checkpoints in LeRobot's layout (0.4 / 0.6 processor files, or legacy in-weights stats)."""

from __future__ import annotations

import json
from pathlib import Path

from .layout import random_stats, random_weights, save_safetensors, write_processors

ACT_DEFAULTS = dict(n_obs_steps=1, chunk_size=100, n_action_steps=100, vision_backbone="resnet18",
                    pretrained_backbone_weights=None, replace_final_stride_with_dilation=False, pre_norm=False,
                    dim_model=512, n_heads=8, dim_feedforward=3200, feedforward_activation="relu",
                    n_encoder_layers=4, n_decoder_layers=1, use_vae=True, latent_dim=32, n_vae_encoder_layers=4,
                    temporal_ensemble_coeff=None, dropout=0.1, kl_weight=10.0)
TINY_ACT = dict(dim_model=32, n_heads=4, dim_feedforward=64, n_encoder_layers=2, n_decoder_layers=1,
                latent_dim=8, n_vae_encoder_layers=1, chunk_size=10, n_action_steps=10)


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
    save_safetensors(d / "model.safetensors", weights)
    return d


def tiny(d: Path) -> Path:
    """The suites' tiny ACT (one camera 3x48x64, state 6, action 4, chunk 10), with "type"."""
    return write_act_checkpoint(d, with_type=True, **TINY_ACT)


def aloha(d: Path) -> Path:
    """ACT at the aloha sim insertion config: 1 camera 3x480x640, state 14, chunk 100 (LeRobot's defaults)."""
    return write_act_checkpoint(d, cameras={"observation.images.top": (3, 480, 640)}, state_dim=14, action_dim=14,
                                with_type=True)


def tiny_observations(path: Path, n: int, seed: int = 3) -> Path:
    """`n` observations of the tiny ACT's features in an .npz (what `--calibration` takes): N(0, 1) states (n, 6),
    uint8 camera frames (n, 48, 64, 3)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    np.savez(path, **{"observation.state": rng.normal(size=(n, 6)).astype(np.float32),
                      "observation.images.top": rng.integers(0, 256, (n, 48, 64, 3), np.uint8)})
    return Path(path)
