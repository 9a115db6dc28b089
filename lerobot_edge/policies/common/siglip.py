"""SigLIP vision tower (no pooling head, as PaliGemma uses it) and PaliGemma's multimodal projector, with
transformers' parameter names (`vision_model.embeddings.patch_embedding`, `…encoder.layers.N.self_attn.q_proj`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn



@dataclass(frozen=True)
class SiglipDims:
    """SigLIP sizes (PaliGemma's So400m/14 by default). SmolVLA passes its own dims with the same fields."""

    hidden_size: int = 1152
    intermediate_size: int = 4304     # LeRobot sets 4304 (So400m), not transformers' 4096 default
    num_hidden_layers: int = 27
    num_attention_heads: int = 16
    patch_size: int = 14
    image_size: int = 224
    layer_norm_eps: float = 1e-6

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2


class SiglipAttention(nn.Module):
    def __init__(self, d: SiglipDims):
        super().__init__()
        self.heads = d.num_attention_heads
        self.q_proj = nn.Linear(d.hidden_size, d.hidden_size)
        self.k_proj = nn.Linear(d.hidden_size, d.hidden_size)
        self.v_proj = nn.Linear(d.hidden_size, d.hidden_size)
        self.out_proj = nn.Linear(d.hidden_size, d.hidden_size)

    def forward(self, x):
        b, n, c = x.shape
        hd = c // self.heads
        q = self.q_proj(x).view(b, n, self.heads, hd).transpose(1, 2)   # (B, H, N, hd)
        k = self.k_proj(x).view(b, n, self.heads, hd).transpose(1, 2)
        v = self.v_proj(x).view(b, n, self.heads, hd).transpose(1, 2)
        att = F.softmax(torch.matmul(q, k.transpose(2, 3)) * hd ** -0.5, dim=-1, dtype=torch.float32)  # (B,H,N,N)
        out = torch.matmul(att, v).transpose(1, 2).reshape(b, n, c)      # (B, N, C)
        return self.out_proj(out)


class SiglipMLP(nn.Module):
    def __init__(self, d: SiglipDims):
        super().__init__()
        self.fc1 = nn.Linear(d.hidden_size, d.intermediate_size)
        self.fc2 = nn.Linear(d.intermediate_size, d.hidden_size)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class SiglipEncoderLayer(nn.Module):
    def __init__(self, d: SiglipDims):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(d.hidden_size, eps=d.layer_norm_eps)
        self.self_attn = SiglipAttention(d)
        self.layer_norm2 = nn.LayerNorm(d.hidden_size, eps=d.layer_norm_eps)
        self.mlp = SiglipMLP(d)

    def forward(self, x):
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class SiglipEncoder(nn.Module):
    def __init__(self, d: SiglipDims):
        super().__init__()
        self.layers = nn.ModuleList(SiglipEncoderLayer(d) for _ in range(d.num_hidden_layers))

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class SiglipEmbeddings(nn.Module):
    def __init__(self, d: SiglipDims):
        super().__init__()
        self.patch_embedding = nn.Conv2d(3, d.hidden_size, d.patch_size, stride=d.patch_size)
        self.position_embedding = nn.Embedding(d.num_patches, d.hidden_size)

    def forward(self, pixels):
        x = self.patch_embedding(pixels).flatten(2).transpose(1, 2)     # (B, C, h, w) -> (B, h*w, C)
        return x + self.position_embedding.weight[None]


class SiglipVisionModel(nn.Module):
    def __init__(self, d: SiglipDims):
        super().__init__()
        self.embeddings = SiglipEmbeddings(d)
        self.encoder = SiglipEncoder(d)
        self.post_layernorm = nn.LayerNorm(d.hidden_size, eps=d.layer_norm_eps)

    def forward(self, pixels):
        return self.post_layernorm(self.encoder(self.embeddings(pixels)))


class SiglipVisionTower(nn.Module):
    """`vision_tower.vision_model.*`: pixels (B, 3, S, S) in [-1, 1] -> (B, (S/14)^2, C)."""

    def __init__(self, d: SiglipDims):
        super().__init__()
        self.vision_model = SiglipVisionModel(d)

    def forward(self, pixels):
        return self.vision_model(pixels)


class MultiModalProjector(nn.Module):
    """`multi_modal_projector.linear`: SigLIP width -> Gemma width."""

    def __init__(self, vision_width: int, text_width: int):
        super().__init__()
        self.linear = nn.Linear(vision_width, text_width)

    def forward(self, x):
        return self.linear(x)
