"""The Llama pieces SmolVLA runs: SmolVLM's text model (truncated) and the action expert, with transformers'
parameter names (`layers.N.self_attn.q_proj`, `layers.N.mlp.gate_proj`, `layers.N.input_layernorm`, `norm`).

SmolVLA does not call the Llama forward: it drives the layers itself (its own RoPE, masks and the cross-attention
of the expert to the VLM's cached keys/values), so these modules hold weights plus the small operations both
graphs share. Masks are additive float tensors (B, 1, Q, K) (policies.pi0.model.additive).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import TextDims

ROPE_WAVELENGTH = 10_000.0  # SmolVLA's apply_rope ignores the text config's rope_theta


def rope(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """SmolVLA's rotary embedding. x (B, H, S, D), pos (B, S) -> (B, H, S, D).

    Frequencies as LeRobot computes them (pos / wavelength**(2i/D), not pos * inv_freq) so the float32
    rounding is the same; halves rotated as [x1 cos - x2 sin, x2 cos + x1 sin]."""
    half = x.shape[-1] // 2
    exponents = (2.0 / x.shape[-1]) * torch.arange(half, dtype=torch.float32)
    radians = pos.to(torch.float32)[:, None, :, None] / (ROPE_WAVELENGTH ** exponents)   # (B, 1, S, D/2)
    cos, sin = radians.cos(), radians.sin()
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Grouped-query attention as LeRobot's eager_attention_forward. q (B, H, S, D), k/v (B, Hkv, K, D),
    mask (B, 1, S, K) additive -> (B, S, H*D)."""
    b, h, s, d = q.shape
    rep = h // k.shape[1]
    k = k.repeat_interleave(rep, dim=1)                                             # (B, H, K, D)
    v = v.repeat_interleave(rep, dim=1)
    att = torch.matmul(q, k.transpose(2, 3)) * d ** -0.5 + mask                     # (B, H, S, K)
    att = F.softmax(att, dim=-1, dtype=torch.float32)
    return torch.matmul(att, v).transpose(1, 2).reshape(b, s, h * d)               # (B, S, H*D)


def heads(x: torch.Tensor, head_dim: int) -> torch.Tensor:
    """(B, S, n*D) -> (B, n, S, D)."""
    b, s, _ = x.shape
    return x.view(b, s, -1, head_dim).transpose(1, 2)


class RMSNorm(nn.Module):
    """Llama RMSNorm: weight * x / rms(x) (weight initialised to 1, unlike Gemma's 1 + w)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


class Attention(nn.Module):
    """Projections only. `kv_in` is the input width of k/v_proj: the layer's own width, or (an expert
    cross-attention layer) the VLM's Hkv*D, since those layers re-project the cached VLM keys/values."""

    def __init__(self, t: TextDims, kv_in: int | None = None):
        super().__init__()
        kv_in = kv_in or t.width
        self.q_proj = nn.Linear(t.width, t.num_heads * t.head_dim, bias=t.attention_bias)
        self.k_proj = nn.Linear(kv_in, t.num_kv_heads * t.head_dim, bias=t.attention_bias)
        self.v_proj = nn.Linear(kv_in, t.num_kv_heads * t.head_dim, bias=t.attention_bias)
        self.o_proj = nn.Linear(t.num_heads * t.head_dim, t.width, bias=t.attention_bias)


class MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    def __init__(self, t: TextDims):
        super().__init__()
        self.gate_proj = nn.Linear(t.width, t.mlp_dim, bias=t.mlp_bias)
        self.up_proj = nn.Linear(t.width, t.mlp_dim, bias=t.mlp_bias)
        self.down_proj = nn.Linear(t.mlp_dim, t.width, bias=t.mlp_bias)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, t: TextDims, kv_in: int | None = None):
        super().__init__()
        self.t = t
        self.self_attn = Attention(t, kv_in)
        self.mlp = MLP(t)
        self.input_layernorm = RMSNorm(t.width, t.rms_eps)
        self.post_attention_layernorm = RMSNorm(t.width, t.rms_eps)

    def qkv(self, x: torch.Tensor, pos: torch.Tensor):
        """x (B, S, W), pos (B, S) -> q (B, H, S, D), k, v (B, Hkv, S, D), q and k after RoPE."""
        h = self.input_layernorm(x)
        a, d = self.self_attn, self.t.head_dim
        return rope(heads(a.q_proj(h), d), pos), rope(heads(a.k_proj(h), d), pos), heads(a.v_proj(h), d)

    def finish(self, x: torch.Tensor, att: torch.Tensor) -> torch.Tensor:
        """Residual attention output then the residual MLP. x (B, S, W), att (B, S, H*D) -> (B, S, W)."""
        x = x + self.self_attn.o_proj(att)
        return x + self.mlp(self.post_attention_layernorm(x))


class TextModel(nn.Module):
    """`embed_tokens` (the VLM only), `layers`, `norm`, as transformers' LlamaModel. `kv_in[i]` overrides the
    k/v input width of layer i (the expert's cross-attention layers)."""

    def __init__(self, t: TextDims, vocab_size: int | None, kv_in: list[int | None] | None = None):
        super().__init__()
        if vocab_size:
            self.embed_tokens = nn.Embedding(vocab_size, t.width)
        kv_in = kv_in or [None] * t.depth
        self.layers = nn.ModuleList(DecoderLayer(t, kv_in[i]) for i in range(t.depth))
        self.norm = RMSNorm(t.width, t.rms_eps)
