"""ACT reference cases for scripts/lerobot_reference.py, and what LeRobot ACT's eval structure makes inert.

Everything that determines a case's checkpoint and reference lives here or in reference_common.py (the cache key
in scripts/reference_cache.sh hashes both). Feature order matters: LeRobot puts camera tokens in the order of
config.input_features. Plain data: no torch or lerobot import.
"""

from __future__ import annotations

CASES: dict[str, dict] = {
    "aloha": {
        # gym-aloha sim insertion: ACTConfig defaults (resnet18, dim 512, 8 heads, ff 3200, 4 enc / 1 dec
        # layers, use_vae, latent 32, 4 VAE layers, MEAN_STD for VISUAL/STATE/ACTION).
        "seed": 1001,
        "batch": 1,
        "n_steps": 3,
        "config_type_field": False,
        "inputs": [
            ("observation.images.top", "VISUAL", (3, 480, 640)),
            ("observation.state", "STATE", (14,)),
        ],
        "action_dim": 14,
        "config": {"chunk_size": 100, "n_action_steps": 100},
    },
    "multicam_prenorm": {
        "seed": 1002,
        "batch": 2,
        "n_steps": 11,  # n_action_steps 5: refills at steps 0, 5 and 10
        "config_type_field": True,
        "inputs": [
            ("observation.images.left", "VISUAL", (3, 64, 80)),
            ("observation.images.wrist_right", "VISUAL", (3, 48, 64)),
            ("observation.state", "STATE", (6,)),
            ("observation.environment_state", "ENV", (5,)),
        ],
        "action_dim": 6,
        "config": {
            "pre_norm": True,
            "feedforward_activation": "gelu",
            "n_decoder_layers": 2,
            "n_encoder_layers": 2,
            "dim_model": 64,
            "n_heads": 4,
            "dim_feedforward": 128,
            "latent_dim": 8,
            "n_vae_encoder_layers": 1,
            "chunk_size": 12,
            "n_action_steps": 5,
            "normalization_mapping": {
                "STATE": "MIN_MAX",
                "ENV": "MIN_MAX",
                "ACTION": "MIN_MAX",
                "VISUAL": "MEAN_STD",
            },
        },
    },
    "ensemble": {
        "seed": 1003,
        "batch": 2,
        "n_steps": 12,  # > chunk_size 8, so the ensemble counts saturate
        "config_type_field": True,
        "inputs": [
            ("observation.images.top", "VISUAL", (3, 56, 72)),
            ("observation.state", "STATE", (5,)),
        ],
        "action_dim": 4,
        "config": {
            "dim_model": 32,
            "n_heads": 2,
            "dim_feedforward": 64,
            "n_encoder_layers": 1,
            "n_decoder_layers": 1,
            "latent_dim": 4,
            "n_vae_encoder_layers": 1,
            "chunk_size": 8,
            "n_action_steps": 1,
            "temporal_ensemble_coeff": 0.01,
        },
    },
    "novae_quantiles": {
        "seed": 1004,
        "batch": 2,
        "n_steps": 7,  # chunk 6 = n_action_steps 6: refills at steps 0 and 6
        "config_type_field": False,
        "inputs": [
            ("observation.images.top", "VISUAL", (3, 40, 48)),
            ("observation.state", "STATE", (3,)),
        ],
        "action_dim": 3,
        "config": {
            "use_vae": False,
            "dim_model": 32,
            "n_heads": 4,
            "dim_feedforward": 64,
            "chunk_size": 6,
            "n_action_steps": 6,
            "normalization_mapping": {
                "STATE": "QUANTILES",
                "ACTION": "QUANTILES",
                "VISUAL": "IDENTITY",
            },
        },
    },
    "resnet50_dilation": {
        "seed": 1005,
        "batch": 2,
        "n_steps": 3,
        "config_type_field": True,
        "inputs": [
            ("observation.images.top", "VISUAL", (3, 64, 64)),
            ("observation.state", "STATE", (4,)),
        ],
        "action_dim": 4,
        "config": {
            "vision_backbone": "resnet50",
            "replace_final_stride_with_dilation": True,
            "dim_model": 32,
            "n_heads": 2,
            "dim_feedforward": 64,
            "n_encoder_layers": 1,
            "chunk_size": 5,
            "n_action_steps": 5,
        },
    },
    "env_only": {
        # No observation.state. LeRobot 0.4.4 builds this policy but ACT.forward reads
        # batch["observation.state"].device at inference (the latent is zeros on that device), so it raises
        # KeyError without that key. We feed LeRobot an extra, undeclared observation.state of shape (B, 0)
        # (used for nothing but .device; the normalizer ignores undeclared keys). It is NOT stored in
        # reference.npz: our policy must not need it.
        "seed": 1006,
        "batch": 2,
        "n_steps": 5,  # chunk 4 = n_action_steps 4: refills at steps 0 and 4
        "config_type_field": True,
        "inputs": [
            ("observation.images.top", "VISUAL", (3, 32, 32)),
            ("observation.environment_state", "ENV", (6,)),
        ],
        "action_dim": 2,
        "config": {
            "dim_model": 32,
            "n_heads": 2,
            "dim_feedforward": 64,
            "n_encoder_layers": 1,
            "n_decoder_layers": 1,
            "latent_dim": 4,
            "n_vae_encoder_layers": 1,
            "chunk_size": 4,
            "n_action_steps": 4,
            # ACT's default mapping has no ENV entry (ENV would be IDENTITY); normalize it here.
            "normalization_mapping": {
                "VISUAL": "MEAN_STD",
                "STATE": "MEAN_STD",
                "ENV": "MEAN_STD",
                "ACTION": "MEAN_STD",
            },
        },
        "lerobot_workaround": "extra undeclared observation.state of shape (B, 0) fed to LeRobot (see CASES)",
    },
}
DEFAULT_CASES = list(CASES)

KEEP_AS_COMPUTED = ("model.vae_encoder_pos_enc",)
# Attention q/k projections are drawn QK_GAIN times larger than 1/sqrt(fan_in). At gain 1 the attention of
# a random ACT is almost uniform (aloha: decoder cross-attention entropy 5.62 of max 5.71 nats), so every
# query sees the same average and the aloha chunk hardly varies over time (std 0.006 normalized);
# "tiny attention logits can hide bugs". At gain 1.5: entropy 4.9 nats, std over time 0.05; gain 2 makes the
# first encoder layer nearly one-hot in several cases (entropy 0.05-0.3 nats).
QK_GAIN = 1.5


def no_influence_in_eval(cfg, name: str) -> bool:
    """Tensors that structurally cannot influence LeRobot ACT's inference outputs (eval mode).

    - the VAE encoder (model.vae_encoder*) only runs in training;
    - in eval the latent is all zeros, so only the bias of encoder_latent_input_proj counts;
    - the decoder input is all zeros, so in the first decoder layer every self-attention value is the same
      vector and the attention pattern (q/k projections) cannot matter. Post-norm: v = 0 @ W_v + b_v, so the
      whole in_proj_weight is dead. Pre-norm: the layer sees LayerNorm(0) = norm1.bias, so norm1.weight is
      dead (in_proj_weight still matters through W_v @ norm1.bias).
    """
    if name.startswith("model.vae_encoder") or name == "model.encoder_latent_input_proj.weight":
        return True
    if cfg.pre_norm:
        return name == "model.decoder.layers.0.norm1.weight"
    return name == "model.decoder.layers.0.self_attn.in_proj_weight"
