"""VQ-BeT checkpoints in LeRobot 0.4's on-disk layout, written without LeRobot (the training-only tensors
included: the VQ-VAE's action encoder, the codebooks' EMA statistics, the discretized/freeze flags)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .layout import random_stats, random_weights, save_safetensors, write_processors

VQBET_TINY = dict(n_obs_steps=3, n_action_pred_token=2, action_chunk_size=4, vision_backbone="resnet18",
                  crop_shape=[56, 56], crop_is_random=True, pretrained_backbone_weights=None, use_group_norm=True,
                  spatial_softmax_num_keypoints=8, vqvae_n_embed=8, vqvae_embedding_dim=16, vqvae_enc_hidden_dim=16,
                  gpt_block_size=20, gpt_input_dim=32, gpt_output_dim=24, gpt_n_layer=2, gpt_n_head=2,
                  gpt_hidden_dim=32, dropout=0.1, bet_softmax_temperature=0.1, sequentially_select=False)


def _training_only(cfg: dict, action_dim: int) -> dict[str, np.ndarray | tuple]:
    """Shapes (or values) of the tensors LeRobot saves that inference does not read."""
    p = "vqbet.action_head.vqvae_model."
    h, e, k = cfg["vqvae_enc_hidden_dim"], cfg["vqvae_embedding_dim"], cfg["vqvae_n_embed"]
    dims = [action_dim * cfg["action_chunk_size"], h, h, e]
    out: dict = {}
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        out[f"{p}encoder.{2 * i}.weight"], out[f"{p}encoder.{2 * i}.bias"] = (b, a), (b,)
    for g in range(2):
        c = f"{p}vq_layer.layers.{g}._codebook."
        out.update({c + "initted": (1,), c + "cluster_size": (1, k), c + "embed_avg": (1, k, e)})
    return out


def write_vqbet_checkpoint(d: Path, *, image_shape: tuple = (3, 64, 64), camera: str = "observation.image",
                           state_dim: int = 4, action_dim: int = 2, seed: int = 0, discretized: bool = True,
                           **config) -> Path:
    """A 0.4 `vqbet` checkpoint (MIN_MAX state/action, IDENTITY images, as LeRobot's defaults)."""
    from lerobot_edge.policies.vqbet.config import VQBeTConfig
    from lerobot_edge.policies.vqbet.model import VQBeTPolicyModule

    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    inputs = {camera: {"type": "VISUAL", "shape": list(image_shape)},
              "observation.state": {"type": "STATE", "shape": [state_dim]}}
    outputs = {"action": {"type": "ACTION", "shape": [action_dim]}}
    norm_map = {"VISUAL": "IDENTITY", "STATE": "MIN_MAX", "ACTION": "MIN_MAX"}
    cfg = {**VQBET_TINY, **config}
    body = {"type": "vqbet", "input_features": inputs, "output_features": outputs, "device": "cpu",
            "normalization_mapping": norm_map, **cfg}
    (d / "config.json").write_text(json.dumps(body, indent=4))
    ours = VQBeTConfig(state_dim=state_dim, action_dim=action_dim, image_key=camera, image_shape=tuple(image_shape),
                       **{k: (tuple(v) if isinstance(v, list) else v) for k, v in cfg.items()
                          if k in VQBeTConfig.__dataclass_fields__})
    state = VQBeTPolicyModule(ours).state_dict()
    weights = random_weights({k: tuple(v.shape) for k, v in state.items()}, seed)
    for k, v in state.items():
        if k.endswith(("pos_grid", "attn.bias")):   # a fixed grid and the causal mask, not weights
            weights[k] = v.numpy()
        if k.endswith("num_batches_tracked"):        # BatchNorm backbones (use_group_norm=False)
            weights[k] = np.zeros((), np.int64)
    extra = _training_only(cfg, action_dim)
    weights.update(random_weights({k: v for k, v in extra.items()}, seed + 1))
    p = "vqbet.action_head.vqvae_model."
    weights[p + "discretized"] = np.array(discretized)
    weights[p + "vq_layer.freeze_codebook"] = np.array(discretized)
    n_tokens = cfg["n_obs_steps"] + cfg["n_action_pred_token"] - 1
    weights["vqbet.select_target_actions_indices"] = (np.arange(n_tokens)[:, None]
                                                      + np.arange(cfg["action_chunk_size"])[None]).astype(np.int64)
    write_processors(d, inputs, outputs, norm_map, random_stats({**inputs, **outputs}, seed), step_index=3)
    save_safetensors(d / "model.safetensors", weights)
    return d


def tiny(d: Path) -> Path:
    """The suites' tiny VQ-BeT (one camera 3x64x64, 3 obs steps)."""
    return write_vqbet_checkpoint(d)


def pusht(d: Path) -> Path:
    """VQ-BeT at LeRobot's defaults (PushT: camera 3x96x96, crop 84, 5 obs steps, GPT 8x512)."""
    return write_vqbet_checkpoint(
        d, image_shape=(3, 96, 96), state_dim=2, action_dim=2, n_obs_steps=5, n_action_pred_token=3,
        action_chunk_size=5, crop_shape=[84, 84], spatial_softmax_num_keypoints=32, vqvae_n_embed=16,
        vqvae_embedding_dim=256, vqvae_enc_hidden_dim=128, gpt_block_size=500, gpt_input_dim=512,
        gpt_output_dim=512, gpt_n_layer=8, gpt_n_head=8, gpt_hidden_dim=512)
