"""GR00T N1.5 as LeRobot's `groot` holds it (`_groot_model.backbone.eagle_model.*`, `_groot_model.action_head.*`)
and the three graphs the bundle runs:

- `vision`   pixels (B, 3, S, S) in [-1, 1] -> image tokens (B, n, W): SigLIP -> pixel shuffle -> mlp1
- `backbone` token ids (B, L) + the prompt's image tokens (B, M, W) + padded state (B, 1, Smax) + embodiment id
             (B,) -> VL features (B, L, D) (Qwen3 up to select_layer, final norm, [eagle_linear], VLLN, VL
             self-attention) and state features (B, 1, Wdit), once per chunk
- `denoise`  x_t (B, H, Amax), the timestep bucket's two sinusoidal codes (computed on the host in float32:
             kernels/groot_time.py), VL and state features, embodiment id -> velocity (B, H, Amax), called
             num_inference_timesteps times with the features kept on the backend
"""

from __future__ import annotations

import torch
from torch import nn

from ..common.siglip import SiglipVisionTower
from .config import GrootConfig
from .head import FlowmatchingActionHead
from .qwen3 import Qwen3ForCausalLM


def pixel_shuffle(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Eagle's pixel_shuffle: (N, w, h, C) -> (N, h*s, w*s, C/s^2) with exactly its views and permutes."""
    n, w, h, c = x.shape
    x = x.reshape(n, w, int(h * scale), int(c / scale)).permute(0, 2, 1, 3)
    x = x.reshape(n, int(h * scale), int(w * scale), int(c / (scale * scale)))
    return x.permute(0, 2, 1, 3)


def connector(cfg: GrootConfig) -> nn.Sequential:
    """`mlp1`: 2 layers (LayerNorm, Linear, GELU, Linear) or 1 Linear, from the (shuffled) SigLIP width."""
    d_in = cfg.vision.hidden_size * (int(1 / cfg.downsample_ratio) ** 2 if cfg.use_pixel_shuffle else 1)
    w = cfg.text.width
    if cfg.mlp_connector_layers == 2:
        return nn.Sequential(nn.LayerNorm(d_in), nn.Linear(d_in, w), nn.GELU(), nn.Linear(w, w))
    return nn.Sequential(nn.Linear(d_in, w))


class EagleModel(nn.Module):
    def __init__(self, cfg: GrootConfig):
        super().__init__()
        self.cfg = cfg
        self.vision_model = SiglipVisionTower(cfg.vision)
        self.mlp1 = connector(cfg)
        self.language_model = Qwen3ForCausalLM(cfg.text)

    def image_tokens(self, pixels):
        """(B, 3, S, S) -> (B, n, W)."""
        x = self.vision_model(pixels)                                   # (B, P, C), post-layernorm
        if self.cfg.use_pixel_shuffle:
            side = int(x.shape[1] ** 0.5)
            x = pixel_shuffle(x.reshape(x.shape[0], side, side, -1), self.cfg.downsample_ratio)
            x = x.reshape(x.shape[0], -1, x.shape[-1])
        return self.mlp1(x)

    def features(self, input_ids, image_tokens):
        """input_ids (B, L), image_tokens (B, M, W): the M image tokens replace the <IMG_CONTEXT> ids in order
        -> final-normed hidden states (B, L, W)."""
        lm = self.language_model.model
        embeds = lm.embed_tokens(input_ids)
        is_img = input_ids == self.cfg.image_token_index
        idx = (torch.cumsum(is_img.to(torch.int64), dim=1) - 1).clamp(min=0)                    # (B, L)
        idx = idx.clamp(max=image_tokens.shape[1] - 1)
        gathered = torch.gather(image_tokens, 1, idx.unsqueeze(-1).expand(-1, -1, image_tokens.shape[-1]))
        return lm(torch.where(is_img.unsqueeze(-1), gathered, embeds))


class EagleBackbone(nn.Module):
    def __init__(self, cfg: GrootConfig):
        super().__init__()
        self.eagle_model = EagleModel(cfg)
        if cfg.project_to_dim is not None:
            self.eagle_linear = nn.Linear(2048, cfg.project_to_dim)   # LeRobot's fixed input width
        self.project = cfg.project_to_dim is not None

    def forward(self, input_ids, image_tokens):
        x = self.eagle_model.features(input_ids, image_tokens)
        return self.eagle_linear(x) if self.project else x


class GR00TN15(nn.Module):
    def __init__(self, cfg: GrootConfig):
        super().__init__()
        self.backbone = EagleBackbone(cfg)
        self.action_head = FlowmatchingActionHead(cfg)


class GrootWeights(nn.Module):
    """The state-dict root: LeRobot's GrootPolicy keeps the model as `_groot_model`."""

    def __init__(self, cfg: GrootConfig):
        super().__init__()
        self._groot_model = GR00TN15(cfg)


class VisionGraph(nn.Module):
    def __init__(self, core: GR00TN15):
        super().__init__()
        self.eagle = core.backbone.eagle_model

    def forward(self, image):
        return self.eagle.image_tokens(image)


class BackboneGraph(nn.Module):
    def __init__(self, core: GR00TN15):
        super().__init__()
        self.backbone, self.head = core.backbone, core.action_head

    def forward(self, input_ids, image_tokens, state, embodiment_id):
        vl = self.head.process_backbone(self.backbone(input_ids, image_tokens))
        return vl, self.head.state_encoder(state, embodiment_id)


class DenoiseGraph(nn.Module):
    def __init__(self, core: GR00TN15):
        super().__init__()
        self.head = core.action_head

    def forward(self, x_t, action_time, dit_time, vl_features, state_features, embodiment_id):
        return self.head.velocity(x_t, action_time, dit_time, vl_features, state_features, embodiment_id)
