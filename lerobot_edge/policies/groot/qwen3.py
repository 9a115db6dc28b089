"""Qwen3 decoder (Eagle 2.5's language model in GR00T N1.5) with transformers' parameter names
(`model.layers.N.self_attn.q_proj`, `…q_norm`, `model.norm`), causal attention over the whole prompt, RoPE."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import QwenDims


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        var = x.float().pow(2).mean(-1, keepdim=True)
        return self.weight * (x.float() * torch.rsqrt(var + self.eps)).to(x.dtype)


def rope(seq: int, head_dim: int, theta: float, device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin (seq, head_dim) for positions 0..seq-1 (transformers' default rope: halves concatenated)."""
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64, device=device).float() / head_dim))
    freqs = torch.arange(seq, device=device).float()[:, None] * inv[None]
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos(), emb.sin()


def rotate(x, cos, sin):
    half = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin


class Qwen3Attention(nn.Module):
    def __init__(self, d: QwenDims):
        super().__init__()
        self.d = d
        self.q_proj = nn.Linear(d.width, d.num_heads * d.head_dim, bias=False)
        self.k_proj = nn.Linear(d.width, d.num_kv_heads * d.head_dim, bias=False)
        self.v_proj = nn.Linear(d.width, d.num_kv_heads * d.head_dim, bias=False)
        self.o_proj = nn.Linear(d.num_heads * d.head_dim, d.width, bias=False)
        self.q_norm = RMSNorm(d.head_dim, d.rms_eps)   # per head, before RoPE
        self.k_norm = RMSNorm(d.head_dim, d.rms_eps)

    def forward(self, x, cos, sin):
        """x (B, L, W) -> (B, L, W), causal."""
        b, n, _ = x.shape
        d = self.d
        q = self.q_norm(self.q_proj(x).view(b, n, d.num_heads, d.head_dim)).transpose(1, 2)      # (B, H, L, hd)
        k = self.k_norm(self.k_proj(x).view(b, n, d.num_kv_heads, d.head_dim)).transpose(1, 2)   # (B, Hkv, L, hd)
        v = self.v_proj(x).view(b, n, d.num_kv_heads, d.head_dim).transpose(1, 2)
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        rep = d.num_heads // d.num_kv_heads
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        att = torch.matmul(q, k.transpose(2, 3)) * d.head_dim ** -0.5                              # (B, H, L, L)
        causal = torch.ones(n, n, dtype=torch.bool, device=x.device).tril()
        att = att.masked_fill(~causal, torch.finfo(att.dtype).min)
        out = torch.matmul(F.softmax(att, dim=-1, dtype=torch.float32).to(q.dtype), v)
        return self.o_proj(out.transpose(1, 2).reshape(b, n, d.num_heads * d.head_dim))


class Qwen3MLP(nn.Module):
    def __init__(self, d: QwenDims):
        super().__init__()
        self.gate_proj = nn.Linear(d.width, d.mlp_dim, bias=False)
        self.up_proj = nn.Linear(d.width, d.mlp_dim, bias=False)
        self.down_proj = nn.Linear(d.mlp_dim, d.width, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Qwen3Layer(nn.Module):
    def __init__(self, d: QwenDims):
        super().__init__()
        self.input_layernorm = RMSNorm(d.width, d.rms_eps)
        self.self_attn = Qwen3Attention(d)
        self.post_attention_layernorm = RMSNorm(d.width, d.rms_eps)
        self.mlp = Qwen3MLP(d)

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class Qwen3Model(nn.Module):
    """`language_model.model`: embeddings (B, L, W) -> final-normed hidden states (B, L, W). transformers returns
    hidden_states[-1] already normed, and LeRobot keeps exactly select_layer layers, so hidden_states[select_layer]
    is this output."""

    def __init__(self, d: QwenDims):
        super().__init__()
        self.d = d
        self.embed_tokens = nn.Embedding(d.vocab_size, d.width)
        self.layers = nn.ModuleList(Qwen3Layer(d) for _ in range(d.depth))
        self.norm = RMSNorm(d.width, d.rms_eps)

    def forward(self, embeds):
        cos, sin = rope(embeds.shape[1], self.d.head_dim, self.d.rope_theta, embeds.device)
        x = embeds
        for layer in self.layers:
            x = layer(x, cos, sin)
        return self.norm(x)


class Qwen3ForCausalLM(nn.Module):
    """`language_model`: only `.model` runs (lm_head is never used by GR00T: allow-listed, not loaded)."""

    def __init__(self, d: QwenDims):
        super().__init__()
        self.model = Qwen3Model(d)
