"""ACT (Action Chunking Transformer) for export: LeRobot's `ACTPolicy` parameter names, inference path only.

Tokens, sequence-first as in LeRobot: [latent, state?, env_state?, cam0 (h*w tokens)…, cam1…]. The latent is
zeros at inference, so the VAE encoder's weights are loaded (strict) but never run. Camera position tables
are numpy constants (kernels/sinusoid.py), precomputed for each camera's feature-map size.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ...kernels.sinusoid import sinusoid_table_1d, sinusoid_table_2d
from ..common.resnet import ResNetTrunk
from .config import ACTConfig


def _activation(name: str):
    return {"relu": F.relu, "gelu": F.gelu}[name]


class ACTEncoderLayer(nn.Module):
    def __init__(self, cfg: ACTConfig):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(cfg.dim_model, cfg.n_heads)
        self.linear1 = nn.Linear(cfg.dim_model, cfg.dim_feedforward)
        self.linear2 = nn.Linear(cfg.dim_feedforward, cfg.dim_model)
        self.norm1 = nn.LayerNorm(cfg.dim_model)
        self.norm2 = nn.LayerNorm(cfg.dim_model)
        self.act = _activation(cfg.feedforward_activation)
        self.pre_norm = cfg.pre_norm

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """x, pos: (S, B, D) -> (S, B, D)."""
        skip = x
        if self.pre_norm:
            x = self.norm1(x)
        q = k = x + pos
        x = skip + self.self_attn(q, k, value=x, need_weights=False)[0]
        if self.pre_norm:
            skip, x = x, self.norm2(x)
        else:
            x = skip = self.norm1(x)
        x = skip + self.linear2(self.act(self.linear1(x)))
        return x if self.pre_norm else self.norm2(x)


class ACTEncoder(nn.Module):
    def __init__(self, cfg: ACTConfig, n_layers: int):
        super().__init__()
        self.layers = nn.ModuleList(ACTEncoderLayer(cfg) for _ in range(n_layers))
        self.norm = nn.LayerNorm(cfg.dim_model) if cfg.pre_norm else nn.Identity()

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, pos)
        return self.norm(x)


class ACTDecoderLayer(nn.Module):
    def __init__(self, cfg: ACTConfig):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(cfg.dim_model, cfg.n_heads)
        self.multihead_attn = nn.MultiheadAttention(cfg.dim_model, cfg.n_heads)
        self.linear1 = nn.Linear(cfg.dim_model, cfg.dim_feedforward)
        self.linear2 = nn.Linear(cfg.dim_feedforward, cfg.dim_model)
        self.norm1 = nn.LayerNorm(cfg.dim_model)
        self.norm2 = nn.LayerNorm(cfg.dim_model)
        self.norm3 = nn.LayerNorm(cfg.dim_model)
        self.act = _activation(cfg.feedforward_activation)
        self.pre_norm = cfg.pre_norm

    def forward(self, x: torch.Tensor, memory: torch.Tensor, pos: torch.Tensor, mem_pos: torch.Tensor
                ) -> torch.Tensor:
        """x, pos: (T, B, D); memory, mem_pos: (S, B, D) -> (T, B, D)."""
        skip = x
        if self.pre_norm:
            x = self.norm1(x)
        q = k = x + pos
        x = skip + self.self_attn(q, k, value=x, need_weights=False)[0]
        if self.pre_norm:
            skip, x = x, self.norm2(x)
        else:
            x = skip = self.norm1(x)
        x = skip + self.multihead_attn(x + pos, memory + mem_pos, value=memory, need_weights=False)[0]
        if self.pre_norm:
            skip, x = x, self.norm3(x)
        else:
            x = skip = self.norm2(x)
        x = skip + self.linear2(self.act(self.linear1(x)))
        return x if self.pre_norm else self.norm3(x)


class ACTDecoder(nn.Module):
    def __init__(self, cfg: ACTConfig):
        super().__init__()
        self.layers = nn.ModuleList(ACTDecoderLayer(cfg) for _ in range(cfg.n_decoder_layers))
        self.norm = nn.LayerNorm(cfg.dim_model)

    def forward(self, x, memory, pos, mem_pos):
        for layer in self.layers:
            x = layer(x, memory, pos, mem_pos)
        return self.norm(x)


class ACTModel(nn.Module):
    """LeRobot's `ACT` module (the `model.` prefix of the checkpoint)."""

    def __init__(self, cfg: ACTConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.dim_model
        if cfg.use_vae:  # training-only, present in every checkpoint that has it
            self.vae_encoder = ACTEncoder(cfg, cfg.n_vae_encoder_layers)
            self.vae_encoder_cls_embed = nn.Embedding(1, d)
            if cfg.state_dim:
                self.vae_encoder_robot_state_input_proj = nn.Linear(cfg.state_dim, d)
            self.vae_encoder_action_input_proj = nn.Linear(cfg.action_dim, d)
            self.vae_encoder_latent_output_proj = nn.Linear(d, cfg.latent_dim * 2)
            n_vae_tokens = 1 + cfg.chunk_size + (1 if cfg.state_dim else 0)
            table = torch.from_numpy(sinusoid_table_1d(n_vae_tokens, d))
            self.register_buffer("vae_encoder_pos_enc", table.unsqueeze(0))  # (1, S, D)
        if cfg.image_shapes:
            self.backbone = ResNetTrunk(cfg.vision_backbone, dilate_last=bool(cfg.replace_final_stride_with_dilation))
        self.encoder = ACTEncoder(cfg, cfg.n_encoder_layers)
        self.decoder = ACTDecoder(cfg)
        if cfg.state_dim:
            self.encoder_robot_state_input_proj = nn.Linear(cfg.state_dim, d)
        if cfg.env_state_dim:
            self.encoder_env_state_input_proj = nn.Linear(cfg.env_state_dim, d)
        self.encoder_latent_input_proj = nn.Linear(cfg.latent_dim, d)
        if cfg.image_shapes:
            self.encoder_img_feat_input_proj = nn.Conv2d(self.backbone.out_channels, d, kernel_size=1)
        n_1d = 1 + (1 if cfg.state_dim else 0) + (1 if cfg.env_state_dim else 0)
        self.encoder_1d_feature_pos_embed = nn.Embedding(n_1d, d)
        self.decoder_pos_embed = nn.Embedding(cfg.chunk_size, d)
        self.action_head = nn.Linear(d, cfg.action_dim)
        # camera position tables: constants per camera (feature-map size is fixed by the image shape)
        for i, shape in enumerate(cfg.image_shapes):
            h, w = self._feature_map_size(shape)
            table = torch.from_numpy(sinusoid_table_2d(h, w, d // 2)).flatten(1).T.unsqueeze(1)  # (h*w, 1, D)
            self.register_buffer(f"_cam_pos_{i}", table, persistent=False)

    def _feature_map_size(self, shape: tuple) -> tuple[int, int]:
        with torch.no_grad():
            fmap = self.backbone(torch.zeros(1, *shape))
        return fmap.shape[-2], fmap.shape[-1]

    def forward(self, state: torch.Tensor | None, env_state: torch.Tensor | None, images: list[torch.Tensor]
                ) -> torch.Tensor:
        """state (B, Ds), env_state (B, De), images [(B, 3, H, W)] normalized -> actions (B, chunk, A)."""
        ref = images[0] if images else env_state
        b = ref.shape[0]
        latent = torch.zeros(b, self.cfg.latent_dim, dtype=ref.dtype, device=ref.device)
        tokens = [self.encoder_latent_input_proj(latent)]                         # [(B, D)]
        pos = list(self.encoder_1d_feature_pos_embed.weight.unsqueeze(1))          # [(1, D)]
        if self.cfg.state_dim:
            tokens.append(self.encoder_robot_state_input_proj(state))
        if self.cfg.env_state_dim:
            tokens.append(self.encoder_env_state_input_proj(env_state))
        x = torch.stack(tokens, dim=0)                                             # (n_1d, B, D)
        p = torch.stack(pos, dim=0).expand(-1, b, -1)                              # (n_1d, B, D)
        xs, ps = [x], [p]
        for i, img in enumerate(images):
            fmap = self.encoder_img_feat_input_proj(self.backbone(img))            # (B, D, h, w)
            xs.append(fmap.flatten(2).permute(2, 0, 1))                            # (h*w, B, D)
            ps.append(getattr(self, f"_cam_pos_{i}").expand(-1, b, -1))            # (h*w, B, D)
        x, p = torch.cat(xs, dim=0), torch.cat(ps, dim=0)                          # (S, B, D)
        memory = self.encoder(x, p)
        query = torch.zeros(self.cfg.chunk_size, b, self.cfg.dim_model, dtype=x.dtype, device=x.device)
        qpos = self.decoder_pos_embed.weight.unsqueeze(1).expand(-1, b, -1)        # (T, B, D)
        out = self.decoder(query, memory, qpos, p)                                 # (T, B, D)
        return self.action_head(out.transpose(0, 1))                               # (B, T, A)


class ACTPolicyModule(nn.Module):
    """Top level with LeRobot's key layout (`model.*`); the graph the bundle exports."""

    def __init__(self, cfg: ACTConfig):
        super().__init__()
        self.model = ACTModel(cfg)
        self.cfg = cfg

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Inputs in graph order: [state] [env_state] cam0 cam1 … (all normalized) -> (B, chunk, A)."""
        it = iter(inputs)
        state = next(it) if self.cfg.state_dim else None
        env = next(it) if self.cfg.env_state_dim else None
        return self.model(state, env, list(it))
