"""SmolVLA in our own modules, in the key tree of LeRobot 0.6's SmolVLAPolicy:

    model.vlm_with_expert.vlm.model.{vision_model, connector, text_model}   (+ vlm.lm_head, unused)
    model.vlm_with_expert.lm_expert.{layers, norm}
    model.{state_proj, action_in_proj, action_out_proj, action_time_mlp_in, action_time_mlp_out}

and the three graphs the flow-matching runtime calls: `VisionGraph` (vision transformer + connector, one camera),
`PrefixGraph` (images + language + state token -> the VLM's post-RoPE K/V of every layer) and `DenoiseGraph` (one
velocity of the action expert: joint self-attention over [prefix; actions] on some layers, cross-attention to
the cached VLM K/V re-projected by the expert's own k/v_proj on the others).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..common.masks import additive
from .config import SmolVLAConfig
from .llama import TextModel, attend, heads, rope
from .vision import Connector, VisionTransformer


class _SmolVLMInner(nn.Module):
    def __init__(self, cfg: SmolVLAConfig):
        super().__init__()
        v = cfg.vlm
        self.vision_model = VisionTransformer(v.vision, cfg.image_size)
        self.connector = Connector(v.vision, v.scale_factor, v.text.width)
        self.text_model = TextModel(cfg.text, v.vocab_size)


class _SmolVLM(nn.Module):
    """SmolVLMForConditionalGeneration's `.model` level (its lm_head is never used by SmolVLA)."""

    def __init__(self, cfg: SmolVLAConfig):
        super().__init__()
        self.model = _SmolVLMInner(cfg)


class SmolVLMWithExpert(nn.Module):
    def __init__(self, cfg: SmolVLAConfig):
        super().__init__()
        t = cfg.text
        self.vlm = _SmolVLM(cfg)
        cross_in = t.num_kv_heads * t.head_dim  # cross layers re-project the VLM's cached K/V
        self.lm_expert = TextModel(cfg.expert, None, [cross_in if cfg.is_cross(j) else None
                                                      for j in range(cfg.expert.depth)])


class SmolVLACore(nn.Module):
    """LeRobot's VLAFlowMatching parameters."""

    def __init__(self, cfg: SmolVLAConfig):
        super().__init__()
        w, e = cfg.text.width, cfg.expert.width
        self.vlm_with_expert = SmolVLMWithExpert(cfg)
        self.state_proj = nn.Linear(cfg.max_state_dim, w)
        self.action_in_proj = nn.Linear(cfg.max_action_dim, e)
        self.action_out_proj = nn.Linear(e, cfg.max_action_dim)
        self.action_time_mlp_in = nn.Linear(2 * e, e)
        self.action_time_mlp_out = nn.Linear(e, e)


class SmolVLAWeights(nn.Module):
    """The state-dict root: `model.*` exactly as LeRobot saves it."""

    def __init__(self, cfg: SmolVLAConfig):
        super().__init__()
        self.model = SmolVLACore(cfg)


class VisionGraph(nn.Module):
    """image (B, 3, S, S) in [-1, 1] -> image_tokens (B, N, W): vision transformer + pixel-shuffle connector."""

    def __init__(self, core: SmolVLACore):
        super().__init__()
        self.core = core

    def forward(self, image):
        vlm = self.core.vlm_with_expert.vlm.model
        return vlm.connector(vlm.vision_model(image))


class PrefixGraph(nn.Module):
    """image_tokens (B, C*N, W), image_mask (B, C), lang_embeds (B, L, W), lang_mask (B, L), state (B, Smax)
    -> k_cache, v_cache (depth, B, Hkv, P, D), P = C*N + L + 1: the VLM's post-RoPE keys/values.

    lang_embeds = embed_tokens(ids) * sqrt(W), gathered on the host from the bundle's memory-mapped table (as
    pi0 does: 49,280 x 960 = 190 MB an engine would otherwise keep resident for 48 rows per chunk).

    Images and language attend to each other (and never to the state token); the state token attends to all.
    Padded tokens (masked cameras, language padding) are never attended and take no position, so padding the
    language to a fixed length gives the same cache entries for the real tokens as LeRobot's "longest"."""

    def __init__(self, core: SmolVLACore, cfg: SmolVLAConfig):
        super().__init__()
        self.core = core
        self.n = cfg.tokens_per_image

    def forward(self, image_tokens, image_mask, lang_embeds, lang_mask, state):
        c = self.core
        text = c.vlm_with_expert.vlm.model.text_model
        img = image_tokens * torch.tensor(image_tokens.shape[-1] ** 0.5, dtype=image_tokens.dtype)
        x = torch.cat([img, lang_embeds, c.state_proj(state)[:, None, :]], dim=1)      # (B, P, W)
        b, p = x.shape[:2]
        pad = torch.cat([(image_mask > 0.5).repeat_interleave(self.n, dim=1), lang_mask > 0.5,
                         torch.ones(b, 1, dtype=torch.bool)], dim=1)                    # (B, P)
        block = torch.cat([torch.zeros(p - 1, dtype=torch.int64), torch.ones(1, dtype=torch.int64)])  # state: 1
        allowed = (block[None, :] <= block[:, None])[None] & pad[:, None, :] & pad[:, :, None]   # (B, P, P)
        mask = additive(allowed)
        pos = torch.cumsum(pad.to(torch.int64), dim=1) - 1
        ks, vs = [], []
        for i, layer in enumerate(text.layers):
            q, k, v = layer.qkv(x, pos)
            ks.append(k)
            vs.append(v)
            if i + 1 < len(text.layers):  # the last layer's output is never used: only its K/V
                x = layer.finish(x, attend(q, k, v, mask))
        return torch.stack(ks), torch.stack(vs)


class DenoiseGraph(nn.Module):
    """x_t (B, T, Amax), time_emb (B, We) (kernels.flow_time of t, on the host in float64), k/v_cache
    (depth, B, Hkv, P, D), prefix_mask (B, P) -> v_t (B, T, Amax): one flow-matching velocity."""

    def __init__(self, core: SmolVLACore, cfg: SmolVLAConfig):
        super().__init__()
        self.core = core
        self.cfg = cfg

    def suffix(self, x_t, time_emb):
        """Action tokens fused with the time embedding: (B, T, We)."""
        c = self.core
        act = c.action_in_proj(x_t)                                                     # (B, T, We)
        fused = torch.cat([act, time_emb[:, None, :].expand_as(act)], dim=2)           # (B, T, 2We)
        return c.action_time_mlp_out(F.silu(c.action_time_mlp_in(fused)))

    def forward(self, x_t, time_emb, k_cache, v_cache, prefix_mask):
        cfg, expert = self.cfg, self.core.vlm_with_expert.lm_expert
        x = self.suffix(x_t, time_emb)
        b, s, _ = x.shape
        p = prefix_mask.shape[1]
        pre = (prefix_mask > 0.5)[:, None, :].expand(b, s, p)                          # (B, S, P)
        causal = torch.ones(s, s, dtype=torch.bool).tril()[None].expand(b, s, s)         # actions: causal
        self_mask = additive(torch.cat([pre, causal], dim=2))                           # (B, 1, S, P+S)
        cross_mask = additive(pre)                                                       # (B, 1, S, P)
        steps = torch.arange(s)[None].expand(b, s)                                       # (B, S)
        self_pos = (prefix_mask > 0.5).to(torch.int64).sum(dim=1, keepdim=True) + steps  # after the prefix
        for i in range(cfg.text.depth):
            j = cfg.expert_layer(i)
            if j is None:
                continue
            layer = expert.layers[j]
            if cfg.is_cross(i):
                att = self._cross(layer, x, steps, k_cache[i], v_cache[i], cross_mask)
            else:
                q, k, v = layer.qkv(x, self_pos)
                att = attend(q, torch.cat([k_cache[i], k], dim=2), torch.cat([v_cache[i], v], dim=2), self_mask)
            x = layer.finish(x, att)
        return self.core.action_out_proj(expert.norm(x)[:, -cfg.chunk_size:])

    def _cross(self, layer, x, pos, k_prefix, v_prefix, mask):
        """Expert queries (positions from 0) over the VLM's cached K/V (B, Hkv, P, D) projected by the expert's
        k/v_proj (no RoPE on them: the cache already carries the VLM's) -> (B, S, H*D)."""
        a, d = layer.self_attn, layer.t.head_dim
        b, hkv, p, _ = k_prefix.shape
        flat_k = k_prefix.transpose(1, 2).reshape(b, p, hkv * d)                        # (B, P, Hkv*D)
        flat_v = v_prefix.transpose(1, 2).reshape(b, p, hkv * d)
        q = rope(heads(a.q_proj(layer.input_layernorm(x)), d), pos)                    # (B, H, S, D)
        return attend(q, heads(a.k_proj(flat_k), d), heads(a.v_proj(flat_v), d), mask)
