"""Pi0 in our own modules, in the key tree of LeRobot 0.6's PI0Policy:

    model.paligemma_with_expert.paligemma.model.{vision_tower, multi_modal_projector, language_model}
    model.paligemma_with_expert.gemma_expert.model.{layers, norm}
    model.{state_proj, action_in_proj, action_out_proj, action_time_mlp_in, action_time_mlp_out}

and the three graphs the runtime calls (`VisionGraph`, `PrefixGraph`, `DenoiseGraph`), which share it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import PI0Config
from .gemma import MASK_VALUE, GemmaModel
from .siglip import MultiModalProjector, SiglipVisionTower


class _PaliGemmaInner(nn.Module):
    def __init__(self, cfg: PI0Config):
        super().__init__()
        self.vision_tower = SiglipVisionTower(cfg.vision)
        self.multi_modal_projector = MultiModalProjector(cfg.vision.hidden_size, cfg.vlm.width)
        self.language_model = GemmaModel(cfg.vlm, cfg.vocab_size)


class _Wrap(nn.Module):
    """A `.model` level, as transformers' *ForConditionalGeneration / *ForCausalLM have."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.model = inner


class PaliGemmaWithExpert(nn.Module):
    def __init__(self, cfg: PI0Config, expert_cond_dim: int | None = None):
        super().__init__()
        self.paligemma = _Wrap(_PaliGemmaInner(cfg))
        self.gemma_expert = _Wrap(GemmaModel(cfg.expert, None, expert_cond_dim))


class PI0Core(nn.Module):
    """LeRobot's PI0Pytorch parameters (pi0: state token + action-time MLP)."""

    def __init__(self, cfg: PI0Config):
        super().__init__()
        w = cfg.expert.width
        self.paligemma_with_expert = PaliGemmaWithExpert(cfg)
        self.state_proj = nn.Linear(cfg.max_state_dim, w)
        self.action_in_proj = nn.Linear(cfg.max_action_dim, w)
        self.action_out_proj = nn.Linear(w, cfg.max_action_dim)
        self.action_time_mlp_in = nn.Linear(2 * w, w)
        self.action_time_mlp_out = nn.Linear(w, w)


class PI0Weights(nn.Module):
    """The state-dict root: `model.*` exactly as LeRobot saves it."""

    def __init__(self, cfg: PI0Config, core: nn.Module | None = None):
        super().__init__()
        self.cfg = cfg
        self.model = core if core is not None else PI0Core(cfg)


def additive(allowed: torch.Tensor) -> torch.Tensor:
    """bool (B, Q, K) -> additive float mask (B, 1, Q, K)."""
    return torch.where(allowed[:, None], 0.0, MASK_VALUE).to(torch.float32)


class VisionGraph(nn.Module):
    """image (B, 3, S, S) in [-1, 1] -> image_tokens (B, N, W): SigLIP + projector, one camera per call."""

    def __init__(self, core: nn.Module):
        super().__init__()
        self.core = core

    def forward(self, image):
        pg = self.core.paligemma_with_expert.paligemma.model
        return pg.multi_modal_projector(pg.vision_tower(image))


class PrefixGraph(nn.Module):
    """image_tokens (B, C*N, W), image_mask (B, C), lang_embeds (B, L, W), lang_mask (B, L)
    -> k_cache, v_cache (depth, B, Hkv, C*N + L, D): the VLM's post-RoPE keys/values, bidirectional prefix.

    The language embedding (a gather from the 257,152 x 2048 table, 2.1 GB fp32 at full size, times sqrt(W))
    happens on the host (`host_embeddings`, runtime `embedding`): an engine holding the table would keep 2.1 GB
    resident for 48 rows per chunk, while the host reads those rows from a memory-mapped file."""

    def __init__(self, core: nn.Module, tokens_per_image: int):
        super().__init__()
        self.core = core
        self.n = tokens_per_image

    def forward(self, image_tokens, image_mask, lang_embeds, lang_mask):
        lm = self.core.paligemma_with_expert.paligemma.model.language_model
        x = torch.cat([image_tokens, lang_embeds], dim=1)                            # (B, P, W)
        img_pad = (image_mask > 0.5).repeat_interleave(self.n, dim=1)                # (B, C*N)
        pad = torch.cat([img_pad, lang_mask > 0.5], dim=1)                           # (B, P)
        pos = torch.cumsum(pad.to(torch.int64), dim=1) - 1
        _, k, v = lm.prefix(x, pos, additive(pad[:, None, :] & pad[:, :, None]))
        return k, v


class DenoiseGraph(nn.Module):
    """x_t (B, T, Amax), time_emb (B, W) (kernels.flow_time of t, computed on the host in float64),
    k/v_cache (depth, B, Hkv, P, D), prefix_mask (B, P), state (B, Smax) -> v_t (B, T, Amax): one
    flow-matching velocity of the action expert (pi0 suffix: state token + actions)."""

    def __init__(self, core: nn.Module, cfg: PI0Config):
        super().__init__()
        self.core = core
        self.cfg = cfg

    def suffix(self, x_t, time_emb, state):
        """-> suffix embeddings (B, 1+T, W), block ids (1+T,) for the causal-by-block mask, adaRMS cond."""
        c = self.core
        act = c.action_in_proj(x_t)                                                   # (B, T, W)
        fused = torch.cat([act, time_emb[:, None, :].expand_as(act)], dim=2)         # (B, T, 2W)
        act = c.action_time_mlp_out(F.silu(c.action_time_mlp_in(fused)))
        x = torch.cat([c.state_proj(state)[:, None, :], act], dim=1)                 # (B, 1+T, W)
        blocks = torch.tensor([1] + [2] * x_t.shape[1])                               # state | actions
        return x, blocks, None

    def forward(self, x_t, time_emb, k_cache, v_cache, prefix_mask, state):
        x, blocks, cond = self.suffix(x_t, time_emb, state)
        return self.velocity(x, blocks, cond, x_t.shape[1], k_cache, v_cache, prefix_mask)

    def velocity(self, x, blocks, cond, chunk, k_cache, v_cache, prefix_mask):
        """Suffix embeddings (B, S, W) through the expert over the cached prefix -> v_t (B, chunk, Amax)."""
        b, s, _ = x.shape
        pre = prefix_mask > 0.5                                                       # (B, P)
        own = (blocks[None, :] <= blocks[:, None])[None].expand(b, s, s)              # (B, S, S)
        allowed = torch.cat([pre[:, None, :].expand(b, s, pre.shape[1]), own], dim=2)  # (B, S, P+S)
        pos = pre.to(torch.int64).sum(dim=1, keepdim=True) + torch.arange(s)[None]    # (B, S)
        expert = self.core.paligemma_with_expert.gemma_expert.model
        h = expert.suffix(x, pos, additive(allowed), k_cache, v_cache, cond)
        return self.core.action_out_proj(h[:, -chunk:])
