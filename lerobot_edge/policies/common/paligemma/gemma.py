"""A Gemma decoder as pi0 uses it (RMSNorm with (1 + w), RoPE, grouped-query attention, GeGLU MLP), with the
parameter names of transformers' Gemma so LeRobot's checkpoint keys load unchanged.

Two ways through it, the two phases of pi0's sampler:
  - `prefix(h, pos, mask)`: the VLM over images + language; returns hidden states and the post-RoPE K/V of
    every layer (the KV cache).
  - `suffix(h, pos, mask, k_cache, v_cache)`: the action expert over the suffix, each layer attending to the
    cached prefix keys/values followed by its own.
Masks are additive float tensors (B, 1, Q, K): 0 where attention is allowed, MASK_VALUE elsewhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import GemmaDims

ROPE_THETA = 10_000.0
RMS_EPS = 1e-6


class RMSNorm(nn.Module):
    """Gemma RMSNorm: x / rms(x) * (1 + weight); with `cond_dim` (pi05's adaRMS) scale/shift/gate come from a
    conditioning vector and the gate is returned for the gated residual."""

    def __init__(self, dim: int, cond_dim: int | None = None, eps: float = RMS_EPS):
        super().__init__()
        self.eps = eps
        if cond_dim is None:
            self.weight = nn.Parameter(torch.zeros(dim))
            self.dense = None
        else:
            self.dense = nn.Linear(cond_dim, 3 * dim)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        normed = x * torch.rsqrt(torch.mean(torch.square(x), dim=-1, keepdim=True) + self.eps)
        if self.dense is None:
            return normed * (1.0 + self.weight), None
        mod = self.dense(cond)                                      # (B, 3W)
        mod = mod.unsqueeze(1) if x.ndim == 3 else mod              # (B, 1, 3W)
        scale, shift, gate = mod.chunk(3, dim=-1)
        return normed * (1 + scale) + shift, gate


def rope(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Rotary embedding, transformers' rotate_half convention. x (B, H, S, D), pos (B, S) integer positions."""
    d = x.shape[-1]
    inv_freq = 1.0 / (ROPE_THETA ** (torch.arange(0, d, 2, dtype=torch.int64).to(torch.float32) / d))  # (D/2,)
    freqs = pos.to(torch.float32)[:, :, None] * inv_freq[None, None, :]   # (B, S, D/2)
    emb = torch.cat([freqs, freqs], dim=-1)[:, None]                      # (B, 1, S, D)
    cos, sin = emb.cos(), emb.sin()
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


class Attention(nn.Module):
    def __init__(self, g: GemmaDims):
        super().__init__()
        self.g = g
        self.q_proj = nn.Linear(g.width, g.num_heads * g.head_dim, bias=False)
        self.k_proj = nn.Linear(g.width, g.num_kv_heads * g.head_dim, bias=False)
        self.v_proj = nn.Linear(g.width, g.num_kv_heads * g.head_dim, bias=False)
        self.o_proj = nn.Linear(g.num_heads * g.head_dim, g.width, bias=False)

    def forward(self, x, pos, mask, k_past=None, v_past=None):
        """x (B, S, W), pos (B, S), mask (B, 1, S, P+S); k/v_past (B, Hkv, P, D) or None.
        -> output (B, S, W), this call's k, v (B, Hkv, S, D) after RoPE."""
        g = self.g
        b, s, _ = x.shape
        q = self.q_proj(x).view(b, s, g.num_heads, g.head_dim).transpose(1, 2)       # (B, H, S, D)
        k = self.k_proj(x).view(b, s, g.num_kv_heads, g.head_dim).transpose(1, 2)    # (B, Hkv, S, D)
        v = self.v_proj(x).view(b, s, g.num_kv_heads, g.head_dim).transpose(1, 2)    # (B, Hkv, S, D)
        q, k = rope(q, pos), rope(k, pos)
        k_all = k if k_past is None else torch.cat([k_past, k], dim=2)               # (B, Hkv, P+S, D)
        v_all = v if v_past is None else torch.cat([v_past, v], dim=2)
        rep = g.num_heads // g.num_kv_heads
        k_all = k_all.repeat_interleave(rep, dim=1)                                  # (B, H, P+S, D)
        v_all = v_all.repeat_interleave(rep, dim=1)
        att = torch.matmul(q, k_all.transpose(2, 3)) * g.head_dim ** -0.5 + mask     # (B, H, S, P+S)
        att = F.softmax(att, dim=-1, dtype=torch.float32)
        out = torch.matmul(att, v_all).transpose(1, 2).reshape(b, s, g.num_heads * g.head_dim)  # (B, S, H*D)
        return self.o_proj(out), k, v


class MLP(nn.Module):
    """GeGLU: down(gelu_tanh(gate(x)) * up(x))."""

    def __init__(self, g: GemmaDims):
        super().__init__()
        self.gate_proj = nn.Linear(g.width, g.mlp_dim, bias=False)
        self.up_proj = nn.Linear(g.width, g.mlp_dim, bias=False)
        self.down_proj = nn.Linear(g.mlp_dim, g.width, bias=False)

    def forward(self, x):
        return self.down_proj(F.gelu(self.gate_proj(x), approximate="tanh") * self.up_proj(x))


def _residual(x, y, gate):
    return x + y if gate is None else x + y * gate


class DecoderLayer(nn.Module):
    def __init__(self, g: GemmaDims, cond_dim: int | None = None):
        super().__init__()
        self.self_attn = Attention(g)
        self.mlp = MLP(g)
        self.input_layernorm = RMSNorm(g.width, cond_dim)
        self.post_attention_layernorm = RMSNorm(g.width, cond_dim)

    def forward(self, x, pos, mask, k_past=None, v_past=None, cond=None):
        h, gate = self.input_layernorm(x, cond)
        h, k, v = self.self_attn(h, pos, mask, k_past, v_past)
        x = _residual(x, h, gate)
        h, gate = self.post_attention_layernorm(x, cond)
        return _residual(x, self.mlp(h), gate), k, v


class GemmaModel(nn.Module):
    """`layers`, `norm` and (for the VLM) `embed_tokens`, named as in transformers' GemmaModel."""

    def __init__(self, g: GemmaDims, vocab_size: int | None, cond_dim: int | None = None):
        super().__init__()
        self.g = g
        if vocab_size:
            self.embed_tokens = nn.Embedding(vocab_size, g.width)
        self.layers = nn.ModuleList(DecoderLayer(g, cond_dim) for _ in range(g.depth))
        self.norm = RMSNorm(g.width, cond_dim)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, L) -> (B, L, W), scaled by sqrt(width) in the weight's dtype as transformers does."""
        scale = torch.tensor(self.g.width ** 0.5, dtype=self.embed_tokens.weight.dtype)
        return self.embed_tokens(ids) * scale

    def prefix(self, x, pos, mask):
        """x (B, P, W) -> hidden (B, P, W), keys and values (depth, B, Hkv, P, D)."""
        ks, vs = [], []
        for layer in self.layers:
            x, k, v = layer(x, pos, mask)
            ks.append(k)
            vs.append(v)
        return self.norm(x)[0], torch.stack(ks), torch.stack(vs)

    def suffix(self, x, pos, mask, k_cache, v_cache, cond=None):
        """x (B, S, W) with the cache (depth, B, Hkv, P, D) -> hidden (B, S, W)."""
        for i, layer in enumerate(self.layers):
            x, _, _ = layer(x, pos, mask, k_cache[i], v_cache[i], cond)
        return self.norm(x, cond)[0]
