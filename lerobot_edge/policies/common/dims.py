"""The sizes every decoder-only transformer of the VLAs shares (Gemma for pi0/pi05, SmolVLM's Llama, GR00T's
Qwen3); each model's dims add what is its own (norm epsilon, RoPE base, biases, vocabulary)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DecoderDims:
    width: int          # hidden size D
    depth: int          # number of layers
    mlp_dim: int        # MLP hidden size
    num_heads: int      # query heads H (head_dim * H need not equal D)
    num_kv_heads: int   # key/value heads (grouped-query attention)
    head_dim: int
