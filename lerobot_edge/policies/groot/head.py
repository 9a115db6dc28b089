"""GR00T N1.5's flow-matching action head with LeRobot's / diffusers' parameter names: per-embodiment MLPs
(`state_encoder.layer1.W`), the action encoder with its sinusoidal timestep code, the VL layer norm and
self-attention stack (`vl_self_attention.transformer_blocks.N.attn1.to_q`), and the DiT (cross-attention to the
VL features, adaptive layer norm on the timestep embedding, `model.proj_out_2`)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import BlockStack, GrootConfig


class CategorySpecificLinear(nn.Module):
    """W (E, in, out), b (E, out): x (B, T, in), ids (B,) -> x @ W[id] + b[id]."""

    def __init__(self, n: int, d_in: int, d_out: int):
        super().__init__()
        self.W = nn.Parameter(torch.zeros(n, d_in, d_out))
        self.b = nn.Parameter(torch.zeros(n, d_out))

    def forward(self, x, ids):
        return torch.bmm(x, self.W[ids]) + self.b[ids].unsqueeze(1)


class CategorySpecificMLP(nn.Module):
    def __init__(self, n: int, d_in: int, hidden: int, d_out: int):
        super().__init__()
        self.layer1 = CategorySpecificLinear(n, d_in, hidden)
        self.layer2 = CategorySpecificLinear(n, hidden, d_out)

    def forward(self, x, ids):
        return self.layer2(F.relu(self.layer1(x, ids)), ids)


def time_freqs(width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The float32 frequencies of the two timestep codes, with LeRobot's exact expressions: the action encoder's
    -arange(W/2) * (log(tensor(1e4)) / (W/2)), exp; diffusers' -log(1e4) * arange(128) / 127, exp."""
    half = width // 2
    action = (-torch.arange(half, dtype=torch.float) * (torch.log(torch.tensor(10000.0)) / half)).exp()
    dit = torch.exp(-math.log(10000) * torch.arange(0, 128, dtype=torch.float32) / 127)
    return action, dit


def time_codes(timestep: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The torch twin of kernels/groot_time.py (the graphs take the codes as inputs): timestep (B,) bucket ->
    (action encoder code (B, width), DiT code (B, 256))."""
    fa, fd = time_freqs(width)
    a, d = timestep.float()[:, None] * fa[None], timestep[:, None].float() * fd[None]
    return torch.cat([a.sin(), a.cos()], dim=-1), torch.cat([d.cos(), d.sin()], dim=-1)


class MultiEmbodimentActionEncoder(nn.Module):
    def __init__(self, n: int, action_dim: int, width: int):
        super().__init__()
        self.W1 = CategorySpecificLinear(n, action_dim, width)
        self.W2 = CategorySpecificLinear(n, 2 * width, width)
        self.W3 = CategorySpecificLinear(n, width, width)
        self.width = width

    def forward(self, actions, tau, ids):
        """actions (B, T, A), tau (B, width) the bucket's code -> (B, T, width)."""
        b, t, _ = actions.shape
        a = self.W1(actions, ids)
        x = torch.cat([a, tau.unsqueeze(1).expand(b, t, -1)], dim=-1)
        x = self.W2(x, ids)
        return self.W3(x * torch.sigmoid(x), ids)


class Attention(nn.Module):
    """diffusers' Attention (to_q / to_k / to_v with bias, to_out.0): self- or cross-attention, no mask."""

    def __init__(self, width: int, heads: int, head_dim: int, kv_dim: int | None):
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.to_q = nn.Linear(width, heads * head_dim)
        self.to_k = nn.Linear(kv_dim or width, heads * head_dim)
        self.to_v = nn.Linear(kv_dim or width, heads * head_dim)
        self.to_out = nn.ModuleList([nn.Linear(heads * head_dim, width)])

    def forward(self, x, context=None):
        """x (B, N, W), context (B, S, Wkv) or None -> (B, N, W)."""
        ctx = x if context is None else context
        b, n, _ = x.shape
        q = self.to_q(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
        k = self.to_k(ctx).view(b, -1, self.heads, self.head_dim).transpose(1, 2)
        v = self.to_v(ctx).view(b, -1, self.heads, self.head_dim).transpose(1, 2)
        att = F.softmax(torch.matmul(q, k.transpose(2, 3)) * self.head_dim ** -0.5, dim=-1)
        return self.to_out[0](torch.matmul(att, v).transpose(1, 2).reshape(b, n, -1))


class FeedForward(nn.Module):
    """diffusers' FeedForward("gelu-approximate"): net.0.proj, tanh GELU, net.2."""

    def __init__(self, width: int):
        super().__init__()
        self.net = nn.ModuleList([nn.Module(), nn.Identity(), nn.Linear(4 * width, width)])
        self.net[0].proj = nn.Linear(width, 4 * width)

    def forward(self, x):
        return self.net[2](F.gelu(self.net[0].proj(x), approximate="tanh"))


class AdaLayerNorm(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.linear = nn.Linear(width, 2 * width)
        self.norm = nn.LayerNorm(width, eps=1e-5, elementwise_affine=False)

    def forward(self, x, temb):
        scale, shift = self.linear(F.silu(temb)).chunk(2, dim=1)
        return self.norm(x) * (1 + scale[:, None]) + shift[:, None]


def sinusoidal_table(n: int, dim: int) -> torch.Tensor:
    """diffusers' SinusoidalPositionalEmbedding table (n, dim): even columns sin, odd columns cos."""
    pos = torch.arange(n).unsqueeze(1).float()
    div = torch.exp(torch.arange(0, dim, 2).float() * (-math.log(10000.0) / dim))
    pe = torch.zeros(n, dim)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * div), torch.cos(pos * div)
    return pe


class TransformerBlock(nn.Module):
    """diffusers' BasicTransformerBlock as GR00T configures it: attention (cross when kv_dim), then an MLP;
    `ada`: norm1 is the timestep-conditioned AdaLayerNorm and norm3 has no affine (the DiT)."""

    def __init__(self, s: BlockStack, kv_dim: int | None, ada: bool):
        super().__init__()
        w = s.width
        self.ada = ada
        self.norm1 = AdaLayerNorm(w) if ada else nn.LayerNorm(w, eps=1e-5)
        self.attn1 = Attention(w, s.num_heads, s.head_dim, kv_dim)
        self.norm3 = nn.LayerNorm(w, eps=1e-5, elementwise_affine=not ada)
        self.ff = FeedForward(w)
        self.register_buffer("pos", sinusoidal_table(s.max_positions, w) if s.sinusoidal else None,
                             persistent=False)

    def forward(self, x, context=None, temb=None):
        h = self.norm1(x, temb) if self.ada else self.norm1(x)
        if self.pos is not None:
            h = h + self.pos[: h.shape[1]]
        x = x + self.attn1(h, context)
        return x + self.ff(self.norm3(x))


class SelfAttentionTransformer(nn.Module):
    def __init__(self, s: BlockStack):
        super().__init__()
        self.transformer_blocks = nn.ModuleList(TransformerBlock(s, None, False) for _ in range(s.depth))

    def forward(self, x):
        for block in self.transformer_blocks:
            x = block(x)
        return x


class TimestepEncoder(nn.Module):
    """diffusers' TimestepEmbedding(256 -> width) of the Timesteps(256, flip_sin_to_cos, shift 1) code."""

    def __init__(self, width: int):
        super().__init__()
        self.timestep_embedder = nn.Module()
        self.timestep_embedder.linear_1 = nn.Linear(256, width)
        self.timestep_embedder.linear_2 = nn.Linear(width, width)

    def forward(self, proj):
        """proj (B, 256) -> (B, width)."""
        e = self.timestep_embedder
        return e.linear_2(F.silu(e.linear_1(proj)))


class DiT(nn.Module):
    def __init__(self, cfg: GrootConfig):
        super().__init__()
        s = cfg.dit
        self.timestep_encoder = TimestepEncoder(s.width)
        self.cross = [not (cfg.interleave_self_attention and i % 2 == 1) for i in range(s.depth)]
        self.transformer_blocks = nn.ModuleList(
            TransformerBlock(s, cfg.backbone_dim if c else None, True) for c in self.cross)
        self.norm_out = nn.LayerNorm(s.width, eps=1e-6, elementwise_affine=False)
        self.proj_out_1 = nn.Linear(s.width, 2 * s.width)
        self.proj_out_2 = nn.Linear(s.width, cfg.hidden_size)

    def forward(self, x, vl, time_code):
        """x (B, N, W) tokens, vl (B, S, D) features, time_code (B, 256) -> (B, N, hidden)."""
        temb = self.timestep_encoder(time_code)
        for block, cross in zip(self.transformer_blocks, self.cross):
            x = block(x, vl if cross else None, temb)
        shift, scale = self.proj_out_1(F.silu(temb)).chunk(2, dim=1)
        return self.proj_out_2(self.norm_out(x) * (1 + scale[:, None]) + shift[:, None])


class FlowmatchingActionHead(nn.Module):
    def __init__(self, cfg: GrootConfig):
        super().__init__()
        n, ied, hid = cfg.max_num_embodiments, cfg.input_embedding_dim, cfg.hidden_size
        self.cfg = cfg
        self.model = DiT(cfg)
        self.state_encoder = CategorySpecificMLP(n, cfg.max_state_dim, hid, ied)
        self.action_encoder = MultiEmbodimentActionEncoder(n, cfg.max_action_dim, ied)
        self.action_decoder = CategorySpecificMLP(n, hid, hid, cfg.max_action_dim)
        self.future_tokens = nn.Embedding(cfg.num_target_vision_tokens, ied)
        self.vlln = nn.LayerNorm(cfg.backbone_dim) if cfg.use_vlln else nn.Identity()
        self.vl_self_attention = SelfAttentionTransformer(cfg.vl_self_attention) if cfg.use_vlln else nn.Identity()
        if cfg.add_pos_embed:
            self.position_embedding = nn.Embedding(cfg.max_seq_len, ied)

    def process_backbone(self, features):
        """(B, L, D) backbone features -> VLLN -> self-attention (what the DiT cross-attends to)."""
        return self.vl_self_attention(self.vlln(features))

    def velocity(self, x_t, action_time, dit_time, vl, state_features, ids):
        """One denoising step: x_t (B, H, A), the bucket's codes action_time (B, W) and dit_time (B, 256),
        vl (B, S, D), state_features (B, 1, W), ids (B,) -> velocity (B, H, A)."""
        a = self.action_encoder(x_t, action_time, ids)
        if self.cfg.add_pos_embed:
            a = a + self.position_embedding.weight[: a.shape[1]].unsqueeze(0)
        future = self.future_tokens.weight.unsqueeze(0).expand(x_t.shape[0], -1, -1)
        out = self.model(torch.cat([state_features, future, a], dim=1), vl, dit_time)
        return self.action_decoder(out, ids)[:, -x_t.shape[1]:]
