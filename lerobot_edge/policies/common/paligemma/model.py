"""The PaliGemma + Gemma-expert stack the pi family shares (pi0, pi05), in the key tree of LeRobot 0.6's
PI0Policy / PI05Policy:

    model.paligemma_with_expert.paligemma.model.{vision_tower, multi_modal_projector, language_model}
    model.paligemma_with_expert.gemma_expert.model.{layers, norm}
    model.<the policy's own projections>          (policies/pi0/model.py, policies/pi05/model.py)

the graphs the runtime calls (`VisionGraph`, `PrefixGraph`, and `DenoiseGraph`, whose suffix each policy
defines), and strict loading of a checkpoint's memory-mapped weights onto meta-device modules (`load_core`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ....checkpoint import LEGACY_STAT_PREFIXES, Checkpoint
from ....errors import CheckpointError
from ..masks import additive
from ..siglip import MultiModalProjector, SiglipVisionTower
from ..weights import load_strict
from .config import PiConfig
from .gemma import GemmaModel

PG = "model.paligemma_with_expert.paligemma."
EMBED = PG + "model.language_model.embed_tokens.weight"
LM_HEADS = (PG + "lm_head.weight", "model.paligemma_with_expert.gemma_expert.lm_head.weight")


class _PaliGemmaInner(nn.Module):
    def __init__(self, cfg: PiConfig):
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
    def __init__(self, cfg: PiConfig, expert_cond_dim: int | None = None):
        super().__init__()
        self.paligemma = _Wrap(_PaliGemmaInner(cfg))
        self.gemma_expert = _Wrap(GemmaModel(cfg.expert, None, expert_cond_dim))


class PiWeights(nn.Module):
    """The state-dict root: `model.*` exactly as LeRobot saves it (`core`: the policy's PI0Core / PI05Core)."""

    def __init__(self, cfg: PiConfig, core: nn.Module):
        super().__init__()
        self.cfg = cfg
        self.model = core


def prepare_weights(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """LeRobot's load-time fix: the tied lm_head stands in for a missing embedding table."""
    if EMBED not in weights and LM_HEADS[0] in weights:
        weights[EMBED] = weights[LM_HEADS[0]]
    if EMBED not in weights:
        raise CheckpointError(f"pi0 checkpoint has neither {EMBED} nor {LM_HEADS[0]}")
    return weights


def load_core(ckpt: Checkpoint, cfg: PiConfig, core_cls: type[nn.Module]) -> nn.Module:
    """Our modules with the checkpoint's weights. Built on the meta device and given the memory-mapped
    tensors themselves (assign): at full size (13 GB fp32) there is never a second copy of the weights.
    Allow-list: `…paligemma.lm_head.weight` (the embedding table when that is absent), the expert's lm_head."""
    weights = prepare_weights(ckpt.load_weights(mmap=True))
    cfg.vocab_size = int(weights[EMBED].shape[0])
    with torch.device("meta"):
        root = PiWeights(cfg, core_cls(cfg))
    load_strict(root, weights, unused_prefixes=(*LM_HEADS, *LEGACY_STAT_PREFIXES), what=f"{ckpt.policy_type} {ckpt.path}",
                assign=True)
    return root.eval().model


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
    k/v_cache (depth, B, Hkv, P, D), prefix_mask (B, P)[, the policy's extra inputs] -> v_t (B, T, Amax): one
    flow-matching velocity of the action expert. A policy subclasses it with its `suffix` and `forward`."""

    def __init__(self, core: nn.Module, cfg: PiConfig):
        super().__init__()
        self.core = core
        self.cfg = cfg

    def velocity(self, x, blocks, cond, chunk, k_cache, v_cache, prefix_mask):
        """Suffix embeddings (B, S, W) through the expert over the cached prefix -> v_t (B, chunk, Amax).
        `blocks` (S,): block ids of the causal-by-block mask; `cond` (B, W) or None: the adaRMS condition."""
        b, s, _ = x.shape
        pre = prefix_mask > 0.5                                                       # (B, P)
        own = (blocks[None, :] <= blocks[:, None])[None].expand(b, s, s)              # (B, S, S)
        allowed = torch.cat([pre[:, None, :].expand(b, s, pre.shape[1]), own], dim=2)  # (B, S, P+S)
        pos = pre.to(torch.int64).sum(dim=1, keepdim=True) + torch.arange(s)[None]    # (B, S)
        expert = self.core.paligemma_with_expert.gemma_expert.model
        h = expert.suffix(x, pos, additive(allowed), k_cache, v_cache, cond)
        return self.core.action_out_proj(h[:, -chunk:])
